//! EL0 tasks in the kernel: entry and exit, the frame switch, `svc` dispatch into
//! `tasking::TaskSystem`, faults, timers, the supervisor task, and freeing ended tasks. The
//! console commands (`spawn`, `ps`, `top`, `kill`, `sched`) are in [`console`].
//!
//! Design. The portable core (`kernel/tasking`) decides everything: who runs where, what a
//! syscall does, who is stopped. This module only moves registers and pages between the CPU
//! and that core.
//!
//! - **Kernel first.** Each core's kernel code (the shell on core 0, the worker loop on the
//!   others) has priority over tasks: tasks run only from a core's idle wait, which calls
//!   [`run_while_idle`] instead of `wfi`. That enters the current task with `task_enter` (assembly
//!   beside the vectors) and returns to the loop on the next interrupt (`task_leave`), so the
//!   worker pool and the inference engine never wait for a task, and a task can never starve the
//!   console. Every core runs tasks, core 0 too: its idle wait is the console's wait for input
//!   ([`console_wait`], called by `console::read_byte`), and the UART's receive interrupt, routed
//!   to core 0, takes it out of a task at the next byte, so the console answers as fast as with
//!   no tasks. While the shell runs a command ([`console_busy`] .. [`console_idle`]) core 0 is
//!   *unavailable* to the scheduler: its tasks move to the other cores (or wait, if pinned to
//!   core 0) and its timers fire on the others, so a long command (`ai`) delays no task that
//!   could run elsewhere. With one core online, tasks run between console commands.
//! - **Frames.** Every task has a saved [`TrapFrame`] (x0-x30, ELR, SPSR, SP_EL0, TPIDR_EL0,
//!   q0-q31, FPCR, FPSR: FP/SIMD state is per task for free). A syscall or fault from EL0 ends by
//!   asking the task system who is current on this core: the same task resumes with its result
//!   registers, another task's frame is copied over the one on the stack (and TTBR0 switched),
//!   or, with nothing to run, the frame is saved and the core goes back to its idle loop.
//! - **Address spaces.** `tasking::layout` builds 4-level TTBR0 tables from the ELF image into
//!   frames of the kernel's frame allocator; each task has one ASID while it exists (64 tasks,
//!   256 ASIDs), so a switch is `msr ttbr0_el1` with no TLB flush. A core back in the kernel
//!   disables TTBR0 walks (TCR_EL1.EPD0), so no walk, speculative or not, reads the tables of a
//!   task that is being freed.
//! - **Supervision.** A fault from EL0 stops the task (`TaskSystem::fault`) and prints one
//!   `[task] fault ...` line; the task system posts the supervisor's fault bit. Recovery is the
//!   *supervisor task*'s (kernel/user/supervisor.S, spawned with the task table): it reads the
//!   fault and restarts the task with back-off, as Hubris does. The kernel supervises only the
//!   supervisor: when it stops for any reason (fault, kill), [`TaskKernel::tend_supervisor`]
//!   restarts it with the `tasking::supervisor` back-off (10 ms, doubling).
//! - **Freeing.** An exited or killed task is not restarted: once no core runs it, [`reap`]
//!   flushes its ASID, returns its tables, pages and frame to the allocators and releases its
//!   slot, which the next spawn takes under the next generation (stale ids keep failing).
//! - **Ticks and timers.** Interrupt handlers never touch the task system (they may have
//!   interrupted code holding the heap or console lock): an IRQ from EL0 only sends the core
//!   back to its idle loop, which fires due task timers and charges the elapsed tick to the task
//!   ([`account_time`]) before choosing again. Sleeps and timers do not wait for the 100 Hz
//!   tick: every pass programs the core's one-shot comparator for the earliest timer armed on it
//!   ([`program_wakeup`], `timer::set_wakeup`), so a wake-up comes at its deadline. Slices are
//!   whole ticks: the policy is built for the kernel's real tick period.
//! - **Locking.** One spin lock around the whole [`TaskKernel`], always taken with IRQs masked
//!   (exception handlers run masked; console commands mask), so an IRQ never spins on a lock its
//!   own core holds. [`RUNNING`] (whose frame is on each core's stack) changes only under it.

