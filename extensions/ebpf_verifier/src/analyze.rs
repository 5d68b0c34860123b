//! Stage 3: abstract interpretation of every path, with state pruning and loop detection.
//!
//! The interpreter walks paths depth-first from the entry state, one instruction at a time,
//! applying the transfer function of each instruction to the abstract [`State`] and checking
//! every safety rule on the way (the first violation is the verdict). A conditional jump
//! refines both successor states with the condition (or its negation); an edge whose refined
//! state is empty is dead and not followed, which is how bounded loops end: a loop counter
//! with a known value makes the back edge impossible after the last iteration.
//!
//! Termination and cost, as in Linux:
//! - At prune points ([`crate::cfg::Cfg::prune_point`]) the current state is compared with
//!   the states kept there. A kept state whose exploration has *finished* (no live path
//!   below it) and that includes the current state proves the current path safe: prune.
//! - A kept state whose exploration is still running is an ancestor of the current path
//!   (the search is depth-first with a LIFO work list). If it equals the current state, the
//!   path came back to where it was with nothing changed: the loop may never end, reject.
//! - Every processed instruction counts against the complexity limit; a loop whose state
//!   changes forever (or a program too branchy to check) is rejected when the limit is hit.
//!   So the analysis itself always ends, and an accepted program's every path ends too.
//!
//! "Finished" is tracked with a count of live paths per kept state (Linux's `branches`):
//! a path ending (exit or pruned) decrements its innermost kept state, and a count reaching
//! zero propagates to the parent.

use alloc::vec::Vec;

use ebpf::helpers::{ArgType, RetType};
use ebpf::insn::{
    lddw_src, AluOp, AtomicOp, ByteOrder, CallTarget, Cond, Insn, MemSize, Operand, Reg, Width,
};

use crate::cfg::Cfg;
use crate::config::VerifierConfig;
use crate::error::{RegionName, VerifyError, VerifyErrorKind};
use crate::limits::{
    MAX_HELPER_MEMORY_SIZE, MAX_POINTER_OFFSET, MAX_STATES_PER_INSN, MERGE_AFTER_STATES,
    STACK_FRAME_SIZE,
};
use crate::scalar::Scalar;
use crate::state::{ByteKind, Frame, Region, Stack, State, Value};

/// Counters reported in the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub insns_processed: u64,
    pub states_stored: usize,
    pub peak_pending_paths: usize,
    pub paths_pruned: u64,
    pub max_stack_depth: usize,
    pub max_call_depth: usize,
    /// Peak bytes held by kept states plus pending paths (the analysis' working memory).
    pub peak_state_bytes: usize,
}

struct Checkpoint {
    state: State,
    parent: Option<u32>,
    /// Live paths at or below this state.
    branches: u32,
}

struct Path {
    state: State,
    pc: usize,
    last_checkpoint: Option<u32>,
}

enum Flow {
    /// Continue at this slot.
    Next(usize),
    /// Continue at the first slot; push the second path.
    Fork(usize, Path),
    /// The path ended (exit of the main function).
    End,
}

pub struct Analyzer<'a> {
    prog: &'a [Insn],
    cfg: &'a Cfg,
    config: &'a VerifierConfig,
    checkpoints: Vec<Checkpoint>,
    stored_at: Vec<Vec<u32>>,
    next_id: u32,
    stats: Stats,
    state_bytes: usize,
}

type Res<T> = Result<T, VerifyErrorKind>;

fn err<T>(kind: VerifyErrorKind) -> Res<T> {
    Err(kind)
}

/// Unknown scalar loaded from `size` bytes (zero- or sign-extended).
fn loaded_scalar(size: usize, sign_extend: bool) -> Scalar {
    if size >= 8 {
        return Scalar::UNKNOWN;
    }
    let bits = size as u32 * 8;
    if sign_extend {
        let half = 1i64 << (bits - 1);
        Scalar::signed_range(-half, half - 1)
    } else {
        Scalar::unsigned_range(0, (1u64 << bits) - 1)
    }
}

fn mem_size_bits(size: MemSize) -> u32 {
    size.bytes() as u32 * 8
}

impl<'a> Analyzer<'a> {
    pub fn new(prog: &'a [Insn], cfg: &'a Cfg, config: &'a VerifierConfig) -> Self {
        Analyzer {
            prog,
            cfg,
            config,
            checkpoints: Vec::new(),
            stored_at: (0..prog.len()).map(|_| Vec::new()).collect(),
            next_id: 1,
            stats: Stats::default(),
            state_bytes: 0,
        }
    }

