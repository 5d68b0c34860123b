//! Portable kernel algorithms: device-tree facts, console line editing and commands, memory layout

#![cfg_attr(not(test), no_std)]
