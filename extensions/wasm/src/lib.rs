//! WASM extension host on wasmi: capability manifests, fuel, limits, WAT-subset compiler.
//!
//! WebAssembly modules are Anneal's capability-controlled services and policies. This crate
//! is everything about them that does not touch hardware, so it builds for
//! `aarch64-unknown-none` (the kernel links it) and tests on the host:
//!
//! - [`manifest`]: the capability manifest carried in a custom section of each module;
//! - [`host`]: the host functions a manifest can grant and the [`host::HostServices`] trait
//!   the kernel implements (telemetry counters, maps shared with eBPF);
//! - [`runtime`]: load, link only granted imports, call with fuel and limits, typed faults;
//! - [`bundle`]: the container of named modules the kernel loads (built by `wasm_pack`);
//! - [`wat`]: a compiler for a documented WAT subset, for model-written modules in-kernel;
//! - [`console`]: `wasm list|run|info` as a portable function the kernel's shell calls;
//! - [`mod@bench`]: call-overhead benchmarks the host and the kernel both run.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod bench;
pub mod bundle;
pub mod console;
pub mod error;
pub mod host;
pub mod limits;
pub mod manifest;
pub mod runtime;
pub mod wat;

pub use console::WasmShell;
pub use error::{ErrorKind, ExtensionError, Fault, HostFault, LinkReason};
pub use host::{HostServices, InMemoryServices, LogLevel, LogRecord, MapError};
pub use manifest::{Manifest, ManifestError, MANIFEST_SECTION};
pub use runtime::{CallFailure, CallOutcome, Extension, ModuleInfo, Runtime, Value, ValueType};