#![allow(unsafe_code)]

mod console;
mod memory;

pub use console::{command_kill, command_ps, command_sched, command_spawn, command_top};

use crate::arch::aarch64::exceptions::TrapFrame;
use crate::arch::aarch64::{cpu, mmu, smp, timer};
use crate::limits::MAX_CPUS;
use crate::println;
use abi::{FaultKind, TaskId};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use memory::{FrameAllocator, LinearUserMemory};
use spin::Mutex;
use tasking::layout::{self, AddressSpacePlan, BuiltAddressSpace};
use tasking::pagetable::{Asid, AsidAllocator};
use tasking::policy::DefaultPolicy;
use tasking::sched::{CoreId, CoreMask, Priority};
use tasking::supervisor::{RestartPolicy, Supervisor};
use tasking::system::{LogSink, SyscallEffect, TaskState, TaskSystem};
use tasking::time::Instant;

mod images {
    include!(concat!(env!("OUT_DIR"), "/user_tasks.rs"));
}

/// Name of the supervisor's task image (kernel/user/supervisor.S).
const SUPERVISOR_IMAGE: &str = "supervisor";

/// Priority of the supervisor: above every workload, so a restart is never delayed by them.
const SUPERVISOR_PRIORITY: u8 = 0;

/// No task's frame is on this core's stack.
const NO_TASK: u32 = u32::MAX;

/// A task's machine state and memory.
struct TaskContext {
    frame: Box<TrapFrame>,
    space: BuiltAddressSpace,
    plan: AddressSpacePlan,
    image: &'static [u8],
    asid: Asid,
    started_once: bool,
}

/// The task system and everything the kernel keeps beside it.
struct TaskKernel {
    system: TaskSystem<DefaultPolicy>,
    /// Per slot index; `None` for a released (vacant) slot.
    contexts: Vec<Option<TaskContext>>,
    /// Restart back-off of the supervisor task (the only task the kernel restarts).
    supervisor_restarts: Supervisor,
    /// When the stopped supervisor is due to restart.
    supervisor_restart_due: Option<Instant>,
    /// Moves with `supervisor_restart_due`, so cores reprogram their wake-up (see
    /// [`program_wakeup`]).
    kernel_timer_epoch: u64,
    asids: AsidAllocator,
    frames: FrameAllocator,
    syscalls: u64,
    faults: u64,
    spawned: u64,
    released: u64,
    /// Cores to wake besides the scheduler's kicks (a supervisor restart to time).
    extra_kicks: CoreMask,
}

static KERNEL: Mutex<Option<TaskKernel>> = Mutex::new(None);

/// The task whose frame is on each core's exception stack (raw id, [`NO_TASK`] for none).
static RUNNING: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(NO_TASK) }; MAX_CPUS];

/// Each core's timer-tick count when the task system last accounted for it.
static TICKS_SEEN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Each core's view of the timer epochs when it last programmed its wake-up comparator
/// (`u64::MAX`: never).
static TIMER_EPOCH_SEEN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// The TTBR0 value each core runs its task with (0: TTBR0 walks disabled, EPD0 set).
static LOADED_TTBR0: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// The kernel's callee-saved state while a core runs a task (layout shared with
/// exception_vectors.S: x19-x30, sp, d8-d15, DAIF).
#[repr(C)]
struct KernelContext {
    registers: [u64; 22],
}

struct KernelContextCell(UnsafeCell<KernelContext>);
// SAFETY: each cell is used only by its own core (indexed by `cpu::core_index()`), with IRQs
// masked, so no two contexts of execution touch one cell at once.
unsafe impl Sync for KernelContextCell {}

