//! Static limits of the eBPF runtime, each with the reason for its number.
//!
//! Everything an extension can make the kernel allocate or spend is bounded here, so that a
//! hostile or buggy program (or ELF object) can only fail with an error, never exhaust memory.

/// Bytes of stack per call frame: RFC 9669 and Linux give every frame 512 bytes.
pub const STACK_FRAME_SIZE: usize = 512;

/// Deepest BPF-to-BPF call chain (frames including the main one). Linux allows 8 frames;
/// the same number keeps the whole stack at 4 KiB per running program.
pub const MAX_CALL_DEPTH: usize = 8;

/// Total stack bytes reserved per run: one frame per possible call level.
pub const STACK_SIZE: usize = STACK_FRAME_SIZE * MAX_CALL_DEPTH;

/// Most instruction slots in one program. Linux's limit for unprivileged programs is 4096,
/// privileged 1M; ubpf caps at 65536. 65536 keeps jump targets in 16 bits of reach of most
/// code and the pre-decoded form under 1 MiB.
pub const MAX_PROGRAM_SLOTS: usize = 65_536;

/// Instructions one run may execute unless the caller asks for another budget. Even verified
/// programs run under a budget (defence in depth). 100 M instructions is a few tenths of a
/// second of interpretation: large enough for the benchmark loops (20 M), small enough that a
/// hook cannot stall a core for long.
pub const DEFAULT_INSTRUCTION_BUDGET: u64 = 100_000_000;

/// Highest helper id a helper table can hold. Linux ids in use end near 212; 256 leaves room
/// for project helpers while the table stays one small array.
pub const MAX_HELPER_ID: u32 = 255;

/// Largest key of any map, in bytes (Linux allows 512 for hash keys).
pub const MAX_MAP_KEY_SIZE: u32 = 512;

/// Largest value of any map, in bytes. 64 KiB matches a ring-buffer record cap below and is
/// far above the sizes kernel hooks use.
pub const MAX_MAP_VALUE_SIZE: u32 = 65_536;

/// Most entries of one map. Bounds the memory one map definition can claim.
pub const MAX_MAP_ENTRIES: u32 = 1 << 20;

/// Most bytes one map may preallocate (entries * (key + value) * cpus): 64 MiB, so a map
/// definition in an ELF object cannot ask the kernel for unbounded memory.
pub const MAX_MAP_BYTES: usize = 64 << 20;

/// Most maps one program (or ELF object) may reference.
pub const MAX_MAPS_PER_PROGRAM: usize = 64;

/// Most CPUs a per-CPU map keeps a copy for. The Raspberry Pi 4 has 4 cores, QEMU tests use
/// up to 8.
pub const MAX_CPUS: usize = 8;

/// Longest line `bpf_trace_printk` formats; Linux truncates at a similar size (it uses 1 KiB
/// buffers, output lines are far shorter).
pub const MAX_TRACE_LINE: usize = 256;

/// Largest ELF object the loader accepts (16 MiB): far above any program object.
pub const MAX_ELF_SIZE: usize = 16 << 20;

/// Most source lines the assembler reads (one instruction per line at most two slots).
pub const MAX_ASM_LINES: usize = 2 * MAX_PROGRAM_SLOTS;
