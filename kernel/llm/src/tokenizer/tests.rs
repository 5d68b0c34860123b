//! Host tests of both tokenizer families on small hand-built vocabularies (the real SmolLM2
//! vocabulary is tested in `tests/tokenizer_smollm2.rs`).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::sample::TokenMask;

/// A Llama-2-style vocabulary: <unk>, <s>, </s>, 256 byte tokens, then scored pieces.
fn spm_vocabulary() -> (Vec<String>, Vec<TokenType>, Vec<f32>) {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![TokenType::Unknown, TokenType::Control, TokenType::Control];
    let mut scores = vec![0.0, 0.0, 0.0];
    for byte in 0..=255u8 {
        tokens.push(alloc::format!("<0x{byte:02X}>"));
        types.push(TokenType::Byte);
        scores.push(0.0);
    }
    let pieces: &[(&str, f32)] = &[
        ("▁", -0.5),
        ("h", -20.0),
        ("e", -20.0),
        ("l", -20.0),
        ("o", -20.0),
        ("w", -20.0),
        ("r", -20.0),
        ("d", -20.0),
        ("▁h", -1.0),
        ("ll", -2.0),
        ("▁w", -3.0),
        ("or", -4.0),
        ("ld", -5.0),
        ("▁he", -6.0),
        ("llo", -7.0),
        ("▁wor", -8.0),
        ("▁hello", -9.0),
        ("▁world", -10.0),
        ("<|user|>", -30.0),
    ];
    for &(piece, score) in pieces {
        tokens.push(piece.into());
        types.push(TokenType::Normal);
        scores.push(score);
    }
    (tokens, types, scores)
}

fn spm_tokenizer() -> Tokenizer {
    let (tokens, types, scores) = spm_vocabulary();
    let data = VocabularyData {
        tokens: tokens.iter().map(|s| s.as_str()).collect(),
        token_types: types,
        scores,
        bos: Some(1),
        eos: Some(2),
        unknown: Some(0),
        add_bos: true,
        add_space_prefix: true,
        ..VocabularyData::default()
    };
    Tokenizer::new(TokenizerModel::SentencePiece, &data).unwrap()
}

fn ids_of(tokenizer: &Tokenizer, pieces: &[&str]) -> Vec<u32> {
    pieces
        .iter()
        .map(|p| tokenizer.token_id(p).expect(p))
        .collect()
}

#[test]
fn sentencepiece_merges_by_score_and_adds_bos_and_space() {
    let tokenizer = spm_tokenizer();
    let ids = tokenizer.encode("hello world", true, false).unwrap();
    let mut expected = vec![1];
    expected.extend(ids_of(&tokenizer, &["▁hello", "▁world"]));
    assert_eq!(ids, expected);
    assert_eq!(tokenizer.decode_to_string(&ids, false), "hello world");
    // No BOS without add_special.
    assert_eq!(
        tokenizer.encode("hello", false, false).unwrap(),
        ids_of(&tokenizer, &["▁hello"])
    );
}

#[test]
fn sentencepiece_falls_back_to_bytes() {
    let tokenizer = spm_tokenizer();
    let ids = tokenizer.encode("hé!", false, false).unwrap();
    let byte = |b: u8| 3 + b as u32;
    let mut expected = ids_of(&tokenizer, &["▁h"]);
    expected.extend([byte(0xC3), byte(0xA9), byte(b'!')]);
    assert_eq!(ids, expected);
    assert_eq!(tokenizer.decode_to_string(&ids, false), "hé!");
    for text in ["hello  world", " leading", "tab\there\n", "日本 😀 ok", ""] {
        let ids = tokenizer.encode(text, true, false).unwrap();
        assert_eq!(tokenizer.decode_to_string(&ids, false), text, "{ids:?}");
    }
}

#[test]
fn sentencepiece_special_tokens_in_raw_mode() {
    let tokenizer = spm_tokenizer();
    let ids = tokenizer.encode("<s>hello</s>world", false, true).unwrap();
    let mut expected = vec![1];
    expected.extend(ids_of(&tokenizer, &["▁hello"]));
    expected.push(2);
    expected.extend(ids_of(&tokenizer, &["▁world"]));
    assert_eq!(
        ids, expected,
        "a space is prefixed after each special token, as in llama.cpp"
    );
    // Without parse_special the text is just text.
    let ids = tokenizer.encode("</s>", false, false).unwrap();
    assert!(!ids.contains(&2));
    assert_eq!(tokenizer.decode_to_string(&ids, false), "</s>");
    assert_eq!(tokenizer.decode_to_string(&[1, 2], true), "<s></s>");
    assert_eq!(tokenizer.decode_to_string(&[1, 2], false), "");
}

