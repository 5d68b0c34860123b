//! Per-core run queues, dispatch, preemption, accounting and load balancing.
//!
//! Mechanism, not policy: which task runs next and for how long is asked of a
//! [`SchedPolicy`] (checked, see [`crate::policy`]); everything else is here. The scheduler
//! knows tasks only by [`TaskId`] and keeps its own small per-slot record (location, affinity,
//! statistics), so it can be tested alone and the task table never has to be locked per core.
//!
//! Each runnable task is in exactly one place: queued on one core, or current on one core.
//! [`Scheduler::check_invariants`] states this and the tests call it after every step.
//!
//! Time: the kernel calls [`Scheduler::tick`] from each core's timer interrupt. A tick charges
//! the current task, counts down its slice and, when the slice is spent or a more urgent task
//! was woken onto the core, puts it at the back of the queue and dispatches again. The first
//! tick of any core after [`BALANCE_INTERVAL_NANOS`] have passed also runs
//! [`Scheduler::balance`] (by time, not by one core's ticks, so balancing goes on whichever
//! cores are busy in the kernel). A core whose queue is empty steals a waiting task from the
//! busiest core before going idle.

use crate::histogram::WaitHistogram;
use crate::limits::{
    BALANCE_INTERVAL_NANOS, MAX_CORES, MAX_SLICE_TICKS, MAX_TASKS, MIN_SLICE_TICKS, PRIORITY_LEVELS,
};
use crate::policy::{DefaultPolicy, QueuedTask, RunQueueView, SchedPolicy, TaskStats};
use crate::time::Instant;
use abi::TaskId;
use alloc::vec::Vec;

/// A core, numbered from 0 in device-tree order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CoreId(pub usize);

/// A set of cores (bit n = core n).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoreMask(pub u64);

impl CoreMask {
    /// Every core.
    pub const ALL: CoreMask = CoreMask(u64::MAX);
    /// No core.
    pub const NONE: CoreMask = CoreMask(0);

    /// Only `core`.
    pub const fn only(core: CoreId) -> CoreMask {
        CoreMask(1 << core.0)
    }

    /// True if `core` is in the set.
    pub const fn contains(self, core: CoreId) -> bool {
        core.0 < 64 && self.0 & (1 << core.0) != 0
    }

    /// Adds `core`.
    pub fn insert(&mut self, core: CoreId) {
        if core.0 < 64 {
            self.0 |= 1 << core.0;
        }
    }

    /// True when empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Task priority, 0 most urgent, below [`PRIORITY_LEVELS`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Priority(pub u8);

impl Priority {
    /// Most urgent.
    pub const HIGHEST: Priority = Priority(0);
    /// Least urgent.
    pub const LOWEST: Priority = Priority(PRIORITY_LEVELS - 1);

    /// True if `self` should preempt `other`.
    pub const fn is_more_urgent_than(self, other: Priority) -> bool {
        self.0 < other.0
    }
}

/// Why a scheduler call was refused: always the caller's (kernel's) bookkeeping mistake, kept as
/// a value so that the kernel can log it instead of panicking.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// The index is beyond the table or the generation is not the registered one.
    UnknownTask(TaskId),
    /// The task is already queued or running.
    AlreadyRunnable(TaskId),
    /// No core in the task's affinity exists.
    NoAllowedCore(TaskId),
    /// The priority is not below [`PRIORITY_LEVELS`].
    BadPriority(u8),
    /// The core does not exist.
    NoSuchCore(CoreId),
}

/// Where a registered task is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Not runnable (blocked, stopped) or not registered.
    Absent,
    /// Waiting in this core's run queue.
    Queued(CoreId),
    /// Current on this core.
    Running(CoreId),
}

/// Per-core statistics for the console's `sched` command and the benches.
#[derive(Clone, Debug, Default)]
pub struct CoreStats {
    /// Wait from becoming runnable to being dispatched, nanoseconds.
    pub wait: WaitHistogram,
    /// Dispatches on this core.
    pub dispatches: u64,
    /// Slices that ran out, plus wake-up preemptions.
    pub preemptions: u64,
    /// Ticks with a current task.
    pub busy_ticks: u64,
    /// Ticks without one.
    pub idle_ticks: u64,
    /// Tasks moved here by [`Scheduler::balance`].
    pub migrations_in: u64,
    /// Tasks taken from another core's queue when this one ran dry.
    pub steals: u64,
}

#[derive(Copy, Clone, Debug)]
struct Current {
    task: TaskId,
    slice_left: u64,
    ticks_used: u64,
}

#[derive(Clone, Debug)]
struct CoreState {
    queue: Vec<QueuedTask>,
    current: Option<Current>,
    reschedule_pending: bool,
    /// False while the core's kernel work keeps it from tasks for an unknown time (the console
    /// core running a command): nothing is dispatched there and new work goes elsewhere.
    available: bool,
    stats: CoreStats,
}

