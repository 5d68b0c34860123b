//! IPC, notifications, timers and faults through the syscall interface, as a task sees them.

mod common;

use abi::{
    FaultKind, KernelError, Syscall, TaskId, TaskInfoRecord, TaskStateCode, SUPERVISOR_FAULT_BIT,
};
use common::*;
use tasking::sched::CoreId;
use tasking::system::{BlockReason, SyscallEffect, TaskState};
use tasking::time::Instant;

const REQUEST: u64 = DATA_BASE;
const RESPONSE: u64 = DATA_BASE + 0x100;
const BUFFER: u64 = DATA_BASE + 0x200;

fn receive(buffer_len: u64, mask: u32, from: Option<TaskId>) -> Syscall {
    Syscall::Receive {
        buffer: slice(BUFFER, buffer_len),
        notification_mask: mask,
        from,
    }
}

fn send(target: TaskId, operation: u32, request_len: u64, response_len: u64) -> Syscall {
    Syscall::Send {
        target,
        operation,
        request: slice(REQUEST, request_len),
        response: slice(RESPONSE, response_len),
    }
}

#[test]
fn round_trip_across_cores_delivers_data_and_unblocks_both_parties() {
    let mut world = World::new(2);
    let client = world.spawn_on("client", 3, 0);
    let server = world.spawn_on("server", 3, 1);
    assert_eq!(world.call(1, receive(64, 0, None)), SyscallEffect::Blocked);
    assert_eq!(
        world.current(1),
        None,
        "the server's core idles while it waits"
    );

    world.poke(client, REQUEST, b"ping");
    assert_eq!(
        world.call(0, send(server, 7, 4, 16)),
        SyscallEffect::Blocked
    );
    assert!(
        world.sys.take_kicks().contains(CoreId(1)),
        "the server's core must be woken"
    );
    assert_eq!(world.current(1), Some(server));
    let got = world.result(server).expect("receive result");
    assert_eq!(got.0, [0, client.to_raw() as u64, 7, 4, 16, 0]);
    assert_eq!(world.peek(server, BUFFER, 4), b"ping");
    assert!(matches!(
        world.sys.state(client.index_usize()),
        Some(TaskState::Blocked(BlockReason::InReply { server: s, .. })) if s == server
    ));

    world.poke(server, DATA_BASE + 0x800, b"pong!");
    let reply = Syscall::Reply {
        client,
        code: 5,
        message: slice(DATA_BASE + 0x800, 5),
    };
    assert_eq!(world.call_now(1, reply).0[0], 0);
    assert_eq!(world.current(0), Some(client));
    let answer = world.result(client).expect("send result");
    assert_eq!((answer.code(), answer.0[1]), (5, 5));
    assert_eq!(world.peek(client, RESPONSE, 5), b"pong!");
}

#[test]
fn a_waiting_sender_is_taken_by_the_next_receive_most_urgent_first() {
    let mut world = World::new(4);
    let server = world.spawn_on("server", 1, 0);
    let low = world.spawn_on("low", 6, 1);
    let high = world.spawn_on("high", 2, 2);
    let middle = world.spawn_on("middle", 4, 3);
    for (core, task) in [(1, low), (2, high), (3, middle)] {
        world.poke(task, REQUEST, &[core as u8; 8]);
        assert_eq!(
            world.call(core, send(server, core as u32, 8, 8)),
            SyscallEffect::Blocked
        );
    }
    let mut order = Vec::new();
    for _ in 0..3 {
        let got = world.call_now(0, receive(8, 0, None));
        let sender = TaskId::from_raw(got.0[1] as u32);
        assert_eq!(world.peek(server, BUFFER, 8), vec![got.0[2] as u8; 8]);
        order.push(sender);
        let reply = Syscall::Reply {
            client: sender,
            code: 0,
            message: slice(REQUEST, 0),
        };
        assert_eq!(world.call_now(0, reply).0[0], 0);
    }
    assert_eq!(order, vec![high, middle, low]);
}

#[test]
fn closed_receive_takes_only_the_named_sender() {
    let mut world = World::new(3);
    let server = world.spawn_on("server", 1, 0);
    let a = world.spawn_on("a", 1, 1);
    let b = world.spawn_on("b", 1, 2);
    assert_eq!(
        world.call(0, receive(8, 0, Some(b))),
        SyscallEffect::Blocked
    );
    assert_eq!(world.call(1, send(server, 1, 1, 0)), SyscallEffect::Blocked);
    assert!(world.result(server).is_none(), "a is not accepted");
    assert_eq!(world.call(2, send(server, 2, 1, 0)), SyscallEffect::Blocked);
    let got = world.result(server).expect("b is accepted");
    assert_eq!(got.0[1], b.to_raw() as u64);
    assert_eq!(world.state_code(a), TaskStateCode::InSend);
}

