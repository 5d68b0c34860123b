//! Static limits that are part of the ABI: a task may rely on them, so they change only with
//! a note in SYSCALLS.md.

/// Largest request or reply payload in bytes. One 4 KiB page: the kernel copies messages with
/// interrupts masked on the syscall path, so the copy must stay short and bounded; larger data
/// belongs in a shared region, not a message.
pub const MAX_MESSAGE_BYTES: u64 = 4096;

/// Largest `log` write in bytes. A console line plus room: a longer write is a bug in the task
/// (or a fuzzer), and it is refused rather than flooding the console.
pub const MAX_LOG_BYTES: u64 = 256;

/// Number of argument registers a syscall reads (x0..x5). Six covers `send`, the widest call
/// (target, operation, request address/length, response address/length).
pub const ARGUMENT_REGISTERS: usize = 6;

/// Number of result registers a syscall writes (x0..x5). `receive` is the widest result
/// (code, sender, operation, length, response capacity).
pub const RETURN_REGISTERS: usize = 6;

/// Bytes of a task name in [`crate::TaskInfoRecord`] (NUL-padded, not terminated when full).
pub const TASK_NAME_BYTES: usize = 16;