impl Default for CoreState {
    fn default() -> Self {
        CoreState {
            queue: Vec::new(),
            current: None,
            reschedule_pending: false,
            available: true,
            stats: CoreStats::default(),
        }
    }
}

impl CoreState {
    fn load(&self) -> usize {
        self.queue.len() + usize::from(self.current.is_some())
    }
}

#[derive(Copy, Clone, Debug)]
struct Entry {
    id: Option<TaskId>,
    affinity: CoreMask,
    location: Location,
    last_core: Option<CoreId>,
}

/// What [`Scheduler::enqueue`] did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The core whose queue received the task.
    pub core: CoreId,
    /// That core must reschedule soon (it is idle, or the new task is more urgent than its
    /// current one): the kernel sends it an SGI if it is not the calling core.
    pub kick: bool,
}

/// The scheduler: run queues of all cores and a policy.
pub struct Scheduler<P: SchedPolicy> {
    cores: Vec<CoreState>,
    entries: Vec<Entry>,
    stats: Vec<TaskStats>,
    policy: P,
    fallback: DefaultPolicy,
    policy_rejections: u64,
    next_balance: Instant,
}

impl<P: SchedPolicy> Scheduler<P> {
    /// A scheduler for `core_count` cores (clamped to 1..=[`MAX_CORES`]) and `policy`.
    pub fn new(core_count: usize, policy: P) -> Self {
        let core_count = core_count.clamp(1, MAX_CORES);
        let mut cores = Vec::with_capacity(core_count);
        cores.resize_with(core_count, CoreState::default);
        let absent = Entry {
            id: None,
            affinity: CoreMask::NONE,
            location: Location::Absent,
            last_core: None,
        };
        Scheduler {
            cores,
            entries: alloc::vec![absent; MAX_TASKS],
            stats: alloc::vec![TaskStats::default(); MAX_TASKS],
            policy,
            fallback: DefaultPolicy::default(),
            policy_rejections: 0,
            next_balance: Instant(BALANCE_INTERVAL_NANOS),
        }
    }

    /// Number of cores.
    pub fn core_count(&self) -> usize {
        self.cores.len()
    }

    /// The policy (for the console to show its parameters).
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Replaces the policy (a hook swap); queues and statistics are kept.
    pub fn set_policy(&mut self, policy: P) -> P {
        core::mem::replace(&mut self.policy, policy)
    }

    /// How often the policy's answer was refused and the default decided instead.
    pub fn policy_rejections(&self) -> u64 {
        self.policy_rejections
    }

    /// Registers a task slot under `id` (replacing any earlier incarnation, which must already be
    /// absent from the queues) with fresh statistics. The task starts not runnable.
    pub fn register(
        &mut self,
        id: TaskId,
        priority: Priority,
        affinity: CoreMask,
    ) -> Result<(), SchedError> {
        if priority.0 >= PRIORITY_LEVELS {
            return Err(SchedError::BadPriority(priority.0));
        }
        let core_count = self.cores.len();
        if !(0..core_count).any(|core| affinity.contains(CoreId(core))) {
            return Err(SchedError::NoAllowedCore(id));
        }
        let entry = self
            .entries
            .get_mut(id.index_usize())
            .ok_or(SchedError::UnknownTask(id))?;
        if entry.location != Location::Absent {
            return Err(SchedError::AlreadyRunnable(id));
        }
        *entry = Entry {
            id: Some(id),
            affinity,
            location: Location::Absent,
            last_core: None,
        };
        self.stats[id.index_usize()] = TaskStats {
            priority,
            ..TaskStats::default()
        };
        Ok(())
    }

    fn entry(&self, id: TaskId) -> Result<&Entry, SchedError> {
        self.entries
            .get(id.index_usize())
            .filter(|entry| entry.id == Some(id))
            .ok_or(SchedError::UnknownTask(id))
    }

    /// Where `id` is (`Absent` for unknown ids too).
    pub fn location(&self, id: TaskId) -> Location {
        self.entry(id)
            .map_or(Location::Absent, |entry| entry.location)
    }

    /// The scheduler's figures for `id`.
    pub fn stats(&self, id: TaskId) -> Option<&TaskStats> {
        self.entry(id).ok().map(|_| &self.stats[id.index_usize()])
    }

    /// Per-core statistics.
    pub fn core_stats(&self, core: CoreId) -> Option<&CoreStats> {
        self.cores.get(core.0).map(|state| &state.stats)
    }

    /// Queue length of `core` (not counting its current task).
    pub fn queue_len(&self, core: CoreId) -> usize {
        self.cores.get(core.0).map_or(0, |state| state.queue.len())
    }

    /// The task currently on `core`.
    pub fn current(&self, core: CoreId) -> Option<TaskId> {
        self.cores
            .get(core.0)
            .and_then(|state| state.current.map(|current| current.task))
    }

