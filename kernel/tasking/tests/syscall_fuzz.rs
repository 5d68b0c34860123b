//! Syscall fuzzer: random register contents from random tasks, as the EL0 fuzzer task of the
//! integration tests will issue them. The task system must answer every call with a result or
//! a block, keep its invariants, and never panic; stopped tasks are restarted so the storm goes on.

mod common;

use abi::{KernelError, TaskId};
use common::*;
use std::collections::BTreeMap;
use tasking::sched::CoreMask;
use tasking::system::{SyscallEffect, TaskState};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A register value: mostly "interesting" (ids, user and kernel addresses, sizes), sometimes raw.
fn register(rng: &mut Rng, ids: &[TaskId]) -> u64 {
    let pick = rng.next();
    match pick % 10 {
        0 => rng.next(),
        1 => ids[(pick >> 8) as usize % ids.len()].to_raw() as u64,
        2 => DATA_BASE + (rng.next() % DATA_BYTES),
        3 => 0xFFFF_0000_0000_0000 | (rng.next() & 0xFFFF_FFFF),
        4 => rng.next() % 5000,
        5 => u64::MAX - rng.next() % 16,
        6 => 1 << (rng.next() % 64),
        7 => TaskId::ANY_SENDER.to_raw() as u64,
        8 => rng.next() % 16,
        _ => 0,
    }
}

fn fuzz_one(
    world: &mut World,
    rng: &mut Rng,
    core: usize,
    ids: &[TaskId],
    outcomes: &mut BTreeMap<String, u64>,
) {
    let task = world.current(core).expect("current");
    world.result(task);
    let number = if rng.next().is_multiple_of(20) {
        rng.next()
    } else {
        rng.next() % 14
    };
    let args: [u64; 6] = std::array::from_fn(|_| register(rng, ids));
    let effect = world.call_raw(core, number, &args);
    let label = match effect {
        SyscallEffect::Returned => {
            let result = world.result(task).expect("a returned call has a result");
            match result.kernel_error() {
                Some(error) => format!("{error:?}"),
                None => String::from("ok"),
            }
        }
        other => format!("{other:?}"),
    };
    *outcomes.entry(label).or_default() += 1;
}

#[test]
fn random_registers_from_every_task_leave_the_system_consistent() {
    let mut world = World::new(3);
    let mut ids = vec![world.spawn_supervisor_on("supervisor", 0)];
    for index in 0..6 {
        let name = format!("fuzz{index}");
        let id = world
            .sys
            .spawn(
                descriptor(&name, (index % 8) as u8, CoreMask::ALL, false),
                world.now,
            )
            .expect("spawn");
        ids.push(id);
    }
    let mut rng = Rng(0x0BAD_5EED_1234_5678);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for step in 0..60_000u64 {
        let core = (rng.next() % 3) as usize;
        if step % 7 == 0 {
            world.advance_to(world.now.0 + rng.next() % 3_000_000);
        }
        if world.current(core).is_none() {
            // Everyone here waits: wake someone with every notification bit, or stop a
            // waiting task (it is restarted below), as a console `kill` would.
            let index = (rng.next() % world.sys.task_count() as u64) as usize;
            let current = world.sys.task_id(index).expect("slot");
            if rng.next().is_multiple_of(2) {
                world.sys.post_from_kernel(current, u32::MAX, world.now);
            } else if index != 0 {
                let _ = world.sys.kill(current, world.now);
            }
        } else {
            fuzz_one(&mut world, &mut rng, core, &ids, &mut outcomes);
        }
        // The supervisor's job, done directly: bring stopped tasks back.
        for index in 0..world.sys.task_count() {
            if matches!(
                world.sys.state(index),
                Some(TaskState::Faulted(_) | TaskState::Exited(_))
            ) {
                let id = world.sys.restart(index, world.now).expect("restart");
                ids.push(id);
            }
        }
        world
            .sys
            .check_invariants()
            .expect("invariants after a fuzzed syscall");
    }
    println!("outcomes: {outcomes:?}");
    let total: u64 = outcomes.values().sum();
    assert!(total > 20_000, "only {total} syscalls issued");
    for expected in ["ok", "Blocked", "Exited", "Yielded"] {
        assert!(
            outcomes.contains_key(expected),
            "never saw {expected}: {outcomes:?}"
        );
    }
    for error in [
        KernelError::UnknownSyscall,
        KernelError::BadArgument,
        KernelError::BadPointer,
        KernelError::NoSuchTask,
        KernelError::DeadTask,
        KernelError::NotPermitted,
    ] {
        assert!(
            outcomes.contains_key(&format!("{error:?}")),
            "never saw {error:?}: {outcomes:?}"
        );
    }
}