#[test]
fn stale_task_ids_fail_after_a_restart() {
    let mut world = World::new(3);
    let supervisor = world.spawn_supervisor_on("super", 2);
    let _client = world.spawn_on("client", 3, 0);
    let server = world.spawn_on("server", 3, 1);
    assert_eq!(
        world.sys.fault(
            CoreId(1),
            FaultKind::IllegalInstruction {
                address: 4,
                syndrome: 0
            },
            world.now
        ),
        Some(server)
    );
    assert_eq!(
        world.sys.notifications(supervisor.index_usize()),
        Some(SUPERVISOR_FAULT_BIT)
    );
    let restart = world.call_now(
        2,
        Syscall::RestartTask {
            index: server.index(),
        },
    );
    let new_server = TaskId::from_raw(restart.0[1] as u32);
    assert_eq!(new_server.index(), server.index());
    assert_ne!(new_server, server);

    let stale = world.call_now(0, send(server, 1, 0, 0));
    assert_eq!(stale.kernel_error(), Some(KernelError::DeadTask));
    assert_eq!(
        stale.0[1],
        new_server.to_raw() as u64,
        "DeadTask tells the current id"
    );
    let stale_post = world.call_now(
        0,
        Syscall::Post {
            target: server,
            bits: 1,
        },
    );
    assert_eq!(stale_post.kernel_error(), Some(KernelError::DeadTask));
    assert_eq!(
        world.call(0, send(new_server, 1, 0, 0)),
        SyscallEffect::Blocked
    );
    assert_eq!(
        world.sys.take_start_request(new_server).map(|s| s.own_id),
        Some(new_server)
    );
    assert_eq!(
        world.sys.take_start_request(new_server),
        None,
        "a start request is taken once"
    );
}

#[test]
fn tasks_waiting_on_a_dying_task_are_released_with_dead_task() {
    let mut world = World::new(4);
    let server = world.spawn_on("server", 3, 0);
    let replying = world.spawn_on("in-reply", 3, 1);
    let sending = world.spawn_on("in-send", 3, 2);
    let listening = world.spawn_on("listen", 3, 3);
    assert_eq!(world.call(1, send(server, 1, 0, 0)), SyscallEffect::Blocked);
    world.call_now(0, receive(0, 0, None)); // takes in-reply's message
    assert_eq!(world.call(2, send(server, 2, 0, 0)), SyscallEffect::Blocked);
    assert_eq!(
        world.call(3, receive(0, 0, Some(server))),
        SyscallEffect::Blocked
    );
    world.sys.fault(
        CoreId(0),
        FaultKind::MemoryAccess {
            address: 0xFFFF_0000_0000_0000,
            write: false,
        },
        world.now,
    );
    world.sys.check_invariants().expect("invariants");
    for task in [replying, sending, listening] {
        let result = world.result(task).expect("released");
        assert_eq!(
            result.kernel_error(),
            Some(KernelError::DeadTask),
            "{task:?}"
        );
        assert_eq!(world.state_code(task), TaskStateCode::Runnable);
    }
    assert!(matches!(
        world.sys.state(server.index_usize()),
        Some(TaskState::Faulted(FaultKind::MemoryAccess { .. }))
    ));
}

