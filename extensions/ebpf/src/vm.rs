//! The interpreter: programs are checked and pre-decoded once at load, then run by a tight
//! dispatch loop.
//!
//! Design:
//! - [`Program::load`] decodes every slot with [`crate::insn`], rejects what cannot run
//!   (undecodable slots, jumps and calls out of range or into the middle of `lddw`, unknown
//!   helpers, unresolvable map references) and lowers each instruction to a 16-byte [`Op`]:
//!   one dispatch code that already encodes operation, width and operand kind, the
//!   immediate pre-extended the way the instruction uses it, jump targets made absolute,
//!   shift counts pre-masked, and map references resolved to handles or value addresses. A
//!   sentinel op after the last slot turns "fell off the end" into an error instead of an
//!   index panic, so the loop indexes without fear.
//! - [`Vm`] owns the stack (one 512-byte frame per call level, 8-aligned) and is reused
//!   across runs, so running allocates nothing.
//! - Every run has an instruction budget, counted per executed instruction, verified or not.
//! - Memory: in checked mode ([`Vm::run`]) every load, store and atomic is tested against the
//!   run's regions (input, stack, map values); fast mode ([`Vm::run_unchecked`]) skips those
//!   tests and is only for verifier-approved programs. Both are one generic function, so the
//!   two modes cannot drift apart.
//! - Division by zero and signed overflow follow RFC 9669 (x/0 = 0, x%0 = x, INT_MIN/-1 =
//!   INT_MIN, INT_MIN%-1 = 0); shifts mask their count to the operand width.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::insn::{
    decode_program, lddw_src, AluOp, AtomicOp, ByteOrder, CallTarget, Cond, DecodeError, Insn,
    MemSize, Operand, RawInsn, Width,
};
use crate::limits::{
    DEFAULT_INSTRUCTION_BUDGET, MAX_CALL_DEPTH, MAX_MAPS_PER_PROGRAM, MAX_PROGRAM_SLOTS,
    STACK_FRAME_SIZE, STACK_SIZE,
};
use crate::maps::{Map, MapKind};
use crate::memory::{self, Region, Regions};
use crate::runtime::{HelperContext, HelperError, HelperTable, Platform, MAP_HANDLE_TAG};

/// Why a program could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The program has no instructions.
    Empty,
    /// More than [`MAX_PROGRAM_SLOTS`] slots.
    TooLong { slots: usize },
    /// A slot does not decode.
    Decode(DecodeError),
    /// A jump or call target outside the program.
    JumpOutOfRange { slot: usize, target: i64 },
    /// A jump or call target in the second slot of an `lddw`.
    JumpIntoLddw { slot: usize, target: usize },
    /// A call to a helper id the helper table does not have.
    UnknownHelper { slot: usize, id: i64 },
    /// An `lddw` map reference to a map the program was not given.
    UnknownMap { slot: usize, index: u64 },
    /// An `lddw` map-value reference that is not inside an array map's first value.
    BadMapValue {
        slot: usize,
        index: u64,
        offset: u64,
    },
    /// An instruction this runtime does not execute (call by BTF id, variable/code address).
    Unsupported { slot: usize, what: &'static str },
    /// More maps than [`MAX_MAPS_PER_PROGRAM`].
    TooManyMaps(usize),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Empty => write!(f, "program has no instructions"),
            LoadError::TooLong { slots } => write!(
                f,
                "program has {slots} instruction slots, more than the limit {MAX_PROGRAM_SLOTS}"
            ),
            LoadError::Decode(e) => write!(f, "{e}"),
            LoadError::JumpOutOfRange { slot, target } => {
                write!(f, "insn {slot}: jump to {target}, outside the program")
            }
            LoadError::JumpIntoLddw { slot, target } => {
                write!(f, "insn {slot}: jump to {target}, the middle of an lddw")
            }
            LoadError::UnknownHelper { slot, id } => {
                write!(f, "insn {slot}: call to unknown helper {id}")
            }
            LoadError::UnknownMap { slot, index } => {
                write!(
                    f,
                    "insn {slot}: lddw refers to map {index}, which was not given"
                )
            }
            LoadError::BadMapValue {
                slot,
                index,
                offset,
            } => write!(
                f,
                "insn {slot}: lddw map value {index}+{offset} is not inside an array map value"
            ),
            LoadError::Unsupported { slot, what } => {
                write!(f, "insn {slot}: {what} is not supported")
            }
            LoadError::TooManyMaps(n) => {
                write!(f, "{n} maps, more than the limit {MAX_MAPS_PER_PROGRAM}")
            }
        }
    }
}

/// Why a run stopped with an error. `pc` is the slot of the faulting instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunError {
    /// Slot of the instruction that failed.
    pub pc: usize,
    /// What went wrong.
    pub kind: RunErrorKind,
}

/// The kinds of run-time failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunErrorKind {
    /// A load, store or atomic outside the program's memory (or a store to read-only memory).
    OutOfBounds { addr: u64, size: u64, write: bool },
    /// An atomic on an address that is not a multiple of its size.
    MisalignedAtomic { addr: u64 },
    /// The instruction budget ran out.
    BudgetExhausted { budget: u64 },
    /// A BPF-to-BPF call deeper than [`MAX_CALL_DEPTH`] frames.
    CallDepthExceeded,
    /// `callx` with a register value that is no registered helper.
    UnknownHelper { id: u64 },
    /// A helper failed.
    Helper(HelperError),
    /// Execution ran past the last instruction.
    FellOffEnd,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "insn {}: ", self.pc)?;
        match &self.kind {
            RunErrorKind::OutOfBounds { addr, size, write } => write!(
                f,
                "{} of {size} bytes at {addr:#x} is outside the program's memory",
                if *write { "store" } else { "load" }
            ),
            RunErrorKind::MisalignedAtomic { addr } => {
                write!(f, "atomic at {addr:#x} is not naturally aligned")
            }
            RunErrorKind::BudgetExhausted { budget } => {
                write!(f, "instruction budget of {budget} exhausted")
            }
            RunErrorKind::CallDepthExceeded => {
                write!(f, "call depth above {MAX_CALL_DEPTH} frames")
            }
            RunErrorKind::UnknownHelper { id } => write!(f, "callx to unknown helper {id}"),
            RunErrorKind::Helper(e) => write!(f, "{e}"),
            RunErrorKind::FellOffEnd => write!(f, "execution ran past the last instruction"),
        }
    }
}

