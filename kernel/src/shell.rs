//! The console shell: prompt, line editing (kcore::line_editor), and the command table.
//!
//! The contract with the test harness: a banner line starting with `Anneal`, then the prompt
//! `anneal> ` (no newline); input is echoed; every command's output ends with a fresh prompt;
//! unknown commands answer `unknown command: X (try 'help')`; overlong or non-UTF-8 lines get one
//! clear message and are not run. Commands are a static table of [`Command`]s: to add one, add an
//! entry to [`COMMANDS`] (name, usage, one-line summary, function); `help` lists the table.

use crate::arch::aarch64::{cpu, smp, timer};
use crate::{power, println};
use kcore::bootargs::LogLevel;
use kcore::line_editor::{LineEditor, Outcome};
use kcore::shell_words::Words;
use spin::Once;

/// What `info` reports, fixed at boot.
pub struct BootInfo {
    /// `qemu-virt`, `raspberrypi-4b` or `unknown`.
    pub board: &'static str,
    /// CPU cores described by the DTB.
    pub cores_in_tree: usize,
    /// Bytes of RAM in the DTB.
    pub memory_total: u64,
    /// Number of RAM ranges.
    pub memory_ranges: usize,
    /// "v2" or "v3" (or "none").
    pub gic: &'static str,
    /// The initrd (physical), if any.
    pub initrd: Option<kcore::device_tree::PhysicalRange>,
    /// The command line.
    pub bootargs: &'static str,
}

static BOOT_INFO: Once<BootInfo> = Once::new();

/// Records what `info` reports.
pub fn set_boot_info(info: BootInfo) {
    BOOT_INFO.call_once(|| info);
}

/// The boot facts, once recorded.
pub fn boot_info() -> Option<&'static BootInfo> {
    BOOT_INFO.get()
}

/// One console command.
pub struct Command {
    /// The word that runs it.
    pub name: &'static str,
    /// Arguments, for `help`.
    pub usage: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// Runs it with the words after the name and the whole line.
    pub run: fn(arguments: &[&str], line: &str),
}

/// Every command, in the order `help` lists them.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "spawn",
        usage: "NAME [CORE [COUNT]]",
        summary: "start COUNT copies of an embedded EL0 task, optionally pinned to a core (no NAME: list)",
        run: crate::task::command_spawn,
    },
    Command {
        name: "ps",
        usage: "",
        summary: "tasks: id, name, state, core, priority, restarts, CPU ticks",
        run: crate::task::command_ps,
    },
    Command {
        name: "top",
        usage: "[ROUNDS]",
        summary: "tasks with their CPU share, refreshed every second (default 5 rounds)",
        run: crate::task::command_top,
    },
    Command {
        name: "kill",
        usage: "ID",
        summary: "stop a task (it is not restarted; its memory and slot are freed)",
        run: crate::task::command_kill,
    },
    Command {
        name: "sched",
        usage: "",
        summary: "scheduler policy and per-core run-queue statistics (wait p50/p99)",
        run: crate::task::command_sched,
    },
    Command {
        name: "help",
        usage: "",
        summary: "list the commands",
        run: command_help,
    },
    Command {
        name: "info",
        usage: "",
        summary: "board, cpu, cores, memory, heap, gic, uptime, initrd, bootargs",
        run: command_info,
    },
    Command {
        name: "log",
        usage: "[error|warn|info|debug|trace]",
        summary: "show or set the log level",
        run: command_log,
    },
    Command {
        name: "cores",
        usage: "",
        summary: "run a job on every online core (worker pool), show per-core ticks and the pool's counters since boot",
        run: command_cores,
    },
    Command {
        name: "model",
        usage: "",
        summary: "the loaded model: arch, parameters, tensor types, context, memory",
        run: crate::services::model::command_model,
    },
    Command {
        name: "ai",
        usage: "[--greedy] [--max-tokens N] [--seed S] [--raw] <prompt>",
        summary: "generate text with the model (streams; any key stops)",
        run: crate::services::ai::command_ai,
    },
    Command {
        name: "ai-stats",
        usage: "",
        summary: "the last ai run's figures on one machine-readable line",
        run: crate::services::ai::command_ai_stats,
    },
    Command {
        name: "ebpf",
        usage: "selftest|bench [REPEAT|verifier]|maps|count KEY [DELTA]",
        summary: "eBPF in the kernel: conformance subset and multi-core maps, benchmarks, shared maps",
        run: crate::extensions::ebpf::command,
    },
    Command {
        name: "wasm",
        usage: "list|run NAME [args]|info NAME|compile NAME WAT|selftest|bench|counters",
        summary: "WASM modules: run the library, compile WAT in-kernel, self-test, benchmarks",
        run: crate::extensions::wasm::command,
    },
    Command {
        name: "poweroff",
        usage: "",
        summary: "stop the machine (exit status 0)",
        run: command_poweroff,
    },
    Command {
        name: "fault",
        usage: "unmapped|undef|panic|stack",
        summary: "deliberately fault (tests the fault report and exit status)",
        run: command_fault,
    },
];

