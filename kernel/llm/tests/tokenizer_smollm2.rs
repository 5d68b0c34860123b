//! The byte-level BPE tokenizer on the real SmolLM2 vocabulary: ids equal to the reference
//! (Hugging Face `tokenizers` built from the same GGUF vocabulary and merges, see
//! tests/tokenizer_tools/make_reference.py), the TOOLCHAIN.md golden prompt, round trips, chat
//! template selection and streaming decode. The model file must be present (xtask fetches it):
//! a missing file fails with instructions, it is never skipped.

use llm::chat::{ChatTemplate, Message};
use llm::tokenizer::{StreamDecoder, Tokenizer, TokenizerModel};
use llm::Gguf;

fn model_bytes() -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "the default model is required at {} ({error}); run `cargo xtask` to fetch it \
             (models/ has the fetch command)",
            path.display()
        )
    })
}

fn hex_to_text(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    String::from_utf8(bytes).expect("reference text is UTF-8")
}

fn reference_cases() -> Vec<(String, Vec<u32>)> {
    include_str!("tokenizer_data/smollm2_reference.txt")
        .lines()
        .map(|line| {
            let (hex, ids) = line.split_once('\t').expect("tab-separated");
            let ids = ids
                .split_whitespace()
                .map(|id| id.parse().expect("id"))
                .collect();
            (hex_to_text(hex), ids)
        })
        .collect()
}

const GOLDEN_PROMPT_IDS: [u32; 21] = [
    1, 4093, 198, 19161, 253, 340, 1517, 338, 6765, 260, 3227, 282, 827, 23313, 30, 2, 198, 1, 520,
    9531, 198,
];

#[test]
fn smollm2_tokenizer_matches_the_reference_and_round_trips() {
    let file = model_bytes();
    let gguf = Gguf::parse(&file).expect("SmolLM2 parses");
    let tokenizer = Tokenizer::from_gguf(&gguf).expect("tokenizer from GGUF");
    assert_eq!(
        tokenizer.model(),
        TokenizerModel::BytePairGpt2 {
            digits_one_by_one: true
        }
    );
    assert_eq!(tokenizer.vocab_size(), 49152);
    assert_eq!(tokenizer.eos(), Some(2));
    assert!(!tokenizer.adds_bos());
    assert_eq!(tokenizer.token_id("<|im_start|>"), Some(1));

    // The TOOLCHAIN.md golden prompt, built by the chat template from the file.
    let template = ChatTemplate::from_gguf(&gguf);
    let prompt = template.apply(
        &[Message::user(
            "Write a C function that returns the larger of two integers.",
        )],
        true,
    );
    let ids = tokenizer.encode(&prompt, true, true).unwrap();
    assert_eq!(ids, GOLDEN_PROMPT_IDS);

    let cases = reference_cases();
    assert!(cases.len() >= 20);
    for (text, expected) in &cases {
        let ids = tokenizer.encode(text, true, true).unwrap();
        assert_eq!(&ids, expected, "ids for {text:?}");
        assert_eq!(
            tokenizer.decode_to_string(&ids, true),
            *text,
            "round trip of {text:?}"
        );
        // Streaming decode of the same ids gives the same text, whole characters only.
        let mut stream = StreamDecoder::new();
        let mut streamed = String::new();
        for &id in &ids {
            streamed.push_str(stream.push(tokenizer.token_bytes(id)));
        }
        streamed.push_str(stream.finish());
        assert_eq!(streamed, *text);
    }
}

#[test]
fn smollm2_round_trips_varied_text_without_special_parsing() {
    let file = model_bytes();
    let gguf = Gguf::parse(&file).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let texts = [
        "fn main() {\n    let v: Vec<u64> = (1..=10).map(|x| x * x).collect();\n}\n",
        "0123456789 00 007 3.14e-10 0xFFu8",
        "Ünïcödé façade naïve coöperate — “quotes” ‘single’ … ™ © ®",
        "中文字符测试，标点！ 日本語 カタカナ ひらがな",
        "🦀🐧🎉 👩🏽‍💻 🏳️‍🌈 🤖",
        "\t\t  \n \n\n\n    \r\n \u{2028} \u{85}",
        "<|im_start|> is plain text here",
        "\u{0}\u{1}\u{7f} control bytes",
    ];
    for text in texts {
        let ids = tokenizer.encode(text, false, false).unwrap();
        assert_eq!(tokenizer.decode_to_string(&ids, true), text);
        if text.starts_with("<|im_start|>") {
            assert!(
                !ids.contains(&1),
                "special text is not parsed without parse_special"
            );
        }
    }
    // The chat template from this file: ChatML, with SmolLM2's default system text available.
    let template = ChatTemplate::from_gguf(&gguf).with_default_system();
    let prompt = template.apply(&[Message::user("hi")], true);
    assert!(prompt.starts_with(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    ));
}

/// Random text from a pool of awkward characters (spaces, digits of several scripts, combining
/// marks, emoji, controls, special-token fragments) always round-trips, with and without
/// special-token parsing.
#[test]
fn smollm2_random_text_round_trips() {
    let file = model_bytes();
    let gguf = Gguf::parse(&file).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let pool: Vec<char> = "aZ z0 9 \t\n\r'sllvé\u{301}日本😀👍🏽\u{200d}٣½Ⅻ.,;:!?<|>_-{}()[]\u{0}\u{7f}\u{a0}\u{3000}\u{2028}ÿĠĊ"
        .chars()
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let len = (next() % 40) as usize;
        let mut text: String = (0..len)
            .map(|_| pool[(next() % pool.len() as u64) as usize])
            .collect();
        if next() % 5 == 0 {
            text.push_str("<|im_end|>");
        }
        let ids = tokenizer.encode(&text, false, false).unwrap();
        assert_eq!(tokenizer.decode_to_string(&ids, true), text);
        let ids = tokenizer.encode(&text, true, true).unwrap();
        assert_eq!(tokenizer.decode_to_string(&ids, true), text);
    }
}
