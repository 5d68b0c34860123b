//! Static limits of the verifier, each with the reason for its number.
//!
//! The verifier runs inside the kernel on programs the model wrote, so its own time and
//! memory must be bounded whatever the input: every loop in the analysis is capped by one of
//! these numbers, and hitting a cap is a clear rejection, never a hang.

/// Default most instruction slots a program may have. Linux's historical limit
/// (`BPF_MAXINSNS`) and its unprivileged limit is 4096: hook programs the model writes are
/// tens of instructions, and 4096 keeps the worst-case verification time in the tens of
/// milliseconds (see the README's measurements). Callers may raise it per hook.
pub const DEFAULT_MAX_INSNS: usize = 4096;

/// Default most instructions the abstract interpreter may process (states visited), summed
/// over all paths. Linux uses 1 M for privileged programs. 1 M bounds a verification to well
/// under a second on the host and is ample for loops of a few thousand iterations.
pub const DEFAULT_COMPLEXITY_LIMIT: u64 = 1_000_000;

/// Bytes of stack per call frame (RFC 9669; Linux gives every frame 512 bytes too).
pub const STACK_FRAME_SIZE: i64 = ebpf::limits::STACK_FRAME_SIZE as i64;

/// Deepest BPF-to-BPF call chain, frames including the main one: the runtime reserves this
/// many frames, so the verifier must not allow more.
pub const MAX_CALL_DEPTH: usize = ebpf::limits::MAX_CALL_DEPTH;

/// Largest offset range a pointer may carry after arithmetic (Linux's `BPF_MAX_VAR_OFF`,
/// 2^29). Any access must also fall inside its region; this cap only keeps the arithmetic on
/// offsets far from overflow, so the range reasoning stays exact.
pub const MAX_POINTER_OFFSET: i64 = 1 << 29;

/// Most abstract states kept for pruning at one instruction. More states make pruning more
/// likely but every check compares against all of them: 32 keeps the check cheap while loops
/// (which store one state per iteration at the loop head) still find their old states.
pub const MAX_STATES_PER_INSN: usize = 32;

/// Default most abstract states kept for pruning in total. A state is about 1.1 KiB (11
/// registers plus the touched stack slots), so this bounds the kept states near 18 MiB,
/// which the kernel heap can spare for one verification; 4096-instruction programs keep a
/// few thousand (see the README's measurements). Past the cap the analysis still proves
/// safety, it only prunes less (the complexity limit then bounds the time).
pub const MAX_STORED_STATES: usize = 16_384;

/// Default most pending branches (paths waiting on the work list). Each holds a full state
/// (about 1.1 KiB), so this bounds them near 18 MiB, like the kept states.
pub const MAX_PENDING_PATHS: usize = 16_384;

/// States kept at a forward join point before new arrivals are merged (joined) with a
/// finished one. Small enough that a chain of `if`s costs linear time, large enough that
/// the common few-path cases keep their full precision.
pub const MERGE_AFTER_STATES: usize = 4;

/// Largest size a helper's memory-size argument may be proven to stay below (1 MiB). Sizes
/// with a larger (or no) upper bound are rejected before the bounds check, so the check's
/// arithmetic stays small; no region a program can point to is that large.
pub const MAX_HELPER_MEMORY_SIZE: u64 = 1 << 20;
