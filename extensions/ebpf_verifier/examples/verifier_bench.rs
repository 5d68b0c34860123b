//! Verifier time and peak heap against program size.
//!
//! ```text
//! cargo run --release -p ebpf_verifier --example verifier_bench -- [--json] [--repeat N] [--sizes 64,256,...]
//! ```
//!
//! Runs [`ebpf_verifier::bench::run`] on its three program families and prints one row per
//! (family, size): best verification time, instructions processed, states kept, the
//! analysis' own memory accounting, and the real peak heap of one verification measured by
//! a counting global allocator. With `--json`, one JSON object a line (the format of
//! `cargo xtask bench`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator with the same arguments, so its
// contract is upheld; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout as asked, forwarded to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let repeat: u32 = value("--repeat").and_then(|v| v.parse().ok()).unwrap_or(3);
    let sizes: Vec<usize> = value("--sizes")
        .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| ebpf_verifier::bench::SIZES.to_vec());
    let start = Instant::now();
    let clock = move || start.elapsed().as_nanos() as u64;
    let rows = ebpf_verifier::bench::run(&clock, &sizes, repeat);
    for row in rows {
        // Real peak heap of one more verification of the same program.
        let p = ebpf_verifier::bench::program(row.family, row.insns + 2);
        let mut config = ebpf_verifier::VerifierConfig::new(64);
        config.max_insns = p.len();
        config.complexity_limit = u64::MAX;
        config.max_pending_paths = usize::MAX;
        config.max_stored_states = usize::MAX;
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let _ = ebpf_verifier::verify(&p, &config);
        let peak_heap = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        if json {
            println!(
                "{{\"bench\":\"ebpf_verifier\",\"family\":\"{}\",\"insns\":{},\"accepted\":{},\"verify_us\":{:.1},\"states_explored\":{},\"states_stored\":{},\"state_bytes\":{},\"peak_heap_bytes\":{}}}",
                row.family,
                row.insns,
                row.accepted,
                row.best_ns as f64 / 1000.0,
                row.states_explored,
                row.states_stored,
                row.peak_state_bytes,
                peak_heap
            );
        } else {
            println!(
                "{:<9} {:>6} insns  {:>10.1} us  {:>8} explored  {:>6} kept  peak heap {:>9} B  {}",
                row.family,
                row.insns,
                row.best_ns as f64 / 1000.0,
                row.states_explored,
                row.states_stored,
                peak_heap,
                if row.accepted { "ACCEPT" } else { "REJECT" }
            );
        }
    }
}
