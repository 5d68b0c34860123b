//! Static limits of the kernel binary, each with the reason for its number.
//!
//! Limits of the portable core (device-tree lists, console line length, ring sizes) live in
//! `kcore::limits`; these are the ones that shape the kernel image and its boot.

/// Most cores the kernel runs (re-exported so arch code and the linker script agree; see
/// boot/kernel.ld, which reserves MAX_CPUS stack slots).
pub const MAX_CPUS: usize = kcore::limits::MAX_CPUS;

/// Bytes of stack per core. The inference engine runs its matrix rows on every core's stack and
/// wasmi's interpreter recurses; 128 KiB is 4x what either was seen to need. Must match
/// KERNEL_STACK_SIZE in boot/kernel.ld.
pub const KERNEL_STACK_SIZE: usize = 128 * 1024;

/// The unmapped page under every stack: an overflow faults instead of overwriting what lies below.
/// Must match STACK_GUARD_SIZE in boot/kernel.ld.
pub const STACK_GUARD_SIZE: usize = 4096;

/// Page tables the kernel can build for its own address space (TTBR1) from the pool in .bss.
/// The kernel image needs 1 level-2 + ~2 level-3 tables, the linear map 1-2 level-2 tables per
/// memory range, devices 1-2 tables each; 64 tables (256 KiB) leave ample margin.
pub const KERNEL_TABLE_POOL_SIZE: usize = 64;

/// Timer interrupts per second on each core. 100 Hz gives 10 ms scheduling granularity and costs
/// little under TCG emulation, where every interrupt is expensive.
pub const TICK_HZ: u64 = 100;

/// RAM kept out of the heap for the frame allocator (task page tables, stacks of later tasks).
/// The rest of the largest RAM range goes to the heap, where the model keeps its KV cache.
pub const FRAME_POOL_RESERVE: u64 = 16 * 1024 * 1024;

/// How long the boot core waits for a secondary core to report online before giving up on it.
/// QEMU brings a vCPU up in well under 10 ms even on a loaded 2-core host.
pub const SECONDARY_START_TIMEOUT_MS: u64 = 1000;

/// How long the console's `kill` waits for a task to leave the core it runs on. The wake-up SGI
/// makes that tens of microseconds; the bound is for a vCPU the host does not run for a while
/// (TCG on a loaded host), not a real delay.
pub const KILL_WAIT_MS: u64 = 2000;

/// Largest device tree accepted, in bytes. Real trees are 30-80 KiB; the early boot window maps
/// at most this much (as 2 MiB blocks).
pub const MAX_DEVICE_TREE_SIZE: usize = 2 * 1024 * 1024;

/// How long a core polls for the worker pool's next job (a worker, right after its last one)
/// or for the last share to finish (the caller) before sleeping in `wfi`, in microseconds. The
/// inference engine runs ~150 fork-join jobs per token with serial gaps of 10-300 us between
/// them (scalar float code is slow under TCG); a wake-up from `wfi` costs a host thread's sleep
/// and wake under QEMU (tens of microseconds or more). A bound in time holds on any CPU speed.
/// Measured with `bench infer` on a 2-core host (SmolLM2, gen tok/s): 250 us gave 2 cores
/// 7.1-7.3 and 4 vCPUs 4.4-4.7; 1 ms gave 2 cores 6.6-7.4 but 4 vCPUs only 2.5-2.7, because
/// vCPUs spinning beyond the host's cores take its time from the ones with work.
pub const POOL_SPIN_MICROSECONDS: u64 = 250;
