//! Static limits of the portable kernel core, each with the reason for its number.
//!
//! The kernel parses the device tree before it has a heap, so every list it keeps from the tree has
//! a fixed capacity. Input beyond a limit is never a panic: lists report `Full` and the caller either
//! records the overflow (cpus: counted, not kept) or rejects the input with a typed error.

/// Most memory ranges kept from `/memory` nodes. A Raspberry Pi 4 with 8 GiB reports 3-4 ranges
/// and QEMU virt one; 16 leaves room for NUMA-ish boards without costing much stack.
pub const MAX_MEMORY_RANGES: usize = 16;

/// Most reserved ranges (the `/memreserve/` block, `/reserved-memory` children, plus the kernel,
/// the DTB and the initrd that the kernel adds). The Pi 4 tree has 2-3; 32 is generous.
pub const MAX_RESERVED_RANGES: usize = 32;

/// Most CPUs the kernel brings online. Pi 4 has 4, QEMU virt tests use up to 8. CPUs beyond this
/// are counted (so `info` can say "4 online of 12") but not started.
pub const MAX_CPUS: usize = 8;

/// Deepest node nesting accepted in a device tree. Real trees nest 4-6 deep; a corrupt tree that
/// claims more is rejected instead of overflowing the parser's fixed stack.
pub const MAX_DEVICE_TREE_DEPTH: usize = 16;

/// Most `ranges` entries scanned when translating a bus address. The BCM2711 `/soc` node has 3-4.
pub const MAX_RANGES_ENTRIES: usize = 32;

/// Longest console line in bytes. Long enough for any `ai` prompt a person types; longer lines are
/// rejected as a whole (never truncated and then run).
pub const MAX_CONSOLE_LINE: usize = 1024;

/// Capacity of the UART receive ring in bytes. Piped input arrives at emulator speed while a
/// command runs; 4 KiB holds several long lines before the ring drops bytes (and counts them).
pub const RECEIVE_RING_CAPACITY: usize = 4096;

/// Most free ranges the frame allocator tracks. Each free or split adds at most one range; 256
/// ranges cover fragmented use by page tables for tasks without a heap of its own.
pub const MAX_FREE_FRAME_RANGES: usize = 256;

/// Most words a console command line is split into (command plus arguments).
pub const MAX_COMMAND_WORDS: usize = 32;