static KERNEL_CONTEXTS: [KernelContextCell; MAX_CPUS] =
    [const { KernelContextCell(UnsafeCell::new(KernelContext { registers: [0; 22] })) }; MAX_CPUS];

extern "C" {
    fn task_enter(frame: *const TrapFrame, context: *mut KernelContext);
    fn task_leave(context: *const KernelContext) -> !;
}

fn now() -> Instant {
    let frequency = timer::frequency().max(1) as u128;
    Instant((timer::counter() as u128 * 1_000_000_000 / frequency) as u64)
}

fn zero_frame() -> TrapFrame {
    TrapFrame {
        registers: [0; 31],
        exception_link: 0,
        saved_status: 0,
        kind: 0,
        stack_pointer_el0: 0,
        thread_pointer_el0: 0,
        simd: [0; 32],
        fpcr: 0,
        fpsr: 0,
    }
}

/// The cores tasks may run on: every online core (core 0 while the console is idle).
fn task_cores() -> CoreMask {
    let mut cores = CoreMask::NONE;
    for core in 0..smp::online_cores() {
        cores.insert(CoreId(core));
    }
    cores
}

/// True while the shell waits for input (core 0 may run tasks); false while it runs a command.
static CONSOLE_IDLE: AtomicBool = AtomicBool::new(true);

/// The shell starts a command: core 0 takes no tasks until [`console_idle`], and has its tick
/// (commands may wait for time with `wfi`).
pub fn console_busy() {
    let were_enabled = cpu::mask_irqs();
    timer::set_periodic_tick(true);
    cpu::restore_irqs(were_enabled);
    set_console_core_available(false);
}

/// The shell finished its command and waits for input again: core 0 may run tasks.
pub fn console_idle() {
    set_console_core_available(true);
}

fn set_console_core_available(available: bool) {
    CONSOLE_IDLE.store(available, Ordering::Relaxed);
    let were_enabled = cpu::mask_irqs();
    {
        let mut guard = KERNEL.lock();
        if let Some(kernel) = guard.as_mut() {
            kernel
                .system
                .set_core_available(CoreId(0), available, now());
            if !available && kernel.system.next_timer_deadline_on(CoreId(0)).is_some() {
                // Core 0's timers now fire on the other cores: wake them (idle ones have no
                // tick) to program their comparators.
                kernel.extra_kicks.0 |= task_cores().0;
            }
            kernel.send_kicks(cpu::core_index());
        }
    }
    cpu::restore_irqs(were_enabled);
}

/// The console's wait for input on core 0, called with IRQs masked: runs core 0's tasks until
/// the next interrupt (a received byte among them) while the shell is idle, else `wfi`.
pub fn console_wait() {
    if CONSOLE_IDLE.load(Ordering::Relaxed) {
        run_while_idle(0);
    } else {
        cpu::wait_for_interrupt();
    }
}

/// Runs `work` on the task kernel with IRQs masked (creating it, with the supervisor task, on
/// first use), after freeing whatever ended tasks can be freed.
fn with_kernel<R>(work: impl FnOnce(&mut TaskKernel) -> R) -> R {
    let were_enabled = cpu::mask_irqs();
    let result = {
        let mut guard = KERNEL.lock();
        let kernel = guard.get_or_insert_with(TaskKernel::start);
        let now = now();
        kernel.tend_supervisor(now);
        reap(kernel);
        let result = work(kernel);
        kernel.tend_supervisor(now);
        kernel.send_kicks(cpu::core_index());
        result
    };
    cpu::restore_irqs(were_enabled);
    result
}

/// The console's log sink: `[name] text`.
struct ConsoleSink;

impl LogSink for ConsoleSink {
    fn log(&mut self, _task: TaskId, name: &str, bytes: &[u8]) {
        let text = core::str::from_utf8(bytes).unwrap_or("<not UTF-8>");
        println!("[{name}] {}", text.trim_end_matches('\n'));
    }
}

