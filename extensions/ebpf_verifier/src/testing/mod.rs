//! Differential testing of the verifier: a structured random program generator and a
//! bounds-checking reference interpreter ([`refvm`]).
//!
//! [`check_one`] is the property: generate a program from a seed, verify it, and if it is
//! accepted run it on several random contexts; any [`refvm::Violation`] is a verifier bug.
//! The cargo-fuzz target (`fuzz/`) drives it from fuzzer input; a unit test drives it from a
//! fixed seed range so `cargo test` runs it too.
//!
//! Programs are built from templates (bounded loops, map lookups with or without null
//! checks, spills, pointer arithmetic with masked indices, forward branches, helper calls,
//! local calls) with random registers, offsets, sizes and constants, so that a good share
//! passes the verifier while many sit right on the edge of a rule (off-by-one offsets,
//! missing checks, unbounded indices).

pub mod refvm;

use alloc::vec::Vec;

use crate::config::{MapDef, VerifierConfig};
use ebpf::insn::RawInsn;

use refvm::Rng;

/// The hook the differential tests verify against: a 64-byte context, bytes 16..48
/// writable, one map (4-byte key, 16-byte value), the runtime's helpers.
pub fn fuzz_config() -> VerifierConfig {
    let mut c = VerifierConfig::new(64).with_all_runtime_helpers();
    c.context.writable = alloc::vec![crate::ByteRange::new(16, 48)];
    c.maps.push(MapDef {
        name: "m".into(),
        key_size: 4,
        value_size: 16,
    });
    c.complexity_limit = 50_000;
    c
}

struct Gen {
    rng: Rng,
    out: Vec<RawInsn>,
}