#[test]
fn notifications_wake_a_matching_receive_and_wait_otherwise() {
    let mut world = World::new(2);
    let driver = world.spawn_on("driver", 1, 0);
    let poster = world.spawn_on("poster", 1, 1);
    // Posted before anyone receives: kept pending.
    world.call_now(
        1,
        Syscall::Post {
            target: driver,
            bits: 0b0100,
        },
    );
    let got = world.call_now(0, receive(0, 0b0110, None));
    assert_eq!(got.0, [0, TaskId::KERNEL.to_raw() as u64, 0b0100, 0, 0, 0]);
    assert_eq!(world.sys.notifications(driver.index_usize()), Some(0));
    // Waiting: a bit outside the mask stays pending and does not wake.
    assert_eq!(
        world.call(0, receive(0, 0b0001, None)),
        SyscallEffect::Blocked
    );
    world.call_now(
        1,
        Syscall::Post {
            target: driver,
            bits: 0b1000,
        },
    );
    assert_eq!(world.state_code(driver), TaskStateCode::InReceive);
    // An interrupt, posted by the kernel, wakes it with only the masked bits.
    assert!(world.sys.post_from_kernel(driver, 0b0001, world.now));
    let got = world.result(driver).expect("woken");
    assert_eq!(got.0[2], 0b0001);
    assert_eq!(world.sys.notifications(driver.index_usize()), Some(0b1000));
    // Notifications go before a waiting message.
    assert_eq!(world.call(1, send(driver, 9, 0, 0)), SyscallEffect::Blocked);
    let got = world.call_now(0, receive(0, 0b1000, None));
    assert_eq!(got.0[1], TaskId::KERNEL.to_raw() as u64);
    let got = world.call_now(0, receive(0, 0b1000, None));
    assert_eq!(got.0[1], poster.to_raw() as u64);
}

#[test]
fn bad_pointers_are_errors_and_never_block() {
    let mut world = World::new(2);
    let task = world.spawn_on("task", 3, 0);
    let other = world.spawn_on("other", 3, 1);
    let cases = [
        Syscall::Send {
            target: other,
            operation: 0,
            request: slice(0xFFFF_0000_4000_0000, 8),
            response: slice(RESPONSE, 0),
        },
        Syscall::Send {
            target: other,
            operation: 0,
            request: slice(REQUEST, 8),
            response: slice(TEXT_BASE, 8),
        },
        Syscall::Send {
            target: other,
            operation: 0,
            request: slice(u64::MAX - 2, 8),
            response: slice(RESPONSE, 0),
        },
        Syscall::Receive {
            buffer: slice(0x4000_0000, 8),
            notification_mask: 0,
            from: None,
        },
        Syscall::Log {
            message: slice(DATA_BASE + DATA_BYTES - 4, 8),
        },
        Syscall::TaskInfo {
            target: TaskId::CURRENT,
            out: slice(0, 48),
        },
        Syscall::Reply {
            client: other,
            code: 0,
            message: slice(1 << 48, 1),
        },
    ];
    for call in cases {
        let result = world.call_now(0, call);
        assert_eq!(
            result.kernel_error(),
            Some(KernelError::BadPointer),
            "{call:?}"
        );
        assert_eq!(world.current(0), Some(task));
    }
}

#[test]
fn size_and_protocol_errors_blame_the_right_party() {
    let mut world = World::new(3);
    let server = world.spawn_on("server", 3, 0);
    let client = world.spawn_on("client", 3, 1);
    let bystander = world.spawn_on("bystander", 3, 2);
    // Request larger than the receiver's buffer: the sender is told; the receiver keeps waiting.
    assert_eq!(world.call(0, receive(4, 0, None)), SyscallEffect::Blocked);
    let result = world.call_now(1, send(server, 1, 8, 8));
    assert_eq!(result.kernel_error(), Some(KernelError::MessageTooLarge));
    assert_eq!(world.state_code(server), TaskStateCode::InReceive);
    // Fitting request: delivered.
    assert_eq!(world.call(1, send(server, 1, 4, 2)), SyscallEffect::Blocked);
    world.result(server).expect("delivered");
    // Reply larger than the client's response buffer: the server is told; the client waits.
    let big = Syscall::Reply {
        client,
        code: 0,
        message: slice(REQUEST, 3),
    };
    assert_eq!(
        world.call_now(0, big).kernel_error(),
        Some(KernelError::ReplyTooLarge)
    );
    assert_eq!(world.state_code(client), TaskStateCode::InReply);
    let kernel_code = Syscall::Reply {
        client,
        code: KernelError::DeadTask.code(),
        message: slice(REQUEST, 0),
    };
    assert_eq!(
        world.call_now(0, kernel_code).kernel_error(),
        Some(KernelError::BadReplyCode)
    );
    let wrong = Syscall::Reply {
        client: bystander,
        code: 0,
        message: slice(REQUEST, 0),
    };
    assert_eq!(
        world.call_now(0, wrong).kernel_error(),
        Some(KernelError::NotWaitingForReply)
    );
    let right = Syscall::Reply {
        client,
        code: 0,
        message: slice(REQUEST, 2),
    };
    assert_eq!(world.call_now(0, right).0[0], 0);
    assert_eq!(world.result(client).map(|r| r.0[1]), Some(2));
    // A second reply to the same message finds nobody waiting.
    assert_eq!(
        world.call_now(0, right).kernel_error(),
        Some(KernelError::NotWaitingForReply)
    );
    let oversized = send(server, 1, abi::limits::MAX_MESSAGE_BYTES + 1, 0);
    assert_eq!(
        world.call_now(1, oversized).kernel_error(),
        Some(KernelError::MessageTooLarge)
    );
}