/// Points this core's TTBR0 at a task's tables (with its ASID) and enables TTBR0 walks. Skipped
/// when they are already loaded: the same task resuming after a syscall changes nothing, and
/// under QEMU's TCG every TTBR0 or TCR write flushes its software TLB.
fn set_user_translation(core: usize, ttbr0: u64) {
    let Some(loaded) = LOADED_TTBR0.get(core) else {
        return;
    };
    let before = loaded.swap(ttbr0, Ordering::Relaxed);
    if before == ttbr0 {
        return;
    }
    // SAFETY: the kernel runs from TTBR1 only; TTBR0 holds user tables whose entries are nG and
    // tagged with the task's ASID, so switching needs no flush.
    unsafe {
        core::arch::asm!("msr ttbr0_el1, {ttbr0}", "isb", ttbr0 = in(reg) ttbr0, options(nostack));
    }
    if before == 0 {
        mmu::set_ttbr0_walks(true);
    }
}

/// Disables TTBR0 walks on this core (TCR_EL1.EPD0): called when the core leaves its task for
/// the kernel, so that no walk, speculative or not, reads tables another core may free.
fn clear_user_translation(core: usize) {
    let Some(loaded) = LOADED_TTBR0.get(core) else {
        return;
    };
    if loaded.swap(0, Ordering::Relaxed) != 0 {
        mmu::set_ttbr0_walks(false);
    }
}

fn flush_asid(asid: Asid) {
    // SAFETY: invalidating TLB entries of one ASID on all cores only costs later walks.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi aside1is, {operand}",
            "dsb ish",
            "isb",
            operand = in(reg) (asid.0 as u64) << 48,
            options(nostack)
        );
    }
}

fn synchronize_instruction_cache() {
    // SAFETY: cleaning data and invalidating instruction caches is always safe; needed after the
    // kernel wrote a task's text through the linear map.
    unsafe {
        core::arch::asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack));
    }
}

/// Why a task could not be started.
#[derive(Debug, Clone, Copy)]
enum SpawnFailure {
    NoAsid,
    OutOfFrames,
    TableFull,
}

impl SpawnFailure {
    fn describe(self) -> &'static str {
        match self {
            SpawnFailure::NoAsid => "no ASID left",
            SpawnFailure::OutOfFrames => "out of frames for its page tables",
            SpawnFailure::TableFull => "the task table is full",
        }
    }
}

impl TaskKernel {
    /// An empty task kernel with the supervisor task spawned (when its image is embedded and a
    /// task core exists).
    fn start() -> TaskKernel {
        let mut kernel = TaskKernel {
            system: TaskSystem::new(
                smp::online_cores().max(1),
                DefaultPolicy::for_tick_period(1_000_000_000 / crate::limits::TICK_HZ.max(1)),
            ),
            contexts: Vec::new(),
            supervisor_restarts: Supervisor::new(
                RestartPolicy::default(),
                tasking::limits::MAX_TASKS,
            ),
            supervisor_restart_due: None,
            kernel_timer_epoch: 0,
            asids: AsidAllocator::new(),
            frames: FrameAllocator,
            syscalls: 0,
            faults: 0,
            spawned: 0,
            released: 0,
            extra_kicks: CoreMask::NONE,
        };
        let console_idle = CONSOLE_IDLE.load(Ordering::Relaxed);
        kernel
            .system
            .set_core_available(CoreId(0), console_idle, now());
        let image = images::USER_IMAGES
            .iter()
            .find(|(name, _)| *name == SUPERVISOR_IMAGE);
        let cores = task_cores();
        match image {
            Some(&(name, bytes)) if !cores.is_empty() => {
                match kernel.spawn_image(name, bytes, SUPERVISOR_PRIORITY, cores, true) {
                    Ok(id) => println!("[task] spawned name={name} id={:#x}", id.to_raw()),
                    Err(error) => println!("[task] supervisor not started: {error}"),
                }
            }
            _ => println!("[task] no supervisor task: faulted tasks stay stopped"),
        }
        kernel
    }