    /// Changes a task's priority; a queued entry is updated in place.
    pub fn set_priority(&mut self, id: TaskId, priority: Priority) -> Result<(), SchedError> {
        if priority.0 >= PRIORITY_LEVELS {
            return Err(SchedError::BadPriority(priority.0));
        }
        let location = self.entry(id)?.location;
        self.stats[id.index_usize()].priority = priority;
        if let Location::Queued(core) = location {
            if let Some(queued) = self.cores[core.0].queue.iter_mut().find(|q| q.task == id) {
                queued.priority = priority;
            }
        }
        Ok(())
    }

    fn choose_core(&self, entry: &Entry) -> Option<CoreId> {
        // Available cores of the affinity; a task pinned to unavailable cores waits on them.
        let any_available = (0..self.cores.len())
            .any(|core| entry.affinity.contains(CoreId(core)) && self.cores[core].available);
        let allowed = |core: &CoreId| {
            entry.affinity.contains(*core) && (self.cores[core.0].available || !any_available)
        };
        let least = (0..self.cores.len())
            .map(CoreId)
            .filter(allowed)
            .min_by_key(|core| self.cores[core.0].load())?;
        // Stay on the last core (warm caches) unless it is clearly busier than the best.
        match entry.last_core.filter(allowed) {
            Some(last) if self.cores[last.0].load() <= self.cores[least.0].load() + 1 => Some(last),
            _ => Some(least),
        }
    }

    /// Makes a task runnable: it joins the queue of its last core (if not much busier than the
    /// least loaded allowed core) or of the least loaded allowed core.
    pub fn enqueue(&mut self, id: TaskId, now: Instant) -> Result<Enqueued, SchedError> {
        let entry = *self.entry(id)?;
        if entry.location != Location::Absent {
            return Err(SchedError::AlreadyRunnable(id));
        }
        let core = self
            .choose_core(&entry)
            .ok_or(SchedError::NoAllowedCore(id))?;
        Ok(self.enqueue_on(id, core, now))
    }

    fn enqueue_on(&mut self, id: TaskId, core: CoreId, now: Instant) -> Enqueued {
        let priority = self.stats[id.index_usize()].priority;
        let state = &mut self.cores[core.0];
        state.queue.push(QueuedTask {
            task: id,
            priority,
            enqueued_at: now,
        });
        self.entries[id.index_usize()].location = Location::Queued(core);
        let kick = match state.current {
            None => state.available,
            Some(current) => {
                priority.is_more_urgent_than(self.stats[current.task.index_usize()].priority)
            }
        };
        if kick {
            state.reschedule_pending = true;
        }
        Enqueued { core, kick }
    }

    /// Removes a task from wherever it is (kill, fault). Returns the core it was current on,
    /// which must then dispatch something else.
    pub fn remove(&mut self, id: TaskId) -> Result<Option<CoreId>, SchedError> {
        let location = self.entry(id)?.location;
        self.entries[id.index_usize()].location = Location::Absent;
        Ok(match location {
            Location::Absent => None,
            Location::Queued(core) => {
                self.cores[core.0].queue.retain(|queued| queued.task != id);
                None
            }
            Location::Running(core) => {
                self.cores[core.0].current = None;
                Some(core)
            }
        })
    }

    /// Forgets a slot entirely (after [`Scheduler::remove`]).
    pub fn unregister(&mut self, id: TaskId) {
        if self.remove(id).is_ok() {
            self.entries[id.index_usize()].id = None;
        }
    }

    /// If `core` has no current task, picks one (stealing from the busiest core when its own
    /// queue is empty) and returns the current task.
    pub fn dispatch(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        let state = self.cores.get_mut(core.0)?;
        state.reschedule_pending = false;
        if let Some(current) = state.current {
            return Some(current.task);
        }
        if !state.available {
            return None;
        }
        if state.queue.is_empty() {
            self.steal_for(core);
        }
        let picked = self.pick(core, now)?;
        let state = &mut self.cores[core.0];
        let position = state
            .queue
            .iter()
            .position(|queued| queued.task == picked)?;
        let queued = state.queue.remove(position);
        let wait = now.nanos_since(queued.enqueued_at);
        state.stats.wait.record(wait);
        state.stats.dispatches += 1;
        let stats = &mut self.stats[picked.index_usize()];
        stats.dispatches += 1;
        stats.last_wait_nanos = wait;
        stats.total_wait_nanos = stats.total_wait_nanos.saturating_add(wait);
        let slice = self
            .policy
            .slice_for(stats)
            .0
            .clamp(MIN_SLICE_TICKS, MAX_SLICE_TICKS);
        let state = &mut self.cores[core.0];
        state.current = Some(Current {
            task: picked,
            slice_left: slice,
            ticks_used: 0,
        });
        let entry = &mut self.entries[picked.index_usize()];
        entry.location = Location::Running(core);
        entry.last_core = Some(core);
        Some(picked)
    }

    fn pick(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        let state = &self.cores[core.0];
        if state.queue.is_empty() {
            return None;
        }
        let view = RunQueueView::new(core, now, &state.queue, &self.stats);
        let choice = self.policy.pick_next(core, &view);
        if let Some(task) = choice.filter(|task| state.queue.iter().any(|q| q.task == *task)) {
            return Some(task);
        }
        self.policy_rejections += 1;
        self.fallback.pick_next(core, &view)
    }

