//! Static limits of the kernel's inference service, each with the reason for its number.
//!
//! The engine's own limits (largest tensor, context, vocabulary a file may declare) live in
//! `llm::limits`; these are the choices the console service makes for a user at the shell.

/// KV-cache length (positions) of the console's session. A SmolLM2 conversation turn (chat
/// template + question + answer) fits in well under 1 024 tokens, and the f32 cache costs
/// `2 x layers x kv_dim x 4` bytes per position: 46 KiB for SmolLM2 (45 MiB at 1 024), 44 KiB
/// for TinyLlama (44 MiB). 1 024 keeps the cache small beside the weights while leaving room
/// for long answers; the model's trained 8 192 would cost 360 MiB for nothing at the console.
pub const CONSOLE_CONTEXT: usize = 1024;

/// Tokens `ai` generates unless `--max-tokens` says otherwise. Under QEMU TCG one SmolLM2 token
/// takes about a second of wall time on one core, so 256 bounds an answer to a few minutes
/// while fitting a typical short answer (a small C function is ~150 tokens).
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// Largest `--max-tokens` accepted: everything the console context can hold.
pub const MAX_MAX_TOKENS: usize = CONSOLE_CONTEXT;

/// The boot progress bar's width in characters (fits an 80-column console with its label).
pub const PROGRESS_BAR_WIDTH: usize = 40;

/// Percent steps between progress-bar redraws: 20 redraws of one short line, so the bar costs
/// nothing next to the check even over a slow serial line.
pub const PROGRESS_REDRAW_PERCENT: usize = 5;
