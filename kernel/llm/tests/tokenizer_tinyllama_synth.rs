//! The SentencePiece tokenizer on the synthetic TinyLlama vocabulary that tools/gguf_synth
//! writes (32 000 tokens, Llama 2 layout), read back through a GGUF file with the same
//! tokenizer keys: ids equal to the `sentencepiece` package's on the same pieces and scores
//! (tests/tokenizer_tools/make_synth_reference.py), Zephyr template, round trips, and the
//! grammar trie built from it.

use gguf_synth::vocabulary;
use llm::chat::{ChatTemplate, Message};
use llm::gguf::writer::{write, WValue};
use llm::tokenizer::{Tokenizer, TokenizerModel};
use llm::Gguf;

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn synthetic_gguf() -> Vec<u8> {
    let (tokens, scores, types) = vocabulary(32000);
    let template = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% endif %}\n{% endfor %}";
    let metadata = vec![
        (
            "tokenizer.ggml.model".to_string(),
            WValue::Str("llama".into()),
        ),
        ("tokenizer.ggml.tokens".to_string(), WValue::ArrStr(tokens)),
        ("tokenizer.ggml.scores".to_string(), WValue::ArrF32(scores)),
        (
            "tokenizer.ggml.token_type".to_string(),
            WValue::ArrI32(types),
        ),
        ("tokenizer.ggml.bos_token_id".to_string(), WValue::U32(1)),
        ("tokenizer.ggml.eos_token_id".to_string(), WValue::U32(2)),
        (
            "tokenizer.ggml.unknown_token_id".to_string(),
            WValue::U32(0),
        ),
        (
            "tokenizer.ggml.add_bos_token".to_string(),
            WValue::Bool(true),
        ),
        (
            "tokenizer.chat_template".to_string(),
            WValue::Str(template.into()),
        ),
    ];
    write(&metadata, &[])
}

#[test]
fn synthetic_tinyllama_ids_equal_sentencepiece() {
    let file = synthetic_gguf();
    let gguf = Gguf::parse(&file).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    assert_eq!(tokenizer.model(), TokenizerModel::SentencePiece);
    assert_eq!(tokenizer.vocab_size(), 32000);
    let mut lines = include_str!("tokenizer_data/synth_tinyllama_reference.txt").lines();
    // The Python script rebuilt gguf_synth's vocabulary: check it is the same one.
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(header[0], "vocab");
    assert_eq!(header[1], "32000");
    assert_eq!(
        tokenizer.token_text(300).unwrap().as_bytes(),
        unhex(header[2])
    );
    assert_eq!(
        tokenizer.token_text(31999).unwrap().as_bytes(),
        unhex(header[3])
    );
    let mut cases = 0;
    for line in lines {
        let (hex, ids) = line.split_once('\t').unwrap_or((line, ""));
        let text = String::from_utf8(unhex(hex)).unwrap();
        let expected: Vec<u32> = ids.split_whitespace().map(|i| i.parse().unwrap()).collect();
        let ids = tokenizer.encode(&text, true, false).unwrap();
        assert_eq!(ids, expected, "ids for {text:?}");
        assert_eq!(tokenizer.decode_to_string(&ids, false), text);
        cases += 1;
    }
    assert_eq!(cases, 9);
    // The Zephyr template from the file, with </s> parsed as EOS.
    let template = ChatTemplate::from_gguf(&gguf);
    assert_eq!(template, ChatTemplate::zephyr());
    let prompt = template.apply(&[Message::user("hello")], true);
    let ids = tokenizer.encode(&prompt, true, true).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(ids.iter().filter(|&&id| id == 2).count(), 1);
    // The grammar trie over this vocabulary: control tokens out, EOS marked.
    let trie = tokenizer.vocab_trie();
    assert_eq!(trie.vocab_size(), 32000);
    assert_eq!(trie.end_tokens(), &[2]);
    assert!(!trie.is_generatable(0) && !trie.is_generatable(1) && trie.is_generatable(300));
}
