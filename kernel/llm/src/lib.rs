//! In-kernel inference engine: GGUF, tokenizers, quantized kernels, Llama forward pass,
//! sampling, grammar-constrained decoding.
//!
//! no_std + alloc, tested on the host. The numeric half (GGUF, tensor types, kernels, model,
//! parallel) and the text half (tokenizers, chat templates, sampling, grammar) live side by
//! side; this file only declares modules and re-exports the public API.

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

pub use gguf::{Gguf, GgufError, TensorInfo, Value, ValueType};
pub use quant::GgmlType;
pub mod kernels;
pub mod model;
pub mod parallel;
pub mod tokenizer;

pub use model::{argmax, Config, Model, ModelError, Progress, Session};
pub use parallel::{Parallel, Sequential};
