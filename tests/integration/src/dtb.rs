//! What memory the guest's device tree describes, for tests that check `info` against
//! the DTB QEMU really passes (on raspi4b that is the Debian DTB as QEMU patches it, not
//! simply "2 GiB").
//!
//! QEMU writes the exact device tree it would hand the kernel with the machine option
//! `dumpdtb=FILE` (and then exits without booting); `dtc` (installed by xtask) turns it
//! into text, and [`memory_ranges`] reads the `memory@` nodes' `reg` cells using the
//! root's `#address-cells`/`#size-cells`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::qemu::QemuConfig;

/// One RAM range: (base, size) in bytes.
pub type Range = (u64, u64);

/// Reads the memory ranges out of `dtc -O dts` text.
pub fn memory_ranges(dts: &str) -> Result<Vec<Range>, String> {
    let root_cells = |name: &str| -> Result<usize, String> {
        dts.lines()
            .find(|l| {
                l.starts_with('\t') && !l.starts_with("\t\t") && l.trim_start().starts_with(name)
            })
            .and_then(|l| l.split('<').nth(1))
            .and_then(|v| v.trim_end_matches(">;").trim().strip_prefix("0x"))
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or_else(|| format!("root {name} not found"))
    };
    let address_cells = root_cells("#address-cells")?;
    let size_cells = root_cells("#size-cells")?;
    if !(1..=2).contains(&address_cells) || !(1..=2).contains(&size_cells) {
        return Err(format!(
            "unsupported cells: address {address_cells}, size {size_cells}"
        ));
    }
    let mut ranges = Vec::new();
    let mut in_memory = false;
    for line in dts.lines() {
        let trimmed = line.trim();
        if line.starts_with('\t') && !line.starts_with("\t\t") && trimmed.ends_with('{') {
            in_memory = trimmed.starts_with("memory@") || trimmed.starts_with("memory {");
            continue;
        }
        if !in_memory || !trimmed.starts_with("reg = <") {
            continue;
        }
        let cells: Vec<u64> = trimmed
            .trim_start_matches("reg = <")
            .trim_end_matches(">;")
            .split_whitespace()
            .map(|c| u64::from_str_radix(c.trim_start_matches("0x"), 16))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad reg cell in {trimmed:?}: {e}"))?;
        let per_entry = address_cells + size_cells;
        if cells.is_empty() || !cells.len().is_multiple_of(per_entry) {
            return Err(format!(
                "reg {trimmed:?} is not a list of {per_entry}-cell entries"
            ));
        }
        let join = |part: &[u64]| part.iter().fold(0u64, |acc, c| (acc << 32) | c);
        for entry in cells.chunks(per_entry) {
            let size = join(&entry[address_cells..]);
            if size > 0 {
                ranges.push((join(&entry[..address_cells]), size));
            }
        }
    }
    if ranges.is_empty() {
        return Err("no memory node with a non-empty reg".into());
    }
    Ok(ranges)
}

/// The memory ranges of the device tree QEMU passes for `config`.
pub fn guest_memory(config: &QemuConfig) -> Result<Vec<Range>, String> {
    let file: PathBuf = std::env::temp_dir().join(format!(
        "anneal-dumpdtb-{}-{}.dtb",
        std::process::id(),
        config.board.name()
    ));
    let mut dump = config.clone();
    dump.dumpdtb = Some(file.clone());
    let status = Command::new(&dump.qemu)
        .args(dump.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", dump.qemu.display()))?;
    if !status.success() || !file.is_file() {
        return Err(format!(
            "QEMU dumpdtb failed ({status}): {}",
            dump.command_line()
        ));
    }
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&file)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run dtc (device-tree-compiler): {e}"))?;
    let _ = std::fs::remove_file(&file);
    memory_ranges(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cell_sizes_like_the_pi4_tree() {
        let dts = "/ {\n\t#address-cells = <0x02>;\n\t#size-cells = <0x01>;\n\n\
                   \tmemory@0 {\n\t\treg = <0x00 0x00 0x3c000000>;\n\t\tdevice_type = \"memory\";\n\t};\n\
                   \tsoc {\n\t\treg = <0x00 0x7e000000 0x1000>;\n\t};\n};\n";
        assert_eq!(memory_ranges(dts), Ok(vec![(0, 0x3c00_0000)]));
    }

    #[test]
    fn reads_two_cell_sizes_and_several_entries() {
        let dts = "/ {\n\t#size-cells = <0x02>;\n\t#address-cells = <0x02>;\n\
                   \tmemory@40000000 {\n\t\treg = <0x00 0x40000000 0x00 0x30000000 0x01 0x00 0x00 0x40000000>;\n\t};\n};\n";
        assert_eq!(
            memory_ranges(dts),
            Ok(vec![
                (0x4000_0000, 0x3000_0000),
                (0x1_0000_0000, 0x4000_0000)
            ])
        );
    }

    #[test]
    fn rejects_trees_without_memory_or_with_odd_cells() {
        let none = "/ {\n\t#address-cells = <0x02>;\n\t#size-cells = <0x02>;\n};\n";
        assert!(memory_ranges(none).is_err());
        let odd = "/ {\n\t#address-cells = <0x02>;\n\t#size-cells = <0x02>;\n\tmemory@0 {\n\t\treg = <0x00 0x00 0x10>;\n\t};\n};\n";
        assert!(memory_ranges(odd).unwrap_err().contains("4-cell"));
        assert!(memory_ranges("garbage").is_err());
    }
}
