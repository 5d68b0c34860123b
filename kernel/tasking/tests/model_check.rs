//! Model-check style randomised test of the IPC state machine.
//!
//! Twelve tasks on four cores issue random syscalls (sends with unique, self-checking
//! payloads, receives with random buffers, masks and filters, replies, posts, sleeps, timers,
//! exits) while the harness injects ticks, faults, kills, kernel notifications and supervisor
//! restarts. After every step the task system's own invariant checker must pass (every blocked
//! task has a consistent reason; no missed rendezvous or wake-up; scheduler bookkeeping exact).
//! A ledger outside the kernel checks the end-to-end properties: every message is delivered at
//! most once, to the task it was sent to, with the bytes and operation sent; every reply reaches
//! the right client with the right bytes; every send ends in exactly one outcome or is visibly
//! still waiting; every notification bit received was posted and not yet received.

mod common;

use abi::error::KERNEL_ERROR_BASE;
use abi::{FaultKind, KernelError, ReturnRegisters, Syscall, TaskId};
use common::*;
use std::collections::HashMap;
use tasking::sched::{CoreId, CoreMask};
use tasking::system::{BlockReason, SyscallEffect, TaskState};
use tasking::time::Instant;

const TASKS: usize = 12;
const CORES: usize = 4;
const REQUEST: u64 = DATA_BASE;
const RESPONSE: u64 = DATA_BASE + 0x200;
const BUFFER: u64 = DATA_BASE + 0x400;
const REPLY_OUT: u64 = DATA_BASE + 0x600;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn payload(message: u64, len: usize) -> Vec<u8> {
    let mut bytes = message.to_le_bytes().to_vec();
    bytes.extend((8..len).map(|i| (message.wrapping_mul(31) as usize + i) as u8));
    bytes
}

fn reply_bytes(message: u64) -> [u8; 8] {
    (message ^ 0x5A5A_5A5A_5A5A_5A5A).to_le_bytes()
}

fn reply_code(message: u64) -> u32 {
    (message % 1000) as u32
}

#[derive(Debug)]
struct Message {
    sender: TaskId,
    target: TaskId,
    operation: u32,
    len: usize,
    deliveries: u32,
    replied_len: Option<u64>,
    outcome: Option<u32>,
    sender_died: bool,
}

/// Posts and deliveries of one notification bit of one task since its last death. Bits
/// coalesce, so deliveries never exceed posts; and a post after the last delivery must still
/// be pending.
#[derive(Copy, Clone, Debug, Default)]
struct BitLedger {
    posted: u64,
    delivered: u64,
    last_posted: u64,
    last_delivered: u64,
}

#[derive(Copy, Clone, Debug)]
enum Waiting {
    Nothing,
    Send { message: u64 },
    Receive { mask: u32 },
    Sleep,
}

struct Harness {
    world: World,
    rng: Rng,
    messages: HashMap<u64, Message>,
    next_message: u64,
    waiting: Vec<Waiting>,
    owed: Vec<Vec<(TaskId, u64, u64)>>, // per server: (client, message, response capacity)
    bits: Vec<[BitLedger; 32]>,
    steps: u64,
    idle_steps: u64,
    seen_ids: Vec<TaskId>,
    delivered: u64,
    replies: u64,
    notifications: u64,
    history: Vec<Vec<String>>,
    armed_timer: Vec<Option<(u64, u32)>>,
}

impl Harness {
    fn note(&mut self, index: usize, what: String) {
        let h = &mut self.history[index];
        h.push(format!("t={} {what}", self.world.now.0));
        if h.len() > 30 {
            h.remove(0);
        }
    }
    fn new(seed: u64) -> Harness {
        let mut world = World::new(CORES);
        let mut rng = Rng(seed);
        let mut seen_ids = Vec::new();
        for index in 0..TASKS {
            let name = format!("t{index}");
            let priority = rng.below(8) as u8;
            let id = world
                .sys
                .spawn(descriptor(&name, priority, CoreMask::ALL, false), world.now)
                .expect("spawn");
            seen_ids.push(id);
        }
        Harness {
            world,
            rng,
            messages: HashMap::new(),
            next_message: 1,
            waiting: vec![Waiting::Nothing; TASKS],
            owed: vec![Vec::new(); TASKS],
            bits: vec![[BitLedger::default(); 32]; TASKS],
            steps: 1,
            idle_steps: 0,
            seen_ids,
            delivered: 0,
            replies: 0,
            notifications: 0,
            history: vec![Vec::new(); TASKS],
            armed_timer: vec![None; TASKS],
        }
    }