#[test]
fn self_sends_and_send_cycles_are_refused() {
    let mut world = World::new(3);
    let a = world.spawn_on("a", 3, 0);
    let b = world.spawn_on("b", 3, 1);
    let c = world.spawn_on("c", 3, 2);
    assert_eq!(
        world.call_now(0, send(a, 0, 0, 0)).kernel_error(),
        Some(KernelError::SelfSend)
    );
    assert_eq!(world.call(0, send(b, 0, 0, 0)), SyscallEffect::Blocked);
    assert_eq!(world.call(1, send(c, 0, 0, 0)), SyscallEffect::Blocked);
    assert_eq!(
        world.call_now(2, send(a, 0, 0, 0)).kernel_error(),
        Some(KernelError::WouldDeadlock)
    );
}

#[test]
fn sleep_and_notification_timers_fire_at_their_deadline() {
    let mut world = World::new(2);
    let sleeper = world.spawn_on("sleeper", 3, 0);
    let waiter = world.spawn_on("waiter", 3, 1);
    let start = world.now.0;
    assert_eq!(
        world.call(
            0,
            Syscall::Sleep {
                nanoseconds: 5_000_000
            }
        ),
        SyscallEffect::Blocked
    );
    world.call_now(
        1,
        Syscall::SetTimer {
            deadline: Some(start + 3_000_000),
            bits: 0b10,
        },
    );
    assert_eq!(
        world.call(1, receive(0, 0b10, None)),
        SyscallEffect::Blocked
    );
    assert_eq!(
        world.sys.next_timer_deadline().map(|t| t.0),
        Some(start + 3_000_000)
    );
    world.advance_to(start + 2_999_999);
    assert_eq!(world.state_code(waiter), TaskStateCode::InReceive);
    world.advance_to(start + 3_000_000);
    assert_eq!(world.result(waiter).map(|r| r.0[2]), Some(0b10));
    world.advance_to(start + 4_999_999);
    assert_eq!(world.state_code(sleeper), TaskStateCode::Sleeping);
    world.advance_to(start + 5_000_000);
    assert_eq!(world.state_code(sleeper), TaskStateCode::Runnable);
    assert_eq!(world.result(sleeper).map(|r| r.0[0]), Some(0));
    // A cancelled timer never fires.
    world.call_now(
        1,
        Syscall::SetTimer {
            deadline: Some(start + 6_000_000),
            bits: 1,
        },
    );
    world.call_now(
        1,
        Syscall::SetTimer {
            deadline: None,
            bits: 0,
        },
    );
    world.advance_to(start + 7_000_000);
    assert_eq!(world.sys.notifications(waiter.index_usize()), Some(0));
}

#[test]
fn timers_belong_to_the_core_that_armed_them_and_fire_without_a_tick() {
    let mut world = World::new(3);
    let sleeper = world.spawn_on("sleeper", 3, 1);
    let waiter = world.spawn_on("waiter", 3, 2);
    let doomed = world.spawn_on("doomed", 3, 0);
    let start = world.now.0;
    let epoch = world.sys.timer_epoch();
    let sleep = Syscall::Sleep {
        nanoseconds: 2_500_000,
    };
    assert_eq!(world.call(1, sleep), SyscallEffect::Blocked);
    world.call_now(
        2,
        Syscall::SetTimer {
            deadline: Some(start + 1_250_000),
            bits: 0b100,
        },
    );
    assert_eq!(world.call(0, sleep), SyscallEffect::Blocked);
    assert!(world.sys.timer_epoch() > epoch, "arming moves the epoch");
    let on = |world: &World, core| {
        world
            .sys
            .next_timer_deadline_on(CoreId(core))
            .map(|t| t.0 - start)
    };
    assert_eq!(on(&world, 1), Some(2_500_000));
    assert_eq!(on(&world, 2), Some(1_250_000));
    assert_eq!(on(&world, 0), Some(2_500_000));
    // A stopped task's timer is nobody's.
    world.sys.kill(doomed, world.now).expect("kill");
    assert_eq!(on(&world, 0), None);
    // The comparator interrupt of core 2 at its deadline: no tick, the timer fires on time.
    world.now = Instant(start + 1_249_999);
    world.sys.fire_timers(world.now);
    assert_eq!(world.sys.notifications(waiter.index_usize()), Some(0));
    world.now = Instant(start + 1_250_000);
    let before = world.sys.timer_epoch();
    world.sys.fire_timers(world.now);
    assert_eq!(world.sys.notifications(waiter.index_usize()), Some(0b100));
    assert!(world.sys.timer_epoch() > before, "firing moves the epoch");
    assert_eq!(on(&world, 2), None);
    world.now = Instant(start + 2_500_000);
    world.sys.fire_timers(world.now);
    assert_eq!(world.state_code(sleeper), TaskStateCode::Runnable);
    assert_eq!(
        world.result(sleeper).map(|r| r.0[1]),
        Some(start + 2_500_000)
    );
    assert_eq!(on(&world, 1), None);
    world.sys.check_invariants().expect("invariants");
}

