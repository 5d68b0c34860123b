//! Stage 2: the control-flow graph, checked before any abstract interpretation.
//!
//! Structural facts need no values, so they are checked once here, in a linear pass, and the
//! abstract interpreter can then follow edges without range checks:
//! every jump and local-call target lies inside the program and not in the second slot of an
//! `lddw`; no instruction can fall off the end; every instruction is reachable from the entry
//! (dead code is rejected as Linux does: it usually means a wrong jump offset, and code
//! nobody verified should not sit in the kernel). The pass also finds the *prune points*
//! (jump targets, subprogram entries and call return sites), where the interpreter keeps
//! states for pruning and loop detection: every cycle of the graph passes through one.

use alloc::vec;
use alloc::vec::Vec;

use ebpf::insn::{CallTarget, Insn};

use crate::error::{VerifyError, VerifyErrorKind};

/// Structural facts about a decoded program.
#[derive(Debug)]
pub struct Cfg {
    /// True at slots where states are kept (jump targets, call entries, return sites).
    pub prune_point: Vec<bool>,
    /// Entry slots of subprograms reached by local calls (not including 0).
    pub subprograms: Vec<usize>,
    /// Registers (bit i = ri) that may be read before being written on some path from
    /// each slot, within its function. Registers not in the set are *dead*: the analysis
    /// forgets them at prune points so states that differ only in dead values prune each
    /// other (Linux's register liveness).
    pub live_in: Vec<u16>,
    /// True at targets of backward jumps (loop heads): states are never merged there, so
    /// loop iterations stay distinct and termination stays provable.
    pub loop_head: Vec<bool>,
}

/// Registers an instruction reads and writes (bit i = ri), for liveness.
fn uses_defs(insn: &Insn, helper_args: &dyn Fn(i64) -> usize) -> (u16, u16) {
    use ebpf::insn::{AluOp, AtomicOp, Operand};
    let bit = |r: ebpf::insn::Reg| 1u16 << r.0;
    let op_bits = |o: Operand| match o {
        Operand::Reg(r) => bit(r),
        Operand::Imm(_) => 0,
    };
    let args = |n: usize| -> u16 { ((1u16 << (n.min(5) + 1)) - 1) & !1 };
    const CALLER_SAVED: u16 = 0b11_1111;
    match *insn {
        Insn::Alu { op, dst, src, .. } => {
            let reads_dst = !matches!(op, AluOp::Mov | AluOp::MovSx(_));
            (
                op_bits(src) | if reads_dst { bit(dst) } else { 0 },
                bit(dst),
            )
        }
        Insn::Neg { dst, .. } | Insn::End { dst, .. } => (bit(dst), bit(dst)),
        Insn::LoadImm64 { dst, .. } => (0, bit(dst)),
        Insn::LoadImm64Tail => (0, 0),
        Insn::Load { dst, base, .. } => (bit(base), bit(dst)),
        Insn::Store { base, src, .. } => (bit(base) | op_bits(src), 0),
        Insn::Atomic {
            op,
            fetch,
            base,
            src,
            ..
        } => {
            let cmpxchg = op == AtomicOp::CmpXchg;
            let uses = bit(base) | bit(src) | if cmpxchg { 1 } else { 0 };
            let defs = match (fetch, cmpxchg) {
                (_, true) => 1,
                (true, false) => bit(src),
                _ => 0,
            };
            (uses, defs)
        }
        Insn::LegacyPacketLoad { indirect, .. } => {
            ((1 << 6) | indirect.map(bit).unwrap_or(0), CALLER_SAVED)
        }
        Insn::Ja { .. } => (0, 0),
        Insn::Jump { dst, src, .. } => (bit(dst) | op_bits(src), 0),
        Insn::Call(CallTarget::Helper(id)) => (args(helper_args(id as i64)), CALLER_SAVED),
        Insn::Call(CallTarget::Register(r)) => (args(5) | bit(r), CALLER_SAVED),
        Insn::Call(CallTarget::HelperByBtfId(_)) => (args(5), CALLER_SAVED),
        Insn::Call(CallTarget::Local(_)) => (args(5), CALLER_SAVED),
        Insn::Exit => (1, 0),
    }
}

