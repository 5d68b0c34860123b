//! A self-contained conformance subset the kernel can run on the target (no files needed).
//!
//! The full suites live in `../shared/conformance` and run on the host (`cargo test`); the
//! kernel has no file system, so this module carries one program per RFC 9669 feature group
//! (our own programs, each result checked on the host by the test at the bottom, whose
//! interpreter passes all 313 bpf_conformance tests) plus the runtime's own machinery: maps,
//! helpers, ring buffer, budget and bounds faults. `run_all` returns a report a console
//! command can print and a QEMU test can assert on.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::maps::{Map, MapDef, MapKind};
use crate::runtime::{HelperTable, Platform};
use crate::vm::{Program, RunErrorKind, RunOptions, Vm};

/// What a case must produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exit with this r0.
    R0(u64),
    /// Stop with a bounds fault.
    OutOfBounds,
    /// Stop when the instruction budget runs out.
    BudgetExhausted,
}

/// One self-test program.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Short name for reports.
    pub name: &'static str,
    /// Program text.
    pub asm: &'static str,
    /// Input memory (r1, r2 = length).
    pub input: &'static [u8],
    /// The expected outcome.
    pub expect: Expect,
}

/// The cases. Map 0 is an 8-byte-value array of 4 entries, map 1 a hash (8-byte keys and
/// values, 16 entries), map 2 a 256-byte ring buffer.
pub const CASES: &[Case] = &[
    Case {
        name: "alu64",
        asm: "mov %r0, 7\nmul %r0, 6\nsub %r0, 2\nlsh %r0, 60\narsh %r0, 62\nxor %r0, 5\nexit",
        input: &[],
        // 42 - 2 = 40; << 60 keeps bit 3 → the sign bit; >> 62 arithmetic → -2; ^ 5 → -5.
        expect: Expect::R0(0xffff_ffff_ffff_fffb),
    },
    Case {
        name: "alu32_zero_extends",
        asm: "lddw %r1, 0x100000002\nmov32 %r0, %r1\nadd32 %r0, -3\nexit",
        input: &[],
        expect: Expect::R0(0xffff_ffff),
    },
    Case {
        name: "div_mod_by_zero",
        asm: "mov %r0, 9\nmov %r1, 0\ndiv %r0, %r1\nmov %r2, 9\nmod %r2, %r1\nadd %r0, %r2\nexit",
        input: &[],
        expect: Expect::R0(9),
    },
    Case {
        name: "sdiv_smod",
        asm: "mov %r0, -7\nsdiv %r0, 2\nmov %r1, -7\nsmod32 %r1, 2\nadd32 %r0, %r1\nexit",
        input: &[],
        expect: Expect::R0(0xffff_fffc),
    },
    Case {
        name: "movsx",
        asm: "mov %r1, 0x8080\nmovsx864 %r0, %r1\nmovsx1632 %r2, %r1\nadd %r0, %r2\nexit",
        input: &[],
        // 0xffff_ffff_ffff_ff80 + 0xffff_8080 (32-bit result, zero-extended), wrapped.
        expect: Expect::R0(0xffff_8000),
    },
    Case {
        name: "byte_order",
        asm: "lddw %r0, 0x1122334455667788\nbe16 %r0\nmov %r1, 0x1234\nbswap32 %r1\nle64 %r1\nadd %r0, %r1\nexit",
        input: &[],
        expect: Expect::R0(0x8877 + 0x3412_0000),
    },
    Case {
        name: "loads_stores_sign_extend",
        asm: "ldxh %r0, [%r1+0]\nldxsb %r2, [%r1+1]\nstxw [%r10-4], %r2\nldxw %r3, [%r10-4]\nadd %r0, %r3\nexit",
        input: &[0x34, 0xf2],
        expect: Expect::R0(0xf234 + 0xffff_fff2),
    },
    Case {
        name: "jmp32_and_ja32",
        asm: "lddw %r1, 0x1ffffffff\nmov %r0, 1\njeq32 %r1, -1, +1\nexit\nja32 +1\nmov %r0, 9\njslt %r1, 0, +1\nadd %r0, 2\nexit",
        input: &[],
        expect: Expect::R0(3),
    },
    Case {
        name: "atomics",
        asm: "stdw [%r10-8], 10\nmov %r1, 5\nlock fetch add [%r10-8], %r1\nmov %r2, 3\nlock xchg [%r10-8], %r2\nmov %r0, 3\nmov %r3, 40\nlock cmpxchg [%r10-8], %r3\nldxdw %r4, [%r10-8]\nadd %r1, %r2\nadd %r1, %r4\nadd %r0, %r1\nexit",
        input: &[],
        // fetch add: r1 = 10, mem 15; xchg: r2 = 15, mem 3; cmpxchg (r0 == 3): mem 40, r0 = 3.
        expect: Expect::R0(10 + 15 + 40 + 3),
    },
    Case {
        name: "local_calls_and_frames",
        asm: "mov %r6, 4\nstdw [%r10-8], 1\nmov %r1, 5\ncall local sq\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nadd %r0, %r6\nexit\nsq:\nstdw [%r10-8], 100\nmov %r6, 0\nmov %r0, %r1\nmul %r0, %r1\nexit",
        input: &[],
        expect: Expect::R0(25 + 1 + 4),
    },
    Case {
        name: "array_map_and_callx",
        asm: "stw [%r10-4], 2\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, map:0\nmov %r5, 1\ncall %r5\njeq %r0, 0, +4\nmov %r1, 7\nlock add [%r0+0], %r1\nldxdw %r0, [%r0+0]\nexit\nmov %r0, 99\nexit",
        input: &[],
        expect: Expect::R0(7),
    },
    Case {
        name: "hash_map_update_lookup_delete",
        asm: "stdw [%r10-8], 42\nstdw [%r10-16], 1000\nlddw %r1, map:1\nmov %r2, %r10\nadd %r2, -8\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 0\ncall 2\nmov %r6, %r0\nlddw %r1, map:1\nmov %r2, %r10\nadd %r2, -8\ncall 1\njeq %r0, 0, +8\nldxdw %r7, [%r0+0]\nlddw %r1, map:1\nmov %r2, %r10\nadd %r2, -8\ncall 3\nadd %r0, %r7\nadd %r0, %r6\nexit\nmov %r0, 99\nexit",
        input: &[],
        expect: Expect::R0(1000),
    },
    Case {
        name: "ringbuf_output",
        asm: "stdw [%r10-8], 0x55\nlddw %r1, map:2\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 8\nmov %r4, 0\ncall 130\nexit",
        input: &[],
        expect: Expect::R0(0),
    },
    Case {
        name: "bounds_fault",
        asm: "ldxw %r0, [%r1+2]\nexit",
        input: &[1, 2, 3, 4],
        expect: Expect::OutOfBounds,
    },
    Case {
        name: "budget",
        asm: "ja -1\nexit",
        input: &[],
        expect: Expect::BudgetExhausted,
    },
];

