//! The GGUF parser on the real default model: facts from TOOLCHAIN.md (checked with candle and
//! llama.cpp).

mod common;

use llm::{GgmlType, Gguf};

#[test]
fn smollm2_header_metadata_and_tensor_table() {
    let file = common::smollm2_bytes();
    let g = Gguf::parse(&file).expect("SmolLM2 parses");
    assert_eq!(g.version, 3);
    assert_eq!(g.metadata().len(), 33);
    assert_eq!(g.tensors().len(), 272);
    assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(g.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(g.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(g.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(g.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(g.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(g.get_f32("llama.rope.freq_base").unwrap(), 100000.0);
    assert_eq!(g.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(g.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    assert!(!g.get_bool("tokenizer.ggml.add_bos_token").unwrap());
    assert_eq!(g.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 2);
    let tokens: Vec<&str> = g.get_array_str("tokenizer.ggml.tokens").unwrap().collect();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens[1], "<|im_start|>");
    assert_eq!(tokens[2], "<|im_end|>");
    assert!(g.get_array_str("tokenizer.ggml.merges").unwrap().count() > 40_000);
    assert!(g
        .get_str("tokenizer.chat_template")
        .unwrap()
        .contains("im_start"));

    let embd = g.require_tensor("token_embd.weight").unwrap();
    assert_eq!(embd.ggml_type, GgmlType::Q8_0);
    assert_eq!((embd.row_len(), embd.rows()), (576, 49152));
    assert!(g.tensor("output.weight").is_none());
    assert_eq!(
        g.require_tensor("blk.0.attn_q.weight").unwrap().ggml_type,
        GgmlType::Q4_1
    );
    assert_eq!(
        g.require_tensor("blk.29.ffn_down.weight").unwrap().dims[..2],
        [1536, 576]
    );
    assert_eq!(
        g.require_tensor("output_norm.weight").unwrap().ggml_type,
        GgmlType::F32
    );
    // Zero copy: every tensor's bytes lie inside the file buffer.
    let range = file.as_ptr_range();
    for t in g.tensors() {
        assert!(range.contains(&t.data.as_ptr()));
    }
}

#[test]
fn smollm2_truncated_names_a_tensor() {
    let file = common::smollm2_bytes();
    let cut = &file[..file.len() / 2];
    match Gguf::parse(cut) {
        Err(llm::GgufError::TruncatedTensor { name, .. }) => assert!(name.starts_with("blk.")),
        other => panic!("expected TruncatedTensor, got {other:?}"),
    }
}
