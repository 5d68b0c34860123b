//! Ending the machine: exit statuses through semihosting, PSCI SYSTEM_OFF, or a halt.
//!
//! The contract with the test harness: before exiting the kernel prints `[kernel] exit status=N`;
//! with `semihosting` on the command line QEMU exits with N (0 after `poweroff`, 1 after a panic,
//! 2 after a fatal exception). Without it, status 0 powers off through PSCI on boards that have it
//! (virt) and otherwise every core halts (the Pi has no PSCI; a person reads the console).

use core::sync::atomic::{AtomicBool, Ordering};
use kcore::device_tree::PsciConduit;
use spin::Once;

/// Exit status after `poweroff`.
pub const EXIT_POWEROFF: u32 = 0;
/// Exit status after a Rust panic.
pub const EXIT_PANIC: u32 = 1;
/// Exit status after a fatal exception (fault).
pub const EXIT_FATAL_EXCEPTION: u32 = 2;

static SEMIHOSTING: AtomicBool = AtomicBool::new(false);
static PSCI: Once<PsciConduit> = Once::new();

/// Records how to exit (from the command line and the DTB).
pub fn configure(semihosting: bool, psci: Option<PsciConduit>) {
    SEMIHOSTING.store(semihosting, Ordering::Relaxed);
    if let Some(conduit) = psci {
        PSCI.call_once(|| conduit);
    }
}

/// Whether exits go through semihosting.
pub fn semihosting_enabled() -> bool {
    SEMIHOSTING.load(Ordering::Relaxed)
}

/// Ends the machine with `status` without printing (a fault while reporting a fault).
pub fn exit_silently(status: u32) -> ! {
    if semihosting_enabled() {
        crate::arch::aarch64::semihosting::exit(status);
    }
    crate::arch::aarch64::cpu::halt()
}

/// Prints the exit line and ends the machine with `status`.
pub fn exit(status: u32) -> ! {
    use core::fmt::Write;
    let _ = write!(
        crate::console::EmergencyWriter,
        "[kernel] exit status={status}\n"
    );
    crate::console::flush();
    if semihosting_enabled() {
        crate::arch::aarch64::semihosting::exit(status);
    }
    if status == EXIT_POWEROFF {
        if let Some(conduit) = PSCI.get() {
            crate::arch::aarch64::psci::system_off(*conduit);
        }
    }
    crate::arch::aarch64::cpu::halt()
}
