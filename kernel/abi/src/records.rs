//! Fixed-layout records the kernel writes into task memory (`task_info`).
//!
//! Records are serialised field by field in little-endian order at documented offsets rather
//! than by casting a `#[repr(C)]` struct: no `unsafe`, no padding bytes leaking kernel memory,
//! and the layout is the same on every compiler. The offsets are part of the ABI (SYSCALLS.md).

use crate::limits::TASK_NAME_BYTES;
use crate::task_id::TaskId;

/// Scheduling state of a task as user space sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TaskStateCode {
    /// Ready to run or running.
    Runnable = 0,
    /// Blocked in `send`, waiting for the receiver to take the message.
    InSend = 1,
    /// Blocked in `send`, message taken, waiting for the reply.
    InReply = 2,
    /// Blocked in `receive`.
    InReceive = 3,
    /// Blocked in `sleep`.
    Sleeping = 4,
    /// Stopped by a fault, waiting for the supervisor.
    Faulted = 5,
    /// Ended by `exit`.
    Exited = 6,
}

impl TaskStateCode {
    /// Decodes a state code.
    pub fn from_code(code: u32) -> Option<TaskStateCode> {
        Some(match code {
            0 => TaskStateCode::Runnable,
            1 => TaskStateCode::InSend,
            2 => TaskStateCode::InReply,
            3 => TaskStateCode::InReceive,
            4 => TaskStateCode::Sleeping,
            5 => TaskStateCode::Faulted,
            6 => TaskStateCode::Exited,
            _ => return None,
        })
    }

    /// Short name for `ps`.
    pub const fn name(self) -> &'static str {
        match self {
            TaskStateCode::Runnable => "run",
            TaskStateCode::InSend => "send",
            TaskStateCode::InReply => "reply",
            TaskStateCode::InReceive => "recv",
            TaskStateCode::Sleeping => "sleep",
            TaskStateCode::Faulted => "fault",
            TaskStateCode::Exited => "exit",
        }
    }
}

/// What `task_info` reports about one task. Wire layout (little-endian, 48 bytes):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | id (raw [`TaskId`]) |
/// | 4 | 4 | state ([`TaskStateCode`]) |
/// | 8 | 1 | priority (0 = most urgent) |
/// | 9 | 1 | core (0xFF = not on a core) |
/// | 10 | 2 | flags (bit 0: supervisor) |
/// | 12 | 4 | restarts |
/// | 16 | 8 | cpu_ticks |
/// | 24 | 16 | name, NUL-padded |
/// | 40 | 4 | blocked_on (raw [`TaskId`] of the peer, or 0xFFFF_FFFF) |
/// | 44 | 4 | zero |
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TaskInfoRecord {
    /// The task's current id (index and generation).
    pub id: TaskId,
    /// Scheduling state.
    pub state: TaskStateCode,
    /// Priority, 0 most urgent.
    pub priority: u8,
    /// Core the task is queued or running on, if any.
    pub core: Option<u8>,
    /// Bit 0: the task is the supervisor.
    pub flags: u16,
    /// How many times the task has been restarted.
    pub restarts: u32,
    /// Scheduler ticks charged to the task since boot.
    pub cpu_ticks: u64,
    /// Name, NUL-padded.
    pub name: [u8; TASK_NAME_BYTES],
    /// The peer the task is blocked on (send, reply, filtered receive), if any.
    pub blocked_on: Option<TaskId>,
}

/// `flags` bit: the task is the supervisor.
pub const TASK_FLAG_SUPERVISOR: u16 = 1;

impl TaskInfoRecord {
    /// Size of the wire form in bytes.
    pub const WIRE_BYTES: usize = 48;

