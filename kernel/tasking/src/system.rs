//! The task system: task table, IPC rendezvous, notifications, timers and faults, driving the
//! scheduler. This is the whole portable kernel core; the kernel wraps it in one lock.
//!
//! # Shape
//!
//! The kernel calls in at four places, each with the core and the current time:
//! [`TaskSystem::syscall`] from the `svc` handler, [`TaskSystem::tick`] from the timer
//! interrupt, [`TaskSystem::fault`] from a synchronous exception taken from EL0, and
//! [`TaskSystem::post_from_kernel`] from an interrupt handler that owns a notification. Each
//! returns the task that should now run on that core. Results for a task are left in its slot
//! ([`TaskSystem::take_pending_return`]) and written into its saved x0..x5 by the kernel just
//! before it resumes that task, on whichever core that is. A restarted task asks for a fresh
//! register file and memory image ([`TaskSystem::take_start_request`]).
//!
//! # IPC (after Hubris)
//!
//! Synchronous rendezvous with no kernel buffering: a message is copied exactly once, from the
//! sender's memory to the receiver's, at the moment both are ready. `send` blocks the sender
//! `InSend` until the receiver takes the message, then `InReply` until the reply; `receive`
//! takes the most urgent waiting sender (ties: the longest-waiting) or blocks `InReceive`.
//! `reply` copies into the buffer the sender offered and makes it runnable. Notifications are a
//! 32-bit mask per task: `post` ORs bits in, and a `receive` whose mask matches returns them
//! instead of a message (notifications first, so an interrupt is never starved by traffic).
//!
//! Every blocked state records what it waits for ([`BlockReason`]), and the invariant checker
//! ([`TaskSystem::check_invariants`]) proves after any operation that no wait was missed: no
//! sender waits on a receiver that would accept it, no receiver waits with a matching
//! notification pending, and no one waits on a dead task. That is the property the model-check
//! test drives with random operations.
//!
//! # Death and generations
//!
//! When a task faults, exits or is killed, every task waiting on it (sending to it, awaiting its
//! reply, receiving only from it) gets [`KernelError::DeadTask`] at once, and the supervisor
//! gets [`SUPERVISOR_FAULT_BIT`]. A restart advances the slot's generation, so ids held from
//! before fail from then on. The kernel never restarts on its own: that is the supervisor's
//! policy ([`crate::supervisor`]).

use crate::limits::{MAX_LOG_BYTES_USIZE, MAX_TASKS};
use crate::policy::SchedPolicy;
use crate::sched::{CoreId, CoreMask, Location, Priority, SchedError, Scheduler};
use crate::time::Instant;
use crate::timers::{TimerEntry, TimerKind, TimerQueue};
use crate::usermem::{copy_between, Access, AddressSpaceMap, CheckedSlice, UserMemory};
use abi::limits::{ARGUMENT_REGISTERS, MAX_LOG_BYTES, MAX_MESSAGE_BYTES};
use abi::records::{name_field, TASK_FLAG_SUPERVISOR};
use abi::{
    FaultKind, Generation, KernelError, ReturnRegisters, Syscall, TaskId, TaskInfoRecord,
    TaskStateCode, UserSlice, SUPERVISOR_FAULT_BIT,
};
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

/// Everything fixed about a task: what the kernel needs to (re)start it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDescriptor {
    /// Name for the console and logs (first 16 bytes reported).
    pub name: String,
    /// Scheduling priority.
    pub priority: Priority,
    /// Cores it may run on.
    pub affinity: CoreMask,
    /// True for the one task allowed `read_fault` and `restart_task`.
    pub supervisor: bool,
    /// What it may touch.
    pub address_space: AddressSpaceMap,
    /// Initial program counter.
    pub entry: u64,
    /// Initial stack pointer (16-byte aligned).
    pub stack_top: u64,
    /// The guard pages below the stack: a data fault there is a stack overflow.
    pub stack_guard: Range<u64>,
}

/// Registers a (re)started task begins with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StartContext {
    /// ELR_EL1.
    pub entry: u64,
    /// SP_EL0.
    pub stack_pointer: u64,
    /// x0: the task's own id, so it need not ask.
    pub own_id: TaskId,
}

/// A message waiting in its sender's memory for the receiver.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Operation code.
    pub operation: u32,
    /// The request bytes (checked readable).
    pub request: CheckedSlice,
    /// Where the reply goes (checked writable).
    pub response: CheckedSlice,
    /// Arrival order among senders, for fairness at equal priority.
    pub order: u64,
}

/// Why a task is not runnable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BlockReason {
    /// Its message waits for `target` to receive it.
    InSend {
        /// The receiver.
        target: TaskId,
        /// The message.
        message: OutgoingMessage,
    },
    /// `server` took its message; it waits for the reply.
    InReply {
        /// The server.
        server: TaskId,
        /// Where the reply goes.
        response: CheckedSlice,
    },
    /// It waits for a message or a notification.
    InReceive {
        /// Where a message goes.
        buffer: CheckedSlice,
        /// Notification bits that end the wait.
        notification_mask: u32,
        /// Only from this sender.
        from: Option<TaskId>,
    },
    /// It sleeps until the time.
    Sleeping {
        /// Wake-up time.
        until: Instant,
    },
}

/// Life state of a task slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Runnable (queued or running).
    Runnable,
    /// Waiting, for the recorded reason.
    Blocked(BlockReason),
    /// Stopped by a fault; waits for the supervisor.
    Faulted(FaultKind),
    /// Ended by `exit`.
    Exited(u32),
    /// No task: the slot was released (its last occupant exited or was killed) and waits to be
    /// reused by a spawn, under the next generation.
    Vacant,
}

