//! eBPF (RFC 9669): instructions, assembler, disassembler, interpreter, maps, helpers, ELF loader.
//!
//! `insn` is the single definition of the encoding; every other module builds on it.
//! `helpers` holds the helper prototypes the verifier type-checks calls against.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod asm;
pub mod bench;
pub mod btf;
pub mod disasm;
pub mod elf;
pub mod helpers;
pub mod insn;
pub mod limits;
pub mod maps;
pub mod memory;
pub mod runtime;
pub mod selftest;
pub mod sync;
pub mod vm;