/// Dispatch codes of the pre-decoded form: one per (operation, width, operand kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Code {
    Add64I,
    Add64R,
    Sub64I,
    Sub64R,
    Mul64I,
    Mul64R,
    Div64I,
    Div64R,
    SDiv64I,
    SDiv64R,
    Or64I,
    Or64R,
    And64I,
    And64R,
    Lsh64I,
    Lsh64R,
    Rsh64I,
    Rsh64R,
    Mod64I,
    Mod64R,
    SMod64I,
    SMod64R,
    Xor64I,
    Xor64R,
    Mov64I,
    Mov64R,
    Arsh64I,
    Arsh64R,
    Neg64,
    MovSx8To64,
    MovSx16To64,
    MovSx32To64,
    Add32I,
    Add32R,
    Sub32I,
    Sub32R,
    Mul32I,
    Mul32R,
    Div32I,
    Div32R,
    SDiv32I,
    SDiv32R,
    Or32I,
    Or32R,
    And32I,
    And32R,
    Lsh32I,
    Lsh32R,
    Rsh32I,
    Rsh32R,
    Mod32I,
    Mod32R,
    SMod32I,
    SMod32R,
    Xor32I,
    Xor32R,
    Mov32I,
    Mov32R,
    Arsh32I,
    Arsh32R,
    Neg32,
    MovSx8To32,
    MovSx16To32,
    Le16,
    Le32,
    Le64,
    Be16,
    Be32,
    Be64,
    Swap16,
    Swap32,
    Swap64,
    LdDw,
    LdxB,
    LdxH,
    LdxW,
    LdxDW,
    LdxSB,
    LdxSH,
    LdxSW,
    StB,
    StH,
    StW,
    StDW,
    StxB,
    StxH,
    StxW,
    StxDW,
    Atomic,
    LegacyAbs,
    LegacyInd,
    Ja,
    JEq64I,
    JEq64R,
    JGt64I,
    JGt64R,
    JGe64I,
    JGe64R,
    JSet64I,
    JSet64R,
    JNe64I,
    JNe64R,
    JSGt64I,
    JSGt64R,
    JSGe64I,
    JSGe64R,
    JLt64I,
    JLt64R,
    JLe64I,
    JLe64R,
    JSLt64I,
    JSLt64R,
    JSLe64I,
    JSLe64R,
    JEq32I,
    JEq32R,
    JGt32I,
    JGt32R,
    JGe32I,
    JGe32R,
    JSet32I,
    JSet32R,
    JNe32I,
    JNe32R,
    JSGt32I,
    JSGt32R,
    JSGe32I,
    JSGe32R,
    JLt32I,
    JLt32R,
    JLe32I,
    JLe32R,
    JSLt32I,
    JSLt32R,
    JSLe32I,
    JSLe32R,
    Call,
    CallLocal,
    CallX,
    Exit,
    /// Second slot of lddw (never reached: load rejects jumps into it).
    LddwTail,
    /// Sentinel after the last slot.
    End,
}

/// One pre-decoded instruction (16 bytes).
#[derive(Clone, Copy, Debug)]
struct Op {
    code: Code,
    dst: u8,
    src: u8,
    /// Memory offset (signed), or absolute jump target, or atomic/legacy parameters.
    off: i32,
    /// Immediate as the instruction uses it (sign- or zero-extended, shift pre-masked).
    imm: u64,
}

/// A loaded program: pre-decoded code plus its helpers and maps.
#[derive(Clone)]
pub struct Program {
    code: Vec<Op>,
    helpers: HelperTable,
    maps: Vec<Arc<Map>>,
    slots: usize,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("slots", &self.slots)
            .field("maps", &self.maps)
            .finish()
    }
}

fn alu_code(width: Width, op: AluOp, is_reg: bool) -> Code {
    use Code::*;
    let pick = |i: Code, r: Code| if is_reg { r } else { i };
    match (width, op) {
        (Width::W64, AluOp::Add) => pick(Add64I, Add64R),
        (Width::W64, AluOp::Sub) => pick(Sub64I, Sub64R),
        (Width::W64, AluOp::Mul) => pick(Mul64I, Mul64R),
        (Width::W64, AluOp::Div) => pick(Div64I, Div64R),
        (Width::W64, AluOp::SDiv) => pick(SDiv64I, SDiv64R),
        (Width::W64, AluOp::Or) => pick(Or64I, Or64R),
        (Width::W64, AluOp::And) => pick(And64I, And64R),
        (Width::W64, AluOp::Lsh) => pick(Lsh64I, Lsh64R),
        (Width::W64, AluOp::Rsh) => pick(Rsh64I, Rsh64R),
        (Width::W64, AluOp::Mod) => pick(Mod64I, Mod64R),
        (Width::W64, AluOp::SMod) => pick(SMod64I, SMod64R),
        (Width::W64, AluOp::Xor) => pick(Xor64I, Xor64R),
        (Width::W64, AluOp::Mov) => pick(Mov64I, Mov64R),
        (Width::W64, AluOp::Arsh) => pick(Arsh64I, Arsh64R),
        (Width::W64, AluOp::MovSx(8)) => MovSx8To64,
        (Width::W64, AluOp::MovSx(16)) => MovSx16To64,
        (Width::W64, AluOp::MovSx(_)) => MovSx32To64,
        (Width::W32, AluOp::Add) => pick(Add32I, Add32R),
        (Width::W32, AluOp::Sub) => pick(Sub32I, Sub32R),
        (Width::W32, AluOp::Mul) => pick(Mul32I, Mul32R),
        (Width::W32, AluOp::Div) => pick(Div32I, Div32R),
        (Width::W32, AluOp::SDiv) => pick(SDiv32I, SDiv32R),
        (Width::W32, AluOp::Or) => pick(Or32I, Or32R),
        (Width::W32, AluOp::And) => pick(And32I, And32R),
        (Width::W32, AluOp::Lsh) => pick(Lsh32I, Lsh32R),
        (Width::W32, AluOp::Rsh) => pick(Rsh32I, Rsh32R),
        (Width::W32, AluOp::Mod) => pick(Mod32I, Mod32R),
        (Width::W32, AluOp::SMod) => pick(SMod32I, SMod32R),
        (Width::W32, AluOp::Xor) => pick(Xor32I, Xor32R),
        (Width::W32, AluOp::Mov) => pick(Mov32I, Mov32R),
        (Width::W32, AluOp::Arsh) => pick(Arsh32I, Arsh32R),
        (Width::W32, AluOp::MovSx(8)) => MovSx8To32,
        (Width::W32, AluOp::MovSx(_)) => MovSx16To32,
    }
}