impl TaskState {
    fn is_alive(&self) -> bool {
        matches!(self, TaskState::Runnable | TaskState::Blocked(_))
    }

    /// The ABI's state code.
    pub fn code(&self) -> TaskStateCode {
        match self {
            TaskState::Runnable => TaskStateCode::Runnable,
            TaskState::Blocked(BlockReason::InSend { .. }) => TaskStateCode::InSend,
            TaskState::Blocked(BlockReason::InReply { .. }) => TaskStateCode::InReply,
            TaskState::Blocked(BlockReason::InReceive { .. }) => TaskStateCode::InReceive,
            TaskState::Blocked(BlockReason::Sleeping { .. }) => TaskStateCode::Sleeping,
            TaskState::Faulted(_) => TaskStateCode::Faulted,
            TaskState::Exited(_) | TaskState::Vacant => TaskStateCode::Exited,
        }
    }
}

#[derive(Clone, Debug)]
struct TaskSlot {
    descriptor: TaskDescriptor,
    generation: Generation,
    state: TaskState,
    notifications: u32,
    sleep_sequence: Option<u64>,
    timer: Option<(u64, u32)>,
    pending_return: Option<ReturnRegisters>,
    start_requested: bool,
    restarts: u32,
}

impl TaskSlot {
    fn id(&self, index: usize) -> TaskId {
        TaskId::new(index as u16, self.generation)
    }
}

/// Why a task could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// All [`MAX_TASKS`] slots are used.
    TableFull,
    /// A second supervisor.
    SecondSupervisor(String),
    /// The scheduler refused the priority or affinity.
    Scheduler(SchedError),
}

/// Receives `log` output (the kernel's console).
pub trait LogSink {
    /// One `log` call's bytes from `task` called `name`.
    fn log(&mut self, task: TaskId, name: &str, bytes: &[u8]);
}

/// What a syscall did to its caller, for the kernel's statistics and the tests.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyscallEffect {
    /// Returned at once (result pending in the caller's slot).
    Returned,
    /// Caller blocked.
    Blocked,
    /// Caller gave up the CPU but stays runnable.
    Yielded,
    /// Caller exited.
    Exited,
    /// No task was current on the core (kernel bookkeeping bug; nothing done).
    NoCurrentTask,
}

/// A bookkeeping violation found by [`TaskSystem::check_invariants`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation {
    /// The task slot concerned, if any.
    pub task: Option<usize>,
    /// What is wrong.
    pub what: &'static str,
}

/// The portable kernel core. See the module documentation.
pub struct TaskSystem<P: SchedPolicy> {
    slots: Vec<TaskSlot>,
    scheduler: Scheduler<P>,
    timers: TimerQueue,
    next_sequence: u64,
    supervisor: Option<usize>,
    kicks: CoreMask,
    timer_epoch: u64,
}

fn violation(task: Option<usize>, what: &'static str) -> Result<(), InvariantViolation> {
    Err(InvariantViolation { task, what })
}

impl<P: SchedPolicy> TaskSystem<P> {
    /// An empty system for `core_count` cores.
    pub fn new(core_count: usize, policy: P) -> Self {
        TaskSystem {
            slots: Vec::new(),
            scheduler: Scheduler::new(core_count, policy),
            timers: TimerQueue::new(),
            next_sequence: 0,
            supervisor: None,
            kicks: CoreMask::NONE,
            timer_epoch: 0,
        }
    }

    /// The scheduler, for statistics and policy parameters.
    pub fn scheduler(&self) -> &Scheduler<P> {
        &self.scheduler
    }

    /// The scheduler, to swap its policy.
    pub fn scheduler_mut(&mut self) -> &mut Scheduler<P> {
        &mut self.scheduler
    }

    /// Size of the task table: slot indices below it exist, though some may be vacant.
    pub fn task_count(&self) -> usize {
        self.slots.len()
    }

