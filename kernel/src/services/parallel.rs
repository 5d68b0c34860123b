//! The engine's [`llm::Parallel`] over the kernel's worker pool: one worker per online core.
//!
//! The engine cuts every matrix product's rows (and attention's heads) into chunks, several per
//! worker, that the workers claim from a shared counter, and calls `run` once per product (see
//! `llm::parallel`); `run` is the pool's fork-join barrier
//! (`smp::run_on_all_cores`: publish the job, wake the other cores by SGI, run the caller's
//! share, wait for the last core). The pool hands each share its core index and the core count,
//! exactly the `(worker, workers)` pair the engine expects, so this adapter adds nothing to the
//! per-product cost. Calls from a core other than the boot core, or while the pool is busy, run
//! every share on the calling core in turn (the pool's own rule), which is still correct.

use crate::smp;

/// Runs the engine's parallel work on every online core.
#[derive(Clone, Copy, Debug, Default)]
pub struct CorePool;

impl llm::Parallel for CorePool {
    fn workers(&self) -> usize {
        smp::online_cores().clamp(1, llm::limits::MAX_WORKERS)
    }

    fn run(&self, work: &(dyn Fn(usize, usize) + Sync)) {
        if smp::online_cores() > llm::limits::MAX_WORKERS {
            // More cores than the engine plans for: keep its worker count by running the
            // shares on this core (never reached with the kernel's MAX_CPUS).
            let workers = self.workers();
            for worker in 0..workers {
                work(worker, workers);
            }
            return;
        }
        smp::run_on_all_cores(work);
    }
}
