//! Names for the CPU from MIDR_EL1 (Arm ARM D17.2.100): implementer [31:24], part number [15:4].
//!
//! `info` prints `cpu: cortex-a72`; the harness checks it, and a person reading a bug report wants
//! the core's name, not its hex. Unknown parts print their numbers instead.

use core::fmt;

/// A decoded MIDR value, printable with `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuModel {
    /// The raw MIDR_EL1 value.
    pub midr: u64,
}

impl CpuModel {
    /// Implementer code, MIDR[31:24] (0x41 = Arm).
    pub fn implementer(&self) -> u8 {
        ((self.midr >> 24) & 0xff) as u8
    }

    /// Primary part number, MIDR[15:4].
    pub fn part(&self) -> u16 {
        ((self.midr >> 4) & 0xfff) as u16
    }

    /// The known name, if any.
    pub fn name(&self) -> Option<&'static str> {
        let name = match (self.implementer(), self.part()) {
            (0x41, 0xd03) => "cortex-a53",
            (0x41, 0xd04) => "cortex-a35",
            (0x41, 0xd05) => "cortex-a55",
            (0x41, 0xd07) => "cortex-a57",
            (0x41, 0xd08) => "cortex-a72",
            (0x41, 0xd09) => "cortex-a73",
            (0x41, 0xd0a) => "cortex-a75",
            (0x41, 0xd0b) => "cortex-a76",
            (0x41, 0xd0c) => "neoverse-n1",
            (0x41, 0xd0d) => "cortex-a77",
            (0x41, 0xd40) => "neoverse-v1",
            (0x41, 0xd41) => "cortex-a78",
            (0x41, 0xd49) => "neoverse-n2",
            (0x41, 0xd4f) => "neoverse-v2",
            // QEMU's `-cpu max` reports implementer 0 and part 0x051 ("Q").
            (0x00, 0x051) => "qemu-max",
            _ => return None,
        };
        Some(name)
    }
}

impl fmt::Display for CpuModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(
                f,
                "unknown (implementer {:#04x} part {:#05x})",
                self.implementer(),
                self.part()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_parts() {
        assert_eq!(CpuModel { midr: 0x410f_d083 }.to_string(), "cortex-a72");
        assert_eq!(CpuModel { midr: 0x410f_d034 }.to_string(), "cortex-a53");
        assert_eq!(CpuModel { midr: 0x000f_0510 }.to_string(), "qemu-max");
        assert_eq!(
            CpuModel { midr: 0x5100_1230 }.to_string(),
            "unknown (implementer 0x51 part 0x123)"
        );
    }
}