const ALU_OPS: [u8; 12] = [
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0,
];
const JMP_OPS: [u8; 11] = [
    0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
];
const SIZES: [u8; 4] = [0x00, 0x08, 0x10, 0x18];

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn reg(&mut self) -> u8 {
        // r0..r9, weighted towards the callee-saved ones that survive helper calls.
        [0, 1, 2, 3, 4, 5, 6, 6, 7, 7, 7, 8, 8, 9, 9, 9][self.below(16) as usize]
    }

    fn imm(&mut self) -> i32 {
        match self.below(6) {
            0 => self.below(8) as i32,
            1 => -(self.below(8) as i32),
            2 => [0x7fff_ffff, i32::MIN, -1, 0xff, 0xffff, 16, 15, 64][self.below(8) as usize],
            3 => self.below(64) as i32,
            _ => self.rng.next() as i32,
        }
    }

    fn size(&mut self) -> u8 {
        SIZES[self.below(4) as usize]
    }

    fn push(&mut self, insn: RawInsn) {
        self.out.push(insn);
    }

    fn stack_off(&mut self) -> i16 {
        if self.chance(85) {
            -(8 * (1 + self.below(8) as i16))
                + if self.chance(20) {
                    self.below(8) as i16
                } else {
                    0
                }
        } else {
            [-520, -512, -513, -1, 0, 4, -4, -516][self.below(8) as usize]
        }
    }

    /// One template.
    fn block(&mut self, depth: u32) {
        match self.below(14) {
            0 => {
                let r = self.reg();
                let imm = self.imm();
                let op = if self.chance(30) { 0xb4 } else { 0xb7 };
                self.push(RawInsn::new(op, r, 0, 0, imm));
            }
            1 => {
                // Load from the context (r1 or its copy in r6).
                let base = if self.chance(50) { 1 } else { 6 };
                let size = self.size();
                let off = if self.chance(85) {
                    self.below(64) as i16
                } else {
                    [-1, 60, 61, 62, 63, 64, 57][self.below(7) as usize]
                };
                let dst = self.reg();
                let op = if self.chance(15) && size != 0x18 {
                    0x81
                } else {
                    0x61
                };
                self.push(RawInsn::new(op | size, dst, base, off, 0));
            }
            2 => {
                // ALU, 64 or 32 bits, immediate or register.
                let op = ALU_OPS[self.below(ALU_OPS.len() as u64) as usize];
                let class = if self.chance(60) { 0x07 } else { 0x04 };
                let dst = self.reg();
                if self.chance(50) {
                    let mut imm = self.imm();
                    if matches!(op, 0x60 | 0x70 | 0xc0) && self.chance(80) {
                        imm &= 63;
                    }
                    let off = if matches!(op, 0x30 | 0x90) && self.chance(20) {
                        1
                    } else {
                        0
                    };
                    self.push(RawInsn::new(op | class, dst, 0, off, imm));
                } else {
                    let src = self.reg();
                    let off = if matches!(op, 0x30 | 0x90) && self.chance(20) {
                        1
                    } else if op == 0xb0 && self.chance(20) {
                        [8, 16, 32][self.below(3) as usize]
                    } else {
                        0
                    };
                    let off = if off == 32 && class == 0x04 { 0 } else { off };
                    self.push(RawInsn::new(op | class | 0x08, dst, src, off, 0));
                }
            }
            3 => {
                // Store to the stack (immediate or register).
                let off = self.stack_off();
                let size = self.size();
                if self.chance(50) {
                    let imm = self.imm();
                    self.push(RawInsn::new(0x62 | size, 10, 0, off, imm));
                } else {
                    let src = self.reg();
                    self.push(RawInsn::new(0x63 | size, 10, src, off, 0));
                }
            }
            4 => {
                let off = self.stack_off();
                let size = self.size();
                let dst = self.reg();
                self.push(RawInsn::new(0x61 | size, dst, 10, off, 0));
            }
            5 => {
                // Pointer plus a masked index, then an access through it.
                let ptr = self.reg();
                let base = [10, 1, 6][self.below(3) as usize];
                self.push(RawInsn::new(0xbf, ptr, base, 0, 0));
                let idx = self.reg();
                if self.chance(70) && idx != ptr {
                    let mask = [7, 15, 31, 63, 255][self.below(5) as usize];
                    self.push(RawInsn::new(0x57, idx, 0, 0, mask));
                    self.push(RawInsn::new(0x0f, ptr, idx, 0, 0));
                } else {
                    let imm = if base == 10 {
                        -(self.below(520) as i32)
                    } else {
                        self.below(70) as i32
                    };
                    self.push(RawInsn::new(0x07, ptr, 0, 0, imm));
                }
                let size = self.size();
                let off = (self.below(24) as i16) - 12;
                if self.chance(60) {
                    let dst = self.reg();
                    self.push(RawInsn::new(0x61 | size, dst, ptr, off, 0));
                } else {
                    let src = self.reg();
                    self.push(RawInsn::new(0x63 | size, ptr, src, off, 0));
                }
            }
            6 if depth < 3 => {
                // if (cond) skip the next blocks.
                let op = JMP_OPS[self.below(JMP_OPS.len() as u64) as usize];
                let class = if self.chance(70) { 0x05 } else { 0x06 };
                let a = self.reg();
                let saved = core::mem::take(&mut self.out);
                for _ in 0..1 + self.below(2) {
                    self.block(depth + 1);
                }
                let body = core::mem::replace(&mut self.out, saved);
                if self.chance(50) {
                    let imm = self.imm();
                    self.push(RawInsn::new(op | class, a, 0, body.len() as i16, imm));
                } else {
                    let b = self.reg();
                    self.push(RawInsn::new(op | class | 0x08, a, b, body.len() as i16, 0));
                }
                self.out.extend(body);
            }
            7 if depth < 2 => {
                // Bounded loop: counter in r8 or r9 up to a small (or input-derived) bound.
                let c = if self.chance(50) { 8 } else { 9 };
                self.push(RawInsn::new(0xb7, c, 0, 0, 0));
                let start = self.out.len();
                for _ in 0..1 + self.below(2) {
                    self.block(depth + 1);
                }
                self.push(RawInsn::new(0x07, c, 0, 0, 1));
                let back = -((self.out.len() - start) as i16) - 1;
                if self.chance(80) {
                    let bound = 1 + self.below(12) as i32;
                    self.push(RawInsn::new(0xa5, c, 0, back, bound));
                } else {
                    let b = self.reg();
                    self.push(RawInsn::new(0xad, c, b, back, 0));
                }
            }
            8 | 9 => {
                // Map lookup, usually with a null check, then an access.
                let key_off = -(4 * (1 + self.below(4) as i16));
                if self.chance(90) {
                    let k = self.imm();
                    self.push(RawInsn::new(0x62, 10, 0, key_off, k));
                }
                self.push(RawInsn::new(0xbf, 2, 10, 0, 0));
                self.push(RawInsn::new(0x07, 2, 0, 0, key_off as i32));
                self.push(RawInsn::new(0x18, 1, 1, 0, 0));
                self.push(RawInsn::new(0, 0, 0, 0, 0));
                self.push(RawInsn::new(0x85, 0, 0, 0, 1));
                let dst = [0, 7][self.below(2) as usize];
                if dst != 0 {
                    self.push(RawInsn::new(0xbf, dst, 0, 0, 0));
                }
                let mut body = Vec::new();
                let size = self.size();
                let off = if self.chance(70) {
                    self.below(9) as i16
                } else {
                    (self.below(22) as i16) - 2
                };
                if self.chance(30) {
                    body.push(RawInsn::new(0x71, 3, 6, 0, 0));
                    body.push(RawInsn::new(
                        0x57,
                        3,
                        0,
                        0,
                        [7, 8, 15][self.below(3) as usize],
                    ));
                    body.push(RawInsn::new(0x0f, dst, 3, 0, 0));
                }
                if self.chance(50) {
                    body.push(RawInsn::new(0x61 | size, 4, dst, off, 0));
                } else {
                    body.push(RawInsn::new(0x7a & !0x18 | size, dst, 0, off, 5));
                }
                if self.chance(90) {
                    self.push(RawInsn::new(0x15, dst, 0, body.len() as i16, 0));
                }
                self.out.extend(body);
            }
            10 => {
                let id = [5, 7, 8, 6][self.below(4) as usize];
                if id == 6 {
                    // trace_printk(fp-8, size, r3.., r5)
                    self.push(RawInsn::new(0x7a, 10, 0, -8, 0));
                    self.push(RawInsn::new(0xbf, 1, 10, 0, 0));
                    self.push(RawInsn::new(0x07, 1, 0, 0, -8));
                    let size = self.below(10) as i32;
                    self.push(RawInsn::new(0xb7, 2, 0, 0, size));
                    for r in 3..=5 {
                        self.push(RawInsn::new(0xb7, r, 0, 0, 0));
                    }
                }
                self.push(RawInsn::new(0x85, 0, 0, 0, id));
            }
            11 => {
                // Spill a pointer (or a value) and reload it.
                let off = -(8 * (1 + self.below(6) as i16));
                let src = [1, 6, 10, 0, 7][self.below(5) as usize];
                self.push(RawInsn::new(0x7b, 10, src, off, 0));
                let dst = self.reg();
                let size = if self.chance(85) { 0x18 } else { self.size() };
                self.push(RawInsn::new(0x61 | size, dst, 10, off, 0));
            }
            12 => {
                // Atomic add on a stack slot.
                let off = -(8 * (1 + self.below(4) as i16));
                let src = self.reg();
                let imm = [0x00, 0x01, 0xe1, 0xf1][self.below(4) as usize];
                let size = if self.chance(70) { 0x18 } else { 0x00 };
                self.push(RawInsn::new(0xc3 | size, 10, src, off, imm));
            }
            _ => {
                let r = self.reg();
                let v = self.rng.next();
                self.push(RawInsn::new(0x18, r, 0, 0, v as u32 as i32));
                self.push(RawInsn::new(0, 0, 0, 0, (v >> 32) as u32 as i32));
            }
        }
    }
}

