//! Host tests of the grammar engine: parsing and its errors, recognition, and the mask checked
//! exhaustively against the byte-by-byte recogniser.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::sample::TokenMask;

fn state(text: &str) -> GrammarState {
    GrammarState::new(Arc::new(Grammar::parse(text).expect("grammar parses"))).expect("state")
}

fn accepts(text: &str, input: &str) -> bool {
    let mut state = state(text);
    state.accept_bytes(input.as_bytes()).is_ok() && state.is_complete()
}

fn error_of(text: &str) -> GrammarError {
    Grammar::parse(text).expect_err("grammar must be rejected")
}

pub(crate) const EBPF_PROGRAMS: &[&str] = &[
    "mov r0, 0\nexit\n",
    "ldxw r0, [r1+4]\nadd r0, 1\njeq r0, 10, +1\nmov r0, 0\nexit\n",
    "# return the larger of two words\nldxw r2, [r1]\nldxw r3, [r1+4]\nmov r0, r2\njge r2, r3, done\nmov r0, r3\ndone:\nexit\n",
    "lddw r1, 0x1122334455667788\nstxdw [r10-8], r1\nldxdw r0, [r10-8]\nrsh32 r0, 4\nle16 r0\nexit\n",
    "mov r1, 5\nloop:\nsub r1, 1\njne r1, 0, loop\ncall 1\nstw [r10-4], -7\nneg32 r0\nja +0\nexit\n",
];

pub(crate) const WAT_PROGRAMS: &[&str] = &[
    "(module\n  (func $max (export \"max\") (param $a i32) (param $b i32) (result i32)\n    local.get $a\n    local.get $b\n    i32.gt_s\n    if (result i32)\n      local.get $a\n    else\n      local.get $b\n    end))\n",
    "(module (import \"env\" \"log\" (func $log (param i32))) (func (param i64) (result i64) (local i64) i64.const 0 local.set 1 block $out loop $top local.get 0 i64.eqz br_if $out local.get 0 i64.const -1 i64.add local.set 0 br $top end end local.get 1) (export \"f\" (func 1)))",
];

#[test]
fn literals_classes_and_repetition() {
    let grammar = r#"root ::= "a" [b-d]* "e"? [0-9]+"#;
    assert!(accepts(grammar, "a1"));
    assert!(accepts(grammar, "abcde42"));
    assert!(accepts(grammar, "ae0"));
    assert!(!accepts(grammar, "a"));
    assert!(!accepts(grammar, "ax1"));
    assert!(!accepts(grammar, "aee1"));
    assert!(!accepts(grammar, "a1x"));
}

#[test]
fn groups_alternation_continuation_lines_and_comments() {
    let grammar = "# greeting grammar\nroot ::= greet (\", \" greet)* \"!\"   # trailing comment\ngreet ::= \"hi\"\n        | \"hello\" ( \" there\"\n | \" you\" )?\n";
    assert!(accepts(grammar, "hi!"));
    assert!(accepts(grammar, "hello there, hi, hello you!"));
    assert!(!accepts(grammar, "hello there you!"));
    assert!(!accepts(grammar, "hi,hi!"));
}

#[test]
fn negated_and_unicode_classes_work_at_byte_level() {
    let grammar = r#"root ::= "\"" [^"\n]* "\"" [α-ω]? ."#;
    assert!(accepts(grammar, "\"\"x"));
    assert!(accepts(grammar, "\"héllo wörld 😀\"λ€"));
    assert!(!accepts(grammar, "\"a\nb\"x"));
    assert!(
        !accepts(grammar, "\"ab\"Ax"),
        "A is not in α-ω and . takes one char"
    );
    // A token may end in the middle of a character: the prefix stays valid.
    let mut state = state(grammar);
    let emoji = "😀".as_bytes();
    assert!(state.accept_bytes(b"\"").is_ok());
    assert!(state.accept_bytes(&emoji[..2]).is_ok());
    assert!(!state.is_complete());
    assert!(
        state.accept_bytes(b"\"").is_err(),
        "an unfinished character cannot be cut off"
    );
    assert!(state.accept_bytes(&emoji[2..]).is_ok());
    // Invalid UTF-8 is never accepted.
    let mut state = self::state(grammar);
    assert!(state.accept_bytes(b"\"\xff").is_err());
    assert!(
        state.accept_bytes(b"\"\xed\xa0\x80").is_err(),
        "surrogates are not characters"
    );
}

