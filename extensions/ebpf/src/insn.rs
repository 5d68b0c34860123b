//! eBPF instruction encoding and decoding (RFC 9669 sections 3 to 5).
//!
//! Every other part of the eBPF stack (assembler, disassembler, interpreter, verifier, ELF
//! loader, JIT) speaks in terms of this module, so the encoding rules live here once:
//!
//! - [`RawInsn`] is one 8-byte slot exactly as it sits in memory (opcode, dst, src, offset,
//!   immediate). A program is a slice of slots; `lddw` occupies two.
//! - [`Insn`] is the decoded, checked meaning of one instruction. Decoding rejects every
//!   encoding RFC 9669 leaves undefined (unknown opcodes, registers above r10, reserved fields
//!   that are not zero, a truncated `lddw`), so later stages can match exhaustively and never
//!   have to guess.
//! - Jump and call offsets stay in *slots*, relative to the next slot, as on the wire:
//!   the target of a jump at slot `pc` is `pc + 1 + offset`. Range checks (in bounds, not into
//!   the second half of an `lddw`) belong to the verifier, which sees the whole program.
//!
//! One non-RFC encoding is accepted because the bpf_conformance suite and LLVM use it:
//! `callx` (opcode 0x8d) with the register in the **dst** field.

use core::fmt;

/// Size of one instruction slot in bytes.
pub const SLOT_SIZE: usize = 8;

/// Number of general registers: r0..r9 plus the read-only frame pointer r10.
pub const REGISTER_COUNT: u8 = 11;

/// The frame pointer register (read-only).
pub const FRAME_POINTER: Reg = Reg(10);

/// Instruction classes: the low three bits of the opcode.
pub mod class {
    pub const LD: u8 = 0x00;
    pub const LDX: u8 = 0x01;
    pub const ST: u8 = 0x02;
    pub const STX: u8 = 0x03;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const JMP32: u8 = 0x06;
    pub const ALU64: u8 = 0x07;
}

/// Source bit of ALU and JMP opcodes: immediate (K) or register (X).
pub mod source {
    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;
}

/// Operation field (high four bits) of ALU and ALU64 opcodes.
pub mod alu {
    pub const ADD: u8 = 0x00;
    pub const SUB: u8 = 0x10;
    pub const MUL: u8 = 0x20;
    pub const DIV: u8 = 0x30;
    pub const OR: u8 = 0x40;
    pub const AND: u8 = 0x50;
    pub const LSH: u8 = 0x60;
    pub const RSH: u8 = 0x70;
    pub const NEG: u8 = 0x80;
    pub const MOD: u8 = 0x90;
    pub const XOR: u8 = 0xa0;
    pub const MOV: u8 = 0xb0;
    pub const ARSH: u8 = 0xc0;
    pub const END: u8 = 0xd0;
}

/// Operation field (high four bits) of JMP and JMP32 opcodes.
pub mod jmp {
    pub const JA: u8 = 0x00;
    pub const JEQ: u8 = 0x10;
    pub const JGT: u8 = 0x20;
    pub const JGE: u8 = 0x30;
    pub const JSET: u8 = 0x40;
    pub const JNE: u8 = 0x50;
    pub const JSGT: u8 = 0x60;
    pub const JSGE: u8 = 0x70;
    pub const CALL: u8 = 0x80;
    pub const EXIT: u8 = 0x90;
    pub const JLT: u8 = 0xa0;
    pub const JLE: u8 = 0xb0;
    pub const JSLT: u8 = 0xc0;
    pub const JSLE: u8 = 0xd0;
}

/// Size field of load and store opcodes.
pub mod size {
    pub const W: u8 = 0x00;
    pub const H: u8 = 0x08;
    pub const B: u8 = 0x10;
    pub const DW: u8 = 0x18;
}

/// Mode field of load and store opcodes.
pub mod mode {
    pub const IMM: u8 = 0x00;
    pub const ABS: u8 = 0x20;
    pub const IND: u8 = 0x40;
    pub const MEM: u8 = 0x60;
    pub const MEMSX: u8 = 0x80;
    pub const ATOMIC: u8 = 0xc0;
}

