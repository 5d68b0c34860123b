//! QEMU integration tests: boot the Anneal kernel, drive its console, assert on what it
//! prints and on its exit status.
//!
//! Run by `cargo xtask test` (it builds the kernel and sets ANNEAL_IMAGE and friends; see
//! `integration::artifacts`). libtest runs the tests in parallel, two at a time on a
//! 2-core machine, so each test keeps to a few seconds of guest time.
//!
//! Adding tests: put them in a module here (one file per area, `mod NAME;` below) and use
//! the helpers of this file: [`virt`]/[`rpi4`] give a configuration for the built image,
//! [`boot`] starts it and waits for the prompt, and tests return [`Outcome`] so that a
//! failure prints the harness's message (with the console transcript) readably.

mod ai;
mod board_virt;
mod console;
mod ebpf;
mod faults;
mod qemu_sh;
mod rpi4;
mod tasks;
mod wasm;

use std::fmt;

use integration::{artifacts, Qemu, QemuConfig};

/// A failed step, printed with its full message (libtest prints `Err` values by Debug).
pub struct Failure(String);

impl<E: fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every QEMU test returns.
pub type Outcome = Result<(), Failure>;

/// Fails the test with a message (and the transcript) unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($qemu:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Failure(format!(
                "{}\nQEMU: {}\nconsole:\n{}",
                format!($($fmt)+),
                $qemu.command_line(),
                $qemu.transcript()
            )));
        }
    };
}

/// A `virt` configuration for the image under test.
pub fn virt() -> Result<QemuConfig, Failure> {
    let mut config = QemuConfig::virt(artifacts::image()?);
    config.qemu = artifacts::qemu();
    Ok(config)
}

/// A `raspi4b` configuration for the image under test.
pub fn rpi4() -> Result<QemuConfig, Failure> {
    let mut config = QemuConfig::rpi4(artifacts::image()?, artifacts::rpi4_dtb()?);
    config.qemu = artifacts::qemu();
    Ok(config)
}

/// Starts QEMU and waits for the banner and the prompt.
pub fn boot(config: &QemuConfig) -> Result<Qemu, Failure> {
    let mut qemu = Qemu::spawn(config)?;
    let log = qemu.boot()?;
    if !log
        .lines()
        .any(|line| line.starts_with(integration::BANNER))
    {
        return Err(Failure(format!(
            "no boot banner line starting with {:?}; boot log:\n{log}",
            integration::BANNER
        )));
    }
    Ok(qemu)
}

/// Powers the kernel off and checks exit status 0 and the kernel's exit line.
pub fn poweroff(qemu: &mut Qemu) -> Outcome {
    let reply = qemu.command_expecting_exit("poweroff", 0)?;
    ensure!(
        qemu,
        reply.contains("[kernel] exit status=0"),
        "poweroff did not print `[kernel] exit status=0`"
    );
    Ok(())
}