fn jump_code(width: Width, cond: Cond, is_reg: bool) -> Code {
    use Code::*;
    let pick = |i: Code, r: Code| if is_reg { r } else { i };
    match (width, cond) {
        (Width::W64, Cond::Eq) => pick(JEq64I, JEq64R),
        (Width::W64, Cond::Gt) => pick(JGt64I, JGt64R),
        (Width::W64, Cond::Ge) => pick(JGe64I, JGe64R),
        (Width::W64, Cond::Set) => pick(JSet64I, JSet64R),
        (Width::W64, Cond::Ne) => pick(JNe64I, JNe64R),
        (Width::W64, Cond::SGt) => pick(JSGt64I, JSGt64R),
        (Width::W64, Cond::SGe) => pick(JSGe64I, JSGe64R),
        (Width::W64, Cond::Lt) => pick(JLt64I, JLt64R),
        (Width::W64, Cond::Le) => pick(JLe64I, JLe64R),
        (Width::W64, Cond::SLt) => pick(JSLt64I, JSLt64R),
        (Width::W64, Cond::SLe) => pick(JSLe64I, JSLe64R),
        (Width::W32, Cond::Eq) => pick(JEq32I, JEq32R),
        (Width::W32, Cond::Gt) => pick(JGt32I, JGt32R),
        (Width::W32, Cond::Ge) => pick(JGe32I, JGe32R),
        (Width::W32, Cond::Set) => pick(JSet32I, JSet32R),
        (Width::W32, Cond::Ne) => pick(JNe32I, JNe32R),
        (Width::W32, Cond::SGt) => pick(JSGt32I, JSGt32R),
        (Width::W32, Cond::SGe) => pick(JSGe32I, JSGe32R),
        (Width::W32, Cond::Lt) => pick(JLt32I, JLt32R),
        (Width::W32, Cond::Le) => pick(JLe32I, JLe32R),
        (Width::W32, Cond::SLt) => pick(JSLt32I, JSLt32R),
        (Width::W32, Cond::SLe) => pick(JSLe32I, JSLe32R),
    }
}

fn atomic_param(op: AtomicOp, fetch: bool, size: MemSize) -> i32 {
    let op = match op {
        AtomicOp::Add => 0,
        AtomicOp::Or => 1,
        AtomicOp::And => 2,
        AtomicOp::Xor => 3,
        AtomicOp::Xchg => 4,
        AtomicOp::CmpXchg => 5,
    };
    op | (fetch as i32) << 4 | ((size == MemSize::DW) as i32) << 5
}

fn atomic_op(param: i32) -> AtomicOp {
    match param & 0xf {
        0 => AtomicOp::Add,
        1 => AtomicOp::Or,
        2 => AtomicOp::And,
        3 => AtomicOp::Xor,
        4 => AtomicOp::Xchg,
        _ => AtomicOp::CmpXchg,
    }
}