    fn steal_for(&mut self, thief: CoreId) {
        // Busiest queue first; skip cores whose waiting tasks may not run here.
        let mut victims: Vec<usize> = (0..self.cores.len())
            .filter(|core| *core != thief.0)
            .collect();
        victims.sort_by_key(|core| core::cmp::Reverse(self.cores[*core].queue.len()));
        for victim in victims {
            // Take the task that has waited longest among those allowed here.
            let position = self.cores[victim].queue.iter().position(|queued| {
                self.entries[queued.task.index_usize()]
                    .affinity
                    .contains(thief)
            });
            if let Some(position) = position {
                let queued = self.cores[victim].queue.remove(position);
                self.cores[thief.0].queue.push(queued);
                self.entries[queued.task.index_usize()].location = Location::Queued(thief);
                self.cores[thief.0].stats.steals += 1;
                return;
            }
        }
    }

    fn put_back_current(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        let current = self.cores[core.0].current.take()?;
        self.entries[current.task.index_usize()].location = Location::Absent;
        self.stats[current.task.index_usize()].last_ticks_used = current.ticks_used;
        self.enqueue_on(current.task, core, now);
        self.cores[core.0].reschedule_pending = false;
        Some(current.task)
    }

    /// The timer tick of `core`: charges the current task, preempts it when its slice is spent
    /// or a more urgent task is waiting, and balances when [`BALANCE_INTERVAL_NANOS`] have
    /// passed since the last pass. Returns the task
    /// to run (which may be the same).
    pub fn tick(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        let state = self.cores.get_mut(core.0)?;
        let mut expired = false;
        match state.current.as_mut() {
            Some(current) => {
                state.stats.busy_ticks += 1;
                current.ticks_used += 1;
                current.slice_left = current.slice_left.saturating_sub(1);
                expired = current.slice_left == 0;
                self.stats[current.task.index_usize()].cpu_ticks += 1;
            }
            None => state.stats.idle_ticks += 1,
        }
        if now >= self.next_balance {
            self.next_balance = now.plus_nanos(BALANCE_INTERVAL_NANOS);
            self.balance();
        }
        if expired {
            if let Some(task) = self.put_back_current(core, now) {
                self.stats[task.index_usize()].preemptions += 1;
                self.cores[core.0].stats.preemptions += 1;
            }
        } else {
            self.preempt_if_pending(core, now);
        }
        self.dispatch(core, now)
    }

    /// If a more urgent task was queued on `core` since the last decision, puts the current
    /// task back and dispatches (the kernel calls this on syscall return and on the SGI).
    pub fn preempt_if_pending(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        let state = self.cores.get(core.0)?;
        if state.reschedule_pending {
            if let Some(current) = state.current {
                let current_priority = self.stats[current.task.index_usize()].priority;
                let urgent = state
                    .queue
                    .iter()
                    .any(|queued| queued.priority.is_more_urgent_than(current_priority));
                if urgent {
                    self.put_back_current(core, now);
                    self.cores[core.0].stats.preemptions += 1;
                }
            }
        }
        self.dispatch(core, now)
    }

    /// The current task gives up the rest of its slice; it goes to the back of the queue.
    pub fn yield_current(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        if core.0 >= self.cores.len() {
            return None;
        }
        if let Some(task) = self.put_back_current(core, now) {
            self.stats[task.index_usize()].voluntary_switches += 1;
        }
        self.dispatch(core, now)
    }

    /// The current task blocks (IPC, sleep): it leaves the CPU without being queued.
    pub fn block_current(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        let state = self.cores.get_mut(core.0)?;
        if let Some(current) = state.current.take() {
            let index = current.task.index_usize();
            self.entries[index].location = Location::Absent;
            self.stats[index].voluntary_switches += 1;
            self.stats[index].last_ticks_used = current.ticks_used;
        }
        self.dispatch(core, now)
    }

    /// Moves queued tasks from the busiest to the least busy cores until loads differ by at
    /// most one (or nothing movable is left). Returns the number of migrations.
    pub fn balance(&mut self) -> usize {
        let mut moved = 0;
        for _ in 0..MAX_TASKS {
            // The most unbalanced (source, destination) pair that has a task allowed to move;
            // pinned tasks can make the globally busiest core immovable, so try every pair.
            let mut best: Option<(usize, usize, usize, usize)> = None; // (gap, from, to, position)
            for from in 0..self.cores.len() {
                for to in 0..self.cores.len() {
                    let (from_load, to_load) = (self.cores[from].load(), self.cores[to].load());
                    if from == to || from_load < to_load + 2 || !self.cores[to].available {
                        continue;
                    }
                    let gap = from_load - to_load;
                    if best.is_some_and(|(best_gap, ..)| best_gap >= gap) {
                        continue;
                    }
                    // Most recently queued first: it has waited least, so moving it costs
                    // least in fairness terms, and it is the least likely to be cache-warm.
                    let position = self.cores[from].queue.iter().rposition(|queued| {
                        self.entries[queued.task.index_usize()]
                            .affinity
                            .contains(CoreId(to))
                    });
                    if let Some(position) = position {
                        best = Some((gap, from, to, position));
                    }
                }
            }
            let Some((_, from, to, position)) = best else {
                break;
            };
            let queued = self.cores[from].queue.remove(position);
            self.cores[to].queue.push(queued);
            self.entries[queued.task.index_usize()].location = Location::Queued(CoreId(to));
            self.cores[to].stats.migrations_in += 1;
            self.cores[to].reschedule_pending = true;
            moved += 1;
        }
        moved
    }

