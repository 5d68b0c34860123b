//! Secondary cores: starting them (PSCI CPU_ON or spin table), per-core data, and the worker pool
//! the inference engine uses to run one closure on every online core.
//!
//! Starting: cores are started one at a time. The boot core fills [`SECONDARY_BOOT`] (TTBR1 root,
//! stack top, core index), cleans it to memory (the new core reads it with its MMU and caches
//! off), then releases the core: PSCI CPU_ON on virt, or on the Pi writes the physical address of
//! `secondary_entry` to the core's `cpu-release-addr` and `sev` (QEMU raspi4b's boot stub does the
//! same as the Pi firmware's armstub). It waits for the core to mark itself online before the next
//! one, so indices stay dense (0..online) even if a core fails to start.
//!
//! Worker pool: [`run_on_all_cores`] publishes a job (a `&dyn Fn(core, count)`), bumps a
//! generation counter and sends SGI [`WAKE_SGI`] to the other online cores; each runs the job with
//! its index and counts itself done; the last one sends the SGI back to the caller. Idle cores
//! wait in `wfi` with IRQs masked around the check, so a wake-up cannot be lost between "no job"
//! and `wfi`; `wfi` halts QEMU's vCPU thread, so idle cores do not take host CPU from the working
//! ones (`wfe` would: QEMU implements it as a yield that spins).

use super::cpu;
use crate::limits::MAX_CPUS;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use kcore::device_tree::{EnableMethod, PsciConduit};
use spin::Mutex;

/// SGI used to wake workers and to report completion.
pub const WAKE_SGI: u32 = 1;

/// What a starting secondary core reads before its MMU is on (layout shared with boot/entry.S).
#[repr(C)]
pub struct SecondaryBoot {
    ttbr1: AtomicU64,
    stack_top: AtomicU64,
    core_index: AtomicU64,
}

/// Read by boot/entry.S `secondary_entry`.
#[no_mangle]
pub static SECONDARY_BOOT: SecondaryBoot = SecondaryBoot {
    ttbr1: AtomicU64::new(0),
    stack_top: AtomicU64::new(0),
    core_index: AtomicU64::new(0),
};

/// Per-core data.
pub struct PerCore {
    /// Timer ticks taken by this core.
    pub ticks: AtomicU64,
    /// Set by the core once it runs Rust with interrupts on.
    pub online: AtomicBool,
    /// MPIDR affinity.
    pub mpidr: AtomicU64,
}

/// Per-core data, indexed by core index (0 = boot core).
pub static PER_CORE: [PerCore; MAX_CPUS] = [const {
    PerCore {
        ticks: AtomicU64::new(0),
        online: AtomicBool::new(false),
        mpidr: AtomicU64::new(0),
    }
}; MAX_CPUS];

static ONLINE_CORES: AtomicUsize = AtomicUsize::new(1);

extern "C" {
    fn secondary_entry();
}

/// Number of cores online.
pub fn online_cores() -> usize {
    ONLINE_CORES.load(Ordering::Acquire)
}

/// Why a core did not come up.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // fields read through Debug in the boot log
pub enum StartError {
    /// PSCI CPU_ON returned an error.
    Psci(super::psci::PsciError),
    /// The core has no usable enable method.
    NoEnableMethod,
    /// The spin-table release address is not in mapped RAM.
    ReleaseAddressUnmapped(u64),
    /// The core did not report online in time.
    Timeout,
}

