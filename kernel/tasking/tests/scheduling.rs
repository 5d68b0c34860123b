//! Scheduling through the task system: spreading, fairness, and wake-up latency under load.

mod common;

use abi::Syscall;
use common::*;
use tasking::sched::{CoreId, CoreMask};
use tasking::system::SyscallEffect;

const MS: u64 = 1_000_000;

#[test]
fn spinners_spread_over_all_cores_and_share_them_fairly() {
    let mut world = World::new(4);
    let mut tasks = Vec::new();
    for index in 0..12 {
        let name = format!("batch{index}");
        let id = world
            .sys
            .spawn(descriptor(&name, 5, CoreMask::ALL, false), world.now)
            .expect("spawn");
        tasks.push(id);
    }
    for tick in 1..=1200u64 {
        world.advance_to(tick * MS);
    }
    let ticks: Vec<u64> = tasks
        .iter()
        .map(|task| {
            world
                .sys
                .task_info(task.index_usize())
                .expect("slot")
                .cpu_ticks
        })
        .collect();
    // 4 cores x 1200 ticks shared by 12 tasks: 400 each, within a slice or two.
    for (index, got) in ticks.iter().enumerate() {
        assert!(
            (390..=410).contains(got),
            "batch{index} got {got} ticks: {ticks:?}"
        );
    }
    for core in 0..4 {
        let stats = world
            .sys
            .scheduler()
            .core_stats(CoreId(core))
            .expect("core");
        assert!(
            stats.busy_ticks >= 1199,
            "core {core} idled with work waiting"
        );
    }
}

#[test]
fn a_latency_task_wakes_within_a_tick_under_batch_load() {
    let mut world = World::new(2);
    for index in 0..6 {
        let name = format!("batch{index}");
        world
            .sys
            .spawn(descriptor(&name, 6, CoreMask::ALL, false), world.now)
            .expect("spawn");
    }
    let latency = world.spawn_on("latency", 1, 0);
    let mut delays = Vec::new();
    let mut deadline = None;
    for tick in 1..=2000u64 {
        world.advance_to(tick * MS);
        if world.current(0) == Some(latency) {
            if let Some(due) = deadline.take() {
                let result = world.result(latency).expect("wake-up result");
                let woke_at = result.0[1];
                assert!(woke_at >= due, "woke before its deadline");
                delays.push(world.now.0 - due);
            }
            // Sleep 7 ms: wakes mid-slice of some batch task.
            assert_eq!(
                world.call(
                    0,
                    Syscall::Sleep {
                        nanoseconds: 7 * MS
                    }
                ),
                SyscallEffect::Blocked
            );
            deadline = Some(world.now.0 + 7 * MS);
        }
    }
    assert!(delays.len() > 200, "only {} wake-ups", delays.len());
    // Woken on the tick at the deadline and run at once: the more urgent task preempts.
    assert!(
        delays.iter().all(|delay| *delay == 0),
        "wake-up delays {delays:?}"
    );
    let batch_stats = world.sys.scheduler().core_stats(CoreId(1)).expect("core");
    assert!(
        batch_stats.busy_ticks >= 1990,
        "the batch work kept core 1 busy"
    );
}
