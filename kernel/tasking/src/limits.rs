//! Static limits of the portable core, each with the reason for its number.

/// Task slots. Enough for the services, workloads and test tasks of one board with room to
/// spare; small enough that the O(tasks) scans on the IPC path (finding a waiting sender,
/// walking a deadlock chain) stay a few hundred instructions.
pub const MAX_TASKS: usize = 64;

/// Cores the scheduler manages. The Raspberry Pi 4 has 4 and `virt` is run with up to 8;
/// [`crate::sched::CoreMask`] is 64 bits wide, so this can grow without changing types.
pub const MAX_CORES: usize = 8;

/// Priority levels, 0 most urgent. Eight covers interrupt servers, latency-sensitive tasks,
/// ordinary services and batch work with gaps between them; more levels only invite
/// priority inversions.
pub const PRIORITY_LEVELS: u8 = 8;

/// Period of the scheduler tick the [`crate::policy::DefaultPolicy`] assumes unless it is
/// built for the real one ([`crate::policy::DefaultPolicy::for_tick_period`]): 1 kHz, the
/// clock of the host tests. The kernel ticks at its own rate (kernel/src/limits.rs `TICK_HZ`,
/// 100 Hz because every interrupt is expensive under TCG) and builds its policy for that;
/// sleeps and timers do not depend on the tick at all (they fire at their deadline).
pub const DEFAULT_TICK_PERIOD_NANOS: u64 = 1_000_000;

/// Time slice of the default policy (5 ms), rounded up to whole ticks of the scheduler's
/// clock: long enough to amortise a context switch and TLB warm-up, short enough that an
/// interactive task behind two spinners waits about 10 ms at worst at equal priority (at the
/// kernel's 100 Hz tick the slice is one tick, 10 ms, and the wait 20 ms).
pub const DEFAULT_SLICE_NANOS: u64 = 5_000_000;

/// [`DEFAULT_SLICE_NANOS`] in ticks of [`DEFAULT_TICK_PERIOD_NANOS`].
pub const DEFAULT_SLICE_TICKS: u64 = DEFAULT_SLICE_NANOS.div_ceil(DEFAULT_TICK_PERIOD_NANOS);

/// Smallest slice any policy may grant: a replaceable policy returning 0 would otherwise make
/// the scheduler spin re-picking on every tick.
pub const MIN_SLICE_TICKS: u64 = 1;

/// Largest slice any policy may grant (100 ticks: 100 ms at 1 kHz, 1 s at the kernel's 100 Hz):
/// bounds how long a misbehaving replaceable policy can let one task monopolise a core.
pub const MAX_SLICE_TICKS: u64 = 100;

/// A runnable task that has waited this long is picked next whatever its priority (50 ms):
/// the default policy's guarantee that a spinning high-priority task cannot starve the rest.
/// Ten default slices, so priorities still dominate in normal operation.
pub const STARVATION_THRESHOLD_NANOS: u64 = 50_000_000;

/// Time between two load-balancing passes (10 ms), run by whichever core's tick comes first
/// after it: often enough to spread a burst of new batch tasks quickly, rarely enough that
/// migrations (cold caches) stay rare.
pub const BALANCE_INTERVAL_NANOS: u64 = 10_000_000;

/// Regions in one task's address-space map: text, rodata, data, bss, stack and a few device or
/// shared windows. A fixed bound keeps the user-slice check a short linear scan.
pub const MAX_REGIONS: usize = 16;

/// Bounce-buffer size for copies between two tasks' memories, in bytes. It lives on the kernel
/// stack, so it is small; a 4 KiB message is 16 chunks.
pub const COPY_CHUNK_BYTES: usize = 256;

/// Timer-queue entries before stale ones (cancelled or superseded timers) are compacted away.
/// Each task has at most one live sleep and one live notification timer, so four per task
/// leaves room for churn without unbounded growth.
pub const MAX_TIMER_ENTRIES: usize = 4 * MAX_TASKS;

/// First restart delay after a fault (10 ms): a transient fault recovers almost at once.
pub const INITIAL_BACKOFF_NANOS: u64 = 10_000_000;

/// Largest restart delay (10 s): a task that faults at start-up costs the system one restart
/// every 10 s at worst, and an operator still sees it come back.
pub const MAX_BACKOFF_NANOS: u64 = 10_000_000_000;

/// A task that has run this long since its last restart without faulting is considered healthy
/// again and its back-off returns to the initial delay (30 s, three times the maximum delay, so
/// a task stuck in a crash loop never looks healthy between two crashes).
pub const HEALTHY_RESET_NANOS: u64 = 30_000_000_000;

/// Program headers an ELF task image may have. Linkers emit 4 to 8 for a static executable
/// (LOAD segments, GNU_STACK, notes); 16 leaves room and bounds the parse.
pub const MAX_PROGRAM_HEADERS: usize = 16;

/// PT_LOAD segments a task image may have (text, rodata, data+bss, and a spare pair).
pub const MAX_LOAD_SEGMENTS: usize = 6;

/// Largest in-memory size of one task image (8 MiB). Tasks are small services and workloads;
/// the model and its weights live in the kernel, not in tasks.
pub const MAX_IMAGE_MEMORY_BYTES: u64 = 8 << 20;

/// Largest task stack (1 MiB), and the default one (16 KiB, four pages: enough for Rust tasks
/// with modest frames; the guard pages below catch the rest).
pub const MAX_STACK_BYTES: u64 = 1 << 20;

/// Default task stack size in bytes.
pub const DEFAULT_STACK_BYTES: u64 = 16 << 10;

/// ASIDs the allocator hands out. 8-bit ASIDs are what every ARMv8-A core supports
/// (ID_AA64MMFR0_EL1.ASIDBits may say 16); 255 usable values exceed [`MAX_TASKS`], so no
/// rollover scheme is needed, only a flush before an ASID is reused.
pub const ASID_COUNT: usize = 256;

/// [`abi::limits::MAX_LOG_BYTES`] as a buffer length: the kernel-stack buffer `log` reads into.
pub const MAX_LOG_BYTES_USIZE: usize = abi::limits::MAX_LOG_BYTES as usize;
