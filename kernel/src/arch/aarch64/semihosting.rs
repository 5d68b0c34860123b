//! Arm semihosting: how a test kernel ends QEMU with an exit status.
//!
//! Only used when the command line says `semihosting` (QEMU runs with `-semihosting`): without a
//! debugger or QEMU listening, `hlt #0xf000` is an undefined instruction. SYS_EXIT_EXTENDED (0x20)
//! takes a two-word block {reason, status}; reason ADP_Stopped_ApplicationExit (0x20026) makes
//! QEMU exit with `status`. (Semihosting spec v2, "SYS_EXIT_EXTENDED".)

const SYS_EXIT_EXTENDED: u64 = 0x20;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

/// Ends the emulator with `status`. Does not return.
pub fn exit(status: u32) -> ! {
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, u64::from(status)];
    // SAFETY: the semihosting call reads the two-word block through the current translation; the
    // block lives on this stack and stays valid for the call. QEMU does not return from it.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("x0") SYS_EXIT_EXTENDED,
            in("x1") block.as_ptr(),
            options(nostack)
        );
    }
    super::cpu::halt()
}
