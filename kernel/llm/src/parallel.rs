//! Splitting matrix rows over workers (cores).
//!
//! The engine does not own threads: the caller supplies a [`Parallel`] that runs one closure on
//! every worker and returns when all are done (a fork-join barrier). The kernel implements it
//! over its cores; [`Sequential`] runs everything on the calling core and, with the `std`
//! feature, `ThreadScope` uses `std::thread::scope` for host tests and tools.
//!
//! Work is handed out dynamically: the rows of a product are cut into [`Chunking`] chunks
//! (several per worker) and every worker takes the next unclaimed chunk from one atomic
//! counter until none is left. A worker that starts late (woken from `wfi`, or its host thread
//! descheduled under QEMU) simply takes fewer chunks, so the barrier waits for at most about one
//! chunk instead of for the slowest worker's whole share. Every row is computed by exactly one
//! worker with the same code whatever the split, so results do not depend on it. The functions
//! here are the one place that hands the disjoint parts of an output out; they are the only
//! `unsafe` in the engine outside the NEON kernels.

use core::ops::Range;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Runs a closure on every worker and waits for all of them.
pub trait Parallel: Sync {
    /// Number of workers `run` uses (at least 1).
    fn workers(&self) -> usize;
    /// Calls `f(worker, workers)` once for each `worker` in `0..workers`, possibly
    /// concurrently, and returns after every call has returned.
    fn run(&self, f: &(dyn Fn(usize, usize) + Sync));
}

/// Everything on the calling core.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential;

impl Parallel for Sequential {
    fn workers(&self) -> usize {
        1
    }
    fn run(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        f(0, 1)
    }
}

/// `workers` host threads per call through `std::thread::scope` (tests and tools only: it
/// spawns threads on each call, which the kernel's implementation does not).
#[cfg(any(test, feature = "std"))]
#[derive(Clone, Copy, Debug)]
pub struct ThreadScope {
    /// Number of threads.
    pub workers: usize,
}

#[cfg(any(test, feature = "std"))]
impl Parallel for ThreadScope {
    fn workers(&self) -> usize {
        self.workers.clamp(1, crate::limits::MAX_WORKERS)
    }
    fn run(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        extern crate std;
        let n = self.workers();
        std::thread::scope(|s| {
            for w in 1..n {
                s.spawn(move || f(w, n));
            }
            f(0, n);
        });
    }
}

/// Chunks handed out per worker: enough that a late start or an uneven host costs a fraction
/// of a share, few enough that the per-chunk setup (a kernel call) stays negligible.
pub const CHUNKS_PER_WORKER: usize = 8;

/// Chunk lengths are multiples of this (rows), so kernels that work on groups of rows see
/// whole groups except at the very end.
const CHUNK_ALIGN: usize = 4;

/// How `units` units of work (rows, heads) are cut into chunks for `workers` workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunking {
    /// Units per chunk (the last chunk may be shorter).
    pub len: usize,
    /// Number of chunks.
    pub count: usize,
}

impl Chunking {
    /// `CHUNKS_PER_WORKER` chunks per worker, rounded up to [`CHUNK_ALIGN`] units (1 when
    /// `align` is false, for units that are not rows).
    pub fn new(units: usize, workers: usize, align: bool) -> Self {
        let wanted = workers.max(1) * CHUNKS_PER_WORKER;
        let mut len = units.div_ceil(wanted).max(1);
        if align {
            len = len.next_multiple_of(CHUNK_ALIGN);
        }
        Chunking {
            len,
            count: units.div_ceil(len),
        }
    }

    /// The units of chunk `index`.
    pub fn range(&self, index: usize, units: usize) -> Range<usize> {
        let start = (index * self.len).min(units);
        start..(start + self.len).min(units)
    }
}

/// Calls `f(range)` for every chunk of `0..units`, each exactly once, the chunks claimed
/// dynamically by `par`'s workers (see the module documentation).
fn run_chunked(par: &dyn Parallel, units: usize, align: bool, f: &(dyn Fn(Range<usize>) + Sync)) {
    let chunking = Chunking::new(units, par.workers(), align);
    let next = AtomicUsize::new(0);
    par.run(&|_worker, _workers| loop {
        // Relaxed is enough: the counter only has to hand every index out once; the outputs
        // are published to the caller by `par.run`'s own barrier.
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= chunking.count {
            break;
        }
        f(chunking.range(index, units));
    });
}

/// Raw view of the output slice shared by the workers (each writes only its own rows).
struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: workers only ever write disjoint index ranges through `SharedOut` (see `par_rows`),
// so sharing the pointer between threads cannot create a data race.
#[allow(unsafe_code)]
unsafe impl Sync for SharedOut {}

