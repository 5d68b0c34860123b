//! The SentencePiece BPE tokenizer (Llama 2 / TinyLlama family) through a GGUF file with
//! TinyLlama's tokenizer metadata layout, on a 1 200-token byte-fallback vocabulary trained with
//! the `sentencepiece` package; ids must equal that package's (see
//! tests/tokenizer_tools/make_spm_reference.py). Also: Zephyr chat template chosen from the
//! file, `</s>` parsed as EOS in raw mode, round trips and streaming decode.

use llm::chat::{ChatTemplate, Message};
use llm::gguf::writer::{write, WValue};
use llm::tokenizer::{StreamDecoder, Tokenizer, TokenizerModel};
use llm::Gguf;

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// TinyLlama-1.1B-Chat's tokenizer keys, with the trained vocabulary.
fn llama_style_gguf() -> Vec<u8> {
    let mut tokens = Vec::new();
    let mut scores = Vec::new();
    let mut types = Vec::new();
    for line in include_str!("tokenizer_data/spm_vocab.txt").lines() {
        let mut fields = line.split('\t');
        let piece = String::from_utf8(unhex(fields.next().unwrap())).unwrap();
        tokens.push(piece);
        scores.push(fields.next().unwrap().parse::<f32>().unwrap());
        types.push(fields.next().unwrap().parse::<i32>().unwrap());
    }
    let template = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
    let metadata = vec![
        (
            "general.architecture".to_string(),
            WValue::Str("llama".into()),
        ),
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
            "tokenizer.ggml.padding_token_id".to_string(),
            WValue::U32(2),
        ),
        (
            "tokenizer.ggml.add_bos_token".to_string(),
            WValue::Bool(true),
        ),
        (
            "tokenizer.ggml.add_eos_token".to_string(),
            WValue::Bool(false),
        ),
        (
            "tokenizer.chat_template".to_string(),
            WValue::Str(template.into()),
        ),
    ];
    write(&metadata, &[])
}

#[test]
fn sentencepiece_ids_equal_the_sentencepiece_package() {
    let file = llama_style_gguf();
    let gguf = Gguf::parse(&file).expect("GGUF parses");
    let tokenizer = Tokenizer::from_gguf(&gguf).expect("tokenizer");
    assert_eq!(tokenizer.model(), TokenizerModel::SentencePiece);
    assert!(tokenizer.adds_bos());
    let mut cases = 0;
    for line in include_str!("tokenizer_data/spm_reference.txt").lines() {
        let (hex, ids) = line.split_once('\t').unwrap();
        let text = String::from_utf8(unhex(hex)).unwrap();
        let expected: Vec<u32> = ids.split_whitespace().map(|i| i.parse().unwrap()).collect();
        let ids = tokenizer.encode(&text, true, false).unwrap();
        assert_eq!(ids, expected, "ids for {text:?}");
        assert_eq!(tokenizer.decode_to_string(&ids, false), text, "round trip");
        cases += 1;
    }
    assert_eq!(cases, 11);
}

#[test]
fn zephyr_prompt_parses_eos_and_streams_back() {
    let file = llama_style_gguf();
    let gguf = Gguf::parse(&file).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let template = ChatTemplate::from_gguf(&gguf);
    assert_eq!(template, ChatTemplate::zephyr());
    let prompt = template.apply(&[Message::user("Write a C function.")], true);
    assert_eq!(prompt, "<|user|>\nWrite a C function.</s>\n<|assistant|>\n");
    let ids = tokenizer.encode(&prompt, true, true).unwrap();
    assert_eq!(ids[0], 1, "BOS");
    assert_eq!(
        ids.iter().filter(|&&id| id == 2).count(),
        1,
        "</s> became EOS"
    );
    // `<|user|>` is text in Llama 2 vocabularies (not a special token).
    let ids_plain = tokenizer.encode(&prompt, true, false).unwrap();
    assert!(!ids_plain[1..].contains(&2));
    assert_eq!(tokenizer.decode_to_string(&ids_plain, false), prompt);
    // Streaming decode of byte-fallback tokens gives whole characters.
    let text = "日本語 😀 naïve";
    let ids = tokenizer.encode(text, false, false).unwrap();
    assert!(
        ids.len() > text.chars().count(),
        "byte fallback splits characters"
    );
    let mut stream = StreamDecoder::new();
    let mut out = String::new();
    for &id in &ids {
        let piece = stream.push(tokenizer.piece(id));
        assert!(!piece.contains('\u{FFFD}'));
        out.push_str(piece);
    }
    out.push_str(stream.finish());
    assert_eq!(out.trim_start(), text);
}
