//! The portable half of Anneal's microkernel core: tasks, scheduling, IPC, timers, fault
//! supervision, user memory checks, address spaces and task-image loading.
//!
//! Everything here is pure logic over plain data (Hubris's `kerncore` idea): no registers, no
//! raw pointers, no `unsafe`. The kernel binary supplies the few things only it can do through
//! small traits — copying user memory ([`usermem::UserMemory`]), lending physical frames
//! ([`pagetable::PhysicalMemory`]), printing ([`system::LogSink`]) — and calls in at its four
//! entry points (syscall, timer tick, EL0 fault, interrupt notification) through
//! [`system::TaskSystem`]. So the host tests exercise the real algorithms, and wiring them into
//! the kernel is a thin layer (see this crate's README, "In-kernel integration plan").
//!
//! Map of the crate:
//! - [`system`]: task table with generations, IPC rendezvous, notifications, faults.
//! - [`sched`], [`policy`], [`histogram`]: run queues, the replaceable policy, wait statistics.
//! - [`timers`], [`time`]: the sleep/notification timer queue; nanoseconds and ticks.
//! - [`supervisor`]: the restart-with-back-off policy the supervisor task runs.
//! - [`usermem`]: address-space maps and the checked user slice.
//! - [`layout`], [`pagetable`], [`elf`]: where a task's memory goes, its TTBR0 tables, its image.
//! - [`limits`]: every static bound, with its reason.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod elf;
pub mod histogram;
pub mod layout;
pub mod limits;
pub mod pagetable;
pub mod policy;
pub mod sched;
pub mod supervisor;
pub mod system;
pub mod time;
pub mod timers;
pub mod usermem;