    fn posted(&mut self, index: usize, bits: u32) {
        for bit in 0..32 {
            if bits & (1 << bit) != 0 {
                let ledger = &mut self.bits[index][bit];
                ledger.posted += 1;
                ledger.last_posted = self.steps;
            }
        }
    }

    fn id(&self, index: usize) -> TaskId {
        self.world.sys.task_id(index).expect("slot")
    }

    fn alive(&self, index: usize) -> bool {
        matches!(
            self.world.sys.state(index),
            Some(TaskState::Runnable | TaskState::Blocked(_))
        )
    }

    /// Takes and checks whatever result is waiting for slot `index`.
    fn settle(&mut self, index: usize) {
        let id = self.id(index);
        let Some(result) = self.world.sys.take_pending_return(id) else {
            return;
        };
        let waiting = std::mem::replace(&mut self.waiting[index], Waiting::Nothing);
        self.check_result(index, waiting, result);
    }

    fn check_result(&mut self, index: usize, waiting: Waiting, result: ReturnRegisters) {
        let me = self.id(index);
        match waiting {
            Waiting::Nothing | Waiting::Sleep => {}
            Waiting::Send { message } => {
                let record = self.messages.get_mut(&message).expect("ledger entry");
                assert_eq!(record.outcome, None, "a send completed twice: {record:?}");
                record.outcome = Some(result.code());
                match result.kernel_error() {
                    Some(KernelError::DeadTask) => {}
                    Some(
                        KernelError::MessageTooLarge
                        | KernelError::WouldDeadlock
                        | KernelError::SelfSend,
                    ) => {
                        assert_eq!(record.deliveries, 0, "refused yet delivered: {record:?}");
                    }
                    Some(other) => panic!("unexpected send error {other:?} for {record:?}"),
                    None => {
                        assert!(result.code() < KERNEL_ERROR_BASE);
                        assert_eq!(record.deliveries, 1, "replied but never delivered");
                        assert_eq!(result.code(), reply_code(message));
                        let len = result.0[1];
                        assert_eq!(record.replied_len, Some(len), "reply length mismatch");
                        let got = self.world.peek(me, RESPONSE, len as usize);
                        assert_eq!(got, reply_bytes(message)[..len as usize].to_vec());
                    }
                }
            }
            Waiting::Receive { mask } => {
                if result.kernel_error() == Some(KernelError::DeadTask) {
                    return; // closed receive on a task that died
                }
                assert_eq!(result.code(), 0, "receive failed: {result:?}");
                let sender = TaskId::from_raw(result.0[1] as u32);
                if sender == TaskId::KERNEL {
                    let bits = result.0[2] as u32;
                    assert_ne!(bits, 0);
                    assert_eq!(bits & !mask, 0, "bits outside the mask");
                    for bit in 0..32 {
                        if bits & (1 << bit) != 0 {
                            let ledger = &mut self.bits[index][bit];
                            ledger.delivered += 1;
                            ledger.last_delivered = self.steps;
                            if ledger.delivered > ledger.posted {
                                eprintln!("index {index} history {:#?}", &self.history[index]);
                            }
                            assert!(ledger.delivered <= ledger.posted, "bit {bit} never posted");
                        }
                    }
                    self.notifications += 1;
                    return;
                }
                let len = result.0[3] as usize;
                let bytes = self.world.peek(me, BUFFER, len);
                let message = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
                let record = self
                    .messages
                    .get_mut(&message)
                    .expect("delivered unknown message");
                record.deliveries += 1;
                assert_eq!(record.deliveries, 1, "message doubled: {record:?}");
                assert_eq!(record.target, me, "delivered to the wrong task");
                assert_eq!(record.sender, sender, "wrong sender reported");
                assert_eq!(record.operation as u64, result.0[2]);
                assert_eq!(record.len, len);
                assert_eq!(bytes, payload(message, len), "payload corrupted");
                self.delivered += 1;
                self.owed[index].push((sender, message, result.0[4]));
            }
        }
    }

    fn random_target(&mut self) -> TaskId {
        if self.rng.chance(5) {
            let pick = self.rng.below(self.seen_ids.len() as u64) as usize;
            self.seen_ids[pick] // possibly stale
        } else {
            let index = self.rng.below(TASKS as u64) as usize;
            self.id(index)
        }
    }