/// Immediate values of atomic operations (RFC 9669 section 5.3).
pub mod atomic {
    pub const ADD: i32 = 0x00;
    pub const OR: i32 = 0x40;
    pub const AND: i32 = 0x50;
    pub const XOR: i32 = 0xa0;
    pub const FETCH: i32 = 0x01;
    pub const XCHG: i32 = 0xe0 | FETCH;
    pub const CMPXCHG: i32 = 0xf0 | FETCH;
}

/// `src` values of `lddw` (RFC 9669 section 5.4).
pub mod lddw_src {
    pub const IMM64: u8 = 0;
    pub const MAP_BY_FD: u8 = 1;
    pub const MAP_VALUE_BY_FD: u8 = 2;
    pub const VARIABLE_ADDRESS: u8 = 3;
    pub const CODE_ADDRESS: u8 = 4;
    pub const MAP_BY_INDEX: u8 = 5;
    pub const MAP_VALUE_BY_INDEX: u8 = 6;
}

/// `src` values of `call`.
pub mod call_src {
    pub const HELPER: u8 = 0;
    pub const LOCAL: u8 = 1;
    pub const HELPER_BY_BTF_ID: u8 = 2;
}

/// One 8-byte instruction slot as stored (little-endian fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawInsn {
    pub opcode: u8,
    /// Destination register (low nibble of byte 1).
    pub dst: u8,
    /// Source register (high nibble of byte 1).
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl RawInsn {
    /// Builds a slot from its fields.
    pub const fn new(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        RawInsn {
            opcode,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Reads one slot from its 8 bytes.
    pub fn from_bytes(bytes: [u8; SLOT_SIZE]) -> Self {
        RawInsn {
            opcode: bytes[0],
            dst: bytes[1] & 0x0f,
            src: bytes[1] >> 4,
            off: i16::from_le_bytes([bytes[2], bytes[3]]),
            imm: i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }

    /// Writes the slot as 8 bytes.
    pub fn to_bytes(self) -> [u8; SLOT_SIZE] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.opcode,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// The instruction class (low three bits of the opcode).
    pub fn class(self) -> u8 {
        self.opcode & 0x07
    }
}

/// Splits a byte buffer into instruction slots.
pub fn slots_from_bytes(bytes: &[u8]) -> Result<alloc::vec::Vec<RawInsn>, DecodeError> {
    if bytes.len() % SLOT_SIZE != 0 {
        return Err(DecodeError {
            slot: bytes.len() / SLOT_SIZE,
            kind: DecodeErrorKind::TrailingBytes { len: bytes.len() },
        });
    }
    Ok(bytes
        .chunks_exact(SLOT_SIZE)
        .map(|chunk| {
            let mut slot = [0u8; SLOT_SIZE];
            slot.copy_from_slice(chunk);
            RawInsn::from_bytes(slot)
        })
        .collect())
}

/// Writes slots back to bytes.
pub fn slots_to_bytes(slots: &[RawInsn]) -> alloc::vec::Vec<u8> {
    slots.iter().flat_map(|slot| slot.to_bytes()).collect()
}

/// A register r0..r10 (checked at decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reg(pub u8);

impl Reg {
    /// Index into a register file.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Operand width of ALU and conditional jump instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 32-bit: ALU / JMP32 class; ALU results are zero-extended to 64 bits.
    W32,
    /// 64-bit: ALU64 / JMP class.
    W64,
}

/// Second operand of ALU, jump and store instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Reg(Reg),
    /// The 32-bit immediate as encoded; each instruction says how it is extended
    /// (sign-extended to 64 bits for ALU64 and 64-bit jumps, RFC 9669 section 2.2).
    Imm(i32),
}

/// ALU operations, with the signed and sign-extending variants the offset field selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    /// Unsigned division (offset 0); division by zero gives 0.
    Div,
    /// Signed division (offset 1); division by zero gives 0.
    SDiv,
    Or,
    And,
    Lsh,
    Rsh,
    /// Unsigned modulo (offset 0); modulo by zero leaves dst unchanged (32-bit: truncated).
    Mod,
    /// Signed modulo (offset 1); modulo by zero leaves dst unchanged (32-bit: truncated).
    SMod,
    Xor,
    Mov,
    /// MOVSX: move with sign extension from the low 8, 16 or 32 bits of the source register.
    MovSx(u8),
    Arsh,
}

/// Byte-order operations (END class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `le16/32/64`: convert to little-endian (on a little-endian host: truncate/zero-extend).
    ToLittle,
    /// `be16/32/64`: convert to big-endian.
    ToBig,
    /// `bswap16/32/64` (ALU64 class): unconditional swap.
    Swap,
}

