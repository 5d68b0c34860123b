//! The supervisor's restart policy: exponential back-off per task, reset after healthy running.
//!
//! Hubris keeps fault *recovery* out of the kernel: the kernel only stops a faulting task,
//! releases whoever waited on it and tells the supervisor (a notification bit). The supervisor
//! task decides when to restart. This module is that decision, as a pure state machine the
//! supervisor task links (the kernel can use it too, for the supervisor-less test images):
//!
//! - the first restart of a task comes [`INITIAL_BACKOFF_NANOS`] after its fault;
//! - each further fault doubles the delay, up to [`MAX_BACKOFF_NANOS`];
//! - a task that ran [`HEALTHY_RESET_NANOS`] since its last restart without faulting starts
//!   again from the initial delay.
//!
//! A crash-looping task therefore costs a bounded, shrinking share of the machine, while a
//! task that hits a rare bug comes back almost at once. The supervisor loop is:
//! `receive(SUPERVISOR_FAULT_BIT | TIMER_BIT)`; on the fault bit, `read_fault` every slot and
//! call [`Supervisor::on_stopped`] for each newly stopped one; then `restart_task` each index
//! [`Supervisor::take_due`] returns, and `set_timer` to [`Supervisor::next_deadline`].

use crate::limits::{HEALTHY_RESET_NANOS, INITIAL_BACKOFF_NANOS, MAX_BACKOFF_NANOS, MAX_TASKS};
use crate::time::Instant;
use alloc::vec::Vec;

/// The numbers of the policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay before the first restart.
    pub initial_backoff_nanos: u64,
    /// Largest delay.
    pub max_backoff_nanos: u64,
    /// Healthy run time after which the delay resets.
    pub healthy_reset_nanos: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff_nanos: INITIAL_BACKOFF_NANOS,
            max_backoff_nanos: MAX_BACKOFF_NANOS,
            healthy_reset_nanos: HEALTHY_RESET_NANOS,
        }
    }
}

/// What the supervisor knows of one task.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SupervisedTask {
    /// Faults since the task was last healthy for long enough.
    pub consecutive_faults: u32,
    /// When it was last restarted.
    pub last_restart: Option<Instant>,
    /// When the pending restart is due, if one is.
    pub restart_due: Option<Instant>,
    /// Restarts since boot.
    pub total_restarts: u64,
}

/// Why the supervisor refused a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SupervisorError {
    /// Index beyond the supervised table.
    NoSuchTask(usize),
}

/// Restart bookkeeping for every task slot.
#[derive(Clone, Debug)]
pub struct Supervisor {
    policy: RestartPolicy,
    tasks: Vec<SupervisedTask>,
}

impl Supervisor {
    /// A supervisor for `task_count` slots (at most [`MAX_TASKS`]).
    pub fn new(policy: RestartPolicy, task_count: usize) -> Supervisor {
        Supervisor {
            policy,
            tasks: alloc::vec![SupervisedTask::default(); task_count.min(MAX_TASKS)],
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RestartPolicy {
        &self.policy
    }

    /// What is known of slot `index`.
    pub fn task(&self, index: usize) -> Option<&SupervisedTask> {
        self.tasks.get(index)
    }

    /// The delay a task's `faults`-th consecutive fault earns (1-based).
    pub fn backoff_for(&self, faults: u32) -> u64 {
        let doublings = faults.saturating_sub(1).min(63);
        self.policy
            .initial_backoff_nanos
            .saturating_mul(1u64 << doublings)
            .min(self.policy.max_backoff_nanos)
    }

    /// Slot `index` was found stopped at `now`: schedules its restart and returns when it is
    /// due. Reporting the same stop twice keeps the first schedule.
    pub fn on_stopped(&mut self, index: usize, now: Instant) -> Result<Instant, SupervisorError> {
        let healthy_reset = self.policy.healthy_reset_nanos;
        let task = self
            .tasks
            .get_mut(index)
            .ok_or(SupervisorError::NoSuchTask(index))?;
        if let Some(due) = task.restart_due {
            return Ok(due);
        }
        let healthy = task
            .last_restart
            .is_some_and(|restart| now.nanos_since(restart) >= healthy_reset);
        if healthy {
            task.consecutive_faults = 0;
        }
        task.consecutive_faults = task.consecutive_faults.saturating_add(1);
        let faults = task.consecutive_faults;
        let due = now.plus_nanos(self.backoff_for(faults));
        self.tasks[index].restart_due = Some(due);
        Ok(due)
    }

    /// The next slot whose restart is due at `now` (earliest first), marked as restarted.
    pub fn take_due(&mut self, now: Instant) -> Option<usize> {
        let (index, _) = self
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(index, task)| task.restart_due.map(|due| (index, due)))
            .filter(|(_, due)| *due <= now)
            .min_by_key(|(_, due)| *due)?;
        let task = &mut self.tasks[index];
        task.restart_due = None;
        task.last_restart = Some(now);
        task.total_restarts += 1;
        Some(index)
    }

    /// The earliest pending restart, for the supervisor's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.tasks.iter().filter_map(|task| task.restart_due).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            initial_backoff_nanos: 10 * MS,
            max_backoff_nanos: 100 * MS,
            healthy_reset_nanos: 1000 * MS,
        }
    }

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let supervisor = Supervisor::new(policy(), 1);
        let delays: Vec<u64> = (1..=6)
            .map(|faults| supervisor.backoff_for(faults) / MS)
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 100, 100]);
        assert_eq!(supervisor.backoff_for(u32::MAX), 100 * MS);
    }

    #[test]
    fn a_crash_loop_waits_longer_each_time_and_a_healthy_run_resets() {
        let mut supervisor = Supervisor::new(policy(), 2);
        let mut now = Instant(0);
        let mut delays = Vec::new();
        for _ in 0..4 {
            let due = supervisor.on_stopped(1, now).unwrap();
            delays.push(due.nanos_since(now) / MS);
            assert_eq!(
                supervisor.take_due(Instant(due.0 - 1)),
                None,
                "not before it is due"
            );
            assert_eq!(supervisor.next_deadline(), Some(due));
            assert_eq!(supervisor.take_due(due), Some(1));
            now = due.plus_nanos(MS); // crashes again 1 ms after the restart
        }
        assert_eq!(delays, [10, 20, 40, 80]);
        // Healthy for long enough: back to the initial delay.
        let later = now.plus_nanos(1000 * MS);
        assert_eq!(
            supervisor.on_stopped(1, later).unwrap().nanos_since(later),
            10 * MS
        );
        assert_eq!(supervisor.task(1).unwrap().total_restarts, 4);
        assert_eq!(supervisor.task(0).unwrap().total_restarts, 0);
    }

    #[test]
    fn due_restarts_come_out_earliest_first_and_once() {
        let mut supervisor = Supervisor::new(policy(), 3);
        supervisor.on_stopped(2, Instant(0)).unwrap();
        supervisor.on_stopped(0, Instant(5 * MS)).unwrap();
        assert_eq!(
            supervisor.on_stopped(2, Instant(6 * MS)),
            Ok(Instant(10 * MS)),
            "idempotent"
        );
        let late = Instant(50 * MS);
        assert_eq!(supervisor.take_due(late), Some(2));
        assert_eq!(supervisor.take_due(late), Some(0));
        assert_eq!(supervisor.take_due(late), None);
        assert_eq!(
            supervisor.on_stopped(7, late),
            Err(SupervisorError::NoSuchTask(7))
        );
    }
}
