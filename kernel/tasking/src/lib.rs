//! Portable microkernel core (under construction).
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