    /// Explores every path; the first violation is the verdict.
    pub fn run(mut self, entry: State) -> Result<Stats, VerifyError> {
        let mut work: Vec<Path> = alloc::vec![Path {
            state: entry,
            pc: 0,
            last_checkpoint: None,
        }];
        self.stats.max_call_depth = 1;
        let mut pending_bytes = 0usize;
        while let Some(mut path) = work.pop() {
            pending_bytes = pending_bytes.saturating_sub(Self::path_bytes(&path));
            loop {
                let pc = path.pc;
                self.stats.insns_processed += 1;
                if self.stats.insns_processed > self.config.complexity_limit {
                    return Err(VerifyError {
                        insn: pc,
                        kind: VerifyErrorKind::ComplexityLimit {
                            limit: self.config.complexity_limit,
                        },
                    });
                }
                if self.cfg.prune_point[pc] {
                    // Forget dead registers so that states differing only there prune.
                    let live = self.cfg.live_in[pc];
                    for (r, v) in path.state.frame_mut().regs.iter_mut().enumerate() {
                        if live & (1 << r) == 0 {
                            *v = Value::Uninit;
                        }
                    }
                    match self.check_prune(&path) {
                        Ok(true) => {
                            self.stats.paths_pruned += 1;
                            self.end_path(path.last_checkpoint);
                            break;
                        }
                        Ok(false) => {
                            self.merge(&mut path);
                            self.store(&mut path)
                        }
                        Err(kind) => return Err(VerifyError { insn: pc, kind }),
                    }
                }
                match self.step(&mut path) {
                    Ok(Flow::Next(next)) => path.pc = next,
                    Ok(Flow::Fork(next, other)) => {
                        if let Some(cp) = other.last_checkpoint {
                            self.checkpoints[cp as usize].branches += 1;
                        }
                        pending_bytes += Self::path_bytes(&other);
                        work.push(other);
                        self.stats.peak_state_bytes = self
                            .stats
                            .peak_state_bytes
                            .max(self.state_bytes + pending_bytes);
                        if work.len() > self.config.max_pending_paths {
                            return Err(VerifyError {
                                insn: pc,
                                kind: VerifyErrorKind::TooManyPendingBranches {
                                    limit: self.config.max_pending_paths,
                                },
                            });
                        }
                        self.stats.peak_pending_paths =
                            self.stats.peak_pending_paths.max(work.len());
                        path.pc = next;
                    }
                    Ok(Flow::End) => {
                        self.end_path(path.last_checkpoint);
                        break;
                    }
                    Err(kind) => return Err(VerifyError { insn: pc, kind }),
                }
            }
        }
        self.stats.peak_state_bytes = self.stats.peak_state_bytes.max(self.state_bytes);
        Ok(self.stats)
    }

    fn path_bytes(path: &Path) -> usize {
        path.state.heap_bytes() + core::mem::size_of::<Path>()
    }

    fn end_path(&mut self, mut cp: Option<u32>) {
        while let Some(c) = cp {
            let checkpoint = &mut self.checkpoints[c as usize];
            checkpoint.branches = checkpoint.branches.saturating_sub(1);
            if checkpoint.branches > 0 {
                break;
            }
            cp = checkpoint.parent;
        }
    }

    /// True when a finished kept state includes the current one; an error when an
    /// unfinished (ancestor) state equals it.
    fn check_prune(&self, path: &Path) -> Res<bool> {
        for &id in &self.stored_at[path.pc] {
            let cp = &self.checkpoints[id as usize];
            if cp.branches == 0 {
                if cp.state.includes(&path.state) {
                    return Ok(true);
                }
            } else if cp.state.includes(&path.state) && path.state.includes(&cp.state) {
                return err(VerifyErrorKind::InfiniteLoop);
            }
        }
        Ok(false)
    }

    /// At a forward join point that already holds [`MERGE_AFTER_STATES`] states, widens
    /// the current state to its join with the newest finished state there. Exploring a
    /// wider state proves the narrower one safe; the merged state then includes later
    /// arrivals, so chains of branches cost linear rather than exponential time. Loop heads
    /// are excluded so loop iterations stay distinct (see [`crate::cfg::Cfg::loop_head`]).
    fn merge(&mut self, path: &mut Path) {
        let pc = path.pc;
        if self.cfg.loop_head[pc] || self.stored_at[pc].len() < MERGE_AFTER_STATES {
            return;
        }
        let newest_finished = self.stored_at[pc]
            .iter()
            .rev()
            .find(|&&id| self.checkpoints[id as usize].branches == 0);
        if let Some(&id) = newest_finished {
            if let Some(joined) = self.checkpoints[id as usize].state.join(&path.state) {
                path.state = joined;
            }
        }
    }

    fn store(&mut self, path: &mut Path) {
        if self.checkpoints.len() >= self.config.max_stored_states
            || self.stored_at[path.pc].len() >= MAX_STATES_PER_INSN
        {
            return;
        }
        let id = self.checkpoints.len() as u32;
        self.state_bytes += path.state.heap_bytes() + core::mem::size_of::<Checkpoint>();
        self.checkpoints.push(Checkpoint {
            state: path.state.clone(),
            parent: path.last_checkpoint,
            branches: 1,
        });
        self.stored_at[path.pc].push(id);
        self.stats.states_stored += 1;
        path.last_checkpoint = Some(id);
    }

    fn read_reg(state: &State, reg: Reg) -> Res<Value> {
        let v = state.frame().regs[reg.index()];
        if v == Value::Uninit {
            return err(VerifyErrorKind::UninitialisedRegister { reg });
        }
        Ok(v)
    }

    fn write_reg(state: &mut State, reg: Reg, value: Value) -> Res<()> {
        if reg.0 == 10 {
            return err(VerifyErrorKind::FramePointerWrite);
        }
        state.frame_mut().regs[reg.index()] = value;
        Ok(())
    }

