//! `ebpf`: the host tool for eBPF programs (DESIGN.md interface 4).
//!
//! ```text
//! ebpf asm FILE.s [-o OUT.bin]      assemble (default output: FILE.bin)
//! ebpf disasm FILE                  print assembly that re-assembles to the same bytes
//! ebpf verify [--ctx-size N] [--ctx-writable] [--helpers FILE.json] [--max-insns N] FILE
//!                                   (verify.rs, the verifier engineer's)
//! ebpf run [--mem FILE] [--budget N] FILE
//! ebpf bench [--json] [--repeat N] [--wall]  interpreter ns per instruction (host)
//! ```
//!
//! Exit status: 0 success (or ACCEPT), 1 the program was refused (assembly error, REJECT,
//! load or run error), 2 unreadable input or a usage error. Scripts rely on these.

mod load;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use ebpf::runtime::{HelperTable, HostPlatform};
use ebpf::vm::{Program, RunOptions, Vm};

const USAGE: &str = "\
usage: ebpf <command> [options] FILE

FILE is raw bytecode (.bin, 8-byte little-endian slots), assembly (.s/.asm, the
bpf_conformance syntax) or an ELF object from clang -target bpf (.o; FILE.o:SECTION picks a
program section, default the first).

commands:
  asm FILE.s [-o OUT.bin]     assemble; writes OUT.bin (default: FILE with .bin)
  disasm FILE                 print the program as assembly, one instruction a line
  verify [--ctx-size N] [--ctx-writable] [--helpers FILE.json] [--max-insns N]
         [--complexity N] [--stats] FILE
                              prints ACCEPT or `REJECT insn=K: reason`; entry state: r1 =
                              context of N bytes (default 64, read-only unless
                              --ctx-writable), r10 = 512-byte stack; without --helpers the
                              runtime's helpers are allowed
  run [--mem FILE] [--budget N] FILE
                              run with r1 = a copy of the memory file (0 without one),
                              r2 = its length, the standard helpers and the object's maps;
                              prints r0 as an unsigned decimal
  bench [--json] [--repeat N] [--wall]
                              interpreter ns per instruction on the five benchmark
                              programs (best of N, checked and unchecked mode; thread CPU
                              time unless --wall)
  help                        this text

exit status: 0 success/ACCEPT, 1 refused (assembly error, REJECT, load or run error),
2 unreadable input or usage error";

fn usage_error(message: &str) -> ExitCode {
    eprintln!("ebpf: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return usage_error("missing command");
    };
    let rest = &args[1..];
    match command.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        "asm" => asm(rest),
        "disasm" => disasm(rest),
        "verify" => ExitCode::from(verify::run(rest).clamp(0, 255) as u8),
        "run" => run(rest),
        "bench" => bench(rest),
        other => usage_error(&format!("unknown command `{other}`")),
    }
}

fn asm(args: &[String]) -> ExitCode {
    let mut input = None;
    let mut output = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-o" => {
                let Some(out) = args.get(i + 1) else {
                    return usage_error("-o needs a file name");
                };
                output = Some(PathBuf::from(out));
                i += 1;
            }
            flag if flag.starts_with('-') => return usage_error(&format!("unknown option {flag}")),
            file if input.is_none() => input = Some(PathBuf::from(file)),
            _ => return usage_error("asm takes one input file"),
        }
        i += 1;
    }
    let Some(input) = input else {
        return usage_error("asm needs an input file");
    };
    let text = match std::fs::read_to_string(&input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ebpf: {}: cannot read: {e}", input.display());
            return ExitCode::from(2);
        }
    };
    let bytes = match ebpf::asm::assemble_bytes(&text) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}:{e}", input.display());
            return ExitCode::from(1);
        }
    };
    let output = output.unwrap_or_else(|| input.with_extension("bin"));
    if let Err(e) = std::fs::write(&output, &bytes) {
        eprintln!("ebpf: {}: cannot write: {e}", output.display());
        return ExitCode::from(2);
    }
    eprintln!(
        "wrote {} slots ({} bytes) to {}",
        bytes.len() / 8,
        bytes.len(),
        output.display()
    );
    ExitCode::SUCCESS
}

fn one_file(args: &[String], command: &str) -> Result<PathBuf, ExitCode> {
    match args {
        [file] if !file.starts_with('-') => Ok(PathBuf::from(file)),
        _ => Err(usage_error(&format!("{command} takes exactly one FILE"))),
    }
}

