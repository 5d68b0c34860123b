//! PSCI (Arm DEN 0022): starting cores and powering off through the firmware.
//!
//! The conduit (hvc or smc) comes from the DTB `/psci` node: QEMU virt without EL2 emulation
//! answers `hvc`, a board with EL3 firmware answers `smc`. Function ids are the SMC64 forms.

use kcore::device_tree::PsciConduit;

const CPU_ON_64: u64 = 0xc400_0003;
const SYSTEM_OFF: u64 = 0x8400_0008;

/// A PSCI error code (negative values of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsciError(pub i64);

fn call(conduit: PsciConduit, function: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let result: u64;
    match conduit {
        // SAFETY: a PSCI call traps to the firmware, which follows the SMC calling convention:
        // x0-x3 in, x0 out, x4-x17 may be clobbered (declared below).
        PsciConduit::Hvc => unsafe {
            core::arch::asm!("hvc #0", inout("x0") function => result, inout("x1") a1 => _,
                inout("x2") a2 => _, inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _,
                out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _, options(nostack));
        },
        // SAFETY: as above, through the secure monitor.
        PsciConduit::Smc => unsafe {
            core::arch::asm!("smc #0", inout("x0") function => result, inout("x1") a1 => _,
                inout("x2") a2 => _, inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _,
                out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _, options(nostack));
        },
    }
    result as i64
}

/// CPU_ON: starts the core with affinity `mpidr` at physical address `entry` (MMU off).
pub fn cpu_on(conduit: PsciConduit, mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    match call(conduit, CPU_ON_64, mpidr, entry, context) {
        0 => Ok(()),
        code => Err(PsciError(code)),
    }
}

/// SYSTEM_OFF. Returns only if the firmware refused.
pub fn system_off(conduit: PsciConduit) {
    call(conduit, SYSTEM_OFF, 0, 0, 0);
}
