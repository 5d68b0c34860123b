//! Interpreter benchmark: nanoseconds per executed eBPF instruction on the five programs of
//! `../shared/bench/ebpf` (copied into `bench_programs/`, with their input generator), so the
//! same figures can be taken on the host and inside the kernel.
//!
//! The crate is no_std, so the caller supplies the clock (`now_ns`): the host binary passes
//! `std::time::Instant`, the kernel its timer. Each program is assembled and loaded once,
//! then run `repeat` times in both memory modes; the result keeps the best (minimum) time,
//! the usual way to suppress noise from a shared machine. Every run's r0 is checked against
//! the expected value, so a benchmark of a wrong interpreter fails instead of reporting.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::runtime::{HelperTable, HostPlatform};
use crate::vm::{Program, RunOptions, Vm};

/// One benchmark program.
#[derive(Clone, Copy, Debug)]
pub struct BenchProgram {
    /// Name as in programs.jsonl.
    pub name: &'static str,
    /// Assembly text (bpf_conformance syntax).
    pub asm: &'static str,
    /// Expected r0 on the standard input.
    pub expected_r0: u64,
    /// Instructions one run executes.
    pub dynamic_insns: u64,
}

/// The five programs of ../shared/bench/ebpf/programs.jsonl.
pub const PROGRAMS: [BenchProgram; 5] = [
    BenchProgram {
        name: "alu64_splitmix",
        asm: include_str!("bench_programs/alu64_splitmix.s"),
        expected_r0: 1904971276727556255,
        dynamic_insns: 20_000_007,
    },
    BenchProgram {
        name: "adler32",
        asm: include_str!("bench_programs/adler32.s"),
        expected_r0: 4290222916,
        dynamic_insns: 524_298,
    },
    BenchProgram {
        name: "tokenize",
        asm: include_str!("bench_programs/tokenize.s"),
        expected_r0: 3414419963956589748,
        dynamic_insns: 755_747,
    },
    BenchProgram {
        name: "alu32_jmp32",
        asm: include_str!("bench_programs/alu32_jmp32.s"),
        expected_r0: 2148216854200254,
        dynamic_insns: 17_500_101,
    },
    BenchProgram {
        name: "local_calls",
        asm: include_str!("bench_programs/local_calls.s"),
        expected_r0: 17651760587817587971,
        dynamic_insns: 229_385,
    },
];

/// Input size of every benchmark program.
pub const INPUT_LEN: usize = 65_536;

/// The benchmark input: `lcg32_text64` with seed 0x2545F491 (see programs.jsonl).
pub fn input() -> Vec<u8> {
    const ALPHABET: &[u8; 64] =
        b"abcdefghijklmnopqrstuvwxyzETAOIN0123456789        \n\n.,;:!?()-+*/";
    let mut s: u32 = 0x2545_f491;
    (0..INPUT_LEN)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ALPHABET[(s >> 26) as usize]
        })
        .collect()
}

/// Figures of one program.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchResult {
    /// Program name.
    pub name: &'static str,
    /// Instructions executed per run (measured, equals the program's `dynamic_insns`).
    pub instructions: u64,
    /// Best run, bounds-checked mode, in ns.
    pub checked_ns: u64,
    /// Best run, unchecked fast mode, in ns.
    pub unchecked_ns: u64,
}

impl BenchResult {
    /// Nanoseconds per instruction, checked mode.
    pub fn checked_ns_per_insn(&self) -> f64 {
        self.checked_ns as f64 / self.instructions as f64
    }
    /// Nanoseconds per instruction, fast mode.
    pub fn unchecked_ns_per_insn(&self) -> f64 {
        self.unchecked_ns as f64 / self.instructions as f64
    }
}

/// Runs every program `repeat` times per mode. Errors name the program that misbehaved.
pub fn run_all(now_ns: &dyn Fn() -> u64, repeat: usize) -> Result<Vec<BenchResult>, String> {
    let platform = HostPlatform::default();
    let helpers = HelperTable::empty();
    let mut vm = Vm::new();
    let options = RunOptions::default();
    let mut results = Vec::new();
    for bench in PROGRAMS {
        let fail = |what: String| alloc::format!("{}: {what}", bench.name);
        let slots = crate::asm::assemble(bench.asm).map_err(|e| fail(e.to_string()))?;
        let program = Program::load(&slots, &helpers, &[]).map_err(|e| fail(e.to_string()))?;
        let pristine = input();
        let mut memory = pristine.clone();
        let mut best = [u64::MAX; 2];
        let mut instructions = 0;
        for _ in 0..repeat.max(1) {
            for (mode, best) in best.iter_mut().enumerate() {
                memory.copy_from_slice(&pristine);
                let start = now_ns();
                let outcome = if mode == 0 {
                    vm.run(&program, &mut memory, &options, &platform)
                } else {
                    #[allow(unsafe_code)]
                    // SAFETY: the checked run just before, on the same input, completed
                    // with every access in bounds; the program is deterministic and never
                    // writes its input, so this run makes exactly the same accesses.
                    unsafe {
                        vm.run_unchecked(&program, &mut memory, &options, &platform)
                    }
                };
                let elapsed = now_ns().saturating_sub(start);
                let outcome = outcome.map_err(|e| fail(e.to_string()))?;
                if outcome.r0 != bench.expected_r0 {
                    return Err(fail(alloc::format!(
                        "r0 = {} but expected {}",
                        outcome.r0,
                        bench.expected_r0
                    )));
                }
                instructions = outcome.instructions;
                *best = (*best).min(elapsed);
            }
        }
        results.push(BenchResult {
            name: bench.name,
            instructions,
            checked_ns: best[0],
            unchecked_ns: best[1],
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_matches_the_published_head() {
        let head: String = input()[..32]
            .iter()
            .map(|b| alloc::format!("{b:02x}"))
            .collect();
        assert_eq!(
            head,
            "213367367878743a7736217a7820380a346f713420207720633570290a294575"
        );
    }

    #[test]
    fn every_program_gives_its_expected_r0_and_instruction_count() {
        // One run each with a dummy clock: correctness, not speed.
        let results = run_all(&|| 0, 1).unwrap();
        assert_eq!(results.len(), 5);
        for (r, p) in results.iter().zip(PROGRAMS) {
            assert_eq!(r.instructions, p.dynamic_insns, "{}", p.name);
        }
    }
}
