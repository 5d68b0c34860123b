//! Static limits of the inference engine, each with the reason for its number.
//!
//! The GGUF parser reads hostile input: every count it reads from the file is checked against
//! these limits *before* anything is allocated from it, so a corrupt header cannot make the
//! kernel allocate gigabytes or loop for minutes. The numbers are generous multiples of what
//! real Llama-family files use (SmolLM2: 33 keys, 272 tensors; TinyLlama: ~25 keys, 201 tensors;
//! Llama-2-70B: ~20 keys, 723 tensors).

/// Most tensors a GGUF file may declare. Llama-3-405B has 1 138; 65 536 leaves room for any
/// model that could fit in a board's memory while bounding the tensor table allocation.
pub const MAX_TENSORS: u64 = 65_536;

/// Most metadata key/value pairs. Real files carry 20-50; 65 536 bounds the key table.
pub const MAX_METADATA_KEYS: u64 = 65_536;

/// Most elements of one metadata array. The largest real arrays are vocabularies
/// (tokens/scores/token types: 32 000 for Llama 2, 49 152 for SmolLM2, 256 000 for Gemma) and
/// BPE merge lists (~50 000-280 000): 4 Mi elements covers them all with room to spare.
pub const MAX_ARRAY_LEN: u64 = 4 << 20;

/// Longest metadata string or name in bytes. Chat templates are the longest strings in real
/// files (a few KiB, some Jinja templates ~10 KiB); 1 MiB is generous and still bounded.
pub const MAX_STRING_LEN: u64 = 1 << 20;

/// Longest tensor name in bytes: ggml itself caps names at 64 bytes (GGML_MAX_NAME).
pub const MAX_TENSOR_NAME_LEN: u64 = 256;

/// Most dimensions of one tensor: ggml tensors have at most 4 (GGML_MAX_DIMS).
pub const MAX_TENSOR_DIMS: usize = 4;

/// Largest `general.alignment` accepted. ggml uses 32; a page (64 KiB covers 4/16/64 KiB pages)
/// is the largest alignment anyone has a reason to ask for.
pub const MAX_ALIGNMENT: u64 = 1 << 16;

/// Largest element count of one tensor: 2^40 elements is far beyond any tensor that fits in
/// memory, and keeps every byte-size computation far from u64 overflow.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 40;

/// Largest context (KV cache length in positions) a session may request. 32 Ki positions is
/// 4x TinyLlama's trained context and bounds the KV cache allocation.
pub const MAX_CONTEXT: usize = 32_768;

/// Most parallel workers a `Parallel` implementation may report. The kernel runs one worker
/// per core; 64 covers every AArch64 board we target with a fixed-size per-worker scratch.
pub const MAX_WORKERS: usize = 64;

/// Largest model dimension accepted from metadata (embedding, FFN). Llama-2-70B's FFN is
/// 28 672; 1 Mi bounds every per-layer buffer the run state allocates.
pub const MAX_MODEL_DIM: usize = 1 << 20;

/// Largest layer count accepted from metadata (Llama-3-405B has 126).
pub const MAX_LAYERS: usize = 1024;

/// Largest head count accepted from metadata (Llama-3-405B has 128 query heads).
pub const MAX_HEADS: usize = 1024;

/// Largest vocabulary accepted from metadata (Gemma's 256 000 is the largest in common use).
pub const MAX_VOCAB: usize = 1 << 20;

/// Most tokens one batched forward pass takes (prompt processing, `Session::forward_batch`).
/// The NEON kernels serve four tokens per pass over the weights; eight keeps the batch buffers
/// small (8 x the per-token scratch, ~1 MiB for TinyLlama at a 1024 context) and still halves
/// the number of passes over the weights for a long prompt.
pub const MAX_BATCH: usize = 8;