    fn act(&mut self, core: usize) {
        let now = self.world.now;
        let Some(task) = self.world.sys.current(CoreId(core), now) else {
            return;
        };
        let index = task.index_usize();
        self.settle(index);
        let mut roll = self.rng.below(100);
        if !self.owed[index].is_empty() && self.rng.chance(50) {
            roll = 60; // servers mostly answer what they owe before taking more work
        }
        let (call, waiting) = if roll < 30 {
            let message = self.next_message;
            self.next_message += 1;
            let len = 8 + self.rng.below(33) as usize;
            self.world.poke(task, REQUEST, &payload(message, len));
            let target = self.random_target();
            let operation = self.rng.below(1 << 16) as u32;
            let response_len = if self.rng.chance(20) { 4 } else { 8 };
            self.messages.insert(
                message,
                Message {
                    sender: task,
                    target,
                    operation,
                    len,
                    deliveries: 0,
                    replied_len: None,
                    outcome: None,
                    sender_died: false,
                },
            );
            let call = Syscall::Send {
                target,
                operation,
                request: slice(REQUEST, len as u64),
                response: slice(RESPONSE, response_len),
            };
            (call, Waiting::Send { message })
        } else if roll < 55 {
            let mask = match self.rng.below(6) {
                0 => 0,
                1 => self.rng.next() as u32,
                _ => 1 << self.rng.below(32),
            };
            let from = if self.rng.chance(15) {
                Some(self.random_target())
            } else {
                None
            };
            let buffer_len = 24 + self.rng.below(41);
            let call = Syscall::Receive {
                buffer: slice(BUFFER, buffer_len),
                notification_mask: mask,
                from,
            };
            (call, Waiting::Receive { mask })
        } else if roll < 75 && !self.owed[index].is_empty() {
            let pick = self.rng.below(self.owed[index].len() as u64) as usize;
            let (client, message, capacity) = self.owed[index][pick];
            // Mostly well-behaved (reply fits), sometimes too long to test ReplyTooLarge.
            let len = if self.rng.chance(10) {
                8
            } else {
                capacity.min(8)
            };
            self.world.poke(task, REPLY_OUT, &reply_bytes(message));
            let call = Syscall::Reply {
                client,
                code: reply_code(message),
                message: slice(REPLY_OUT, len),
            };
            let effect = self.world.call(core, call);
            assert_eq!(effect, SyscallEffect::Returned);
            let result = self.world.result(task).expect("reply result");
            match result.kernel_error() {
                None => {
                    let record = self.messages.get_mut(&message).expect("ledger");
                    assert!(record.replied_len.is_none(), "replied twice");
                    record.replied_len = Some(len);
                    self.owed[index].remove(pick);
                    self.replies += 1;
                }
                Some(KernelError::ReplyTooLarge) => assert!(len > capacity),
                Some(KernelError::DeadTask | KernelError::NotWaitingForReply) => {
                    let record = &self.messages[&message];
                    assert!(
                        record.sender_died
                            || !self.alive(client.index_usize())
                            || self.id(client.index_usize()) != client,
                        "client alive yet reply refused: {record:?}"
                    );
                    self.owed[index].remove(pick);
                }
                Some(other) => panic!("unexpected reply error {other:?}"),
            }
            return;
        } else if roll < 82 {
            let target = self.random_target();
            let bits = (self.rng.next() as u32) | 1;
            let call = Syscall::Post { target, bits };
            let effect = self.world.call(core, call);
            assert_eq!(effect, SyscallEffect::Returned);
            let result = self.world.result(task).expect("post result");
            if result.code() == 0 {
                self.note(target.index_usize(), format!("posted {bits:x} by {index}"));
                self.posted(target.index_usize(), bits);
            } else {
                assert_eq!(result.kernel_error(), Some(KernelError::DeadTask));
            }
            // The post may have woken the target's receive; settle happens when it runs.
            return;
        } else if roll < 88 {
            (
                Syscall::Sleep {
                    nanoseconds: self.rng.below(3_000_000),
                },
                Waiting::Sleep,
            )
        } else if roll < 93 {
            (Syscall::Yield, Waiting::Nothing)
        } else if roll < 96 {
            let deadline = now.0 + self.rng.below(4_000_000) + 1;
            let bits = 1 << self.rng.below(32);
            self.armed_timer[index] = Some((deadline, bits));
            (
                Syscall::SetTimer {
                    deadline: Some(deadline),
                    bits,
                },
                Waiting::Nothing,
            )
        } else if roll < 98 {
            (
                Syscall::TaskInfo {
                    target: TaskId::CURRENT,
                    out: slice(BUFFER, 48),
                },
                Waiting::Nothing,
            )
        } else {
            self.prepare_death(index);
            (Syscall::Exit { code: 1 }, Waiting::Nothing)
        };
        self.note(index, format!("call {call:?}"));
        match self.world.call(core, call) {
            SyscallEffect::Returned => {
                let result = self.world.result(task).expect("immediate result");
                self.check_result(index, waiting, result);
            }
            SyscallEffect::Blocked => self.waiting[index] = waiting,
            SyscallEffect::Yielded | SyscallEffect::Exited => {}
            SyscallEffect::NoCurrentTask => panic!("task vanished"),
        }
    }

