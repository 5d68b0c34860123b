//! The Arm generic timer: a per-core tick and the system's monotonic clock.
//!
//! The kernel uses the *virtual* timer (CNTV_*, PPI 27 on both boards per their DTBs): it is
//! accessible at EL1 whatever the firmware did with CNTHCTL_EL2, and with CNTVOFF_EL2 = 0 (set in
//! boot/entry.S when we came through EL2) it counts the same as the physical counter. Each core
//! sets the compare value CNTV_CVAL one tick ahead and, in the interrupt, advances it by exactly
//! one tick from the previous deadline (not from "now"), so handling latency does not slow the
//! tick rate; a core that fell more than a tick behind (a vCPU the host descheduled) skips ahead
//! instead of firing a burst. Uptime is CNTVCT / CNTFRQ, which does not depend on ticks.
//!
//! One-shot wake-ups. Beside the tick, each core may have one *wake-up deadline* (the earliest
//! task sleep or timer armed on it, see `crate::task`): the comparator is programmed for
//! whichever of the two comes first, so a 2 ms sleep ends after 2 ms, not at the next 10 ms
//! tick, without raising the tick rate (every interrupt is expensive under TCG, and the
//! inference engine runs on every core). The interrupt tells which of the two passed: only the
//! periodic one counts as a tick (slices and CPU time are charged in ticks). Both deadlines
//! are per-core state touched only by their own core with IRQs masked (the interrupt handler,
//! or [`set_wakeup`] called with IRQs masked), so plain relaxed atomics suffice.

use crate::limits::MAX_CPUS;
use aarch64_cpu::registers::{
    Readable, Writeable, CNTFRQ_EL0, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0,
};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static TIMER_INTERRUPT: AtomicU32 = AtomicU32::new(27);

/// No wake-up deadline.
const NO_DEADLINE: u64 = u64::MAX;

/// A core's two deadlines, in counter values.
struct CoreDeadlines {
    /// The next periodic tick.
    tick: AtomicU64,
    /// The one-shot wake-up, or [`NO_DEADLINE`].
    wakeup: AtomicU64,
}

static DEADLINES: [CoreDeadlines; MAX_CPUS] = [const {
    CoreDeadlines {
        tick: AtomicU64::new(0),
        wakeup: AtomicU64::new(NO_DEADLINE),
    }
}; MAX_CPUS];

fn own_deadlines() -> Option<&'static CoreDeadlines> {
    DEADLINES.get(super::cpu::core_index())
}

/// Programs the comparator for the earlier of the core's two deadlines.
fn program(deadlines: &CoreDeadlines) {
    let tick = deadlines.tick.load(Ordering::Relaxed);
    let wakeup = deadlines.wakeup.load(Ordering::Relaxed);
    CNTV_CVAL_EL0.set(tick.min(wakeup));
}

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
    let first = counter() + tick_interval();
    match own_deadlines() {
        Some(deadlines) => {
            deadlines.tick.store(first, Ordering::Relaxed);
            deadlines.wakeup.store(NO_DEADLINE, Ordering::Relaxed);
            program(deadlines);
        }
        None => CNTV_CVAL_EL0.set(first),
    }
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
}

/// Handles this core's timer interrupt: if the periodic tick passed, moves it one tick on and
/// returns true (a tick to count); a passed wake-up deadline is cleared (its work is the task
/// layer's next pass). Reprograms the comparator either way.
pub fn on_tick() -> bool {
    let now = counter();
    let Some(deadlines) = own_deadlines() else {
        CNTV_CVAL_EL0.set(now + tick_interval());
        return true;
    };
    let mut tick = deadlines.tick.load(Ordering::Relaxed);
    let ticked = tick != NO_DEADLINE && tick <= now;
    if ticked {
        tick = tick.saturating_add(tick_interval());
        if tick <= now {
            tick = now + tick_interval();
        }
        deadlines.tick.store(tick, Ordering::Relaxed);
    }
    if deadlines.wakeup.load(Ordering::Relaxed) <= now {
        deadlines.wakeup.store(NO_DEADLINE, Ordering::Relaxed);
    }
    program(deadlines);
    ticked
}

/// Stops (`false`) or restarts (`true`) this core's periodic tick; the wake-up deadline stays.
/// An idle worker core stops its tick so that it wakes only for a task timer, an SGI or a
/// device interrupt: under TCG each interrupt costs, and an idle core that woke 100 times a
/// second would also contend for the task lock with the cores doing work. Restarting puts the
/// next tick a whole interval ahead. Call with IRQs masked.
pub fn set_periodic_tick(enabled: bool) {
    if let Some(deadlines) = own_deadlines() {
        let running = deadlines.tick.load(Ordering::Relaxed) != NO_DEADLINE;
        if running == enabled {
            return;
        }
        let next = if enabled {
            counter() + tick_interval()
        } else {
            NO_DEADLINE
        };
        deadlines.tick.store(next, Ordering::Relaxed);
        program(deadlines);
    }
}

/// Sets (`Some(counter value)`) or clears this core's one-shot wake-up deadline and
/// reprograms the comparator. A deadline already past raises the interrupt at once. Call with
/// IRQs masked (the interrupt handler shares this core's state).
pub fn set_wakeup(deadline: Option<u64>) {
    if let Some(deadlines) = own_deadlines() {
        let deadline = deadline.unwrap_or(NO_DEADLINE);
        if deadlines.wakeup.swap(deadline, Ordering::Relaxed) != deadline {
            program(deadlines);
        }
    }
}

/// The counter value at which `nanoseconds` since boot have passed (rounded up, so that the
/// time read back at that counter value is never earlier than asked).
pub fn counter_at_nanoseconds(nanoseconds: u64) -> u64 {
    let ticks = (u128::from(nanoseconds) * u128::from(frequency())).div_ceil(1_000_000_000);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// Busy-waits `milliseconds` (boot only: waiting for a core to come up).
pub fn spin_wait_until(deadline_counter: u64) -> bool {
    counter() >= deadline_counter
}

/// Counter value `milliseconds` from now.
pub fn deadline_after_milliseconds(milliseconds: u64) -> u64 {
    counter().saturating_add(frequency().saturating_mul(milliseconds) / 1000)
}
