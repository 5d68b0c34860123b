//! Running programs: every step xtask takes is printed before it runs (`==> ...`), so a
//! user sees what is installed and built; failures name the command and its status.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Prints a step.
pub fn step(message: &str) {
    eprintln!("==> {message}");
}

/// The command as a shell-like string, for messages.
pub fn describe(command: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            words.push(format!(
                "{}={}",
                key.to_string_lossy(),
                integration::qemu::shell_quote(&value.to_string_lossy())
            ));
        }
    }
    words.push(integration::qemu::shell_quote(
        &command.get_program().to_string_lossy(),
    ));
    words.extend(
        command
            .get_args()
            .map(|a| integration::qemu::shell_quote(&a.to_string_lossy())),
    );
    words.join(" ")
}

/// Runs a command with inherited stdio after printing it; fails on a non-zero status.
pub fn run(command: &mut Command) -> Result<()> {
    step(&describe(command));
    let status = status_of(command)?;
    check(command, status)
}

fn status_of(command: &mut Command) -> Result<ExitStatus> {
    command.status().map_err(|source| Error::Spawn {
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    })
}

fn check(command: &Command, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            command: describe(command),
            status: status.code(),
        })
    }
}

/// Runs a command and returns its stdout (stderr inherited); fails on a non-zero status.
pub fn output(command: &mut Command) -> Result<String> {
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| Error::Spawn {
            program: command.get_program().to_string_lossy().into_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::CommandFailed {
            command: describe(command),
            status: out.status.code(),
        })
    }
}

/// Runs a command quietly and returns its stdout, or `None` if it cannot run or fails
/// (for probes such as `qemu-system-aarch64 --version`).
pub fn probe<S: AsRef<OsStr>>(program: S, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command (printed) with a time limit; kills it when the limit passes.
pub fn run_with_timeout(command: &mut Command, limit: Duration) -> Result<()> {
    step(&format!(
        "{} (time limit {} s)",
        describe(command),
        limit.as_secs()
    ));
    let mut child = command.spawn().map_err(|source| Error::Spawn {
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return check(command, status),
            Ok(None) if start.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::CommandFailed {
                    command: describe(command),
                    status: None,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(source) => {
                return Err(Error::Spawn {
                    program: command.get_program().to_string_lossy().into_owned(),
                    source,
                })
            }
        }
    }
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// True when xtask runs as root (so apt-get needs no sudo).
pub fn is_root() -> bool {
    probe("id", &["-u"]).is_some_and(|uid| uid.trim() == "0")
}
