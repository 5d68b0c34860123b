//! Splitting matrix rows over workers (cores).
//!
//! The engine does not own threads: the caller supplies a [`Parallel`] that runs one closure on
//! every worker and returns when all are done (a fork-join barrier). The kernel implements it
//! over its cores; [`Sequential`] runs everything on the calling core and, with the `std`
//! feature, `ThreadScope` uses `std::thread::scope` for host tests and tools.
//!
//! Each worker computes a contiguous range of output rows ([`rows_for`]), so workers write
//! disjoint parts of the output. [`par_rows`] is the one place that hands those disjoint parts
//! out; it is the only `unsafe` in the engine outside the NEON kernels.

use core::ops::Range;

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

/// The rows worker `worker` of `workers` computes out of `rows`: contiguous, balanced to within
/// one row, covering `0..rows` exactly once over all workers.
pub fn rows_for(rows: usize, worker: usize, workers: usize) -> Range<usize> {
    let workers = workers.max(1);
    let start = rows * worker / workers;
    let end = rows * (worker + 1) / workers;
    start.min(rows)..end.min(rows)
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
    par.run(&|worker, workers| {
        let range = rows_for(shared.len, worker, workers);
        if range.is_empty() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: `range` lies inside `0..len` (rows_for clamps it), the ranges of different
        // workers are disjoint, `out` is mutably borrowed for the whole of `par.run`, which
        // returns only after every worker has finished: each element is written by one worker
        // and nobody else reads or writes it meanwhile.
        let mine = unsafe {
            core::slice::from_raw_parts_mut(shared.ptr.add(range.start), range.end - range.start)
        };
        for (o, i) in mine.iter_mut().zip(range) {
            *o = row(i);
        }
    });
}

/// Calls `f(first_row, rows)` on each worker with its contiguous share of `out` (see
/// [`rows_for`]), so a kernel can run over a whole range of rows per call.
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
    par.run(&|worker, workers| {
        let range = rows_for(shared.len, worker, workers);
        if range.is_empty() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: as in `par_rows`: `range` is inside `0..len`, the workers' ranges are
        // disjoint, and `out` stays mutably borrowed until `par.run` has returned.
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
    par.run(&|worker, workers| {
        for i in rows_for(chunks, worker, workers) {
            let start = i * chunk_len;
            let end = (start + chunk_len).min(shared.len);
            #[allow(unsafe_code)]
            // SAFETY: chunk `i` is `start..end` inside `0..len`; each chunk index belongs to
            // exactly one worker (rows_for partitions `0..chunks`), so chunks handed out are
            // disjoint, and `out` stays mutably borrowed until `par.run` has returned.
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
    par.run(&|worker, workers| {
        let range = rows_for(rows, worker, workers);
        if range.is_empty() {
            return;
        }
        let mut parts: [&mut [f32]; MAX_PARTS] = Default::default();
        for (part, out) in parts.iter_mut().zip(&shared[..count]) {
            #[allow(unsafe_code)]
            // SAFETY: as in `par_ranges`, for each output: `range` is inside `0..rows`, the
            // workers' ranges are disjoint, and every output stays mutably borrowed until
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
    fn rows_cover_everything_once() {
        for rows in [0, 1, 5, 49152, 577] {
            for workers in 1..9 {
                let mut next = 0;
                for w in 0..workers {
                    let r = rows_for(rows, w, workers);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, rows);
            }
        }
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