    /// Makes `core` available for tasks or not. Taking it away puts its current task back in
    /// its queue and moves every queued task that may run on an available core to the least
    /// loaded one (tasks pinned to this core wait for it); those cores are marked for a kick.
    /// Returns the number of tasks moved.
    pub fn set_core_available(&mut self, core: CoreId, available: bool, now: Instant) -> usize {
        let Some(state) = self.cores.get_mut(core.0) else {
            return 0;
        };
        if state.available == available {
            return 0;
        }
        state.available = available;
        if available {
            state.reschedule_pending = true;
            return 0;
        }
        self.put_back_current(core, now);
        let mut moved = 0;
        let mut position = 0;
        while position < self.cores[core.0].queue.len() {
            let queued = self.cores[core.0].queue[position];
            let affinity = self.entries[queued.task.index_usize()].affinity;
            let destination = (0..self.cores.len())
                .filter(|other| {
                    *other != core.0
                        && self.cores[*other].available
                        && affinity.contains(CoreId(*other))
                })
                .min_by_key(|other| self.cores[*other].load());
            let Some(destination) = destination else {
                position += 1;
                continue;
            };
            self.cores[core.0].queue.remove(position);
            self.cores[destination].queue.push(queued);
            self.entries[queued.task.index_usize()].location =
                Location::Queued(CoreId(destination));
            self.cores[destination].stats.migrations_in += 1;
            self.cores[destination].reschedule_pending = true;
            moved += 1;
        }
        self.cores[core.0].reschedule_pending = false;
        moved
    }

    /// Whether `core` takes tasks (see [`Scheduler::set_core_available`]).
    pub fn core_available(&self, core: CoreId) -> bool {
        self.cores.get(core.0).is_some_and(|state| state.available)
    }

    /// Cores with a pending reschedule (the kernel sends them an SGI).
    pub fn cores_to_kick(&self) -> CoreMask {
        let mut mask = CoreMask::NONE;
        for (core, state) in self.cores.iter().enumerate() {
            if state.reschedule_pending {
                mask.insert(CoreId(core));
            }
        }
        mask
    }