/// Computes `out[i] = row(i)` for every `i`, with the rows split over `par`'s workers.
pub fn par_rows(par: &dyn Parallel, out: &mut [f32], row: &(dyn Fn(usize) -> f32 + Sync)) {
    let rows = out.len();
    if par.workers() <= 1 {
        for (i, o) in out.iter_mut().enumerate() {
            *o = row(i);
        }
        return;
    }
    let shared = SharedOut {
        ptr: out.as_mut_ptr(),
        len: rows,
    };
    let shared = &shared;
    run_chunked(par, rows, true, &|range| {
        if range.is_empty() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: `range` lies inside `0..len` (Chunking::range clamps it), every chunk is
        // claimed by one worker only (run_chunked), so the ranges are disjoint, and `out` is
        // mutably borrowed for the whole of `par.run`, which returns only after every worker has
        // finished: each element is written by one worker and nobody else reads or writes it
        // meanwhile.
        let mine = unsafe {
            core::slice::from_raw_parts_mut(shared.ptr.add(range.start), range.end - range.start)
        };
        for (o, i) in mine.iter_mut().zip(range) {
            *o = row(i);
        }
    });
}

/// Calls `f(first_row, rows)` for every chunk of `out` (see [`Chunking`]), on whichever worker
/// claims it, so a kernel can run over a whole range of rows per call.
pub fn par_ranges(par: &dyn Parallel, out: &mut [f32], f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let rows = out.len();
    if par.workers() <= 1 {
        f(0, out);
        return;
    }
    let shared = SharedOut {
        ptr: out.as_mut_ptr(),
        len: rows,
    };
    let shared = &shared;
    run_chunked(par, rows, true, &|range| {
        if range.is_empty() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: as in `par_rows`: `range` is inside `0..len`, the chunks are disjoint, and
        // `out` stays mutably borrowed until `par.run` has returned.
        let mine = unsafe {
            core::slice::from_raw_parts_mut(shared.ptr.add(range.start), range.end - range.start)
        };
        f(range.start, mine);
    });
}

/// Calls `f(chunk_index, chunk)` for every `chunk_len`-sized chunk of `out` (the last may be
/// shorter), with the chunks split over `par`'s workers. Used where one unit of work (an
/// attention head) writes several outputs.
pub fn par_chunks(
    par: &dyn Parallel,
    out: &mut [f32],
    chunk_len: usize,
    f: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    let chunk_len = chunk_len.max(1);
    let len = out.len();
    let chunks = len.div_ceil(chunk_len);
    if par.workers() <= 1 {
        for (i, c) in out.chunks_mut(chunk_len).enumerate() {
            f(i, c);
        }
        return;
    }
    let shared = SharedOut {
        ptr: out.as_mut_ptr(),
        len,
    };
    let shared = &shared;
    run_chunked(par, chunks, false, &|indices| {
        for i in indices {
            let start = i * chunk_len;
            let end = (start + chunk_len).min(shared.len);
            #[allow(unsafe_code)]
            // SAFETY: chunk `i` is `start..end` inside `0..len`; each index belongs to exactly
            // one claimed range (run_chunked hands every range out once), so chunks handed out
            // are disjoint, and `out` stays mutably borrowed until `par.run` has returned.
            let chunk =
                unsafe { core::slice::from_raw_parts_mut(shared.ptr.add(start), end - start) };
            f(i, chunk);
        }
    });
}

/// Most outputs [`par_ranges_batch`] and [`with_parts`] split together: two per token of a
/// batch (the FFN's gate and up products).
pub const MAX_PARTS: usize = 2 * crate::limits::MAX_BATCH;

/// [`par_ranges`] for several outputs of equal length split at the same rows (one or two
/// outputs per token of a batch): `f(first_row, parts)` gets each output's share
/// `first_row..first_row + n` in `parts`, in order. At most [`MAX_PARTS`] outputs.
pub fn par_ranges_batch(
    par: &dyn Parallel,
    outs: &mut [&mut [f32]],
    f: &(dyn Fn(usize, &mut [&mut [f32]]) + Sync),
) {
    let count = outs.len().min(MAX_PARTS);
    let rows = outs.first().map_or(0, |out| out.len());
    if outs.iter().any(|out| out.len() != rows) {
        return;
    }
    if par.workers() <= 1 {
        f(0, &mut outs[..count]);
        return;
    }
    let mut shared: [SharedOut; MAX_PARTS] = core::array::from_fn(|_| SharedOut {
        ptr: core::ptr::null_mut(),
        len: 0,
    });
    for (slot, out) in shared.iter_mut().zip(outs.iter_mut()) {
        *slot = SharedOut {
            ptr: out.as_mut_ptr(),
            len: rows,
        };
    }
    let shared = &shared;
    run_chunked(par, rows, true, &|range| {
        if range.is_empty() {
            return;
        }
        let mut parts: [&mut [f32]; MAX_PARTS] = Default::default();
        for (part, out) in parts.iter_mut().zip(&shared[..count]) {
            #[allow(unsafe_code)]
            // SAFETY: as in `par_ranges`, for each output: `range` is inside `0..rows`, the
            // chunks are disjoint, and every output stays mutably borrowed until
            // `par.run` has returned.
            let mine = unsafe {
                core::slice::from_raw_parts_mut(out.ptr.add(range.start), range.end - range.start)
            };
            *part = mine;
        }
        f(range.start, &mut parts[..count]);
    });
}