/// A structured random program for `seed`.
pub fn generate(seed: u64) -> Vec<RawInsn> {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        out: Vec::new(),
    };
    if g.chance(80) {
        g.push(RawInsn::new(0xbf, 6, 1, 0, 0));
    }
    // Most programs start by initialising their registers and a few stack slots, as
    // compiled code does; the rest keep the uninitialised cases covered.
    for r in [0u8, 2, 3, 4, 5, 7, 8, 9] {
        if g.chance(90) {
            let imm = g.imm();
            g.push(RawInsn::new(0xb7, r, 0, 0, imm));
        }
    }
    for slot in 1..=4i16 {
        if g.chance(70) {
            let imm = g.imm();
            g.push(RawInsn::new(0x7a, 10, 0, -8 * slot, imm));
        }
    }
    // Mostly short programs (most reach the end of the analysis), sometimes long ones whose
    // many joins exercise state merging and liveness.
    let blocks = if g.chance(15) {
        10 + g.below(40)
    } else {
        1 + g.below(10)
    };
    for _ in 0..blocks {
        g.block(0);
    }
    if g.chance(95) {
        let r0 = if g.chance(90) { 0xb7 } else { 0xbf };
        let imm = g.imm();
        if r0 == 0xb7 {
            g.push(RawInsn::new(0xb7, 0, 0, 0, imm));
        } else {
            let src = g.reg();
            g.push(RawInsn::new(0xbf, 0, src, 0, 0));
        }
    }
    g.push(RawInsn::new(0x95, 0, 0, 0, 0));
    g.out
}

