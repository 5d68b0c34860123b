//! Privileged kernel services. For now: the inference service (the model from the initrd, its
//! console commands, and the engine's worker pool over all cores).
//!
//! Services are portable logic driven from the kernel: the engine itself is the `llm` crate
//! (no_std, host-tested); this module only wires it to the kernel's initrd, heap, timer,
//! console and cores, so it needs no `unsafe`.

pub mod ai;
pub mod limits;
pub mod model;
pub mod parallel;

/// Starts the services (after the heap, the interrupts and the secondary cores, before the
/// shell): loads the model from the initrd when there is one. Never fails the boot.
pub fn init() {
    model::init(crate::memory::initrd());
}
