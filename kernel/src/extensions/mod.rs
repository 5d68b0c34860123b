//! eBPF and WebAssembly extensions inside the kernel: what the portable crates need from the
//! kernel (clock, core number, console, telemetry, shared maps) and the console commands that
//! drive them (`ebpf ...`, `wasm ...`).
//!
//! Design: all extension logic lives in the portable, host-tested crates (`ebpf`,
//! `ebpf_verifier`, `wasm`); this module only plugs the kernel in:
//!
//! - [`KernelPlatform`] implements `ebpf::runtime::Platform` (helpers' clock, trace output,
//!   randomness) over the generic timer and the console;
//! - [`telemetry`] is the small registry of counters that WASM modules read through
//!   `telemetry_read` (uptime, cores, ticks, heap, extension activity);
//! - [`shared_maps`] holds the eBPF maps WASM modules reach through `map_lookup` /
//!   `map_update` (one map object, two runtimes: an eBPF `lock add` and a WASM update see each
//!   other's writes);
//! - [`ebpf`] and [`wasm`] are the console commands; they print what the crates return.
//!
//! Nothing here runs on an interrupt path: the commands run on the console core and, for the
//! multi-core map test, on the worker pool (`smp::run_on_all_cores`). Every fault an
//! extension can cause is a typed value from the crates, printed as one line; none reaches
//! the kernel as a panic.

#![forbid(unsafe_code)]

pub mod ebpf;
pub mod limits;
pub mod telemetry;
pub mod wasm;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use ::ebpf::maps::{Map, MapDef, MapKind};
use spin::Once;

use crate::arch::aarch64::timer;

/// Name of the array map shared by eBPF programs and WASM modules (u32 key, u64 value); the
/// library module `roundtrip` lists it in its manifest.
pub const SHARED_COUNTS_MAP: &str = "counts";

/// Nanoseconds since boot from the generic timer (128-bit intermediate: no overflow for
/// centuries at any counter frequency).
pub fn now_ns() -> u64 {
    let frequency = timer::frequency().max(1);
    (u128::from(timer::counter()) * 1_000_000_000 / u128::from(frequency)) as u64
}

/// What eBPF helpers see of the kernel: the timer, the console, a xorshift generator.
pub struct KernelPlatform {
    seed: AtomicU32,
}

impl KernelPlatform {
    /// A platform whose random numbers start from the timer's current count.
    pub fn new() -> Self {
        Self {
            seed: AtomicU32::new((timer::counter() as u32) | 1),
        }
    }
}

impl ::ebpf::runtime::Platform for KernelPlatform {
    fn now_ns(&self) -> u64 {
        now_ns()
    }

    fn log(&self, line: &str) {
        crate::println!("[ebpf] trace=\"{}\"", line.escape_debug());
    }

    fn random_u32(&self) -> u32 {
        // xorshift32; a lost update between cores only repeats a number, which is harmless.
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed.store(x, Ordering::Relaxed);
        x
    }
}

static SHARED_MAPS: Once<Vec<Arc<Map>>> = Once::new();

/// The maps shared by eBPF programs and WASM modules, created on first use. A map that
/// cannot be created (it cannot fail for these fixed shapes, but it is checked) is left out
/// and reported once in the log.
pub fn shared_maps() -> &'static [Arc<Map>] {
    SHARED_MAPS.call_once(|| {
        let counts = MapDef {
            kind: MapKind::Array,
            key_size: 4,
            value_size: 8,
            max_entries: limits::SHARED_COUNTS_ENTRIES,
        };
        match Map::new(SHARED_COUNTS_MAP, counts, 1) {
            Ok(map) => alloc::vec![Arc::new(map)],
            Err(error) => {
                log::error!("shared eBPF map {SHARED_COUNTS_MAP} not created: {error}");
                Vec::new()
            }
        }
    })
}

/// A shared map by name.
pub fn shared_map(name: &str) -> Option<&'static Arc<Map>> {
    shared_maps().iter().find(|map| map.name() == name)
}
