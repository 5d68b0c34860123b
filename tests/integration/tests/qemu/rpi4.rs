//! QEMU `raspi4b`: the same image boots on the Raspberry Pi 4 board with its device tree,
//! brings all four cores up through the spin table, and reports the board and memory.

use integration::{artifacts, Info};

use crate::{boot, ensure, poweroff, rpi4, Outcome};

#[test]
fn boots_on_four_cores_with_info_right() -> Outcome {
    let mut qemu = boot(&rpi4()?)?;
    let info = Info::parse(&qemu.command("info")?);
    ensure!(
        qemu,
        info.board()? == "raspberrypi-4b",
        "board should be raspberrypi-4b"
    );
    ensure!(
        qemu,
        info.cores()? == (4, 4),
        "all four cores should be online"
    );
    let (mib, ranges) = info.memory()?;
    // QEMU's raspi4b has 2 GiB; the device tree describes it (less what the firmware
    // reserves) in one or more ranges, the part above 1 GiB included.
    ensure!(
        qemu,
        (1024..=2048).contains(&mib) && ranges >= 1,
        "memory should come from the DTB (above 1 GiB, at most 2048 MiB), got {mib} MiB in {ranges}"
    );
    ensure!(qemu, info.gic()? == 2, "the BCM2711 has a GIC-400 (v2)");
    ensure!(qemu, info.initrd()?.is_none(), "no -initrd was given");
    poweroff(&mut qemu)
}

#[test]
fn loads_the_model_as_initramfs() -> Outcome {
    let model = artifacts::model()?;
    let size = std::fs::metadata(&model)?.len();
    let mut config = rpi4()?;
    config.initrd = Some(model);
    let mut qemu = boot(&config)?;
    let info = Info::parse(&qemu.command("info")?);
    let initrd = info.initrd()?;
    ensure!(
        qemu,
        initrd.map(|i| i.bytes) == Some(size),
        "initrd should be the model's {size} bytes, got {initrd:?}"
    );
    poweroff(&mut qemu)
}