/// A GPT-2 byte-level vocabulary: the 256 byte characters, merged pieces, one control token.
fn bpe_tokenizer(merges: &[&str], extra: &[&str], digits: bool) -> Tokenizer {
    let mut tokens: Vec<String> = vec!["<|end|>".into()];
    let mut types = vec![TokenType::Control];
    for byte in 0..=255u8 {
        tokens.push(String::from(bpe::byte_to_char(byte)));
        types.push(TokenType::Normal);
    }
    for piece in extra {
        tokens.push((*piece).into());
        types.push(TokenType::Normal);
    }
    let data = VocabularyData {
        tokens: tokens.iter().map(|s| s.as_str()).collect(),
        token_types: types,
        merges: merges.to_vec(),
        eos: Some(0),
        ..VocabularyData::default()
    };
    Tokenizer::new(
        TokenizerModel::BytePairGpt2 {
            digits_one_by_one: digits,
        },
        &data,
    )
    .unwrap()
}

#[test]
fn byte_level_bpe_merges_by_rank() {
    let tokenizer = bpe_tokenizer(
        &[
            "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld",
        ],
        &[
            "he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld",
        ],
        false,
    );
    let ids = tokenizer.encode("hello world", true, false).unwrap();
    assert_eq!(
        ids,
        ids_of(&tokenizer, &["hello", "Ġworld"]),
        "no BOS: add_bos is false"
    );
    assert_eq!(tokenizer.decode_to_string(&ids, false), "hello world");
    // Rank decides between overlapping pairs.
    let first = bpe_tokenizer(&["b c", "a b"], &["bc", "ab"], false);
    assert_eq!(
        first.encode("abc", false, false).unwrap(),
        ids_of(&first, &["a", "bc"])
    );
    let second = bpe_tokenizer(&["a b", "b c"], &["bc", "ab"], false);
    assert_eq!(
        second.encode("abc", false, false).unwrap(),
        ids_of(&second, &["ab", "c"])
    );
    // Equal pairs merge leftmost first: "aaa" -> "aa" "a".
    let repeated = bpe_tokenizer(&["a a"], &["aa"], false);
    assert_eq!(
        repeated.encode("aaa", false, false).unwrap(),
        ids_of(&repeated, &["aa", "a"])
    );
}

#[test]
fn byte_level_bpe_round_trips_any_text_and_parses_specials() {
    let tokenizer = bpe_tokenizer(&["Ġ 1"], &["Ġ1"], true);
    for text in ["x 1 22", "日本 😀\n\t  end", "\u{0}\u{7f}ÿ", "<|end|>"] {
        let ids = tokenizer.encode(text, false, false).unwrap();
        assert_eq!(tokenizer.decode_to_string(&ids, true), text);
    }
    // Digits one by one: " 1" is not merged because the digit is split off first.
    let ids = tokenizer.encode(" 1", false, false).unwrap();
    assert_eq!(ids, ids_of(&tokenizer, &["Ġ", "1"]));
    let plain = bpe_tokenizer(&["Ġ 1"], &["Ġ1"], false);
    assert_eq!(
        plain.encode(" 1", false, false).unwrap(),
        ids_of(&plain, &["Ġ1"])
    );
    // Raw mode.
    let ids = tokenizer.encode("a<|end|>b", false, true).unwrap();
    assert_eq!(
        ids,
        vec![
            tokenizer.token_id("a").unwrap(),
            0,
            tokenizer.token_id("b").unwrap()
        ]
    );
    assert_eq!(tokenizer.piece(0), b"");
    assert_eq!(tokenizer.token_bytes(0), b"<|end|>");
}

#[test]
fn bad_vocabularies_are_typed_errors() {
    let data = VocabularyData::default();
    assert_eq!(
        Tokenizer::new(TokenizerModel::SentencePiece, &data).unwrap_err(),
        TokenizerError::VocabularySize(0)
    );
    let data = VocabularyData {
        tokens: vec!["a", "b"],
        scores: vec![0.0],
        ..VocabularyData::default()
    };
    assert!(matches!(
        Tokenizer::new(TokenizerModel::SentencePiece, &data),
        Err(TokenizerError::LengthMismatch {
            key: "tokenizer.ggml.scores",
            expected: 2,
            found: 1
        })
    ));
    let data = VocabularyData {
        tokens: vec!["a", "b"],
        merges: vec!["a b"],
        ..VocabularyData::default()
    };
    assert_eq!(
        Tokenizer::new(
            TokenizerModel::BytePairGpt2 {
                digits_one_by_one: false
            },
            &data
        )
        .unwrap_err(),
        TokenizerError::BadMerge {
            index: 0,
            text: "a b".into()
        }
    );
    let data = VocabularyData {
        tokens: vec!["a"],
        eos: Some(5),
        ..VocabularyData::default()
    };
    assert_eq!(
        Tokenizer::new(
            TokenizerModel::BytePairGpt2 {
                digits_one_by_one: false
            },
            &data
        )
        .unwrap_err(),
        TokenizerError::TokenIdOutOfRange {
            key: "tokenizer.ggml.eos_token_id",
            id: 5
        }
    );
    // A byte-level vocabulary without byte tokens cannot encode arbitrary text.
    let data = VocabularyData {
        tokens: vec!["a"],
        ..VocabularyData::default()
    };
    let tokenizer = Tokenizer::new(
        TokenizerModel::BytePairGpt2 {
            digits_one_by_one: false,
        },
        &data,
    )
    .unwrap();
    assert_eq!(
        tokenizer.encode("ab", false, false),
        Err(TokenizerError::MissingByteToken(b'b'))
    );
}