/// The outcome of [`run_all`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Cases that behaved as expected.
    pub passed: usize,
    /// Failed case names with what happened.
    pub failed: Vec<(&'static str, String)>,
}

fn maps() -> Result<Vec<Arc<Map>>, String> {
    let def = |kind, key_size, value_size, max_entries| MapDef {
        kind,
        key_size,
        value_size,
        max_entries,
    };
    let make = |name, d| {
        Map::new(name, d, 1)
            .map(Arc::new)
            .map_err(|e| format!("{e}"))
    };
    Ok(alloc::vec![
        make("array", def(MapKind::Array, 4, 8, 4))?,
        make("hash", def(MapKind::Hash, 8, 8, 16))?,
        make("ring", def(MapKind::RingBuf, 0, 0, 256))?,
    ])
}

/// Runs every case in checked mode on fresh maps; `platform` supplies the helpers' clock,
/// log and randomness.
pub fn run_all(platform: &dyn Platform) -> Report {
    let mut report = Report::default();
    let mut vm = Vm::new();
    for case in CASES {
        let outcome = (|| -> Result<(), String> {
            let maps = maps()?;
            let slots = crate::asm::assemble(case.asm).map_err(|e| format!("{e}"))?;
            let program = Program::load(&slots, &HelperTable::standard(), &maps)
                .map_err(|e| format!("{e}"))?;
            let options = RunOptions {
                instruction_budget: 10_000,
                ..RunOptions::default()
            };
            let mut input = case.input.to_vec();
            let result = vm.run(&program, &mut input, &options, platform);
            let ok = match (case.expect, &result) {
                (Expect::R0(want), Ok(out)) => out.r0 == want,
                (Expect::OutOfBounds, Err(e)) => {
                    matches!(e.kind, RunErrorKind::OutOfBounds { .. })
                }
                (Expect::BudgetExhausted, Err(e)) => {
                    matches!(e.kind, RunErrorKind::BudgetExhausted { .. })
                }
                _ => false,
            };
            if case.name == "ringbuf_output"
                && maps[2].ringbuf_pop().as_deref() != Some(&[0x55, 0, 0, 0, 0, 0, 0, 0][..])
            {
                return Err(String::from("ring buffer record missing or wrong"));
            }
            if ok {
                Ok(())
            } else {
                Err(match result {
                    Ok(out) => format!("r0 = {:#x}, expected {:?}", out.r0, case.expect),
                    Err(e) => format!("{e}, expected {:?}", case.expect),
                })
            }
        })();
        match outcome {
            Ok(()) => report.passed += 1,
            Err(why) => report.failed.push((case.name, why)),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::HostPlatform;

    #[test]
    fn every_self_test_case_passes_on_the_host() {
        let report = run_all(&HostPlatform::default());
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(report.passed, CASES.len());
    }
}
