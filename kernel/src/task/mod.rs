//! EL0 tasks in the kernel: entry and exit, the frame switch, `svc` dispatch into
//! `tasking::TaskSystem`, faults, the timer tick, and the console commands `spawn`, `ps`,
//! `kill`, `sched`.
//!
//! Design. The portable core (`kernel/tasking`) decides everything: who runs where, what a
//! syscall does, who is stopped and when a stopped task restarts. This module only moves
//! registers and pages between the CPU and that core.
//!
//! - **Kernel first.** Each core's kernel code (the shell on core 0, the worker loop on the
//!   others) has priority over tasks: tasks run only from a worker core's idle loop, which calls
//!   [`run_while_idle`] instead of `wfi`. That enters the current task with `task_enter` (assembly
//!   beside the vectors) and returns to the loop on the next interrupt (`task_leave`), so the
//!   worker pool and the inference engine never wait for a task, and a task can never starve the
//!   console. Core 0 never runs tasks (its idle wait is the console's), so the task system's
//!   cores are the worker cores; with one core online `spawn` refuses.
//! - **Frames.** Every task has a saved [`TrapFrame`] (x0-x30, ELR, SPSR, SP_EL0, TPIDR_EL0,
//!   q0-q31, FPCR, FPSR: FP/SIMD state is per task for free). A syscall or fault from EL0 ends by
//!   asking the task system who is current on this core: the same task resumes with its result
//!   registers, another task's frame is copied over the one on the stack (and TTBR0 switched),
//!   or, with nothing to run, the frame is saved and the core goes back to its idle loop.
//! - **Address spaces.** `tasking::layout` builds 4-level TTBR0 tables from the ELF image into
//!   frames of the kernel's frame allocator; each task slot has one ASID for its life (64 tasks,
//!   256 ASIDs), so a switch is `msr ttbr0_el1` with no TLB flush.
//! - **Faults and restarts.** A fault from EL0 stops the task (`TaskSystem::fault`), prints one
//!   `[task] fault ...` line, and the kernel-side `tasking::supervisor::Supervisor` schedules its
//!   restart with exponential back-off; the idle loop's tick accounting performs due restarts.
//! - **Ticks and timers.** Interrupt handlers never touch the task system (they may have
//!   interrupted code holding the heap or console lock): an IRQ from EL0 only sends the core
//!   back to its idle loop, which fires due task timers and charges the elapsed tick to the task
//!   ([`account_time`]) before choosing again. Sleeps and timers do not wait for the 100 Hz
//!   tick: every pass programs the core's one-shot comparator for the earliest timer armed on it
//!   ([`program_wakeup`], `timer::set_wakeup`), so a wake-up comes at its deadline. Slices are
//!   whole ticks: the policy is built for the kernel's real tick period. Killed and exited
//!   tasks are not restarted.
//! - **Locking.** One spin lock around the whole [`TaskKernel`], always taken with IRQs masked
//!   (exception handlers run masked; console commands mask), so an IRQ never spins on a lock its
//!   own core holds.

#![allow(unsafe_code)]

mod memory;

use crate::arch::aarch64::exceptions::TrapFrame;
use crate::arch::aarch64::{cpu, smp, timer};
use crate::limits::MAX_CPUS;
use crate::println;
use abi::{FaultKind, TaskId};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use memory::{FrameAllocator, LinearUserMemory};
use spin::Mutex;
use tasking::layout::{self, AddressSpacePlan, BuiltAddressSpace};
use tasking::pagetable::{Asid, AsidAllocator};
use tasking::policy::{DefaultPolicy, SchedPolicy};
use tasking::sched::{CoreId, CoreMask, Priority};
use tasking::supervisor::{RestartPolicy, Supervisor};
use tasking::system::{LogSink, SyscallEffect, TaskSystem};
use tasking::time::Instant;

mod images {
    include!(concat!(env!("OUT_DIR"), "/user_tasks.rs"));
}

/// Priority of a task started from the console (0 most urgent, 7 least): the latency-sensitive
/// workload above the rest, the batch spinner below, everything else in the middle.
fn console_priority(name: &str) -> u8 {
    match name {
        "latency" => 1,
        "spin" => 6,
        _ => 4,
    }
}
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
    contexts: Vec<TaskContext>,
    supervisor: Supervisor,
    asids: AsidAllocator,
    frames: FrameAllocator,
    syscalls: u64,
    faults: u64,
}

