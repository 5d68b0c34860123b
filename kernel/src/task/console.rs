//! The console's task commands: `spawn`, `ps`, `top`, `kill`, `sched`. Each takes the task
//! kernel's lock once (through `with_kernel`, which also frees ended tasks first) and prints
//! after releasing it.

use super::{images, task_cores, with_kernel, RUNNING, SUPERVISOR_IMAGE};
use crate::arch::aarch64::{cpu, smp, timer};
use crate::limits::KILL_WAIT_MS;
use crate::println;
use abi::TaskId;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use tasking::policy::SchedPolicy;
use tasking::sched::{CoreId, CoreMask, Location};

/// Priority of a task started from the console (0 most urgent, 7 least; the supervisor has 0):
/// the latency-sensitive workload above the rest, the batch spinner below, everything else in
/// the middle.
fn console_priority(name: &str) -> u8 {
    match name {
        "latency" => 1,
        "spin" => 6,
        _ => 4,
    }
}

/// `spawn NAME [CORE [COUNT]]`: loads an embedded image into new address spaces, COUNT copies
/// (default 1) made runnable together (so that a benchmark pair starts at the same moment).
pub fn command_spawn(arguments: &[&str], _line: &str) {
    let Some(&name) = arguments.first() else {
        let names: Vec<&str> = images::USER_IMAGES.iter().map(|(name, _)| *name).collect();
        println!(
            "usage: spawn NAME [CORE [COUNT]] (images: {})",
            names.join(", ")
        );
        return;
    };
    let Some(&(image_name, bytes)) = images::USER_IMAGES.iter().find(|(n, _)| *n == name) else {
        println!("spawn: no task image named {name:?} (try 'spawn')");
        return;
    };
    if image_name == SUPERVISOR_IMAGE {
        println!("spawn: the supervisor is started by the kernel (see ps)");
        return;
    }
    let mut affinity = CoreMask::NONE;
    match arguments.get(1).map(|text| text.parse::<usize>()) {
        None => affinity = task_cores(),
        Some(Ok(core)) if (0..smp::online_cores()).contains(&core) => {
            affinity.insert(CoreId(core));
        }
        Some(_) => {
            println!(
                "spawn: CORE must be an online core, 0..{} (core 0 runs tasks while the console is idle)",
                smp::online_cores() - 1
            );
            return;
        }
    }
    let copies = match arguments.get(2).map(|text| text.parse::<usize>()) {
        None => 1,
        Some(Ok(count)) if (1..=tasking::limits::MAX_TASKS).contains(&count) => count,
        Some(_) => {
            println!("spawn: COUNT must be 1..={}", tasking::limits::MAX_TASKS);
            return;
        }
    };
    let priority = console_priority(image_name);
    let results = with_kernel(|kernel| {
        (0..copies)
            .map(|_| kernel.spawn_image(image_name, bytes, priority, affinity, false))
            .collect::<Vec<_>>()
    });
    for result in results {
        match result {
            Ok(id) => println!("[task] spawned name={image_name} id={:#x}", id.to_raw()),
            Err(reason) => println!("spawn: {image_name}: {reason}"),
        }
    }
}

/// `ps`: one line per task.
pub fn command_ps(_arguments: &[&str], _line: &str) {
    let (rows, summary) = with_kernel(|kernel| {
        // Measured first, before this command allocates anything.
        let (heap_free, _) = crate::memory::heap_usage();
        let summary = alloc::format!(
            "tasks={} slots={} spawned={} freed={} frames_free_bytes={} heap_free_bytes={}",
            kernel.system.occupied_count(),
            kernel.system.task_count(),
            kernel.spawned,
            kernel.released,
            crate::memory::free_frame_bytes(),
            heap_free
        );
        let rows = (0..kernel.system.task_count())
            .filter_map(|index| kernel.system.task_info(index))
            .collect::<Vec<_>>();
        (rows, summary)
    });
    println!("  ID        NAME          STATE      CORE PRIO RESTARTS CPU_TICKS");
    for record in rows {
        let core = record
            .core
            .map_or(alloc::string::String::from("-"), |c| alloc::format!("{c}"));
        println!(
            "  {:#08x}  {:<12}  {:<9}  {:>4} {:>4} {:>8} {:>9}",
            record.id.to_raw(),
            record.name_str(),
            alloc::format!("{:?}", record.state),
            core,
            record.priority,
            record.restarts,
            record.cpu_ticks
        );
    }
    println!("summary: {summary}");
}

