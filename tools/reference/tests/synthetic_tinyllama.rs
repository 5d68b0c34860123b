//! candle and the engine on the synthetic TinyLlama-structured GGUF (tools/gguf_synth, the
//! 2-layer variant: same tensor names, Q4_K/Q6_K mix, GQA 8:1, 32 000-token SentencePiece
//! vocabulary; the full 1.1B size is exercised by `gguf_synth` + the bench, too slow here).
//!
//! This checks the k-quant kernels (Q4_K, Q6_K with Q8_K activations), untied output and GQA
//! against candle: logits within `LOGIT_TOLERANCE` at every step of a 32-token greedy run
//! (teacher-forced along candle's tokens) and identical greedy tokens up to the first step
//! where candle's own top-2 margin is below `TIE_MARGIN` (random weights give flat logits).

use gguf_synth::{synthesize, SynthConfig};
use llm::{argmax, Model, Sequential};
use reference::Reference;

/// Largest allowed |engine - candle| of any logit.
const LOGIT_TOLERANCE: f32 = 0.05;
/// candle top-2 margin under which a step counts as a near-tie.
const TIE_MARGIN: f32 = 0.01;
const GENERATE: usize = 32;

#[test]
fn engine_matches_candle_on_synthetic_tinyllama() {
    let file = synthesize(&SynthConfig::small());
    let path = std::env::temp_dir().join(format!("anneal-synth-{}.gguf", std::process::id()));
    std::fs::write(&path, &file).expect("write temp model");
    let mut reference = Reference::load(&path).expect("candle loads the synthetic file");
    let _ = std::fs::remove_file(&path);
    let model = Model::load(&file, &mut |_| {}).expect("engine loads it");
    let mut session = model.session(64).expect("session");

    let prompt = [1u32, 450, 4996, 17354, 1701];
    let golden = reference.greedy(&prompt, GENERATE).expect("candle runs");
    let mut logits = Vec::new();
    for (pos, &t) in prompt.iter().enumerate() {
        logits = session
            .forward(t, pos, &Sequential)
            .expect("forward")
            .to_vec();
    }
    let mut worst = 0f32;
    let mut agree = 0;
    let mut diverged = false;
    for step in 0..GENERATE {
        let diff = logits
            .iter()
            .zip(&golden.logits[step])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
        assert!(
            diff <= LOGIT_TOLERANCE,
            "step {step}: logits differ by {diff}"
        );
        let mut sorted = golden.logits[step].clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let clear = sorted[0] - sorted[1] >= TIE_MARGIN;
        if argmax(&logits) as u32 != golden.tokens[step] {
            assert!(
                !clear,
                "step {step}: argmax differs where candle's margin is clear"
            );
            diverged = true;
        } else if !diverged {
            agree += 1;
        }
        let pos = prompt.len() + step;
        logits = session
            .forward(golden.tokens[step], pos, &Sequential)
            .expect("forward")
            .to_vec();
    }
    eprintln!(
        "synthetic TinyLlama: max logit difference {worst}, greedy agrees for {agree}/{GENERATE}"
    );
}
