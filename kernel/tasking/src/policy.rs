//! The scheduling policy interface: the two decisions an extension may take over.
//!
//! The scheduler ([`crate::sched`]) owns the mechanism: run queues, accounting, preemption,
//! migration. A policy only answers "which queued task runs next on this core" and "how long
//! may it run". Both answers are checked by the scheduler: a pick that is not in the core's
//! queue, or no pick while tasks wait, is rejected and the [`DefaultPolicy`] decides instead;
//! a slice is clamped to `[MIN_SLICE_TICKS, MAX_SLICE_TICKS]`. So a replaced policy (a later
//! eBPF or WASM hook) can make scheduling worse but cannot lose a task, idle a core with work
//! waiting, or hand a task the CPU forever.

use crate::limits::{
    DEFAULT_SLICE_NANOS, DEFAULT_SLICE_TICKS, DEFAULT_TICK_PERIOD_NANOS, STARVATION_THRESHOLD_NANOS,
};
use crate::sched::{CoreId, Priority};
use crate::time::{Instant, Ticks};
use abi::TaskId;

/// Per-task figures the scheduler keeps, offered to the policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct TaskStats {
    /// Current priority (0 most urgent).
    pub priority: Priority,
    /// Ticks charged while the task was current.
    pub cpu_ticks: u64,
    /// Times the task was dispatched.
    pub dispatches: u64,
    /// Times its slice ran out (it wanted more CPU).
    pub preemptions: u64,
    /// Times it gave up the CPU itself (blocked or yielded).
    pub voluntary_switches: u64,
    /// Ticks used in the most recent dispatch.
    pub last_ticks_used: u64,
    /// Wait before the most recent dispatch, nanoseconds.
    pub last_wait_nanos: u64,
    /// Sum of all waits, nanoseconds.
    pub total_wait_nanos: u64,
}

/// One runnable task waiting in a core's run queue.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct QueuedTask {
    /// The task.
    pub task: TaskId,
    /// Its priority when it was queued.
    pub priority: Priority,
    /// When it became runnable (its wait started).
    pub enqueued_at: Instant,
}

/// Read-only view of one core's run queue for [`SchedPolicy::pick_next`].
#[derive(Copy, Clone, Debug)]
pub struct RunQueueView<'a> {
    /// The core being scheduled.
    pub core: CoreId,
    /// The time of the decision.
    pub now: Instant,
    entries: &'a [QueuedTask],
    stats: &'a [TaskStats],
}

impl<'a> RunQueueView<'a> {
    /// Builds a view; `stats` is indexed by task slot index.
    pub fn new(
        core: CoreId,
        now: Instant,
        entries: &'a [QueuedTask],
        stats: &'a [TaskStats],
    ) -> Self {
        RunQueueView {
            core,
            now,
            entries,
            stats,
        }
    }

    /// Queued tasks in arrival order (oldest first).
    pub fn entries(&self) -> &'a [QueuedTask] {
        self.entries
    }

    /// Number of queued tasks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The scheduler's figures for a queued task.
    pub fn stats_of(&self, task: TaskId) -> Option<&'a TaskStats> {
        self.stats.get(task.index_usize())
    }

    /// How long `entry` has waited so far.
    pub fn waited_nanos(&self, entry: &QueuedTask) -> u64 {
        self.now.nanos_since(entry.enqueued_at)
    }
}

/// The replaceable part of scheduling.
pub trait SchedPolicy {
    /// Chooses the next task for `core` among `queue` (never empty when called). Returning a
    /// task not in the queue, or `None`, is refused and the default policy decides.
    fn pick_next(&mut self, core: CoreId, queue: &RunQueueView<'_>) -> Option<TaskId>;

    /// The slice for a task about to be dispatched. Clamped by the scheduler.
    fn slice_for(&self, stats: &TaskStats) -> Ticks;

    /// A short name for the console's `sched` command.
    fn name(&self) -> &str {
        "custom"
    }
}

/// Strict priority, round-robin within a priority, with an anti-starvation rule: a task that
/// has waited [`STARVATION_THRESHOLD_NANOS`] goes first whatever its priority.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DefaultPolicy {
    /// Slice granted to every task.
    pub slice: Ticks,
    /// Wait after which priority is ignored.
    pub starvation_threshold_nanos: u64,
}

