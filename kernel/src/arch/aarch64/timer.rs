//! The Arm generic timer: a per-core tick and the system's monotonic clock.
//!
//! The kernel uses the *virtual* timer (CNTV_*, PPI 27 on both boards per their DTBs): it is
//! accessible at EL1 whatever the firmware did with CNTHCTL_EL2, and with CNTVOFF_EL2 = 0 (set in
//! boot/entry.S when we came through EL2) it counts the same as the physical counter. Each core
//! sets the compare value CNTV_CVAL one tick ahead and, in the interrupt, advances it by exactly
//! one tick from the previous deadline (not from "now"), so handling latency does not slow the
//! tick rate; a core that fell more than a tick behind (a vCPU the host descheduled) skips ahead
//! instead of firing a burst. Uptime is CNTVCT / CNTFRQ, which does not depend on ticks.

use aarch64_cpu::registers::{
    Readable, Writeable, CNTFRQ_EL0, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0,
};
use core::sync::atomic::{AtomicU32, Ordering};

static TIMER_INTERRUPT: AtomicU32 = AtomicU32::new(27);

/// Counter frequency in Hz (never 0).
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get().max(1)
}

/// The counter value.
pub fn counter() -> u64 {
    // SAFETY: isb orders the counter read after earlier instructions (it is not self-synchronizing).
    unsafe { core::arch::asm!("isb", options(nostack)) };
    CNTVCT_EL0.get()
}

/// Milliseconds since the counter started (the machine booted).
pub fn uptime_milliseconds() -> u64 {
    (u128::from(counter()) * 1000 / u128::from(frequency())) as u64
}

/// The GIC interrupt id of the timer tick.
pub fn interrupt_id() -> u32 {
    TIMER_INTERRUPT.load(Ordering::Relaxed)
}

/// Records the tick interrupt id from the DTB (virtual timer PPI).
pub fn set_interrupt_id(id: u32) {
    TIMER_INTERRUPT.store(id, Ordering::Relaxed);
}

fn tick_interval() -> u64 {
    (frequency() / crate::limits::TICK_HZ).max(1)
}

/// Starts this core's tick.
pub fn start_tick_on_this_core() {
    CNTV_CVAL_EL0.set(counter() + tick_interval());
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
}

/// Handles this core's tick interrupt: moves the deadline one tick on.
pub fn on_tick() {
    let now = counter();
    let mut deadline = CNTV_CVAL_EL0.get().saturating_add(tick_interval());
    if deadline <= now {
        deadline = now + tick_interval();
    }
    CNTV_CVAL_EL0.set(deadline);
}

/// Busy-waits `milliseconds` (boot only: waiting for a core to come up).
pub fn spin_wait_until(deadline_counter: u64) -> bool {
    counter() >= deadline_counter
}

/// Counter value `milliseconds` from now.
pub fn deadline_after_milliseconds(milliseconds: u64) -> u64 {
    counter().saturating_add(frequency().saturating_mul(milliseconds) / 1000)
}
