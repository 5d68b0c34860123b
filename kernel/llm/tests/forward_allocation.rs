//! "No allocation inside the token loop", checked with a counting global allocator: after the
//! model is loaded and the session created, `Session::forward` and `Session::forward_batch`
//! allocate nothing (SmolLM2, on the calling core). The batch test also checks, on the real
//! model, that a batched prompt gives exactly the logits of feeding it token by token.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use llm::{argmax, Model, Sequential};

struct Counting;

thread_local! {
    /// Allocations made by this thread (libtest runs the tests on threads of their own, so
    /// each test counts only its own; const-initialised, so counting never allocates).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
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
    let before = allocations();
    let mut token = 1u32;
    for pos in 0..4 {
        token = argmax(session.forward(token, pos, &Sequential).expect("forward")) as u32;
    }
    session.reset();
    let _ = session.forward(token, 0, &Sequential).expect("forward");
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "forward allocated {} times",
        after - before
    );
}

#[test]
fn batched_prompt_allocates_nothing_and_equals_token_by_token() {
    let bytes = common::smollm2_bytes();
    let model = Model::load(&bytes, &mut |_| {}).expect("load");
    let prompt = [1u32, 4093, 198, 19161, 253, 340, 1517, 338, 6765, 260, 3227];
    let mut single = model.session(16).expect("session");
    let mut expected = Vec::new();
    for (pos, &t) in prompt.iter().enumerate() {
        expected = single
            .forward(t, pos, &Sequential)
            .expect("forward")
            .to_vec();
    }
    let mut batched = model.session(16).expect("session");
    let before = allocations();
    let _ = batched
        .forward_batch(&prompt[..llm::limits::MAX_BATCH], 0, &Sequential)
        .expect("first batch");
    let last = batched
        .forward_batch(
            &prompt[llm::limits::MAX_BATCH..],
            llm::limits::MAX_BATCH,
            &Sequential,
        )
        .expect("second batch");
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "forward_batch allocated {} times",
        after - before
    );
    assert!(
        last.iter()
            .zip(&expected)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "batched logits differ from token-by-token logits"
    );
}