fn disasm(args: &[String]) -> ExitCode {
    let file = match one_file(args, "disasm") {
        Ok(f) => f,
        Err(code) => return code,
    };
    let loaded = match load::load(&file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ebpf: {e}");
            return ExitCode::from(2);
        }
    };
    match ebpf::disasm::disassemble(&loaded.slots) {
        Ok(text) => {
            if let Some(section) = &loaded.section {
                println!("# section {section}");
            }
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ebpf: {}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> ExitCode {
    let mut mem = None;
    let mut budget = ebpf::limits::DEFAULT_INSTRUCTION_BUDGET;
    let mut file = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--mem" => {
                let Some(m) = args.get(i + 1) else {
                    return usage_error("--mem needs a file");
                };
                mem = Some(PathBuf::from(m));
                i += 1;
            }
            "--budget" => {
                let Some(n) = args.get(i + 1).and_then(|n| n.parse().ok()) else {
                    return usage_error("--budget needs a number");
                };
                budget = n;
                i += 1;
            }
            flag if flag.starts_with('-') => return usage_error(&format!("unknown option {flag}")),
            f if file.is_none() => file = Some(PathBuf::from(f)),
            _ => return usage_error("run takes one FILE"),
        }
        i += 1;
    }
    let Some(file) = file else {
        return usage_error("run needs a FILE");
    };
    let mut memory = match &mem {
        Some(path) => match std::fs::read(path) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("ebpf: {}: cannot read: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Vec::new(),
    };
    let loaded = match load::load(Path::new(&file)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ebpf: {e}");
            return ExitCode::from(2);
        }
    };
    let maps = match loaded.create_maps() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("ebpf: {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let program = match Program::load(&loaded.slots, &HelperTable::standard(), &maps) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ebpf: {}: load error: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let options = RunOptions {
        instruction_budget: budget,
        ..RunOptions::default()
    };
    match Vm::new().run(
        &program,
        &mut memory,
        &options,
        &PrintingPlatform::default(),
    ) {
        Ok(outcome) => {
            println!("{}", outcome.r0);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ebpf: {}: run error: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

/// The host platform, with `bpf_trace_printk` lines printed to stderr.
#[derive(Default)]
struct PrintingPlatform(HostPlatform);

impl ebpf::runtime::Platform for PrintingPlatform {
    fn now_ns(&self) -> u64 {
        self.0.now_ns()
    }
    fn log(&self, line: &str) {
        eprintln!("[trace] {line}");
    }
    fn random_u32(&self) -> u32 {
        self.0.random_u32()
    }
}

fn bench(args: &[String]) -> ExitCode {
    let mut json = false;
    let mut wall = false;
    let mut repeat = 5;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--json" => json = true,
            "--wall" => wall = true,
            "--repeat" => {
                let Some(n) = args.get(i + 1).and_then(|n| n.parse().ok()) else {
                    return usage_error("--repeat needs a number");
                };
                repeat = n;
                i += 1;
            }
            other => return usage_error(&format!("unknown bench option {other}")),
        }
        i += 1;
    }
    // Thread CPU time by default: on a shared machine, wall time counts the time other
    // processes hold the core. `--wall` measures elapsed time instead.
    let start = Instant::now();
    let cpu_start = cpu_time::ThreadTime::now();
    let clock = move || {
        if wall {
            start.elapsed().as_nanos() as u64
        } else {
            cpu_start.elapsed().as_nanos() as u64
        }
    };
    let results = match ebpf::bench::run_all(&clock, repeat) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ebpf bench: {e}");
            return ExitCode::from(1);
        }
    };
    for r in &results {
        if json {
            println!(
                "{{\"bench\":\"ebpf_interp\",\"program\":\"{}\",\"instructions\":{},\"checked_ns_per_insn\":{:.3},\"unchecked_ns_per_insn\":{:.3},\"checked_ns\":{},\"unchecked_ns\":{},\"host\":\"{}\",\"clock\":\"{}\"}}",
                r.name,
                r.instructions,
                r.checked_ns_per_insn(),
                r.unchecked_ns_per_insn(),
                r.checked_ns,
                r.unchecked_ns,
                std::env::consts::ARCH,
                if wall { "wall" } else { "thread_cpu" }
            );
        } else {
            println!(
                "{:<16} {:>10} insns  checked {:>6.2} ns/insn  unchecked {:>6.2} ns/insn",
                r.name,
                r.instructions,
                r.checked_ns_per_insn(),
                r.unchecked_ns_per_insn()
            );
        }
    }
    ExitCode::SUCCESS
}
