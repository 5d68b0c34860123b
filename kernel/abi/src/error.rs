//! Error codes returned in x0.
//!
//! x0 of a `send` result carries either the server's reply code or one of these. To keep the
//! two apart, kernel codes live at and above [`KERNEL_ERROR_BASE`] and a server may not reply
//! with such a code (`reply` refuses it with [`KernelError::BadReplyCode`]). Every code names
//! who is to blame in its documentation: the caller's arguments, the peer, or the peer's death.

/// First code reserved for the kernel. Server reply codes must be below it.
pub const KERNEL_ERROR_BASE: u32 = 0xFFFF_0000;

/// Success.
pub const OK: u32 = 0;

/// An error a syscall returns to its caller (never a fault: bad arguments are the caller's
/// problem to handle, and a syscall fuzzer sees only these).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum KernelError {
    /// The syscall number in x8 names no syscall. Caller's fault.
    UnknownSyscall = KERNEL_ERROR_BASE + 1,
    /// An argument register holds a value outside its type (high bits set in a 32-bit field,
    /// a zero notification mask where one is required...). Caller's fault.
    BadArgument = KERNEL_ERROR_BASE + 2,
    /// A user slice is not readable/writable memory of the caller: kernel address, address
    /// overflow, unmapped or wrong permission. Caller's fault.
    BadPointer = KERNEL_ERROR_BASE + 3,
    /// The task index names no task slot. Caller's fault.
    NoSuchTask = KERNEL_ERROR_BASE + 4,
    /// The peer has restarted (stale generation), faulted, exited or died while the caller
    /// waited on it. x1 carries the peer's current id so the caller can retry. Peer's death.
    DeadTask = KERNEL_ERROR_BASE + 5,
    /// The request is longer than the receiver's buffer or than `MAX_MESSAGE_BYTES`. Caller's
    /// fault (the protocol fixes the sizes).
    MessageTooLarge = KERNEL_ERROR_BASE + 6,
    /// The reply is longer than the response buffer the client offered. Replier's fault.
    ReplyTooLarge = KERNEL_ERROR_BASE + 7,
    /// `reply` named a task that is not waiting for a reply from the caller. Replier's fault.
    NotWaitingForReply = KERNEL_ERROR_BASE + 8,
    /// `send` to oneself would block forever. Caller's fault.
    SelfSend = KERNEL_ERROR_BASE + 9,
    /// Only the supervisor task may make this call. Caller's fault.
    NotPermitted = KERNEL_ERROR_BASE + 10,
    /// `read_fault`/`restart_task` on a task that is not faulted or exited. Caller's fault.
    NotFaulted = KERNEL_ERROR_BASE + 11,
    /// `reply` with a code in the kernel's range. Replier's fault.
    BadReplyCode = KERNEL_ERROR_BASE + 12,
    /// The `send` would close a cycle of tasks each waiting on the next. Caller's fault.
    WouldDeadlock = KERNEL_ERROR_BASE + 13,
}

impl KernelError {
    /// Every error, for tables and tests.
    pub const ALL: [KernelError; 13] = [
        KernelError::UnknownSyscall,
        KernelError::BadArgument,
        KernelError::BadPointer,
        KernelError::NoSuchTask,
        KernelError::DeadTask,
        KernelError::MessageTooLarge,
        KernelError::ReplyTooLarge,
        KernelError::NotWaitingForReply,
        KernelError::SelfSend,
        KernelError::NotPermitted,
        KernelError::NotFaulted,
        KernelError::BadReplyCode,
        KernelError::WouldDeadlock,
    ];

    /// The code as it travels in x0.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// Decodes x0; `None` for success codes and server reply codes.
    pub fn from_code(code: u32) -> Option<KernelError> {
        Self::ALL.iter().copied().find(|error| error.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_round_trip_and_in_the_kernel_range() {
        for (position, error) in KernelError::ALL.iter().enumerate() {
            assert!(error.code() >= KERNEL_ERROR_BASE);
            assert_eq!(KernelError::from_code(error.code()), Some(*error));
            for other in &KernelError::ALL[position + 1..] {
                assert_ne!(error.code(), other.code());
            }
        }
        assert_eq!(KernelError::from_code(OK), None);
        assert_eq!(KernelError::from_code(17), None);
    }
}
