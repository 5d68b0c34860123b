//! In-kernel inference engine: GGUF, tokenizers, quantized kernels, Llama forward pass,
//! sampling, grammar-constrained decoding.
//!
//! no_std + alloc, tested on the host. The numeric half (GGUF, tensor types, kernels, model,
//! parallel) and the text half (tokenizers, chat templates, sampling, grammar) live side by
//! side; this file only declares modules and re-exports the public API.
//!
//! # Running a model (what the kernel calls)
//!
//! ```text
//! // The initrd holds the GGUF file; it is parsed and used in place (no copy).
//! let model = llm::Model::load(initrd, &mut |p: llm::Progress| bar(p.done, p.total))?;
//! let c = model.config();            // dim, layers, heads, vocab, rope theta, ...
//! let mut session = model.session(2048)?;  // KV cache for 2048 positions, all buffers now
//! for (pos, &t) in prompt.iter().enumerate() {
//!     let logits: &[f32] = session.forward(t, pos, &cores)?;  // no allocation per token
//! }
//! session.reset();                   // next conversation
//! ```
//!
//! * [`Model::load`]`(&'a [u8], &mut dyn FnMut(Progress))` checks the whole file (every
//!   offset, size, type, shape; typed [`ModelError`]/[`GgufError`] naming the key or tensor).
//! * [`Session::forward`]`(token, pos, &dyn Parallel) -> Result<&[f32]>`: logits `[vocab]`;
//!   positions in order from 0; errors (not panics) for a token outside the vocabulary or a
//!   position past the context.
//! * [`Parallel`]: the kernel implements `run(f)` by calling `f(worker, workers)` on each core
//!   and waiting for all; matrix rows and attention heads are split over the workers.
//!   [`Sequential`] runs on the calling core.
//! * Memory: [`Model::weight_bytes`] (in place, in the initrd), [`Session::memory_bytes`]
//!   (everything the session allocated) and [`Session::kv_cache_bytes`].
//! * Tokenizer and chat template metadata: [`Model::gguf`](Model) gives the parsed file
//!   (`get_str`, `get_u32`, `get_array_str`, ...).
//!
//! Numerics match candle's `quantized_llama` (see `model` and `kernels`); on AArch64 every
//! quantized product uses NEON (`kernels::neon`).

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod chat;
pub mod gguf;
pub mod grammar;
pub mod limits;
pub mod quant;
pub mod sample;
pub mod tokenizer;

pub use gguf::{Gguf, GgufError, TensorInfo, Value, ValueType};
pub use quant::GgmlType;
pub mod kernels;
pub mod model;
pub mod parallel;

pub use model::{argmax, Config, Model, ModelError, Progress, Session};
pub use parallel::{Parallel, Sequential};