/// Conditions of conditional jumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    Eq,
    Gt,
    Ge,
    Set,
    Ne,
    SGt,
    SGe,
    Lt,
    Le,
    SLt,
    SLe,
}

/// Memory access sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemSize {
    B,
    H,
    W,
    DW,
}

impl MemSize {
    /// Width in bytes.
    pub fn bytes(self) -> usize {
        match self {
            MemSize::B => 1,
            MemSize::H => 2,
            MemSize::W => 4,
            MemSize::DW => 8,
        }
    }

    fn from_opcode(opcode: u8) -> MemSize {
        match opcode & 0x18 {
            size::W => MemSize::W,
            size::H => MemSize::H,
            size::B => MemSize::B,
            _ => MemSize::DW,
        }
    }
}

/// Atomic read-modify-write operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    Add,
    Or,
    And,
    Xor,
    /// Exchange (always fetches).
    Xchg,
    /// Compare with r0 and exchange (always fetches into r0).
    CmpXchg,
}

/// What a call instruction calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallTarget {
    /// A helper function by id (src 0).
    Helper(i32),
    /// A BPF-to-BPF call (src 1): the callee starts at `pc + 1 + offset` (slots).
    Local(i32),
    /// A helper by BTF id (src 2); decoded so it can be named in errors, never executed here.
    HelperByBtfId(i32),
    /// `callx`: non-RFC opcode 0x8d, the helper id is in the given register.
    Register(Reg),
}

/// The meaning of one decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Insn {
    /// `dst = dst op src` (ALU or ALU64 class, END excluded).
    Alu {
        width: Width,
        op: AluOp,
        dst: Reg,
        src: Operand,
    },
    /// `dst = -dst`.
    Neg {
        width: Width,
        dst: Reg,
    },
    /// Byte-order conversion of the low `bits` (16, 32 or 64) of dst.
    End {
        order: ByteOrder,
        bits: u8,
        dst: Reg,
    },
    /// `lddw`: a 64-bit immediate (two slots). `src` is the pseudo kind of [`lddw_src`]:
    /// with `IMM64` the value is `imm`, otherwise `imm` carries the map fd / index (low half)
    /// and, for map values, the offset (high half) for the loader to resolve.
    LoadImm64 {
        dst: Reg,
        src: u8,
        imm: u64,
    },
    /// The second slot of an `lddw` (never executed; a jump here is an error).
    LoadImm64Tail,
    /// `dst = *(size *)(base + off)`, optionally sign-extending (MEMSX).
    Load {
        size: MemSize,
        sign_extend: bool,
        dst: Reg,
        base: Reg,
        off: i16,
    },
    /// `*(size *)(base + off) = src` (ST with an immediate, STX with a register).
    Store {
        size: MemSize,
        base: Reg,
        off: i16,
        src: Operand,
    },
    /// Atomic read-modify-write of a 32- or 64-bit word at `base + off`.
    Atomic {
        size: MemSize,
        op: AtomicOp,
        fetch: bool,
        base: Reg,
        off: i16,
        src: Reg,
    },
    /// Legacy packet loads (LD ABS / LD IND): `r0 = ntoh(*(packet + [src +] imm))`.
    LegacyPacketLoad {
        size: MemSize,
        indirect: Option<Reg>,
        imm: i32,
    },
    /// Unconditional jump by `offset` slots (the 16-bit `off` of JA, or the 32-bit `imm` of
    /// JMP32 JA).
    Ja {
        offset: i32,
    },
    /// Conditional jump by `offset` slots when `dst cond src` holds.
    Jump {
        width: Width,
        cond: Cond,
        dst: Reg,
        src: Operand,
        offset: i16,
    },
    Call(CallTarget),
    Exit,
}

