//! AArch64: boot glue, CPU helpers, exceptions, MMU, GIC, generic timer, SMP, PSCI, semihosting.
//!
//! This is the one place (with `drivers`) where `unsafe` is allowed: register access and raw
//! memory. Each `unsafe` block carries a `// SAFETY:` comment with the invariant it relies on.

#![allow(unsafe_code)]

pub mod boot;
pub mod cpu;
pub mod exceptions;
pub mod gic;
pub mod mmu;
pub mod psci;
pub mod semihosting;
pub mod smp;
pub mod timer;