impl Program {
    /// Checks and pre-decodes `slots`. `maps[i]` is the map that `lddw` pseudo loads with
    /// fd/index `i` refer to; calls are resolved against `helpers`.
    pub fn load(
        slots: &[RawInsn],
        helpers: &HelperTable,
        maps: &[Arc<Map>],
    ) -> Result<Program, LoadError> {
        if slots.is_empty() {
            return Err(LoadError::Empty);
        }
        if slots.len() > MAX_PROGRAM_SLOTS {
            return Err(LoadError::TooLong { slots: slots.len() });
        }
        if maps.len() > MAX_MAPS_PER_PROGRAM {
            return Err(LoadError::TooManyMaps(maps.len()));
        }
        let insns = decode_program(slots).map_err(LoadError::Decode)?;
        let len = insns.len();
        let target = |slot: usize, offset: i64| -> Result<i32, LoadError> {
            let t = slot as i64 + 1 + offset;
            if t < 0 || t >= len as i64 {
                return Err(LoadError::JumpOutOfRange { slot, target: t });
            }
            if insns[t as usize] == Insn::LoadImm64Tail {
                return Err(LoadError::JumpIntoLddw {
                    slot,
                    target: t as usize,
                });
            }
            Ok(t as i32)
        };
        let mut code = Vec::with_capacity(len + 1);
        for (slot, insn) in insns.iter().enumerate() {
            let op = |code: Code, dst: u8, src: u8, off: i32, imm: u64| Op {
                code,
                dst,
                src,
                off,
                imm,
            };
            let lowered = match *insn {
                Insn::Alu {
                    width,
                    op: alu,
                    dst,
                    src,
                } => {
                    let code = alu_code(width, alu, matches!(src, Operand::Reg(_)));
                    match src {
                        Operand::Reg(r) => op(code, dst.0, r.0, 0, 0),
                        Operand::Imm(i) => {
                            let mut imm = match width {
                                Width::W64 => i as i64 as u64,
                                Width::W32 => i as u32 as u64,
                            };
                            if matches!(alu, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) {
                                imm &= if width == Width::W64 { 63 } else { 31 };
                            }
                            op(code, dst.0, 0, 0, imm)
                        }
                    }
                }
                Insn::Neg { width, dst } => {
                    let code = if width == Width::W64 {
                        Code::Neg64
                    } else {
                        Code::Neg32
                    };
                    op(code, dst.0, 0, 0, 0)
                }
                Insn::End { order, bits, dst } => {
                    let code = match (order, bits) {
                        (ByteOrder::ToLittle, 16) => Code::Le16,
                        (ByteOrder::ToLittle, 32) => Code::Le32,
                        (ByteOrder::ToLittle, _) => Code::Le64,
                        (ByteOrder::ToBig, 16) => Code::Be16,
                        (ByteOrder::ToBig, 32) => Code::Be32,
                        (ByteOrder::ToBig, _) => Code::Be64,
                        (ByteOrder::Swap, 16) => Code::Swap16,
                        (ByteOrder::Swap, 32) => Code::Swap32,
                        (ByteOrder::Swap, _) => Code::Swap64,
                    };
                    op(code, dst.0, 0, 0, 0)
                }
                Insn::LoadImm64 { dst, src, imm } => {
                    let value = match src {
                        lddw_src::IMM64 => imm,
                        lddw_src::MAP_BY_FD | lddw_src::MAP_BY_INDEX => {
                            let index = imm & 0xffff_ffff;
                            if index as usize >= maps.len() {
                                return Err(LoadError::UnknownMap { slot, index });
                            }
                            MAP_HANDLE_TAG | index
                        }
                        lddw_src::MAP_VALUE_BY_FD | lddw_src::MAP_VALUE_BY_INDEX => {
                            let index = imm & 0xffff_ffff;
                            let offset = imm >> 32;
                            let map = maps
                                .get(index as usize)
                                .ok_or(LoadError::UnknownMap { slot, index })?;
                            let def = map.def();
                            if def.kind != MapKind::Array || offset >= def.value_size as u64 {
                                return Err(LoadError::BadMapValue {
                                    slot,
                                    index,
                                    offset,
                                });
                            }
                            let base = map.value_region().map(|r| r.start).unwrap_or(0);
                            base + offset
                        }
                        _ => {
                            return Err(LoadError::Unsupported {
                                slot,
                                what: "lddw of a variable or code address",
                            })
                        }
                    };
                    op(Code::LdDw, dst.0, 0, 0, value)
                }
                Insn::LoadImm64Tail => op(Code::LddwTail, 0, 0, 0, 0),
                Insn::Load {
                    size,
                    sign_extend,
                    dst,
                    base,
                    off,
                } => {
                    let code = match (size, sign_extend) {
                        (MemSize::B, false) => Code::LdxB,
                        (MemSize::H, false) => Code::LdxH,
                        (MemSize::W, false) => Code::LdxW,
                        (MemSize::DW, _) => Code::LdxDW,
                        (MemSize::B, true) => Code::LdxSB,
                        (MemSize::H, true) => Code::LdxSH,
                        (MemSize::W, true) => Code::LdxSW,
                    };
                    op(code, dst.0, base.0, off as i32, 0)
                }
                Insn::Store {
                    size,
                    base,
                    off,
                    src,
                } => match src {
                    Operand::Imm(i) => {
                        let code = match size {
                            MemSize::B => Code::StB,
                            MemSize::H => Code::StH,
                            MemSize::W => Code::StW,
                            MemSize::DW => Code::StDW,
                        };
                        op(code, base.0, 0, off as i32, i as i64 as u64)
                    }
                    Operand::Reg(r) => {
                        let code = match size {
                            MemSize::B => Code::StxB,
                            MemSize::H => Code::StxH,
                            MemSize::W => Code::StxW,
                            MemSize::DW => Code::StxDW,
                        };
                        op(code, base.0, r.0, off as i32, 0)
                    }
                },
                Insn::Atomic {
                    size,
                    op: aop,
                    fetch,
                    base,
                    off,
                    src,
                } => op(
                    Code::Atomic,
                    base.0,
                    src.0,
                    off as i32,
                    atomic_param(aop, fetch, size) as u64,
                ),
                Insn::LegacyPacketLoad {
                    size,
                    indirect,
                    imm,
                } => {
                    let (code, src) = match indirect {
                        Some(r) => (Code::LegacyInd, r.0),
                        None => (Code::LegacyAbs, 0),
                    };
                    op(code, 0, src, size.bytes() as i32, imm as i64 as u64)
                }
                Insn::Ja { offset } => op(Code::Ja, 0, 0, target(slot, offset as i64)?, 0),
                Insn::Jump {
                    width,
                    cond,
                    dst,
                    src,
                    offset,
                } => {
                    let t = target(slot, offset as i64)?;
                    let code = jump_code(width, cond, matches!(src, Operand::Reg(_)));
                    match src {
                        Operand::Reg(r) => op(code, dst.0, r.0, t, 0),
                        Operand::Imm(i) => {
                            let imm = match width {
                                Width::W64 => i as i64 as u64,
                                Width::W32 => i as u32 as u64,
                            };
                            op(code, dst.0, 0, t, imm)
                        }
                    }
                }
                Insn::Call(CallTarget::Helper(id)) => {
                    if helpers.get(id as u32 as u64).is_none() {
                        return Err(LoadError::UnknownHelper {
                            slot,
                            id: id as i64,
                        });
                    }
                    op(Code::Call, 0, 0, 0, id as u32 as u64)
                }
                Insn::Call(CallTarget::Local(offset)) => {
                    op(Code::CallLocal, 0, 0, target(slot, offset as i64)?, 0)
                }
                Insn::Call(CallTarget::Register(r)) => op(Code::CallX, r.0, 0, 0, 0),
                Insn::Call(CallTarget::HelperByBtfId(_)) => {
                    return Err(LoadError::Unsupported {
                        slot,
                        what: "call of a helper by BTF id",
                    })
                }
                Insn::Exit => op(Code::Exit, 0, 0, 0, 0),
            };
            code.push(lowered);
        }
        code.push(Op {
            code: Code::End,
            dst: 0,
            src: 0,
            off: 0,
            imm: 0,
        });
        Ok(Program {
            code,
            helpers: helpers.clone(),
            maps: maps.to_vec(),
            slots: len,
        })
    }

