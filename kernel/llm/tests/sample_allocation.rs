//! "No allocation in the token loop", checked with a counting global allocator: once warmed
//! up, sampling (every mode), the grammar mask, `accept_token`, `sample_constrained` and the
//! streaming decoder allocate nothing per token.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use llm::grammar::{sample_constrained, Grammar, GrammarState, VocabTrie};
use llm::sample::{Pcg32, Sampler, SamplerConfig, TokenMask};
use llm::tokenizer::StreamDecoder;

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

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

#[test]
fn token_loop_does_not_allocate() {
    const VOCAB: usize = 2000;
    // A vocabulary of short lowercase pieces, digits, punctuation and newlines.
    let pieces: Vec<Vec<u8>> = (0..VOCAB as u32 - 1)
        .map(|i| {
            let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 ,:[]+-\n#%";
            let len = 1 + (i % 4) as usize;
            (0..len)
                .map(|k| alphabet[((i as usize / (k + 1)) * 7 + k * 13) % alphabet.len()])
                .collect()
        })
        .collect();
    let end = VOCAB as u32 - 1;
    let mut entries: Vec<Option<&[u8]>> = pieces.iter().map(|p| Some(p.as_slice())).collect();
    entries.push(None);
    let trie = VocabTrie::build(entries, &[end]);
    let grammar = Arc::new(Grammar::parse(llm::grammar::EBPF_ASM).unwrap());
    let mut rng = Pcg32::new(5);
    let mut logits = vec![0.0f32; VOCAB];
    let mut mask = TokenMask::new_block_all(VOCAB);
    let mut decoder = StreamDecoder::new();

    for config in [
        SamplerConfig::GREEDY,
        SamplerConfig::default(),
        SamplerConfig {
            top_k: 0,
            top_p: 1.0,
            ..SamplerConfig::default()
        },
    ] {
        let mut sampler = Sampler::new(VOCAB, config);
        let mut state = GrammarState::new(grammar.clone()).unwrap();
        // Warm up: buffers grow to size and the transition cache learns the common states.
        // After that, a step allocates only when the cache meets a stack set it has not seen
        // (amortised, bounded by MAX_CACHED_SETS); every other step must allocate nothing.
        let mut quiet_steps = 0;
        for step in 0..1700 {
            let sets_before = state.cached_sets();
            let before = allocations();
            for logit in logits.iter_mut() {
                *logit = rng.next_f32() * 8.0;
            }
            logits[end as usize] = -1.0;
            let token = sample_constrained(&mut sampler, &mut logits, &mut state, &trie, &mut mask)
                .unwrap();
            state.mask(&trie, &mut mask).unwrap();
            let _ = decoder.push(trie.token_bytes(token).unwrap_or(&[]));
            let free = sampler.sample(&mut logits, None).unwrap();
            assert!((free as usize) < VOCAB);
            if state.is_complete() {
                state.reset().unwrap();
            }
            let allocated = allocations() - before;
            if step >= 1500 && state.cached_sets() == sets_before {
                assert_eq!(allocated, 0, "step {step} allocated with {config:?}");
                quiet_steps += 1;
            }
        }
        assert!(quiet_steps > 150, "{quiet_steps} steps checked");
    }
}
