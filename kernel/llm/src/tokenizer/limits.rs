//! Static limits of the tokenizers, each with the reason for its number.
//!
//! Vocabulary data comes from a GGUF file (hostile input until checked) and text to encode from
//! the console, so every size that drives an allocation is bounded here.

/// Largest vocabulary accepted. Real ones: 32 000 (Llama 2), 49 152 (SmolLM2), 128 256
/// (Llama 3), 256 000 (Gemma). 1 Mi ids bounds the tables (~tens of MiB at worst) and keeps ids
/// comfortably inside `u32`.
pub const MAX_VOCAB: usize = 1 << 20;

/// Longest single token text in bytes. Real vocabularies top out around 128-256 bytes (runs of
/// spaces or dashes); 4 KiB rejects corrupt entries without refusing odd but real vocabularies.
pub const MAX_TOKEN_TEXT: usize = 4096;

/// Longest text one `encode` call accepts, in bytes. A prompt for a model with an 8 Ki context is
/// at most ~40 KiB of text; 1 MiB leaves room for documents while bounding the per-call buffers
/// (symbols and merge heap grow linearly with it).
pub const MAX_ENCODE_TEXT: usize = 1 << 20;
