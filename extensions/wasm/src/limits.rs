//! Static limits of the WASM extension host, each with the reason for its number.
//!
//! Every budget a module can ask for in its manifest is clamped by one of these; anything a
//! hostile module or a hostile WAT text can make the host allocate is bounded here too.

/// Most fuel one call may be given. wasmi charges about one unit per basic instruction, so
/// 50 million units is well under a second even on QEMU TCG: a hook must never stall a core
/// longer than that, whatever its manifest asks.
pub const MAX_FUEL_PER_CALL: u64 = 50_000_000;

/// Fuel a module gets when its manifest names none: enough for a policy decision (a few
/// hundred instructions) with two orders of magnitude to spare.
pub const DEFAULT_FUEL_PER_CALL: u64 = 100_000;

/// Most 64 KiB pages of linear memory one module may have (4 MiB). Kernel heap is shared
/// with the model's KV cache; policies and services need kilobytes, not megabytes.
pub const MAX_MEMORY_PAGES: u32 = 64;

/// Pages a module gets when its manifest names none.
pub const DEFAULT_MEMORY_PAGES: u32 = 1;

/// Most table elements (function references) one module may have. Our modules use no
/// tables; a small budget keeps `call_indirect` usable without letting a table eat memory.
pub const MAX_TABLE_ELEMENTS: u32 = 1024;

/// Deepest wasm call nesting. Each wasmi frame costs stack in the interpreter's own value
/// stack (heap), not the kernel stack, but an unbounded recursion must still end as a typed
/// fault quickly: 256 frames is far more than any policy needs.
pub const MAX_CALL_DEPTH: usize = 256;

/// Most bytes of console output one call may produce. Output is buffered and handed to the
/// caller's sink after the call; 16 KiB is a screenful many times over.
pub const MAX_CONSOLE_BYTES_PER_CALL: usize = 16 * 1024;

/// Most log records one call may emit (each at most [`MAX_LOG_MESSAGE_BYTES`]).
pub const MAX_LOG_RECORDS_PER_CALL: usize = 64;

/// Longest single log message in bytes (one console line).
pub const MAX_LOG_MESSAGE_BYTES: usize = 256;

/// Longest telemetry counter name or map name (bytes). Kernel counter names are short
/// dotted paths like `sched.switches`.
pub const MAX_NAME_BYTES: usize = 64;

/// Longest key or value a module may pass to a shared map in one host call. eBPF map keys
/// and values in Anneal are small fixed-size records.
pub const MAX_MAP_ENTRY_BYTES: usize = 256;

/// Most input words a hook context can carry (task stats, command arguments).
pub const MAX_HOOK_INPUTS: usize = 64;

/// Most output words a hook can write.
pub const MAX_HOOK_OUTPUTS: usize = 16;

/// Largest manifest custom section in bytes: a manifest is a few short lines.
pub const MAX_MANIFEST_BYTES: usize = 4096;

/// Most telemetry counters, or shared maps, one manifest may list.
pub const MAX_MANIFEST_LIST_ENTRIES: usize = 32;

/// Largest module binary the loader accepts (1 MiB): model-written and library modules are a
/// few KiB; the bound stops a corrupt bundle entry from making wasmi allocate without end.
pub const MAX_MODULE_BYTES: usize = 1024 * 1024;

/// Most modules one bundle may hold.
pub const MAX_BUNDLE_MODULES: usize = 256;

/// Longest WAT source the in-kernel compiler accepts (256 KiB): model output is a few KiB.
pub const MAX_WAT_SOURCE_BYTES: usize = 256 * 1024;

/// Deepest S-expression / block nesting the WAT compiler accepts. The parser recurses per
/// level, so this bounds its kernel stack use.
pub const MAX_WAT_NESTING: usize = 64;

/// Most functions (imported + defined) in one compiled WAT module.
pub const MAX_WAT_FUNCTIONS: usize = 1024;

/// Most locals (including parameters) in one WAT function.
pub const MAX_WAT_LOCALS: usize = 1024;

/// Most arguments `wasm run` passes.
pub const MAX_RUN_ARGS: usize = MAX_HOOK_INPUTS;