    /// Checks the bookkeeping: every registered task is in exactly the place its entry says,
    /// nowhere else, and queued only on an allowed core. Returns a description of the first
    /// violation.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut seen = [0u8; MAX_TASKS];
        for (core, state) in self.cores.iter().enumerate() {
            for queued in &state.queue {
                let index = queued.task.index_usize();
                let entry = self.entries.get(index).ok_or("queued index out of range")?;
                if entry.id != Some(queued.task) {
                    return Err("queued task is not the registered incarnation");
                }
                if entry.location != Location::Queued(CoreId(core)) {
                    return Err("queued task's location disagrees");
                }
                if !entry.affinity.contains(CoreId(core)) {
                    return Err("task queued on a core outside its affinity");
                }
                seen[index] += 1;
            }
            if let Some(current) = state.current {
                let index = current.task.index_usize();
                let entry = self
                    .entries
                    .get(index)
                    .ok_or("current index out of range")?;
                if entry.id != Some(current.task)
                    || entry.location != Location::Running(CoreId(core))
                {
                    return Err("current task's entry disagrees");
                }
                seen[index] += 1;
            }
        }
        for (index, entry) in self.entries.iter().enumerate() {
            let expected = u8::from(entry.location != Location::Absent);
            if seen[index] != expected {
                return Err("a task is in more or fewer places than its location says");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{
        DEFAULT_SLICE_TICKS, DEFAULT_TICK_PERIOD_NANOS, STARVATION_THRESHOLD_NANOS,
    };
    use crate::time::Ticks;
    use abi::Generation;

    fn id(index: u16) -> TaskId {
        TaskId::new(index, Generation(0))
    }

    fn scheduler(cores: usize) -> Scheduler<DefaultPolicy> {
        Scheduler::new(cores, DefaultPolicy::default())
    }

    /// Runs `ticks` ticks on every core with spinning tasks (nothing blocks).
    fn run(sched: &mut Scheduler<impl SchedPolicy>, from_tick: u64, ticks: u64) {
        for tick in from_tick..from_tick + ticks {
            let now = Instant(tick * DEFAULT_TICK_PERIOD_NANOS);
            for core in 0..sched.core_count() {
                sched.tick(CoreId(core), now);
            }
            assert_eq!(sched.check_invariants(), Ok(()));
        }
    }

    #[test]
    fn equal_priority_spinners_share_a_core_fairly() {
        let mut sched = scheduler(1);
        for index in 0..3 {
            sched
                .register(id(index), Priority(4), CoreMask::ALL)
                .unwrap();
            sched.enqueue(id(index), Instant::ZERO).unwrap();
        }
        sched.dispatch(CoreId(0), Instant::ZERO);
        run(&mut sched, 1, 3000);
        for index in 0..3 {
            let ticks = sched.stats(id(index)).unwrap().cpu_ticks;
            assert!((1000 - DEFAULT_SLICE_TICKS..=1000 + DEFAULT_SLICE_TICKS).contains(&ticks));
        }
        // Nobody waited longer than the other two slices.
        let p99 = sched.core_stats(CoreId(0)).unwrap().wait.p99().unwrap();
        assert!(
            p99 <= 2 * DEFAULT_SLICE_TICKS * DEFAULT_TICK_PERIOD_NANOS,
            "p99 wait {p99}"
        );
    }

    #[test]
    fn a_high_priority_spinner_does_not_starve_a_low_priority_task() {
        let mut sched = scheduler(1);
        sched
            .register(id(0), Priority::HIGHEST, CoreMask::ALL)
            .unwrap();
        sched
            .register(id(1), Priority::LOWEST, CoreMask::ALL)
            .unwrap();
        sched.enqueue(id(0), Instant::ZERO).unwrap();
        sched.enqueue(id(1), Instant::ZERO).unwrap();
        assert_eq!(sched.dispatch(CoreId(0), Instant::ZERO), Some(id(0)));
        run(&mut sched, 1, 2000);
        let high = sched.stats(id(0)).unwrap().cpu_ticks;
        let low = sched.stats(id(1)).unwrap().cpu_ticks;
        assert!(
            high > 4 * low,
            "priority must still dominate: high {high}, low {low}"
        );
        assert!(low >= 2000 / (STARVATION_THRESHOLD_NANOS / DEFAULT_TICK_PERIOD_NANOS + 1) - 1);
        let max_wait = sched.stats(id(1)).unwrap().last_wait_nanos;
        assert!(
            max_wait
                <= STARVATION_THRESHOLD_NANOS + DEFAULT_SLICE_TICKS * DEFAULT_TICK_PERIOD_NANOS
        );
    }

    #[test]
    fn waking_a_more_urgent_task_preempts_at_once() {
        let mut sched = scheduler(1);
        sched.register(id(0), Priority(6), CoreMask::ALL).unwrap();
        sched.register(id(1), Priority(1), CoreMask::ALL).unwrap();
        sched.enqueue(id(0), Instant::ZERO).unwrap();
        assert_eq!(sched.dispatch(CoreId(0), Instant::ZERO), Some(id(0)));
        let enqueued = sched.enqueue(id(1), Instant(10)).unwrap();
        assert_eq!(
            enqueued,
            Enqueued {
                core: CoreId(0),
                kick: true
            }
        );
        assert!(sched.cores_to_kick().contains(CoreId(0)));
        assert_eq!(
            sched.preempt_if_pending(CoreId(0), Instant(20)),
            Some(id(1))
        );
        assert_eq!(sched.location(id(0)), Location::Queued(CoreId(0)));
        // A less urgent wake-up does not preempt.
        sched.register(id(2), Priority(7), CoreMask::ALL).unwrap();
        assert!(!sched.enqueue(id(2), Instant(30)).unwrap().kick);
        assert_eq!(
            sched.preempt_if_pending(CoreId(0), Instant(40)),
            Some(id(1))
        );
        assert_eq!(sched.check_invariants(), Ok(()));
    }

    #[test]
    fn blocking_and_yielding_hand_the_core_on() {
        let mut sched = scheduler(1);
        for index in 0..2 {
            sched
                .register(id(index), Priority(3), CoreMask::ALL)
                .unwrap();
            sched.enqueue(id(index), Instant::ZERO).unwrap();
        }
        assert_eq!(sched.dispatch(CoreId(0), Instant::ZERO), Some(id(0)));
        assert_eq!(sched.yield_current(CoreId(0), Instant(1)), Some(id(1)));
        assert_eq!(sched.block_current(CoreId(0), Instant(2)), Some(id(0)));
        assert_eq!(sched.location(id(1)), Location::Absent);
        assert_eq!(sched.block_current(CoreId(0), Instant(3)), None);
        assert!(sched.enqueue(id(1), Instant(4)).unwrap().kick);
        assert_eq!(sched.dispatch(CoreId(0), Instant(5)), Some(id(1)));
        assert_eq!(sched.stats(id(1)).unwrap().last_wait_nanos, 1);
        assert_eq!(sched.check_invariants(), Ok(()));
    }

    #[test]
    fn balancing_spreads_work_queued_on_one_core() {
        let mut sched = scheduler(4);
        for index in 0..8 {
            sched
                .register(id(index), Priority(4), CoreMask::ALL)
                .unwrap();
            sched.enqueue(id(index), Instant::ZERO).unwrap();
            // Pretend they all last ran on core 0 by enqueuing there directly.
        }
        // Force everything onto core 0, the situation after a burst of spawns from one core.
        for index in 0..8 {
            sched.remove(id(index)).unwrap();
            sched.enqueue_on(id(index), CoreId(0), Instant::ZERO);
        }
        assert_eq!(sched.queue_len(CoreId(0)), 8);
        let moved = sched.balance();
        assert_eq!(moved, 6);
        for core in 0..4 {
            assert_eq!(sched.queue_len(CoreId(core)), 2);
        }
        run(&mut sched, 1, 400);
        for index in 0..8 {
            let ticks = sched.stats(id(index)).unwrap().cpu_ticks;
            assert!(
                (190..=210).contains(&ticks),
                "task {index} got {ticks} of 200 ticks"
            );
        }
    }

    #[test]
    fn balancing_runs_on_any_core_tick_once_the_interval_has_passed() {
        let mut sched = scheduler(3);
        for index in 0..6 {
            sched
                .register(id(index), Priority(4), CoreMask::ALL)
                .unwrap();
            sched.enqueue_on(id(index), CoreId(2), Instant::ZERO);
        }
        // Only core 2 ticks (cores 0 and 1 are busy in the kernel): before the interval
        // nothing moves, at it the queue is spread.
        sched.tick(CoreId(2), Instant(BALANCE_INTERVAL_NANOS - 1));
        assert_eq!(sched.core_stats(CoreId(0)).unwrap().migrations_in, 0);
        sched.tick(CoreId(2), Instant(BALANCE_INTERVAL_NANOS));
        let moved_in: u64 = (0..2)
            .map(|core| sched.core_stats(CoreId(core)).unwrap().migrations_in)
            .sum();
        assert_eq!(moved_in, 4, "two tasks each to cores 0 and 1");
        assert!(sched.cores_to_kick().contains(CoreId(0)));
        assert_eq!(sched.check_invariants(), Ok(()));
    }

    #[test]
    fn an_unavailable_core_hands_its_work_on_and_takes_none_until_back() {
        let mut sched = scheduler(2);
        sched.register(id(0), Priority(4), CoreMask::ALL).unwrap();
        sched.register(id(1), Priority(4), CoreMask::ALL).unwrap();
        sched
            .register(id(2), Priority(4), CoreMask::only(CoreId(0)))
            .unwrap();
        for index in 0..3 {
            sched.enqueue_on(id(index), CoreId(0), Instant::ZERO);
        }
        assert_eq!(sched.dispatch(CoreId(0), Instant::ZERO), Some(id(0)));
        // The console core starts a command: its current and movable queued tasks leave.
        assert_eq!(sched.set_core_available(CoreId(0), false, Instant(1)), 2);
        assert!(!sched.core_available(CoreId(0)));
        assert_eq!(sched.location(id(0)), Location::Queued(CoreId(1)));
        assert_eq!(sched.location(id(1)), Location::Queued(CoreId(1)));
        assert_eq!(
            sched.location(id(2)),
            Location::Queued(CoreId(0)),
            "pinned: waits"
        );
        assert!(sched.cores_to_kick().contains(CoreId(1)));
        assert!(!sched.cores_to_kick().contains(CoreId(0)));
        assert_eq!(sched.dispatch(CoreId(0), Instant(2)), None);
        assert_eq!(sched.set_core_available(CoreId(0), false, Instant(2)), 0);
        // New work avoids it; balancing does not move work onto it.
        sched.register(id(3), Priority(4), CoreMask::ALL).unwrap();
        let enqueued = sched.enqueue(id(3), Instant(3)).unwrap();
        assert_eq!(enqueued.core, CoreId(1));
        assert_eq!(sched.balance(), 0);
        assert_eq!(sched.check_invariants(), Ok(()));
        // Back: it runs its pinned task, then steals.
        sched.set_core_available(CoreId(0), true, Instant(4));
        assert!(sched.cores_to_kick().contains(CoreId(0)));
        assert_eq!(sched.dispatch(CoreId(0), Instant(4)), Some(id(2)));
        assert_eq!(sched.check_invariants(), Ok(()));
    }

    #[test]
    fn pinned_tasks_stay_and_idle_cores_steal_only_what_they_may_run() {
        let mut sched = scheduler(2);
        for index in 0..3 {
            sched
                .register(id(index), Priority(4), CoreMask::only(CoreId(0)))
                .unwrap();
            sched.enqueue(id(index), Instant::ZERO).unwrap();
        }
        sched.register(id(3), Priority(4), CoreMask::ALL).unwrap();
        sched.remove(id(3)).unwrap();
        sched.enqueue_on(id(3), CoreId(0), Instant::ZERO);
        sched.dispatch(CoreId(0), Instant::ZERO);
        // Core 1 is idle: it steals task 3, the only one allowed there.
        assert_eq!(sched.dispatch(CoreId(1), Instant(1)), Some(id(3)));
        assert_eq!(sched.core_stats(CoreId(1)).unwrap().steals, 1);
        sched.block_current(CoreId(1), Instant(2));
        assert_eq!(sched.dispatch(CoreId(1), Instant(3)), None);
        assert_eq!(sched.balance(), 0);
        run(&mut sched, 1, 30);
        for index in 0..3 {
            assert_ne!(sched.location(id(index)), Location::Absent);
            assert_ne!(sched.location(id(index)), Location::Queued(CoreId(1)));
        }
    }

    #[test]
    fn balancing_moves_work_past_a_core_busy_with_pinned_tasks() {
        let mut sched = scheduler(3);
        // Core 0: four tasks pinned there (busiest, immovable). Core 1: three movable tasks.
        for index in 0..4 {
            sched
                .register(id(index), Priority(4), CoreMask::only(CoreId(0)))
                .unwrap();
            sched.enqueue(id(index), Instant::ZERO).unwrap();
        }
        for index in 4..7 {
            sched
                .register(id(index), Priority(4), CoreMask::ALL)
                .unwrap();
            sched.enqueue_on(id(index), CoreId(1), Instant::ZERO);
        }
        assert_eq!(
            sched.balance(),
            1,
            "one movable task goes from core 1 to idle core 2"
        );
        assert_eq!(sched.queue_len(CoreId(0)), 4);
        assert_eq!(sched.queue_len(CoreId(1)), 2);
        assert_eq!(sched.queue_len(CoreId(2)), 1);
        assert_eq!(sched.check_invariants(), Ok(()));

        // An idle core steals from a shorter queue when the longest holds only pinned tasks.
        let mut steal = scheduler(3);
        for index in 0..3 {
            steal
                .register(id(index), Priority(4), CoreMask::only(CoreId(0)))
                .unwrap();
            steal.enqueue_on(id(index), CoreId(0), Instant::ZERO);
        }
        steal.register(id(3), Priority(4), CoreMask::ALL).unwrap();
        steal.enqueue_on(id(3), CoreId(1), Instant::ZERO);
        assert_eq!(steal.dispatch(CoreId(2), Instant(1)), Some(id(3)));
        assert_eq!(steal.core_stats(CoreId(2)).unwrap().steals, 1);
        assert_eq!(steal.check_invariants(), Ok(()));
    }

    struct LyingPolicy;

    impl SchedPolicy for LyingPolicy {
        fn pick_next(&mut self, _core: CoreId, _queue: &RunQueueView<'_>) -> Option<TaskId> {
            Some(TaskId::new(60, Generation(9)))
        }
        fn slice_for(&self, _stats: &TaskStats) -> Ticks {
            Ticks(u64::MAX)
        }
    }

    #[test]
    fn a_broken_policy_is_overruled_and_clamped() {
        let mut sched = Scheduler::new(1, LyingPolicy);
        for index in 0..2 {
            sched
                .register(id(index), Priority(4), CoreMask::ALL)
                .unwrap();
            sched.enqueue(id(index), Instant::ZERO).unwrap();
        }
        assert_eq!(sched.dispatch(CoreId(0), Instant::ZERO), Some(id(0)));
        assert_eq!(sched.policy_rejections(), 1);
        run(&mut sched, 1, 2 * MAX_SLICE_TICKS);
        assert!(sched.stats(id(1)).unwrap().cpu_ticks >= MAX_SLICE_TICKS - 1);
    }

    #[test]
    fn bookkeeping_mistakes_are_errors() {
        let mut sched = scheduler(2);
        assert_eq!(
            sched.register(id(0), Priority(PRIORITY_LEVELS), CoreMask::ALL),
            Err(SchedError::BadPriority(PRIORITY_LEVELS))
        );
        assert_eq!(
            sched.register(id(0), Priority(1), CoreMask::only(CoreId(5))),
            Err(SchedError::NoAllowedCore(id(0)))
        );
        assert_eq!(
            sched.enqueue(id(0), Instant::ZERO),
            Err(SchedError::UnknownTask(id(0)))
        );
        sched.register(id(0), Priority(1), CoreMask::ALL).unwrap();
        sched.enqueue(id(0), Instant::ZERO).unwrap();
        assert_eq!(
            sched.enqueue(id(0), Instant::ZERO),
            Err(SchedError::AlreadyRunnable(id(0)))
        );
        let stale = TaskId::new(0, Generation(1));
        assert_eq!(
            sched.enqueue(stale, Instant::ZERO),
            Err(SchedError::UnknownTask(stale))
        );
        let far = TaskId::new(MAX_TASKS as u16, Generation(0));
        assert_eq!(sched.remove(far), Err(SchedError::UnknownTask(far)));
        assert_eq!(sched.tick(CoreId(9), Instant::ZERO), None);
    }
}
