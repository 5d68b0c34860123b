//! EL0 tasks (kernel/src/task, images from kernel/user): a task that reads kernel memory faults,
//! is reported and restarted with back-off while another task keeps running; the syscall fuzzer
//! task finishes and the kernel stays alive; a spinning task does not starve another on the same
//! core (time-slice preemption). Tasks run on the worker cores, so these boot `virt` with 2 cores
//! (core 1 runs every task: the preemption test really shares one core).

use std::time::Duration;

use crate::{boot, ensure, poweroff, virt, Outcome};

/// Generous: TCG on a loaded 2-core host; each wait ends as soon as the line appears.
const WAIT: Duration = Duration::from_secs(60);

fn two_cores() -> Result<integration::QemuConfig, crate::Failure> {
    let mut config = virt()?;
    config.smp = 2;
    Ok(config)
}

#[test]
fn a_task_reading_kernel_memory_faults_and_is_restarted_while_another_runs() -> Outcome {
    let mut qemu = boot(&two_cores()?)?;
    qemu.send_line("spawn spin")?;
    qemu.wait_for("[task] spawned name=spin", WAIT)?;
    qemu.send_line("spawn fault")?;
    let first = qemu.wait_for("[task] fault name=fault", WAIT)?;
    ensure!(
        qemu,
        first.contains("[fault] reading kernel memory"),
        "the fault task should have logged before faulting"
    );
    let report = qemu.wait_for("\n", WAIT)?;
    ensure!(
        qemu,
        report.contains("kind=MemoryAccess") && report.contains("restart_in_ms=10"),
        "the first fault should be a memory access, restarted after 10 ms: {report:?}"
    );
    // Restarted (new generation) and faulting again, with a doubled back-off.
    qemu.wait_for("[task] restart id=0x10001", WAIT)?;
    let second = qemu.wait_for("restart_in_ms=20", WAIT)?;
    ensure!(
        qemu,
        second.contains("[task] fault name=fault id=0x10001"),
        "the restarted incarnation (generation 1) should fault again"
    );
    // Meanwhile the spinner keeps being scheduled.
    qemu.wait_for("[spin] still spinning", WAIT)?;
    qemu.send_line("ps")?;
    qemu.wait_for("ID        NAME          STATE", WAIT)?;
    qemu.wait_for("spin          Runnable", WAIT)?;
    qemu.send_line("kill 0x0")?;
    qemu.wait_for("[task] killed id=0x0", WAIT)?;
    poweroff(&mut qemu)
}

#[test]
fn the_syscall_fuzzer_task_finishes_and_the_kernel_stays_alive() -> Outcome {
    let mut qemu = boot(&two_cores()?)?;
    qemu.send_line("spawn fuzz")?;
    qemu.wait_for("[fuzz] fuzz: done", WAIT)?;
    qemu.wait_for("[task] exit name=fuzz", WAIT)?;
    let info = qemu.command("info")?;
    ensure!(
        qemu,
        info.contains("cores: 2 online of 2"),
        "info should still answer with both cores online: {info:?}"
    );
    let sched = qemu.command("sched")?;
    ensure!(
        qemu,
        sched.contains("syscalls: ") && !sched.contains("syscalls: 0 "),
        "sched should count the fuzzer's syscalls: {sched:?}"
    );
    poweroff(&mut qemu)
}

