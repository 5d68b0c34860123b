//! EL0 tasks (kernel/src/task, images from kernel/user): a task that reads kernel memory faults,
//! is reported and restarted with back-off by the supervisor task while another task keeps
//! running; the kernel restarts the supervisor itself when it dies; the syscall fuzzer task
//! finishes and the kernel stays alive; a spinning task does not starve another on the same core
//! (time-slice preemption); IPC round trips carry the right data; far more short-lived tasks
//! than the table holds run in one boot with every frame returned; `kill` stops a task running
//! on another core before it returns. The supervisor is the first task (id 0x0), so console
//! tasks start at 0x1. Tasks run on every core, core 0 (the console) while the console is idle.

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
    qemu.wait_for("[task] spawned name=supervisor id=0x0", WAIT)?;
    qemu.wait_for("[task] spawned name=spin id=0x1", WAIT)?;
    qemu.send_line("spawn fault")?;
    let first = qemu.wait_for("[task] fault name=fault id=0x2", WAIT)?;
    ensure!(
        qemu,
        first.contains("[fault] reading kernel memory"),
        "the fault task should have logged before faulting"
    );
    let report = qemu.wait_for("\n", WAIT)?;
    ensure!(
        qemu,
        report.contains("kind=MemoryAccess"),
        "the fault should be a memory access: {report:?}"
    );
    // The supervisor task (EL0) reads the fault and restarts it after 10 ms.
    qemu.wait_for(
        "[supervisor] fault index=2 id=0x2 kind=1 restart_in_ms=10",
        WAIT,
    )?;
    // Restarted (new generation) and faulting again, with a doubled back-off.
    qemu.wait_for("[task] restart id=0x10002", WAIT)?;
    qemu.wait_for("[task] fault name=fault id=0x10002", WAIT)?;
    qemu.wait_for(
        "[supervisor] fault index=2 id=0x10002 kind=1 restart_in_ms=20",
        WAIT,
    )?;
    // Meanwhile the spinner keeps being scheduled.
    qemu.wait_for("[spin] still spinning", WAIT)?;
    qemu.send_line("ps")?;
    qemu.wait_for("ID        NAME          STATE", WAIT)?;
    qemu.wait_for("spin          Runnable", WAIT)?;
    qemu.send_line("kill 0x1")?;
    qemu.wait_for("[task] killed id=0x1", WAIT)?;
    poweroff(&mut qemu)
}

#[test]
fn the_kernel_restarts_a_killed_supervisor_which_supervises_again() -> Outcome {
    let mut qemu = boot(&two_cores()?)?;
    qemu.send_line("ps")?;
    qemu.wait_for("[task] spawned name=supervisor id=0x0", WAIT)?;
    qemu.send_line("kill 0x0")?;
    qemu.wait_for(
        "[task] supervisor stopped; the kernel restarts it in 10 ms",
        WAIT,
    )?;
    qemu.wait_for("[task] restart id=0x10000", WAIT)?;
    qemu.wait_for("[supervisor] up", WAIT)?;
    // The new incarnation does the supervisor's work: a faulting task is restarted.
    qemu.send_line("spawn undef")?;
    qemu.wait_for("[task] fault name=undef id=0x1", WAIT)?;
    qemu.wait_for(
        "[supervisor] fault index=1 id=0x1 kind=5 restart_in_ms=10",
        WAIT,
    )?;
    qemu.wait_for("[task] restart id=0x10001", WAIT)?;
    // Once the back-off has grown to 2.56 s, killing the stopped task ends the crash loop:
    // it is freed, not restarted.
    let line = qemu.wait_for("restart_in_ms=2560", WAIT)?;
    let id = line
        .rsplit("[supervisor] fault index=1 id=")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    let reply = qemu.command(&format!("kill {id}"))?;
    ensure!(
        qemu,
        reply.contains(&format!("[task] killed id={id}")),
        "kill {id} should stop the waiting task: {reply:?}"
    );
    let table = qemu.command("ps")?;
    ensure!(
        qemu,
        !table.contains("undef"),
        "the killed task should be freed: {table:?}"
    );
    ensure!(
        qemu,
        table.contains("0x010000  supervisor"),
        "the restarted supervisor (generation 1) should still be there: {table:?}"
    );
    poweroff(&mut qemu)
}

#[test]
fn far_more_short_lived_tasks_than_slots_run_and_every_frame_comes_back() -> Outcome {
    let mut qemu = boot(&two_cores()?)?;
    let summary = |qemu: &mut integration::Qemu| -> Result<(u64, u64, u64), crate::Failure> {
        let table = qemu.command("ps")?;
        let line = table
            .lines()
            .find(|line| line.starts_with("summary: "))
            .unwrap_or_default()
            .to_string();
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(key)?.parse::<u64>().ok())
        };
        match (
            field("frames_free_bytes="),
            field("heap_free_bytes="),
            field("freed="),
        ) {
            (Some(frames), Some(heap), Some(freed)) => Ok((frames, heap, freed)),
            _ => Err(crate::Failure(format!(
                "no ps summary in {table:?}; console:\n{}",
                qemu.transcript()
            ))),
        }
    };
    let (frames_at_start, _, _) = summary(&mut qemu)?;
    let mut heap_after_first_wave = None;
    // 5 waves of 30 = 150 tasks, more than twice the 64 slots.
    for wave in 1..=5u64 {
        // Some tasks may exit before the spawn command's prompt: count those in its reply.
        let reply = qemu.command("spawn hello 1 30")?;
        let early = reply.matches("[task] exit name=hello").count();
        for _ in early..30 {
            qemu.wait_for("[task] exit name=hello", WAIT)?;
        }
        let (frames, heap, freed) = summary(&mut qemu)?;
        ensure!(
            qemu,
            freed == 30 * wave,
            "wave {wave}: {freed} tasks freed, expected {}",
            30 * wave
        );
        ensure!(
            qemu,
            frames == frames_at_start,
            "wave {wave}: {frames} bytes of frames free, {frames_at_start} before any task"
        );
        let first = *heap_after_first_wave.get_or_insert(heap);
        ensure!(
            qemu,
            heap == first,
            "wave {wave}: heap free {heap}, {first} after the first wave"
        );
    }
    let info = qemu.command("info")?;
    ensure!(
        qemu,
        info.contains("cores: 2 online of 2"),
        "the kernel should still answer: {info:?}"
    );
    poweroff(&mut qemu)
}

