//! Cost of the grammar mask per token (and tokenizer throughput) on a real vocabulary:
//! `cargo run --release -p llm --example grammar_mask_bench -- [MODEL.gguf] [--json]`.
//!
//! Loads the tokenizer from the GGUF file (default: the SmolLM2 model in models/cache), times
//! encode/decode of ~16 KB of grammar text, builds the vocabulary trie, then for several
//! grammar states (start of output, inside an instruction, inside a comment or string where
//! almost every token is allowed) times `GrammarState::mask` over many repetitions and prints the mean microseconds per mask, the allowed-token count and
//! the number of parse stacks. One line per state; with `--json`, one JSON object per line.

use std::sync::Arc;
use std::time::Instant;

use llm::grammar::{Grammar, GrammarState, EBPF_ASM, WAT};
use llm::sample::TokenMask;
use llm::tokenizer::Tokenizer;
use llm::Gguf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"
            )
            .to_string()
        });
    let file = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2);
    });
    let gguf = Gguf::parse(&file).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2);
    });
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2);
    });
    let started = Instant::now();
    let trie = tokenizer.vocab_trie();
    let trie_ms = started.elapsed().as_secs_f64() * 1e3;
    if !json {
        println!(
            "vocabulary {} tokens ({} KiB), trie {} nodes ({} KiB), built in {trie_ms:.1} ms",
            tokenizer.vocab_size(),
            tokenizer.heap_bytes() / 1024,
            trie.node_count(),
            trie.heap_bytes() / 1024
        );
    }
    // Tokenizer throughput on code-like text (encode with special parsing, then decode).
    let text = include_str!("../src/grammar/wat.gbnf").repeat(4);
    let started = Instant::now();
    let ids = tokenizer.encode(&text, false, true).expect("encodes");
    let encode_us = started.elapsed().as_secs_f64() * 1e6;
    let started = Instant::now();
    let decoded = tokenizer.decode(&ids, true);
    let decode_us = started.elapsed().as_secs_f64() * 1e6;
    assert_eq!(decoded, text.as_bytes());
    if json {
        println!(
            "{{\"bench\":\"tokenizer\",\"bytes\":{},\"tokens\":{},\"encode_mb_s\":{:.2},\"decode_mb_s\":{:.2}}}",
            text.len(),
            ids.len(),
            text.len() as f64 / encode_us,
            text.len() as f64 / decode_us
        );
    } else {
        println!(
            "tokenizer: {} bytes -> {} tokens, encode {:.2} MB/s, decode {:.2} MB/s",
            text.len(),
            ids.len(),
            text.len() as f64 / encode_us,
            text.len() as f64 / decode_us
        );
    }
    let cases: &[(&str, &str, &str)] = &[
        ("ebpf", "start", ""),
        ("ebpf", "after_mnemonic", "ldxw r2, [r1]\nldxw "),
        ("ebpf", "operand", "mov r0, r2\njge r2, r3, "),
        ("ebpf", "comment", "# pick the larger "),
        ("wat", "start", ""),
        ("wat", "func_body", "(module\n  (func $max (param $a i32) (param $b i32) (result i32)\n    local.get $a\n    "),
        ("wat", "string", "(module\n  (import \"env\" \"lo"),
    ];
    let ebpf = Arc::new(Grammar::parse(EBPF_ASM).expect("eBPF grammar"));
    let wat = Arc::new(Grammar::parse(WAT).expect("WAT grammar"));
    let mut mask = TokenMask::new_block_all(tokenizer.vocab_size());
    for &(grammar_name, state_name, prefix) in cases {
        let grammar = if grammar_name == "ebpf" {
            ebpf.clone()
        } else {
            wat.clone()
        };
        let mut state = GrammarState::new(grammar).unwrap();
        state
            .accept_bytes(prefix.as_bytes())
            .expect("prefix is valid");
        // Warm up (buffers grow to size), then time.
        state.mask(&trie, &mut mask).unwrap();
        let repetitions = 200;
        let started = Instant::now();
        for _ in 0..repetitions {
            state.mask(&trie, &mut mask).unwrap();
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / repetitions as f64;
        let allowed = mask.count_allowed();
        if json {
            println!(
                "{{\"bench\":\"grammar_mask\",\"grammar\":\"{grammar_name}\",\"state\":\"{state_name}\",\"vocab\":{},\"us_per_mask\":{micros:.1},\"allowed\":{allowed},\"stacks\":{},\"cached_sets\":{}}}",
                tokenizer.vocab_size(),
                state.stack_count(),
                state.cached_sets()
            );
        } else {
            println!(
                "{grammar_name:5} {state_name:15} {micros:9.1} us/mask  allowed {allowed:6}  stacks {:3}  cached sets {}",
                state.stack_count(),
                state.cached_sets()
            );
        }
    }
}
