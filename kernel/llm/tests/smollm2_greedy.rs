//! End-to-end: the engine reproduces the greedy continuation that candle 0.11 and llama.cpp
//! both give for the TOOLCHAIN.md ChatML prompt on SmolLM2-135M-Instruct Q4_1 (29 tokens:
//! "Here's a C function that returns the larger of two integers:\n\n```c\n#include
//! <stdint.h>\n\nint"). Runs with whichever kernels the target has (portable on x86-64, NEON on
//! AArch64, e.g. under qemu-aarch64), so it checks the NEON path on the whole model too.

mod common;

use llm::{argmax, Model, Parallel, Sequential};

/// Two host threads per parallel region (the kernel's own `Parallel` runs over its cores).
struct TwoThreads;

impl Parallel for TwoThreads {
    fn workers(&self) -> usize {
        2
    }
    fn run(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        std::thread::scope(|s| {
            s.spawn(|| f(1, 2));
            f(0, 2);
        });
    }
}

const PROMPT: [u32; 21] = [
    1, 4093, 198, 19161, 253, 340, 1517, 338, 6765, 260, 3227, 282, 827, 23313, 30, 2, 198, 1, 520,
    9531, 198,
];
const CONTINUATION: [u32; 29] = [
    4590, 506, 253, 340, 1517, 338, 6765, 260, 3227, 282, 827, 23313, 42, 198, 198, 3725, 83, 198,
    19, 21745, 2067, 10491, 591, 30, 88, 46, 198, 198, 591,
];

#[test]
fn greedy_continuation_matches_the_references() {
    let bytes = common::smollm2_bytes();
    let mut progress_calls = 0;
    let model = Model::load(&bytes, &mut |p| {
        assert!(p.done <= p.total);
        progress_calls += 1;
    })
    .expect("load");
    assert_eq!(progress_calls, 3 + 9 * 30);
    let c = model.config();
    assert_eq!(
        (c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim),
        (576, 30, 9, 3, 1536)
    );
    assert_eq!((c.vocab_size, c.head_dim, c.kv_dim), (49152, 64, 192));
    assert!(c.tied_embeddings);
    assert_eq!(c.rope_theta, 100000.0);
    // Weights used in place: everything but the file's header and tables.
    assert!(model.weight_bytes() > 96_000_000 && model.weight_bytes() < bytes.len());

    let context = 64;
    let mut session = model.session(context).expect("session");
    // KV cache sized by the requested context: 2 x layers x ctx x kv_dim x 4 bytes.
    assert_eq!(session.kv_cache_bytes(), 2 * 30 * context * 192 * 4);
    let par = TwoThreads;
    let mut logits = Vec::new();
    let mut logits_at_2 = Vec::new();
    for (pos, &t) in PROMPT.iter().enumerate() {
        logits = session.forward(t, pos, &par).expect("forward").to_vec();
        if pos == 2 {
            logits_at_2 = logits.clone();
        }
    }
    // Teacher-forced along the references' continuation: at each step the reference token
    // must be the engine's argmax, or within TIE_GAP of it. Greedy decoding of this model is
    // sensitive at near-ties (candle and llama.cpp themselves part ways after these 29 tokens),
    // and any change in float summation order (NEON vs portable, candle's gemm) moves logits
    // by up to ~1.5 after activation re-quantization, so exact argmax is required only where
    // the engine's own top-2 margin is clear.
    const TIE_GAP: f32 = 1.0;
    let mut exact = 0;
    // 13 steps ("Here's a C function that returns the larger of two integers:") keep the
    // unoptimised `cargo test` short; the reference crate's golden test runs 64 tokens.
    let steps = if cfg!(debug_assertions) {
        13
    } else {
        CONTINUATION.len()
    };
    for (i, &expected) in CONTINUATION.iter().enumerate().take(steps) {
        let best = argmax(&logits);
        let gap = logits[best] - logits[expected as usize];
        eprintln!("step {i}: expected {expected} got {best} gap {gap}");
        assert!(
            gap <= TIE_GAP,
            "step {i}: reference token {expected} is {gap} below the argmax {best}"
        );
        if best as u32 == expected {
            exact += 1;
        }
        logits = session
            .forward(expected, PROMPT.len() + i, &par)
            .expect("forward")
            .to_vec();
    }
    eprintln!("{exact}/{steps} steps with the exact argmax");
    assert!(exact + 2 >= steps);

    // reset() starts a new conversation: the same logits come out again (sequentially: rows
    // are computed the same way whatever the worker split, so they are bit-identical).
    session.reset();
    let mut again = Vec::new();
    for (pos, &t) in PROMPT.iter().enumerate().take(3) {
        again = session
            .forward(t, pos, &Sequential)
            .expect("forward")
            .to_vec();
    }
    assert_eq!(again, logits_at_2);

    // Out-of-range inputs are typed errors, not panics.
    assert!(matches!(
        session.forward(49152, 0, &Sequential),
        Err(llm::ModelError::TokenOutOfRange { token: 49152, .. })
    ));
    assert!(matches!(
        session.forward(1, context, &Sequential),
        Err(llm::ModelError::ContextFull { .. })
    ));
}
