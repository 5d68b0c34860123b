//! eBPF verifier: abstract interpretation over typed registers

#![cfg_attr(not(test), no_std)]
