//! eBPF (RFC 9669): instructions, assembler, disassembler, interpreter, maps, helpers, ELF loader

#![cfg_attr(not(test), no_std)]
