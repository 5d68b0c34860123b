//! Host benchmark of the engine: `cargo run --release -p llm --features std --example bench --
//! MODEL.gguf [--prompt N] [--gen N] [--workers N] [--context N]`.
//!
//! Feeds an N-token prompt (token ids 1.. of the vocabulary, deterministic) and generates
//! greedily, then prints one JSON line: prompt and generation tokens/s, time to first token,
//! weights and session memory. Wall-clock figures on the host; for instruction counts run it
//! under `valgrind --tool=callgrind` with `--gen` varied (the difference divided by the token
//! difference is the per-token cost), or build for aarch64 and disassemble the kernels.

use std::time::Instant;

use llm::parallel::{Parallel, Sequential, ThreadScope};
use llm::{argmax, Model};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: bench MODEL.gguf [--prompt N] [--gen N] [--workers N] [--context N]");
        std::process::exit(2);
    };
    let opt = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} needs a number"))
            })
            .unwrap_or(default)
    };
    let (prompt_len, gen, workers, context) = (
        opt("--prompt", 16),
        opt("--gen", 32),
        opt("--workers", 1),
        opt("--context", 512),
    );
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let t0 = Instant::now();
    let model = Model::load(&bytes, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut session = model.session(context).unwrap_or_else(|e| panic!("{e}"));
    let threads = ThreadScope { workers };
    let par: &dyn Parallel = if workers > 1 { &threads } else { &Sequential };
    let vocab = model.config().vocab_size as u32;
    let prompt: Vec<u32> = (0..prompt_len as u32)
        .map(|i| 1 + (i * 7919) % (vocab - 1))
        .collect();

    let t0 = Instant::now();
    let mut next = 0u32;
    for (index, batch) in prompt.chunks(llm::limits::MAX_BATCH).enumerate() {
        next = argmax(
            session
                .forward_batch(batch, index * llm::limits::MAX_BATCH, par)
                .unwrap_or_else(|e| panic!("{e}")),
        ) as u32;
    }
    let prompt_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut generated = vec![next];
    for i in 0..gen {
        let pos = prompt_len + i;
        next = argmax(
            session
                .forward(next, pos, par)
                .unwrap_or_else(|e| panic!("{e}")),
        ) as u32;
        generated.push(next);
    }
    let gen_s = t1.elapsed().as_secs_f64();
    println!(
        "{{\"model\":\"{}\",\"workers\":{},\"load_ms\":{:.1},\"prompt_tokens\":{},\"prompt_tok_s\":{:.2},\
         \"ttft_ms\":{:.1},\"gen_tokens\":{},\"gen_tok_s\":{:.2},\"weights_bytes\":{},\
         \"session_bytes\":{},\"kv_cache_bytes\":{},\"prompt\":{:?},\"greedy\":{:?}}}",
        path,
        workers,
        load_ms,
        prompt_len,
        prompt_len as f64 / prompt_s,
        prompt_s * 1e3,
        gen,
        gen as f64 / gen_s.max(1e-9),
        model.weight_bytes(),
        session.memory_bytes(),
        session.kv_cache_bytes(),
        prompt,
        generated
    );
}
