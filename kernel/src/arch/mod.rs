//! Architecture code. Only AArch64 exists; the split mirrors rust-raspberrypi-OS-tutorials'
//! `_arch/aarch64` so that generic modules call `arch::...` and never touch registers themselves.

pub mod aarch64;
