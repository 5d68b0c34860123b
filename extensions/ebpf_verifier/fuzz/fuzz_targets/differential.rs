//! Differential fuzzing of the verifier against the bounds-checking reference interpreter.
//!
//! Input byte 0 picks the mode (its value modulo 3):
//! - 0: bytes 1..9 seed the structured generator (`testing::generate`), whose programs
//!   are built from templates so that many pass verification;
//! - 1: the same seed drives `testing::generate_joins` (long programs full of joins, loops
//!   and spills, mostly accepted: exercises state merging and liveness);
//! - 2: the rest of the input is taken as raw instruction slots (anything at all).
//!
//! Either way the program is verified; if it is accepted it runs on several random contexts
//! in `testing::refvm`, and any safety violation (out-of-bounds access, uninitialised read,
//! pointer leak, run longer than the analysis explored) aborts: it is a verifier bug.
//! The verifier itself must never panic on any input.
#![no_main]

use ebpf_verifier::testing::{check_one, check_program, generate_joins, CheckOutcome};
use ebpf_verifier::RawInsn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut seed = [0u8; 8];
    for (s, b) in seed.iter_mut().zip(rest) {
        *s = *b;
    }
    let seed = u64::from_le_bytes(seed);
    if mode % 3 == 0 {
        if let (program, CheckOutcome::Violation(v)) = check_one(seed) {
            panic!("seed {seed}: accepted program violates safety: {v:?}\n{program:?}");
        }
    } else if mode % 3 == 1 {
        let program = generate_joins(seed);
        if let CheckOutcome::Violation(v) = check_program(&program, seed, 4) {
            panic!("joins seed {seed}: accepted program violates safety: {v:?}\n{program:?}");
        }
    } else {
        let program: Vec<RawInsn> = rest
            .chunks_exact(8)
            .map(|c| {
                let mut slot = [0u8; 8];
                slot.copy_from_slice(c);
                RawInsn::from_bytes(slot)
            })
            .collect();
        if let CheckOutcome::Violation(v) = check_program(&program, mode as u64, 4) {
            panic!("accepted raw program violates safety: {v:?}\n{program:?}");
        }
    }
});
