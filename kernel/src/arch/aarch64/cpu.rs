//! Small CPU helpers: which core am I, interrupt masking, wait instructions, cache maintenance.

use aarch64_cpu::registers::{Readable, MIDR_EL1, MPIDR_EL1, TPIDR_EL1};

/// This core's index (0 = boot core), set in TPIDR_EL1 by the boot code.
#[inline]
pub fn core_index() -> usize {
    TPIDR_EL1.get() as usize
}

/// MPIDR_EL1 affinity bits (Aff3..Aff0) of this core.
#[inline]
pub fn mpidr_affinity() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// MIDR_EL1 of this core.
#[inline]
pub fn midr() -> u64 {
    MIDR_EL1.get()
}

/// Masks IRQs on this core; returns whether they were unmasked before.
#[inline]
pub fn mask_irqs() -> bool {
    let daif: u64;
    // SAFETY: reading DAIF and setting the I bit only changes this core's interrupt masking.
    unsafe {
        core::arch::asm!("mrs {0}, daif", "msr daifset, #2", out(reg) daif, options(nomem, nostack));
    }
    daif & (1 << 7) == 0
}

/// Unmasks IRQs on this core.
#[inline]
pub fn unmask_irqs() {
    // SAFETY: clearing the I bit lets this core take IRQs; handlers are installed before any
    // caller runs (VBAR_EL1 is set in the boot code).
    unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// Restores the IRQ mask state returned by [`mask_irqs`].
#[inline]
pub fn restore_irqs(were_enabled: bool) {
    if were_enabled {
        unmask_irqs();
    }
}

/// Waits for an interrupt (also wakes on a pending masked interrupt). QEMU halts the vCPU thread
/// in `wfi`, so idle cores cost the host nothing.
#[inline]
pub fn wait_for_interrupt() {
    // SAFETY: wfi only suspends this core until an interrupt or wake-up event.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
}

/// Sends an event to all cores (wakes `wfe`, releases spin-table cores).
#[inline]
pub fn send_event() {
    // SAFETY: sev has no effect beyond setting the event register of every core.
    unsafe { core::arch::asm!("sev", options(nomem, nostack)) };
}

/// Full-system data synchronization barrier.
#[inline]
pub fn dsb_sy() {
    // SAFETY: a barrier has no effect other than ordering memory accesses.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Cleans and invalidates the data cache lines covering `[address, address + length)` to the
/// point of coherency, so an observer with its MMU or caches off (a core being started) reads
/// what this core wrote.
pub fn clean_data_cache_range(address: u64, length: u64) {
    const LINE: u64 = 64; // smallest data cache line of the cores we run on (A53/A72: 64 bytes)
    let mut line = address & !(LINE - 1);
    while line < address + length {
        // SAFETY: `dc civac` on a mapped address only writes back and drops a cache line.
        unsafe { core::arch::asm!("dc civac, {0}", in(reg) line, options(nostack)) };
        line += LINE;
    }
    dsb_sy();
}

/// Stops this core for good: interrupts masked, waiting forever.
pub fn halt() -> ! {
    mask_irqs();
    loop {
        wait_for_interrupt();
    }
}
