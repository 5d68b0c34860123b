//! `cargo xtask bench kernel [--json] [--no-icount] [--smp N] [--cpu NAME] [--gic 2|3]`: the
//! microkernel core's costs, measured by EL0 tasks on QEMU `virt`: the syscall round trip, the
//! IPC round trip on one core and across cores, the context switch, and the timer wake-up
//! delay (p50/p99) of a task sleeping 2 ms, idle and beside two batch spinners on its core.
//!
//! Design. The tasks measure themselves (kernel/user/{syscall,switch,ping,latency}.S): each
//! reads `get_time` around its loop and logs one `bench case=NAME ops=N elapsed_ns=E` line (the
//! wake-up task: `p50_ns=... p99_ns=...`), so what is timed is exactly the EL0 view of the
//! kernel, entry and exit included, and there is one implementation of each measurement. xtask
//! boots the kernel, starts the tasks from the console (`spawn NAME CORE [COUNT]`, pinned so
//! that "same core" and "cross core" mean what they say; core 0 keeps the console), waits for
//! their lines and reformats them.
//!
//! QEMU runs twice: in normal mode (wall-clock time, inflated by whatever else the host runs),
//! then with `-icount shift=0` (`where` ends in `-icount0`), where a guest nanosecond is one
//! guest instruction, so the figures are AArch64 instructions per operation, the same run to
//! run: idle cores take no tick (see kernel/src/task), so nothing else runs beside a one-core
//! case. Two caveats: all vCPUs share one host thread in turn, so the cross-core round trip
//! also counts the other vCPU's instructions (spinning on the task lock included) until QEMU
//! switches to it; and while every vCPU waits, guest time passes at host speed, so the idle
//! wake-up is partly wall time even there (the loaded one is pure instructions). `sleep=off`,
//! which would make idle waits jump instead, stops QEMU reading console input while every vCPU
//! waits with no timer armed.

use std::time::Duration;

use integration::Qemu;

use crate::args::Args;
use crate::bench::{boot_kernel, Report};
use crate::bench_ebpf::{console_fields, field, number};
use crate::error::{Error, Result};
use crate::json::JsonLine;
use crate::run::MachineOptions;
use crate::{prereq, toolchain};

/// Longest wait for one case's result line. The slowest case (wake-up beside two spinners:
/// 100 sleeps of 2 ms, 1 s of guest time at the old 10 ms tick) takes a few seconds under TCG;
/// two minutes only stops a hung kernel.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Cores the bench needs: core 0 for the console, two worker cores for the cross-core case.
const MIN_CORES: u32 = 3;

/// One measurement: console lines that start it and the result lines it ends with.
struct Case {
    /// Name in the output.
    name: &'static str,
    /// What it is, for people.
    about: &'static str,
    /// Console lines sent, in order.
    commands: &'static [&'static str],
    /// Prefix of each result line (the task's name and the bench tag).
    result: &'static str,
    /// Result lines to collect (both copies of the switch pair report).
    results: usize,
}

/// The cases, in the order they run in one boot. `pong` stays up (blocked in `receive`) for
/// the second IPC case; the spinners stay up to the end, so the loaded wake-up comes last.
const CASES: &[Case] = &[
    Case {
        name: "syscall",
        about: "syscall round trip (get_time)",
        commands: &["spawn syscall 1"],
        result: "[syscall] bench case=syscall ",
        results: 1,
    },
    Case {
        name: "switch",
        about: "context switch (yield between two tasks on core 1)",
        commands: &["spawn switch 1 2"],
        result: "[switch] bench case=switch ",
        results: 2,
    },
    Case {
        name: "ipc-same-core",
        about: "IPC round trip, 8-byte send + reply, both on core 1",
        commands: &["spawn pong 1", "spawn ping 1"],
        result: "[ping] 1000 round trips ok: bench case=ipc ",
        results: 1,
    },
    Case {
        name: "ipc-cross-core",
        about: "IPC round trip, 8-byte send + reply, core 2 to core 1",
        commands: &["spawn ping 2"],
        result: "[ping] 1000 round trips ok: bench case=ipc ",
        results: 1,
    },
    Case {
        name: "wakeup-idle",
        about: "wake-up delay of a 2 ms sleep, core 1 otherwise idle",
        commands: &["spawn latency 1"],
        result: "[latency] bench case=wakeup ",
        results: 1,
    },
    Case {
        name: "wakeup-loaded",
        about: "wake-up delay of a 2 ms sleep beside two batch spinners on core 1",
        commands: &["spawn spin 1", "spawn spin 1", "spawn latency 1"],
        result: "[latency] bench case=wakeup ",
        results: 1,
    },
];