impl Default for DefaultPolicy {
    /// The policy for a 1 kHz tick ([`DEFAULT_TICK_PERIOD_NANOS`]).
    fn default() -> Self {
        DefaultPolicy {
            slice: Ticks(DEFAULT_SLICE_TICKS),
            starvation_threshold_nanos: STARVATION_THRESHOLD_NANOS,
        }
    }
}

impl DefaultPolicy {
    /// The policy for a scheduler ticking every `tick_period_nanos`: the slice is
    /// [`DEFAULT_SLICE_NANOS`] rounded up to whole ticks (at least one), so that a slice means
    /// the same time whatever the kernel's tick rate.
    pub fn for_tick_period(tick_period_nanos: u64) -> DefaultPolicy {
        let period = if tick_period_nanos == 0 {
            DEFAULT_TICK_PERIOD_NANOS
        } else {
            tick_period_nanos
        };
        DefaultPolicy {
            slice: Ticks(DEFAULT_SLICE_NANOS.div_ceil(period).max(1)),
            starvation_threshold_nanos: STARVATION_THRESHOLD_NANOS,
        }
    }
}

impl SchedPolicy for DefaultPolicy {
    fn pick_next(&mut self, _core: CoreId, queue: &RunQueueView<'_>) -> Option<TaskId> {
        // Oldest starving task first: entries are in arrival order, so the first one over the
        // threshold has waited longest.
        if let Some(starving) = queue
            .entries()
            .iter()
            .find(|entry| queue.waited_nanos(entry) >= self.starvation_threshold_nanos)
        {
            return Some(starving.task);
        }
        // Most urgent priority; among equals the earliest arrival (`min_by_key` keeps the
        // first minimum), which makes preempted tasks go to the back: round robin.
        queue
            .entries()
            .iter()
            .min_by_key(|entry| entry.priority)
            .map(|entry| entry.task)
    }

    fn slice_for(&self, _stats: &TaskStats) -> Ticks {
        self.slice
    }

    fn name(&self) -> &str {
        "default (priority + round robin + anti-starvation)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::Generation;

    fn entry(index: u16, priority: u8, at: u64) -> QueuedTask {
        QueuedTask {
            task: TaskId::new(index, Generation(0)),
            priority: Priority(priority),
            enqueued_at: Instant(at),
        }
    }

    #[test]
    fn most_urgent_first_then_arrival_order() {
        let entries = [entry(0, 3, 10), entry(1, 1, 20), entry(2, 1, 30)];
        let view = RunQueueView::new(CoreId(0), Instant(40), &entries, &[]);
        let mut policy = DefaultPolicy::default();
        assert_eq!(policy.pick_next(CoreId(0), &view), Some(entries[1].task));
    }

    #[test]
    fn the_slice_is_the_same_time_at_any_tick_rate() {
        assert_eq!(DefaultPolicy::for_tick_period(1_000_000).slice, Ticks(5));
        assert_eq!(
            DefaultPolicy::for_tick_period(1_000_000),
            DefaultPolicy::default()
        );
        assert_eq!(DefaultPolicy::for_tick_period(10_000_000).slice, Ticks(1));
        assert_eq!(DefaultPolicy::for_tick_period(2_000_000).slice, Ticks(3));
        assert_eq!(DefaultPolicy::for_tick_period(0), DefaultPolicy::default());
        assert_eq!(DefaultPolicy::for_tick_period(u64::MAX).slice, Ticks(1));
    }

    #[test]
    fn a_starving_task_overrides_priority() {
        let threshold = STARVATION_THRESHOLD_NANOS;
        let entries = [entry(0, 7, 0), entry(1, 0, threshold)];
        let mut policy = DefaultPolicy::default();
        let early = RunQueueView::new(CoreId(0), Instant(threshold - 1), &entries, &[]);
        assert_eq!(policy.pick_next(CoreId(0), &early), Some(entries[1].task));
        let late = RunQueueView::new(CoreId(0), Instant(threshold), &entries, &[]);
        assert_eq!(policy.pick_next(CoreId(0), &late), Some(entries[0].task));
    }
}
