//! QEMU integration test harness for Anneal: start QEMU on a board, wait for the console,
//! send lines, read replies, expect the kernel's exit status.
//!
//! Why a library: `cargo xtask run`, `cargo xtask bench` and the QEMU tests (in
//! `tests/qemu/`) all need the same QEMU command line and the same console handling, so
//! both live here once. The tests pass or fail by what the kernel prints and by its exit
//! status (semihosting), never by a timeout alone: every wait is bounded
//! ([`limits`]) and a crossed bound is a failure that shows the console transcript.
//!
//! Adding a QEMU test: write a `#[test]` in a module under `tests/qemu/` (add `mod NAME;`
//! to `tests/qemu/main.rs`), start with [`Qemu::spawn`] on a [`QemuConfig`] built from
//! [`artifacts`], and assert on [`Qemu::command`] replies and exit statuses.
//!
//! ```no_run
//! use integration::{artifacts, Info, Qemu, QemuConfig};
//! let mut config = QemuConfig::virt(artifacts::image()?);
//! config.qemu = artifacts::qemu();
//! config.smp = 2;
//! let mut qemu = Qemu::spawn(&config)?;
//! qemu.boot()?;
//! let info = Info::parse(&qemu.command("info")?);
//! assert_eq!(info.cores()?, (2, 2));
//! qemu.command_expecting_exit("poweroff", 0)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod artifacts;
pub mod dtb;
pub mod engine;
pub mod harness;
pub mod info;
pub mod limits;
pub mod qemu;

pub use harness::{HarnessError, Qemu, BANNER, PROMPT};
pub use info::{Info, InfoError, InitrdInfo};
pub use qemu::{Board, ConfigError, ConsoleMode, QemuConfig};
