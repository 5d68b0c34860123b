//! Host reference inference: candle-core + candle-transformers (`quantized_llama`) run the same
//! GGUF file as the engine, one token at a time, to produce golden greedy tokens and logits.
//!
//! Tokens are fed one by one (not as a batch) so that candle takes the same matrix-vector path
//! for the prompt as for generation; this is the path the engine mirrors. candle is std-only
//! and slow to build (~8 minutes clean): it is the oracle, never the kernel's engine.

use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

/// Errors from loading or running the reference.
#[derive(Debug)]
pub enum ReferenceError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// candle rejected the file or failed during a forward pass.
    Candle(candle_core::Error),
}

impl std::fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReferenceError::Io(e) => write!(f, "reading the model: {e}"),
            ReferenceError::Candle(e) => write!(f, "candle: {e}"),
        }
    }
}

impl std::error::Error for ReferenceError {}

impl From<std::io::Error> for ReferenceError {
    fn from(e: std::io::Error) -> Self {
        ReferenceError::Io(e)
    }
}

impl From<candle_core::Error> for ReferenceError {
    fn from(e: candle_core::Error) -> Self {
        ReferenceError::Candle(e)
    }
}

/// A candle model loaded from a GGUF file.
pub struct Reference {
    model: ModelWeights,
    device: Device,
}

/// The result of a greedy run.
#[derive(Clone, Debug, PartialEq)]
pub struct GreedyRun {
    /// The generated tokens (not including the prompt).
    pub tokens: Vec<u32>,
    /// The logits that chose each generated token (`logits[i]` chose `tokens[i]`).
    pub logits: Vec<Vec<f32>>,
}

impl Reference {
    /// Loads a GGUF file with candle on the CPU.
    pub fn load(path: &Path) -> Result<Reference, ReferenceError> {
        let mut file = std::fs::File::open(path)?;
        let content = gguf_file::Content::read(&mut file)?;
        let device = Device::Cpu;
        let model = ModelWeights::from_gguf(content, &mut file, &device)?;
        Ok(Reference { model, device })
    }

    /// Forgets the conversation (clears candle's KV cache).
    pub fn reset(&mut self) {
        self.model.clear_kv_cache();
    }

    /// Runs one token at `pos` and returns the next-token logits.
    pub fn step(&mut self, token: u32, pos: usize) -> Result<Vec<f32>, ReferenceError> {
        let input = Tensor::new(&[token], &self.device)?.unsqueeze(0)?;
        let logits = self.model.forward(&input, pos)?;
        Ok(logits.squeeze(0)?.to_vec1::<f32>()?)
    }

    /// Feeds `prompt` from position 0, then generates `n` tokens greedily (argmax, first on
    /// ties), returning them with the logits that chose each.
    pub fn greedy(&mut self, prompt: &[u32], n: usize) -> Result<GreedyRun, ReferenceError> {
        self.reset();
        let mut logits = Vec::new();
        for (pos, &t) in prompt.iter().enumerate() {
            logits = self.step(t, pos)?;
        }
        let mut run = GreedyRun {
            tokens: Vec::new(),
            logits: Vec::new(),
        };
        let mut pos = prompt.len();
        for i in 0..n {
            let next = argmax(&logits) as u32;
            run.tokens.push(next);
            run.logits.push(std::mem::take(&mut logits));
            if i + 1 < n {
                logits = self.step(next, pos)?;
                pos += 1;
            }
        }
        Ok(run)
    }
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