#[test]
fn escapes_in_literals_and_classes() {
    let grammar = r#"root ::= "\x41\u00e9\t" [\x30-\x32\]\-]+"#;
    assert!(accepts(grammar, "Aé\t0]-2"));
    assert!(!accepts(grammar, "Aé\t3"));
}

#[test]
fn empty_alternatives_and_nullable_rules() {
    let grammar = "root ::= a b \"x\"\na ::= \"a\" |\nb ::= ( \"b\" | ) \"\"";
    assert!(accepts(grammar, "x"));
    assert!(accepts(grammar, "abx"));
    assert!(accepts(grammar, "bx"));
    assert!(!accepts(grammar, "ba"));
}

#[test]
fn completion_and_continuation_are_reported() {
    let mut state = state("root ::= \"ab\" \"c\"?");
    assert!(!state.is_complete());
    state.accept_bytes(b"ab").unwrap();
    assert!(state.is_complete() && state.can_continue());
    state.accept_bytes(b"c").unwrap();
    assert!(state.is_complete() && !state.can_continue());
    assert_eq!(
        state.accept_bytes(b"c"),
        Err(GrammarStateError::Rejected {
            offset: 0,
            byte: b'c'
        })
    );
    // A failed accept leaves the state as it was.
    let mut state = self::state("root ::= \"abc\"");
    assert_eq!(
        state.accept_bytes(b"abx"),
        Err(GrammarStateError::Rejected {
            offset: 2,
            byte: b'x'
        })
    );
    state.accept_bytes(b"abc").unwrap();
    assert!(state.is_complete());
}

#[test]
fn parse_errors_carry_line_and_column() {
    let cases: Vec<(&str, usize, usize, GrammarErrorKind)> = vec![
        (
            "root ::= \"a\"\n  = x",
            2,
            3,
            GrammarErrorKind::ExpectedRuleName,
        ),
        ("root := \"a\"", 1, 6, GrammarErrorKind::ExpectedDefinition),
        (
            "root ::= \"abc",
            1,
            10,
            GrammarErrorKind::UnterminatedString,
        ),
        ("root ::= [abc", 1, 10, GrammarErrorKind::UnterminatedClass),
        (
            "root ::= [z-a]",
            1,
            10,
            GrammarErrorKind::InvertedRange {
                low: 'z' as u32,
                high: 'a' as u32,
            },
        ),
        ("root ::= \"\\q\"", 1, 12, GrammarErrorKind::BadEscape),
        (
            "root ::= (\"a\" | \"b\"",
            1,
            10,
            GrammarErrorKind::UnclosedGroup,
        ),
        (
            "root ::= \"a\" )",
            1,
            14,
            GrammarErrorKind::UnexpectedCharacter(')'),
        ),
        (
            "root ::= \"a\" @",
            1,
            14,
            GrammarErrorKind::UnexpectedCharacter('@'),
        ),
        (
            "root ::= x\nx ::= \"a\"\nx ::= \"b\"",
            3,
            1,
            GrammarErrorKind::DuplicateRule("x".into()),
        ),
        (
            "root ::= \"a\"\n\nr ::= root missing",
            3,
            12,
            GrammarErrorKind::UndefinedRule("missing".into()),
        ),
        ("start ::= \"a\"", 1, 1, GrammarErrorKind::MissingRoot),
        (
            "root ::= [^\\x00-\\U0010ffff]",
            1,
            10,
            GrammarErrorKind::EmptyClass,
        ),
    ];
    for (text, line, column, kind) in cases {
        let error = error_of(text);
        assert_eq!(error, GrammarError { line, column, kind }, "for {text:?}");
    }
    let deep = "root ::= ".to_string() + &"(".repeat(100) + "\"a\"" + &")".repeat(100);
    assert_eq!(error_of(&deep).kind, GrammarErrorKind::NestingTooDeep);
    let huge = "root ::= \"a\"\n".to_string() + &"# padding\n".repeat(7000);
    assert_eq!(error_of(&huge).kind, GrammarErrorKind::TooLarge);
}

