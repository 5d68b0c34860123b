//! `cargo xtask bench ebpf [--json] [--no-host] [--no-qemu] [--no-icount] [--repeat N] [--sizes A,B,...]`:
//! the eBPF interpreter's ns per executed instruction on the five programs of
//! ../shared/bench/ebpf, on the host and inside the kernel under QEMU (`-M virt -cpu
//! cortex-a72`, where the bench README's uBPF and rbpf figures were taken), and the verifier's
//! time and peak memory against program size.
//!
//! Design: every figure comes from the crates' own bench entry points, so the host and the
//! kernel measure exactly the same code: on the host through `ebpf bench --json` (package
//! `ebpf_cli`) and `verifier_bench --json` (example of `ebpf_verifier`, which also counts the
//! real peak heap with a counting allocator); in QEMU through the kernel's `ebpf bench` and
//! `ebpf bench verifier` console commands (generic-timer clock; the kernel has no counting
//! allocator, so in QEMU memory is the verifier's own state accounting). xtask only runs
//! them and reformats their lines, so there is one implementation of each measurement.
//!
//! QEMU runs twice: in normal mode (wall-clock, comparable with the README's uBPF and rbpf
//! figures, but inflated by whatever else the host runs), then with `-icount shift=0`
//! (`where` ends in `-icount0`): guest time then counts guest instructions, so the figure is
//! AArch64 instructions per eBPF instruction, identical run to run.

use std::process::Command;
use std::time::Duration;

use crate::args::Args;
use crate::bench::{boot_kernel, Report};
use crate::error::{Error, Result};
use crate::json::JsonLine;
use crate::run::MachineOptions;
use crate::{paths, prereq, process, toolchain};

/// uBPF's interpreter on the same programs in a Linux guest under QEMU 10, cortex-a72
/// (../shared/bench/ebpf/README.md), ns per instruction.
pub const UBPF_INTERPRETER_NS: (f64, f64) = (42.0, 53.0);
/// rbpf 0.4.1's interpreter, same conditions.
pub const RBPF_INTERPRETER_NS: (f64, f64) = (60.0, 74.0);

/// Program sizes of the verifier bench: up to the default instruction limit (4096) and
/// beyond, so the growth is visible.
pub const VERIFIER_SIZES: &str = "64,256,1024,4096,16384";

/// Longest wait for the kernel's `ebpf bench` (about 270 M eBPF instructions under TCG on a
/// shared host: tens of seconds; ten minutes only stops a hung kernel).
pub const QEMU_BENCH_TIMEOUT: Duration = Duration::from_secs(600);

/// The fields of a flat JSON object line (`{"a":1,"b":"x"}`), values without quotes. The
/// crates' bench lines have no nested objects and no commas or colons inside strings.
pub fn json_fields(line: &str) -> Vec<(String, String)> {
    let body = line.trim().trim_start_matches('{').trim_end_matches('}');
    body.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once(':')?;
            Some((
                key.trim().trim_matches('"').to_string(),
                value.trim().trim_matches('"').to_string(),
            ))
        })
        .collect()
}

/// The `key=value` fields of a console line such as `[ebpf-bench] program=x instructions=5`.
pub fn console_fields(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|word| {
            let (key, value) = word.split_once('=')?;
            Some((key.to_string(), value.trim_matches('"').to_string()))
        })
        .collect()
}

/// Looks a field up by key.
pub fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A numeric field, or a clear error naming the line.
pub fn number(fields: &[(String, String)], key: &str, line: &str) -> Result<f64> {
    field(fields, key)
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| Error::Qemu(format!("bench line without a numeric `{key}`: {line}")))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(paths::root());
    command
}

/// Runs a host bench command and returns its JSON lines.
fn host_json_lines(command: &mut Command) -> Result<Vec<String>> {
    let text = process::output(command)?;
    Ok(text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(String::from)
        .collect())
}

fn emit_interpreter(
    report: &mut Report,
    place: &str,
    fields: &[(String, String)],
    line: &str,
) -> Result<()> {
    let program = field(fields, "program").unwrap_or("?");
    let instructions = number(fields, "instructions", line)?;
    let checked = number(fields, "checked_ns_per_insn", line)?;
    let unchecked = number(fields, "unchecked_ns_per_insn", line)?;
    report.emit(
        JsonLine::new()
            .str("bench", "ebpf")
            .str("metric", "interpreter_ns_per_insn")
            .str("where", place)
            .str("program", program)
            .int("instructions", instructions as u64)
            .num("checked_ns_per_insn", checked)
            .num("unchecked_ns_per_insn", unchecked)
            .num("ubpf_ns_per_insn_min", UBPF_INTERPRETER_NS.0)
            .num("ubpf_ns_per_insn_max", UBPF_INTERPRETER_NS.1)
            .num("rbpf_ns_per_insn_min", RBPF_INTERPRETER_NS.0)
            .num("rbpf_ns_per_insn_max", RBPF_INTERPRETER_NS.1),
        &format!(
            "interpreter {place:<24} {program:<15} {:>10} insns  checked {checked:>6.2} ns/insn  fast {unchecked:>6.2} ns/insn",
            instructions as u64
        ),
    );
    Ok(())
}

