//! Portable kernel algorithms: device-tree facts, console line editing and commands, memory layout.
//!
//! Everything in this crate is pure logic that touches no register, so it builds for the host and
//! is unit-tested there with plain `cargo test -p kcore`; the kernel crate (aarch64 only) calls it.
//! This is Hubris's `kerncore` idea: the parts of a kernel that decide things (what the device tree
//! says, which bytes a console line holds, which frames are free, what a page-table entry looks
//! like, what an exception syndrome means) live where a test can reach them, and the arch code
//! that only moves values in and out of registers stays small.
//!
//! Nothing here allocates: the kernel parses the device tree and builds its page tables before it
//! has a heap, so every collection is a fixed-capacity [`bounded::BoundedList`] whose capacity is a
//! named constant in [`limits`].

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod bootargs;
pub mod bounded;
pub mod cpu_model;
pub mod device_tree;
pub mod esr;
pub mod fdt;
pub mod frame_allocator;
pub mod limits;
pub mod line_editor;
pub mod page_table;
pub mod ring_buffer;
pub mod shell_words;