#[test]
fn left_recursion_is_rejected_even_through_nullable_rules() {
    let error = error_of("root ::= expr\nexpr ::= expr \"+\" num | num\nnum ::= [0-9]+");
    assert_eq!(error.kind, GrammarErrorKind::LeftRecursion("expr".into()));
    let error = error_of("root ::= a\na ::= b* a \"x\"\nb ::= \"b\"");
    assert_eq!(error.kind, GrammarErrorKind::LeftRecursion("a".into()));
    let error = error_of("root ::= (\"\")*");
    assert!(matches!(error.kind, GrammarErrorKind::LeftRecursion(_)));
    // Right recursion is fine.
    assert!(accepts("root ::= \"(\" root \")\" | \"\"", "((()))"));
}

#[test]
fn deep_nesting_is_a_typed_error_not_a_crash() {
    let mut state = state("root ::= \"(\" root \")\" | \"x\"");
    let deep = "(".repeat(limits::MAX_STACK_DEPTH + 10);
    assert_eq!(
        state.accept_bytes(deep.as_bytes()),
        Err(GrammarStateError::TooDeep)
    );
    // The state is still usable after the error.
    assert!(state.accept_bytes(b"((x))").is_ok());
    assert!(state.is_complete());
}

#[test]
fn ambiguity_is_bounded() {
    // Every split of a run of a's is a different parse.
    let mut state = state(
        "root ::= x*\nx ::= \"a\" | \"aa\" | \"a\" y\ny ::= \"\" | \"b\"? z\nz ::= \"\" | \"a\"",
    );
    assert!(
        state.accept_bytes(&[b'a'; 200]).is_ok(),
        "stack dedup keeps this small"
    );
    assert!(state.stack_count() < 64, "{} stacks", state.stack_count());
    let ambiguous = "root ::= a\na ::= \"x\" a? b?\nb ::= \"x\" b? a?";
    let mut state = self::state(ambiguous);
    let result = state.accept_bytes(&[b'x'; 64]);
    assert!(
        result.is_ok() || result == Err(GrammarStateError::TooManyStacks),
        "{result:?}"
    );
}

#[test]
fn ebpf_grammar_accepts_programs_and_rejects_mistakes() {
    for program in EBPF_PROGRAMS {
        assert!(accepts(EBPF_ASM, program), "{program}");
    }
    for bad in [
        "mov r0 1\nexit\n",
        "mov r11, 1\nexit\n",
        "ldxw r0, r1+4\nexit\n",
        "exit",
        "jeq r1, 0\nexit\n",
        "call r1\n",
        "MOV r0, 1\n",
        "\n",
    ] {
        assert!(!accepts(EBPF_ASM, bad), "{bad:?}");
    }
}

#[test]
fn wat_grammar_accepts_modules_and_rejects_mistakes() {
    for module in WAT_PROGRAMS {
        assert!(accepts(WAT, module), "{module}");
    }
    for bad in [
        "(module (func (param f32)))",
        "(module (func i32.add)",
        "(module (func block i32.const 1))",
        "(module (func if else end else end))",
        "(modul)",
    ] {
        assert!(!accepts(WAT, bad), "{bad:?}");
    }
}