/// Starts the CPUs of the device tree other than this one. Returns how many are online in all.
pub fn start_secondary_cores(
    cpus: &[kcore::device_tree::CpuFacts],
    psci: Option<PsciConduit>,
    image: crate::layout::ImageLayout,
    release_address_mapped: impl Fn(u64) -> bool,
) -> usize {
    let own = cpu::mpidr_affinity();
    PER_CORE[0].mpidr.store(own, Ordering::Relaxed);
    PER_CORE[0].online.store(true, Ordering::Release);
    let Some(root) = super::mmu::kernel_root() else {
        return 1;
    };
    let entry_physical = image.to_physical(secondary_entry as *const () as u64);
    for cpu_facts in cpus.iter().filter(|c| c.mpidr != own) {
        let index = online_cores();
        if index >= MAX_CPUS {
            break;
        }
        let (_guard, _bottom, top) = image.stack_slot(index);
        SECONDARY_BOOT.ttbr1.store(root, Ordering::Relaxed);
        SECONDARY_BOOT.stack_top.store(top, Ordering::Relaxed);
        SECONDARY_BOOT
            .core_index
            .store(index as u64, Ordering::Relaxed);
        PER_CORE[index]
            .mpidr
            .store(cpu_facts.mpidr, Ordering::Relaxed);
        cpu::clean_data_cache_range(
            (&raw const SECONDARY_BOOT) as u64,
            core::mem::size_of::<SecondaryBoot>() as u64,
        );
        let started = match cpu_facts.enable_method {
            EnableMethod::Psci => match psci {
                Some(conduit) => super::psci::cpu_on(conduit, cpu_facts.mpidr, entry_physical, 0)
                    .map_err(StartError::Psci),
                None => Err(StartError::NoEnableMethod),
            },
            EnableMethod::SpinTable { release_address } => {
                if release_address_mapped(release_address) && release_address % 8 == 0 {
                    let slot = crate::layout::linear_address(release_address) as *mut u64;
                    // SAFETY: the release address is 8-byte aligned RAM inside the linear map
                    // (checked above); the firmware's spin loop polls it for a non-zero entry.
                    unsafe { slot.write_volatile(entry_physical) };
                    cpu::clean_data_cache_range(slot as u64, 8);
                    cpu::send_event();
                    Ok(())
                } else {
                    Err(StartError::ReleaseAddressUnmapped(release_address))
                }
            }
            EnableMethod::None => Err(StartError::NoEnableMethod),
        };
        let result = started.and_then(|()| {
            let deadline = super::timer::deadline_after_milliseconds(
                crate::limits::SECONDARY_START_TIMEOUT_MS,
            );
            while !PER_CORE[index].online.load(Ordering::Acquire) {
                if super::timer::spin_wait_until(deadline) {
                    return Err(StartError::Timeout);
                }
                core::hint::spin_loop();
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                ONLINE_CORES.store(index + 1, Ordering::Release);
            }
            Err(error) => {
                log::warn!(
                    "core with MPIDR {:#x} did not start: {:?}",
                    cpu_facts.mpidr,
                    error
                );
                if matches!(error, StartError::Timeout) {
                    // A late core would reuse this index; stop here to keep indices dense.
                    break;
                }
            }
        }
    }
    online_cores()
}

/// Rust entry of a secondary core (called by boot/entry.S on its own stack, MMU on, IRQs masked).
#[no_mangle]
extern "C" fn secondary_main(core_index: u64) -> ! {
    let index = core_index as usize;
    super::mmu::disable_ttbr0_walks();
    super::mmu::enable_privileged_access_never();
    crate::interrupts::init_this_core(index);
    super::timer::start_tick_on_this_core();
    if let Some(slot) = PER_CORE.get(index) {
        slot.online.store(true, Ordering::Release);
    }
    worker_loop(index)
}

/// A published job: a borrowed closure, valid while `run_on_all_cores` waits.
#[derive(Clone, Copy)]
struct JobPointer(*const (dyn Fn(usize, usize) + Sync));
// SAFETY: the pointee is Sync and run_on_all_cores keeps it alive until every worker is done.
unsafe impl Send for JobPointer {}

static JOB: Mutex<Option<JobPointer>> = Mutex::new(None);
static JOB_GENERATION: AtomicU64 = AtomicU64::new(0);
static JOB_WORKERS_DONE: AtomicUsize = AtomicUsize::new(0);
static JOB_PARTICIPANTS: AtomicUsize = AtomicUsize::new(0);
static JOB_CALLER: AtomicUsize = AtomicUsize::new(0);
static POOL: Mutex<()> = Mutex::new(());

/// Counters of the worker pool since boot (the `cores` command prints them): how many jobs
/// ran, how many wake-up SGIs they needed, how long workers took to pick a job up and how
/// long the caller waited for the last share after finishing its own (timer ticks).
pub struct PoolStats {
    pub jobs: u64,
    pub wake_sgis: u64,
    pub caller_share_ticks: u64,
    pub caller_wait_ticks: u64,
    pub caller_sleeps: u64,
    pub pickups: u64,
    pub pickup_ticks: u64,
    /// Time between the end of one job and the start of the next (the caller's serial work).
    pub gap_ticks: u64,
    /// Time from the start to the end of jobs, whole jobs (fork to join).
    pub job_ticks: u64,
}

static STAT_JOBS: AtomicU64 = AtomicU64::new(0);
static STAT_WAKE_SGIS: AtomicU64 = AtomicU64::new(0);
static STAT_SHARE_TICKS: AtomicU64 = AtomicU64::new(0);
static STAT_WAIT_TICKS: AtomicU64 = AtomicU64::new(0);
static STAT_SLEEPS: AtomicU64 = AtomicU64::new(0);
static STAT_PICKUPS: AtomicU64 = AtomicU64::new(0);
static STAT_PICKUP_TICKS: AtomicU64 = AtomicU64::new(0);
static STAT_GAP_TICKS: AtomicU64 = AtomicU64::new(0);
static STAT_JOB_TICKS: AtomicU64 = AtomicU64::new(0);
/// When the last job ended (timer ticks; 0 before the first).
static LAST_JOB_END: AtomicU64 = AtomicU64::new(0);
/// When the current job was published (timer ticks).
static JOB_PUBLISHED_AT: AtomicU64 = AtomicU64::new(0);

/// The pool's counters.
pub fn pool_stats() -> PoolStats {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    PoolStats {
        jobs: get(&STAT_JOBS),
        wake_sgis: get(&STAT_WAKE_SGIS),
        caller_share_ticks: get(&STAT_SHARE_TICKS),
        caller_wait_ticks: get(&STAT_WAIT_TICKS),
        caller_sleeps: get(&STAT_SLEEPS),
        pickups: get(&STAT_PICKUPS),
        pickup_ticks: get(&STAT_PICKUP_TICKS),
        gap_ticks: get(&STAT_GAP_TICKS),
        job_ticks: get(&STAT_JOB_TICKS),
    }
}

fn worker_loop(index: usize) -> ! {
    let mut seen = JOB_GENERATION.load(Ordering::Acquire);
    let mut after_job = false;
    loop {
        // A job usually follows the last one within microseconds (the engine's serial steps
        // between two matrix products): look for it before going idle, so the next job starts
        // without an SGI and a wake-up from `wfi` (a host thread sleeping and waking under
        // QEMU, tens of microseconds each time). Only right after a job: back from the idle
        // wait (an interrupt ended an EL0 task's turn or the `wfi`), spinning would only delay
        // the task the core returns to (and its timer wake-ups) by the whole spin.
        let new_job = || JOB_GENERATION.load(Ordering::Acquire) != seen;
        let mut generation = if core::mem::take(&mut after_job) {
            spin_until(new_job)
        } else {
            new_job().then(|| JOB_GENERATION.load(Ordering::Acquire))
        };
        if generation.is_none() {
            cpu::mask_irqs();
            // Announce the sleep, then look once more: `run_on_all_cores` bumps the generation
            // before it reads this flag, so either this load sees the new job or the caller
            // sees the flag and sends the SGI that ends the `wfi` below (IRQs are masked, so
            // the SGI stays pending until then).
            set_sleeping(index, true);
            let current = JOB_GENERATION.load(Ordering::SeqCst);
            if current == seen {
                // Idle: run EL0 tasks until the next interrupt (or `wfi` when there are none).
                crate::task::run_while_idle(index);
                set_sleeping(index, false);
                cpu::unmask_irqs();
                continue;
            }
            set_sleeping(index, false);
            cpu::unmask_irqs();
            generation = Some(current);
        }
        let Some(generation) = generation else {
            continue;
        };
        seen = generation;
        let participants = JOB_PARTICIPANTS.load(Ordering::Acquire);
        if index >= participants {
            continue;
        }
        let job = *JOB.lock();
        STAT_PICKUPS.fetch_add(1, Ordering::Relaxed);
        STAT_PICKUP_TICKS.fetch_add(
            super::timer::counter().saturating_sub(JOB_PUBLISHED_AT.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        if let Some(JobPointer(function)) = job {
            // SAFETY: run_on_all_cores published this pointer and does not return (ending the
            // borrow) until this worker has counted itself done below.
            let function = unsafe { &*function };
            function(index, participants);
        }
        after_job = true;
        let caller = JOB_CALLER.load(Ordering::Relaxed);
        if JOB_WORKERS_DONE.fetch_add(1, Ordering::SeqCst) + 1 == participants - 1
            && is_sleeping(caller)
        {
            crate::interrupts::send_sgi(WAKE_SGI, caller);
        }
    }
}

/// Whether each core is (about to be) waiting in `wfi` for the pool, rather than spinning: the
/// pool sends a wake-up SGI only to sleepers.
static SLEEPING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(true) }; MAX_CPUS];

fn set_sleeping(core: usize, sleeping: bool) {
    if let Some(flag) = SLEEPING.get(core) {
        flag.store(sleeping, Ordering::SeqCst);
    }
}

fn is_sleeping(core: usize) -> bool {
    SLEEPING
        .get(core)
        .is_none_or(|flag| flag.load(Ordering::SeqCst))
}

/// Polls `ready` for up to [`crate::limits::POOL_SPIN_MICROSECONDS`]; the generation seen
/// when it became true, or `None`.
fn spin_until(ready: impl Fn() -> bool) -> Option<u64> {
    let ticks = crate::limits::POOL_SPIN_MICROSECONDS * super::timer::frequency() / 1_000_000;
    let deadline = super::timer::counter().saturating_add(ticks);
    loop {
        // The counter read is costly under QEMU (a helper call): look at it once every 64 polls.
        for _ in 0..64 {
            if ready() {
                return Some(JOB_GENERATION.load(Ordering::Acquire));
            }
            core::hint::spin_loop();
        }
        if super::timer::counter() >= deadline {
            return None;
        }
    }
}

/// Counts a job that owns the pool and the caller's serial time since the last one; returns
/// the job's start (timer ticks).
fn job_started() -> u64 {
    let started = super::timer::counter();
    let last = LAST_JOB_END.load(Ordering::Relaxed);
    // Gaps over 10 ms are idle time between commands, not the engine's serial work.
    let gap = started.saturating_sub(last);
    if last != 0 && gap < super::timer::frequency() / 100 {
        STAT_GAP_TICKS.fetch_add(gap, Ordering::Relaxed);
    }
    STAT_JOBS.fetch_add(1, Ordering::Relaxed);
    started
}

/// Records the end of a job begun at `started`; returns the end (timer ticks).
fn job_ended(started: u64) -> u64 {
    let ended = super::timer::counter();
    STAT_JOB_TICKS.fetch_add(ended.saturating_sub(started), Ordering::Relaxed);
    LAST_JOB_END.store(ended, Ordering::Relaxed);
    ended
}

/// Runs `work(core_index, core_count)` once on every online core (the caller's share runs on
/// the caller) and returns when all are done. Jobs do not nest: a call from inside a job, or from
/// a core other than the boot core, runs every share on the calling core in turn.
pub fn run_on_all_cores(work: &(dyn Fn(usize, usize) + Sync)) {
    let count = online_cores();
    let caller = cpu::core_index();
    let guard = if caller == 0 { POOL.try_lock() } else { None };
    // Only jobs that own the pool are counted: a nested call (from inside a job) or one from
    // another core would count a share of a job as a job of its own.
    let started = guard.is_some().then(job_started);
    let Some(_guard) = guard.filter(|_| count > 1) else {
        for index in 0..count {
            work(index, count);
        }
        if let Some(started) = started {
            job_ended(started);
        }
        return;
    };
    // SAFETY: erase the borrow's lifetime to publish it; we wait below until every worker that
    // could read it has finished, and clear it before returning.
    let pointer: *const (dyn Fn(usize, usize) + Sync) = unsafe { core::mem::transmute(work) };
    *JOB.lock() = Some(JobPointer(pointer));
    JOB_WORKERS_DONE.store(0, Ordering::Release);
    JOB_PARTICIPANTS.store(count, Ordering::Release);
    JOB_CALLER.store(caller, Ordering::Release);
    let published = super::timer::counter();
    JOB_PUBLISHED_AT.store(published, Ordering::Relaxed);
    JOB_GENERATION.fetch_add(1, Ordering::SeqCst);
    // Only sleeping workers need the SGI; spinning ones see the new generation (see
    // `worker_loop` for why no wake-up is lost).
    for core in (0..count).filter(|&c| c != caller) {
        if is_sleeping(core) {
            STAT_WAKE_SGIS.fetch_add(1, Ordering::Relaxed);
            crate::interrupts::send_sgi(WAKE_SGI, core);
        }
    }
    work(caller, count);
    let shared = super::timer::counter();
    STAT_SHARE_TICKS.fetch_add(shared.saturating_sub(published), Ordering::Relaxed);
    let done = || JOB_WORKERS_DONE.load(Ordering::SeqCst) >= count - 1;
    if spin_until(done).is_none() {
        STAT_SLEEPS.fetch_add(1, Ordering::Relaxed);
        loop {
            let were_enabled = cpu::mask_irqs();
            // As in `worker_loop`: flag first, then check, so the last worker's SGI is not lost.
            set_sleeping(caller, true);
            if done() {
                set_sleeping(caller, false);
                cpu::restore_irqs(were_enabled);
                break;
            }
            cpu::wait_for_interrupt();
            set_sleeping(caller, false);
            cpu::restore_irqs(were_enabled);
            if !were_enabled {
                core::hint::spin_loop();
            }
        }
    }
    if let Some(started) = started {
        let ended = job_ended(started);
        STAT_WAIT_TICKS.fetch_add(ended.saturating_sub(shared), Ordering::Relaxed);
    }
    *JOB.lock() = None;
}