    /// Builds an address space for the ELF image `bytes` and makes it a runnable task.
    fn spawn_image(
        &mut self,
        name: &str,
        bytes: &'static [u8],
        priority: u8,
        affinity: CoreMask,
        supervisor: bool,
    ) -> Result<TaskId, &'static str> {
        let image = tasking::elf::parse(bytes).map_err(|_| "image rejected by the ELF check")?;
        let plan = layout::plan(&image, 0).map_err(|_| "image does not fit the task layout")?;
        let grant = self
            .asids
            .allocate()
            .ok_or(SpawnFailure::NoAsid.describe())?;
        let space = match layout::build(&plan, &image, &mut self.frames) {
            Ok(space) => space,
            Err(_) => {
                self.asids.free(grant.asid);
                return Err(SpawnFailure::OutOfFrames.describe());
            }
        };
        synchronize_instruction_cache();
        if grant.needs_flush {
            flush_asid(grant.asid);
        }
        let descriptor = plan.task_descriptor(name, Priority(priority), affinity, supervisor);
        let id = match self.system.spawn(descriptor, now()) {
            Ok(id) => id,
            Err(error) => {
                layout::release(space, &mut self.frames);
                self.asids.free(grant.asid);
                return Err(match error {
                    tasking::system::SpawnError::TableFull => SpawnFailure::TableFull.describe(),
                    _ => "the task system refused it",
                });
            }
        };
        let index = id.index_usize();
        if self.contexts.len() <= index {
            self.contexts.resize_with(index + 1, || None);
        }
        self.contexts[index] = Some(TaskContext {
            frame: Box::new(zero_frame()),
            space,
            plan,
            image: bytes,
            asid: grant.asid,
            started_once: false,
        });
        self.spawned += 1;
        Ok(id)
    }

    /// Puts `task`'s frame (fresh after a (re)start, with pending results) into `frame` and
    /// switches TTBR0 to its tables. False if the task has no context (a bookkeeping bug): the
    /// caller must not enter it.
    fn load(&mut self, task: TaskId, frame: &mut TrapFrame) -> bool {
        let index = task.index_usize();
        let Some(context) = self.contexts.get_mut(index).and_then(Option::as_mut) else {
            return false;
        };
        if let Some(start) = self.system.take_start_request(task) {
            let restarted = self
                .system
                .task_info(index)
                .is_some_and(|record| record.restarts > 0);
            if restarted {
                println!("[task] restart id={:#x}", task.to_raw());
            }
            if context.started_once {
                if let Ok(image) = tasking::elf::parse(context.image) {
                    layout::reset_writable(&context.space, &context.plan, &image, &mut self.frames);
                    synchronize_instruction_cache();
                }
            }
            context.started_once = true;
            *context.frame = zero_frame();
            context.frame.exception_link = start.entry;
            context.frame.stack_pointer_el0 = start.stack_pointer;
            context.frame.registers[0] = start.own_id.to_raw() as u64;
            context.frame.saved_status = 0; // EL0t, interrupts unmasked
        }
        if let Some(result) = self.system.take_pending_return(task) {
            for (register, value) in context.frame.registers.iter_mut().zip(result.0.iter()) {
                *register = *value;
            }
        }
        *frame = *context.frame;
        set_user_translation(cpu::core_index(), context.space.table.ttbr0(context.asid));
        true
    }

    /// Loads the task the system makes current on `core` into `frame`; `None` when there is
    /// none (or it cannot be loaded, in which case it is stopped rather than entered).
    fn load_current(&mut self, core: usize, frame: &mut TrapFrame, now: Instant) -> Option<TaskId> {
        loop {
            let task = self.system.current(CoreId(core), now)?;
            if self.load(task, frame) {
                return Some(task);
            }
            println!("[task] id={:#x} has no context; stopped", task.to_raw());
            let _ = self.system.kill(task, now);
        }
    }

    /// Saves the frame of the task that trapped (raw id `task`) into its context, unless that
    /// incarnation is gone (its slot restarted, released or reused meanwhile).
    fn save(&mut self, task: u32, frame: &TrapFrame) {
        let index = (task & 0xFFFF) as usize;
        if self.system.task_id(index).map(TaskId::to_raw) != Some(task) {
            return;
        }
        if let Some(context) = self.contexts.get_mut(index).and_then(Option::as_mut) {
            *context.frame = *frame;
        }
    }

    fn send_kicks(&mut self, own_core: usize) {
        let mut kicks = self.system.take_kicks();
        kicks.0 |= core::mem::replace(&mut self.extra_kicks, CoreMask::NONE).0;
        for core in 0..smp::online_cores() {
            if core != own_core && kicks.contains(CoreId(core)) {
                crate::interrupts::send_sgi(smp::WAKE_SGI, core);
            }
        }
    }

    /// The kernel supervises the supervisor: a stopped supervisor task (fault, kill, exit) is
    /// restarted after the `tasking::supervisor` back-off. Cheap when nothing is wrong.
    fn tend_supervisor(&mut self, now: Instant) {
        let Some(index) = self.system.supervisor_index() else {
            return;
        };
        if !matches!(
            self.system.state(index),
            Some(TaskState::Faulted(_) | TaskState::Exited(_))
        ) {
            return;
        }
        match self.supervisor_restart_due {
            None => {
                let due = self.supervisor_restarts.on_stopped(index, now).ok();
                self.supervisor_restart_due = due;
                self.kernel_timer_epoch += 1;
                // Idle task cores sleep without a tick: wake them to program the restart.
                self.extra_kicks.0 |= task_cores().0;
                println!(
                    "[task] supervisor stopped; the kernel restarts it in {} ms",
                    due.map_or(0, |at| at.nanos_since(now) / 1_000_000)
                );
            }
            Some(due) if due <= now => {
                self.supervisor_restarts.take_due(now);
                self.supervisor_restart_due = None;
                self.kernel_timer_epoch += 1;
                if let Err(error) = self.system.restart(index, now) {
                    println!("[task] supervisor restart failed: {error:?}");
                }
            }
            Some(_) => {}
        }
    }
}

