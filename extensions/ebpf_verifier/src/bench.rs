//! Verifier cost against program size: time and peak analysis memory.
//!
//! Three families of synthetic programs, each generated at any size, cover the shapes whose
//! cost grows differently:
//! - `straight`: straight-line loads, ALU and stack traffic (one path: cost linear in size);
//! - `branches`: a chain of `if`/`else` diamonds on input values (2^k paths without state
//!   pruning and merging; linear with them);
//! - `loops`: a chain of small bounded loops (each unrolled by the analysis: cost is
//!   size times trip count).
//!
//! [`run`] takes the clock from the caller so the crate stays `no_std`; the `ebpf verify
//! --bench` command (and through it `cargo xtask bench ebpf`) prints the rows.

use alloc::vec::Vec;

use crate::config::VerifierConfig;
use crate::{verify, RawInsn};

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchRow {
    pub family: &'static str,
    /// Instruction slots.
    pub insns: usize,
    pub states_explored: u64,
    pub states_stored: usize,
    /// Peak bytes of analysis state (kept states plus pending paths).
    pub peak_state_bytes: usize,
    /// Best verification time over the repeats, in nanoseconds.
    pub best_ns: u64,
    /// Whether the program was accepted (all families are designed to be).
    pub accepted: bool,
}

/// Program families.
pub const FAMILIES: [&str; 3] = ["straight", "branches", "loops"];

/// Sizes measured by default: up to 4096 (the default limit) and beyond.
pub const SIZES: [usize; 6] = [64, 256, 1024, 4096, 16384, 65536];

/// A program of `family` with about `size` slots (never more).
pub fn program(family: &str, size: usize) -> Vec<RawInsn> {
    let mut p = alloc::vec![
        RawInsn::new(0xbf, 6, 1, 0, 0), // r6 = ctx
        RawInsn::new(0xb7, 3, 0, 0, 0), // r3 = 0
        RawInsn::new(0x7a, 10, 0, -8, 0),
        RawInsn::new(0x7a, 10, 0, -16, 0),
    ];
    let mut i = 0i16;
    let budget = size.saturating_sub(2);
    loop {
        let off = (i % 15) * 4;
        let slot = -8 * (1 + i % 2);
        let block: Vec<RawInsn> = match family {
            "straight" => alloc::vec![
                RawInsn::new(0x61, 2, 6, off, 0),    // r2 = *(u32 *)(r6 + off)
                RawInsn::new(0x0f, 3, 2, 0, 0),      // r3 += r2
                RawInsn::new(0x57, 3, 0, 0, 0xffff), // r3 &= 0xffff
                RawInsn::new(0x7b, 10, 3, slot, 0),  // *(u64 *)(r10 + slot) = r3
                RawInsn::new(0x79, 4, 10, slot, 0),  // r4 = *(u64 *)(r10 + slot)
                RawInsn::new(0xaf, 3, 4, 0, 0),      // r3 ^= r4
            ],
            "branches" => alloc::vec![
                RawInsn::new(0x61, 2, 6, off, 0),  // r2 = ctx[off]
                RawInsn::new(0x25, 2, 0, 2, 100),  // if r2 > 100 goto +2
                RawInsn::new(0x07, 3, 0, 0, 1),    // r3 += 1
                RawInsn::new(0x05, 0, 0, 1, 0),    // goto +1
                RawInsn::new(0x1f, 3, 2, 0, 0),    // r3 -= r2
                RawInsn::new(0x57, 3, 0, 0, 0xff), // r3 &= 0xff
            ],
            _ => alloc::vec![
                RawInsn::new(0xb7, 5, 0, 0, 0), // r5 = 0
                RawInsn::new(0x0f, 3, 5, 0, 0), // loop: r3 += r5
                RawInsn::new(0x57, 3, 0, 0, 0xffff),
                RawInsn::new(0x07, 5, 0, 0, 1),  // r5 += 1
                RawInsn::new(0xa5, 5, 0, -4, 8), // if r5 < 8 goto loop
            ],
        };
        if p.len() + block.len() > budget {
            break;
        }
        p.extend(block);
        i = i.wrapping_add(1);
    }
    p.push(RawInsn::new(0xbf, 0, 3, 0, 0));
    p.push(RawInsn::new(0x95, 0, 0, 0, 0));
    p
}

/// Verifies each family at each size `repeat` times and reports the best time.
/// `clock` returns nanoseconds from any fixed origin.
pub fn run(clock: &dyn Fn() -> u64, sizes: &[usize], repeat: u32) -> Vec<BenchRow> {
    let mut rows = Vec::new();
    for family in FAMILIES {
        for &size in sizes {
            let p = program(family, size);
            let mut config = VerifierConfig::new(64);
            config.max_insns = p.len().max(1);
            config.complexity_limit = u64::MAX;
            config.max_pending_paths = usize::MAX;
            config.max_stored_states = usize::MAX;
            let mut best = u64::MAX;
            let mut row = None;
            for _ in 0..repeat.max(1) {
                let start = clock();
                let result = verify(&p, &config);
                let elapsed = clock().saturating_sub(start);
                best = best.min(elapsed);
                row = Some(match result {
                    Ok(s) => (true, s.states_explored, s.states_stored, s.peak_state_bytes),
                    Err(_) => (false, 0, 0, 0),
                });
            }
            let (accepted, states_explored, states_stored, peak_state_bytes) =
                row.unwrap_or((false, 0, 0, 0));
            rows.push(BenchRow {
                family,
                insns: p.len(),
                states_explored,
                states_stored,
                peak_state_bytes,
                best_ns: best,
                accepted,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_accepted_and_sized() {
        for family in FAMILIES {
            for size in [16, 100, 1000] {
                let p = program(family, size);
                assert!(
                    p.len() <= size && p.len() + 8 >= size,
                    "{family} {size}: {}",
                    p.len()
                );
                let mut c = VerifierConfig::new(64);
                c.max_insns = 4096;
                if let Err(e) = verify(&p, &c) {
                    panic!("{family} at {size} rejected: {e}");
                }
            }
        }
    }

    #[test]
    fn branch_chains_cost_linear_not_exponential() {
        // 100 diamonds in a row: 2^100 paths without pruning and merging.
        let p = program("branches", 600);
        let s = verify(&p, &VerifierConfig::new(64)).unwrap();
        assert!(s.states_explored < 50 * p.len() as u64, "{s:?}");
    }
}
