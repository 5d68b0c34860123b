//! Fault isolation end to end: a task that faults is stopped, the supervisor task hears of it,
//! reads the fault, and restarts it with growing back-off while the other tasks carry on.

mod common;

use abi::{FaultKind, Syscall, TaskId, SUPERVISOR_FAULT_BIT};
use common::*;
use tasking::sched::CoreId;
use tasking::supervisor::{RestartPolicy, Supervisor};
use tasking::system::{SyscallEffect, TaskState};
use tasking::time::Instant;

const MS: u64 = 1_000_000;
const TIMER_BIT: u32 = 1;

/// One pass of the supervisor task's loop body after it was woken, using only syscalls.
fn supervisor_pass(world: &mut World, policy: &mut Supervisor, core: usize) {
    for index in 0..world.sys.task_count() as u16 {
        let fault = world.call_now(core, Syscall::ReadFault { index });
        if fault.0[0] == 0 {
            policy
                .on_stopped(index as usize, world.now)
                .expect("supervised slot");
        }
    }
    while let Some(index) = policy.take_due(world.now) {
        let result = world.call_now(
            core,
            Syscall::RestartTask {
                index: index as u16,
            },
        );
        assert_eq!(result.0[0], 0, "restart of {index} failed: {result:?}");
    }
    if let Some(deadline) = policy.next_deadline() {
        world.call_now(
            core,
            Syscall::SetTimer {
                deadline: Some(deadline.0),
                bits: TIMER_BIT,
            },
        );
    }
    let wait = Syscall::Receive {
        buffer: slice(DATA_BASE, 0),
        notification_mask: SUPERVISOR_FAULT_BIT | TIMER_BIT,
        from: None,
    };
    assert_eq!(world.call(core, wait), SyscallEffect::Blocked);
}

#[test]
fn a_crash_looping_task_is_restarted_with_growing_back_off_and_others_continue() {
    let mut world = World::new(3);
    let _supervisor = world.spawn_supervisor_on("supervisor", 0);
    let crasher = world.spawn_on("crasher", 4, 1);
    let steady = world.spawn_on("steady", 4, 2);
    let mut policy = Supervisor::new(
        RestartPolicy {
            initial_backoff_nanos: 10 * MS,
            max_backoff_nanos: 80 * MS,
            healthy_reset_nanos: 10_000 * MS,
        },
        world.sys.task_count(),
    );
    supervisor_pass(&mut world, &mut policy, 0);

    let mut restarts_at = Vec::new();
    let mut fault_times = Vec::new();
    let mut generation_seen = crasher.generation();
    for tick in 1..=600u64 {
        world.now = Instant(tick * MS);
        // The crasher reads kernel memory as soon as it runs.
        if let Some(task) = world.current(1) {
            assert_eq!(task.index(), crasher.index());
            if world.sys.take_start_request(task).is_some() && task.generation() != generation_seen
            {
                generation_seen = task.generation();
                restarts_at.push(tick);
            }
            let kernel_read = FaultKind::MemoryAccess {
                address: 0xFFFF_0000_4000_0000,
                write: false,
            };
            world.sys.fault(CoreId(1), kernel_read, world.now);
            fault_times.push(tick);
        }
        for core in 0..3 {
            world.sys.tick(CoreId(core), world.now);
        }
        world.sys.check_invariants().expect("invariants");
        // The supervisor runs whenever it was woken.
        if let Some(task) = world.current(0) {
            let woke = world.result(task).expect("woken with a result");
            assert_eq!(woke.0[1], TaskId::KERNEL.to_raw() as u64);
            supervisor_pass(&mut world, &mut policy, 0);
        }
    }
    let gaps: Vec<u64> = restarts_at
        .iter()
        .zip(&fault_times)
        .map(|(r, f)| r - f)
        .collect();
    assert!(restarts_at.len() >= 6, "restarts at {restarts_at:?}");
    // Gap between a fault and the next restart: 10, 20, 40, 80 ms, then capped at 80 ms
    // (plus up to one tick of scheduling delay).
    let intervals: Vec<u64> = fault_times.windows(2).map(|w| w[1] - w[0]).collect();
    for (n, interval) in intervals.iter().enumerate() {
        let expected = (10u64 << n.min(3)).min(80);
        assert!(
            (expected..=expected + 1).contains(interval),
            "fault {n}: {interval} ms after the previous one, expected {expected} (all: {intervals:?}, {gaps:?})"
        );
    }
    println!("fault intervals {intervals:?} ms, restart delays {gaps:?} ms");
    // The fault is recorded for the supervisor with the right blame.
    let last = world.sys.state(crasher.index_usize()).expect("slot");
    if let TaskState::Faulted(kind) = last {
        assert_eq!(
            kind,
            FaultKind::MemoryAccess {
                address: 0xFFFF_0000_4000_0000,
                write: false
            }
        );
        assert_eq!(kind.to_record().to_kind(), Some(kind));
    }
    // The bystander ran throughout: it was never stopped and got CPU on its own core.
    let steady_info = world.sys.task_info(steady.index_usize()).expect("slot");
    assert_eq!(steady_info.restarts, 0);
    assert!(
        steady_info.cpu_ticks >= 590,
        "steady got {} ticks",
        steady_info.cpu_ticks
    );
    assert!(
        world
            .sys
            .task_info(crasher.index_usize())
            .expect("slot")
            .restarts as usize
            >= 6
    );
}
