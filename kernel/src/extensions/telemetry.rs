//! Telemetry counters extensions may read (`telemetry_read` in WASM, by name; a manifest must
//! list each name it reads).
//!
//! Design: a static table of (name, reader) pairs rather than a dynamic registry: the kernel's
//! counters are few and known at build time, a reader computes the value when asked (no
//! bookkeeping on hot paths), and `wasm info` / model prompts can list the names. Counters of
//! extension activity are plain atomics bumped by the console commands.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::aarch64::{smp, timer};

/// eBPF program runs started by the kernel (selftest, `ebpf count`, multi-core test).
pub static EBPF_RUNS: AtomicU64 = AtomicU64::new(0);

/// WASM export calls made through the console (`wasm run`).
pub static WASM_CALLS: AtomicU64 = AtomicU64::new(0);

/// One readable counter.
pub struct Counter {
    /// Name a manifest lists and `telemetry_read` passes.
    pub name: &'static str,
    /// What it counts, for `wasm counters`.
    pub summary: &'static str,
    /// Reads the current value.
    pub read: fn() -> u64,
}

/// Every counter, in the order `wasm counters` lists them.
pub static COUNTERS: &[Counter] = &[
    Counter {
        name: "kernel.uptime_ms",
        summary: "milliseconds since boot (generic timer)",
        read: timer::uptime_milliseconds,
    },
    Counter {
        name: "kernel.cores_online",
        summary: "cores running",
        read: || smp::online_cores() as u64,
    },
    Counter {
        name: "kernel.ticks",
        summary: "timer ticks taken, summed over all cores",
        read: || {
            smp::PER_CORE
                .iter()
                .map(|core| core.ticks.load(Ordering::Relaxed))
                .sum()
        },
    },
    Counter {
        name: "kernel.heap_free_bytes",
        summary: "free bytes in the kernel heap",
        read: || crate::memory::heap_usage().0,
    },
    Counter {
        name: "ebpf.runs",
        summary: "eBPF program runs started by the kernel",
        read: || EBPF_RUNS.load(Ordering::Relaxed),
    },
    Counter {
        name: "wasm.calls",
        summary: "WASM export calls made from the console",
        read: || WASM_CALLS.load(Ordering::Relaxed),
    },
];

/// The current value of counter `name`, or `None` when the kernel has no such counter.
pub fn read(name: &str) -> Option<u64> {
    COUNTERS
        .iter()
        .find(|counter| counter.name == name)
        .map(|counter| (counter.read)())
}