    /// Before a task stops: consume its pending result (the kernel would discard it, but the
    /// ledger must know a message reached it), then record what dies with it.
    fn prepare_death(&mut self, index: usize) {
        self.settle(index);
        self.note(index, "death".into());
        let me = self.id(index);
        if let Some(TaskState::Blocked(BlockReason::InSend { .. } | BlockReason::InReply { .. })) =
            self.world.sys.state(index)
        {
            if let Waiting::Send { message } = self.waiting[index] {
                self.messages.get_mut(&message).expect("ledger").sender_died = true;
            }
        }
        for record in self.messages.values_mut() {
            if record.sender == me && record.outcome.is_none() {
                record.sender_died = true;
            }
        }
        self.waiting[index] = Waiting::Nothing;
        self.owed[index].clear();
        self.bits[index] = [BitLedger::default(); 32];
        self.armed_timer[index] = None;
    }

    fn step(&mut self) {
        self.steps += 1;
        let roll = self.rng.below(100);
        let now = self.world.now;
        if roll < 60 {
            // Act on a core that has a task to run, starting from a random one.
            let first = self.rng.below(CORES as u64) as usize;
            let busy = (0..CORES)
                .map(|offset| (first + offset) % CORES)
                .find(|core| self.world.sys.current(CoreId(*core), now).is_some());
            match busy {
                Some(core) => self.act(core),
                None => {
                    // Everyone waits: an interrupt with every bit arrives somewhere, as on a
                    // real system, so the walk goes on.
                    self.idle_steps += 1;
                    let receiving: Vec<usize> = (0..TASKS)
                        .filter(|index| {
                            matches!(
                                self.world.sys.state(*index),
                                Some(TaskState::Blocked(BlockReason::InReceive { .. }))
                            )
                        })
                        .collect();
                    let index = if receiving.is_empty() {
                        self.rng.below(TASKS as u64) as usize
                    } else {
                        receiving[self.rng.below(receiving.len() as u64) as usize]
                    };
                    let id = self.id(index);
                    if self.world.sys.post_from_kernel(id, u32::MAX, now) {
                        self.posted(index, u32::MAX);
                    }
                }
            }
        } else if roll < 80 {
            let core = self.rng.below(CORES as u64) as usize;
            self.world.now = Instant(now.0 + self.rng.below(2_000_000));
            self.world.sys.tick(CoreId(core), self.world.now);
        } else if roll < 81 {
            let core = self.rng.below(CORES as u64) as usize;
            if let Some(task) = self.world.sys.current(CoreId(core), now) {
                self.prepare_death(task.index_usize());
                let kind = FaultKind::MemoryAccess {
                    address: 0xFFFF_0000_0000_0000,
                    write: true,
                };
                assert_eq!(self.world.sys.fault(CoreId(core), kind, now), Some(task));
            }
        } else if roll < 82 {
            let index = self.rng.below(TASKS as u64) as usize;
            if self.alive(index) {
                self.prepare_death(index);
                let id = self.id(index);
                assert_eq!(self.world.sys.kill(id, now), Ok(()));
            }
        } else if roll < 92 {
            let index = self.rng.below(TASKS as u64) as usize;
            if !self.alive(index) && self.rng.chance(50) {
                let id = self
                    .world
                    .sys
                    .restart(index, now)
                    .expect("restart a stopped task");
                self.seen_ids.push(id);
            } else if !self.alive(index) {
                // Free the slot and spawn a new task into it: same index, next generation.
                let old = self.id(index);
                let priority = self.world.sys.descriptor(index).expect("slot").priority.0;
                self.world
                    .sys
                    .release(index)
                    .expect("release a stopped task");
                assert_eq!(self.world.sys.task_info(index), None, "vacant");
                let name = format!("t{index}");
                let id = self
                    .world
                    .sys
                    .spawn(descriptor(&name, priority, CoreMask::ALL, false), now)
                    .expect("spawn into the vacant slot");
                assert_eq!(id, TaskId::new(index as u16, old.generation().next()));
                self.seen_ids.push(id);
            } else {
                assert_eq!(
                    self.world.sys.restart(index, now),
                    Err(KernelError::NotFaulted)
                );
            }
        } else if roll < 96 {
            let index = self.rng.below(TASKS as u64) as usize;
            let bits = 1 << self.rng.below(32);
            let id = self.id(index);
            if self.world.sys.post_from_kernel(id, bits, now) {
                self.note(index, format!("kernel posted {bits:x}"));
                self.posted(index, bits);
            }
        } else {
            let core = self.rng.below(CORES as u64) as usize;
            self.world.sys.current(CoreId(core), now);
        }
        // A notification timer that is no longer armed in the kernel (and was not cancelled by
        // a death, which clears ours too) has fired: its bits are now outstanding.
        for index in 0..TASKS {
            if let Some((_, bits)) = self.armed_timer[index] {
                if self.world.sys.armed_timer_bits(index).is_none() {
                    self.note(index, format!("timer fired {bits:x}"));
                    self.posted(index, bits);
                    self.armed_timer[index] = None;
                }
            }
        }
        if let Err(violation) = self.world.sys.check_invariants() {
            panic!("invariant violated: {violation:?}");
        }
    }

