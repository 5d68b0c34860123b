//! Pulls the boot assembly (boot/entry.S) into the kernel image.
//!
//! The entry code lives in boot/ (it is what a board's loader jumps to); assembling it here with
//! `global_asm!` keeps one build with one linker invocation, and lets the linker resolve the
//! symbols it shares with Rust (`kernel_main`, `secondary_main`, `SECONDARY_BOOT`,
//! `exception_vectors`).

core::arch::global_asm!(include_str!("../../../../boot/entry.S"));
