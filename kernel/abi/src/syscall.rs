//! Syscall numbers and the register convention, with a total decoder.
//!
//! Convention (AArch64, `svc #0`): the number is in x8, arguments in x0..x5, results come back
//! in x0..x5 with x0 the status code (0 = success, a [`KernelError`] code, or for `send` the
//! server's reply code). Every other register, SP_EL0 and the FP/SIMD state are preserved.
//! x8 follows Linux so that disassemblies look familiar; the `svc` immediate is ignored (it is
//! reported in ESR_EL1.ISS but reading it costs nothing useful).
//!
//! [`Syscall::decode`] is the only place that interprets raw registers. It checks *shape*
//! (field widths, reserved values); whether pointers are mapped, ids are alive or the caller is
//! privileged is the kernel's business, decided later against its own state.

use crate::error::{KernelError, OK};
use crate::limits::{ARGUMENT_REGISTERS, RETURN_REGISTERS};
use crate::task_id::TaskId;

/// Notification bit the kernel posts to the supervisor task when a task faults or exits.
/// The supervisor includes it in its `receive` mask; other tasks may use it freely.
pub const SUPERVISOR_FAULT_BIT: u32 = 1 << 31;

/// Syscall numbers (x8).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Sysnum {
    /// Send a message and wait for the reply.
    Send = 0,
    /// Wait for a message or notification.
    Receive = 1,
    /// Answer a message received earlier, unblocking its sender.
    Reply = 2,
    /// Set notification bits on a task.
    Post = 3,
    /// Give up the rest of the time slice.
    Yield = 4,
    /// Block for a duration.
    Sleep = 5,
    /// Arm or cancel the caller's notification timer.
    SetTimer = 6,
    /// Read the monotonic clock.
    GetTime = 7,
    /// End the task.
    Exit = 8,
    /// Write bytes to the console.
    Log = 9,
    /// Describe a task.
    TaskInfo = 10,
    /// Supervisor only: read why a task stopped.
    ReadFault = 11,
    /// Supervisor only: restart a stopped task under a new generation.
    RestartTask = 12,
}

impl Sysnum {
    /// Every syscall, in number order.
    pub const ALL: [Sysnum; 13] = [
        Sysnum::Send,
        Sysnum::Receive,
        Sysnum::Reply,
        Sysnum::Post,
        Sysnum::Yield,
        Sysnum::Sleep,
        Sysnum::SetTimer,
        Sysnum::GetTime,
        Sysnum::Exit,
        Sysnum::Log,
        Sysnum::TaskInfo,
        Sysnum::ReadFault,
        Sysnum::RestartTask,
    ];

    /// Decodes x8.
    pub fn from_register(register: u64) -> Option<Sysnum> {
        Self::ALL
            .iter()
            .copied()
            .find(|number| *number as u64 == register)
    }
}

/// An *allegation* about user memory: a task claims `len` bytes at `addr` are its own.
///
/// Nothing is known about it until the kernel checks it against the task's address-space map
/// (`tasking::usermem`); it is never dereferenced as it stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserSlice {
    /// First byte, a virtual address in the task's address space.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
}

impl UserSlice {
    /// An empty slice (valid anywhere in user space).
    pub const EMPTY: UserSlice = UserSlice { addr: 0, len: 0 };

    /// Builds a slice.
    pub const fn new(addr: u64, len: u64) -> UserSlice {
        UserSlice { addr, len }
    }
}