    fn operand(state: &State, src: Operand) -> Res<Value> {
        match src {
            Operand::Imm(imm) => Ok(Value::Scalar(Scalar::constant(imm as i64 as u64))),
            Operand::Reg(r) => Self::read_reg(state, r),
        }
    }

    fn step(&mut self, path: &mut Path) -> Res<Flow> {
        let pc = path.pc;
        let state = &mut path.state;
        match self.prog[pc] {
            Insn::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let b = Self::operand(state, src)?;
                let result = match op {
                    AluOp::Mov => match (width, b) {
                        (Width::W64, v) => v,
                        (Width::W32, Value::Scalar(s)) => Value::Scalar(s.zero_extend_low32()),
                        (Width::W32, _) => {
                            let reg = match src {
                                Operand::Reg(r) => r,
                                Operand::Imm(_) => dst,
                            };
                            return err(VerifyErrorKind::PointerTruncation { reg });
                        }
                    },
                    AluOp::MovSx(bits) => match b {
                        Value::Scalar(s) => Value::Scalar(s.sign_extend(bits, width)),
                        other => {
                            return err(VerifyErrorKind::ForbiddenPointerArithmetic {
                                op,
                                class: other.class(),
                            })
                        }
                    },
                    _ => {
                        let a = Self::read_reg(state, dst)?;
                        self.alu(op, width, dst, a, b)?
                    }
                };
                Self::write_reg(state, dst, result)?;
                Ok(Flow::Next(pc + 1))
            }
            Insn::Neg { width, dst } => {
                let a = Self::read_reg(state, dst)?;
                let Value::Scalar(s) = a else {
                    return err(VerifyErrorKind::ForbiddenPointerArithmetic {
                        op: AluOp::Sub,
                        class: a.class(),
                    });
                };
                let r = Scalar::alu(AluOp::Sub, width, &Scalar::constant(0), &s);
                Self::write_reg(state, dst, Value::Scalar(r))?;
                Ok(Flow::Next(pc + 1))
            }
            Insn::End { order, bits, dst } => {
                let a = Self::read_reg(state, dst)?;
                let Value::Scalar(s) = a else {
                    return err(VerifyErrorKind::ForbiddenPointerArithmetic {
                        op: AluOp::And,
                        class: a.class(),
                    });
                };
                let r = match (order, s.as_const()) {
                    (ByteOrder::ToLittle, _) => s.truncate(bits as u32),
                    (_, Some(v)) => Scalar::constant(match bits {
                        16 => (v as u16).swap_bytes() as u64,
                        32 => (v as u32).swap_bytes() as u64,
                        _ => v.swap_bytes(),
                    }),
                    (_, None) => loaded_scalar(bits as usize / 8, false),
                };
                Self::write_reg(state, dst, Value::Scalar(r))?;
                Ok(Flow::Next(pc + 1))
            }
            Insn::LoadImm64 { dst, src, imm } => {
                let value = match src {
                    lddw_src::IMM64 => Value::Scalar(Scalar::constant(imm)),
                    lddw_src::MAP_BY_FD | lddw_src::MAP_BY_INDEX => {
                        let index = imm as u32;
                        if index as usize >= self.config.maps.len() {
                            return err(VerifyErrorKind::UnknownMap { index });
                        }
                        Value::MapPointer { map: index as u16 }
                    }
                    lddw_src::MAP_VALUE_BY_FD | lddw_src::MAP_VALUE_BY_INDEX => {
                        let index = imm as u32;
                        if index as usize >= self.config.maps.len() {
                            return err(VerifyErrorKind::UnknownMap { index });
                        }
                        Value::Pointer {
                            region: Region::MapValue { map: index as u16 },
                            offset: Scalar::constant((imm >> 32) as u32 as u64),
                        }
                    }
                    other => return err(VerifyErrorKind::UnsupportedLddw { src: other }),
                };
                Self::write_reg(state, dst, value)?;
                Ok(Flow::Next(pc + 2))
            }
            Insn::LoadImm64Tail => {
                // The CFG rejects jumps here and sequential flow skips it.
                err(VerifyErrorKind::JumpIntoLddw { target: pc })
            }
            Insn::Load {
                size,
                sign_extend,
                dst,
                base,
                off,
            } => {
                let b = Self::read_reg(state, base)?;
                let v = self.read_memory(state, base, b, off, size.bytes(), sign_extend)?;
                Self::write_reg(state, dst, v)?;
                Ok(Flow::Next(pc + 1))
            }
            Insn::Store {
                size,
                base,
                off,
                src,
            } => {
                let v = match src {
                    // ST sign-extends its 32-bit immediate to the access size.
                    Operand::Imm(imm) => Value::Scalar(
                        Scalar::constant(imm as i64 as u64).truncate(mem_size_bits(size)),
                    ),
                    Operand::Reg(r) => Self::read_reg(state, r)?,
                };
                let b = Self::read_reg(state, base)?;
                self.write_memory(state, base, b, off, size.bytes(), v)?;
                Ok(Flow::Next(pc + 1))
            }
            Insn::Atomic {
                size,
                op,
                fetch,
                base,
                off,
                src,
            } => {
                self.atomic(state, size, op, fetch, base, off, src)?;
                Ok(Flow::Next(pc + 1))
            }
            Insn::LegacyPacketLoad { .. } => err(VerifyErrorKind::LegacyPacketAccess),
            Insn::Ja { offset } => Ok(Flow::Next((pc as i64 + 1 + offset as i64) as usize)),
            Insn::Jump {
                width,
                cond,
                dst,
                src,
                offset,
            } => {
                let target = (pc as i64 + 1 + offset as i64) as usize;
                self.branch(path, width, cond, dst, src, target)
            }
            Insn::Call(CallTarget::Helper(id)) => {
                self.call_helper(state, id as i64)?;
                Ok(Flow::Next(pc + 1))
            }
            Insn::Call(CallTarget::Register(reg)) => {
                let v = Self::read_reg(state, reg)?;
                match v {
                    Value::Scalar(s) if s.as_const().is_some() => {
                        self.call_helper(state, s.umin as i64)?;
                        Ok(Flow::Next(pc + 1))
                    }
                    _ => err(VerifyErrorKind::IndirectCallUnknownTarget { reg }),
                }
            }
            Insn::Call(CallTarget::HelperByBtfId(id)) => err(VerifyErrorKind::BtfHelperCall { id }),
            Insn::Call(CallTarget::Local(imm)) => {
                let target = (pc as i64 + 1 + imm as i64) as usize;
                let depth = state.frames.len() + 1;
                if depth > self.config.max_call_depth {
                    return err(VerifyErrorKind::CallDepthExceeded {
                        limit: self.config.max_call_depth,
                    });
                }
                self.stats.max_call_depth = self.stats.max_call_depth.max(depth);
                let caller = state.frame_mut();
                let mut regs = [Value::Uninit; 11];
                regs[1..6].copy_from_slice(&caller.regs[1..6]);
                // The caller's r0-r5 are clobbered by the call: forget them now so that
                // states at the same call differ only in what survives it.
                for r in caller.regs[0..6].iter_mut() {
                    *r = Value::Uninit;
                }
                regs[10] = Value::Pointer {
                    region: Region::Stack {
                        frame: (depth - 1) as u8,
                    },
                    offset: Scalar::constant(0),
                };
                state.frames.push(Frame {
                    regs,
                    stack: Stack::default(),
                    return_pc: pc + 1,
                });
                Ok(Flow::Next(target))
            }
            Insn::Exit => {
                let r0 = Self::read_reg(state, Reg(0))?;
                if state.frames.len() > 1 {
                    let depth = (state.frames.len() - 1) as u8;
                    if let Value::Pointer {
                        region: Region::Stack { frame },
                        ..
                    } = r0
                    {
                        if frame >= depth {
                            return err(VerifyErrorKind::ReturnsStackPointer);
                        }
                    }
                    let callee = state.frames.pop();
                    let return_pc = callee.map(|f| f.return_pc).unwrap_or(pc + 1);
                    state.frame_mut().regs[0] = r0;
                    Ok(Flow::Next(return_pc))
                } else {
                    match r0 {
                        Value::Scalar(_) => Ok(Flow::End),
                        other => err(VerifyErrorKind::PointerLeakExit {
                            class: other.class(),
                        }),
                    }
                }
            }
        }
    }

    fn alu(&mut self, op: AluOp, width: Width, dst: Reg, a: Value, b: Value) -> Res<Value> {
        if let (Value::Scalar(x), Value::Scalar(y)) = (a, b) {
            return Ok(Value::Scalar(Scalar::alu(op, width, &x, &y)));
        }
        if width == Width::W32 {
            return err(VerifyErrorKind::PointerTruncation { reg: dst });
        }
        let pointer_class = if a.is_pointer() { a.class() } else { b.class() };
        match (op, a, b) {
            (AluOp::Add | AluOp::Sub, Value::Pointer { region, offset }, Value::Scalar(s)) => {
                let offset = Scalar::alu(op, Width::W64, &offset, &s);
                Self::check_offset(&offset)?;
                Ok(Value::Pointer { region, offset })
            }
            (AluOp::Add, Value::Scalar(s), Value::Pointer { region, offset }) => {
                let offset = Scalar::alu(op, Width::W64, &offset, &s);
                Self::check_offset(&offset)?;
                Ok(Value::Pointer { region, offset })
            }
            (
                AluOp::Sub,
                Value::Pointer {
                    region: ra,
                    offset: oa,
                },
                Value::Pointer {
                    region: rb,
                    offset: ob,
                },
            ) => {
                if ra != rb {
                    return err(VerifyErrorKind::PointerSubtractionAcrossRegions);
                }
                Ok(Value::Scalar(Scalar::alu(AluOp::Sub, Width::W64, &oa, &ob)))
            }
            (AluOp::Add | AluOp::Sub, Value::MapValueOrNull { .. }, _)
            | (AluOp::Add, _, Value::MapValueOrNull { .. }) => {
                err(VerifyErrorKind::NullablePointerArithmetic { reg: dst })
            }
            _ => err(VerifyErrorKind::ForbiddenPointerArithmetic {
                op,
                class: pointer_class,
            }),
        }
    }

    fn check_offset(offset: &Scalar) -> Res<()> {
        if offset.smin < -MAX_POINTER_OFFSET || offset.smax > MAX_POINTER_OFFSET {
            return err(VerifyErrorKind::PointerOffsetTooLarge {
                min: offset.smin,
                max: offset.smax,
            });
        }
        Ok(())
    }

    /// The byte interval `[min, max_end)` an access of `size` bytes at `pointer offset +
    /// insn offset` may touch, as (lowest start, highest start).
    fn span(offset: &Scalar, off: i64) -> (i64, i64) {
        (offset.smin + off, offset.smax + off)
    }

    fn stack_bounds(&mut self, min: i64, max: i64, size: usize) -> Res<()> {
        if min < -STACK_FRAME_SIZE || max + size as i64 > 0 {
            return err(VerifyErrorKind::StackOutOfBounds { min, max, size });
        }
        self.stats.max_stack_depth = self.stats.max_stack_depth.max((-min) as usize);
        Ok(())
    }

    fn map_bounds(&self, map: u16, min: i64, max: i64, size: usize) -> Res<()> {
        let value_size = self.config.maps[map as usize].value_size;
        if min < 0 || max + size as i64 > value_size as i64 {
            return err(VerifyErrorKind::MapValueOutOfBounds {
                min,
                max,
                size,
                value_size,
            });
        }
        Ok(())
    }

    /// Checks that every byte of `[min, max + size)` of frame `frame`'s stack is readable
    /// data (initialised, not part of a pointer).
    fn stack_readable(stack: &Stack, min: i64, max: i64, size: usize) -> Res<()> {
        for o in min..max + size as i64 {
            match stack.byte(o) {
                ByteKind::Data => {}
                ByteKind::Uninit => {
                    return err(VerifyErrorKind::UninitialisedStack {
                        offset: o,
                        size: (max + size as i64 - o) as usize,
                    })
                }
                ByteKind::PointerPart => {
                    return err(VerifyErrorKind::PartialPointerRead { offset: o, size })
                }
                ByteKind::Spill => {
                    let slot = stack.slot(((o + STACK_FRAME_SIZE) / 8) as usize);
                    if slot.spill.map(|v| v.is_pointer()).unwrap_or(false) {
                        return err(VerifyErrorKind::PartialPointerRead { offset: o, size });
                    }
                }
            }
        }
        Ok(())
    }

    fn read_memory(
        &mut self,
        state: &State,
        base: Reg,
        b: Value,
        off: i16,
        size: usize,
        sign_extend: bool,
    ) -> Res<Value> {
        match b {
            Value::Pointer { region, offset } => {
                let (min, max) = Self::span(&offset, off as i64);
                match region {
                    Region::Context => {
                        let ctx = &self.config.context;
                        if !ctx.covers(&ctx.readable, min, max + size as i64) {
                            return err(VerifyErrorKind::ContextNotReadable { min, max, size });
                        }
                        Ok(Value::Scalar(loaded_scalar(size, sign_extend)))
                    }
                    Region::MapValue { map } => {
                        self.map_bounds(map, min, max, size)?;
                        Ok(Value::Scalar(loaded_scalar(size, sign_extend)))
                    }
                    Region::Stack { frame } => {
                        self.stack_bounds(min, max, size)?;
                        let stack = &state.frames[frame as usize].stack;
                        if min == max && size == 8 && min % 8 == 0 {
                            let slot = stack.slot(((min + STACK_FRAME_SIZE) / 8) as usize);
                            if let Some(v) = slot.spill {
                                return Ok(v);
                            }
                        }
                        // A narrow read of a spilled known scalar at its low end keeps the
                        // value (e.g. a u32 counter saved as u64).
                        if min == max && min % 8 == 0 && !sign_extend {
                            let slot = stack.slot(((min + STACK_FRAME_SIZE) / 8) as usize);
                            if let Some(Value::Scalar(s)) = slot.spill {
                                return Ok(Value::Scalar(s.truncate(size as u32 * 8)));
                            }
                        }
                        Self::stack_readable(stack, min, max, size)?;
                        Ok(Value::Scalar(loaded_scalar(size, sign_extend)))
                    }
                }
            }
            Value::MapValueOrNull { .. } => {
                err(VerifyErrorKind::PossiblyNullDereference { reg: base })
            }
            other => err(VerifyErrorKind::NotAPointer {
                reg: base,
                class: other.class(),
            }),
        }
    }

    fn write_memory(
        &mut self,
        state: &mut State,
        base: Reg,
        b: Value,
        off: i16,
        size: usize,
        v: Value,
    ) -> Res<()> {
        match b {
            Value::Pointer { region, offset } => {
                let (min, max) = Self::span(&offset, off as i64);
                match region {
                    Region::Context => {
                        let ctx = &self.config.context;
                        if !ctx.covers(&ctx.writable, min, max + size as i64) {
                            return err(VerifyErrorKind::ContextNotWritable { min, max, size });
                        }
                        if v.is_pointer() {
                            return err(VerifyErrorKind::PointerLeakStore {
                                region: RegionName::Context,
                            });
                        }
                        Ok(())
                    }
                    Region::MapValue { map } => {
                        self.map_bounds(map, min, max, size)?;
                        if v.is_pointer() {
                            return err(VerifyErrorKind::PointerLeakStore {
                                region: RegionName::MapValue,
                            });
                        }
                        Ok(())
                    }
                    Region::Stack { frame } => {
                        self.stack_bounds(min, max, size)?;
                        if min != max {
                            return err(VerifyErrorKind::VariableStackWrite { min, max });
                        }
                        if let Value::Pointer {
                            region: Region::Stack { frame: pointee },
                            ..
                        } = v
                        {
                            if pointee > frame {
                                return err(VerifyErrorKind::StackPointerEscape);
                            }
                        }
                        let stack = &mut state.frames[frame as usize].stack;
                        if size == 8 && min % 8 == 0 {
                            stack.spill(min, v);
                        } else if v.is_pointer() {
                            return err(VerifyErrorKind::PartialPointerSpill { offset: min, size });
                        } else {
                            stack.write_data(min, size);
                        }
                        Ok(())
                    }
                }
            }
            Value::MapValueOrNull { .. } => {
                err(VerifyErrorKind::PossiblyNullDereference { reg: base })
            }
            other => err(VerifyErrorKind::NotAPointer {
                reg: base,
                class: other.class(),
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn atomic(
        &mut self,
        state: &mut State,
        size: MemSize,
        op: AtomicOp,
        fetch: bool,
        base: Reg,
        off: i16,
        src: Reg,
    ) -> Res<()> {
        let b = Self::read_reg(state, base)?;
        let v = Self::read_reg(state, src)?;
        if v.is_pointer() {
            let region = match b {
                Value::Pointer {
                    region: Region::Context,
                    ..
                } => RegionName::Context,
                Value::Pointer {
                    region: Region::Stack { .. },
                    ..
                } => RegionName::Stack,
                _ => RegionName::MapValue,
            };
            return err(VerifyErrorKind::PointerLeakStore { region });
        }
        if op == AtomicOp::CmpXchg {
            let r0 = Self::read_reg(state, Reg(0))?;
            if r0.is_pointer() {
                return err(VerifyErrorKind::PointerComparison {
                    reg: Reg(0),
                    class: r0.class(),
                });
            }
        }
        let bytes = size.bytes();
        if let Value::Pointer {
            region: Region::Context,
            ..
        } = b
        {
            return err(VerifyErrorKind::AtomicNotAllowed {
                region: RegionName::Context,
            });
        }
        // Read-modify-write: the location must be readable, then it is written with data.
        let old = self.read_memory(state, base, b, off, bytes, false)?;
        if old.is_pointer() {
            return err(VerifyErrorKind::AtomicOnPointer { class: old.class() });
        }
        if let Value::Pointer {
            region: Region::Stack { frame },
            offset,
        } = b
        {
            let min = offset.smin + off as i64;
            if offset.smin != offset.smax {
                return err(VerifyErrorKind::VariableStackWrite {
                    min,
                    max: offset.smax + off as i64,
                });
            }
            let stack = &mut state.frames[frame as usize].stack;
            if bytes == 8 && min % 8 == 0 {
                stack.spill(min, Value::Scalar(Scalar::UNKNOWN));
            } else {
                stack.write_data(min, bytes);
            }
        }
        if fetch {
            let old = Value::Scalar(loaded_scalar(bytes, false));
            let dst = if op == AtomicOp::CmpXchg { Reg(0) } else { src };
            Self::write_reg(state, dst, old)?;
        }
        Ok(())
    }

    fn branch(
        &mut self,
        path: &mut Path,
        width: Width,
        cond: Cond,
        dst: Reg,
        src: Operand,
        target: usize,
    ) -> Res<Flow> {
        let pc = path.pc;
        let (taken, fall) = self.edges(&path.state, width, cond, dst, src)?;
        Ok(match (taken, fall) {
            (Some(t), Some(f)) => {
                path.state = f;
                Flow::Fork(
                    pc + 1,
                    Path {
                        state: t,
                        pc: target,
                        last_checkpoint: path.last_checkpoint,
                    },
                )
            }
            (Some(t), None) => {
                path.state = t;
                Flow::Next(target)
            }
            (None, Some(f)) => {
                path.state = f;
                Flow::Next(pc + 1)
            }
            // Both edges impossible: the state itself was empty; nothing follows.
            (None, None) => Flow::End,
        })
    }

    /// The states on the taken and the fall-through edge (`None`: edge impossible).
    /// The offsets a pointer into `region` may have while it points into the object or one
    /// past its end.
    fn object_bounds(&self, region: Region) -> (i64, i64) {
        match region {
            Region::Context => (0, self.config.context.size as i64),
            Region::Stack { .. } => (-STACK_FRAME_SIZE, 0),
            Region::MapValue { map } => (0, self.config.maps[map as usize].value_size as i64),
        }
    }

    fn in_object(&self, region: Region, offset: &Scalar) -> bool {
        let (lo, hi) = self.object_bounds(region);
        offset.smin >= lo && offset.smax <= hi
    }

    fn edges(
        &self,
        state: &State,
        width: Width,
        cond: Cond,
        dst: Reg,
        src: Operand,
    ) -> Res<(Option<State>, Option<State>)> {
        let a = Self::read_reg(state, dst)?;
        let b = Self::operand(state, src)?;
        let src_reg = match src {
            Operand::Reg(r) => Some(r),
            Operand::Imm(_) => None,
        };
        if let (Value::Scalar(x), Value::Scalar(y)) = (a, b) {
            let (taken, fall) = Scalar::refine(cond, width, &x, &y);
            let apply = |edge: Option<(Scalar, Scalar)>| {
                edge.map(|(ra, rb)| {
                    let mut s = state.clone();
                    s.frame_mut().regs[dst.index()] = Value::Scalar(ra);
                    if let Some(r) = src_reg {
                        if r != dst {
                            s.frame_mut().regs[r.index()] = Value::Scalar(rb);
                        }
                    }
                    s
                })
            };
            return Ok((apply(taken), apply(fall)));
        }
        // At least one pointer.
        let culprit = if a.is_pointer() {
            dst
        } else {
            src_reg.unwrap_or(dst)
        };
        let culprit_class = if a.is_pointer() { a.class() } else { b.class() };
        let forbidden = VerifyErrorKind::PointerComparison {
            reg: culprit,
            class: culprit_class,
        };
        if width == Width::W32 {
            return err(forbidden);
        }
        let is_zero = |v: &Value| matches!(v, Value::Scalar(s) if s.as_const() == Some(0));
        let (ptr, zero_other) = if is_zero(&b) {
            (a, true)
        } else if is_zero(&a) {
            (b, true)
        } else {
            (a, false)
        };
        if zero_other && matches!(cond, Cond::Eq | Cond::Ne) {
            // Null check: `ptr == 0` / `ptr != 0`.
            let (null_state, nonnull_state) = match ptr {
                Value::MapValueOrNull { map, id } => {
                    let mut null_state = state.clone();
                    null_state.map_values(|v| match v {
                        Value::MapValueOrNull { id: i, .. } if *i == id => {
                            Some(Value::Scalar(Scalar::constant(0)))
                        }
                        _ => None,
                    });
                    let mut nonnull = state.clone();
                    nonnull.map_values(|v| match v {
                        Value::MapValueOrNull { id: i, .. } if *i == id => Some(Value::Pointer {
                            region: Region::MapValue { map },
                            offset: Scalar::constant(0),
                        }),
                        _ => None,
                    });
                    (Some(null_state), Some(nonnull))
                }
                Value::Pointer { .. } => (None, Some(state.clone())),
                _ => return err(forbidden),
            };
            return Ok(if cond == Cond::Eq {
                (null_state, nonnull_state)
            } else {
                (nonnull_state, null_state)
            });
        }
        // A non-null pointer compared unsigned with 0: the outcome is known and reveals
        // nothing about the address (`p > 0` and `p >= 0` hold, `p < 0` and `p <= 0` fail).
        if zero_other && matches!(ptr, Value::Pointer { .. }) {
            let pointer_on_left = !is_zero(&a);
            let holds = match (cond, pointer_on_left) {
                (Cond::Gt | Cond::Ge, true) | (Cond::Lt | Cond::Le, false) => Some(true),
                (Cond::Lt | Cond::Le, true) | (Cond::Gt | Cond::Ge, false) => Some(false),
                _ => None,
            };
            if let Some(holds) = holds {
                return Ok(if holds {
                    (Some(state.clone()), None)
                } else {
                    (None, Some(state.clone()))
                });
            }
        }
        // Two pointers into the same region compare like their offsets while both stay
        // inside the object (one past the end included): an object's addresses neither wrap
        // nor straddle the sign boundary, so unsigned and signed comparisons of addresses
        // are signed comparisons of offsets, and both edges are refined. Out-of-object
        // pointers could wrap (RAM may start at address 0), so they get no refinement.
        if let (
            Value::Pointer {
                region: ra,
                offset: oa,
            },
            Value::Pointer {
                region: rb,
                offset: ob,
            },
        ) = (a, b)
        {
            if ra == rb && !(self.in_object(ra, &oa) && self.in_object(rb, &ob)) {
                return Ok((Some(state.clone()), Some(state.clone())));
            }
            if ra == rb {
                let signed = match cond {
                    Cond::Eq => Some(Cond::Eq),
                    Cond::Ne => Some(Cond::Ne),
                    Cond::Gt | Cond::SGt => Some(Cond::SGt),
                    Cond::Ge | Cond::SGe => Some(Cond::SGe),
                    Cond::Lt | Cond::SLt => Some(Cond::SLt),
                    Cond::Le | Cond::SLe => Some(Cond::SLe),
                    Cond::Set => None,
                };
                let Some(signed) = signed else {
                    return Ok((Some(state.clone()), Some(state.clone())));
                };
                let (taken, fall) = Scalar::refine(signed, Width::W64, &oa, &ob);
                let apply = |edge: Option<(Scalar, Scalar)>| {
                    edge.map(|(na, nb)| {
                        let mut s = state.clone();
                        s.frame_mut().regs[dst.index()] = Value::Pointer {
                            region: ra,
                            offset: na,
                        };
                        if let Some(r) = src_reg {
                            if r != dst {
                                s.frame_mut().regs[r.index()] = Value::Pointer {
                                    region: rb,
                                    offset: nb,
                                };
                            }
                        }
                        s
                    })
                };
                return Ok((apply(taken), apply(fall)));
            }
        }
        err(forbidden)
    }

    fn call_helper(&mut self, state: &mut State, id: i64) -> Res<()> {
        let spec = match u32::try_from(id).ok().and_then(|id| self.config.helper(id)) {
            Some(s) => s,
            None => return err(VerifyErrorKind::HelperNotAllowed { id }),
        };
        let helper = spec.id;
        if spec.args.len() > 5 {
            // A malformed prototype (only r1-r5 carry arguments): never trust it.
            return err(VerifyErrorKind::HelperNotAllowed { id });
        }
        let mut map: Option<u16> = None;
        // A memory argument waiting for its size: (region, offset range, writable).
        let mut pending: Option<(Region, Scalar, bool)> = None;
        for (i, arg) in spec.args.iter().enumerate() {
            let arg_no = (i + 1) as u8;
            let reg = Reg(arg_no);
            let v = state.frame().regs[reg.index()];
            let wrong = |found: &Value| {
                err(VerifyErrorKind::HelperArgument {
                    helper,
                    arg: arg_no,
                    expected: *arg,
                    found: found.class(),
                })
            };
            match arg {
                ArgType::Scalar => {
                    if !matches!(v, Value::Scalar(_)) {
                        return wrong(&v);
                    }
                }
                ArgType::MemorySize => {
                    let Value::Scalar(size) = v else {
                        return wrong(&v);
                    };
                    if let Some((region, offset, writable)) = pending.take() {
                        if size.umax > MAX_HELPER_MEMORY_SIZE {
                            return err(VerifyErrorKind::HelperSizeUnbounded {
                                helper,
                                arg: arg_no,
                            });
                        }
                        self.check_helper_memory(
                            state,
                            region,
                            &offset,
                            size.umin as usize,
                            size.umax as usize,
                            writable,
                        )?;
                    }
                }
                ArgType::MapPointer => match v {
                    Value::MapPointer { map: m } => map = Some(m),
                    _ => return wrong(&v),
                },
                ArgType::MapKey | ArgType::MapValue => {
                    let Some(m) = map else {
                        return err(VerifyErrorKind::HelperArgumentWithoutMap {
                            helper,
                            arg: arg_no,
                        });
                    };
                    let def = &self.config.maps[m as usize];
                    let size = if *arg == ArgType::MapKey {
                        def.key_size
                    } else {
                        def.value_size
                    } as usize;
                    match v {
                        Value::Pointer {
                            region: region @ (Region::Stack { .. } | Region::MapValue { .. }),
                            offset,
                        } => self.check_helper_memory(state, region, &offset, size, size, false)?,
                        _ => return wrong(&v),
                    }
                }
                ArgType::ReadableMemory | ArgType::WritableMemory => {
                    let writable = *arg == ArgType::WritableMemory;
                    match v {
                        Value::Pointer { region, offset } => {
                            if writable && region == Region::Context {
                                // Checked against the writable ranges with the size below.
                            }
                            pending = Some((region, offset, writable));
                        }
                        _ => return wrong(&v),
                    }
                }
                ArgType::Context => match v {
                    Value::Pointer {
                        region: Region::Context,
                        offset,
                    } if offset.as_const() == Some(0) => {}
                    _ => return wrong(&v),
                },
            }
        }
        if pending.is_some() {
            // A memory argument without its size argument: the helper's extent is unknown.
            return err(VerifyErrorKind::HelperSizeUnbounded {
                helper,
                arg: spec.args.len() as u8 + 1,
            });
        }
        let ret = match spec.ret {
            RetType::Scalar => Value::Scalar(Scalar::UNKNOWN),
            RetType::MapValueOrNull => {
                let Some(m) = map else {
                    return err(VerifyErrorKind::HelperArgumentWithoutMap { helper, arg: 1 });
                };
                self.next_id += 1;
                Value::MapValueOrNull {
                    map: m,
                    id: self.next_id,
                }
            }
        };
        let frame = state.frame_mut();
        for r in frame.regs[1..6].iter_mut() {
            *r = Value::Uninit;
        }
        frame.regs[0] = ret;
        Ok(())
    }

    /// A helper reads (or writes) `[offset, offset + size)` of `region` for a size in
    /// `[size_min, size_max]`.
    fn check_helper_memory(
        &mut self,
        state: &mut State,
        region: Region,
        offset: &Scalar,
        size_min: usize,
        size_max: usize,
        writable: bool,
    ) -> Res<()> {
        if size_max == 0 {
            return Ok(());
        }
        let (min, max) = Self::span(offset, 0);
        match region {
            Region::Context => {
                let ctx = &self.config.context;
                let ranges = if writable {
                    &ctx.writable
                } else {
                    &ctx.readable
                };
                if !ctx.covers(ranges, min, max + size_max as i64) {
                    return err(if writable {
                        VerifyErrorKind::ContextNotWritable {
                            min,
                            max,
                            size: size_max,
                        }
                    } else {
                        VerifyErrorKind::ContextNotReadable {
                            min,
                            max,
                            size: size_max,
                        }
                    });
                }
            }
            Region::MapValue { map } => self.map_bounds(map, min, max, size_max)?,
            Region::Stack { frame } => {
                self.stack_bounds(min, max, size_max)?;
                let stack = &mut state.frames[frame as usize].stack;
                if writable {
                    if min != max {
                        return err(VerifyErrorKind::VariableStackWrite { min, max });
                    }
                    stack.clobber(min, size_max);
                    stack.write_data(min, size_min);
                } else {
                    Self::stack_readable(stack, min, max, size_max)?;
                }
            }
        }
        Ok(())
    }
}