/// Why a slot could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The byte length is not a multiple of 8.
    TrailingBytes { len: usize },
    /// No instruction has this opcode.
    UnknownOpcode(u8),
    /// A register field above r10.
    BadRegister { field: &'static str, value: u8 },
    /// A field the encoding leaves unused is not zero.
    NonZeroReserved { field: &'static str, value: i64 },
    /// The offset field holds a value this opcode does not define (e.g. sdiv offset 2).
    BadOffset(i16),
    /// The immediate holds a value this opcode does not define (e.g. an atomic op, END width).
    BadImmediate(i32),
    /// `lddw` in the last slot, or its second slot is not a valid continuation.
    IncompleteLddw,
    /// An unknown `src` kind in `lddw` or `call`.
    BadSourceKind(u8),
}

/// A decoding failure at a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub slot: usize,
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeErrorKind::TrailingBytes { len } => {
                write!(f, "program length {len} is not a multiple of 8 bytes")
            }
            DecodeErrorKind::UnknownOpcode(op) => write!(f, "unknown opcode 0x{op:02x}"),
            DecodeErrorKind::BadRegister { field, value } => {
                write!(
                    f,
                    "invalid {field} register r{value} (registers are r0..r10)"
                )
            }
            DecodeErrorKind::NonZeroReserved { field, value } => {
                write!(f, "unused field {field} must be 0 but is {value}")
            }
            DecodeErrorKind::BadOffset(off) => write!(f, "invalid offset {off} for this opcode"),
            DecodeErrorKind::BadImmediate(imm) => {
                write!(f, "invalid immediate {imm:#x} for this opcode")
            }
            DecodeErrorKind::IncompleteLddw => {
                write!(
                    f,
                    "lddw needs a second slot with opcode 0 and zero registers/offset"
                )
            }
            DecodeErrorKind::BadSourceKind(src) => write!(f, "invalid src kind {src}"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "insn {}: {}", self.slot, self.kind)
    }
}

fn reg(field: &'static str, value: u8, slot: usize) -> Result<Reg, DecodeError> {
    if value < REGISTER_COUNT {
        Ok(Reg(value))
    } else {
        Err(DecodeError {
            slot,
            kind: DecodeErrorKind::BadRegister { field, value },
        })
    }
}

fn reserved(field: &'static str, value: i64, slot: usize) -> Result<(), DecodeError> {
    if value == 0 {
        Ok(())
    } else {
        Err(DecodeError {
            slot,
            kind: DecodeErrorKind::NonZeroReserved { field, value },
        })
    }
}

