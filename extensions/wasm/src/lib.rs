//! WASM extension host on wasmi: capability manifests, fuel, limits, WAT-subset compiler

#![cfg_attr(not(test), no_std)]
