//! Synthetic GGUF files with TinyLlama-1.1B-Chat's exact layout and random weights.
//!
//! The real TinyLlama-1.1B-Chat-v1.0 Q4_K_M file cannot be downloaded here, so this writes one
//! with the same tensor names, shapes and types and the same metadata keys, filled with
//! weights from a seeded PRNG and a Llama-2-style SentencePiece vocabulary. It proves loading,
//! memory use and speed at that scale; the text it generates is of course meaningless.
//!
//! Type mix (llama.cpp's Q4_K_M rules for a 22-layer Llama): every matrix Q4_K, except
//! `output.weight` (Q6_K) and, in the layers picked by llama.cpp's `use_more_bits`
//! (`i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2`: layers 0, 1, 4, 7, 10, 13, 16, 19, 20, 21),
//! `attn_v` and `ffn_down` (Q6_K); norms F32. `token_embd.weight` is Q4_K.
//!
//! Vocabulary: `<unk>`, `<s>`, `</s>` (ids 0-2, unknown/control), the 256 byte-fallback tokens
//! `<0x00>`..`<0xFF>` (ids 3-258, type BYTE), then ordinary pieces (type NORMAL) with
//! SentencePiece's `▁` word marker: printable ASCII characters, then letter pairs and triples
//! with and without `▁`, scores decreasing with the id like a real SentencePiece model.

use llm::gguf::writer::{write, WTensor, WValue};
use llm::quant::quantize_row;
use llm::GgmlType;

/// Shape of the synthetic model.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Transformer blocks.
    pub layers: usize,
    /// Embedding width (a multiple of 256 for the k-quants).
    pub dim: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// MLP width (a multiple of 256).
    pub ffn: usize,
    /// Vocabulary size (at least 259 + 95).
    pub vocab: usize,
    /// Trained context written to metadata.
    pub context: usize,
    /// PRNG seed.
    pub seed: u64,
}

impl SynthConfig {
    /// TinyLlama-1.1B-Chat-v1.0's exact shape.
    pub fn tinyllama() -> SynthConfig {
        SynthConfig {
            layers: 22,
            dim: 2048,
            heads: 32,
            kv_heads: 4,
            ffn: 5632,
            vocab: 32000,
            context: 2048,
            seed: 1,
        }
    }

    /// A small model with the same structure (GQA 8:1, k-quant mix, full vocabulary) for
    /// tests: 2 layers, width 256, 8 heads of 32, MLP 512.
    pub fn small() -> SynthConfig {
        SynthConfig {
            layers: 2,
            dim: 256,
            heads: 8,
            kv_heads: 1,
            ffn: 512,
            vocab: 32000,
            context: 2048,
            seed: 1,
        }
    }
}

/// llama.cpp's choice of layers that get more bits in the "_M" k-quant mixes.
pub fn use_more_bits(layer: usize, layers: usize) -> bool {
    layer < layers / 8
        || layer >= 7 * layers / 8
        || (layer >= layers / 8 && (layer - layers / 8) % 3 == 2)
}

/// SplitMix64: small, seeded, good enough for test weights.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale).
    fn uniform(&mut self, scale: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}

/// The vocabulary: (piece, score, token type) for every id.
pub fn vocabulary(size: usize) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let mut pieces: Vec<String> = Vec::new();
    pieces.push("▁".into());
    for c in 0x21u8..0x7f {
        pieces.push((c as char).to_string());
    }
    let letters: Vec<char> = ('a'..='z').collect();
    for &a in &letters {
        pieces.push(format!("▁{a}"));
    }
    for &a in &letters {
        for &b in &letters {
            pieces.push(format!("{a}{b}"));
            pieces.push(format!("▁{a}{b}"));
        }
    }
    'outer: for &a in &letters {
        for &b in &letters {
            for &c in &letters {
                pieces.push(format!("▁{a}{b}{c}"));
                pieces.push(format!("{a}{b}{c}"));
                if tokens.len() + pieces.len() >= size {
                    break 'outer;
                }
            }
        }
    }
    for p in pieces.into_iter().take(size.saturating_sub(tokens.len())) {
        tokens.push(p);
        types.push(1);
    }
    let scores = (0..tokens.len())
        .map(|i| if types[i] == 1 { -(i as f32) } else { 0.0 })
        .collect();
    (tokens, scores, types)
}