    /// Number of instruction slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The maps the program refers to (index = fd in `lddw`).
    pub fn maps(&self) -> &[Arc<Map>] {
        &self.maps
    }
}

/// Per-run settings.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Most instructions this run may execute.
    pub instruction_budget: u64,
    /// Whether the program may write its input/context memory.
    pub input_writable: bool,
    /// The core the run is on (per-CPU maps, `get_smp_processor_id`).
    pub cpu: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            instruction_budget: DEFAULT_INSTRUCTION_BUDGET,
            input_writable: true,
            cpu: 0,
        }
    }
}

/// What a run returns: r0 and the instructions it executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// r0 at `exit`.
    pub r0: u64,
    /// Instructions executed.
    pub instructions: u64,
}

struct Frame {
    return_pc: usize,
    saved: [u64; 4],
    frame_pointer: u64,
}

/// Execution state reused across runs: the stack and the region table.
pub struct Vm {
    stack: Vec<u64>,
    regions: Regions,
    frames: Vec<Frame>,
}

impl Default for Vm {
    fn default() -> Self {
        Vm::new()
    }
}

impl Vm {
    /// Allocates the stack ([`STACK_SIZE`] bytes) once.
    pub fn new() -> Vm {
        Vm {
            stack: alloc::vec![0u64; STACK_SIZE / 8],
            regions: Regions::default(),
            frames: Vec::with_capacity(MAX_CALL_DEPTH),
        }
    }

    /// Runs `program` with r1 = `input` (0 when empty), r2 = its length, r10 = top of the
    /// stack, every memory access bounds-checked. The stack is zeroed first so nothing of an
    /// earlier run is visible.
    pub fn run(
        &mut self,
        program: &Program,
        input: &mut [u8],
        options: &RunOptions,
        platform: &dyn Platform,
    ) -> Result<RunOutcome, RunError> {
        self.stack.iter_mut().for_each(|w| *w = 0);
        #[allow(unsafe_code)]
        // SAFETY: CHECKED = true: every memory access is tested against the regions.
        unsafe {
            self.execute::<true>(program, input, options, platform)
        }
    }