const PROMPT: &str = "anneal> ";

fn command_help(_arguments: &[&str], _line: &str) {
    for command in COMMANDS {
        let name_and_usage = if command.usage.is_empty() {
            command.name.into()
        } else {
            alloc::format!("{} {}", command.name, command.usage)
        };
        println!("  {name_and_usage:<40} {}", command.summary);
    }
}

const MIB: u64 = 1024 * 1024;

fn command_info(_arguments: &[&str], _line: &str) {
    let Some(info) = boot_info() else {
        println!("info: boot facts not recorded");
        return;
    };
    let (heap_free, heap_total) = crate::memory::heap_usage();
    let uptime = timer::uptime_milliseconds();
    println!("board: {}", info.board);
    println!("cpu: {}", kcore::cpu_model::CpuModel { midr: cpu::midr() });
    println!(
        "cores: {} online of {}",
        smp::online_cores(),
        info.cores_in_tree
    );
    println!(
        "memory: {} MiB in {} range(s)",
        info.memory_total / MIB,
        info.memory_ranges
    );
    println!(
        "heap: {} MiB free of {} MiB",
        heap_free / MIB,
        heap_total / MIB
    );
    println!("gic: {}", info.gic);
    println!("uptime: {}.{:03} s", uptime / 1000, uptime % 1000);
    match info.initrd {
        Some(range) => println!("initrd: {} bytes at {:#x}", range.size, range.base),
        None => println!("initrd: none"),
    }
    println!("bootargs: {}", info.bootargs);
}

fn command_log(arguments: &[&str], _line: &str) {
    match arguments {
        [] => println!("log level: {}", crate::logger::level().name()),
        [level] => match LogLevel::parse(level) {
            Some(level) => {
                crate::logger::set_level(level);
                println!("log level set to {}", level.name());
            }
            None => println!("log: unknown level '{level}' (use error|warn|info|debug|trace)"),
        },
        _ => println!("usage: log [error|warn|info|debug|trace]"),
    }
}

fn command_cores(_arguments: &[&str], _line: &str) {
    use core::sync::atomic::{AtomicU64, Ordering};
    const WORK_PER_CORE: u64 = 300_000;
    let results: [AtomicU64; crate::limits::MAX_CPUS] =
        [const { AtomicU64::new(0) }; crate::limits::MAX_CPUS];
    let started = timer::counter();
    smp::run_on_all_cores(&|index, count| {
        // A fixed amount of floating-point arithmetic per core, the same on every core: timer
        // interrupts land in the middle of it, so equal results on all cores also show that the
        // exception path preserves the FP/SIMD registers the inference kernels live in.
        let mut accumulator = [0.0f32; 4];
        for step in 0..WORK_PER_CORE {
            let x = core::hint::black_box((step % 1000) as f32 * 0.001);
            for (lane, value) in accumulator.iter_mut().enumerate() {
                *value = *value * 0.999 + x * (lane as f32 + 1.0);
            }
        }
        let bits = accumulator.iter().fold(0u64, |hash, value| {
            hash.rotate_left(13) ^ u64::from(value.to_bits())
        });
        if let Some(slot) = results.get(index) {
            slot.store(bits | 1 | ((count as u64) << 56), Ordering::Release);
        }
    });
    let elapsed_us = (timer::counter() - started) * 1_000_000 / timer::frequency();
    let online = smp::online_cores();
    let finished = results
        .iter()
        .take(online)
        .filter(|r| r.load(Ordering::Acquire) != 0)
        .count();
    for (index, core) in smp::PER_CORE.iter().enumerate().take(online) {
        println!(
            "core {index}: mpidr {:#x}, ticks {}, job {}",
            core.mpidr.load(Ordering::Relaxed),
            core.ticks.load(Ordering::Relaxed),
            if results[index].load(Ordering::Acquire) != 0 {
                "done"
            } else {
                "MISSING"
            }
        );
    }
    let first = results[0].load(Ordering::Acquire);
    let identical = results
        .iter()
        .take(online)
        .all(|r| r.load(Ordering::Acquire) == first);
    println!("worker pool: {finished} of {online} cores ran the job in {elapsed_us} us");
    let stats = smp::pool_stats();
    let us = |ticks: u64| ticks * 1_000_000 / timer::frequency().max(1);
    let per_job = |ticks: u64| us(ticks) as f64 / stats.jobs.max(1) as f64;
    println!(
        "pool since boot: {} jobs, {} wake-up SGIs, caller waited {} times in wfi; per job: \
         caller's share {:.1} us, wait for the last share {:.1} us, worker pick-up {:.1} us",
        stats.jobs,
        stats.wake_sgis,
        stats.caller_sleeps,
        per_job(stats.caller_share_ticks),
        per_job(stats.caller_wait_ticks),
        us(stats.pickup_ticks) as f64 / stats.pickups.max(1) as f64,
    );
    println!(
        "pool since boot: jobs took {} ms in all, the caller's work between jobs {} ms",
        us(stats.job_ticks) / 1000,
        us(stats.gap_ticks) / 1000,
    );
    println!(
        "floating-point results: {}",
        if identical {
            "identical on every core"
        } else {
            "DIFFER between cores (FP state corrupted?)"
        }
    );
    // The pool's fixed cost per call (publish, wake by SGI, wait for the last core), which the
    // inference engine pays once per parallel matrix product.
    const ROUND_TRIPS: u64 = 100;
    let started = timer::counter();
    for _ in 0..ROUND_TRIPS {
        smp::run_on_all_cores(&|_, _| {});
    }
    let round_trip_ns =
        (timer::counter() - started) * 1_000_000_000 / timer::frequency() / ROUND_TRIPS;
    println!(
        "empty job round trip: {} us (mean of {ROUND_TRIPS})",
        round_trip_ns / 1000
    );
}