    /// Serialises to the wire layout.
    pub fn to_bytes(&self) -> [u8; Self::WIRE_BYTES] {
        let mut out = [0u8; Self::WIRE_BYTES];
        out[0..4].copy_from_slice(&self.id.to_raw().to_le_bytes());
        out[4..8].copy_from_slice(&(self.state as u32).to_le_bytes());
        out[8] = self.priority;
        out[9] = self.core.unwrap_or(0xFF);
        out[10..12].copy_from_slice(&self.flags.to_le_bytes());
        out[12..16].copy_from_slice(&self.restarts.to_le_bytes());
        out[16..24].copy_from_slice(&self.cpu_ticks.to_le_bytes());
        out[24..40].copy_from_slice(&self.name);
        let blocked = self.blocked_on.map_or(0xFFFF_FFFF, TaskId::to_raw);
        out[40..44].copy_from_slice(&blocked.to_le_bytes());
        out
    }

    /// Parses the wire layout; `None` if too short or the state code is unknown.
    pub fn from_bytes(bytes: &[u8]) -> Option<TaskInfoRecord> {
        let bytes = bytes.get(..Self::WIRE_BYTES)?;
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        let mut name = [0u8; TASK_NAME_BYTES];
        name.copy_from_slice(&bytes[24..40]);
        let blocked = u32_at(40)?;
        Some(TaskInfoRecord {
            id: TaskId::from_raw(u32_at(0)?),
            state: TaskStateCode::from_code(u32_at(4)?)?,
            priority: bytes[8],
            core: if bytes[9] == 0xFF {
                None
            } else {
                Some(bytes[9])
            },
            flags: u16::from_le_bytes([bytes[10], bytes[11]]),
            restarts: u32_at(12)?,
            cpu_ticks: u64::from_le_bytes(bytes[16..24].try_into().ok()?),
            name,
            blocked_on: if blocked == 0xFFFF_FFFF {
                None
            } else {
                Some(TaskId::from_raw(blocked))
            },
        })
    }

    /// The name as text, up to the first NUL (lossy: non-UTF-8 yields `"?"`).
    pub fn name_str(&self) -> &str {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..end]).unwrap_or("?")
    }
}

/// Copies `name` into a NUL-padded name field, cutting at a character boundary if too long.
pub fn name_field(name: &str) -> [u8; TASK_NAME_BYTES] {
    let mut field = [0u8; TASK_NAME_BYTES];
    let mut end = name.len().min(TASK_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    field[..end].copy_from_slice(&name.as_bytes()[..end]);
    field
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_id::Generation;

    #[test]
    fn record_round_trips_at_the_documented_offsets() {
        let record = TaskInfoRecord {
            id: TaskId::new(4, Generation(2)),
            state: TaskStateCode::InReply,
            priority: 3,
            core: Some(1),
            flags: TASK_FLAG_SUPERVISOR,
            restarts: 9,
            cpu_ticks: 0x0102_0304_0506_0708,
            name: name_field("pong"),
            blocked_on: Some(TaskId::new(7, Generation(1))),
        };
        let bytes = record.to_bytes();
        assert_eq!(&bytes[0..4], &[4, 0, 2, 0]);
        assert_eq!(bytes[4], 2);
        assert_eq!(bytes[9], 1);
        assert_eq!(&bytes[16..24], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&bytes[24..29], b"pong\0");
        assert_eq!(TaskInfoRecord::from_bytes(&bytes), Some(record));
        assert_eq!(record.name_str(), "pong");
    }

    #[test]
    fn short_or_corrupt_records_are_refused() {
        let record = TaskInfoRecord {
            id: TaskId::new(0, Generation(0)),
            state: TaskStateCode::Runnable,
            priority: 0,
            core: None,
            flags: 0,
            restarts: 0,
            cpu_ticks: 0,
            name: name_field(""),
            blocked_on: None,
        };
        let mut bytes = record.to_bytes();
        assert_eq!(TaskInfoRecord::from_bytes(&bytes[..47]), None);
        bytes[4] = 200;
        assert_eq!(TaskInfoRecord::from_bytes(&bytes), None);
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let field = name_field("a-very-long-task-name");
        assert_eq!(&field, b"a-very-long-task");
        let field = name_field("ééééééééé"); // 18 bytes of 2-byte characters
        assert_eq!(core::str::from_utf8(&field).map(str::len), Ok(16));
    }
}