#[test]
fn timers_armed_on_a_core_taken_by_the_kernel_fall_to_the_available_cores() {
    let mut world = World::new(3);
    let sleeper = world.spawn_on("sleeper", 3, 0);
    let start = world.now.0;
    let sleep = Syscall::Sleep {
        nanoseconds: 1_000_000,
    };
    assert_eq!(world.call(0, sleep), SyscallEffect::Blocked);
    let on = |world: &World, core| world.sys.next_timer_deadline_on(CoreId(core));
    let deadline = Some(Instant(start + 1_000_000));
    assert_eq!((on(&world, 0), on(&world, 1)), (deadline, None));
    let epoch = world.sys.timer_epoch();
    world.sys.set_core_available(CoreId(0), false, world.now);
    assert!(world.sys.timer_epoch() > epoch, "cores must reprogram");
    assert_eq!(on(&world, 0), deadline, "still its own");
    assert_eq!(on(&world, 1), deadline);
    assert_eq!(on(&world, 2), deadline);
    world.sys.set_core_available(CoreId(0), true, world.now);
    assert_eq!((on(&world, 0), on(&world, 1)), (deadline, None));
    world.now = Instant(start + 1_000_000);
    world.sys.fire_timers(world.now);
    assert_eq!(world.state_code(sleeper), TaskStateCode::Runnable);
}

#[test]
fn exit_and_faults_reach_the_supervisor_only() {
    let mut world = World::new(3);
    let supervisor = world.spawn_supervisor_on("super", 0);
    let worker = world.spawn_on("worker", 3, 1);
    let _other = world.spawn_on("other", 3, 2);
    assert_eq!(
        world.call(1, Syscall::Exit { code: 42 }),
        SyscallEffect::Exited
    );
    assert_eq!(world.current(1), None);
    let got = world.call_now(0, receive(0, SUPERVISOR_FAULT_BIT, None));
    assert_eq!(got.0[2], SUPERVISOR_FAULT_BIT as u64);
    let fault = world.call_now(
        0,
        Syscall::ReadFault {
            index: worker.index(),
        },
    );
    assert_eq!(fault.0, [0, 0, 0, 42, worker.to_raw() as u64, 0]);
    let refused = world.call_now(
        2,
        Syscall::ReadFault {
            index: worker.index(),
        },
    );
    assert_eq!(refused.kernel_error(), Some(KernelError::NotPermitted));
    let refused = world.call_now(
        2,
        Syscall::RestartTask {
            index: worker.index(),
        },
    );
    assert_eq!(refused.kernel_error(), Some(KernelError::NotPermitted));
    let healthy = world.call_now(
        0,
        Syscall::RestartTask {
            index: supervisor.index(),
        },
    );
    assert_eq!(healthy.kernel_error(), Some(KernelError::NotFaulted));
    let restarted = world.call_now(
        0,
        Syscall::RestartTask {
            index: worker.index(),
        },
    );
    assert_eq!(restarted.0[0], 0);
    assert_eq!(world.current(1).map(|t| t.index()), Some(worker.index()));
}

