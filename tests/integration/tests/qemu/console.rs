//! The console: help, uptime advancing on timer interrupts, log levels, and hostile input
//! (unknown commands, overlong lines, control and non-UTF-8 bytes) that must get an answer
//! while the kernel keeps running.

use std::time::Duration;

use integration::{limits, Info, Qemu, QemuConfig};

use crate::{boot, ensure, poweroff, rpi4, virt, Outcome};

#[test]
fn help_lists_the_commands() -> Outcome {
    let mut qemu = boot(&virt()?)?;
    let reply = qemu.command("help")?;
    for command in ["help", "info", "log", "poweroff", "fault"] {
        ensure!(
            qemu,
            reply.contains(command),
            "help should mention `{command}`"
        );
    }
    poweroff(&mut qemu)
}

/// Reads uptime twice with host time passing between; the second must be later.
fn uptime_advances(config: &QemuConfig) -> Outcome {
    let mut qemu = boot(config)?;
    let first = Info::parse(&qemu.command("info")?).uptime_ms()?;
    std::thread::sleep(Duration::from_millis(1200));
    let second = Info::parse(&qemu.command("info")?).uptime_ms()?;
    ensure!(
        qemu,
        second > first,
        "uptime should advance: {first} ms then {second} ms"
    );
    poweroff(&mut qemu)
}

#[test]
fn uptime_advances_on_virt() -> Outcome {
    let mut config = virt()?;
    config.smp = 2;
    uptime_advances(&config)
}

#[test]
fn uptime_advances_on_rpi4() -> Outcome {
    uptime_advances(&rpi4()?)
}

#[test]
fn log_level_changes_and_bad_levels_are_refused() -> Outcome {
    let mut qemu = boot(&virt()?)?;
    qemu.command("log debug")?;
    let refused = qemu.command("log shouting")?;
    ensure!(
        qemu,
        !refused.trim().is_empty(),
        "a bad log level needs an answer"
    );
    qemu.command("log info")?;
    let info = Info::parse(&qemu.command("info")?);
    ensure!(
        qemu,
        info.board()? == "qemu-virt",
        "kernel should still answer"
    );
    poweroff(&mut qemu)
}

/// Unknown commands, an overlong line and garbage bytes each get an answer (a reply
/// before the next prompt), and the kernel still runs `info` afterwards.
fn survives_hostile_input(config: &QemuConfig) -> Outcome {
    let mut qemu = boot(config)?;
    let unknown = qemu.command("frobnicate --now")?;
    ensure!(
        qemu,
        !unknown.trim().is_empty(),
        "an unknown command needs an answer"
    );

    let overlong = "x".repeat(limits::OVERLONG_LINE_BYTES);
    let reply = qemu.command(&overlong)?;
    ensure!(
        qemu,
        !reply.trim().is_empty(),
        "an overlong line needs an answer"
    );

    // Control bytes, an escape sequence, DEL, NUL, tabs and bytes that are not UTF-8.
    let garbage: &[u8] = b"\x1b[A\x1b[2J\x7f\x00\x07\t\xff\xfe\xc3(\x80zz\x08\x08\n";
    qemu.send_bytes(garbage)?;
    qemu.wait_for(integration::PROMPT, limits::COMMAND_TIMEOUT)?;

    let board = config.board.info_name();
    let info = Info::parse(&qemu.command("info")?);
    ensure!(
        qemu,
        info.board()? == board,
        "kernel should still answer `info` after garbage"
    );
    poweroff(&mut qemu)
}

#[test]
fn hostile_input_gets_answers_on_virt() -> Outcome {
    survives_hostile_input(&virt()?)
}

#[test]
fn hostile_input_gets_answers_on_rpi4() -> Outcome {
    survives_hostile_input(&rpi4()?)
}

#[test]
fn end_of_input_does_not_stop_the_kernel() -> Outcome {
    // A pipe that ends (EOF on QEMU's stdin) must not look like a command or a crash:
    // the kernel stays up until it is told to exit. Checked by sending a command and
    // closing input, then reading its complete reply and the next prompt.
    let mut qemu: Qemu = boot(&virt()?)?;
    qemu.send_line("info")?;
    qemu.close_input();
    let text = qemu.wait_for(integration::PROMPT, limits::COMMAND_TIMEOUT)?;
    ensure!(
        qemu,
        text.contains("board: qemu-virt"),
        "info should be answered"
    );
    Ok(())
}
