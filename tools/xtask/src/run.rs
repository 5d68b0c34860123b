//! `cargo xtask run` (what `./qemu.sh` calls): build what is needed, print the QEMU
//! command line, boot with the console on stdio, and exit with the kernel's status.

use std::io::IsTerminal;
use std::process::Command;

use integration::{Board, ConsoleMode, QemuConfig};

use crate::args::Args;
use crate::error::{Error, Result};
use crate::{models, prereq, process, toolchain};

/// Options shared by `run` and `bench`: which machine and what it is given.
#[derive(Debug, Clone)]
pub struct MachineOptions {
    /// Board.
    pub board: Board,
    /// Cores (None: board default).
    pub smp: Option<u32>,
    /// Memory in MiB (None: board default).
    pub mem_mib: Option<u32>,
    /// GIC version for virt.
    pub gic: Option<u8>,
    /// CPU model for virt.
    pub cpu: Option<String>,
    /// `--model` as given (path, manifest name, `none`, or None for the default).
    pub model: Option<String>,
    /// `loglevel=` boot argument.
    pub loglevel: Option<String>,
    /// Toolchain route.
    pub toolchain: toolchain::Choice,
}

impl MachineOptions {
    /// Reads `--board --smp --mem --gic --cpu --model --loglevel --toolchain`.
    pub fn parse(args: &mut Args) -> Result<MachineOptions> {
        let board = match args.value("--board")? {
            None => Board::Virt,
            Some(name) => Board::parse(&name)
                .ok_or_else(|| Error::Usage(format!("--board {name}: use virt or rpi4")))?,
        };
        let gic = match args.number("--gic")? {
            None => None,
            Some(v @ (2 | 3)) => Some(v as u8),
            Some(v) => return Err(Error::Usage(format!("--gic {v}: use 2 or 3"))),
        };
        Ok(MachineOptions {
            board,
            smp: args.number("--smp")?,
            mem_mib: args.number("--mem")?,
            gic,
            cpu: args.value("--cpu")?,
            model: args.value("--model")?,
            loglevel: args.value("--loglevel")?,
            toolchain: match args.value("--toolchain")? {
                Some(v) => toolchain::Choice::parse(&v)?,
                None => toolchain::Choice::Auto,
            },
        })
    }

    /// Default core count for virt: the host's cores, at most 4 (more vCPUs than host
    /// cores only adds contention under TCG).
    pub fn default_virt_smp() -> u32 {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u32)
    }

    /// The QEMU configuration for `image`, with the device tree and model resolved.
    pub fn config(&self, image: &std::path::Path) -> Result<QemuConfig> {
        let mut config = match self.board {
            Board::Virt => {
                let mut c = QemuConfig::virt(image);
                c.smp = Self::default_virt_smp();
                c
            }
            Board::Rpi4 => QemuConfig::rpi4(image, prereq::ensure_rpi4_dtb()?),
        };
        if let Some(smp) = self.smp {
            config.smp = smp;
        }
        if let Some(mem) = self.mem_mib {
            config.mem_mib = mem;
        }
        if let Some(gic) = self.gic {
            config.gic = gic;
        }
        if let Some(cpu) = &self.cpu {
            config.cpu = cpu.clone();
        }
        if let Some(qemu) =
            std::env::var_os(integration::artifacts::QEMU_VAR).filter(|v| !v.is_empty())
        {
            config.qemu = qemu.into();
        }
        config.loglevel = self.loglevel.clone();
        config.validate().map_err(|e| Error::Usage(e.to_string()))?;
        config.initrd = models::resolve_model_arg(self.model.as_deref())?;
        Ok(config)
    }
}

/// Runs `cargo xtask run ...`; returns the exit status to pass on.
pub fn command(args: &mut Args) -> Result<i32> {
    let machine = MachineOptions::parse(args)?;
    let gdb = args.flag("--gdb");
    args.finish()?;
    prereq::ensure_tools()?;
    let kernel = toolchain::build_kernel_with(machine.toolchain, toolchain::Verbosity::OnFailure)?;
    let mut config = machine.config(&kernel.image)?;
    config.gdb = gdb;
    config.console = if std::io::stdin().is_terminal() {
        ConsoleMode::Multiplexed
    } else {
        ConsoleMode::Plain
    };
    eprintln!("{}", config.command_line());
    if config.console == ConsoleMode::Multiplexed {
        eprintln!("(console on this terminal; Ctrl-A X quits QEMU, `poweroff` ends the kernel)");
    }
    if gdb {
        eprintln!(
            "QEMU waits for gdb on TCP port 1234. In another terminal:\n  \
             gdb-multiarch {} -ex 'target remote :1234'\n\
             then `continue` (or set breakpoints first, e.g. `break _start`).",
            kernel.elf.display()
        );
    }
    let status = Command::new(&config.qemu)
        .args(config.args())
        .status()
        .map_err(|source| Error::Spawn {
            program: config.qemu.display().to_string(),
            source,
        })?;
    match status.code() {
        Some(code) => Ok(code),
        None => {
            process::step("QEMU was killed by a signal");
            Ok(1)
        }
    }
}