#[test]
fn kill_stops_a_task_running_on_another_core_before_it_returns() -> Outcome {
    let mut qemu = boot(&two_cores()?)?;
    qemu.send_line("spawn spin 1")?;
    qemu.wait_for("[task] spawned name=spin id=0x1", WAIT)?;
    qemu.wait_for("[spin] still spinning", WAIT)?;
    // The spinner never traps by itself: the kill's SGI takes core 1 out of it, and the
    // console answers only once core 1 has left it.
    let reply = qemu.command("kill 0x1")?;
    ensure!(
        qemu,
        reply.contains("[task] killed id=0x1 stopped_on_core=1 after_us="),
        "kill should report the spinner stopped on core 1: {reply:?}"
    );
    let table = qemu.command("ps")?;
    ensure!(
        qemu,
        !table.contains(" spin "),
        "the killed spinner should be gone: {table:?}"
    );
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
    ensure!(
        qemu,
        sched.contains("pan: absent"),
        "cortex-a72 (ARMv8.0) has no PAN: {sched:?}"
    );
    poweroff(&mut qemu)
}

#[test]
fn a_spinning_task_does_not_starve_another_on_the_same_core() -> Outcome {
    let mut qemu = boot(&two_cores()?)?;
    qemu.send_line("spawn spin 1")?;
    qemu.wait_for("[task] spawned name=spin id=0x1", WAIT)?;
    qemu.send_line("spawn spin 1")?;
    qemu.wait_for("[task] spawned name=spin id=0x2", WAIT)?;
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
    qemu.wait_for("[task] spawned name=pong id=0x1", WAIT)?;
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

#[test]
fn with_pan_on_the_kernel_still_copies_task_memory_through_its_checked_path() -> Outcome {
    // `-cpu max` has FEAT_PAN (cortex-a72, ARMv8.0, has not): the kernel turns it on, so any
    // direct kernel access to task pages would be a fatal permission fault. IPC copies, `log`,
    // `task_info` records and the fuzzer's bad pointers all go through the linear map.
    let mut config = two_cores()?;
    config.cpu = "max".into();
    let mut qemu = boot(&config)?;
    let sched = qemu.command("sched")?;
    ensure!(
        qemu,
        sched.contains("pan: on"),
        "sched should report PAN on with -cpu max: {sched:?}"
    );
    qemu.send_line("spawn pong 1")?;
    qemu.wait_for("[task] spawned name=pong", WAIT)?;
    qemu.send_line("spawn ping 1")?;
    qemu.wait_for("[ping] 1000 round trips ok", WAIT)?;
    qemu.send_line("spawn fuzz 1")?;
    qemu.wait_for("[fuzz] fuzz: done", WAIT)?;
    qemu.wait_for("[task] exit name=fuzz", WAIT)?;
    poweroff(&mut qemu)
}

#[test]
fn core_0_runs_tasks_while_the_console_is_idle_and_the_console_still_answers() -> Outcome {
    // One core: the console's core is the only task core.
    let mut qemu = boot(&virt()?)?;
    qemu.send_line("spawn pong")?;
    qemu.wait_for("[task] spawned name=pong id=0x1", WAIT)?;
    qemu.send_line("spawn ping")?;
    qemu.wait_for("[ping] 1000 round trips ok", WAIT)?;
    qemu.send_line("spawn fuzz")?;
    qemu.wait_for("[fuzz] fuzz: done", WAIT)?;
    // A spinner on core 0 never blocks: every byte typed must still be answered.
    qemu.send_line("spawn spin 0")?;
    qemu.wait_for("[spin] still spinning", WAIT)?;
    let mut ticks = Vec::new();
    for _ in 0..3 {
        let info = qemu.command("info")?;
        ensure!(
            qemu,
            info.contains("cores: 1 online of 1"),
            "info should answer beside the spinner: {info:?}"
        );
        qemu.wait_for("[spin] still spinning", WAIT)?;
        let table = qemu.command("ps")?;
        let spin_ticks: Option<u64> = table
            .lines()
            .find(|line| line.contains(" spin "))
            .and_then(|line| line.split_whitespace().last()?.parse().ok());
        ticks.push(spin_ticks.unwrap_or(0));
    }
    ensure!(
        qemu,
        ticks.windows(2).all(|pair| pair[1] > pair[0]),
        "the spinner should run on core 0 between commands: CPU ticks {ticks:?}"
    );
    poweroff(&mut qemu)
}