/// A vocabulary of pieces cut from `texts` (every substring up to 8 bytes, so the real
/// continuations are there) plus bytes, words and multi-byte fragments.
fn test_vocabulary(texts: &[&str]) -> Vec<Vec<u8>> {
    let mut pieces: Vec<Vec<u8>> = (0u8..=255).map(|b| vec![b]).collect();
    for text in texts {
        let bytes = text.as_bytes();
        for start in 0..bytes.len() {
            for len in 2..=8 {
                if start + len <= bytes.len() {
                    pieces.push(bytes[start..start + len].to_vec());
                }
            }
        }
    }
    for extra in [
        "\n\n",
        "  ",
        "    ",
        "r10",
        "0x",
        "é",
        "😀",
        "mov r0, 0\nexit\n",
        "(module",
        ")))",
        "Ġ",
    ] {
        pieces.push(extra.as_bytes().to_vec());
    }
    pieces.push("😀".as_bytes()[..2].to_vec());
    pieces.sort();
    pieces.dedup();
    pieces
}

/// Check the mask against the recogniser for every token, at every prefix of `text`; returns
/// how many masks were computed by the cached walk (the rest fell back to the uncached one).
fn check_mask_exact(grammar_text: &str, texts: &[&str]) -> usize {
    let grammar = Arc::new(Grammar::parse(grammar_text).unwrap());
    let vocabulary = test_vocabulary(texts);
    let end_token = vocabulary.len() as u32;
    let mut entries: Vec<Option<&[u8]>> = vocabulary.iter().map(|p| Some(p.as_slice())).collect();
    entries.push(None); // the end token has no bytes
    let trie = VocabTrie::build(entries, &[end_token]);
    let mut mask = TokenMask::new_block_all(vocabulary.len() + 1);
    let mut uncached = TokenMask::new_block_all(vocabulary.len() + 1);
    let mut states_checked = 0;
    let mut cached_walks = 0;
    let total_bytes: usize = texts.iter().map(|t| t.len()).sum();
    let step = if total_bytes < 200 { 1 } else { 3 };
    for text in texts {
        let mut state = GrammarState::new(grammar.clone()).unwrap();
        for (index, &byte) in text.as_bytes().iter().enumerate() {
            if index % step == 0 || index + 1 == text.len() {
                state.mask(&trie, &mut mask).unwrap();
                cached_walks += (state.cached_sets() > 0) as usize;
                state.mask_uncached(&trie, &mut uncached).unwrap();
                assert_eq!(mask, uncached, "cached and uncached walks agree");
                let mut probe = state.clone();
                for (id, piece) in vocabulary.iter().enumerate() {
                    let valid = probe.allows_bytes(piece);
                    assert_eq!(
                        mask.is_allowed(id as u32),
                        valid,
                        "token {:?} after {:?}",
                        String::from_utf8_lossy(piece),
                        &text[..index]
                    );
                }
                assert_eq!(mask.is_allowed(end_token), state.is_complete());
                states_checked += 1;
            }
            state.accept_bytes(&[byte]).unwrap();
        }
        state.mask(&trie, &mut mask).unwrap();
        assert!(
            mask.is_allowed(end_token),
            "complete program allows the end token"
        );
        assert!(state.accept_token(&trie, end_token).is_ok());
    }
    assert!(states_checked >= total_bytes / 3);
    cached_walks
}

#[test]
fn mask_is_exact_for_the_ebpf_grammar() {
    check_mask_exact(EBPF_ASM, EBPF_PROGRAMS);
}

#[test]
fn mask_is_exact_for_the_wat_grammar() {
    check_mask_exact(WAT, WAT_PROGRAMS);
}

#[test]
fn mask_is_exact_for_unicode_classes() {
    check_mask_exact(
        r#"root ::= ("\"" [^"\n]* "\"" "\n")+"#,
        &["\"héllo 😀 wörld\"\n\"\"\n"],
    );
}

