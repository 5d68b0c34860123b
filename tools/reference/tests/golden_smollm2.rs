//! Golden tests: the engine (`llm`, host build) against candle on SmolLM2-135M-Instruct Q4_1,
//! both run live (no stored golden files to go stale).
//!
//! What is compared, and why this way: the two implementations quantize activations to 8 bits
//! before every matrix product (identically, to the same integers), but scale the integer
//! block sums differently: candle in f32 with a rounding after every operation, the engine in
//! exact fixed point with one rounding per row (`llm::kernels::fixed`, the fast path under
//! QEMU). A last-bit difference anywhere (that, or candle's attention through `gemm` with its
//! own summation order) can flip one activation's rounding and move logits by a few tenths:
//! teacher-forced, they differ by up to ~1.5 (of logits spanning about -10..35). Free-running
//! greedy decoding therefore follows candle exactly until the first step where candle's own
//! two best logits are within `TIE_MARGIN` (TOOLCHAIN.md notes candle and llama.cpp part ways at
//! such a step too; on its prompt the engine picks " takes" over " returns" at step 6, where
//! candle's margin is 0.14).
//!
//! So for each prompt, 64 generated tokens:
//! 1. teacher-forced along candle's greedy sequence: at every step, the max |logit difference|
//!    over the vocabulary is at most `LOGIT_TOLERANCE`, and the engine's argmax equals candle's
//!    token wherever candle's top-2 margin is at least `TIE_MARGIN`;
//! 2. free-running: the engine's own greedy tokens equal candle's for all 64 tokens, or up to
//!    the first near-tie step of candle's run (reported).

use std::path::PathBuf;

use llm::parallel::ThreadScope;
use llm::{argmax, Model};
use reference::Reference;

/// Largest allowed |engine - candle| of any logit at any step (logits span about -10..35).
const LOGIT_TOLERANCE: f32 = 2.0;
/// candle top-2 margin under which a step counts as a near-tie.
const TIE_MARGIN: f32 = 0.5;
/// Tokens generated per prompt.
const GENERATE: usize = 64;

fn model_path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "the default model is required at {} (run `cargo xtask` to fetch it)",
        p.display()
    );
    p
}

/// Token-id prompts (ChatML, from SmolLM2's tokenizer): the TOOLCHAIN.md prompt and others.
fn prompts() -> Vec<Vec<u32>> {
    vec![
        // <|im_start|>user\nWrite a C function that returns the larger of two integers.<|im_end|>\n<|im_start|>assistant\n
        vec![
            1, 4093, 198, 19161, 253, 340, 1517, 338, 6765, 260, 3227, 282, 827, 23313, 30, 2, 198,
            1, 520, 9531, 198,
        ],
        // A plain-text start: "The" ... (raw continuation, no template)
        vec![504, 3458, 282, 4649, 314],
        // A single BOS-like start token.
        vec![1],
    ]
}

fn margin(logits: &[f32]) -> f32 {
    let mut v = logits.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    v[0] - v[1]
}

#[test]
fn engine_matches_candle_greedy_and_logits() {
    let path = model_path();
    let bytes = std::fs::read(&path).expect("read model");
    let model = Model::load(&bytes, &mut |_| {}).expect("engine loads SmolLM2");
    let mut reference = Reference::load(&path).expect("candle loads SmolLM2");
    let par = ThreadScope { workers: 2 };
    let mut session = model.session(256).expect("session");

    for prompt in prompts() {
        let golden = reference.greedy(&prompt, GENERATE).expect("candle runs");
        let first_tie = (0..GENERATE).find(|&i| margin(&golden.logits[i]) < TIE_MARGIN);

        // 1. Teacher-forced along candle's tokens.
        session.reset();
        let mut logits: Vec<f32> = Vec::new();
        for (pos, &t) in prompt.iter().enumerate() {
            logits = session.forward(t, pos, &par).expect("forward").to_vec();
        }
        let mut worst = 0f32;
        for step in 0..GENERATE {
            let diff = logits
                .iter()
                .zip(&golden.logits[step])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            worst = worst.max(diff);
            assert!(
                diff <= LOGIT_TOLERANCE,
                "prompt {prompt:?} step {step}: logits differ by {diff} (> {LOGIT_TOLERANCE})"
            );
            if margin(&golden.logits[step]) >= TIE_MARGIN {
                assert_eq!(
                    argmax(&logits) as u32,
                    golden.tokens[step],
                    "prompt {prompt:?} step {step}: clear argmax differs"
                );
            }
            if step + 1 < GENERATE {
                let pos = prompt.len() + step;
                logits = session
                    .forward(golden.tokens[step], pos, &par)
                    .expect("forward")
                    .to_vec();
            }
        }

        // 2. Free-running greedy.
        session.reset();
        for (pos, &t) in prompt.iter().enumerate() {
            logits = session.forward(t, pos, &par).expect("forward").to_vec();
        }
        let mut tokens = Vec::new();
        for step in 0..GENERATE {
            let next = argmax(&logits) as u32;
            tokens.push(next);
            if step + 1 < GENERATE {
                logits = session
                    .forward(next, prompt.len() + step, &par)
                    .expect("forward")
                    .to_vec();
            }
        }
        let agree = tokens
            .iter()
            .zip(&golden.tokens)
            .take_while(|(a, b)| a == b)
            .count();
        eprintln!(
            "prompt of {} tokens: max logit difference {worst}, greedy agrees for {agree}/{GENERATE} \
             tokens, candle's first near-tie at step {first_tie:?}",
            prompt.len()
        );
        let required = first_tie.map_or(GENERATE, |t| t + 1).min(GENERATE);
        assert!(
            agree >= required,
            "prompt {prompt:?}: greedy tokens agree for {agree}, need {required}\n engine {tokens:?}\n candle {:?}",
            golden.tokens
        );
    }
}
