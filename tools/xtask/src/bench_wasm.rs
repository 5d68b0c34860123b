//! `cargo xtask bench wasm [--json] [--no-host] [--no-qemu] [--no-icount]`: WASM call overhead inside the
//! kernel under QEMU (`-M virt -cpu cortex-a72`, one core): an empty export, one host call,
//! and a loop of N iterations under each fuel setting (10x what the loop needs: it completes;
//! half of it: it ends by fuel, the fault path). The host figures of the same code
//! (`wasm_pack bench --json`) are printed first for comparison unless `--no-host`.
//!
//! Design as in `bench_ebpf`: the measurement is `wasm::bench::run`, one implementation for
//! the host and the kernel (`wasm bench` console command); xtask runs it and reformats.
//! QEMU runs in normal mode (wall clock) and then with `-icount shift=0` (`where` ends in
//! `-icount0`: guest instructions per call, deterministic run to run).

use std::process::Command;

use crate::args::Args;
use crate::bench::{boot_kernel, Report};
use crate::bench_ebpf::{console_fields, field, json_fields, number, QEMU_BENCH_TIMEOUT};
use crate::error::{Error, Result};
use crate::json::JsonLine;
use crate::run::MachineOptions;
use crate::{paths, prereq, process, toolchain};

fn emit(report: &mut Report, place: &str, fields: &[(String, String)], line: &str) -> Result<()> {
    let case = field(fields, "case").unwrap_or("?");
    let iterations = number(fields, "iterations", line)? as u64;
    let fuel_budget = number(fields, "fuel_budget", line)? as u64;
    let fuel_used = number(fields, "fuel_used", line)? as u64;
    let calls = number(fields, "calls", line)? as u64;
    let ns_per_call = number(fields, "ns_per_call", line)?;
    let out_of_fuel = field(fields, "out_of_fuel") == Some("true");
    let mut text = format!(
        "wasm {place:<24} {case:<9} n={iterations:<6} fuel_budget={fuel_budget:<8} fuel_used={fuel_used:<8} {ns_per_call:>11.0} ns/call ({calls} calls)"
    );
    if out_of_fuel {
        text.push_str("  ended by fuel");
    } else if iterations > 0 {
        text.push_str(&format!(
            "  {:.1} ns/iteration",
            ns_per_call / iterations as f64
        ));
    }
    report.emit(
        JsonLine::new()
            .str("bench", "wasm")
            .str("where", place)
            .str("case", case)
            .int("iterations", iterations)
            .int("fuel_budget", fuel_budget)
            .int("fuel_used", fuel_used)
            .str("ended_by", if out_of_fuel { "fuel" } else { "return" })
            .int("calls", calls)
            .num("ns_per_call", ns_per_call),
        &text,
    );
    Ok(())
}

/// Runs the bench.
pub fn run(args: &mut Args, report: &mut Report) -> Result<()> {
    let skip_host = args.flag("--no-host");
    let skip_qemu = args.flag("--no-qemu");
    let skip_icount = args.flag("--no-icount");
    let machine = MachineOptions::parse(args)?;
    args.finish()?;

    if !skip_host {
        let place = format!("host-{}", std::env::consts::ARCH);
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command.current_dir(paths::root()).args([
            "run",
            "--release",
            "-q",
            "-p",
            "wasm_pack",
            "--",
            "bench",
            "--json",
        ]);
        let text = process::output(&mut command)?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            emit(report, &place, &json_fields(line), line)?;
        }
    }

    if !skip_qemu {
        prereq::ensure_tools()?;
        let kernel = toolchain::build_kernel(machine.toolchain)?;
        let mut config = machine.config(&kernel.image)?;
        if machine.smp.is_none() {
            config.smp = 1;
        }
        config.initrd = None;
        let place = format!("qemu-{}-{}", config.board.name(), config.cpu);
        let mut passes = vec![(place.clone(), None)];
        if !skip_icount {
            // `-icount shift=0`: guest time counts guest instructions (1 ns each), so the
            // figures are AArch64 instructions per call, independent of the host's load.
            passes.push((format!("{place}-icount0"), Some(0)));
        }
        for (place, icount_shift) in passes {
            config.icount_shift = icount_shift;
            let (mut qemu, _) = boot_kernel(&config)?;
            let reply = qemu
                .command_with_timeout("wasm bench", QEMU_BENCH_TIMEOUT)
                .map_err(|e| Error::Qemu(e.to_string()))?;
            let mut rows = 0;
            for line in reply.lines().filter(|l| l.starts_with("[wasm-bench]")) {
                let fields = console_fields(line);
                if let Some(error) = field(&fields, "error") {
                    return Err(Error::Qemu(format!("kernel wasm bench failed: {error}")));
                }
                emit(report, &place, &fields, line)?;
                rows += 1;
            }
            if rows == 0 {
                return Err(Error::Qemu(format!(
                    "the kernel's `wasm bench` printed no results:\n{reply}"
                )));
            }
            qemu.command_expecting_exit("poweroff", 0)
                .map_err(|e| Error::Qemu(e.to_string()))?;
        }
    }
    Ok(())
}