/// True if some core has the frame of slot `index` on its stack.
fn running_anywhere(index: usize) -> bool {
    RUNNING
        .iter()
        .take(smp::online_cores())
        .any(|running| (running.load(Ordering::Relaxed) & 0xFFFF) as usize == index)
}

/// Frees every ended task no core runs any more: exited ones, and killed ones other than the
/// supervisor (which the kernel restarts). Its ASID is flushed on every core before its tables
/// and pages go back to the frame allocator (cores in the kernel walk no TTBR0 tables).
fn reap(kernel: &mut TaskKernel) {
    let supervisor = kernel.system.supervisor_index();
    for index in 0..kernel.contexts.len() {
        let ended = matches!(
            kernel.system.state(index),
            Some(TaskState::Exited(_) | TaskState::Faulted(FaultKind::Killed))
        );
        if !ended || Some(index) == supervisor || running_anywhere(index) {
            continue;
        }
        let Some(context) = kernel.contexts[index].take() else {
            continue;
        };
        flush_asid(context.asid);
        layout::release(context.space, &mut kernel.frames);
        kernel.asids.free(context.asid);
        if kernel.system.release(index).is_ok() {
            kernel.released += 1;
        }
    }
}

/// Called by a core's idle wait with IRQs masked instead of `wfi` (the worker loop, or the
/// console's [`console_wait`] on core 0): runs the core's current task until the next
/// interrupt, or waits for one if there is none.
pub fn run_while_idle(core: usize) {
    let mut frame = zero_frame();
    let entered = {
        let mut guard = KERNEL.lock();
        match guard.as_mut() {
            None => false,
            Some(kernel) => {
                let now = now();
                account_time(kernel, core, now);
                kernel.tend_supervisor(now);
                reap(kernel);
                kernel.system.reschedule(CoreId(core), now);
                let task = kernel.load_current(core, &mut frame, now);
                kernel.send_kicks(core);
                program_wakeup(kernel, core);
                if let Some(task) = task {
                    RUNNING[core].store(task.to_raw(), Ordering::Relaxed);
                }
                task.is_some()
            }
        }
    };
    // An idle core needs no tick (its wake-ups are task timers, SGIs and device interrupts);
    // core 0 keeps it if the console has no UART interrupt and polls on every wake-up. The
    // console restarts it before each command ([`console_busy`]: commands may wait for time
    // with `wfi`); worker-pool jobs run without it (they never wait for time, and inference
    // then takes no tick interrupts on the workers).
    if core != 0 || crate::interrupts::console_has_interrupt() {
        timer::set_periodic_tick(entered);
    }
    if !entered {
        cpu::wait_for_interrupt();
        return;
    }
    let context = KERNEL_CONTEXTS[core].0.get();
    // SAFETY: `frame` is a complete EL0 frame (SPSR EL0t) of a task whose tables are in TTBR0;
    // the context cell is this core's own; task_leave returns here with every callee-saved
    // register restored.
    unsafe { task_enter(&frame, context) };
}