#[test]
fn trie_shares_prefixes_and_keeps_duplicates() {
    let entries: Vec<Option<&[u8]>> = vec![
        Some(b"ab"),
        Some(b"a"),
        Some(b"abc"),
        None,
        Some(b"a"),
        Some(b""),
    ];
    let trie = VocabTrie::build(entries, &[3]);
    assert_eq!(trie.vocab_size(), 6);
    assert_eq!(trie.node_count(), 4, "root, a, ab, abc");
    assert_eq!(trie.max_depth(), 3);
    assert_eq!(trie.token_bytes(2), Some(&b"abc"[..]));
    assert_eq!(trie.token_bytes(9), None);
    assert!(trie.is_end_token(3));
    let mut state = state("root ::= \"a\" \"b\"?");
    let mut mask = TokenMask::new_block_all(6);
    state.mask(&trie, &mut mask).unwrap();
    assert_eq!(mask.iter_allowed().collect::<Vec<_>>(), vec![0, 1, 4]);
    assert_eq!(
        state.accept_token(&trie, 3),
        Err(GrammarStateError::EndNotAllowed(3))
    );
    assert_eq!(
        state.accept_token(&trie, 5),
        Err(GrammarStateError::UnknownToken(5))
    );
    state.accept_token(&trie, 4).unwrap();
    state.mask(&trie, &mut mask).unwrap();
    assert_eq!(
        mask.iter_allowed().collect::<Vec<_>>(),
        vec![3],
        "\"b\" is not a token; end is allowed"
    );
}

#[test]
fn sample_constrained_only_produces_valid_output() {
    use crate::sample::{Sampler, SamplerConfig};
    let vocabulary = test_vocabulary(EBPF_PROGRAMS);
    let end_token = vocabulary.len() as u32;
    let mut entries: Vec<Option<&[u8]>> = vocabulary.iter().map(|p| Some(p.as_slice())).collect();
    entries.push(None);
    let trie = VocabTrie::build(entries, &[end_token]);
    let grammar = Arc::new(Grammar::parse(EBPF_ASM).unwrap());
    let vocab_size = vocabulary.len() + 1;
    let mut mask = TokenMask::new_block_all(vocab_size);
    for (seed, temperature) in [(1u64, 0.0f32), (2, 1.0), (3, 1.5)] {
        let mut sampler = Sampler::new(
            vocab_size,
            SamplerConfig {
                temperature,
                seed,
                top_k: 0,
                top_p: 1.0,
                ..SamplerConfig::default()
            },
        );
        let mut state = GrammarState::new(grammar.clone()).unwrap();
        let mut rng = crate::sample::Pcg32::new(seed);
        let mut output = Vec::new();
        let mut finished = false;
        for _ in 0..400 {
            // Random logits, with the end token favoured so programs finish.
            let mut logits: Vec<f32> = (0..vocab_size).map(|_| rng.next_f32() * 4.0).collect();
            logits[end_token as usize] = 3.5;
            let token = sample_constrained(&mut sampler, &mut logits, &mut state, &trie, &mut mask)
                .unwrap();
            if token == end_token {
                finished = true;
                break;
            }
            output.extend_from_slice(trie.token_bytes(token).unwrap());
        }
        let text = String::from_utf8(output).unwrap();
        if finished {
            assert!(accepts(EBPF_ASM, &text), "complete output parses: {text:?}");
        } else {
            assert!(
                self::state(EBPF_ASM).accept_bytes(text.as_bytes()).is_ok(),
                "valid prefix: {text:?}"
            );
        }
    }
}

