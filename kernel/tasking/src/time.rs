//! Time as the portable core sees it: monotonic nanoseconds and scheduler ticks.
//!
//! The kernel converts the generic timer's counter (CNTPCT_EL0 at CNTFRQ_EL0, 62.5 MHz on
//! `virt`, 54 MHz on the Pi 4) into nanoseconds once, at the boundary; everything here works in
//! nanoseconds so that tests and the ABI do not depend on a board's counter frequency. Slices
//! are counted in ticks of the periodic scheduler interrupt; timers are deadlines in
//! nanoseconds, which the kernel fires with a one-shot comparator, independent of the tick.

/// A point in time: nanoseconds since boot, monotonic.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// Boot.
    pub const ZERO: Instant = Instant(0);

    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later (clocks of different
    /// cores may disagree by a few nanoseconds; a negative wait is reported as none).
    pub const fn nanos_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + nanoseconds`, saturating at the end of time.
    pub const fn plus_nanos(self, nanoseconds: u64) -> Instant {
        Instant(self.0.saturating_add(nanoseconds))
    }
}

/// A number of scheduler ticks (the kernel's periodic interrupt; the policy is told its period,
/// see [`crate::policy::DefaultPolicy::for_tick_period`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ticks(pub u64);