    /// Slots holding a task (alive or stopped, not vacant).
    pub fn occupied_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.state != TaskState::Vacant)
            .count()
    }

    /// Current id of slot `index` (for a vacant slot, the id of its last occupant).
    pub fn task_id(&self, index: usize) -> Option<TaskId> {
        self.slots.get(index).map(|slot| slot.id(index))
    }

    /// Life state of slot `index`.
    pub fn state(&self, index: usize) -> Option<TaskState> {
        self.slots.get(index).map(|slot| slot.state)
    }

    /// Descriptor of slot `index` (`None` when vacant).
    pub fn descriptor(&self, index: usize) -> Option<&TaskDescriptor> {
        self.slots
            .get(index)
            .filter(|slot| slot.state != TaskState::Vacant)
            .map(|slot| &slot.descriptor)
    }

    /// The supervisor's slot, if one was spawned.
    pub fn supervisor_index(&self) -> Option<usize> {
        self.supervisor
    }

    /// Pending notification bits of slot `index`.
    pub fn notifications(&self, index: usize) -> Option<u32> {
        self.slots.get(index).map(|slot| slot.notifications)
    }

    /// The bits the notification timer of slot `index` will post, if armed.
    pub fn armed_timer_bits(&self, index: usize) -> Option<u32> {
        self.slots
            .get(index)
            .and_then(|slot| slot.timer.map(|(_, bits)| bits))
    }

    /// Earliest armed timer (possibly a cancelled one: firing early only costs a pass).
    pub fn next_timer_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Earliest live timer armed on `core`: what the kernel programs that core's one-shot
    /// comparator for, so that sleeps and notification timers fire at their deadline rather
    /// than at the next tick. A scan of the queue (a few entries per sleeping task).
    /// Timers armed on a core that is unavailable for tasks (its kernel work may keep it for
    /// long) count for every available core instead, so they still fire on time.
    pub fn next_timer_deadline_on(&self, core: CoreId) -> Option<Instant> {
        let available = self.scheduler.core_available(core);
        self.timers
            .iter()
            .filter(|entry| {
                let ours =
                    entry.core == core || (available && !self.scheduler.core_available(entry.core));
                ours && Self::timer_is_live(&self.slots, entry)
            })
            .map(|entry| entry.deadline)
            .min()
    }

    /// Makes `core` available for tasks or not (see [`Scheduler::set_core_available`]); the
    /// cores that received its tasks are kicked. Timers armed on it are then also due on every
    /// available core, so the caller should let those reprogram ([`TaskSystem::timer_epoch`]
    /// moves).
    pub fn set_core_available(&mut self, core: CoreId, available: bool, now: Instant) {
        if self.scheduler.core_available(core) != available {
            self.scheduler.set_core_available(core, available, now);
            self.timer_epoch += 1;
        }
    }

    /// Changes whenever a timer is armed or fired: a kernel that programmed a comparator from
    /// [`TaskSystem::next_timer_deadline_on`] need not look again until this moves.
    pub fn timer_epoch(&self) -> u64 {
        self.timer_epoch
    }

    /// Cores that must reschedule (send them an SGI); clears the set.
    pub fn take_kicks(&mut self) -> CoreMask {
        let mut kicks = core::mem::replace(&mut self.kicks, CoreMask::NONE);
        kicks.0 |= self.scheduler.cores_to_kick().0;
        kicks
    }

    /// The result registers waiting for `task`, if any (the kernel writes them into x0..x5
    /// before resuming the task).
    pub fn take_pending_return(&mut self, task: TaskId) -> Option<ReturnRegisters> {
        let slot = self.live_slot_mut(task)?;
        slot.pending_return.take()
    }

    /// If `task` was (re)started since the last call, the registers it starts with; the kernel
    /// must also (re)load its memory image before resuming it.
    pub fn take_start_request(&mut self, task: TaskId) -> Option<StartContext> {
        let slot = self.live_slot_mut(task)?;
        if !core::mem::take(&mut slot.start_requested) {
            return None;
        }
        Some(StartContext {
            entry: slot.descriptor.entry,
            stack_pointer: slot.descriptor.stack_top,
            own_id: task,
        })
    }

    fn live_slot_mut(&mut self, task: TaskId) -> Option<&mut TaskSlot> {
        self.slots
            .get_mut(task.index_usize())
            .filter(|slot| slot.generation == task.generation())
    }

    /// Adds a task and makes it runnable: in the lowest vacant slot under the generation after
    /// its last occupant's (so ids of that occupant stay dead), or in a new slot.
    pub fn spawn(
        &mut self,
        descriptor: TaskDescriptor,
        now: Instant,
    ) -> Result<TaskId, SpawnError> {
        let vacant = self
            .slots
            .iter()
            .position(|slot| slot.state == TaskState::Vacant);
        let (index, generation) = match vacant {
            Some(index) => (index, self.slots[index].generation.next()),
            None if self.slots.len() < MAX_TASKS => (self.slots.len(), Generation(0)),
            None => return Err(SpawnError::TableFull),
        };
        if descriptor.supervisor && self.supervisor.is_some() {
            return Err(SpawnError::SecondSupervisor(descriptor.name));
        }
        let id = TaskId::new(index as u16, generation);
        self.scheduler
            .register(id, descriptor.priority, descriptor.affinity)
            .map_err(SpawnError::Scheduler)?;
        if descriptor.supervisor {
            self.supervisor = Some(index);
        }
        let slot = TaskSlot {
            descriptor,
            generation,
            state: TaskState::Runnable,
            notifications: 0,
            sleep_sequence: None,
            timer: None,
            pending_return: None,
            start_requested: true,
            restarts: 0,
        };
        match self.slots.get_mut(index) {
            Some(vacant) => *vacant = slot,
            None => self.slots.push(slot),
        }
        self.make_runnable(index, now);
        Ok(id)
    }

    /// Frees slot `index` for reuse once its task has ended for good (exited, or stopped and
    /// not to be restarted): the kernel calls this after it got the task's memory back. Ids of
    /// the slot keep failing with `DeadTask` (a spawn there takes the next generation).
    pub fn release(&mut self, index: usize) -> Result<(), KernelError> {
        let slot = self.slots.get_mut(index).ok_or(KernelError::NoSuchTask)?;
        match slot.state {
            TaskState::Exited(_) | TaskState::Faulted(_) => {}
            TaskState::Vacant => return Err(KernelError::NoSuchTask),
            _ => return Err(KernelError::NotFaulted),
        }
        slot.state = TaskState::Vacant;
        slot.notifications = 0;
        slot.sleep_sequence = None;
        slot.timer = None;
        slot.pending_return = None;
        slot.start_requested = false;
        let id = slot.id(index);
        self.scheduler.unregister(id);
        if self.supervisor == Some(index) {
            self.supervisor = None;
        }
        Ok(())
    }

    /// The task current on `core`, dispatching one if the core is idle.
    pub fn current(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        self.scheduler.dispatch(core, now)
    }

    /// Re-decides `core` after a kick (SGI) or on syscall return: if a more urgent task was
    /// queued there, the current one is put back and the urgent one dispatched. Returns the
    /// task to run.
    pub fn reschedule(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        self.scheduler.preempt_if_pending(core, now)
    }

    fn sequence(&mut self) -> u64 {
        self.next_sequence += 1;
        self.next_sequence
    }

    fn make_runnable(&mut self, index: usize, now: Instant) {
        let id = self.slots[index].id(index);
        self.slots[index].state = TaskState::Runnable;
        // The scheduler knows this id (registered at spawn or restart) and it is absent from
        // the queues (it was blocked or new), so this cannot fail; if a bookkeeping bug ever
        // made it fail the task would show as runnable-but-absent in check_invariants.
        if let Ok(enqueued) = self.scheduler.enqueue(id, now) {
            if enqueued.kick {
                self.kicks.insert(enqueued.core);
            }
        }
    }

    fn wake(&mut self, index: usize, result: ReturnRegisters, now: Instant) {
        self.slots[index].pending_return = Some(result);
        self.make_runnable(index, now);
    }

    /// Resolves `target` to a live slot index, or the error for the caller.
    fn resolve(&self, target: TaskId) -> Result<usize, ReturnRegisters> {
        let index = target.index_usize();
        let slot = self
            .slots
            .get(index)
            .ok_or(ReturnRegisters::error(KernelError::NoSuchTask))?;
        if slot.generation != target.generation() || !slot.state.is_alive() {
            return Err(ReturnRegisters::dead_task(slot.id(index)));
        }
        Ok(index)
    }

    fn check(
        &self,
        index: usize,
        slice: UserSlice,
        access: Access,
    ) -> Result<CheckedSlice, ReturnRegisters> {
        let slot = &self.slots[index];
        slot.descriptor
            .address_space
            .check(slot.id(index), slice, access)
            .map_err(|_| ReturnRegisters::error(KernelError::BadPointer))
    }

    /// Handles `svc` from the task current on `core`: `number` is x8, `args` x0..x5. Returns
    /// what happened to the caller; [`TaskSystem::current`] then says who runs.
    pub fn syscall(
        &mut self,
        core: CoreId,
        now: Instant,
        number: u64,
        args: &[u64; ARGUMENT_REGISTERS],
        memory: &mut impl UserMemory,
        log: &mut impl LogSink,
    ) -> SyscallEffect {
        let Some(caller) = self.scheduler.current(core) else {
            return SyscallEffect::NoCurrentTask;
        };
        let index = caller.index_usize();
        let flow = match Syscall::decode(number, args) {
            Err(error) => Err(ReturnRegisters::error(error)),
            Ok(call) => self.dispatch_call(core, index, call, now, memory, log),
        };
        let effect = match flow {
            Ok(Flow::Return(result)) | Err(result) => {
                self.slots[index].pending_return = Some(result);
                SyscallEffect::Returned
            }
            Ok(Flow::Blocked) => SyscallEffect::Blocked,
            Ok(Flow::Yielded) => SyscallEffect::Yielded,
            Ok(Flow::Exited) => SyscallEffect::Exited,
        };
        match effect {
            SyscallEffect::Blocked => {
                self.scheduler.block_current(core, now);
            }
            SyscallEffect::Yielded => {
                self.scheduler.yield_current(core, now);
            }
            _ => {
                self.scheduler.preempt_if_pending(core, now);
            }
        }
        effect
    }

    /// Runs one decoded call. `Err` is an immediate error for the caller (so `?` works on the
    /// checks); `Ok` says whether it returns, blocked, yielded or exited.
    fn dispatch_call(
        &mut self,
        core: CoreId,
        caller: usize,
        call: Syscall,
        now: Instant,
        memory: &mut impl UserMemory,
        log: &mut impl LogSink,
    ) -> Result<Flow, ReturnRegisters> {
        let done = |result: ReturnRegisters| Ok(Flow::Return(result));
        match call {
            Syscall::Send {
                target,
                operation,
                request,
                response,
            } => self.send(caller, target, operation, request, response, now, memory),
            Syscall::Receive {
                buffer,
                notification_mask,
                from,
            } => self.receive(caller, buffer, notification_mask, from, now, memory),
            Syscall::Reply {
                client,
                code,
                message,
            } => done(self.reply(caller, client, code, message, now, memory)),
            Syscall::Post { target, bits } => {
                let target = self.resolve(target)?;
                self.post_bits(target, bits, now);
                done(ReturnRegisters::ok(&[]))
            }
            Syscall::Yield => Ok(Flow::Yielded),
            Syscall::Sleep { nanoseconds: 0 } => Ok(Flow::Yielded),
            Syscall::Sleep { nanoseconds } => {
                let until = now.plus_nanos(nanoseconds);
                let sequence = self.arm(caller, core, until, TimerKind::Wake);
                let slot = &mut self.slots[caller];
                slot.sleep_sequence = Some(sequence);
                slot.state = TaskState::Blocked(BlockReason::Sleeping { until });
                Ok(Flow::Blocked)
            }
            Syscall::SetTimer { deadline: None, .. } => {
                self.slots[caller].timer = None;
                done(ReturnRegisters::ok(&[]))
            }
            Syscall::SetTimer {
                deadline: Some(deadline),
                bits,
            } => {
                let sequence = self.arm(caller, core, Instant(deadline), TimerKind::Notify);
                self.slots[caller].timer = Some((sequence, bits));
                // A deadline already past fires now rather than one tick late.
                self.fire_timers(now);
                done(ReturnRegisters::ok(&[]))
            }
            Syscall::GetTime => done(ReturnRegisters::ok(&[now.0])),
            Syscall::Exit { code } => {
                self.stop(caller, TaskState::Exited(code), now);
                Ok(Flow::Exited)
            }
            Syscall::Log { message } => done(self.log(caller, message, memory, log)),
            Syscall::TaskInfo { target, out } => {
                done(self.task_info_call(caller, target, out, memory))
            }
            Syscall::ReadFault { index } => done(self.read_fault(caller, index as usize)),
            Syscall::RestartTask { index } => {
                if self.supervisor != Some(caller) {
                    return Err(ReturnRegisters::error(KernelError::NotPermitted));
                }
                let id = self
                    .restart(index as usize, now)
                    .map_err(ReturnRegisters::error)?;
                done(ReturnRegisters::ok(&[id.to_raw() as u64]))
            }
        }
    }

    fn arm(&mut self, index: usize, core: CoreId, deadline: Instant, kind: TimerKind) -> u64 {
        let sequence = self.sequence();
        let task = self.slots[index].id(index);
        self.timer_epoch += 1;
        self.timers.push(TimerEntry {
            deadline,
            sequence,
            task,
            kind,
            core,
        });
        if self.timers.needs_compaction() {
            let slots = &self.slots;
            self.timers
                .retain(|entry| Self::timer_is_live(slots, entry));
        }
        sequence
    }

    fn timer_is_live(slots: &[TaskSlot], entry: &TimerEntry) -> bool {
        let Some(slot) = slots.get(entry.task.index_usize()) else {
            return false;
        };
        slot.generation == entry.task.generation()
            && match entry.kind {
                TimerKind::Wake => slot.sleep_sequence == Some(entry.sequence),
                TimerKind::Notify => {
                    slot.timer.map(|(sequence, _)| sequence) == Some(entry.sequence)
                }
            }
    }

    /// Would `caller` sending to `target` close a cycle of send/reply waits?
    fn would_deadlock(&self, caller: usize, target: usize) -> bool {
        let mut cursor = target;
        for _ in 0..MAX_TASKS {
            if cursor == caller {
                return true;
            }
            cursor = match self.slots[cursor].state {
                TaskState::Blocked(BlockReason::InSend { target, .. }) => target.index_usize(),
                TaskState::Blocked(BlockReason::InReply { server, .. }) => server.index_usize(),
                _ => return false,
            };
        }
        // A chain longer than the table would itself be a cycle not through the caller; the
        // invariants exclude it, and refusing is the safe answer.
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        caller: usize,
        target: TaskId,
        operation: u32,
        request: UserSlice,
        response: UserSlice,
        now: Instant,
        memory: &mut impl UserMemory,
    ) -> Result<Flow, ReturnRegisters> {
        let target = self.resolve(target)?;
        if target == caller {
            return Err(ReturnRegisters::error(KernelError::SelfSend));
        }
        let request = self.check(caller, request, Access::Read)?;
        let response = self.check(caller, response, Access::Write)?;
        if request.len() > MAX_MESSAGE_BYTES || response.len() > MAX_MESSAGE_BYTES {
            return Err(ReturnRegisters::error(KernelError::MessageTooLarge));
        }
        if self.would_deadlock(caller, target) {
            return Err(ReturnRegisters::error(KernelError::WouldDeadlock));
        }
        let order = self.sequence();
        let message = OutgoingMessage {
            operation,
            request,
            response,
            order,
        };
        let caller_id = self.slots[caller].id(caller);
        if let TaskState::Blocked(BlockReason::InReceive { buffer, from, .. }) =
            self.slots[target].state
        {
            if from.is_none_or(|from| from == caller_id) {
                if request.len() > buffer.len() {
                    return Err(ReturnRegisters::error(KernelError::MessageTooLarge));
                }
                self.deliver(caller, message, target, buffer, now, memory)?;
                return Ok(Flow::Blocked);
            }
        }
        let target_id = self.slots[target].id(target);
        self.slots[caller].state = TaskState::Blocked(BlockReason::InSend {
            target: target_id,
            message,
        });
        Ok(Flow::Blocked)
    }

    /// Copies `message` from `sender` into `receiver`'s `buffer`, moves the sender to
    /// `InReply` and wakes the receiver with the receive result. On a copy failure nothing
    /// changes and the error is for the sender.
    fn deliver(
        &mut self,
        sender: usize,
        message: OutgoingMessage,
        receiver: usize,
        buffer: CheckedSlice,
        now: Instant,
        memory: &mut impl UserMemory,
    ) -> Result<(), ReturnRegisters> {
        let length = copy_between(memory, &message.request, &buffer)
            .map_err(|_| ReturnRegisters::error(KernelError::BadPointer))?;
        let sender_id = self.slots[sender].id(sender);
        let receiver_id = self.slots[receiver].id(receiver);
        self.slots[sender].state = TaskState::Blocked(BlockReason::InReply {
            server: receiver_id,
            response: message.response,
        });
        let result = ReturnRegisters::ok(&[
            sender_id.to_raw() as u64,
            message.operation as u64,
            length,
            message.response.len(),
        ]);
        self.wake(receiver, result, now);
        Ok(())
    }

    fn receive(
        &mut self,
        caller: usize,
        buffer: UserSlice,
        notification_mask: u32,
        from: Option<TaskId>,
        now: Instant,
        memory: &mut impl UserMemory,
    ) -> Result<Flow, ReturnRegisters> {
        let buffer = self.check(caller, buffer, Access::Write)?;
        if let Some(from) = from {
            self.resolve(from)?;
        }
        let pending = self.slots[caller].notifications & notification_mask;
        if pending != 0 {
            self.slots[caller].notifications &= !pending;
            return Ok(Flow::Return(notification_result(pending)));
        }
        let caller_id = self.slots[caller].id(caller);
        // Senders are tried most urgent first; one whose message does not fit is failed and
        // the next is tried, so the loop runs at most once per task.
        for _ in 0..MAX_TASKS {
            let Some((sender, message)) = self.best_sender(caller_id, from) else {
                break;
            };
            if message.request.len() > buffer.len() {
                self.wake(
                    sender,
                    ReturnRegisters::error(KernelError::MessageTooLarge),
                    now,
                );
                continue;
            }
            let sender_id = self.slots[sender].id(sender);
            match copy_between(memory, &message.request, &buffer) {
                Ok(length) => {
                    self.slots[sender].state = TaskState::Blocked(BlockReason::InReply {
                        server: caller_id,
                        response: message.response,
                    });
                    return Ok(Flow::Return(ReturnRegisters::ok(&[
                        sender_id.to_raw() as u64,
                        message.operation as u64,
                        length,
                        message.response.len(),
                    ])));
                }
                Err(_) => {
                    self.wake(sender, ReturnRegisters::error(KernelError::BadPointer), now);
                }
            }
        }
        self.slots[caller].state = TaskState::Blocked(BlockReason::InReceive {
            buffer,
            notification_mask,
            from,
        });
        Ok(Flow::Blocked)
    }

    /// The waiting sender to `receiver` that goes first: most urgent, then longest waiting.
    fn best_sender(
        &self,
        receiver: TaskId,
        from: Option<TaskId>,
    ) -> Option<(usize, OutgoingMessage)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| match slot.state {
                TaskState::Blocked(BlockReason::InSend { target, message })
                    if target == receiver && from.is_none_or(|from| from == slot.id(index)) =>
                {
                    Some((index, message, slot.descriptor.priority))
                }
                _ => None,
            })
            .min_by_key(|(_, message, priority)| (*priority, message.order))
            .map(|(index, message, _)| (index, message))
    }

    fn reply(
        &mut self,
        caller: usize,
        client: TaskId,
        code: u32,
        message: UserSlice,
        now: Instant,
        memory: &mut impl UserMemory,
    ) -> ReturnRegisters {
        if code >= abi::error::KERNEL_ERROR_BASE {
            return ReturnRegisters::error(KernelError::BadReplyCode);
        }
        let message = match self.check(caller, message, Access::Read) {
            Ok(message) => message,
            Err(error) => return error,
        };
        let client = match self.resolve(client) {
            Ok(client) => client,
            Err(error) => return error,
        };
        let caller_id = self.slots[caller].id(caller);
        let TaskState::Blocked(BlockReason::InReply { server, response }) =
            self.slots[client].state
        else {
            return ReturnRegisters::error(KernelError::NotWaitingForReply);
        };
        if server != caller_id {
            return ReturnRegisters::error(KernelError::NotWaitingForReply);
        }
        if message.len() > response.len() {
            return ReturnRegisters::error(KernelError::ReplyTooLarge);
        }
        match copy_between(memory, &message, &response) {
            Ok(length) => {
                self.wake(client, ReturnRegisters::with_code(code, &[length]), now);
                ReturnRegisters::ok(&[])
            }
            Err(error) if error.task == caller_id => {
                ReturnRegisters::error(KernelError::BadPointer)
            }
            Err(_) => {
                // The client's buffer failed: its problem, reported to it; the server is done.
                self.wake(client, ReturnRegisters::error(KernelError::BadPointer), now);
                ReturnRegisters::ok(&[])
            }
        }
    }

    fn post_bits(&mut self, target: usize, bits: u32, now: Instant) {
        let slot = &mut self.slots[target];
        if !slot.state.is_alive() {
            return;
        }
        slot.notifications |= bits;
        if let TaskState::Blocked(BlockReason::InReceive {
            notification_mask, ..
        }) = slot.state
        {
            let pending = slot.notifications & notification_mask;
            if pending != 0 {
                slot.notifications &= !pending;
                self.wake(target, notification_result(pending), now);
            }
        }
    }

    /// Posts `bits` to `task` on behalf of the kernel (an interrupt it owns). Stale or dead
    /// targets are ignored and reported as `false`.
    pub fn post_from_kernel(&mut self, task: TaskId, bits: u32, now: Instant) -> bool {
        match self.resolve(task) {
            Ok(index) => {
                self.post_bits(index, bits, now);
                true
            }
            Err(_) => false,
        }
    }

    fn log(
        &mut self,
        caller: usize,
        message: UserSlice,
        memory: &mut impl UserMemory,
        log: &mut impl LogSink,
    ) -> ReturnRegisters {
        let message = match self.check(caller, message, Access::Read) {
            Ok(message) => message,
            Err(error) => return error,
        };
        if message.len() > MAX_LOG_BYTES {
            return ReturnRegisters::error(KernelError::BadArgument);
        }
        let mut buffer = [0u8; MAX_LOG_BYTES_USIZE];
        let bytes = &mut buffer[..message.len() as usize];
        // An empty slice is valid at any user address, mapped or not: never hand it to the
        // copy routine, which may translate its address.
        if !bytes.is_empty() && memory.read(&message, 0, bytes).is_err() {
            return ReturnRegisters::error(KernelError::BadPointer);
        }
        let slot = &self.slots[caller];
        log.log(slot.id(caller), &slot.descriptor.name, bytes);
        ReturnRegisters::ok(&[message.len()])
    }

    /// What `task_info` and the console's `ps` report about slot `index`.
    pub fn task_info(&self, index: usize) -> Option<TaskInfoRecord> {
        let slot = self
            .slots
            .get(index)
            .filter(|slot| slot.state != TaskState::Vacant)?;
        let id = slot.id(index);
        let core = match self.scheduler.location(id) {
            Location::Queued(core) | Location::Running(core) => Some(core.0 as u8),
            Location::Absent => None,
        };
        let blocked_on = match slot.state {
            TaskState::Blocked(BlockReason::InSend { target, .. }) => Some(target),
            TaskState::Blocked(BlockReason::InReply { server, .. }) => Some(server),
            TaskState::Blocked(BlockReason::InReceive { from, .. }) => from,
            _ => None,
        };
        Some(TaskInfoRecord {
            id,
            state: slot.state.code(),
            priority: slot.descriptor.priority.0,
            core,
            flags: if slot.descriptor.supervisor {
                TASK_FLAG_SUPERVISOR
            } else {
                0
            },
            restarts: slot.restarts,
            cpu_ticks: self.scheduler.stats(id).map_or(0, |stats| stats.cpu_ticks),
            name: name_field(&slot.descriptor.name),
            blocked_on,
        })
    }

    fn task_info_call(
        &mut self,
        caller: usize,
        target: TaskId,
        out: UserSlice,
        memory: &mut impl UserMemory,
    ) -> ReturnRegisters {
        let out = match self.check(caller, out, Access::Write) {
            Ok(out) => out,
            Err(error) => return error,
        };
        if out.len() < TaskInfoRecord::WIRE_BYTES as u64 {
            return ReturnRegisters::error(KernelError::BadArgument);
        }
        let index = if target == TaskId::CURRENT {
            caller
        } else {
            target.index_usize()
        };
        let Some(record) = self.task_info(index) else {
            return ReturnRegisters::error(KernelError::NoSuchTask);
        };
        if memory.write(&out, 0, &record.to_bytes()).is_err() {
            return ReturnRegisters::error(KernelError::BadPointer);
        }
        ReturnRegisters::ok(&[TaskInfoRecord::WIRE_BYTES as u64, self.slots.len() as u64])
    }

    fn read_fault(&self, caller: usize, index: usize) -> ReturnRegisters {
        if self.supervisor != Some(caller) {
            return ReturnRegisters::error(KernelError::NotPermitted);
        }
        let Some(slot) = self.slots.get(index) else {
            return ReturnRegisters::error(KernelError::NoSuchTask);
        };
        let id = slot.id(index).to_raw() as u64;
        match slot.state {
            TaskState::Faulted(kind) => {
                let record = kind.to_record();
                ReturnRegisters::ok(&[record.kind, record.address, record.detail, id])
            }
            TaskState::Exited(code) => ReturnRegisters::ok(&[0, 0, code as u64, id]),
            TaskState::Vacant => ReturnRegisters::error(KernelError::NoSuchTask),
            _ => ReturnRegisters::error(KernelError::NotFaulted),
        }
    }

    /// Takes `index` out of service with `final_state`: off the CPU and queues, timers
    /// cancelled, every task waiting on it failed with `DeadTask`, the supervisor notified.
    fn stop(&mut self, index: usize, final_state: TaskState, now: Instant) {
        let id = self.slots[index].id(index);
        if let Ok(Some(core)) = self.scheduler.remove(id) {
            self.kicks.insert(core);
        }
        let slot = &mut self.slots[index];
        slot.state = final_state;
        slot.notifications = 0;
        slot.sleep_sequence = None;
        slot.timer = None;
        slot.pending_return = None;
        self.fail_waiters_on(id, now);
        if let Some(supervisor) = self.supervisor.filter(|supervisor| *supervisor != index) {
            self.post_bits(supervisor, SUPERVISOR_FAULT_BIT, now);
        }
    }

    fn fail_waiters_on(&mut self, dead: TaskId, now: Instant) {
        let current = self.slots[dead.index_usize()].id(dead.index_usize());
        for index in 0..self.slots.len() {
            let waits_on_dead = match self.slots[index].state {
                TaskState::Blocked(BlockReason::InSend { target, .. }) => target == dead,
                TaskState::Blocked(BlockReason::InReply { server, .. }) => server == dead,
                TaskState::Blocked(BlockReason::InReceive { from, .. }) => from == Some(dead),
                _ => false,
            };
            if waits_on_dead {
                self.wake(index, ReturnRegisters::dead_task(current), now);
            }
        }
    }

    /// A synchronous exception from the task current on `core` (the kernel classified it).
    /// A data fault in the stack guard pages is reported as a stack overflow. Returns the
    /// faulted task.
    pub fn fault(&mut self, core: CoreId, kind: FaultKind, now: Instant) -> Option<TaskId> {
        let task = self.scheduler.current(core)?;
        let index = task.index_usize();
        let guard = &self.slots[index].descriptor.stack_guard;
        let kind = match kind {
            FaultKind::MemoryAccess { address, .. } if guard.contains(&address) => {
                FaultKind::StackOverflow { address }
            }
            other => other,
        };
        self.stop(index, TaskState::Faulted(kind), now);
        self.scheduler.dispatch(core, now);
        Some(task)
    }

    /// Stops a task from outside (console `kill`), whatever its state. The id must be current.
    /// A task already stopped by a fault (waiting for its restart) is marked killed instead, so
    /// that the supervisor leaves it stopped; an exited or killed one is `DeadTask`.
    pub fn kill(&mut self, task: TaskId, now: Instant) -> Result<(), KernelError> {
        let index = task.index_usize();
        if let Some(slot) = self.slots.get_mut(index) {
            let faulted =
                matches!(slot.state, TaskState::Faulted(kind) if kind != FaultKind::Killed);
            if faulted && slot.generation == task.generation() {
                slot.state = TaskState::Faulted(FaultKind::Killed);
                if let Some(supervisor) = self.supervisor.filter(|supervisor| *supervisor != index)
                {
                    self.post_bits(supervisor, SUPERVISOR_FAULT_BIT, now);
                }
                return Ok(());
            }
        }
        let index = self.resolve(task).map_err(|_| KernelError::DeadTask)?;
        self.stop(index, TaskState::Faulted(FaultKind::Killed), now);
        Ok(())
    }

    /// Restarts a stopped (faulted or exited) task under a new generation. The kernel reloads
    /// its image when it takes the start request.
    pub fn restart(&mut self, index: usize, now: Instant) -> Result<TaskId, KernelError> {
        let slot = self.slots.get_mut(index).ok_or(KernelError::NoSuchTask)?;
        if slot.state == TaskState::Vacant {
            return Err(KernelError::NoSuchTask);
        }
        if slot.state.is_alive() {
            return Err(KernelError::NotFaulted);
        }
        slot.generation = slot.generation.next();
        slot.restarts = slot.restarts.saturating_add(1);
        slot.start_requested = true;
        slot.notifications = 0;
        slot.pending_return = None;
        let id = slot.id(index);
        let (priority, affinity) = (slot.descriptor.priority, slot.descriptor.affinity);
        let old = TaskId::new(index as u16, Generation(id.generation().0.wrapping_sub(1)));
        self.scheduler.unregister(old);
        self.scheduler
            .register(id, priority, affinity)
            .map_err(|_| KernelError::BadArgument)?;
        self.make_runnable(index, now);
        Ok(id)
    }

    /// The timer interrupt of `core`: fires due timers, charges the current task, preempts when
    /// its slice is spent. Returns the task to run.
    pub fn tick(&mut self, core: CoreId, now: Instant) -> Option<TaskId> {
        self.fire_timers(now);
        self.scheduler.tick(core, now)
    }

    /// Fires every timer due at `now` (the kernel calls it after its one-shot comparator fired;
    /// [`TaskSystem::tick`] does too).
    pub fn fire_timers(&mut self, now: Instant) {
        while let Some(entry) = self.timers.pop_expired(now) {
            self.timer_epoch += 1;
            if !Self::timer_is_live(&self.slots, &entry) {
                continue;
            }
            let index = entry.task.index_usize();
            match entry.kind {
                TimerKind::Wake => {
                    self.slots[index].sleep_sequence = None;
                    if matches!(
                        self.slots[index].state,
                        TaskState::Blocked(BlockReason::Sleeping { .. })
                    ) {
                        self.wake(index, ReturnRegisters::ok(&[now.0]), now);
                    }
                }
                TimerKind::Notify => {
                    if let Some((_, bits)) = self.slots[index].timer.take() {
                        self.post_bits(index, bits, now);
                    }
                }
            }
        }
    }

    /// Checks every cross-structure invariant; see the module documentation.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        if let Err(what) = self.scheduler.check_invariants() {
            return violation(None, what);
        }
        for (index, slot) in self.slots.iter().enumerate() {
            let id = slot.id(index);
            let here = Some(index);
            let located = self.scheduler.location(id) != Location::Absent;
            if (slot.state == TaskState::Runnable) != located {
                return violation(here, "runnable exactly when the scheduler holds the task");
            }
            if slot.state == TaskState::Vacant
                && (slot.timer.is_some() || slot.sleep_sequence.is_some() || slot.start_requested)
            {
                return violation(here, "a vacant slot holds a timer or a start request");
            }
            let TaskState::Blocked(reason) = slot.state else {
                if !slot.state.is_alive() && slot.notifications != 0 {
                    return violation(here, "a stopped task has pending notifications");
                }
                continue;
            };
            if slot.pending_return.is_some() {
                return violation(here, "a blocked task already has a result");
            }
            let alive = |peer: TaskId| {
                self.slots.get(peer.index_usize()).is_some_and(|peer_slot| {
                    peer_slot.id(peer.index_usize()) == peer && peer_slot.state.is_alive()
                })
            };
            match reason {
                BlockReason::InSend { target, message } => {
                    if !alive(target) {
                        return violation(here, "sending to a dead or stale task");
                    }
                    if message.request.owner() != id || message.response.owner() != id {
                        return violation(here, "message buffers belong to another task");
                    }
                    if let TaskState::Blocked(BlockReason::InReceive { from, .. }) =
                        self.slots[target.index_usize()].state
                    {
                        if from.is_none_or(|from| from == id) {
                            return violation(here, "missed rendezvous: receiver would accept");
                        }
                    }
                }
                BlockReason::InReply { server, response } => {
                    if !alive(server) {
                        return violation(here, "awaiting a reply from a dead or stale task");
                    }
                    if response.owner() != id {
                        return violation(here, "reply buffer belongs to another task");
                    }
                }
                BlockReason::InReceive {
                    notification_mask,
                    from,
                    buffer,
                } => {
                    if slot.notifications & notification_mask != 0 {
                        return violation(here, "missed wake-up: matching notification pending");
                    }
                    if from.is_some_and(|from| !alive(from)) {
                        return violation(here, "receiving only from a dead or stale task");
                    }
                    if buffer.owner() != id {
                        return violation(here, "receive buffer belongs to another task");
                    }
                    if self.best_sender(id, from).is_some() {
                        return violation(here, "missed rendezvous: an acceptable sender waits");
                    }
                }
                BlockReason::Sleeping { .. } => {
                    if slot.sleep_sequence.is_none() {
                        return violation(here, "sleeping without a timer");
                    }
                }
            }
        }
        Ok(())
    }
}

/// How a syscall left its caller (internal to dispatch).
enum Flow {
    Return(ReturnRegisters),
    Blocked,
    Yielded,
    Exited,
}

fn notification_result(bits: u32) -> ReturnRegisters {
    ReturnRegisters::ok(&[TaskId::KERNEL.to_raw() as u64, bits as u64, 0, 0])
}
