//! Slot reuse: a slot whose task ended for good is released and taken by the next spawn under
//! the next generation, so a boot can start far more tasks than the table holds, and ids of
//! an earlier occupant keep failing.

mod common;

use abi::{FaultKind, KernelError, Syscall, TaskId, SUPERVISOR_FAULT_BIT};
use common::*;
use tasking::limits::MAX_TASKS;
use tasking::sched::{CoreId, CoreMask};
use tasking::system::{SpawnError, SyscallEffect, TaskState};

fn spawn_on(world: &mut World, name: &str, core: usize) -> Result<TaskId, SpawnError> {
    world.sys.spawn(
        descriptor(name, 4, CoreMask::only(CoreId(core)), false),
        world.now,
    )
}

#[test]
fn released_slots_are_reused_under_the_next_generation_and_old_ids_stay_dead() {
    let mut world = World::new(2);
    let server = world.spawn_on("server", 3, 1);
    let mut ids = Vec::new();
    for n in 1..MAX_TASKS {
        ids.push(spawn_on(&mut world, &format!("t{n}"), 0).expect("room"));
    }
    assert_eq!(
        spawn_on(&mut world, "one too many", 0),
        Err(SpawnError::TableFull)
    );
    // 1000 short lives through one slot after another: each exits, is released, and its
    // slot is taken by the next spawn.
    let mut previous: Vec<TaskId> = Vec::new();
    for round in 0..1000usize {
        let task = world.current(0).expect("a task on core 0");
        assert_eq!(
            world.call(0, Syscall::Exit { code: 0 }),
            SyscallEffect::Exited
        );
        let index = task.index_usize();
        assert_eq!(
            world.sys.release(server.index_usize()),
            Err(KernelError::NotFaulted),
            "a live task is not released"
        );
        world.sys.release(index).expect("release the exited task");
        assert_eq!(world.sys.release(index), Err(KernelError::NoSuchTask));
        assert_eq!(world.sys.task_info(index), None);
        assert_eq!(
            world.sys.restart(index, world.now),
            Err(KernelError::NoSuchTask)
        );
        assert_eq!(world.sys.state(index), Some(TaskState::Vacant));
        let new = spawn_on(&mut world, &format!("r{round}"), 0).expect("the vacant slot");
        assert_eq!(new.index_usize(), index);
        assert_eq!(new.generation(), task.generation().next());
        assert_eq!(world.sys.occupied_count(), MAX_TASKS);
        previous.push(task);
        world.sys.check_invariants().expect("invariants");
    }
    assert_eq!(world.sys.task_count(), MAX_TASKS);
    // Every earlier id is dead: posting to it or sending to it fails with the slot's current
    // id in x1.
    world.current(1);
    for old in previous.iter().rev().take(100) {
        let current = world.sys.task_id(old.index_usize()).expect("slot");
        assert_ne!(current, *old);
        let post = world.call_now(
            1,
            Syscall::Post {
                target: *old,
                bits: 1,
            },
        );
        assert_eq!(post.0[0], KernelError::DeadTask.code() as u64);
        assert_eq!(post.0[1], current.to_raw() as u64);
    }
    assert!(!world.sys.post_from_kernel(previous[0], 1, world.now));
}

#[test]
fn killing_a_task_that_waits_for_its_restart_keeps_it_stopped() {
    let mut world = World::new(2);
    let supervisor = world.spawn_supervisor_on("supervisor", 0);
    let crasher = world.spawn_on("crasher", 4, 1);
    let kind = FaultKind::IllegalInstruction {
        address: 0x1_0000,
        syndrome: 0,
    };
    assert_eq!(world.sys.fault(CoreId(1), kind, world.now), Some(crasher));
    let wait = Syscall::Receive {
        buffer: slice(DATA_BASE, 0),
        notification_mask: SUPERVISOR_FAULT_BIT,
        from: None,
    };
    let woke = world.call_now(0, wait);
    assert_eq!(woke.0[2], SUPERVISOR_FAULT_BIT as u64);
    // The operator kills it before the supervisor's back-off ran out: it becomes killed and
    // the supervisor hears of it again.
    assert_eq!(world.sys.kill(crasher, world.now), Ok(()));
    assert_eq!(
        world.sys.state(crasher.index_usize()),
        Some(TaskState::Faulted(FaultKind::Killed))
    );
    let woke = world.call_now(0, wait);
    assert_eq!(woke.0[2], SUPERVISOR_FAULT_BIT as u64);
    let fault = world.call_now(
        0,
        Syscall::ReadFault {
            index: crasher.index(),
        },
    );
    assert_eq!(fault.0[1], 7, "kind 7: killed");
    assert_eq!(
        world.sys.kill(crasher, world.now),
        Err(KernelError::DeadTask)
    );
    // A killed task can be released; then the supervisor's calls name no task.
    world.sys.release(crasher.index_usize()).expect("release");
    let fault = world.call_now(
        0,
        Syscall::ReadFault {
            index: crasher.index(),
        },
    );
    assert_eq!(fault.0[0], KernelError::NoSuchTask.code() as u64);
    let restart = world.call_now(
        0,
        Syscall::RestartTask {
            index: crasher.index(),
        },
    );
    assert_eq!(restart.0[0], KernelError::NoSuchTask.code() as u64);
    assert_eq!(world.sys.supervisor_index(), Some(supervisor.index_usize()));
    world.sys.check_invariants().expect("invariants");
}
