//! In-kernel inference engine: GGUF, tokenizers, quantized kernels, Llama forward pass, sampling, grammar-constrained decoding

#![cfg_attr(not(test), no_std)]
