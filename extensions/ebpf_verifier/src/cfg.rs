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

/// Builds and checks the graph.
pub fn build(prog: &[Insn]) -> Result<Cfg, VerifyError> {
    let n = prog.len();
    let mut succ: Vec<[Option<usize>; 2]> = vec![[None, None]; n];
    let mut prune_point = vec![false; n];
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
                [Some(t), None]
            }
            Insn::Jump { offset, .. } => {
                let t = target(pc, offset as i64, prog)?;
                prune_point[t] = true;
                [Some(t), Some(next(1)?)]
            }
            Insn::Call(CallTarget::Local(imm)) => {
                let t = target(pc, imm as i64, prog)?;
                prune_point[t] = true;
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
    Ok(Cfg {
        prune_point,
        subprograms,
    })
}