/// A decoded, well-shaped syscall.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// `send(target, operation, request, response)`.
    Send {
        /// Receiver.
        target: TaskId,
        /// Operation code the receiver sees.
        operation: u32,
        /// Bytes to deliver.
        request: UserSlice,
        /// Where the reply goes.
        response: UserSlice,
    },
    /// `receive(buffer, notification_mask, from)`.
    Receive {
        /// Where the message goes.
        buffer: UserSlice,
        /// Notification bits that end the wait.
        notification_mask: u32,
        /// Only accept messages from this task (closed receive), or from anyone.
        from: Option<TaskId>,
    },
    /// `reply(client, code, message)`.
    Reply {
        /// The task waiting for the reply.
        client: TaskId,
        /// Reply code (below the kernel range).
        code: u32,
        /// Reply bytes.
        message: UserSlice,
    },
    /// `post(target, bits)`.
    Post {
        /// Task to notify.
        target: TaskId,
        /// Bits to set (non-zero).
        bits: u32,
    },
    /// `yield()`.
    Yield,
    /// `sleep(nanoseconds)`.
    Sleep {
        /// Minimum time to block.
        nanoseconds: u64,
    },
    /// `set_timer(deadline, bits)`: at `deadline` (monotonic ns) post `bits` to the caller.
    SetTimer {
        /// Absolute deadline; `None` cancels the timer.
        deadline: Option<u64>,
        /// Bits to post (non-zero when arming).
        bits: u32,
    },
    /// `get_time()`.
    GetTime,
    /// `exit(code)`.
    Exit {
        /// Exit status for the supervisor and the console.
        code: u32,
    },
    /// `log(message)`.
    Log {
        /// Bytes to print.
        message: UserSlice,
    },
    /// `task_info(target, out)`.
    TaskInfo {
        /// Task to describe ([`TaskId::CURRENT`] for the caller). Only the index is used:
        /// this is how a task learns the current generation of another.
        target: TaskId,
        /// Where the 48-byte record goes.
        out: UserSlice,
    },
    /// `read_fault(index)`.
    ReadFault {
        /// Slot index of the stopped task.
        index: u16,
    },
    /// `restart_task(index)`.
    RestartTask {
        /// Slot index of the stopped task.
        index: u16,
    },
}

fn task_id(register: u64) -> Result<TaskId, KernelError> {
    TaskId::from_register(register).ok_or(KernelError::BadArgument)
}

fn word(register: u64) -> Result<u32, KernelError> {
    u32::try_from(register).map_err(|_| KernelError::BadArgument)
}

fn index(register: u64) -> Result<u16, KernelError> {
    u16::try_from(register)
        .ok()
        .filter(|index| *index <= TaskId::MAX_INDEX)
        .ok_or(KernelError::BadArgument)
}

impl Syscall {
    /// Decodes x8 and x0..x5. Total: every input yields a syscall or an error for the caller.
    pub fn decode(number: u64, args: &[u64; ARGUMENT_REGISTERS]) -> Result<Syscall, KernelError> {
        let sysnum = Sysnum::from_register(number).ok_or(KernelError::UnknownSyscall)?;
        Ok(match sysnum {
            Sysnum::Send => Syscall::Send {
                target: task_id(args[0])?,
                operation: word(args[1])?,
                request: UserSlice::new(args[2], args[3]),
                response: UserSlice::new(args[4], args[5]),
            },
            Sysnum::Receive => {
                let from = task_id(args[3])?;
                Syscall::Receive {
                    buffer: UserSlice::new(args[0], args[1]),
                    notification_mask: word(args[2])?,
                    from: if from == TaskId::ANY_SENDER {
                        None
                    } else {
                        Some(from)
                    },
                }
            }
            Sysnum::Reply => Syscall::Reply {
                client: task_id(args[0])?,
                code: word(args[1])?,
                message: UserSlice::new(args[2], args[3]),
            },
            Sysnum::Post => {
                let bits = word(args[1])?;
                if bits == 0 {
                    return Err(KernelError::BadArgument);
                }
                Syscall::Post {
                    target: task_id(args[0])?,
                    bits,
                }
            }
            Sysnum::Yield => Syscall::Yield,
            Sysnum::Sleep => Syscall::Sleep {
                nanoseconds: args[0],
            },
            Sysnum::SetTimer => {
                let bits = word(args[1])?;
                let deadline = if args[0] == 0 { None } else { Some(args[0]) };
                if deadline.is_some() && bits == 0 {
                    return Err(KernelError::BadArgument);
                }
                Syscall::SetTimer { deadline, bits }
            }
            Sysnum::GetTime => Syscall::GetTime,
            Sysnum::Exit => Syscall::Exit {
                code: word(args[0])?,
            },
            Sysnum::Log => Syscall::Log {
                message: UserSlice::new(args[0], args[1]),
            },
            Sysnum::TaskInfo => Syscall::TaskInfo {
                target: task_id(args[0])?,
                out: UserSlice::new(args[1], args[2]),
            },
            Sysnum::ReadFault => Syscall::ReadFault {
                index: index(args[0])?,
            },
            Sysnum::RestartTask => Syscall::RestartTask {
                index: index(args[0])?,
            },
        })
    }