/// Builds the whole file in memory.
pub fn synthesize(c: &SynthConfig) -> Vec<u8> {
    let head_dim = c.dim / c.heads;
    let kv_dim = c.kv_heads * head_dim;
    let (tokens, scores, types) = vocabulary(c.vocab);
    let s = |v: &str| WValue::Str(v.into());
    let metadata: Vec<(String, WValue)> = vec![
        ("general.architecture".into(), s("llama")),
        ("general.name".into(), s("synthetic tinyllama_tinyllama-1.1b-chat-v1.0 (random weights)")),
        ("general.file_type".into(), WValue::U32(15)), // LLAMA_FTYPE_MOSTLY_Q4_K_M
        ("general.quantization_version".into(), WValue::U32(2)),
        ("llama.context_length".into(), WValue::U32(c.context as u32)),
        ("llama.embedding_length".into(), WValue::U32(c.dim as u32)),
        ("llama.block_count".into(), WValue::U32(c.layers as u32)),
        ("llama.feed_forward_length".into(), WValue::U32(c.ffn as u32)),
        ("llama.rope.dimension_count".into(), WValue::U32(head_dim as u32)),
        ("llama.attention.head_count".into(), WValue::U32(c.heads as u32)),
        ("llama.attention.head_count_kv".into(), WValue::U32(c.kv_heads as u32)),
        ("llama.attention.layer_norm_rms_epsilon".into(), WValue::F32(1e-5)),
        ("llama.rope.freq_base".into(), WValue::F32(10000.0)),
        ("tokenizer.ggml.model".into(), s("llama")),
        ("tokenizer.ggml.tokens".into(), WValue::ArrStr(tokens)),
        ("tokenizer.ggml.scores".into(), WValue::ArrF32(scores)),
        ("tokenizer.ggml.token_type".into(), WValue::ArrI32(types)),
        ("tokenizer.ggml.bos_token_id".into(), WValue::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), WValue::U32(2)),
        ("tokenizer.ggml.unknown_token_id".into(), WValue::U32(0)),
        ("tokenizer.ggml.padding_token_id".into(), WValue::U32(2)),
        ("tokenizer.ggml.add_bos_token".into(), WValue::Bool(true)),
        ("tokenizer.ggml.add_eos_token".into(), WValue::Bool(false)),
        (
            "tokenizer.chat_template".into(),
            s("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"),
        ),
    ];

    let mut rng = Rng(c.seed);
    // Weight scale ~ 1/sqrt(fan_in) keeps activations O(1) through the layers.
    let mut matrix = |name: String, rows: usize, cols: usize, ty: GgmlType| -> WTensor {
        let scale = 1.0 / (cols as f32).sqrt() * 1.7;
        let mut data = Vec::with_capacity(ty.row_bytes(cols).unwrap_or(0) * rows);
        let mut row = vec![0f32; cols];
        for _ in 0..rows {
            for v in row.iter_mut() {
                *v = rng.uniform(scale);
            }
            quantize_row(ty, &row, &mut data);
        }
        WTensor {
            name,
            dims: vec![cols as u64, rows as u64],
            ggml_type: ty,
            data,
        }
    };
    let norm = |name: String, len: usize| WTensor {
        name,
        dims: vec![len as u64],
        ggml_type: GgmlType::F32,
        data: (0..len).flat_map(|_| 1.0f32.to_le_bytes()).collect(),
    };
    let mut tensors = Vec::new();
    tensors.push(matrix(
        "token_embd.weight".into(),
        c.vocab,
        c.dim,
        GgmlType::Q4_K,
    ));
    for l in 0..c.layers {
        let more = use_more_bits(l, c.layers);
        let hi = if more { GgmlType::Q6_K } else { GgmlType::Q4_K };
        tensors.push(norm(format!("blk.{l}.attn_norm.weight"), c.dim));
        tensors.push(matrix(
            format!("blk.{l}.attn_q.weight"),
            c.dim,
            c.dim,
            GgmlType::Q4_K,
        ));
        tensors.push(matrix(
            format!("blk.{l}.attn_k.weight"),
            kv_dim,
            c.dim,
            GgmlType::Q4_K,
        ));
        tensors.push(matrix(format!("blk.{l}.attn_v.weight"), kv_dim, c.dim, hi));
        tensors.push(matrix(
            format!("blk.{l}.attn_output.weight"),
            c.dim,
            c.dim,
            GgmlType::Q4_K,
        ));
        tensors.push(norm(format!("blk.{l}.ffn_norm.weight"), c.dim));
        tensors.push(matrix(
            format!("blk.{l}.ffn_gate.weight"),
            c.ffn,
            c.dim,
            GgmlType::Q4_K,
        ));
        tensors.push(matrix(
            format!("blk.{l}.ffn_up.weight"),
            c.ffn,
            c.dim,
            GgmlType::Q4_K,
        ));
        tensors.push(matrix(format!("blk.{l}.ffn_down.weight"), c.dim, c.ffn, hi));
    }
    tensors.push(norm("output_norm.weight".into(), c.dim));
    tensors.push(matrix(
        "output.weight".into(),
        c.vocab,
        c.dim,
        GgmlType::Q6_K,
    ));
    write(&metadata, &tensors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm::{Gguf, Model};

    #[test]
    fn more_bits_layers_match_llama_cpp_for_22_layers() {
        let picked: Vec<usize> = (0..22).filter(|&l| use_more_bits(l, 22)).collect();
        assert_eq!(picked, vec![0, 1, 4, 7, 10, 13, 16, 19, 20, 21]);
        // 32 layers (Llama-2-7B): first 4, last 4, every third in between.
        let picked: Vec<usize> = (0..32).filter(|&l| use_more_bits(l, 32)).collect();
        assert_eq!(
            picked,
            vec![0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
        );
    }

    #[test]
    fn vocabulary_is_llama2_style() {
        let (tokens, scores, types) = vocabulary(32000);
        assert_eq!(tokens.len(), 32000);
        assert_eq!(
            (tokens[0].as_str(), tokens[1].as_str(), tokens[2].as_str()),
            ("<unk>", "<s>", "</s>")
        );
        assert_eq!(tokens[3], "<0x00>");
        assert_eq!(tokens[258], "<0xFF>");
        assert!(types[3..259].iter().all(|&t| t == 6));
        assert_eq!(tokens[259], "▁");
        let mut sorted = tokens.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 32000, "pieces are unique");
        assert!(scores[300] > scores[301]);
    }

    #[test]
    fn small_model_has_the_tinyllama_structure_and_loads() {
        let c = SynthConfig::small();
        let file = synthesize(&c);
        let g = Gguf::parse(&file).expect("parses");
        assert_eq!(g.tensors().len(), 3 + 9 * c.layers);
        assert_eq!(g.get_str("tokenizer.ggml.model").unwrap(), "llama");
        assert_eq!(
            g.get_array_str("tokenizer.ggml.tokens").unwrap().count(),
            32000
        );
        assert_eq!(
            g.require_tensor("output.weight").unwrap().ggml_type,
            GgmlType::Q6_K
        );
        assert_eq!(
            g.require_tensor("token_embd.weight").unwrap().ggml_type,
            GgmlType::Q4_K
        );
        // Two layers: n/8 = 0, 7n/8 = 1, so only layer 1 gets the Q6_K attn_v/ffn_down.
        assert_eq!(
            g.require_tensor("blk.0.attn_v.weight").unwrap().ggml_type,
            GgmlType::Q4_K
        );
        assert_eq!(
            g.require_tensor("blk.1.attn_v.weight").unwrap().ggml_type,
            GgmlType::Q6_K
        );
        assert_eq!(
            g.require_tensor("blk.1.ffn_down.weight").unwrap().ggml_type,
            GgmlType::Q6_K
        );
        assert_eq!(
            g.require_tensor("blk.1.attn_q.weight").unwrap().ggml_type,
            GgmlType::Q4_K
        );
        let model = Model::load(&file, &mut |_| {}).expect("engine loads it");
        let cfg = model.config();
        assert_eq!(
            (cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim),
            (256, 8, 1, 32)
        );
        assert!(!cfg.tied_embeddings);
        let mut s = model.session(16).unwrap();
        let logits = s.forward(1, 0, &llm::Sequential).unwrap();
        assert!(logits.iter().all(|v| v.is_finite()));
        let spread = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
            - logits.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        assert!(
            spread > 1.0,
            "random weights still give distinct logits ({spread})"
        );
    }
}
