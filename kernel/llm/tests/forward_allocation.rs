//! "No allocation inside the token loop", checked with a counting global allocator: after the
//! model is loaded and the session created, `Session::forward` allocates nothing (SmolLM2,
//! on the calling core).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use llm::{argmax, Model, Sequential};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn forward_does_not_allocate() {
    let bytes = common::smollm2_bytes();
    let model = Model::load(&bytes, &mut |_| {}).expect("load");
    let mut session = model.session(16).expect("session");
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut token = 1u32;
    for pos in 0..4 {
        token = argmax(session.forward(token, pos, &Sequential).expect("forward")) as u32;
    }
    session.reset();
    let _ = session.forward(token, 0, &Sequential).expect("forward");
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(
        after - before,
        0,
        "forward allocated {} times",
        after - before
    );
}