/// `kill ID`: stops a task (it is not restarted, and its memory and slot are freed; the
/// supervisor is the exception: the kernel restarts it). A task running on another core is
/// stopped at once by the wake-up SGI: the command returns when that core has left it.
pub fn command_kill(arguments: &[&str], _line: &str) {
    let Some(text) = arguments.first() else {
        println!("usage: kill ID (hex 0x... or decimal, as ps shows)");
        return;
    };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse::<u32>(),
    };
    let Ok(raw) = parsed else {
        println!("kill: {text:?} is not a task id");
        return;
    };
    let id = TaskId::new((raw & 0xFFFF) as u16, abi::Generation((raw >> 16) as u16));
    let running_on = |raw: u32| {
        RUNNING
            .iter()
            .take(smp::online_cores())
            .position(|running| running.load(Ordering::Relaxed) == raw)
    };
    // The kick to the task's core goes out as with_kernel returns.
    let result = with_kernel(|kernel| {
        // Current on a core (perhaps in the kernel between two of its slices), or with its
        // frame on a core's stack.
        let on = match kernel.system.scheduler().location(id) {
            Location::Running(core) => Some(core.0),
            _ => running_on(raw),
        };
        kernel.system.kill(id, super::now()).map(|()| on)
    });
    match result {
        Ok(Some(core)) => {
            let started = timer::counter();
            let deadline = timer::deadline_after_milliseconds(KILL_WAIT_MS);
            while running_on(raw) == Some(core) && !timer::spin_wait_until(deadline) {
                core::hint::spin_loop();
            }
            let waited_us = (timer::counter() - started) * 1_000_000 / timer::frequency();
            if running_on(raw) == Some(core) {
                println!("[task] killed id={raw:#x} but core {core} still runs it after {KILL_WAIT_MS} ms");
            } else {
                println!("[task] killed id={raw:#x} stopped_on_core={core} after_us={waited_us}");
            }
        }
        Ok(None) => println!("[task] killed id={raw:#x}"),
        Err(error) => println!("kill: {raw:#x}: {error:?}"),
    }
    // Free it now if its core has let go (else the next pass does).
    with_kernel(|_| ());
}

/// `sched`: the policy and per-core run-queue statistics.
pub fn command_sched(_arguments: &[&str], _line: &str) {
    let lines = with_kernel(|kernel| {
        let scheduler = kernel.system.scheduler();
        let mut lines = Vec::new();
        lines.push(alloc::format!(
            "policy: {}  syscalls: {}  faults: {}  pan: {}",
            scheduler.policy().name(),
            kernel.syscalls,
            kernel.faults,
            if crate::arch::aarch64::mmu::privileged_access_never() {
                "on"
            } else {
                "absent"
            }
        ));
        for core in 0..smp::online_cores() {
            let Some(stats) = scheduler.core_stats(CoreId(core)) else {
                continue;
            };
            let micros = |value: Option<u64>| value.map_or(-1, |ns| (ns / 1000) as i64);
            lines.push(alloc::format!(
                "core {core}: wait_p50_us={} wait_p99_us={} waits={} dispatches={} preemptions={} busy_ticks={} idle_ticks={} migrations_in={} steals={}",
                micros(stats.wait.p50()),
                micros(stats.wait.p99()),
                stats.wait.count(),
                stats.dispatches,
                stats.preemptions,
                stats.busy_ticks,
                stats.idle_ticks,
                stats.migrations_in,
                stats.steals
            ));
        }
        lines
    });
    for line in lines {
        println!("{line}");
    }
}

/// `top [ROUNDS]`: `ps` with each task's share of a core over the last second, refreshed once a
/// second for ROUNDS rounds (default 5, at most 60).
pub fn command_top(arguments: &[&str], _line: &str) {
    let rounds = arguments
        .first()
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(5)
        .clamp(1, 60);
    let mut previous: Vec<(u32, u64)> = Vec::new();
    for round in 0..rounds {
        let rows = with_kernel(|kernel| {
            (0..kernel.system.task_count())
                .filter_map(|index| kernel.system.task_info(index))
                .collect::<Vec<_>>()
        });
        println!(
            "top: uptime {} ms, {} tasks (round {} of {rounds})",
            timer::uptime_milliseconds(),
            rows.len(),
            round + 1
        );
        println!("  ID        NAME          STATE      CORE PRIO CPU_TICKS  CPU%");
        let mut current = Vec::new();
        for record in rows {
            let id = record.id.to_raw();
            let before = previous
                .iter()
                .find(|(seen, _)| *seen == id)
                .map_or(0, |(_, ticks)| *ticks);
            let percent = if round == 0 {
                alloc::string::String::from("-")
            } else {
                let delta = record.cpu_ticks.saturating_sub(before);
                alloc::format!("{}", delta * 100 / crate::limits::TICK_HZ.max(1))
            };
            let core = record
                .core
                .map_or(alloc::string::String::from("-"), |c| alloc::format!("{c}"));
            println!(
                "  {:#08x}  {:<12}  {:<9}  {:>4} {:>4} {:>9} {:>5}",
                id,
                record.name_str(),
                alloc::format!("{:?}", record.state),
                core,
                record.priority,
                record.cpu_ticks,
                percent
            );
            current.push((id, record.cpu_ticks));
        }
        previous = current;
        if round + 1 < rounds {
            let deadline = timer::uptime_milliseconds() + 1000;
            while timer::uptime_milliseconds() < deadline {
                let were_enabled = cpu::mask_irqs();
                if were_enabled {
                    cpu::wait_for_interrupt();
                }
                cpu::restore_irqs(were_enabled);
            }
        }
    }
}