/// Hostile grammar text and hostile output never panic: random texts from grammar syntax
/// pieces either fail to parse with a located error or give a grammar whose recogniser and mask
/// run on random bytes without panicking.
#[test]
fn random_grammars_and_inputs_never_panic() {
    const PIECES: &[&str] = &[
        "root",
        " ::= ",
        "a",
        "b",
        " ::= ",
        "\"x\"",
        "\"\\n\"",
        "\"é\"",
        "[a-z]",
        "[^\"\\n]",
        "[",
        "]",
        "(",
        ")",
        "|",
        "*",
        "+",
        "?",
        ".",
        " ",
        "\n",
        "#c\n",
        "\"",
        "\\",
        "\\x4",
        "-",
        "^",
        "root ::= ",
        "\na ::= ",
        "\nb ::= ",
        "a",
        "b",
        "[\\u00e9-\\u00ff]",
        "\"\"",
        "::=",
    ];
    let mut rng = crate::sample::Pcg32::new(99);
    let vocabulary = test_vocabulary(&["abc xyz\n\"é\"", "root"]);
    let entries: Vec<Option<&[u8]>> = vocabulary.iter().map(|p| Some(p.as_slice())).collect();
    let trie = VocabTrie::build(entries, &[]);
    let mut mask = TokenMask::new_block_all(vocabulary.len());
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut text = String::new();
        if !rng.next_u32().is_multiple_of(4) {
            text.push_str("root ::= ");
        }
        for _ in 0..(rng.next_u32() % 14) {
            text.push_str(PIECES[rng.next_u32() as usize % PIECES.len()]);
        }
        match Grammar::parse(&text) {
            Err(error) => {
                assert!(error.line >= 1 && error.column >= 1);
                assert!(
                    error.line <= text.lines().count().max(1) + 1,
                    "{error} in {text:?}"
                );
            }
            Ok(grammar) => {
                parsed += 1;
                let Ok(mut state) = GrammarState::new(Arc::new(grammar)) else {
                    continue;
                };
                for _ in 0..4 {
                    if state.mask(&trie, &mut mask).is_err() {
                        break;
                    }
                    let allowed: Vec<u32> = mask.iter_allowed().collect();
                    if allowed.is_empty() {
                        break;
                    }
                    let token = allowed[rng.next_u32() as usize % allowed.len()];
                    state
                        .accept_token(&trie, token)
                        .expect("a token the mask allowed is accepted");
                }
                let noise: Vec<u8> = (0..8).map(|_| rng.next_u32() as u8).collect();
                let _ = state.accept_bytes(&noise);
            }
        }
    }
    assert!(
        parsed > 100,
        "the generator produces some valid grammars ({parsed})"
    );
}

#[test]
fn generated_sentences_are_accepted_by_the_recogniser() {
    for (name, text) in [("ebpf", EBPF_ASM), ("wat", WAT)] {
        let grammar = Arc::new(Grammar::parse(text).unwrap());
        let mut complete = 0;
        for seed in 0..60 {
            let sentence = grammar.generate(seed, 12);
            let mut state = GrammarState::new(grammar.clone()).unwrap();
            state.accept_bytes(&sentence).unwrap_or_else(|e| {
                panic!(
                    "{name} seed {seed}: {e}: {:?}",
                    String::from_utf8_lossy(&sentence)
                )
            });
            complete += state.is_complete() as usize;
        }
        assert_eq!(complete, 60, "{name}: every generated sentence is complete");
    }
}

#[test]
fn mask_is_exact_in_identifier_and_free_text_states() {
    // Identifier loops ([a-z0-9_]*), free text ([^\n]*) and a string ([^"]*) - the states where
    // the mask allows whole trie subtrees without walking them.
    let cached_walks = check_mask_exact(
        "root ::= (\"$\" [a-z_] [a-z0-9_]* \" \" | \"# \" [^\\n]* \"\\n\" | \"\\\"\" [^\"]* \"\\\"\")+ \"end\"",
        &["$abc_12 $x # free text, with \"quotes\" and UPPER 123\n\"a string; here\"$tail end"],
    );
    assert!(
        cached_walks > 20,
        "the cached walk (with its shortcut) ran {cached_walks} times"
    );
}