/// A long program built only from safe templates (so it is usually accepted) with many
/// `if`/`else` joins, loops and spills: it exercises state merging and liveness, which
/// short random programs rarely reach.
pub fn generate_joins(seed: u64) -> Vec<RawInsn> {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0xd134_2543_de82_ef95) | 1),
        out: Vec::new(),
    };
    g.push(RawInsn::new(0xbf, 6, 1, 0, 0));
    for r in 7..=9u8 {
        let imm = g.imm();
        g.push(RawInsn::new(0xb7, r, 0, 0, imm));
    }
    for slot in 1..=4i16 {
        let imm = g.imm();
        g.push(RawInsn::new(0x7a, 10, 0, -8 * slot, imm));
    }
    let safe_reg = |g: &mut Gen| 7 + g.below(3) as u8;
    let alu = |g: &mut Gen| {
        let op = [0x00, 0x10, 0x20, 0x40, 0x50, 0xa0, 0x60, 0x70, 0x30, 0x90][g.below(10) as usize];
        let class = if g.chance(70) { 0x07 } else { 0x04 };
        let dst = safe_reg(g);
        let mut imm = g.imm();
        if matches!(op, 0x60 | 0x70) {
            imm &= 31;
        }
        RawInsn::new(op | class, dst, 0, 0, imm)
    };
    for _ in 0..20 + g.below(40) {
        match g.below(8) {
            7 => {
                // for (p = fp - 32; p < fp; p += step) *(size *)p = x;  (sometimes `<=`:
                // one step too far, must be rejected)
                let step = [1, 2, 4, 8][g.below(4) as usize];
                let size = match step {
                    1 => 0x10,
                    2 => 0x08,
                    4 => 0x00,
                    _ => 0x18,
                };
                let cond = if g.chance(5) { 0x20 } else { 0x30 }; // jgt (bug) or jge
                let x = safe_reg(&mut g);
                g.push(RawInsn::new(0xbf, 2, 10, 0, 0));
                g.push(RawInsn::new(0x07, 2, 0, 0, -32));
                g.push(RawInsn::new(cond | 0x0d, 2, 10, 3, 0));
                g.push(RawInsn::new(0x63 | size, 2, x, 0, 0));
                g.push(RawInsn::new(0x07, 2, 0, 0, step));
                g.push(RawInsn::new(0x05, 0, 0, -4, 0));
            }
            0 => {
                let i = alu(&mut g);
                g.push(i);
            }
            1 => {
                let dst = safe_reg(&mut g);
                let off = 4 * g.below(15) as i16;
                g.push(RawInsn::new(0x61, dst, 6, off, 0));
            }
            2 | 3 => {
                // if (rA cond imm) { alu } else { alu }
                let op = JMP_OPS[g.below(JMP_OPS.len() as u64) as usize];
                let class = if g.chance(70) { 0x05 } else { 0x06 };
                let a = safe_reg(&mut g);
                let imm = g.imm();
                let then_block = alu(&mut g);
                let else_block = alu(&mut g);
                g.push(RawInsn::new(op | class, a, 0, 2, imm));
                g.push(else_block);
                g.push(RawInsn::new(0x05, 0, 0, 1, 0));
                g.push(then_block);
            }
            4 => {
                let src = safe_reg(&mut g);
                let dst = safe_reg(&mut g);
                let off = -8 * (1 + g.below(4) as i16);
                g.push(RawInsn::new(0x7b, 10, src, off, 0));
                g.push(RawInsn::new(0x79, dst, 10, off, 0));
            }
            5 => {
                // r0 = *(u8 *)(fp - 32 + (rX & 31))
                let x = safe_reg(&mut g);
                g.push(RawInsn::new(0xbf, 2, x, 0, 0));
                // Now and then one past the safe mask: must be rejected, never run.
                let mask = if g.chance(3) { 32 } else { 31 };
                g.push(RawInsn::new(0x57, 2, 0, 0, mask));
                g.push(RawInsn::new(0xbf, 3, 10, 0, 0));
                g.push(RawInsn::new(0x07, 3, 0, 0, -32));
                g.push(RawInsn::new(0x0f, 3, 2, 0, 0));
                let dst = safe_reg(&mut g);
                g.push(RawInsn::new(0x71, dst, 3, 0, 0));
            }
            _ => {
                // Map lookup, null check, bounded access.
                g.push(RawInsn::new(0xbf, 2, 10, 0, 0));
                g.push(RawInsn::new(0x07, 2, 0, 0, -8));
                g.push(RawInsn::new(0x18, 1, 1, 0, 0));
                g.push(RawInsn::new(0, 0, 0, 0, 0));
                g.push(RawInsn::new(0x85, 0, 0, 0, 1));
                let x = safe_reg(&mut g);
                g.push(RawInsn::new(0x15, 0, 0, 4, 0));
                g.push(RawInsn::new(0xbf, 2, x, 0, 0));
                let mask = if g.chance(3) { 15 } else { 7 };
                g.push(RawInsn::new(0x57, 2, 0, 0, mask));
                g.push(RawInsn::new(0x0f, 0, 2, 0, 0));
                let size = SIZES[g.below(4) as usize];
                g.push(RawInsn::new(0x63 | size, 0, x, 0, 0));
            }
        }
    }
    g.push(RawInsn::new(0xbf, 0, 7, 0, 0));
    g.push(RawInsn::new(0x95, 0, 0, 0, 0));
    g.out
}