fn command_poweroff(_arguments: &[&str], _line: &str) {
    println!("powering off");
    power::exit(power::EXIT_POWEROFF)
}

#[allow(unsafe_code)]
fn command_fault(arguments: &[&str], _line: &str) {
    match arguments {
        ["unmapped"] => {
            let Some(address) = crate::memory::boot_stack_guard_page() else {
                println!("fault: memory layout not recorded");
                return;
            };
            println!("reading the guard page under core 0's stack at {address:#x}");
            // SAFETY: deliberately unsound by request: the address is an unmapped guard page, so
            // the read raises a translation fault, which the fault handler reports and which ends
            // the machine; the read never completes.
            let value = unsafe { (address as *const u64).read_volatile() };
            println!("unexpected: read {value:#x}");
        }
        ["undef"] => {
            println!("executing an undefined instruction");
            // SAFETY: `udf` raises an undefined-instruction exception, which ends the machine.
            unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
        }
        ["panic"] => panic!("deliberate panic from the console"),
        ["stack"] => {
            println!("recursing until the stack overflows into its guard page");
            let depth = recurse_without_end(0);
            println!("unexpected: recursion returned {depth}");
        }
        _ => println!("usage: fault unmapped|undef|panic|stack"),
    }
}

/// Recursion the compiler cannot turn into a loop: each frame keeps a buffer alive across the
/// call. Used by `fault stack` to prove the guard page turns an overflow into a fault report.
#[inline(never)]
#[allow(unconditional_recursion)] // the point: it ends in the guard page
fn recurse_without_end(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 32]);
    let below = recurse_without_end(core::hint::black_box(depth + 1));
    below.wrapping_add(frame[(depth % 32) as usize])
}

fn dispatch(line: &str) {
    let words = Words::split(line);
    let Some(name) = words.command() else { return };
    match COMMANDS.iter().find(|command| command.name == name) {
        Some(command) => {
            // Core 0 runs tasks only while the shell waits for input.
            crate::task::console_busy();
            (command.run)(words.arguments(), line);
            crate::task::console_idle();
        }
        None => println!("unknown command: {name} (try 'help')"),
    }
}

/// The console loop. Never returns.
pub fn run() -> ! {
    let mut editor = LineEditor::new();
    let mut dropped_reported = 0;
    crate::print!("{PROMPT}");
    loop {
        let byte = crate::console::read_byte();
        let mut echo = |bytes: &[u8]| crate::console::write_raw(bytes);
        match editor.feed(byte, &mut echo) {
            Outcome::Pending => continue,
            Outcome::Line(line) => dispatch(line),
            Outcome::Cancelled => {}
            Outcome::TooLong { length } => println!(
                "error: line of {length} bytes is longer than the {} byte limit; ignored",
                kcore::limits::MAX_CONSOLE_LINE
            ),
            Outcome::NotUtf8 => println!("error: line is not valid UTF-8; ignored"),
        }
        let dropped = crate::console::dropped_input_bytes();
        if dropped != dropped_reported {
            println!(
                "warning: {} input bytes dropped (receive buffer full)",
                dropped - dropped_reported
            );
            dropped_reported = dropped;
        }
        crate::print!("{PROMPT}");
    }
}