/// Returns this core to its idle loop (the interrupted task's frame is saved already): TTBR0
/// walks off, no task on this core, then the lock is released. Never returns.
fn leave_to_kernel(kernel_guard: spin::MutexGuard<'_, Option<TaskKernel>>, core: usize) -> ! {
    clear_user_translation(core);
    if let Some(running) = RUNNING.get(core) {
        running.store(NO_TASK, Ordering::Relaxed);
    }
    drop(kernel_guard);
    // SAFETY: this core entered its task through task_enter with this context, and the
    // exception handler that calls this holds no lock and owns nothing that needs dropping.
    unsafe { task_leave(KERNEL_CONTEXTS[core].0.get()) }
}

/// An IRQ taken from EL0 has been handled: save the task and go back to the idle loop, which
/// lets the kernel look for work (a worker-pool job) before the task resumes.
pub fn after_user_interrupt(frame: &mut TrapFrame) {
    let core = cpu::core_index();
    let running = RUNNING[core].load(Ordering::Relaxed);
    let mut guard = KERNEL.lock();
    if let Some(kernel) = guard.as_mut() {
        kernel.save(running, frame);
    }
    leave_to_kernel(guard, core)
}

fn fault_kind(esr: u64, far: u64, elr: u64, vector: u64) -> FaultKind {
    let class = (esr >> 26) & 0x3F;
    let fault_status = esr & 0x3F;
    if vector != 8 {
        return FaultKind::IllegalInstruction {
            address: elr,
            syndrome: esr as u32,
        };
    }
    match class {
        0x24 if fault_status == 0b100001 => FaultKind::Alignment { address: far },
        0x24 => FaultKind::MemoryAccess {
            address: far,
            write: esr & (1 << 6) != 0,
        },
        0x20 => FaultKind::InstructionFetch { address: elr },
        0x22 => FaultKind::Alignment { address: elr },
        0x26 => FaultKind::Alignment { address: far },
        0x3C => FaultKind::Breakpoint {
            address: elr,
            immediate: (esr & 0xFFFF) as u16,
        },
        _ => FaultKind::IllegalInstruction {
            address: elr,
            syndrome: esr as u32,
        },
    }
}