static KERNEL: Mutex<Option<TaskKernel>> = Mutex::new(None);

/// The task whose frame is on each core's exception stack (raw id, [`NO_TASK`] for none).
static RUNNING: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(NO_TASK) }; MAX_CPUS];

/// Each core's timer-tick count when the task system last accounted for it.
static TICKS_SEEN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Each core's view of `TaskSystem::timer_epoch` when it last programmed its wake-up
/// comparator (`u64::MAX`: never).
static TIMER_EPOCH_SEEN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

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

/// Runs `work` on the task kernel with IRQs masked (creating it on first use).
fn with_kernel<R>(work: impl FnOnce(&mut TaskKernel) -> R) -> R {
    let were_enabled = cpu::mask_irqs();
    let result = {
        let mut guard = KERNEL.lock();
        let kernel = guard.get_or_insert_with(|| TaskKernel {
            system: TaskSystem::new(
                smp::online_cores().max(1),
                DefaultPolicy::for_tick_period(1_000_000_000 / crate::limits::TICK_HZ.max(1)),
            ),
            contexts: Vec::new(),
            supervisor: Supervisor::new(RestartPolicy::default(), tasking::limits::MAX_TASKS),
            asids: AsidAllocator::new(),
            frames: FrameAllocator,
            syscalls: 0,
            faults: 0,
        });
        work(kernel)
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

/// The TTBR0 value each core runs its task with (0: TTBR0 walks disabled, EPD0 set).
static LOADED_TTBR0: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

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
    if before != 0 {
        // SAFETY: the kernel runs from TTBR1 only; TTBR0 holds user tables whose entries are
        // nG and tagged with the task's ASID, so switching needs no flush.
        unsafe {
            core::arch::asm!("msr ttbr0_el1, {ttbr0}", "isb", ttbr0 = in(reg) ttbr0, options(nostack));
        }
        return;
    }
    // SAFETY: as above; clearing TCR_EL1.EPD0 lets the MMU walk TTBR0 for EL0 (the boot
    // identity map it replaced is gone).
    unsafe {
        core::arch::asm!(
            "msr ttbr0_el1, {ttbr0}",
            "mrs {t}, tcr_el1",
            "bic {t}, {t}, #(1 << 7)",
            "msr tcr_el1, {t}",
            "isb",
            ttbr0 = in(reg) ttbr0,
            t = out(reg) _,
            options(nostack)
        );
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

impl TaskKernel {
    /// Puts `task`'s frame (fresh after a (re)start, with pending results) into `frame` and
    /// switches TTBR0 to its tables.
    fn load(&mut self, task: TaskId, frame: &mut TrapFrame) {
        let index = task.index_usize();
        let Some(context) = self.contexts.get_mut(index) else {
            return;
        };
        if let Some(start) = self.system.take_start_request(task) {
            if context.started_once {
                println!("[task] restart id={:#x}", task.to_raw());
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
    }

    fn save(&mut self, task: u32, frame: &TrapFrame) {
        if let Some(context) = self.contexts.get_mut((task & 0xFFFF) as usize) {
            *context.frame = *frame;
        }
    }

    fn send_kicks(&mut self, own_core: usize) {
        let kicks = self.system.take_kicks();
        // Core 0 never runs tasks (its idle wait is the console's): kicking it is pointless.
        for core in 1..smp::online_cores() {
            if core != own_core && kicks.contains(CoreId(core)) {
                crate::interrupts::send_sgi(smp::WAKE_SGI, core);
            }
        }
    }
}

/// Called by a worker core's idle loop with IRQs masked instead of `wfi`: runs the core's current
/// task until the next interrupt, or waits for one if there is none.
pub fn run_while_idle(core: usize) {
    let mut frame = zero_frame();
    let entered = {
        let mut guard = KERNEL.lock();
        match guard.as_mut() {
            None => false,
            Some(kernel) => {
                let now = now();
                account_time(kernel, core, now);
                kernel.system.reschedule(CoreId(core), now);
                program_wakeup(kernel, core);
                match kernel.system.current(CoreId(core), now) {
                    Some(task) => {
                        kernel.load(task, &mut frame);
                        kernel.send_kicks(core);
                        RUNNING[core].store(task.to_raw(), Ordering::Relaxed);
                        true
                    }
                    None => false,
                }
            }
        }
    };
    // An idle worker core needs no tick (its wake-ups are task timers and SGIs); core 0 keeps
    // its tick for the console, which polls the UART on each wake-up when it has no interrupt.
    if core != 0 {
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

/// Saves the interrupted task's frame and returns this core to its idle loop. Never returns.
fn leave_to_kernel(kernel_guard: spin::MutexGuard<'_, Option<TaskKernel>>, core: usize) -> ! {
    drop(kernel_guard);
    RUNNING[core].store(NO_TASK, Ordering::Relaxed);
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
    if guard.is_none() {
        leave_to_kernel(guard, core)
    }
    let Some(kernel) = guard.as_mut() else {
        return;
    };
    let class = (esr >> 26) & 0x3F;
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
            let index = (running & 0xFFFF) as usize;
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
        let index = (running & 0xFFFF) as usize;
        if let Some(task) = kernel.system.fault(CoreId(core), kind, now) {
            let name = kernel
                .system
                .descriptor(index)
                .map(|d| d.name.as_str())
                .unwrap_or("?");
            let restart_at = kernel.supervisor.on_stopped(index, now).ok();
            let delay_ms = restart_at.map(|at| at.0.saturating_sub(now.0) / 1_000_000);
            println!(
                "[task] fault name={name} id={:#x} core={core} kind={kind:?} pc={:#x} restart_in_ms={}",
                task.to_raw(),
                frame.exception_link,
                delay_ms.map_or(-1, |ms| ms as i64)
            );
        }
    }
    kernel.send_kicks(core);
    program_wakeup(kernel, core);
    match kernel.system.current(CoreId(core), now) {
        Some(next) if next.to_raw() == running => kernel.load(next, frame),
        Some(next) => {
            kernel.load(next, frame);
            RUNNING[core].store(next.to_raw(), Ordering::Relaxed);
        }
        None => leave_to_kernel(guard, core),
    }
}

/// The scheduler's view of the timer: called from a core's idle loop (never from interrupt
/// context, which may have interrupted code holding the heap or console lock). Fires every task
/// timer due by now (the core's one-shot comparator brought it here at the earliest deadline,
/// see [`program_wakeup`]); if the core took periodic ticks since the last call, charges its
/// task one tick (even if several passed while the kernel kept the core) for slices and CPU
/// time; performs due restarts.
fn account_time(kernel: &mut TaskKernel, core: usize, now: Instant) {
    kernel.system.fire_timers(now);
    let ticks = smp::PER_CORE
        .get(core)
        .map_or(0, |slot| slot.ticks.load(Ordering::Relaxed));
    let Some(seen) = TICKS_SEEN.get(core) else {
        return;
    };
    if seen.swap(ticks, Ordering::Relaxed) == ticks {
        return;
    }
    kernel.system.tick(CoreId(core), now);
    while let Some(index) = kernel.supervisor.take_due(now) {
        let _ = kernel.system.restart(index, now);
    }
}

/// Programs this core's one-shot wake-up for the earliest task timer armed on it (IRQs are
/// masked: the caller holds the task lock). Looks at the timer queue only when it changed
/// since this core last did.
fn program_wakeup(kernel: &TaskKernel, core: usize) {
    let Some(seen) = TIMER_EPOCH_SEEN.get(core) else {
        return;
    };
    let epoch = kernel.system.timer_epoch();
    if seen.swap(epoch, Ordering::Relaxed) == epoch {
        return;
    }
    let deadline = kernel.system.next_timer_deadline_on(CoreId(core));
    timer::set_wakeup(deadline.map(|at| timer::counter_at_nanoseconds(at.0)));
}

/// Why a task could not be started.
#[derive(Debug, Clone, Copy)]
enum SpawnFailure {
    NoAsid,
    OutOfFrames,
    TableFull,
    Refused,
}

impl SpawnFailure {
    fn describe(self) -> &'static str {
        match self {
            SpawnFailure::NoAsid => "no ASID left",
            SpawnFailure::OutOfFrames => "out of frames for its page tables",
            SpawnFailure::TableFull => "the task table is full",
            SpawnFailure::Refused => "the task system refused it",
        }
    }
}

impl TaskKernel {
    /// Builds an address space for `image` and makes it a runnable task.
    fn spawn_image(
        &mut self,
        name: &str,
        bytes: &'static [u8],
        image: &tasking::elf::ElfImage<'_>,
        plan: &AddressSpacePlan,
        affinity: CoreMask,
    ) -> Result<TaskId, SpawnFailure> {
        if self.contexts.len() >= tasking::limits::MAX_TASKS {
            return Err(SpawnFailure::TableFull);
        }
        let grant = self.asids.allocate().ok_or(SpawnFailure::NoAsid)?;
        let space = match layout::build(plan, image, &mut self.frames) {
            Ok(space) => space,
            Err(_) => {
                self.asids.free(grant.asid);
                return Err(SpawnFailure::OutOfFrames);
            }
        };
        synchronize_instruction_cache();
        if grant.needs_flush {
            flush_asid(grant.asid);
        }
        let descriptor =
            plan.task_descriptor(name, Priority(console_priority(name)), affinity, false);
        self.contexts.push(TaskContext {
            frame: Box::new(zero_frame()),
            space,
            plan: plan.clone(),
            image: bytes,
            asid: grant.asid,
            started_once: false,
        });
        match self.system.spawn(descriptor, now()) {
            Ok(id) => Ok(id),
            Err(_) => {
                if let Some(context) = self.contexts.pop() {
                    layout::release(context.space, &mut self.frames);
                    self.asids.free(context.asid);
                }
                Err(SpawnFailure::Refused)
            }
        }
    }
}

/// `spawn NAME [CORE [COUNT]]`: loads an embedded image into new address spaces, COUNT copies
/// (default 1) made runnable together (so that a benchmark pair starts at the same moment).
pub fn command_spawn(arguments: &[&str], _line: &str) {
    let Some(&name) = arguments.first() else {
        let names: Vec<&str> = images::USER_IMAGES.iter().map(|(name, _)| *name).collect();
        println!(
            "usage: spawn NAME [CORE [COUNT]] (images: {})",
            names.join(", ")
        );
        return;
    };
    let Some(&(image_name, bytes)) = images::USER_IMAGES.iter().find(|(n, _)| *n == name) else {
        println!("spawn: no task image named {name:?} (try 'spawn')");
        return;
    };
    if smp::online_cores() < 2 {
        println!("spawn: tasks run on the worker cores; this machine has only core 0 online");
        return;
    }
    let image = match tasking::elf::parse(bytes) {
        Ok(image) => image,
        Err(error) => {
            println!("spawn: image {image_name} rejected: {error:?}");
            return;
        }
    };
    let plan = match layout::plan(&image, 0) {
        Ok(plan) => plan,
        Err(error) => {
            println!("spawn: image {image_name} does not fit the task layout: {error:?}");
            return;
        }
    };
    let mut affinity = CoreMask::NONE;
    match arguments.get(1).map(|text| text.parse::<usize>()) {
        None => {
            for core in 1..smp::online_cores() {
                affinity.insert(CoreId(core));
            }
        }
        Some(Ok(core)) if (1..smp::online_cores()).contains(&core) => {
            affinity.insert(CoreId(core));
        }
        Some(_) => {
            println!(
                "spawn: CORE must be a worker core, 1..{} (core 0 runs the console)",
                smp::online_cores() - 1
            );
            return;
        }
    }
    let copies = match arguments.get(2).map(|text| text.parse::<usize>()) {
        None => 1,
        Some(Ok(count)) if (1..=tasking::limits::MAX_TASKS).contains(&count) => count,
        Some(_) => {
            println!("spawn: COUNT must be 1..={}", tasking::limits::MAX_TASKS);
            return;
        }
    };
    let results = with_kernel(|kernel| {
        let results: Vec<Result<TaskId, SpawnFailure>> = (0..copies)
            .map(|_| kernel.spawn_image(image_name, bytes, &image, &plan, affinity))
            .collect();
        kernel.send_kicks(cpu::core_index());
        results
    });
    for result in results {
        match result {
            Ok(id) => println!("[task] spawned name={image_name} id={:#x}", id.to_raw()),
            Err(reason) => println!("spawn: {image_name}: {}", reason.describe()),
        }
    }
}

/// `ps`: one line per task.
pub fn command_ps(_arguments: &[&str], _line: &str) {
    let rows = with_kernel(|kernel| {
        (0..kernel.system.task_count())
            .filter_map(|index| kernel.system.task_info(index))
            .collect::<Vec<_>>()
    });
    println!("  ID        NAME          STATE      CORE PRIO RESTARTS CPU_TICKS");
    for record in rows {
        let core = record
            .core
            .map_or(alloc::string::String::from("-"), |c| alloc::format!("{c}"));
        println!(
            "  {:#08x}  {:<12}  {:<9}  {:>4} {:>4} {:>8} {:>9}",
            record.id.to_raw(),
            record.name_str(),
            alloc::format!("{:?}", record.state),
            core,
            record.priority,
            record.restarts,
            record.cpu_ticks
        );
    }
}

/// `kill ID`: stops a task (not restarted).
pub fn command_kill(arguments: &[&str], _line: &str) {
    let Some(text) = arguments.first() else {
        println!("usage: kill ID (hex 0x... or decimal, as ps shows)");
        return;
    };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse::<u32>(),
    };
    let Ok(raw) = parsed else {
        println!("kill: {text:?} is not a task id");
        return;
    };
    let id = TaskId::new((raw & 0xFFFF) as u16, abi::Generation((raw >> 16) as u16));
    let result = with_kernel(|kernel| {
        let result = kernel.system.kill(id, now());
        kernel.send_kicks(cpu::core_index());
        result
    });
    match result {
        Ok(()) => println!("[task] killed id={raw:#x}"),
        Err(error) => println!("kill: {raw:#x}: {error:?}"),
    }
}

/// `sched`: the policy and per-core run-queue statistics.
pub fn command_sched(_arguments: &[&str], _line: &str) {
    let lines = with_kernel(|kernel| {
        let scheduler = kernel.system.scheduler();
        let mut lines = Vec::new();
        lines.push(alloc::format!(
            "policy: {}  syscalls: {}  faults: {}",
            scheduler.policy().name(),
            kernel.syscalls,
            kernel.faults
        ));
        for core in 0..smp::online_cores() {
            let Some(stats) = scheduler.core_stats(CoreId(core)) else {
                continue;
            };
            let micros = |value: Option<u64>| value.map_or(-1, |ns| (ns / 1000) as i64);
            lines.push(alloc::format!(
                "core {core}: wait_p50_us={} wait_p99_us={} waits={} dispatches={} preemptions={} busy_ticks={} idle_ticks={} migrations_in={} steals={}",
                micros(stats.wait.p50()),
                micros(stats.wait.p99()),
                stats.wait.count(),
                stats.dispatches,
                stats.preemptions,
                stats.busy_ticks,
                stats.idle_ticks,
                stats.migrations_in,
                stats.steals
            ));
        }
        lines
    });
    for line in lines {
        println!("{line}");
    }
}

/// `top [ROUNDS]`: `ps` with each task's share of a core over the last second, refreshed once a
/// second for ROUNDS rounds (default 5, at most 60).
pub fn command_top(arguments: &[&str], _line: &str) {
    let rounds = arguments
        .first()
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(5)
        .clamp(1, 60);
    let mut previous: Vec<(u32, u64)> = Vec::new();
    for round in 0..rounds {
        let rows = with_kernel(|kernel| {
            (0..kernel.system.task_count())
                .filter_map(|index| kernel.system.task_info(index))
                .collect::<Vec<_>>()
        });
        println!(
            "top: uptime {} ms, {} tasks (round {} of {rounds})",
            timer::uptime_milliseconds(),
            rows.len(),
            round + 1
        );
        println!("  ID        NAME          STATE      CORE PRIO CPU_TICKS  CPU%");
        let mut current = Vec::new();
        for record in rows {
            let id = record.id.to_raw();
            let before = previous
                .iter()
                .find(|(seen, _)| *seen == id)
                .map_or(0, |(_, ticks)| *ticks);
            let percent = if round == 0 {
                alloc::string::String::from("-")
            } else {
                let delta = record.cpu_ticks.saturating_sub(before);
                alloc::format!("{}", delta * 100 / crate::limits::TICK_HZ.max(1))
            };
            let core = record
                .core
                .map_or(alloc::string::String::from("-"), |c| alloc::format!("{c}"));
            println!(
                "  {:#08x}  {:<12}  {:<9}  {:>4} {:>4} {:>9} {:>5}",
                id,
                record.name_str(),
                alloc::format!("{:?}", record.state),
                core,
                record.priority,
                record.cpu_ticks,
                percent
            );
            current.push((id, record.cpu_ticks));
        }
        previous = current;
        if round + 1 < rounds {
            let deadline = timer::uptime_milliseconds() + 1000;
            while timer::uptime_milliseconds() < deadline {
                let were_enabled = cpu::mask_irqs();
                if were_enabled {
                    cpu::wait_for_interrupt();
                }
                cpu::restore_irqs(were_enabled);
            }
        }
    }
}
