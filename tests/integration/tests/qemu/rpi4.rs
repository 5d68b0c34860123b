//! QEMU `raspi4b`: the same image boots on the Raspberry Pi 4 board with its device tree,
//! brings all four cores up through the spin table, and reports the board and memory.

use integration::{artifacts, Info};

use crate::{boot, ensure, poweroff, rpi4, Outcome};

#[test]
fn boots_on_four_cores_with_info_right() -> Outcome {
    let config = rpi4()?;
    // The memory `info` reports must be what the device tree QEMU passes describes
    // (QEMU patches the Debian DTB: 960 MiB at 0 on QEMU 10.0, not the 2 GiB of -m;
    // on a real Pi 4 the firmware adds the ranges above 1 GiB).
    let ranges = integration::dtb::guest_memory(&config)?;
    let dtb_mib: u64 = ranges.iter().map(|(_, size)| size).sum::<u64>() >> 20;
    let mut qemu = boot(&config)?;
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
    ensure!(
        qemu,
        info.memory()? == (dtb_mib, ranges.len() as u32),
        "memory should be the DTB's {dtb_mib} MiB in {} range(s) {ranges:x?}, got {:?}",
        ranges.len(),
        info.memory()?
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