    /// Encodes back to (x8, x0..x5): what a user-side stub puts in registers.
    pub fn encode(&self) -> (u64, [u64; ARGUMENT_REGISTERS]) {
        let mut args = [0u64; ARGUMENT_REGISTERS];
        let number = match *self {
            Syscall::Send {
                target,
                operation,
                request,
                response,
            } => {
                args = [
                    target.to_raw() as u64,
                    operation as u64,
                    request.addr,
                    request.len,
                    response.addr,
                    response.len,
                ];
                Sysnum::Send
            }
            Syscall::Receive {
                buffer,
                notification_mask,
                from,
            } => {
                args[0] = buffer.addr;
                args[1] = buffer.len;
                args[2] = notification_mask as u64;
                args[3] = from.unwrap_or(TaskId::ANY_SENDER).to_raw() as u64;
                Sysnum::Receive
            }
            Syscall::Reply {
                client,
                code,
                message,
            } => {
                args[0] = client.to_raw() as u64;
                args[1] = code as u64;
                args[2] = message.addr;
                args[3] = message.len;
                Sysnum::Reply
            }
            Syscall::Post { target, bits } => {
                args[0] = target.to_raw() as u64;
                args[1] = bits as u64;
                Sysnum::Post
            }
            Syscall::Yield => Sysnum::Yield,
            Syscall::Sleep { nanoseconds } => {
                args[0] = nanoseconds;
                Sysnum::Sleep
            }
            Syscall::SetTimer { deadline, bits } => {
                args[0] = deadline.unwrap_or(0);
                args[1] = bits as u64;
                Sysnum::SetTimer
            }
            Syscall::GetTime => Sysnum::GetTime,
            Syscall::Exit { code } => {
                args[0] = code as u64;
                Sysnum::Exit
            }
            Syscall::Log { message } => {
                args[0] = message.addr;
                args[1] = message.len;
                Sysnum::Log
            }
            Syscall::TaskInfo { target, out } => {
                args[0] = target.to_raw() as u64;
                args[1] = out.addr;
                args[2] = out.len;
                Sysnum::TaskInfo
            }
            Syscall::ReadFault { index } => {
                args[0] = index as u64;
                Sysnum::ReadFault
            }
            Syscall::RestartTask { index } => {
                args[0] = index as u64;
                Sysnum::RestartTask
            }
        };
        (number as u64, args)
    }
}

/// The values a syscall leaves in x0..x5 of a task.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReturnRegisters(pub [u64; RETURN_REGISTERS]);

impl ReturnRegisters {
    /// Success with up to five result values in x1..x5.
    pub fn ok(values: &[u64]) -> ReturnRegisters {
        Self::with_code(OK, values)
    }

    /// A status code (a reply code or [`OK`]) with result values in x1..x5 (extra values are
    /// dropped; callers pass at most five).
    pub fn with_code(code: u32, values: &[u64]) -> ReturnRegisters {
        let mut registers = [0u64; RETURN_REGISTERS];
        registers[0] = code as u64;
        for (slot, value) in registers[1..].iter_mut().zip(values) {
            *slot = *value;
        }
        ReturnRegisters(registers)
    }

    /// An error with no further values.
    pub fn error(error: KernelError) -> ReturnRegisters {
        Self::with_code(error.code(), &[])
    }

    /// [`KernelError::DeadTask`] with the peer's current id in x1.
    pub fn dead_task(current: TaskId) -> ReturnRegisters {
        Self::with_code(KernelError::DeadTask.code(), &[current.to_raw() as u64])
    }

    /// The status code in x0.
    pub fn code(&self) -> u32 {
        self.0[0] as u32
    }