fn emit_verifier(
    report: &mut Report,
    place: &str,
    fields: &[(String, String)],
    line: &str,
) -> Result<()> {
    let family = field(fields, "family").unwrap_or("?");
    let insns = number(fields, "insns", line)?;
    let verify_us = number(fields, "verify_us", line)?;
    let explored = number(fields, "states_explored", line)?;
    let state_bytes = number(fields, "state_bytes", line)?;
    let accepted = field(fields, "accepted") == Some("true");
    let mut json = JsonLine::new()
        .str("bench", "ebpf")
        .str("metric", "verifier")
        .str("where", place)
        .str("family", family)
        .int("insns", insns as u64)
        .str("verdict", if accepted { "accept" } else { "reject" })
        .num("verify_us", verify_us)
        .int("states_explored", explored as u64)
        .int("state_bytes", state_bytes as u64);
    let mut text = format!(
        "verifier    {place:<24} {family:<9} {:>6} insns  {verify_us:>10.1} us  {:>8} states  state {:>9} B",
        insns as u64, explored as u64, state_bytes as u64
    );
    if let Some(peak) = field(fields, "peak_heap_bytes").and_then(|v| v.parse::<u64>().ok()) {
        json = json.int("peak_heap_bytes", peak);
        text.push_str(&format!("  peak heap {peak:>9} B"));
    }
    if !accepted {
        text.push_str("  REJECT");
    }
    report.emit(json, &text);
    Ok(())
}

/// Runs the bench.
pub fn run(args: &mut Args, report: &mut Report) -> Result<()> {
    let skip_host = args.flag("--no-host");
    let skip_qemu = args.flag("--no-qemu");
    let skip_icount = args.flag("--no-icount");
    let repeat = args.number("--repeat")?.unwrap_or(3).max(1);
    let sizes = args
        .value("--sizes")?
        .unwrap_or_else(|| VERIFIER_SIZES.to_string());
    let machine = MachineOptions::parse(args)?;
    args.finish()?;

    if !skip_host {
        let place = format!("host-{}", std::env::consts::ARCH);
        let mut interpreter = cargo();
        interpreter.args([
            "run",
            "--release",
            "-q",
            "-p",
            "ebpf_cli",
            "--bin",
            "ebpf",
            "--",
            "bench",
            "--json",
            "--repeat",
        ]);
        interpreter.arg(repeat.to_string());
        for line in host_json_lines(&mut interpreter)? {
            emit_interpreter(report, &place, &json_fields(&line), &line)?;
        }
        let mut verifier = cargo();
        verifier.args([
            "run",
            "--release",
            "-q",
            "-p",
            "ebpf_verifier",
            "--example",
            "verifier_bench",
            "--",
            "--json",
            "--sizes",
            &sizes,
            "--repeat",
        ]);
        verifier.arg(repeat.to_string());
        for line in host_json_lines(&mut verifier)? {
            emit_verifier(report, &place, &json_fields(&line), &line)?;
        }
    }

    if !skip_qemu {
        prereq::ensure_tools()?;
        let kernel = toolchain::build_kernel(machine.toolchain)?;
        let mut config = machine.config(&kernel.image)?;
        // One core, no model: the interpreter is single-threaded and the other vCPUs would
        // only compete with it for the two host cores.
        if machine.smp.is_none() {
            config.smp = 1;
        }
        config.initrd = None;
        let place = format!("qemu-{}-{}", config.board.name(), config.cpu);
        let (mut qemu, _) = boot_kernel(&config)?;
        let reply = qemu
            .command_with_timeout("ebpf bench", QEMU_BENCH_TIMEOUT)
            .map_err(|e| Error::Qemu(e.to_string()))?;
        let mut rows = 0;
        for line in reply.lines().filter(|l| l.starts_with("[ebpf-bench]")) {
            let fields = console_fields(line);
            if let Some(error) = field(&fields, "error") {
                return Err(Error::Qemu(format!("kernel ebpf bench failed: {error}")));
            }
            emit_interpreter(report, &place, &fields, line)?;
            rows += 1;
        }
        if rows == 0 {
            return Err(Error::Qemu(format!(
                "the kernel's `ebpf bench` printed no results:\n{reply}"
            )));
        }
        let reply = qemu
            .command_with_timeout("ebpf bench verifier", QEMU_BENCH_TIMEOUT)
            .map_err(|e| Error::Qemu(e.to_string()))?;
        for line in reply.lines().filter(|l| l.starts_with("[verifier-bench]")) {
            emit_verifier(report, &place, &console_fields(line), line)?;
        }
        qemu.command_expecting_exit("poweroff", 0)
            .map_err(|e| Error::Qemu(e.to_string()))?;

        if !skip_icount {
            // Deterministic pass: with `-icount shift=0` guest time counts guest
            // instructions (1 ns each), so "ns per eBPF instruction" reads as AArch64
            // instructions executed per eBPF instruction, whatever the host's load.
            config.icount_shift = Some(0);
            let place = format!("{place}-icount0");
            let (mut qemu, _) = boot_kernel(&config)?;
            let reply = qemu
                .command_with_timeout("ebpf bench 1", QEMU_BENCH_TIMEOUT)
                .map_err(|e| Error::Qemu(e.to_string()))?;
            for line in reply.lines().filter(|l| l.starts_with("[ebpf-bench]")) {
                emit_interpreter(report, &place, &console_fields(line), line)?;
            }
            qemu.command_expecting_exit("poweroff", 0)
                .map_err(|e| Error::Qemu(e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_console_fields() {
        let json = json_fields(
            r#"{"bench":"ebpf_interp","program":"adler32","instructions":524298,"checked_ns_per_insn":1.880}"#,
        );
        assert_eq!(field(&json, "program"), Some("adler32"));
        assert_eq!(field(&json, "instructions"), Some("524298"));
        let line = "[ebpf-bench] program=tokenize instructions=755747 checked_ns_per_insn=12.50";
        let console = console_fields(line);
        assert_eq!(field(&console, "program"), Some("tokenize"));
        assert_eq!(number(&console, "checked_ns_per_insn", line).unwrap(), 12.5);
        assert!(number(&console, "missing", line).is_err());
    }
}
