//! Faults: why a task was stopped, as the supervisor reads it back with `read_fault`.
//!
//! A fault always blames the task that faulted (Hubris's rule): the kernel never faults a task
//! for another task's mistake, and bad syscall arguments are errors, not faults. The kernel
//! classifies the exception (ESR_EL1 class, FAR_EL1) into a [`FaultKind`]; the portable core
//! refines a data abort in a stack guard page into [`FaultKind::StackOverflow`].

/// What went wrong, with the addresses a person needs to find the bug.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// A load or store to memory the task does not map, or maps without the needed
    /// permission (this includes every kernel address). `address` is FAR_EL1.
    MemoryAccess {
        /// Faulting data address.
        address: u64,
        /// True for a store.
        write: bool,
    },
    /// An instruction fetch from memory that is unmapped or not executable. `address` is the PC.
    InstructionFetch {
        /// Faulting program counter.
        address: u64,
    },
    /// A data access inside the guard pages below the task's stack.
    StackOverflow {
        /// Faulting data address.
        address: u64,
    },
    /// Misaligned PC, SP or data access (ESR classes 0x22, 0x26, alignment DFSC).
    Alignment {
        /// Faulting address.
        address: u64,
    },
    /// An undefined or not permitted instruction at EL0 (ESR class 0x00 and friends).
    IllegalInstruction {
        /// The PC of the instruction.
        address: u64,
        /// The raw ESR_EL1 value, for the log.
        syndrome: u32,
    },
    /// A `brk` instruction (Rust's abort path at EL0).
    Breakpoint {
        /// The PC of the `brk`.
        address: u64,
        /// The `brk` immediate.
        immediate: u16,
    },
    /// Stopped from the console (`kill`), not by its own doing.
    Killed,
}

/// Register form of a fault: `read_fault` returns it in x1..x4.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// Kind code (see [`FaultKind::code`]).
    pub kind: u64,
    /// The address field of the kind, or 0.
    pub address: u64,
    /// The detail field: 1 for a store, the ESR, the `brk` immediate; else 0.
    pub detail: u64,
}

impl FaultKind {
    /// Stable number of each kind (part of the ABI).
    pub const fn code(&self) -> u64 {
        match self {
            FaultKind::MemoryAccess { .. } => 1,
            FaultKind::InstructionFetch { .. } => 2,
            FaultKind::StackOverflow { .. } => 3,
            FaultKind::Alignment { .. } => 4,
            FaultKind::IllegalInstruction { .. } => 5,
            FaultKind::Breakpoint { .. } => 6,
            FaultKind::Killed => 7,
        }
    }

    /// Short name for logs and the console.
    pub const fn name(&self) -> &'static str {
        match self {
            FaultKind::MemoryAccess { .. } => "memory-access",
            FaultKind::InstructionFetch { .. } => "instruction-fetch",
            FaultKind::StackOverflow { .. } => "stack-overflow",
            FaultKind::Alignment { .. } => "alignment",
            FaultKind::IllegalInstruction { .. } => "illegal-instruction",
            FaultKind::Breakpoint { .. } => "breakpoint",
            FaultKind::Killed => "killed",
        }
    }

    /// Encodes for registers.
    pub const fn to_record(&self) -> FaultRecord {
        let (address, detail) = match *self {
            FaultKind::MemoryAccess { address, write } => (address, write as u64),
            FaultKind::InstructionFetch { address } => (address, 0),
            FaultKind::StackOverflow { address } => (address, 0),
            FaultKind::Alignment { address } => (address, 0),
            FaultKind::IllegalInstruction { address, syndrome } => (address, syndrome as u64),
            FaultKind::Breakpoint { address, immediate } => (address, immediate as u64),
            FaultKind::Killed => (0, 0),
        };
        FaultRecord {
            kind: self.code(),
            address,
            detail,
        }
    }
}

impl FaultRecord {
    /// Decodes a record read back from registers; `None` for an unknown kind code or a detail
    /// that does not fit its field.
    pub fn to_kind(&self) -> Option<FaultKind> {
        let address = self.address;
        Some(match self.kind {
            1 => FaultKind::MemoryAccess {
                address,
                write: match self.detail {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
            },
            2 => FaultKind::InstructionFetch { address },
            3 => FaultKind::StackOverflow { address },
            4 => FaultKind::Alignment { address },
            5 => FaultKind::IllegalInstruction {
                address,
                syndrome: u32::try_from(self.detail).ok()?,
            },
            6 => FaultKind::Breakpoint {
                address,
                immediate: u16::try_from(self.detail).ok()?,
            },
            7 => FaultKind::Killed,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_record() {
        let kinds = [
            FaultKind::MemoryAccess {
                address: 0xFFFF_0000_0000_1000,
                write: true,
            },
            FaultKind::MemoryAccess {
                address: 8,
                write: false,
            },
            FaultKind::InstructionFetch { address: 0x40_0000 },
            FaultKind::StackOverflow {
                address: 0xFFFF_F000,
            },
            FaultKind::Alignment { address: 0x1001 },
            FaultKind::IllegalInstruction {
                address: 0x40_0010,
                syndrome: 0x0200_0000,
            },
            FaultKind::Breakpoint {
                address: 0x40_0020,
                immediate: 0xF000,
            },
            FaultKind::Killed,
        ];
        for kind in kinds {
            assert_eq!(kind.to_record().to_kind(), Some(kind), "{}", kind.name());
        }
    }

    #[test]
    fn unknown_or_malformed_records_do_not_decode() {
        assert_eq!(
            FaultRecord {
                kind: 0,
                address: 0,
                detail: 0
            }
            .to_kind(),
            None
        );
        assert_eq!(
            FaultRecord {
                kind: 99,
                address: 0,
                detail: 0
            }
            .to_kind(),
            None
        );
        assert_eq!(
            FaultRecord {
                kind: 1,
                address: 0,
                detail: 2
            }
            .to_kind(),
            None
        );
        assert_eq!(
            FaultRecord {
                kind: 6,
                address: 0,
                detail: 1 << 20
            }
            .to_kind(),
            None
        );
    }
}
