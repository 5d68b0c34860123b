//! `cargo xtask bench <what> [--json]`: figures, never pass/fail. With `--json`, one JSON
//! object a line (DESIGN interface 3); without, a readable table.
//!
//! Benches are a registry ([`BENCHES`]): a name, one line of help, and a function. To add
//! one (`infer`, `ebpf`, `wasm`, `kernel`), write `fn run_NAME(args: &mut Args, out:
//! &mut Report) -> Result<()>` in a module of your own, take your flags from `args` (call
//! `args.finish()`), emit each configuration with [`Report::emit`], and add a line to
//! [`BENCHES`]. [`boot_kernel`] gives a booted kernel on any machine configuration
//! (`-icount` included) for in-QEMU measurements.

use std::time::{Duration, Instant};

use integration::{Qemu, QemuConfig};

use crate::args::Args;
use crate::error::{Error, Result};
use crate::json::JsonLine;
use crate::run::MachineOptions;
use crate::{limits, models, prereq, toolchain};

/// One registered bench.
pub struct Bench {
    /// Name on the command line.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Runs it.
    pub run: fn(&mut Args, &mut Report) -> Result<()>,
}

/// Every bench `cargo xtask bench` knows.
pub const BENCHES: &[Bench] = &[Bench {
    name: "boot",
    about:
        "time from QEMU start to the first console prompt (median of 5) and the kernel image size",
    run: run_boot,
},
Bench {
    name: "infer",
    about: "in-kernel inference: prompt/generation tok/s at 1, 2, 4 cores, time to first token, peak memory, guest instructions per token (-icount)",
    run: crate::bench_infer::run_infer,
},
Bench {
    name: "ebpf",
    about: "eBPF interpreter ns/instruction (host and in QEMU virt cortex-a72) and verifier time/memory against size",
    run: crate::bench_ebpf::run,
},
Bench {
    name: "wasm",
    about: "WASM call overhead in QEMU: empty export, host call, loops per fuel setting (host for comparison)",
    run: crate::bench_wasm::run,
},
Bench {
    name: "kernel",
    about: "microkernel core in QEMU: syscall, IPC same/cross core, context switch, 2 ms sleep wake-up p50/p99 idle and under batch load (wall and -icount)",
    run: crate::bench_kernel::run,
}];

/// Where results go: JSON lines or a table on stdout.
pub struct Report {
    json: bool,
}

impl Report {
    /// Prints one result: the JSON object, or `text` for people.
    pub fn emit(&mut self, line: JsonLine, text: &str) {
        if self.json {
            println!("{}", line.render());
        } else {
            println!("{text}");
        }
    }
}

/// Runs `cargo xtask bench <what> [--json] ...`.
pub fn command(args: &mut Args) -> Result<()> {
    let json = args.flag("--json");
    let known: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
    let name = args
        .positional()
        .ok_or_else(|| Error::Usage(format!("bench needs a name: one of {}", known.join(", "))))?;
    let bench = BENCHES.iter().find(|b| b.name == name).ok_or_else(|| {
        Error::Usage(format!(
            "unknown bench {name:?}: known benches are {}",
            known.join(", ")
        ))
    })?;
    let mut report = Report { json };
    (bench.run)(args, &mut report)
}

/// Median of a non-empty list (mean of the middle two for even lengths).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Starts QEMU with `config` and waits for the first prompt; returns the running QEMU and
/// the time from spawn to prompt.
pub fn boot_kernel(config: &QemuConfig) -> Result<(Qemu, Duration)> {
    let start = Instant::now();
    let mut qemu = Qemu::spawn(config).map_err(|e| Error::Qemu(e.to_string()))?;
    qemu.boot().map_err(|e| Error::Qemu(e.to_string()))?;
    Ok((qemu, start.elapsed()))
}

fn run_boot(args: &mut Args, report: &mut Report) -> Result<()> {
    let runs = args
        .number("--runs")?
        .map_or(limits::BENCH_BOOT_RUNS, |n| n.max(1) as usize);
    let machine = MachineOptions::parse(args)?;
    args.finish()?;
    prereq::ensure_tools()?;
    let kernel = toolchain::build_kernel(machine.toolchain)?;
    report.emit(
        JsonLine::new()
            .str("bench", "boot")
            .str("metric", "image_size")
            .int("image_bytes", kernel.image_bytes),
        &format!(
            "kernel image: {} bytes ({})",
            kernel.image_bytes,
            kernel.image.display()
        ),
    );
    let model = models::ensure(&models::default_model()?)?;
    // The configurations a user boots: one core without a model (the bare kernel), the
    // default `./qemu.sh` (all host cores, model as initrd), and the Pi 4 with the model.
    // `--board/--smp/--model...` given on the command line replace this list by one.
    let explicit = machine.smp.is_some()
        || machine.model.is_some()
        || machine.board != integration::Board::Virt
        || machine.mem_mib.is_some()
        || machine.gic.is_some()
        || machine.cpu.is_some();
    let mut configs: Vec<QemuConfig> = Vec::new();
    if explicit {
        configs.push(machine.config(&kernel.image)?);
    } else {
        let mut bare = machine.config(&kernel.image)?;
        bare.smp = 1;
        bare.initrd = None;
        configs.push(bare);
        let mut default = machine.config(&kernel.image)?;
        default.initrd = Some(model.clone());
        configs.push(default);
        let rpi4 = MachineOptions {
            board: integration::Board::Rpi4,
            ..machine.clone()
        };
        let mut pi = rpi4.config(&kernel.image)?;
        pi.initrd = Some(model);
        configs.push(pi);
    }
    for config in configs {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let (mut qemu, elapsed) = boot_kernel(&config)?;
            times.push(elapsed.as_secs_f64() * 1000.0);
            // Each run must end the way a healthy kernel ends, or the figure means nothing.
            qemu.command_expecting_exit("poweroff", 0)
                .map_err(|e| Error::Qemu(e.to_string()))?;
        }
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let max = times.iter().copied().fold(0.0, f64::max);
        let median_ms = median(&mut times);
        let initrd_bytes = config
            .initrd
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        report.emit(
            JsonLine::new()
                .str("bench", "boot")
                .str("board", config.board.name())
                .int("smp", u64::from(config.smp))
                .int("mem_mib", u64::from(config.mem_mib))
                .int("initrd_bytes", initrd_bytes)
                .int("runs", runs as u64)
                .num("median_ms", (median_ms * 10.0).round() / 10.0)
                .num("min_ms", (min * 10.0).round() / 10.0)
                .num("max_ms", (max * 10.0).round() / 10.0)
                .int("image_bytes", kernel.image_bytes),
            &format!(
                "boot to prompt  board={:<5} smp={} mem={}M initrd={:>9} B: median {:>7.1} ms (min {:.1}, max {:.1}, {runs} runs)",
                config.board.name(),
                config.smp,
                config.mem_mib,
                initrd_bytes,
                median_ms,
                min,
                max
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_lists() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn unknown_bench_names_list_the_known_ones() {
        let mut args = Args::new(vec!["warp".into()]);
        let err = command(&mut args).unwrap_err().to_string();
        assert!(err.contains("unknown bench \"warp\""), "{err}");
        assert!(err.contains("boot"), "{err}");
        let mut args = Args::new(vec![]);
        assert!(command(&mut args)
            .unwrap_err()
            .to_string()
            .contains("one of boot"));
    }
}