#[test]
fn a_data_fault_in_the_stack_guard_is_a_stack_overflow() {
    let mut world = World::new(1);
    let task = world.spawn_on("deep", 3, 0);
    let address = GUARD.start + 8;
    world.sys.fault(
        CoreId(0),
        FaultKind::MemoryAccess {
            address,
            write: true,
        },
        world.now,
    );
    assert_eq!(
        world.sys.state(task.index_usize()),
        Some(TaskState::Faulted(FaultKind::StackOverflow { address }))
    );
}

#[test]
fn task_info_writes_the_record_and_log_reaches_the_console() {
    let mut world = World::new(2);
    let _first = world.spawn_on("first", 3, 0);
    let second = world.spawn_on("second", 5, 1);
    let got = world.call_now(
        1,
        Syscall::TaskInfo {
            target: TaskId::CURRENT,
            out: slice(BUFFER, 64),
        },
    );
    assert_eq!((got.0[0], got.0[1], got.0[2]), (0, 48, 2));
    let record = TaskInfoRecord::from_bytes(&world.peek(second, BUFFER, 48)).expect("record");
    assert_eq!(record.id, second);
    assert_eq!(record.name_str(), "second");
    assert_eq!(record.priority, 5);
    assert_eq!(record.core, Some(1));
    assert_eq!(record.state, TaskStateCode::Runnable);
    let short = Syscall::TaskInfo {
        target: TaskId::CURRENT,
        out: slice(BUFFER, 47),
    };
    assert_eq!(
        world.call_now(1, short).kernel_error(),
        Some(KernelError::BadArgument)
    );
    let missing = Syscall::TaskInfo {
        target: TaskId::from_raw(40),
        out: slice(BUFFER, 48),
    };
    assert_eq!(
        world.call_now(1, missing).kernel_error(),
        Some(KernelError::NoSuchTask)
    );

    world.poke(second, REQUEST, b"hello, console");
    assert_eq!(
        world
            .call_now(
                1,
                Syscall::Log {
                    message: slice(REQUEST, 14)
                }
            )
            .0[0],
        0
    );
    assert_eq!(world.log.0.len(), 1);
    assert_eq!(
        (world.log.0[0].1.as_str(), world.log.0[0].2.as_slice()),
        ("second", &b"hello, console"[..])
    );
    let long = Syscall::Log {
        message: slice(REQUEST, abi::limits::MAX_LOG_BYTES + 1),
    };
    assert_eq!(
        world.call_now(1, long).kernel_error(),
        Some(KernelError::BadArgument)
    );
}

#[test]
fn a_spinning_task_does_not_starve_another_on_the_same_core() {
    let mut world = World::new(1);
    let spinner = world.spawn_on("spinner", 3, 0);
    let other = world.spawn_on("other", 3, 0);
    let mut switches = 0;
    let mut last = world.current(0);
    for tick in 1..=200u64 {
        world.advance_to(world.now.0 + 1_000_000);
        let now_running = world.current(0);
        if now_running != last {
            switches += 1;
            last = now_running;
        }
        assert!(tick < 20 || world.sys.task_info(other.index_usize()).unwrap().cpu_ticks > 0);
    }
    let spinner_ticks = world
        .sys
        .task_info(spinner.index_usize())
        .unwrap()
        .cpu_ticks;
    let other_ticks = world.sys.task_info(other.index_usize()).unwrap().cpu_ticks;
    assert!(
        switches >= 30,
        "preemption must alternate the two, saw {switches} switches"
    );
    assert!(
        spinner_ticks.abs_diff(other_ticks) <= 5,
        "{spinner_ticks} vs {other_ticks}"
    );
}

#[test]
fn malformed_syscalls_from_a_task_are_errors() {
    let mut world = World::new(1);
    let _task = world.spawn_on("fuzzy", 3, 0);
    assert_eq!(world.call_raw(0, 999, &[0; 6]), SyscallEffect::Returned);
    let task = world.current(0).expect("still running");
    assert_eq!(
        world.result(task).and_then(|r| r.kernel_error()),
        Some(KernelError::UnknownSyscall)
    );
    world.call_raw(0, 0, &[u64::MAX; 6]);
    assert_eq!(
        world.result(task).and_then(|r| r.kernel_error()),
        Some(KernelError::BadArgument)
    );
}

trait StateCode {
    fn state_code(&self, task: TaskId) -> TaskStateCode;
}

impl StateCode for World {
    fn state_code(&self, task: TaskId) -> TaskStateCode {
        self.sys
            .state(task.index_usize())
            .expect("task exists")
            .code()
    }
}