    fn final_ledger_check(&mut self) {
        for index in 0..TASKS {
            if self.alive(index) {
                self.settle(index);
            }
        }
        for index in 0..TASKS {
            if !self.alive(index) {
                continue;
            }
            let pending = self.world.sys.notifications(index).expect("slot");
            for bit in 0..32 {
                let ledger = self.bits[index][bit];
                if ledger.posted > 0 && ledger.last_posted > ledger.last_delivered {
                    assert!(
                        pending & (1 << bit) != 0,
                        "task {index} lost notification bit {bit}"
                    );
                }
            }
        }
        for (message, record) in &self.messages {
            assert!(record.deliveries <= 1, "message {message} doubled");
            if record.outcome.is_some() || record.sender_died {
                continue;
            }
            // No outcome yet: the sender must visibly still wait on this very message.
            let sender = record.sender.index_usize();
            let state = self.world.sys.state(sender);
            let waiting =
                matches!(self.waiting[sender], Waiting::Send { message: m } if m == *message);
            match state {
                Some(TaskState::Blocked(BlockReason::InSend { target, .. })) => {
                    assert!(
                        waiting && target == record.target && record.deliveries == 0,
                        "message {message} lost: {record:?}"
                    );
                }
                Some(TaskState::Blocked(BlockReason::InReply { server, .. })) => {
                    assert!(
                        waiting && server == record.target && record.deliveries == 1,
                        "message {message} lost: {record:?}"
                    );
                }
                other => panic!("message {message} lost: sender {other:?}, {record:?}"),
            }
        }
    }
}

fn run(seed: u64, steps: usize) -> Harness {
    let mut harness = Harness::new(seed);
    for _ in 0..steps {
        harness.step();
    }
    harness.final_ledger_check();
    harness
}

#[test]
fn random_operations_keep_every_invariant_and_lose_or_double_nothing() {
    let mut totals = (0, 0, 0, 0);
    let mut outcomes: HashMap<String, u64> = HashMap::new();
    for seed in [
        0x1234_5678_9ABC_DEF1u64,
        0xDEAD_BEEF_CAFE_F00D,
        0x0F0F_0F0F_1234_4321,
        7,
        0xA5A5_A5A5,
    ] {
        let harness = run(seed, 30_000);
        for record in harness.messages.values() {
            let outcome = match record.outcome {
                None => String::from("open-or-sender-died"),
                Some(code) => match KernelError::from_code(code) {
                    Some(error) => format!("{error:?}"),
                    None => String::from("replied"),
                },
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        totals.0 += harness.next_message - 1;
        totals.1 += harness.delivered;
        totals.2 += harness.replies;
        totals.3 += harness.notifications;
        println!("seed {seed:#x}: idle steps {}", harness.idle_steps);
    }
    // The random walk must actually exercise the machinery, not just fail fast.
    let (sent, delivered, replies, notifications) = totals;
    println!(
        "sent {sent}, delivered {delivered}, replied {replies}, notifications {notifications}"
    );
    println!("send outcomes: {outcomes:?}");
    assert!(sent > 10_000, "sent {sent}");
    assert!(delivered > 2_000, "delivered {delivered}");
    assert!(replies > 1_500, "replies {replies}");
    assert!(notifications > 2_000, "notifications {notifications}");
    println!(
        "sent {sent}, delivered {delivered}, replied {replies}, notifications {notifications}"
    );
}
