//! `./qemu.sh` with piped input (DESIGN interface 1): the commands run in order and the
//! script exits with the kernel's status.

use std::io::Write;
use std::process::{Command, Stdio};

use integration::artifacts;

use crate::{Failure, Outcome};

/// Runs `./qemu.sh ARGS` with `input` on stdin; returns (exit code, stdout, stderr).
fn qemu_sh(args: &[&str], input: &str) -> Result<(Option<i32>, String, String), Failure> {
    let script = artifacts::workspace_root().join("qemu.sh");
    let mut child = Command::new(&script)
        .args(args)
        .current_dir(artifacts::workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure(format!("cannot run {}: {e}", script.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).replace('\r', ""),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[test]
fn piped_commands_run_and_poweroff_exits_0() -> Outcome {
    let (code, out, err) = qemu_sh(&["--model", "none", "--smp", "2"], "info\npoweroff\n")?;
    let context = format!("stdout:\n{out}\nstderr:\n{err}");
    if code != Some(0) {
        return Err(Failure(format!(
            "exit status {code:?}, expected 0\n{context}"
        )));
    }
    for expected in [
        "board: qemu-virt",
        "cores: 2 online of 2",
        "[kernel] exit status=0",
    ] {
        if !out.contains(expected) {
            return Err(Failure(format!("missing {expected:?}\n{context}")));
        }
    }
    if !err.contains("qemu-system-aarch64") {
        return Err(Failure(format!(
            "qemu.sh should print the QEMU command line\n{context}"
        )));
    }
    Ok(())
}

#[test]
fn piped_panic_passes_status_1_through() -> Outcome {
    let (code, out, err) = qemu_sh(&["--model", "none"], "fault panic\n")?;
    if code != Some(1) {
        return Err(Failure(format!(
            "exit status {code:?}, expected 1\nstdout:\n{out}\nstderr:\n{err}"
        )));
    }
    Ok(())
}