#[test]
fn vocab_trie_excludes_control_tokens_and_marks_end_tokens() {
    let tokenizer = spm_tokenizer();
    let trie = tokenizer.vocab_trie();
    assert_eq!(trie.vocab_size(), tokenizer.vocab_size());
    assert_eq!(trie.end_tokens(), &[2]);
    let grammar = alloc::sync::Arc::new(
        crate::grammar::Grammar::parse("root ::= \" hello\" \" world\"?").unwrap(),
    );
    let mut state = crate::grammar::GrammarState::new(grammar).unwrap();
    let mut mask = TokenMask::new_block_all(tokenizer.vocab_size());
    state.mask(&trie, &mut mask).unwrap();
    assert!(mask.is_allowed(tokenizer.token_id("▁hello").unwrap()));
    assert!(mask.is_allowed(tokenizer.token_id("▁he").unwrap()));
    assert!(mask.is_allowed(3 + b' ' as u32), "the <0x20> byte token");
    assert!(!mask.is_allowed(1) && !mask.is_allowed(2) && !mask.is_allowed(0));
    state
        .accept_token(&trie, tokenizer.token_id("▁hello").unwrap())
        .unwrap();
    state.mask(&trie, &mut mask).unwrap();
    assert!(mask.is_allowed(2), "EOS once complete");
    assert!(mask.is_allowed(tokenizer.token_id("▁world").unwrap()));
}

#[test]
fn from_gguf_reports_bad_metadata_with_the_key() {
    use crate::gguf::writer::{write, WValue};
    use crate::gguf::Gguf;
    let base = |model: &str, extra: Vec<(String, WValue)>| {
        let mut metadata = vec![
            (
                "tokenizer.ggml.model".to_string(),
                WValue::Str(model.into()),
            ),
            (
                "tokenizer.ggml.tokens".to_string(),
                WValue::ArrStr(vec!["a".into(), "b".into(), "ab".into()]),
            ),
        ];
        metadata.extend(extra);
        write(&metadata, &[])
    };
    let build = |file: &[u8]| Tokenizer::from_gguf(&Gguf::parse(file).unwrap());
    let file = base("bert", vec![]);
    assert_eq!(
        build(&file).unwrap_err(),
        TokenizerError::UnsupportedModel("bert".into())
    );
    let file = base(
        "gpt2",
        vec![("tokenizer.ggml.pre".into(), WValue::Str("llama-bpe".into()))],
    );
    assert_eq!(
        build(&file).unwrap_err(),
        TokenizerError::UnsupportedPreTokenizer("llama-bpe".into())
    );
    let file = base("gpt2", vec![]);
    assert!(matches!(
        build(&file).unwrap_err(),
        TokenizerError::Gguf(crate::gguf::GgufError::MissingKey { key }) if key == "tokenizer.ggml.merges"
    ));
    let file = base(
        "gpt2",
        vec![(
            "tokenizer.ggml.merges".into(),
            WValue::ArrStr(vec!["a c".into()]),
        )],
    );
    assert_eq!(
        build(&file).unwrap_err(),
        TokenizerError::BadMerge {
            index: 0,
            text: "a c".into()
        }
    );
    let file = base(
        "gpt2",
        vec![(
            "tokenizer.ggml.merges".into(),
            WValue::ArrStr(vec!["a b".into()]),
        )],
    );
    assert!(build(&file).is_ok());
    let file = base(
        "llama",
        vec![(
            "tokenizer.ggml.scores".into(),
            WValue::ArrI32(vec![0, 0, 0]),
        )],
    );
    assert!(matches!(
        build(&file).unwrap_err(),
        TokenizerError::Gguf(crate::gguf::GgufError::WrongType { key, .. }) if key == "tokenizer.ggml.scores"
    ));
    let file = base(
        "llama",
        vec![
            (
                "tokenizer.ggml.scores".into(),
                WValue::ArrF32(vec![0.0, 0.0, 1.0]),
            ),
            ("tokenizer.ggml.bos_token_id".into(), WValue::U32(7)),
        ],
    );
    assert_eq!(
        build(&file).unwrap_err(),
        TokenizerError::TokenIdOutOfRange {
            key: "tokenizer.ggml.bos_token_id",
            id: 7
        }
    );
}
