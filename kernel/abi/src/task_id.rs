//! Task ids: a slot index and a generation in one 32-bit value.
//!
//! Following Hubris, a task id names a *particular incarnation* of a task. When a task is
//! restarted its slot keeps its index but its generation advances, so every id handed out
//! before the restart becomes stale: IPC to it fails with [`crate::KernelError::DeadTask`]
//! instead of silently reaching the new incarnation with a conversation it never started.
//!
//! Layout of the raw value: bits 0..16 are the index, bits 16..32 the generation. Indices
//! `0xFFFE` and `0xFFFF` are reserved for the special ids below, far above any task table size.

/// How many times a task slot has been (re)started, modulo 2^16.
///
/// Wrap-around means an id 65536 restarts old would match again; at the supervisor's minimum
/// back-off that is many minutes of continuous crashing, an accepted risk (Hubris uses 6 bits).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Generation(pub u16);

impl Generation {
    /// The generation after this one (wrapping).
    pub const fn next(self) -> Generation {
        Generation(self.0.wrapping_add(1))
    }
}

/// A task slot index together with the generation of the incarnation it names.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u32);

impl TaskId {
    /// The sender id reported by `receive` when it returns notification bits, not a message.
    pub const KERNEL: TaskId = TaskId(0xFFFF_FFFF);
    /// Receive filter meaning "any sender" (same bits as [`TaskId::KERNEL`]; the two are never
    /// used in the same position).
    pub const ANY_SENDER: TaskId = TaskId(0xFFFF_FFFF);
    /// Names the calling task in `task_info`.
    pub const CURRENT: TaskId = TaskId(0xFFFF_FFFE);
    /// Largest index a real task can have.
    pub const MAX_INDEX: u16 = 0xFFFD;

    /// Builds an id from a slot index and generation.
    pub const fn new(index: u16, generation: Generation) -> TaskId {
        TaskId(index as u32 | (generation.0 as u32) << 16)
    }

    /// The slot index.
    pub const fn index(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }

    /// The slot index as a `usize`, for table lookups.
    pub const fn index_usize(self) -> usize {
        self.index() as usize
    }

    /// The incarnation this id names.
    pub const fn generation(self) -> Generation {
        Generation((self.0 >> 16) as u16)
    }

    /// The value as it travels in a register.
    pub const fn to_raw(self) -> u32 {
        self.0
    }

    /// Reinterprets a 32-bit value as an id (any value is a well-formed id; whether it names a
    /// live task is for the kernel to decide).
    pub const fn from_raw(raw: u32) -> TaskId {
        TaskId(raw)
    }

    /// Reads an id from a 64-bit register; bits above 32 must be zero.
    pub fn from_register(register: u64) -> Option<TaskId> {
        u32::try_from(register).ok().map(TaskId)
    }

    /// True for the reserved special values ([`TaskId::KERNEL`], [`TaskId::CURRENT`]).
    pub const fn is_special(self) -> bool {
        self.index() > Self::MAX_INDEX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_generation_round_trip() {
        let id = TaskId::new(37, Generation(0xBEEF));
        assert_eq!(id.index(), 37);
        assert_eq!(id.generation(), Generation(0xBEEF));
        assert_eq!(TaskId::from_raw(id.to_raw()), id);
        assert_eq!(id.to_raw(), 0xBEEF_0025);
    }

    #[test]
    fn next_generation_makes_a_different_id_for_the_same_slot() {
        let old = TaskId::new(3, Generation(7));
        let new = TaskId::new(3, old.generation().next());
        assert_ne!(old, new);
        assert_eq!(old.index(), new.index());
        assert_eq!(Generation(u16::MAX).next(), Generation(0));
    }

    #[test]
    fn register_with_high_bits_is_not_an_id() {
        assert_eq!(TaskId::from_register(1 << 32), None);
        assert_eq!(TaskId::from_register(5), Some(TaskId::from_raw(5)));
    }

    #[test]
    fn special_ids_are_outside_the_index_range() {
        assert!(TaskId::KERNEL.is_special());
        assert!(TaskId::CURRENT.is_special());
        assert!(!TaskId::new(TaskId::MAX_INDEX, Generation(9)).is_special());
    }
}
