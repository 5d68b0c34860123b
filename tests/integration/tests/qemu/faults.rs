//! Fatal faults: `fault unmapped|undef|panic` print a decoded report and end QEMU with the
//! kernel's failing exit status (2 after a fatal exception, 1 after a panic).

use integration::QemuConfig;

use crate::{boot, ensure, rpi4, virt, Outcome};

/// Runs `fault KIND` and checks the exit status and the report.
fn fault_exits(config: &QemuConfig, kind: &str, status: i32, must_mention: &[&str]) -> Outcome {
    let mut qemu = boot(config)?;
    let report = qemu.command_expecting_exit(&format!("fault {kind}"), status)?;
    let exit_line = format!("[kernel] exit status={status}");
    ensure!(
        qemu,
        report.contains(&exit_line),
        "the report should end with `{exit_line}`"
    );
    for word in must_mention {
        ensure!(
            qemu,
            report.contains(word),
            "the fault report should mention {word}"
        );
    }
    Ok(())
}

#[test]
fn unmapped_access_is_decoded_and_exits_2() -> Outcome {
    let mut config = virt()?;
    config.smp = 2;
    fault_exits(&config, "unmapped", 2, &["ESR", "FAR", "ELR"])
}

#[test]
fn undefined_instruction_is_decoded_and_exits_2() -> Outcome {
    fault_exits(&virt()?, "undef", 2, &["ESR", "ELR"])
}

#[test]
fn panic_exits_1() -> Outcome {
    fault_exits(&virt()?, "panic", 1, &["panic"])
}

#[test]
fn unmapped_access_is_decoded_and_exits_2_on_rpi4() -> Outcome {
    fault_exits(&rpi4()?, "unmapped", 2, &["ESR", "FAR", "ELR"])
}