    /// The error in x0, if it is a kernel error.
    pub fn kernel_error(&self) -> Option<KernelError> {
        KernelError::from_code(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_id::Generation;

    fn round_trip(call: Syscall) {
        let (number, args) = call.encode();
        assert_eq!(Syscall::decode(number, &args), Ok(call));
    }

    #[test]
    fn every_syscall_round_trips_through_registers() {
        let target = TaskId::new(5, Generation(3));
        round_trip(Syscall::Send {
            target,
            operation: 7,
            request: UserSlice::new(0x1000, 16),
            response: UserSlice::new(0x2000, 32),
        });
        round_trip(Syscall::Receive {
            buffer: UserSlice::new(0x3000, 64),
            notification_mask: 0b101,
            from: None,
        });
        round_trip(Syscall::Receive {
            buffer: UserSlice::EMPTY,
            notification_mask: 0,
            from: Some(target),
        });
        round_trip(Syscall::Reply {
            client: target,
            code: 0,
            message: UserSlice::new(8, 8),
        });
        round_trip(Syscall::Post {
            target,
            bits: 1 << 31,
        });
        round_trip(Syscall::Yield);
        round_trip(Syscall::Sleep {
            nanoseconds: 1_000_000,
        });
        round_trip(Syscall::SetTimer {
            deadline: Some(99),
            bits: 4,
        });
        round_trip(Syscall::SetTimer {
            deadline: None,
            bits: 0,
        });
        round_trip(Syscall::GetTime);
        round_trip(Syscall::Exit { code: 3 });
        round_trip(Syscall::Log {
            message: UserSlice::new(0x4000, 5),
        });
        round_trip(Syscall::TaskInfo {
            target: TaskId::CURRENT,
            out: UserSlice::new(0, 48),
        });
        round_trip(Syscall::ReadFault { index: 2 });
        round_trip(Syscall::RestartTask { index: 2 });
    }

    #[test]
    fn numbers_are_stable() {
        for (position, number) in Sysnum::ALL.iter().enumerate() {
            assert_eq!(*number as u64, position as u64);
            assert_eq!(Sysnum::from_register(position as u64), Some(*number));
        }
        assert_eq!(Sysnum::from_register(13), None);
    }

    #[test]
    fn malformed_registers_are_errors_not_panics() {
        let wide = 1u64 << 40;
        assert_eq!(
            Syscall::decode(13, &[0; 6]),
            Err(KernelError::UnknownSyscall)
        );
        assert_eq!(
            Syscall::decode(u64::MAX, &[0; 6]),
            Err(KernelError::UnknownSyscall)
        );
        assert_eq!(
            Syscall::decode(0, &[wide, 0, 0, 0, 0, 0]),
            Err(KernelError::BadArgument)
        );
        assert_eq!(
            Syscall::decode(0, &[1, wide, 0, 0, 0, 0]),
            Err(KernelError::BadArgument)
        );
        assert_eq!(
            Syscall::decode(3, &[1, 0, 0, 0, 0, 0]),
            Err(KernelError::BadArgument)
        );
        assert_eq!(
            Syscall::decode(6, &[5, 0, 0, 0, 0, 0]),
            Err(KernelError::BadArgument)
        );
        assert_eq!(
            Syscall::decode(11, &[0xFFFF, 0, 0, 0, 0, 0]),
            Err(KernelError::BadArgument)
        );
        assert_eq!(
            Syscall::decode(12, &[1 << 16, 0, 0, 0, 0, 0]),
            Err(KernelError::BadArgument)
        );
    }

    #[test]
    fn decode_is_total_over_a_pseudo_random_sweep() {
        // xorshift64: deterministic, so a failure reproduces.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for _ in 0..20_000 {
            let number = next() % 16;
            let args = [
                next(),
                next() >> (next() % 64),
                next() % 4,
                next(),
                next(),
                next(),
            ];
            if let Ok(call) = Syscall::decode(number, &args) {
                decoded += 1;
                let (again_number, again_args) = call.encode();
                assert_eq!(Syscall::decode(again_number, &again_args), Ok(call));
            }
        }
        assert!(
            decoded > 1000,
            "the sweep should reach valid calls, got {decoded}"
        );
    }

    #[test]
    fn return_registers_carry_code_and_values() {
        let registers = ReturnRegisters::ok(&[1, 2, 3]);
        assert_eq!(registers.0, [0, 1, 2, 3, 0, 0]);
        assert_eq!(registers.kernel_error(), None);
        let dead = ReturnRegisters::dead_task(TaskId::new(1, Generation(2)));
        assert_eq!(dead.kernel_error(), Some(KernelError::DeadTask));
        assert_eq!(dead.0[1], 0x0002_0001);
    }
}