    /// Runs like [`Vm::run`] but without the per-access bounds checks (and without clearing
    /// the stack): the fast mode for programs the verifier accepted.
    ///
    /// # Safety
    /// The verifier must have proven, for this program and an input of this size, that every
    /// load, store and atomic stays inside the input, the stack frames, or map values, that
    /// no uninitialised stack is read, and that r10 is not modified. Helpers still check
    /// their pointer arguments.
    #[allow(unsafe_code)]
    pub unsafe fn run_unchecked(
        &mut self,
        program: &Program,
        input: &mut [u8],
        options: &RunOptions,
        platform: &dyn Platform,
    ) -> Result<RunOutcome, RunError> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.execute::<false>(program, input, options, platform) }
    }

    /// The interpreter loop.
    ///
    /// # Safety
    /// With `CHECKED = false` the caller guarantees the memory-safety facts listed on
    /// [`Vm::run_unchecked`]. With `CHECKED = true` it is always safe.
    #[allow(unsafe_code)]
    #[inline(never)]
    unsafe fn execute<const CHECKED: bool>(
        &mut self,
        program: &Program,
        input: &mut [u8],
        options: &RunOptions,
        platform: &dyn Platform,
    ) -> Result<RunOutcome, RunError> {
        let stack_bytes = STACK_SIZE as u64;
        let stack_base = self.stack.as_mut_ptr().expose_provenance() as u64;
        let input_region = Region::of_slice(input, options.input_writable);
        self.regions.clear();
        self.regions.push(Region {
            start: stack_base,
            len: stack_bytes,
            writable: true,
        });
        self.regions.push(input_region);
        for map in &program.maps {
            if let Some(region) = map.value_region() {
                self.regions.push(region);
            }
        }
        self.frames.clear();

        let code = &program.code[..];
        let mut reg = [0u64; 16];
        reg[1] = if input.is_empty() {
            0
        } else {
            input_region.start
        };
        reg[2] = input.len() as u64;
        reg[10] = stack_base + stack_bytes;
        let budget = options.instruction_budget;
        let mut remaining = budget;
        let mut pc = 0usize;

        macro_rules! fail {
            ($kind:expr) => {
                return Err(RunError {
                    pc: pc.wrapping_sub(1),
                    kind: $kind,
                })
            };
        }
        macro_rules! addr {
            ($op:expr, $base:expr) => {
                reg[($base & 15) as usize].wrapping_add($op.off as i64 as u64)
            };
        }
        // The two hot regions as plain locals: their values live in registers, and no store
        // of the program (through a pointer from an integer) can be assumed to change them,
        // which the compiler cannot know of the region table in `self`.
        let (input_start, input_len) = (input_region.start, input_region.len);
        let input_writable = options.input_writable;
        macro_rules! check {
            ($addr:expr, $size:expr, $write:expr) => {
                if CHECKED {
                    let (a, size, write): (u64, u64, bool) = ($addr, $size, $write);
                    let in_stack = {
                        let rel = a.wrapping_sub(stack_base);
                        rel < stack_bytes && stack_bytes - rel >= size
                    };
                    let in_input = || {
                        let rel = a.wrapping_sub(input_start);
                        rel < input_len && input_len - rel >= size && (input_writable || !write)
                    };
                    // Map values (and the refusals) go through the full table.
                    if !in_stack && !in_input() && !self.regions.allows(a, size, write) {
                        fail!(RunErrorKind::OutOfBounds {
                            addr: a,
                            size,
                            write
                        });
                    }
                }
            };
        }
        macro_rules! load {
            ($op:expr, $size:expr) => {{
                let a = addr!($op, $op.src);
                check!(a, $size, false);
                // SAFETY: checked above (CHECKED) or proven by the verifier (caller).
                unsafe { memory::load(a, $size) }
            }};
        }
        macro_rules! store {
            ($op:expr, $size:expr, $value:expr) => {{
                let a = addr!($op, $op.dst);
                check!(a, $size, true);
                // SAFETY: checked above (CHECKED) or proven by the verifier (caller).
                unsafe { memory::store(a, $size, $value) }
            }};
        }
        macro_rules! jump_if {
            ($op:expr, $cond:expr) => {
                if $cond {
                    pc = $op.off as usize;
                }
            };
        }

        loop {
            debug_assert!(pc < code.len());
            // SAFETY: `pc` is always a valid index: it starts at 0 (the program is not
            // empty), jumps and calls only go to targets `Program::load` checked to be inside
            // the program, `lddw` skips its tail slot which is never the last one, a return
            // goes to the slot after a call, and the `End` sentinel after the last slot stops
            // the loop before `pc` can pass it.
            let op = unsafe { *code.get_unchecked(pc) };
            pc += 1;
            if remaining == 0 {
                fail!(RunErrorKind::BudgetExhausted { budget });
            }
            remaining -= 1;
            let d = (op.dst & 15) as usize;
            let s = (op.src & 15) as usize;
            match op.code {
                Code::Add64I => reg[d] = reg[d].wrapping_add(op.imm),
                Code::Add64R => reg[d] = reg[d].wrapping_add(reg[s]),
                Code::Sub64I => reg[d] = reg[d].wrapping_sub(op.imm),
                Code::Sub64R => reg[d] = reg[d].wrapping_sub(reg[s]),
                Code::Mul64I => reg[d] = reg[d].wrapping_mul(op.imm),
                Code::Mul64R => reg[d] = reg[d].wrapping_mul(reg[s]),
                Code::Div64I => reg[d] = reg[d].checked_div(op.imm).unwrap_or(0),
                Code::Div64R => reg[d] = reg[d].checked_div(reg[s]).unwrap_or(0),
                Code::SDiv64I => reg[d] = sdiv64(reg[d], op.imm),
                Code::SDiv64R => reg[d] = sdiv64(reg[d], reg[s]),
                Code::Or64I => reg[d] |= op.imm,
                Code::Or64R => reg[d] |= reg[s],
                Code::And64I => reg[d] &= op.imm,
                Code::And64R => reg[d] &= reg[s],
                Code::Lsh64I => reg[d] <<= op.imm,
                Code::Lsh64R => reg[d] <<= reg[s] & 63,
                Code::Rsh64I => reg[d] >>= op.imm,
                Code::Rsh64R => reg[d] >>= reg[s] & 63,
                Code::Mod64I => reg[d] = reg[d].checked_rem(op.imm).unwrap_or(reg[d]),
                Code::Mod64R => reg[d] = reg[d].checked_rem(reg[s]).unwrap_or(reg[d]),
                Code::SMod64I => reg[d] = smod64(reg[d], op.imm),
                Code::SMod64R => reg[d] = smod64(reg[d], reg[s]),
                Code::Xor64I => reg[d] ^= op.imm,
                Code::Xor64R => reg[d] ^= reg[s],
                Code::Mov64I => reg[d] = op.imm,
                Code::Mov64R => reg[d] = reg[s],
                Code::Arsh64I => reg[d] = ((reg[d] as i64) >> op.imm) as u64,
                Code::Arsh64R => reg[d] = ((reg[d] as i64) >> (reg[s] & 63)) as u64,
                Code::Neg64 => reg[d] = reg[d].wrapping_neg(),
                Code::MovSx8To64 => reg[d] = reg[s] as i8 as i64 as u64,
                Code::MovSx16To64 => reg[d] = reg[s] as i16 as i64 as u64,
                Code::MovSx32To64 => reg[d] = reg[s] as i32 as i64 as u64,

                Code::Add32I => reg[d] = (reg[d] as u32).wrapping_add(op.imm as u32) as u64,
                Code::Add32R => reg[d] = (reg[d] as u32).wrapping_add(reg[s] as u32) as u64,
                Code::Sub32I => reg[d] = (reg[d] as u32).wrapping_sub(op.imm as u32) as u64,
                Code::Sub32R => reg[d] = (reg[d] as u32).wrapping_sub(reg[s] as u32) as u64,
                Code::Mul32I => reg[d] = (reg[d] as u32).wrapping_mul(op.imm as u32) as u64,
                Code::Mul32R => reg[d] = (reg[d] as u32).wrapping_mul(reg[s] as u32) as u64,
                Code::Div32I => {
                    reg[d] = (reg[d] as u32).checked_div(op.imm as u32).unwrap_or(0) as u64
                }
                Code::Div32R => {
                    reg[d] = (reg[d] as u32).checked_div(reg[s] as u32).unwrap_or(0) as u64
                }
                Code::SDiv32I => reg[d] = sdiv32(reg[d], op.imm),
                Code::SDiv32R => reg[d] = sdiv32(reg[d], reg[s]),
                Code::Or32I => reg[d] = (reg[d] as u32 | op.imm as u32) as u64,
                Code::Or32R => reg[d] = (reg[d] as u32 | reg[s] as u32) as u64,
                Code::And32I => reg[d] = (reg[d] as u32 & op.imm as u32) as u64,
                Code::And32R => reg[d] = (reg[d] as u32 & reg[s] as u32) as u64,
                Code::Lsh32I => reg[d] = ((reg[d] as u32) << op.imm) as u64,
                Code::Lsh32R => reg[d] = ((reg[d] as u32) << (reg[s] & 31)) as u64,
                Code::Rsh32I => reg[d] = ((reg[d] as u32) >> op.imm) as u64,
                Code::Rsh32R => reg[d] = ((reg[d] as u32) >> (reg[s] & 31)) as u64,
                Code::Mod32I => {
                    let a = reg[d] as u32;
                    reg[d] = a.checked_rem(op.imm as u32).unwrap_or(a) as u64
                }
                Code::Mod32R => {
                    let a = reg[d] as u32;
                    reg[d] = a.checked_rem(reg[s] as u32).unwrap_or(a) as u64
                }
                Code::SMod32I => reg[d] = smod32(reg[d], op.imm),
                Code::SMod32R => reg[d] = smod32(reg[d], reg[s]),
                Code::Xor32I => reg[d] = (reg[d] as u32 ^ op.imm as u32) as u64,
                Code::Xor32R => reg[d] = (reg[d] as u32 ^ reg[s] as u32) as u64,
                Code::Mov32I => reg[d] = op.imm as u32 as u64,
                Code::Mov32R => reg[d] = reg[s] as u32 as u64,
                Code::Arsh32I => reg[d] = ((reg[d] as i32) >> op.imm) as u32 as u64,
                Code::Arsh32R => reg[d] = ((reg[d] as i32) >> (reg[s] & 31)) as u32 as u64,
                Code::Neg32 => reg[d] = (reg[d] as u32).wrapping_neg() as u64,
                Code::MovSx8To32 => reg[d] = reg[s] as i8 as i32 as u32 as u64,
                Code::MovSx16To32 => reg[d] = reg[s] as i16 as i32 as u32 as u64,

                Code::Le16 => reg[d] = (reg[d] as u16).to_le() as u64,
                Code::Le32 => reg[d] = (reg[d] as u32).to_le() as u64,
                Code::Le64 => reg[d] = reg[d].to_le(),
                Code::Be16 => reg[d] = (reg[d] as u16).to_be() as u64,
                Code::Be32 => reg[d] = (reg[d] as u32).to_be() as u64,
                Code::Be64 => reg[d] = reg[d].to_be(),
                Code::Swap16 => reg[d] = (reg[d] as u16).swap_bytes() as u64,
                Code::Swap32 => reg[d] = (reg[d] as u32).swap_bytes() as u64,
                Code::Swap64 => reg[d] = reg[d].swap_bytes(),

                Code::LdDw => {
                    reg[d] = op.imm;
                    pc += 1;
                }

                Code::LdxB => reg[d] = load!(op, 1),
                Code::LdxH => reg[d] = load!(op, 2),
                Code::LdxW => reg[d] = load!(op, 4),
                Code::LdxDW => reg[d] = load!(op, 8),
                Code::LdxSB => reg[d] = load!(op, 1) as u8 as i8 as i64 as u64,
                Code::LdxSH => reg[d] = load!(op, 2) as u16 as i16 as i64 as u64,
                Code::LdxSW => reg[d] = load!(op, 4) as u32 as i32 as i64 as u64,
                Code::StB => store!(op, 1, op.imm),
                Code::StH => store!(op, 2, op.imm),
                Code::StW => store!(op, 4, op.imm),
                Code::StDW => store!(op, 8, op.imm),
                Code::StxB => store!(op, 1, reg[s]),
                Code::StxH => store!(op, 2, reg[s]),
                Code::StxW => store!(op, 4, reg[s]),
                Code::StxDW => store!(op, 8, reg[s]),

                Code::Atomic => {
                    let param = op.imm as i32;
                    let size = if param & 0x20 != 0 { 8 } else { 4 };
                    let a = addr!(op, op.dst);
                    check!(a, size as u64, true);
                    if a % size as u64 != 0 {
                        fail!(RunErrorKind::MisalignedAtomic { addr: a });
                    }
                    let aop = atomic_op(param);
                    // SAFETY: in a writable region (checked, or proven by the verifier) and
                    // naturally aligned (checked just above).
                    let old = unsafe { memory::atomic(a, size, aop, reg[s], reg[0]) };
                    match aop {
                        AtomicOp::CmpXchg => reg[0] = old,
                        _ if param & 0x10 != 0 => reg[s] = old,
                        _ => {}
                    }
                }

                Code::LegacyAbs | Code::LegacyInd => {
                    // Linux semantics: big-endian load from the packet (the input); out of
                    // bounds ends the program with r0 = 0.
                    let size = op.off as u64;
                    let base = if op.code == Code::LegacyInd {
                        reg[s]
                    } else {
                        0
                    };
                    let offset = base.wrapping_add(op.imm);
                    if offset >= input.len() as u64 || input.len() as u64 - offset < size {
                        return Ok(RunOutcome {
                            r0: 0,
                            instructions: budget - remaining,
                        });
                    }
                    let o = offset as usize;
                    reg[0] = input[o..o + size as usize]
                        .iter()
                        .fold(0u64, |acc, &b| acc << 8 | b as u64);
                }

                Code::Ja => pc = op.off as usize,
                Code::JEq64I => jump_if!(op, reg[d] == op.imm),
                Code::JEq64R => jump_if!(op, reg[d] == reg[s]),
                Code::JGt64I => jump_if!(op, reg[d] > op.imm),
                Code::JGt64R => jump_if!(op, reg[d] > reg[s]),
                Code::JGe64I => jump_if!(op, reg[d] >= op.imm),
                Code::JGe64R => jump_if!(op, reg[d] >= reg[s]),
                Code::JSet64I => jump_if!(op, reg[d] & op.imm != 0),
                Code::JSet64R => jump_if!(op, reg[d] & reg[s] != 0),
                Code::JNe64I => jump_if!(op, reg[d] != op.imm),
                Code::JNe64R => jump_if!(op, reg[d] != reg[s]),
                Code::JSGt64I => jump_if!(op, (reg[d] as i64) > op.imm as i64),
                Code::JSGt64R => jump_if!(op, (reg[d] as i64) > reg[s] as i64),
                Code::JSGe64I => jump_if!(op, (reg[d] as i64) >= op.imm as i64),
                Code::JSGe64R => jump_if!(op, (reg[d] as i64) >= reg[s] as i64),
                Code::JLt64I => jump_if!(op, reg[d] < op.imm),
                Code::JLt64R => jump_if!(op, reg[d] < reg[s]),
                Code::JLe64I => jump_if!(op, reg[d] <= op.imm),
                Code::JLe64R => jump_if!(op, reg[d] <= reg[s]),
                Code::JSLt64I => jump_if!(op, (reg[d] as i64) < op.imm as i64),
                Code::JSLt64R => jump_if!(op, (reg[d] as i64) < reg[s] as i64),
                Code::JSLe64I => jump_if!(op, (reg[d] as i64) <= op.imm as i64),
                Code::JSLe64R => jump_if!(op, (reg[d] as i64) <= reg[s] as i64),
                Code::JEq32I => jump_if!(op, reg[d] as u32 == op.imm as u32),
                Code::JEq32R => jump_if!(op, reg[d] as u32 == reg[s] as u32),
                Code::JGt32I => jump_if!(op, reg[d] as u32 > op.imm as u32),
                Code::JGt32R => jump_if!(op, reg[d] as u32 > reg[s] as u32),
                Code::JGe32I => jump_if!(op, reg[d] as u32 >= op.imm as u32),
                Code::JGe32R => jump_if!(op, reg[d] as u32 >= reg[s] as u32),
                Code::JSet32I => jump_if!(op, reg[d] as u32 & op.imm as u32 != 0),
                Code::JSet32R => jump_if!(op, reg[d] as u32 & reg[s] as u32 != 0),
                Code::JNe32I => jump_if!(op, reg[d] as u32 != op.imm as u32),
                Code::JNe32R => jump_if!(op, reg[d] as u32 != reg[s] as u32),
                Code::JSGt32I => jump_if!(op, (reg[d] as i32) > op.imm as i32),
                Code::JSGt32R => jump_if!(op, (reg[d] as i32) > reg[s] as i32),
                Code::JSGe32I => jump_if!(op, (reg[d] as i32) >= op.imm as i32),
                Code::JSGe32R => jump_if!(op, (reg[d] as i32) >= reg[s] as i32),
                Code::JLt32I => jump_if!(op, (reg[d] as u32) < op.imm as u32),
                Code::JLt32R => jump_if!(op, (reg[d] as u32) < reg[s] as u32),
                Code::JLe32I => jump_if!(op, reg[d] as u32 <= op.imm as u32),
                Code::JLe32R => jump_if!(op, reg[d] as u32 <= reg[s] as u32),
                Code::JSLt32I => jump_if!(op, (reg[d] as i32) < op.imm as i32),
                Code::JSLt32R => jump_if!(op, (reg[d] as i32) < reg[s] as i32),
                Code::JSLe32I => jump_if!(op, (reg[d] as i32) <= op.imm as i32),
                Code::JSLe32R => jump_if!(op, (reg[d] as i32) <= reg[s] as i32),

                Code::Call | Code::CallX => {
                    let id = if op.code == Code::Call {
                        op.imm
                    } else {
                        reg[d]
                    };
                    let Some(helper) = program.helpers.get(id) else {
                        fail!(RunErrorKind::UnknownHelper { id });
                    };
                    let mut ctx = HelperContext {
                        regions: &self.regions,
                        maps: &program.maps,
                        platform,
                        cpu: options.cpu,
                    };
                    match helper(&mut ctx, [reg[1], reg[2], reg[3], reg[4], reg[5]]) {
                        Ok(r0) => reg[0] = r0,
                        Err(HelperError::Stop { r0 }) => {
                            return Ok(RunOutcome {
                                r0,
                                instructions: budget - remaining,
                            })
                        }
                        Err(e) => fail!(RunErrorKind::Helper(e)),
                    }
                }
                Code::CallLocal => {
                    if self.frames.len() + 1 >= MAX_CALL_DEPTH {
                        fail!(RunErrorKind::CallDepthExceeded);
                    }
                    self.frames.push(Frame {
                        return_pc: pc,
                        saved: [reg[6], reg[7], reg[8], reg[9]],
                        frame_pointer: reg[10],
                    });
                    reg[10] =
                        stack_base + stack_bytes - (self.frames.len() * STACK_FRAME_SIZE) as u64;
                    pc = op.off as usize;
                }
                Code::Exit => match self.frames.pop() {
                    None => {
                        return Ok(RunOutcome {
                            r0: reg[0],
                            instructions: budget - remaining,
                        })
                    }
                    Some(frame) => {
                        reg[6..10].copy_from_slice(&frame.saved);
                        reg[10] = frame.frame_pointer;
                        pc = frame.return_pc;
                    }
                },
                Code::LddwTail | Code::End => fail!(RunErrorKind::FellOffEnd),
            }
        }
    }
}

#[inline(always)]
fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

#[inline(always)]
fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

#[inline(always)]
fn sdiv32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        0
    } else {
        a.wrapping_div(b) as u32 as u64
    }
}

#[inline(always)]
fn smod32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        a as u32 as u64
    } else {
        a.wrapping_rem(b) as u32 as u64
    }
}

/// Assembles, loads with `helpers` and no maps, and runs `text` on `input` (checked mode):
/// the one-call convenience for tests, the CLI and examples.
pub fn run_asm(
    text: &str,
    input: &mut [u8],
    helpers: &HelperTable,
) -> Result<u64, alloc::string::String> {
    use alloc::string::ToString;
    let slots = crate::asm::assemble(text).map_err(|e| e.to_string())?;
    let program = Program::load(&slots, helpers, &[]).map_err(|e| e.to_string())?;
    let platform = crate::runtime::HostPlatform::default();
    Vm::new()
        .run(&program, input, &RunOptions::default(), &platform)
        .map(|o| o.r0)
        .map_err(|e| e.to_string())
}