#[test]
fn a_spinning_task_does_not_starve_another_on_the_same_core() -> Outcome {
    let mut qemu = boot(&two_cores()?)?;
    qemu.send_line("spawn spin")?;
    qemu.wait_for("[task] spawned name=spin id=0x0", WAIT)?;
    qemu.send_line("spawn spin")?;
    qemu.wait_for("[task] spawned name=spin id=0x1", WAIT)?;
    // Both spinners (equal priority) never block: the second one runs only if the time slice
    // preempts the first. Let them run a while (each logs every 2^27 iterations), then check
    // both were charged CPU time.
    qemu.wait_for("[spin] still spinning", WAIT)?;
    qemu.wait_for("[spin] still spinning", WAIT)?;
    let table = qemu.command("ps")?;
    let spinner_ticks: Vec<u64> = table
        .lines()
        .filter(|line| line.contains(" spin "))
        .filter_map(|line| line.split_whitespace().last()?.parse().ok())
        .collect();
    ensure!(
        qemu,
        spinner_ticks.len() == 2 && spinner_ticks.iter().all(|&ticks| ticks > 0),
        "both spinners should have CPU time: {spinner_ticks:?} from {table:?}"
    );
    // top: two rounds a second apart; the second gives each spinner a share of core 1.
    qemu.send_line("top 2")?;
    qemu.wait_for("(round 2 of 2)", WAIT)?;
    let second_round = qemu.wait_for("anneal> ", WAIT)?;
    let shares: Vec<u64> = second_round
        .lines()
        .filter(|line| line.contains(" spin "))
        .filter_map(|line| line.split_whitespace().last()?.parse().ok())
        .collect();
    ensure!(
        qemu,
        shares.len() == 2 && shares.iter().all(|&share| share > 0 && share <= 100),
        "top should give both spinners a CPU share: {shares:?} from {second_round:?}"
    );
    let sched = qemu.command("sched")?;
    let core1 = sched
        .lines()
        .find(|line| line.starts_with("core 1:"))
        .unwrap_or_default()
        .to_string();
    let preemptions: u64 = core1
        .split_whitespace()
        .find_map(|word| word.strip_prefix("preemptions="))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    ensure!(
        qemu,
        preemptions > 0,
        "core 1 should report time-slice preemptions: {core1:?}"
    );
    poweroff(&mut qemu)
}

#[test]
fn ipc_round_trips_carry_the_right_data_across_cores_and_on_one_core() -> Outcome {
    let mut config = virt()?;
    config.smp = 3;
    let mut qemu = boot(&config)?;
    // pong pinned to core 1, ping to core 2: every round trip crosses cores (wake-up by SGI).
    qemu.send_line("spawn pong 1")?;
    qemu.wait_for("[task] spawned name=pong id=0x0", WAIT)?;
    qemu.send_line("spawn ping 2")?;
    // ping checks each of its 1000 replies (value + 1) and says so only if all were right.
    qemu.wait_for("[ping] 1000 round trips ok", WAIT)?;
    qemu.wait_for("[task] exit name=ping", WAIT)?;
    // The same on one core: client and server share core 1.
    qemu.send_line("spawn ping 1")?;
    qemu.wait_for("[ping] 1000 round trips ok", WAIT)?;
    qemu.send_line("ps")?;
    qemu.wait_for("pong          InReceive", WAIT)?;
    poweroff(&mut qemu)
}

#[test]
fn sleeping_tasks_wake_on_an_idle_core_and_beside_spinners() -> Outcome {
    let mut config = virt()?;
    config.smp = 3;
    let mut qemu = boot(&config)?;
    // Core 2 has nothing else to run (its periodic tick is stopped while idle): the one-shot
    // comparator alone must end each of the 100 sleeps.
    qemu.send_line("spawn latency 2")?;
    let idle = qemu.wait_for("[latency] bench case=wakeup ops=100 ", WAIT)?;
    ensure!(
        qemu,
        !idle.contains("[task] fault"),
        "nothing should fault: {idle:?}"
    );
    // Core 1 runs two batch spinners: the sleeper (more urgent) still completes its rounds.
    qemu.send_line("spawn spin 1 2")?;
    qemu.wait_for("[task] spawned name=spin", WAIT)?;
    qemu.send_line("spawn latency 1")?;
    qemu.wait_for("[latency] bench case=wakeup ops=100 ", WAIT)?;
    qemu.wait_for("[task] exit name=latency", WAIT)?;
    poweroff(&mut qemu)
}
