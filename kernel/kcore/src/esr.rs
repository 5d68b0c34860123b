//! Decoding of the Exception Syndrome Register (ESR_ELx) into words a person can act on.
//!
//! A fault report that says "ESR=0x96000007" makes the reader open the Arm ARM; one that says
//! "data abort from EL1 (current EL), translation fault level 3, read" does not. The encoding is
//! Arm ARM D17.2.37 (ESR_EL1): EC in bits [31:26], IL in bit 25, ISS in [24:0]. For aborts the
//! ISS holds DFSC/IFSC in [5:0] (fault status code) and, for data aborts, WnR in bit 6.
//! This module only formats; it touches no register, so every class is host-tested.

use core::fmt;

/// A decoded syndrome, printable with `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syndrome {
    /// The raw ESR value.
    pub raw: u64,
}

impl Syndrome {
    /// Wraps a raw ESR value.
    pub fn new(raw: u64) -> Self {
        Self { raw }
    }

    /// Exception class, ESR[31:26].
    pub fn exception_class(&self) -> u8 {
        ((self.raw >> 26) & 0x3f) as u8
    }

    /// Instruction-specific syndrome, ESR[24:0].
    pub fn iss(&self) -> u32 {
        (self.raw & 0x1ff_ffff) as u32
    }

    /// True when the class is a data or instruction abort (FAR is meaningful).
    pub fn is_abort(&self) -> bool {
        matches!(self.exception_class(), 0x20 | 0x21 | 0x24 | 0x25)
    }
}

/// The exception class in words (Arm ARM table D17-x, ESR_ELx.EC).
pub fn exception_class_name(class: u8) -> &'static str {
    match class {
        0x00 => "unknown reason (undefined instruction)",
        0x01 => "trapped WFI/WFE",
        0x07 => "trapped SVE/SIMD/floating-point access",
        0x0e => "illegal execution state",
        0x15 => "SVC from AArch64",
        0x16 => "HVC from AArch64",
        0x17 => "SMC from AArch64",
        0x18 => "trapped system register access",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort from EL1 (current EL)",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort from EL1 (current EL)",
        0x26 => "SP alignment fault",
        0x2c => "trapped floating-point exception",
        0x2f => "SError interrupt",
        0x30 => "breakpoint from a lower EL",
        0x31 => "breakpoint from EL1 (current EL)",
        0x32 => "software step from a lower EL",
        0x33 => "software step from EL1 (current EL)",
        0x34 => "watchpoint from a lower EL",
        0x35 => "watchpoint from EL1 (current EL)",
        0x3c => "BRK instruction",
        _ => "reserved or unhandled exception class",
    }
}

/// Writes the fault status code (DFSC/IFSC, ISS[5:0]) in words.
fn write_fault_status(f: &mut fmt::Formatter<'_>, status: u32) -> fmt::Result {
    let level = status & 0b11;
    match status {
        0b00_0000..=0b00_0011 => write!(f, "address size fault level {level}"),
        0b00_0100..=0b00_0111 => write!(f, "translation fault level {level}"),
        0b00_1001..=0b00_1011 => write!(f, "access flag fault level {level}"),
        0b00_1101..=0b00_1111 => write!(f, "permission fault level {level}"),
        0b01_0000 => write!(f, "synchronous external abort"),
        0b01_0001 => write!(f, "synchronous tag check fault"),
        0b01_0100..=0b01_0111 => {
            write!(f, "synchronous external abort on table walk level {level}")
        }
        0b10_0001 => write!(f, "alignment fault"),
        0b11_0000 => write!(f, "TLB conflict abort"),
        other => write!(f, "fault status {other:#04x}"),
    }
}

impl fmt::Display for Syndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = self.exception_class();
        f.write_str(exception_class_name(class))?;
        let iss = self.iss();
        match class {
            0x24 | 0x25 => {
                f.write_str(", ")?;
                write_fault_status(f, iss & 0x3f)?;
                // WnR (ISS bit 6) is only meaningful for faults other than cache maintenance
                // (CM, bit 8) operations.
                if iss & (1 << 8) != 0 {
                    f.write_str(", cache maintenance")
                } else if iss & (1 << 6) != 0 {
                    f.write_str(", write")
                } else {
                    f.write_str(", read")
                }
            }
            0x20 | 0x21 => {
                f.write_str(", ")?;
                write_fault_status(f, iss & 0x3f)
            }
            0x15..=0x17 => write!(f, ", immediate {:#x}", iss & 0xffff),
            0x3c => write!(f, ", comment {:#x}", iss & 0xffff),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_abort_translation_fault_read_and_write() {
        // EC=0x25, IL=1, DFSC=0b000111 (translation level 3), WnR=0.
        let read = Syndrome::new(0x9600_0007);
        assert_eq!(
            read.to_string(),
            "data abort from EL1 (current EL), translation fault level 3, read"
        );
        assert!(read.is_abort());
        let write = Syndrome::new(0x9600_0047);
        assert_eq!(
            write.to_string(),
            "data abort from EL1 (current EL), translation fault level 3, write"
        );
        let permission = Syndrome::new(0x9600_004f);
        assert_eq!(
            permission.to_string(),
            "data abort from EL1 (current EL), permission fault level 3, write"
        );
    }

    #[test]
    fn undefined_instruction_and_svc_and_instruction_abort() {
        assert_eq!(
            Syndrome::new(0x0200_0000).to_string(),
            "unknown reason (undefined instruction)"
        );
        assert_eq!(
            Syndrome::new(0x5600_0005).to_string(),
            "SVC from AArch64, immediate 0x5"
        );
        assert_eq!(
            Syndrome::new(0x8600_000f).to_string(),
            "instruction abort from EL1 (current EL), permission fault level 3"
        );
        assert!(!Syndrome::new(0x0200_0000).is_abort());
    }

    #[test]
    fn every_class_and_status_formats_without_panic() {
        for class in 0u64..64 {
            for status in 0u64..64 {
                let text = Syndrome::new((class << 26) | status | (1 << 6)).to_string();
                assert!(!text.is_empty());
            }
        }
    }
}
