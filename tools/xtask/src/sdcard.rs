//! `cargo xtask image --board rpi4 --out DIR`: the folder to copy onto the FAT boot
//! partition of a Raspberry Pi 4 SD card.
//!
//! It holds what this project makes (kernel8.img, the model as the initramfs, the device
//! tree, config.txt, cmdline.txt) and a README.txt naming the Raspberry Pi firmware files
//! to add: they are Broadcom's and are not shipped here.

use std::path::{Path, PathBuf};

use crate::args::Args;
use crate::error::{io, Error, Result};
use crate::{models, prereq, process, toolchain};

/// The kernel file name the firmware loads (set by `kernel=` in config.txt too).
pub const KERNEL_FILE: &str = "kernel8.img";
/// The device tree file name the firmware looks for on a Pi 4.
pub const DTB_FILE: &str = "bcm2711-rpi-4-b.dtb";

/// config.txt for the given initramfs file name (None: no model).
pub fn config_txt(initramfs: Option<&str>) -> String {
    let mut text = String::from(
        "# Anneal on a Raspberry Pi 4 - read by the GPU firmware (start4.elf) at power-on.\n\
         # Written by `cargo xtask image --board rpi4`; every line says why it is here.\n\
         \n\
         [pi4]\n\
         # Start the ARM cores in AArch64 state: Anneal is a 64-bit kernel.\n\
         arm_64bit=1\n\
         # The kernel: a raw arm64 Image (header included), the same bytes QEMU boots.\n\
         kernel=kernel8.img\n\
         # Load it at 0x80000, where QEMU's raspi4b loads it too, so both boot alike.\n\
         kernel_address=0x80000\n\
         # The firmware passes this device tree to the kernel in x0 (the kernel reads\n\
         # memory, UART, GIC, timer and the cores' spin-table addresses from it).\n\
         device_tree=bcm2711-rpi-4-b.dtb\n",
    );
    if let Some(file) = initramfs {
        text.push_str(&format!(
            "# The model goes in as the initramfs, placed right after the kernel; the\n\
             # firmware records where in /chosen (linux,initrd-start/end) and the kernel\n\
             # reads the weights there in place.\n\
             initramfs {file} followkernel\n"
        ));
    }
    text.push_str(
        "# Turn the serial console on (GPIO 14 = TXD, GPIO 15 = RXD, 115200 8N1).\n\
         enable_uart=1\n\
         # Give GPIO 14/15 the PL011 (UART0) the kernel drives: by default Bluetooth owns\n\
         # it and the pins get the mini UART, whose baud rate drifts with the core clock.\n\
         # Needs overlays/disable-bt.dtbo from the firmware (see README.txt).\n\
         dtoverlay=disable-bt\n\
         # PL011 reference clock 48 MHz: the kernel's baud divisor for 115200 assumes it\n\
         # (it is the Pi 4 firmware default; stated so a changed default cannot break it).\n\
         init_uart_clock=48000000\n\
         # Baud rate the firmware leaves the UART at (the kernel keeps it).\n\
         init_uart_baud=115200\n",
    );
    text
}

/// cmdline.txt: the boot arguments the firmware puts in /chosen/bootargs. No
/// `semihosting` here: that would trap on real hardware.
pub const CMDLINE_TXT: &str = "loglevel=info\n";

/// README.txt for the folder.
pub fn readme_txt(initramfs: Option<&str>) -> String {
    format!(
        "Anneal - Raspberry Pi 4 boot folder\n\
         ===================================\n\
         \n\
         Copy every file of this folder onto the FAT (boot) partition of an SD card,\n\
         then add the Raspberry Pi firmware files listed below.\n\
         \n\
         Made by cargo xtask image --board rpi4:\n\
         \x20 kernel8.img          the Anneal kernel (raw arm64 Image, the same bytes QEMU boots)\n\
         \x20 {model_line}\n\
         \x20 bcm2711-rpi-4-b.dtb  the Pi 4 device tree (from Debian's arm64 Linux kernel package)\n\
         \x20 config.txt           firmware settings, each line commented\n\
         \x20 cmdline.txt          kernel boot arguments\n\
         \n\
         Not shipped - add them yourself (they are Broadcom's firmware, redistributable\n\
         but not part of this project):\n\
         \x20 start4.elf           GPU firmware for the Pi 4\n\
         \x20 fixup4.dat           its memory split table (must match start4.elf)\n\
         \x20 overlays/disable-bt.dtbo   frees the PL011 UART for the console (config.txt uses it)\n\
         Get them from the `boot/` folder of the Raspberry Pi firmware repository\n\
         (github.com/raspberrypi/firmware), or copy them from the boot partition of a\n\
         current Raspberry Pi OS image. bootcode.bin is not needed on a Pi 4 (its\n\
         bootloader is in EEPROM).\n\
         \n\
         Console: a 3.3 V USB serial adapter on GPIO 14 (TXD, pin 8) -> adapter RX,\n\
         GPIO 15 (RXD, pin 10) -> adapter TX, GND (pin 6) -> GND; 115200 baud, 8N1, no\n\
         flow control (e.g. `picocom -b 115200 /dev/ttyUSB0`). Power on: a line starting\n\
         with `Anneal`, then the prompt `anneal> `. Type `help`.\n\
         \n\
         No output? Check TX/RX are crossed and GND connected; that start4.elf,\n\
         fixup4.dat and overlays/disable-bt.dtbo are present; and update the firmware\n\
         (old start4.elf files ignore kernel_address or the arm64 Image header). Adding\n\
         uart_2ndstage=1 to config.txt makes the firmware log its own boot on the UART.\n",
        model_line = match initramfs {
            Some(file) => format!("{file:<20} the model, loaded as the initramfs"),
            None => "(no model: booted with --model none; `ai` will say so)".to_string(),
        }
    )
}

