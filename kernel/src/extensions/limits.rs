//! Static limits of the kernel's extension commands (`ebpf ...`, `wasm ...`), each with the
//! reason for its number. The portable crates keep their own limits (`ebpf::limits`,
//! `wasm::limits`); these are only what the kernel side adds.

/// Entries of the shared array map `counts` (u32 key, u64 value) that eBPF programs and WASM
/// modules both reach. Small on purpose: it is a demonstration and test map; 16 entries fit
/// the keys the library modules use (roundtrip bumps key 7) with room for console tests.
pub const SHARED_COUNTS_ENTRIES: u32 = 16;

/// Runs of the counter program per core in the multi-core map test. Enough that several
/// cores are inside the map code at the same time for many iterations (each run is a few
/// dozen instructions, so the cores overlap for milliseconds even under TCG), small enough
/// that the whole self-test stays well under a second of guest time on 4 vCPUs.
pub const SMP_RUNS_PER_CORE: u64 = 2_000;

/// Keys each core inserts into the shared hash map in the multi-core test. Together with
/// [`SMP_HASH_CAPACITY`] it makes the cores contend for the table's lock without filling it.
pub const SMP_KEYS_PER_CORE: u64 = 200;

/// Capacity of the hash map in the multi-core test: room for [`SMP_KEYS_PER_CORE`] keys from
/// each of up to `ebpf::limits::MAX_CPUS` (8) cores.
pub const SMP_HASH_CAPACITY: u32 = 2_048;

/// Bytes of the ring buffer in the multi-core test (power of two, as the ring buffer needs).
/// Each record takes 16 bytes (8-byte header + 8-byte payload), so 64 KiB holds 4096 records:
/// more than cores x [`SMP_RING_RECORDS_PER_CORE`], so no record may be dropped.
pub const SMP_RING_BYTES: u32 = 64 * 1024;

/// Records each core writes into the ring buffer in the multi-core test.
pub const SMP_RING_RECORDS_PER_CORE: u64 = 256;

/// Instruction budget for one run of a kernel-internal eBPF program (selftest and the
/// `ebpf count` program run a few dozen instructions; the budget only catches a bug).
pub const KERNEL_PROGRAM_BUDGET: u64 = 10_000;

/// Repetitions per program and mode in `ebpf bench` (best run is kept). Three runs of the
/// five programs execute about 250 M eBPF instructions, roughly 10-20 s under TCG: long
/// enough for a stable minimum, short enough for a console command.
pub const EBPF_BENCH_REPEAT: usize = 3;

/// Most repetitions `ebpf bench REPEAT` accepts: each one runs about 90 M eBPF instructions
/// (both modes), so 20 already keeps the console busy for minutes under TCG.
pub const MAX_EBPF_BENCH_REPEAT: usize = 20;

/// Timed calls per case in `wasm bench` (`empty` and `host_call`; loops scale this down by
/// their length). 2000 calls of a few microseconds each keep the command under a few seconds.
pub const WASM_BENCH_CALLS: u32 = 2_000;

/// Loop lengths of `wasm bench`: three decades, so the per-iteration cost separates from the
/// per-call overhead.
pub const WASM_BENCH_LOOPS: &[u64] = &[100, 1_000, 10_000];