/// Decodes the instruction at `slot` of `slots`. For `lddw` this reads the next slot too;
/// a slot that is the tail of the preceding `lddw` must be decoded by [`decode_program`],
/// which knows the context (decoding it alone reports it as opcode 0x00, unknown).
pub fn decode_at(slots: &[RawInsn], slot: usize) -> Result<Insn, DecodeError> {
    let err = |kind| DecodeError { slot, kind };
    let raw = *slots
        .get(slot)
        .ok_or(err(DecodeErrorKind::IncompleteLddw))?;
    let op = raw.opcode;
    match raw.class() {
        class::ALU | class::ALU64 => {
            let width = if raw.class() == class::ALU64 {
                Width::W64
            } else {
                Width::W32
            };
            let dst = reg("destination", raw.dst, slot)?;
            let is_reg = op & source::X != 0;
            let operand = |raw: RawInsn| -> Result<Operand, DecodeError> {
                if is_reg {
                    reserved("imm", raw.imm as i64, slot)?;
                    Ok(Operand::Reg(reg("source", raw.src, slot)?))
                } else {
                    reserved("src", raw.src as i64, slot)?;
                    Ok(Operand::Imm(raw.imm))
                }
            };
            let alu_op = match op & 0xf0 {
                alu::NEG => {
                    if is_reg {
                        return Err(err(DecodeErrorKind::UnknownOpcode(op)));
                    }
                    reserved("src", raw.src as i64, slot)?;
                    reserved("offset", raw.off as i64, slot)?;
                    reserved("imm", raw.imm as i64, slot)?;
                    return Ok(Insn::Neg { width, dst });
                }
                alu::END => {
                    reserved("src", raw.src as i64, slot)?;
                    reserved("offset", raw.off as i64, slot)?;
                    let order = match (width, is_reg) {
                        (Width::W32, false) => ByteOrder::ToLittle,
                        (Width::W32, true) => ByteOrder::ToBig,
                        (Width::W64, false) => ByteOrder::Swap,
                        (Width::W64, true) => return Err(err(DecodeErrorKind::UnknownOpcode(op))),
                    };
                    let bits = match raw.imm {
                        16 | 32 | 64 => raw.imm as u8,
                        other => return Err(err(DecodeErrorKind::BadImmediate(other))),
                    };
                    return Ok(Insn::End { order, bits, dst });
                }
                alu::ADD => AluOp::Add,
                alu::SUB => AluOp::Sub,
                alu::MUL => AluOp::Mul,
                alu::DIV => match raw.off {
                    0 => AluOp::Div,
                    1 => AluOp::SDiv,
                    off => return Err(err(DecodeErrorKind::BadOffset(off))),
                },
                alu::MOD => match raw.off {
                    0 => AluOp::Mod,
                    1 => AluOp::SMod,
                    off => return Err(err(DecodeErrorKind::BadOffset(off))),
                },
                alu::OR => AluOp::Or,
                alu::AND => AluOp::And,
                alu::LSH => AluOp::Lsh,
                alu::RSH => AluOp::Rsh,
                alu::XOR => AluOp::Xor,
                alu::ARSH => AluOp::Arsh,
                alu::MOV => match (raw.off, is_reg, width) {
                    (0, _, _) => AluOp::Mov,
                    (8 | 16, true, _) | (32, true, Width::W64) => AluOp::MovSx(raw.off as u8),
                    (off, _, _) => return Err(err(DecodeErrorKind::BadOffset(off))),
                },
                _ => return Err(err(DecodeErrorKind::UnknownOpcode(op))),
            };
            if !matches!(alu_op, AluOp::SDiv | AluOp::SMod | AluOp::MovSx(_)) {
                reserved("offset", raw.off as i64, slot)?;
            }
            Ok(Insn::Alu {
                width,
                op: alu_op,
                dst,
                src: operand(raw)?,
            })
        }
        class::JMP | class::JMP32 => {
            let width = if raw.class() == class::JMP {
                Width::W64
            } else {
                Width::W32
            };
            let is_reg = op & source::X != 0;
            let cond = match op & 0xf0 {
                jmp::JA => {
                    if is_reg {
                        return Err(err(DecodeErrorKind::UnknownOpcode(op)));
                    }
                    reserved("dst", raw.dst as i64, slot)?;
                    reserved("src", raw.src as i64, slot)?;
                    return match width {
                        Width::W64 => {
                            reserved("imm", raw.imm as i64, slot)?;
                            Ok(Insn::Ja {
                                offset: raw.off as i32,
                            })
                        }
                        Width::W32 => {
                            reserved("offset", raw.off as i64, slot)?;
                            Ok(Insn::Ja { offset: raw.imm })
                        }
                    };
                }
                jmp::CALL => {
                    if width == Width::W32 {
                        return Err(err(DecodeErrorKind::UnknownOpcode(op)));
                    }
                    reserved("offset", raw.off as i64, slot)?;
                    if is_reg {
                        // callx (0x8d): register in dst, per LLVM and bpf_conformance.
                        reserved("src", raw.src as i64, slot)?;
                        reserved("imm", raw.imm as i64, slot)?;
                        return Ok(Insn::Call(CallTarget::Register(reg(
                            "destination",
                            raw.dst,
                            slot,
                        )?)));
                    }
                    reserved("dst", raw.dst as i64, slot)?;
                    return match raw.src {
                        call_src::HELPER => Ok(Insn::Call(CallTarget::Helper(raw.imm))),
                        call_src::LOCAL => Ok(Insn::Call(CallTarget::Local(raw.imm))),
                        call_src::HELPER_BY_BTF_ID => {
                            Ok(Insn::Call(CallTarget::HelperByBtfId(raw.imm)))
                        }
                        other => Err(err(DecodeErrorKind::BadSourceKind(other))),
                    };
                }
                jmp::EXIT => {
                    if width == Width::W32 || is_reg {
                        return Err(err(DecodeErrorKind::UnknownOpcode(op)));
                    }
                    reserved("dst", raw.dst as i64, slot)?;
                    reserved("src", raw.src as i64, slot)?;
                    reserved("offset", raw.off as i64, slot)?;
                    reserved("imm", raw.imm as i64, slot)?;
                    return Ok(Insn::Exit);
                }
                jmp::JEQ => Cond::Eq,
                jmp::JGT => Cond::Gt,
                jmp::JGE => Cond::Ge,
                jmp::JSET => Cond::Set,
                jmp::JNE => Cond::Ne,
                jmp::JSGT => Cond::SGt,
                jmp::JSGE => Cond::SGe,
                jmp::JLT => Cond::Lt,
                jmp::JLE => Cond::Le,
                jmp::JSLT => Cond::SLt,
                jmp::JSLE => Cond::SLe,
                _ => return Err(err(DecodeErrorKind::UnknownOpcode(op))),
            };
            let dst = reg("destination", raw.dst, slot)?;
            let src = if is_reg {
                reserved("imm", raw.imm as i64, slot)?;
                Operand::Reg(reg("source", raw.src, slot)?)
            } else {
                reserved("src", raw.src as i64, slot)?;
                Operand::Imm(raw.imm)
            };
            Ok(Insn::Jump {
                width,
                cond,
                dst,
                src,
                offset: raw.off,
            })
        }
        class::LD => {
            let size = MemSize::from_opcode(op);
            match op & 0xe0 {
                mode::IMM if size == MemSize::DW => {
                    let dst = reg("destination", raw.dst, slot)?;
                    reserved("offset", raw.off as i64, slot)?;
                    if raw.src > lddw_src::MAP_VALUE_BY_INDEX {
                        return Err(err(DecodeErrorKind::BadSourceKind(raw.src)));
                    }
                    let tail = slots
                        .get(slot + 1)
                        .ok_or(err(DecodeErrorKind::IncompleteLddw))?;
                    if tail.opcode != 0 || tail.dst != 0 || tail.src != 0 || tail.off != 0 {
                        return Err(err(DecodeErrorKind::IncompleteLddw));
                    }
                    let imm = (raw.imm as u32 as u64) | ((tail.imm as u32 as u64) << 32);
                    Ok(Insn::LoadImm64 {
                        dst,
                        src: raw.src,
                        imm,
                    })
                }
                mode::ABS | mode::IND if size != MemSize::DW => {
                    reserved("dst", raw.dst as i64, slot)?;
                    reserved("offset", raw.off as i64, slot)?;
                    let indirect = if op & 0xe0 == mode::IND {
                        Some(reg("source", raw.src, slot)?)
                    } else {
                        reserved("src", raw.src as i64, slot)?;
                        None
                    };
                    Ok(Insn::LegacyPacketLoad {
                        size,
                        indirect,
                        imm: raw.imm,
                    })
                }
                _ => Err(err(DecodeErrorKind::UnknownOpcode(op))),
            }
        }
        class::LDX => {
            let size = MemSize::from_opcode(op);
            let sign_extend = match op & 0xe0 {
                mode::MEM => false,
                mode::MEMSX if size != MemSize::DW => true,
                _ => return Err(err(DecodeErrorKind::UnknownOpcode(op))),
            };
            reserved("imm", raw.imm as i64, slot)?;
            Ok(Insn::Load {
                size,
                sign_extend,
                dst: reg("destination", raw.dst, slot)?,
                base: reg("source", raw.src, slot)?,
                off: raw.off,
            })
        }
        class::ST => {
            if op & 0xe0 != mode::MEM {
                return Err(err(DecodeErrorKind::UnknownOpcode(op)));
            }
            reserved("src", raw.src as i64, slot)?;
            Ok(Insn::Store {
                size: MemSize::from_opcode(op),
                base: reg("destination", raw.dst, slot)?,
                off: raw.off,
                src: Operand::Imm(raw.imm),
            })
        }
        _ => {
            // class::STX
            let size = MemSize::from_opcode(op);
            let base = reg("destination", raw.dst, slot)?;
            let src = reg("source", raw.src, slot)?;
            match op & 0xe0 {
                mode::MEM => {
                    reserved("imm", raw.imm as i64, slot)?;
                    Ok(Insn::Store {
                        size,
                        base,
                        off: raw.off,
                        src: Operand::Reg(src),
                    })
                }
                mode::ATOMIC if matches!(size, MemSize::W | MemSize::DW) => {
                    let (atomic_op, fetch) = match raw.imm {
                        atomic::ADD => (AtomicOp::Add, false),
                        atomic::OR => (AtomicOp::Or, false),
                        atomic::AND => (AtomicOp::And, false),
                        atomic::XOR => (AtomicOp::Xor, false),
                        x if x == atomic::ADD | atomic::FETCH => (AtomicOp::Add, true),
                        x if x == atomic::OR | atomic::FETCH => (AtomicOp::Or, true),
                        x if x == atomic::AND | atomic::FETCH => (AtomicOp::And, true),
                        x if x == atomic::XOR | atomic::FETCH => (AtomicOp::Xor, true),
                        atomic::XCHG => (AtomicOp::Xchg, true),
                        atomic::CMPXCHG => (AtomicOp::CmpXchg, true),
                        other => return Err(err(DecodeErrorKind::BadImmediate(other))),
                    };
                    Ok(Insn::Atomic {
                        size,
                        op: atomic_op,
                        fetch,
                        base,
                        off: raw.off,
                        src,
                    })
                }
                _ => Err(err(DecodeErrorKind::UnknownOpcode(op))),
            }
        }
    }
}