/// Writes the folder; returns the paths written.
pub fn write_folder(
    out: &Path,
    image: &Path,
    dtb: &Path,
    model: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(io("create", out))?;
    let mut written = Vec::new();
    let mut copy = |from: &Path, name: &str| -> Result<()> {
        let to = out.join(name);
        std::fs::copy(from, &to).map_err(io(&format!("copy {} to", from.display()), &to))?;
        written.push(to);
        Ok(())
    };
    copy(image, KERNEL_FILE)?;
    copy(dtb, DTB_FILE)?;
    let initramfs = match model {
        Some(path) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::Model(format!("{} has no file name", path.display())))?;
            copy(path, &name)?;
            Some(name)
        }
        None => None,
    };
    let mut text = |name: &str, contents: String| -> Result<()> {
        let to = out.join(name);
        std::fs::write(&to, contents).map_err(io("write", &to))?;
        written.push(to);
        Ok(())
    };
    text("config.txt", config_txt(initramfs.as_deref()))?;
    text("cmdline.txt", CMDLINE_TXT.to_string())?;
    text("README.txt", readme_txt(initramfs.as_deref()))?;
    Ok(written)
}

/// Runs `cargo xtask image --board rpi4 --out DIR [--model PATH|NAME|none]`.
pub fn command(args: &mut Args) -> Result<()> {
    let board = args.value("--board")?.unwrap_or_else(|| "rpi4".to_string());
    if board != "rpi4" {
        return Err(Error::Usage(format!(
            "image --board {board}: only rpi4 needs an image folder (virt boots target/anneal/Image directly)"
        )));
    }
    let out = args
        .value("--out")?
        .ok_or_else(|| Error::Usage("image needs --out DIR".into()))?;
    let model = args.value("--model")?;
    let choice = match args.value("--toolchain")? {
        Some(v) => toolchain::Choice::parse(&v)?,
        None => toolchain::Choice::Auto,
    };
    args.finish()?;
    let kernel = toolchain::build_kernel(choice)?;
    let dtb = prereq::ensure_rpi4_dtb()?;
    let model = models::resolve_model_arg(model.as_deref())?;
    let written = write_folder(Path::new(&out), &kernel.image, &dtb, model.as_deref())?;
    for path in &written {
        process::step(&format!("wrote {}", path.display()));
    }
    println!(
        "{out}: copy it onto the SD card's FAT boot partition and add start4.elf, fixup4.dat and overlays/disable-bt.dtbo (see {out}/README.txt)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_txt_has_every_setting_with_a_comment() {
        let text = config_txt(Some("model.gguf"));
        for line in [
            "arm_64bit=1",
            "kernel=kernel8.img",
            "initramfs model.gguf followkernel",
            "enable_uart=1",
            "dtoverlay=disable-bt",
            "device_tree=bcm2711-rpi-4-b.dtb",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}");
        }
        // Every setting line follows a comment line.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.is_empty() && !line.starts_with('#') && !line.starts_with('[') {
                assert!(
                    lines[i - 1].starts_with('#'),
                    "{line} has no comment above it"
                );
            }
        }
        assert!(!config_txt(None).contains("initramfs"));
    }

    #[test]
    fn writes_a_complete_folder() {
        let dir = std::env::temp_dir().join(format!("anneal-sdcard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let image = dir.join("Image");
        let dtb = dir.join("x.dtb");
        let model = dir.join("m.gguf");
        std::fs::write(&image, b"kernel").expect("write");
        std::fs::write(&dtb, b"dtb").expect("write");
        std::fs::write(&model, b"GGUF").expect("write");
        let out = dir.join("sd");
        write_folder(&out, &image, &dtb, Some(&model)).expect("folder");
        assert_eq!(
            std::fs::read(out.join("kernel8.img")).expect("k"),
            b"kernel"
        );
        assert_eq!(
            std::fs::read(out.join("bcm2711-rpi-4-b.dtb")).expect("d"),
            b"dtb"
        );
        assert_eq!(std::fs::read(out.join("m.gguf")).expect("m"), b"GGUF");
        let config = std::fs::read_to_string(out.join("config.txt")).expect("c");
        assert!(config.contains("initramfs m.gguf followkernel"));
        let readme = std::fs::read_to_string(out.join("README.txt")).expect("r");
        for name in [
            "start4.elf",
            "fixup4.dat",
            "disable-bt.dtbo",
            "bootcode.bin is not needed",
        ] {
            assert!(readme.contains(name), "README.txt should name {name}");
        }
        let cmdline = std::fs::read_to_string(out.join("cmdline.txt")).expect("cmd");
        assert!(!cmdline.contains("semihosting"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
