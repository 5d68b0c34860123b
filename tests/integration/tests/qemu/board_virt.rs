//! QEMU `virt`: boots on 1 and 4 cores, with GICv2 and GICv3, with `-cpu max`, and `info`
//! reports exactly the cores, memory and initrd QEMU was given.

use integration::{artifacts, Info};

use crate::{boot, ensure, poweroff, virt, Outcome};

/// Boots with the given cores, memory and GIC and checks `info` against them.
fn boots_and_reports(smp: u32, mem_mib: u32, gic: u8, cpu: &str) -> Outcome {
    let mut config = virt()?;
    config.smp = smp;
    config.mem_mib = mem_mib;
    config.gic = gic;
    config.cpu = cpu.to_string();
    let mut qemu = boot(&config)?;
    let info = Info::parse(&qemu.command("info")?);
    ensure!(
        qemu,
        info.board()? == "qemu-virt",
        "board should be qemu-virt"
    );
    ensure!(
        qemu,
        info.cores()? == (smp, smp),
        "cores should be {smp} online of {smp}, got {:?}",
        info.cores()?
    );
    ensure!(
        qemu,
        info.memory()?.0 == u64::from(mem_mib),
        "memory should be the {mem_mib} MiB given with -m, got {:?}",
        info.memory()?
    );
    ensure!(qemu, info.gic()? == gic, "gic should be v{gic}");
    ensure!(qemu, info.initrd()?.is_none(), "no -initrd was given");
    ensure!(
        qemu,
        info.bootargs()?
            .split_whitespace()
            .any(|a| a == "semihosting"),
        "bootargs should carry the -append text"
    );
    poweroff(&mut qemu)
}

#[test]
fn boots_on_one_core() -> Outcome {
    boots_and_reports(1, 512, 3, "cortex-a72")
}

#[test]
fn boots_on_four_cores() -> Outcome {
    boots_and_reports(4, 1024, 3, "cortex-a72")
}

#[test]
fn boots_with_gicv2_on_two_cores_and_odd_memory() -> Outcome {
    boots_and_reports(2, 768, 2, "cortex-a72")
}

#[test]
fn boots_with_gicv3_on_three_cores() -> Outcome {
    boots_and_reports(3, 1536, 3, "cortex-a72")
}

#[test]
fn boots_with_cpu_max() -> Outcome {
    boots_and_reports(2, 512, 3, "max")
}

#[test]
fn reports_the_model_initrd() -> Outcome {
    let model = artifacts::model()?;
    let size = std::fs::metadata(&model)?.len();
    let mut config = virt()?;
    config.initrd = Some(model);
    config.loglevel = Some("info".into());
    let mut qemu = boot(&config)?;
    let info = Info::parse(&qemu.command("info")?);
    let initrd = info.initrd()?;
    ensure!(
        qemu,
        initrd.map(|i| i.bytes) == Some(size),
        "initrd should be the model's {size} bytes, got {initrd:?}"
    );
    ensure!(
        qemu,
        info.bootargs()? == "semihosting loglevel=info",
        "bootargs should be the -append text"
    );
    poweroff(&mut qemu)
}

#[test]
fn device_tree_reader_agrees_with_qemu_memory() -> Outcome {
    // Checks the harness's DTB reader (used by the rpi4 memory test) on a machine whose
    // memory is known: virt puts exactly -m at 0x4000_0000.
    let mut config = virt()?;
    config.mem_mib = 768;
    let ranges = integration::dtb::guest_memory(&config)?;
    if ranges != vec![(0x4000_0000, 768 << 20)] {
        return Err(crate::Failure(format!(
            "virt -m 768M: DTB memory {ranges:x?}"
        )));
    }
    Ok(())
}