/// What one differential check found.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Rejected,
    /// Accepted and ran cleanly on every context.
    Accepted,
    /// Accepted but a run broke a safety property: a verifier bug.
    Violation(refvm::Violation),
}

/// Verifies `program`; if accepted, runs it on `runs` random contexts derived from `seed`.
pub fn check_program(program: &[RawInsn], seed: u64, runs: u32) -> CheckOutcome {
    let config = fuzz_config();
    let Ok(summary) = crate::verify(program, &config) else {
        return CheckOutcome::Rejected;
    };
    let mut rng = Rng(seed ^ 0xdead_beef_cafe_f00d | 1);
    for run in 0..runs {
        let mut ctx = [0u8; 64];
        for b in ctx.iter_mut() {
            *b = match run % 3 {
                0 => rng.next() as u8,
                1 => (rng.next() % 4) as u8,
                _ => 0xff,
            };
        }
        let budget = summary.states_explored;
        if let Err(v) = refvm::run(program, &config, &ctx, rng.next(), budget) {
            return CheckOutcome::Violation(v);
        }
    }
    CheckOutcome::Accepted
}

/// Generates the program for `seed` and checks it.
pub fn check_one(seed: u64) -> (Vec<RawInsn>, CheckOutcome) {
    let program = generate(seed);
    let outcome = check_program(&program, seed, 8);
    (program, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Differential check over a fixed seed range: accepted programs never violate safety
    /// in the reference interpreter, and a fair share of programs is accepted.
    #[test]
    fn accepted_programs_are_safe_in_the_reference_interpreter() {
        let mut accepted = 0;
        let total = 3000u64;
        for seed in 0..total {
            let (program, outcome) = check_one(seed);
            if let CheckOutcome::Violation(v) = &outcome {
                panic!(
                    "seed {seed}: accepted program violates safety: {v:?}\n{:?}\n{:?}",
                    program,
                    crate::verify(&program, &fuzz_config())
                );
            }
            if outcome == CheckOutcome::Accepted {
                accepted += 1;
            }
        }
        assert!(accepted * 10 >= total, "only {accepted}/{total} accepted");
    }

    /// Long join-heavy programs: mostly accepted, never unsafe.
    #[test]
    fn merged_states_stay_sound() {
        let mut accepted = 0;
        for seed in 0..300u64 {
            let program = generate_joins(seed);
            match check_program(&program, seed, 4) {
                CheckOutcome::Violation(v) => panic!("seed {seed}: {v:?}\n{program:?}"),
                CheckOutcome::Accepted => accepted += 1,
                CheckOutcome::Rejected => {}
            }
        }
        assert!(
            accepted >= 150,
            "only {accepted}/300 join programs accepted"
        );
    }

    #[test]
    fn reference_interpreter_catches_violations() {
        use crate::tests::b::*;
        let c = fuzz_config();
        // An out-of-bounds context read, an uninitialised stack read, a pointer leak.
        let cases: [(&[RawInsn], fn(&refvm::Violation) -> bool); 3] = [
            (&[ldx(DW, 0, 1, 60), exit()], |v| {
                matches!(v, refvm::Violation::OutOfBounds { .. })
            }),
            (&[ldx(DW, 0, 10, -8), exit()], |v| {
                matches!(v, refvm::Violation::UninitMemory { .. })
            }),
            (&[movr(0, 1), exit()], |v| {
                matches!(v, refvm::Violation::PointerLeak { .. })
            }),
        ];
        for (p, expect) in cases {
            let e = refvm::run(p, &c, &[0; 64], 1, 100).unwrap_err();
            assert!(expect(&e), "{e:?}");
        }
        assert_eq!(refvm::run(&[mov(0, 7), exit()], &c, &[], 1, 100), Ok(7));
    }
}