/// Runs `f` on the sub-slices `range` of every output in `outs` (at most [`MAX_PARTS`]),
/// without allocating.
pub fn with_parts<R>(
    outs: &mut [&mut [f32]],
    range: Range<usize>,
    f: impl FnOnce(&mut [&mut [f32]]) -> R,
) -> R {
    let count = outs.len().min(MAX_PARTS);
    let mut parts: [&mut [f32]; MAX_PARTS] = Default::default();
    for (part, out) in parts.iter_mut().zip(outs.iter_mut()) {
        *part = out.get_mut(range.clone()).unwrap_or_default();
    }
    f(&mut parts[..count])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn chunks_cover_every_unit_once_and_are_aligned() {
        for units in [0, 1, 3, 5, 36, 576, 577, 960, 1536, 49152] {
            for workers in 1..9 {
                for align in [false, true] {
                    let chunking = Chunking::new(units, workers, align);
                    assert!(chunking.count <= workers * CHUNKS_PER_WORKER);
                    let mut next = 0;
                    for index in 0..chunking.count {
                        let range = chunking.range(index, units);
                        assert_eq!(range.start, next);
                        assert!(!range.is_empty());
                        if align && range.end != units {
                            assert_eq!(range.len() % CHUNK_ALIGN, 0);
                        }
                        next = range.end;
                    }
                    assert_eq!(next, units, "units {units} workers {workers}");
                    assert!(chunking.range(chunking.count, units).is_empty());
                }
            }
        }
    }

    #[test]
    fn chunked_runs_claim_every_chunk_once_across_threads() {
        let claimed: alloc::vec::Vec<AtomicUsize> =
            (0..1000).map(|_| AtomicUsize::new(0)).collect();
        run_chunked(&ThreadScope { workers: 4 }, 1000, true, &|range| {
            for i in range {
                claimed[i].fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(claimed.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn par_rows_matches_sequential() {
        let f = |i: usize| (i * i) as f32;
        let mut a = vec![0f32; 1001];
        let mut b = vec![0f32; 1001];
        par_rows(&Sequential, &mut a, &f);
        par_rows(&ThreadScope { workers: 3 }, &mut b, &f);
        assert_eq!(a, b);
        assert_eq!(a[1000], 1_000_000.0);
    }

    #[test]
    fn par_ranges_batch_splits_every_output_at_the_same_rows() {
        let f = |first: usize, parts: &mut [&mut [f32]]| {
            for (t, part) in parts.iter_mut().enumerate() {
                for (i, r) in part.iter_mut().enumerate() {
                    *r += (1000 * t + first + i) as f32;
                }
            }
        };
        let mut a = vec![vec![0f32; 577]; 3];
        let mut outs: alloc::vec::Vec<&mut [f32]> = a.iter_mut().map(|v| &mut v[..]).collect();
        par_ranges_batch(&ThreadScope { workers: 4 }, &mut outs, &f);
        for (t, v) in a.iter().enumerate() {
            assert!(v
                .iter()
                .enumerate()
                .all(|(i, &x)| x == (1000 * t + i) as f32));
        }
        let mut b = vec![vec![1f32; 4]; 2];
        let mut outs: alloc::vec::Vec<&mut [f32]> = b.iter_mut().map(|v| &mut v[..]).collect();
        with_parts(&mut outs, 1..3, |parts| {
            for part in parts {
                part.fill(5.0);
            }
        });
        assert_eq!(b, vec![vec![1.0, 5.0, 5.0, 1.0]; 2]);
    }

    #[test]
    fn par_ranges_covers_every_row_once() {
        let f = |first: usize, rows: &mut [f32]| {
            for (i, r) in rows.iter_mut().enumerate() {
                *r += (first + i) as f32;
            }
        };
        let mut a = vec![0f32; 577];
        par_ranges(&ThreadScope { workers: 3 }, &mut a, &f);
        let mut b = vec![0f32; 577];
        par_ranges(&Sequential, &mut b, &f);
        assert_eq!(a, b);
        assert!(a.iter().enumerate().all(|(i, &v)| v == i as f32));
    }

    #[test]
    fn par_chunks_matches_sequential() {
        let f = |i: usize, c: &mut [f32]| {
            for (j, v) in c.iter_mut().enumerate() {
                *v = (i * 100 + j) as f32;
            }
        };
        let mut a = vec![0f32; 1003];
        let mut b = vec![0f32; 1003];
        par_chunks(&Sequential, &mut a, 10, &f);
        par_chunks(&ThreadScope { workers: 4 }, &mut b, 10, &f);
        assert_eq!(a, b);
        assert_eq!(a[1002], 10002.0);
    }
}