/// The fields of one result line after its prefix (`ops=... elapsed_ns=...`).
fn collect(qemu: &mut Qemu, case: &Case) -> Result<Vec<Vec<(String, String)>>> {
    let mut lines = Vec::new();
    for _ in 0..case.results {
        qemu.wait_for(case.result, CASE_TIMEOUT)
            .map_err(|e| Error::Qemu(format!("bench kernel case {}: {e}", case.name)))?;
        let rest = qemu
            .wait_for("\n", CASE_TIMEOUT)
            .map_err(|e| Error::Qemu(format!("bench kernel case {}: {e}", case.name)))?;
        lines.push(console_fields(&rest));
    }
    Ok(lines)
}

/// Unit of the figures of a pass: nanoseconds, or instructions under `-icount shift=0`.
fn unit(icount: bool) -> &'static str {
    if icount {
        "instructions"
    } else {
        "ns"
    }
}

/// The fields every result object starts with.
fn result_line(place: &str, case: &Case, ops: u64) -> JsonLine {
    JsonLine::new()
        .str("bench", "kernel")
        .str("where", place)
        .str("case", case.name)
        .int("ops", ops)
}

fn emit_per_op(
    report: &mut Report,
    place: &str,
    icount: bool,
    case: &Case,
    lines: &[Vec<(String, String)>],
) -> Result<()> {
    let mut per_op = Vec::new();
    let mut ops = 0;
    for fields in lines {
        let text = format!("{fields:?}");
        let count = number(fields, "ops", &text)?;
        let elapsed = number(fields, "elapsed_ns", &text)?;
        if count <= 0.0 {
            return Err(Error::Qemu(format!("bench line with ops=0: {text}")));
        }
        ops = count as u64;
        per_op.push(elapsed / count);
    }
    let mean = per_op.iter().sum::<f64>() / per_op.len().max(1) as f64;
    let rounded = (mean * 10.0).round() / 10.0;
    report.emit(
        result_line(place, case, ops).num(&format!("{}_per_op", unit(icount)), rounded),
        &format!(
            "kernel {place:<28} {:<15} {rounded:>10.1} {}/op  ({ops} ops; {})",
            case.name,
            unit(icount),
            case.about
        ),
    );
    Ok(())
}

fn emit_wakeup(
    report: &mut Report,
    place: &str,
    icount: bool,
    case: &Case,
    fields: &[(String, String)],
) -> Result<()> {
    let text = format!("{fields:?}");
    let ops = number(fields, "ops", &text)? as u64;
    let sleep = number(fields, "sleep_ns", &text)? as u64;
    let p50 = number(fields, "p50_ns", &text)? as u64;
    let p99 = number(fields, "p99_ns", &text)? as u64;
    let max = number(fields, "max_ns", &text)? as u64;
    let mean = number(fields, "mean_ns", &text)? as u64;
    let u = unit(icount);
    report.emit(
        result_line(place, case, ops)
            .int("sleep_ns", sleep)
            .int(&format!("p50_{u}"), p50)
            .int(&format!("p99_{u}"), p99)
            .int(&format!("max_{u}"), max)
            .int(&format!("mean_{u}"), mean),
        &format!(
            "kernel {place:<28} {:<15} p50 {p50:>9} {u}  p99 {p99:>9} {u}  max {max:>9}  mean {mean:>9}  ({ops} sleeps of {} us; {})",
            case.name,
            sleep / 1000,
            case.about
        ),
    );
    Ok(())
}

/// Runs the bench.
pub fn run(args: &mut Args, report: &mut Report) -> Result<()> {
    let skip_icount = args.flag("--no-icount");
    let machine = MachineOptions::parse(args)?;
    args.finish()?;
    if machine.board != integration::Board::Virt {
        return Err(Error::Usage(
            "bench kernel runs on --board virt (it pins tasks to cores 1 and 2)".into(),
        ));
    }
    prereq::ensure_tools()?;
    let kernel = toolchain::build_kernel(machine.toolchain)?;
    let mut config = machine.config(&kernel.image)?;
    config.smp = machine.smp.unwrap_or(MIN_CORES);
    if config.smp < MIN_CORES {
        return Err(Error::Usage(format!(
            "bench kernel needs --smp {MIN_CORES} or more (console core plus two task cores)"
        )));
    }
    config.initrd = None;
    let place = format!(
        "qemu-{}-{}-smp{}",
        config.board.name(),
        config.cpu,
        config.smp
    );
    let mut passes = vec![(place.clone(), false)];
    if !skip_icount {
        passes.push((format!("{place}-icount0"), true));
    }
    for (place, icount) in passes {
        config.icount_shift = icount.then_some(0);
        let (mut qemu, _) = boot_kernel(&config)?;
        for case in CASES {
            for command in case.commands {
                qemu.send_line(command)
                    .map_err(|e| Error::Qemu(e.to_string()))?;
            }
            let lines = collect(&mut qemu, case)?;
            match lines.first() {
                Some(first) if field(first, "p50_ns").is_some() => {
                    emit_wakeup(report, &place, icount, case, first)?
                }
                _ => emit_per_op(report, &place, icount, case, &lines)?,
            }
        }
        qemu.command_expecting_exit("poweroff", 0)
            .map_err(|e| Error::Qemu(e.to_string()))?;
    }
    Ok(())
}
