//! The Anneal syscall ABI: what a user task and the kernel agree on, and nothing else.
//!
//! This crate is shared by the kernel and by every user task, so it holds only plain data and
//! pure conversions: syscall numbers ([`Sysnum`]), how arguments and results travel in registers
//! ([`Syscall::decode`], [`ReturnRegisters`]), the error codes a syscall can return
//! ([`KernelError`]), task ids with a generation ([`TaskId`]), the unchecked user-memory
//! allegation ([`UserSlice`]), and the fixed-layout records the kernel writes into task memory
//! ([`TaskInfoRecord`], [`FaultRecord`]). The prose contract is `SYSCALLS.md` beside this crate.
//!
//! Design: decoding is total. Any 64-bit register contents decode either to a well-typed
//! [`Syscall`] or to a [`KernelError`] the kernel returns to the task; nothing here can panic,
//! so a syscall fuzzer running at EL0 only ever sees error codes.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod error;
pub mod fault;
pub mod limits;
pub mod records;
pub mod syscall;
pub mod task_id;

pub use error::KernelError;
pub use fault::{FaultKind, FaultRecord};
pub use records::{TaskInfoRecord, TaskStateCode};
pub use syscall::{ReturnRegisters, Syscall, Sysnum, UserSlice, SUPERVISOR_FAULT_BIT};
pub use task_id::{Generation, TaskId};