/// Decodes a whole program: one [`Insn`] per slot, with [`Insn::LoadImm64Tail`] in the
/// second slot of every `lddw`, so slot indices (jump targets) stay as on the wire.
pub fn decode_program(slots: &[RawInsn]) -> Result<alloc::vec::Vec<Insn>, DecodeError> {
    let mut out = alloc::vec::Vec::with_capacity(slots.len());
    let mut slot = 0;
    while slot < slots.len() {
        let insn = decode_at(slots, slot)?;
        out.push(insn);
        if let Insn::LoadImm64 { .. } = insn {
            out.push(Insn::LoadImm64Tail);
            slot += 2;
        } else {
            slot += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> alloc::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn raw_round_trip() {
        let raw = RawInsn::new(0xb7, 3, 0, -5, -1);
        assert_eq!(RawInsn::from_bytes(raw.to_bytes()), raw);
    }

    #[test]
    fn decodes_lddw_as_two_slots() {
        let slots =
            slots_from_bytes(&hex("180000008877665500000000443322119500000000000000")).unwrap();
        let program = decode_program(&slots).unwrap();
        assert_eq!(
            program,
            [
                Insn::LoadImm64 {
                    dst: Reg(0),
                    src: 0,
                    imm: 0x1122334455667788
                },
                Insn::LoadImm64Tail,
                Insn::Exit
            ]
        );
    }

    #[test]
    fn decodes_v4_forms() {
        // sdiv64 r1, r2 (0x3f, off 1); movsx r1, w2 (0xbf, off 32); ldxsb; bswap16; ja32;
        // lock fetch add; callx r2.
        let cases = [
            (RawInsn::new(0x3f, 1, 2, 1, 0), "SDiv"),
            (RawInsn::new(0xbf, 1, 2, 32, 0), "MovSx(32)"),
            (RawInsn::new(0x91, 0, 1, 4, 0), "sign_extend: true"),
            (RawInsn::new(0xd7, 1, 0, 0, 16), "Swap"),
            (RawInsn::new(0x06, 0, 0, 0, -3), "Ja { offset: -3 }"),
            (RawInsn::new(0xdb, 10, 1, -8, 1), "fetch: true"),
            (RawInsn::new(0x8d, 2, 0, 0, 0), "Register(Reg(2))"),
        ];
        for (raw, expect) in cases {
            let insn = decode_at(&[raw], 0).unwrap();
            let text = alloc::format!("{insn:?}");
            assert!(text.contains(expect), "{raw:?} decoded as {text}");
        }
    }

    #[test]
    fn rejects_undefined_encodings() {
        let bad = [
            RawInsn::new(0x07, 11, 0, 0, 1),   // r11
            RawInsn::new(0x3f, 1, 2, 2, 0),    // sdiv with offset 2
            RawInsn::new(0xbc, 1, 2, 32, 0),   // movsx32 from 32 bits: undefined in RFC 9669
            RawInsn::new(0xdb, 1, 2, 0, 0x02), // atomic op 2
            RawInsn::new(0x95, 0, 0, 0, 1),    // exit with imm
            RawInsn::new(0xff, 0, 0, 0, 0),    // unknown opcode
            RawInsn::new(0x18, 0, 0, 0, 0),    // lddw without tail
            RawInsn::new(0x99, 0, 1, 0, 0),    // ldxsdw does not exist
        ];
        for raw in bad {
            assert!(decode_at(&[raw], 0).is_err(), "{raw:?} should be rejected");
        }
        assert!(slots_from_bytes(&[0u8; 9]).is_err());
    }
}
