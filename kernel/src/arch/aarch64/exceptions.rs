//! EL1 exceptions: the vector table, the saved context, fault reports, IRQ dispatch.
//!
//! Design: one assembly path (exception_vectors.S) saves everything into a [`TrapFrame`] and
//! calls [`exception_dispatch`] with the vector's index. IRQs go to the interrupt controller's
//! dispatcher (`crate::interrupts`); a synchronous exception at EL1 is a kernel bug or a
//! deliberate `fault` command, so it is reported in words (ESR class and fault status decoded by
//! `kcore::esr`, FAR, ELR, SPSR, core, and whether FAR is a stack guard page) and the machine
//! stops with exit status 2. Nothing here allocates: the heap may be what broke.

use aarch64_cpu::registers::{Readable, ESR_EL1, FAR_EL1};
use kcore::esr::Syndrome;

core::arch::global_asm!(include_str!("exception_vectors.S"));

/// The context saved by the vector code. Layout shared with exception_vectors.S.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TrapFrame {
    /// x0 .. x30.
    pub registers: [u64; 31],
    /// ELR_EL1: where the exception was taken.
    pub exception_link: u64,
    /// SPSR_EL1: the interrupted PSTATE.
    pub saved_status: u64,
    /// Which of the 16 vectors was taken.
    pub kind: u64,
    /// SP_EL0: an EL0 task's stack pointer (restored on return, so a task switch can replace it).
    pub stack_pointer_el0: u64,
    /// TPIDR_EL0: an EL0 task's thread pointer.
    pub thread_pointer_el0: u64,
    /// q0 .. q31.
    pub simd: [u128; 32],
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 816);

const VECTOR_NAMES: [&str; 16] = [
    "synchronous (EL1, SP_EL0)",
    "IRQ (EL1, SP_EL0)",
    "FIQ (EL1, SP_EL0)",
    "SError (EL1, SP_EL0)",
    "synchronous (EL1)",
    "IRQ (EL1)",
    "FIQ (EL1)",
    "SError (EL1)",
    "synchronous (EL0, AArch64)",
    "IRQ (EL0, AArch64)",
    "FIQ (EL0, AArch64)",
    "SError (EL0, AArch64)",
    "synchronous (EL0, AArch32)",
    "IRQ (EL0, AArch32)",
    "FIQ (EL0, AArch32)",
    "SError (EL0, AArch32)",
];

/// Called by the vector code with the saved frame.
#[no_mangle]
extern "C" fn exception_dispatch(frame: &mut TrapFrame) {
    match frame.kind {
        5 => crate::interrupts::handle_irq(),
        // From an EL0 task: the task layer decides whether it resumes, switches or goes back
        // to the kernel's idle loop; a task's fault never reaches `fatal_exception`.
        9 => {
            crate::interrupts::handle_irq();
            crate::task::after_user_interrupt(frame)
        }
        8 => crate::task::user_synchronous(frame, ESR_EL1.get(), FAR_EL1.get()),
        10..=15 => crate::task::user_synchronous(frame, ESR_EL1.get(), FAR_EL1.get()),
        _ => fatal_exception(frame),
    }
}

/// Set while a fault report is being printed: a fault inside the report (a broken console, say)
/// must not recurse, so the second one exits at once.
static REPORTING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

fn fatal_exception(frame: &TrapFrame) -> ! {
    if REPORTING.swap(true, core::sync::atomic::Ordering::AcqRel) {
        crate::power::exit_silently(crate::power::EXIT_FATAL_EXCEPTION);
    }
    let syndrome = Syndrome::new(ESR_EL1.get());
    let fault_address = FAR_EL1.get();
    let core = super::cpu::core_index();
    let vector = VECTOR_NAMES
        .get(frame.kind as usize)
        .copied()
        .unwrap_or("unknown vector");
    let mut out = crate::console::EmergencyWriter;
    use core::fmt::Write;
    let _ = write!(out, "\n[fault] core {core}: {syndrome}\n");
    let _ = write!(
        out,
        "[fault] vector {vector}, ESR={:#010x} FAR={fault_address:#018x} ELR={:#018x} SPSR={:#010x}\n",
        syndrome.raw, frame.exception_link, frame.saved_status
    );
    if syndrome.is_abort() {
        if let Some(owner) = crate::memory::guard_page_owner(fault_address) {
            let _ = write!(
                out,
                "[fault] FAR is the guard page under core {owner}'s stack (stack overflow?)\n"
            );
        }
    }
    let _ = write!(
        out,
        "[fault] lr={:#018x} sp-frame at {:#018x}\n",
        frame.registers[30], frame as *const _ as u64
    );
    crate::power::exit(crate::power::EXIT_FATAL_EXCEPTION)
}