fn target(pc: usize, offset: i64, prog: &[Insn]) -> Result<usize, VerifyError> {
    let t = pc as i64 + 1 + offset;
    if t < 0 || t >= prog.len() as i64 {
        return Err(VerifyError {
            insn: pc,
            kind: VerifyErrorKind::JumpOutOfRange {
                target: t,
                len: prog.len(),
            },
        });
    }
    let t = t as usize;
    if prog[t] == Insn::LoadImm64Tail {
        return Err(VerifyError {
            insn: pc,
            kind: VerifyErrorKind::JumpIntoLddw { target: t },
        });
    }
    Ok(t)
}

/// Builds and checks the graph; `helper_args(id)` is the argument count of a helper (5 when
/// unknown), for liveness.
pub fn build(prog: &[Insn], helper_args: &dyn Fn(i64) -> usize) -> Result<Cfg, VerifyError> {
    let n = prog.len();
    let mut succ: Vec<[Option<usize>; 2]> = vec![[None, None]; n];
    let mut prune_point = vec![false; n];
    let mut loop_head = vec![false; n];
    let mut subprograms = Vec::new();
    for (pc, insn) in prog.iter().enumerate() {
        let next = |step: usize| -> Result<usize, VerifyError> {
            if pc + step >= n {
                Err(VerifyError {
                    insn: pc,
                    kind: VerifyErrorKind::FallsOffEnd,
                })
            } else {
                Ok(pc + step)
            }
        };
        succ[pc] = match *insn {
            Insn::LoadImm64Tail => [None, None],
            Insn::Exit => [None, None],
            Insn::Ja { offset } => {
                let t = target(pc, offset as i64, prog)?;
                prune_point[t] = true;
                loop_head[t] |= t <= pc;
                [Some(t), None]
            }
            Insn::Jump { offset, .. } => {
                let t = target(pc, offset as i64, prog)?;
                prune_point[t] = true;
                loop_head[t] |= t <= pc;
                [Some(t), Some(next(1)?)]
            }
            Insn::Call(CallTarget::Local(imm)) => {
                let t = target(pc, imm as i64, prog)?;
                prune_point[t] = true;
                // A call backwards can recurse: never merge at function entries.
                loop_head[t] = true;
                if !subprograms.contains(&t) {
                    subprograms.push(t);
                }
                let ret = next(1)?;
                prune_point[ret] = true;
                [Some(t), Some(ret)]
            }
            Insn::LoadImm64 { .. } => [Some(next(2)?), None],
            _ => [Some(next(1)?), None],
        };
    }
    let mut reached = vec![false; n];
    let mut work = vec![0usize];
    reached[0] = true;
    while let Some(pc) = work.pop() {
        for s in succ[pc].into_iter().flatten() {
            if !reached[s] {
                reached[s] = true;
                work.push(s);
            }
        }
    }
    if let Some(pc) = (0..n).find(|&pc| !reached[pc] && prog[pc] != Insn::LoadImm64Tail) {
        return Err(VerifyError {
            insn: pc,
            kind: VerifyErrorKind::Unreachable,
        });
    }
    subprograms.sort_unstable();
    // Backward liveness to a fixed point. Within a function only: a local call's edge into
    // the callee is not followed (the callee's frame has its own registers); the call itself
    // reads r1-r5 and clobbers r0-r5.
    let effects: Vec<(u16, u16)> = prog.iter().map(|i| uses_defs(i, helper_args)).collect();
    let mut live_in = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            let mut out = 0u16;
            let is_local_call = matches!(prog[pc], Insn::Call(CallTarget::Local(_)));
            for (k, s) in succ[pc].into_iter().enumerate() {
                if let Some(s) = s {
                    if is_local_call && k == 0 {
                        continue;
                    }
                    out |= live_in[s];
                }
            }
            let (uses, defs) = effects[pc];
            let live = uses | (out & !defs) | (1 << 10);
            if live != live_in[pc] {
                live_in[pc] = live;
                changed = true;
            }
        }
    }
    Ok(Cfg {
        prune_point,
        subprograms,
        live_in,
        loop_head,
    })
}