/// A synchronous exception (or FIQ/SError/AArch32 vector) from EL0: `svc` goes to the task
/// system; anything else is the task's fault. Ends by resuming a task or leaving to the kernel.
pub fn user_synchronous(frame: &mut TrapFrame, esr: u64, far: u64) {
    let core = cpu::core_index();
    let running = RUNNING[core].load(Ordering::Relaxed);
    let now = now();
    let mut guard = KERNEL.lock();
    let Some(kernel) = guard.as_mut() else {
        leave_to_kernel(guard, core)
    };
    let class = (esr >> 26) & 0x3F;
    let index = (running & 0xFFFF) as usize;
    if frame.kind == 8 && class == 0x15 {
        kernel.syscalls += 1;
        let mut arguments = [0u64; 6];
        arguments.copy_from_slice(&frame.registers[0..6]);
        let number = frame.registers[8];
        kernel.save(running, frame);
        let TaskKernel {
            system,
            contexts,
            frames,
            ..
        } = kernel;
        let mut user_memory = LinearUserMemory { contexts, frames };
        let effect = system.syscall(
            CoreId(core),
            now,
            number,
            &arguments,
            &mut user_memory,
            &mut ConsoleSink,
        );
        if effect == SyscallEffect::Exited {
            let name = system
                .descriptor(index)
                .map(|d| d.name.as_str())
                .unwrap_or("?");
            println!("[task] exit name={name} id={running:#x}");
        }
    } else {
        kernel.faults += 1;
        kernel.save(running, frame);
        let kind = fault_kind(esr, far, frame.exception_link, frame.kind);
        if let Some(task) = kernel.system.fault(CoreId(core), kind, now) {
            let name = kernel
                .system
                .descriptor(index)
                .map(|d| d.name.as_str())
                .unwrap_or("?");
            println!(
                "[task] fault name={name} id={:#x} core={core} kind={kind:?} pc={:#x}",
                task.to_raw(),
                frame.exception_link,
            );
        }
        kernel.tend_supervisor(now);
    }
    let next = kernel.load_current(core, frame, now);
    kernel.send_kicks(core);
    program_wakeup(kernel, core);
    match next {
        Some(next) => RUNNING[core].store(next.to_raw(), Ordering::Relaxed),
        None => leave_to_kernel(guard, core),
    }
}

/// The scheduler's view of the timer: called from a core's idle loop (never from interrupt
/// context, which may have interrupted code holding the heap or console lock). Fires every task
/// timer due by now (the core's one-shot comparator brought it here at the earliest deadline,
/// see [`program_wakeup`]); if the core took periodic ticks since the last call, charges its
/// task one tick (even if several passed while the kernel kept the core) for slices and CPU
/// time.
fn account_time(kernel: &mut TaskKernel, core: usize, now: Instant) {
    kernel.system.fire_timers(now);
    let ticks = smp::PER_CORE
        .get(core)
        .map_or(0, |slot| slot.ticks.load(Ordering::Relaxed));
    let Some(seen) = TICKS_SEEN.get(core) else {
        return;
    };
    if seen.swap(ticks, Ordering::Relaxed) != ticks {
        kernel.system.tick(CoreId(core), now);
    }
}

/// Programs this core's one-shot wake-up for the earliest task timer armed on it, or the
/// supervisor's restart (IRQs are masked: the caller holds the task lock). Looks at the timer
/// queue only when it changed since this core last did.
fn program_wakeup(kernel: &TaskKernel, core: usize) {
    let Some(seen) = TIMER_EPOCH_SEEN.get(core) else {
        return;
    };
    // Both epochs only grow, so their sum moves whenever either does.
    let epoch = kernel
        .system
        .timer_epoch()
        .wrapping_add(kernel.kernel_timer_epoch);
    if seen.swap(epoch, Ordering::Relaxed) == epoch {
        return;
    }
    let task_deadline = kernel.system.next_timer_deadline_on(CoreId(core));
    let deadline = match (task_deadline, kernel.supervisor_restart_due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    timer::set_wakeup(deadline.map(|at| timer::counter_at_nanoseconds(at.0)));
}
