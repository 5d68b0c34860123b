//! Assembler for the bpf_conformance / ubpf assembly syntax.
//!
//! One instruction per line, `#` (or `//`) starts a comment, `name:` defines a label (it may be
//! followed by an instruction on the same line). Registers are written `%r0`..`%r10` or, as a
//! language model tends to write them, `r0`..`r10`. Operands are separated by commas:
//!
//! ```text
//! mov %r0, 1            add32 %r1, %r2        ldxw %r0, [%r1+4]     stxdw [%r10-8], %r1
//! jeq %r1, 0, +2        ja label              call 1                call local func
//! call %r2              lddw %r0, 0x1122      lock fetch add [%r10-8], %r1
//! le16 %r0  be32 %r0  bswap64 %r0  movsx832 %r0, %r1  ldxsb %r0, [%r10-1]  ja32 label
//! ```
//!
//! The design is two passes: the first parses every line into an instruction with its
//! operands still symbolic and assigns slot numbers (lddw takes two), the second resolves labels
//! (offset = target - pc - 1, in slots) and encodes. Every error names the 1-based source line
//! and the reason, because the text often comes from a model that will be told to fix it.
//!
//! Map references in `lddw` use `KIND:VALUE` operands (`lddw %r1, map:3` is a map by fd, see
//! [`PSEUDO_KINDS`]); the disassembler prints the same form, so text round-trips.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::insn::{self, alu, class, jmp, lddw_src, mode, size, source, RawInsn};
use crate::limits::{MAX_ASM_LINES, MAX_PROGRAM_SLOTS};

/// `lddw` pseudo-source operand prefixes and their `src` values.
pub const PSEUDO_KINDS: &[(&str, u8)] = &[
    ("map", lddw_src::MAP_BY_FD),
    ("map_fd", lddw_src::MAP_BY_FD),
    ("map_value", lddw_src::MAP_VALUE_BY_FD),
    ("var", lddw_src::VARIABLE_ADDRESS),
    ("code", lddw_src::CODE_ADDRESS),
    ("map_idx", lddw_src::MAP_BY_INDEX),
    ("map_value_idx", lddw_src::MAP_VALUE_BY_INDEX),
];

/// Why a line did not assemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsmErrorKind {
    /// The first word is not an instruction this assembler knows.
    UnknownMnemonic(String),
    /// Wrong number of operands.
    OperandCount {
        mnemonic: String,
        expected: usize,
        found: usize,
    },
    /// An operand that should be a register is not `%r0`..`%r10`.
    BadRegister(String),
    /// An operand that should be a number does not parse, or does not fit its field.
    BadNumber(String),
    /// An operand that should be `[%rN+off]` is not.
    BadMemoryOperand(String),
    /// A label is defined twice.
    DuplicateLabel(String),
    /// A jump or call names a label that is not defined.
    UnknownLabel(String),
    /// A jump target is too far for the 16-bit offset field.
    JumpOutOfRange(i64),
    /// A label name that is not a valid identifier.
    BadLabel(String),
    /// The program is longer than [`MAX_PROGRAM_SLOTS`] slots, or the text than
    /// [`MAX_ASM_LINES`] lines.
    TooLong,
}

/// An assembly error at a 1-based source line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError {
    /// 1-based line number in the source text.
    pub line: usize,
    /// What is wrong.
    pub kind: AsmErrorKind,
}

impl fmt::Display for AsmErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsmErrorKind::UnknownMnemonic(m) => write!(f, "unknown instruction `{m}`"),
            AsmErrorKind::OperandCount {
                mnemonic,
                expected,
                found,
            } => write!(
                f,
                "`{mnemonic}` takes {expected} operand(s) but {found} were given"
            ),
            AsmErrorKind::BadRegister(s) => {
                write!(f, "`{s}` is not a register (expected %r0..%r10)")
            }
            AsmErrorKind::BadNumber(s) => {
                write!(f, "`{s}` is not a number that fits this field")
            }
            AsmErrorKind::BadMemoryOperand(s) => {
                write!(f, "`{s}` is not a memory operand like [%r1+8]")
            }
            AsmErrorKind::DuplicateLabel(l) => write!(f, "label `{l}` is defined twice"),
            AsmErrorKind::UnknownLabel(l) => write!(f, "label `{l}` is not defined"),
            AsmErrorKind::JumpOutOfRange(o) => {
                write!(f, "jump offset {o} does not fit in 16 bits")
            }
            AsmErrorKind::BadLabel(l) => write!(f, "`{l}` is not a valid label name"),
            AsmErrorKind::TooLong => write!(
                f,
                "program too long (at most {MAX_PROGRAM_SLOTS} slots, {MAX_ASM_LINES} lines)"
            ),
        }
    }
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

/// A jump or call target before label resolution.
#[derive(Clone, Debug)]
enum Target {
    Offset(i64),
    Label(String),
}

/// Where a resolved target goes in the slot.
#[derive(Clone, Copy, Debug)]
enum TargetField {
    Off,
    Imm,
}

struct Pending {
    line: usize,
    slot: usize,
    raw: RawInsn,
    /// Second slot of lddw.
    tail: Option<RawInsn>,
    target: Option<(Target, TargetField)>,
}

/// Assembles source text into instruction slots.
pub fn assemble(text: &str) -> Result<Vec<RawInsn>, AsmError> {
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut slot = 0usize;
    for (index, full_line) in text.lines().enumerate() {
        let line = index + 1;
        if line > MAX_ASM_LINES {
            return Err(AsmError {
                line,
                kind: AsmErrorKind::TooLong,
            });
        }
        let err = |kind| AsmError { line, kind };
        let mut rest = strip_comment(full_line).trim();
        // Labels: `name:` possibly followed by an instruction.
        while let Some(colon) = rest.find(':') {
            let (name, after) = rest.split_at(colon);
            let name = name.trim();
            // A colon inside an operand (lddw map:3) is not a label.
            if name.contains(|c: char| c.is_whitespace() || c == ',') {
                break;
            }
            if !is_label_name(name) {
                return Err(err(AsmErrorKind::BadLabel(name.to_string())));
            }
            if labels.insert(name.to_string(), slot).is_some() {
                return Err(err(AsmErrorKind::DuplicateLabel(name.to_string())));
            }
            rest = after[1..].trim();
        }
        if rest.is_empty() {
            continue;
        }
        let item = parse_line(rest).map_err(err)?;
        let width = if item.tail.is_some() { 2 } else { 1 };
        pending.push(Pending {
            line,
            slot,
            raw: item.raw,
            tail: item.tail,
            target: item.target,
        });
        slot += width;
        if slot > MAX_PROGRAM_SLOTS {
            return Err(err(AsmErrorKind::TooLong));
        }
    }
    let exit_raw = RawInsn::new(class::JMP | jmp::EXIT, 0, 0, 0, 0);
    let exits: Vec<usize> = pending
        .iter()
        .filter(|p| p.raw == exit_raw)
        .map(|p| p.slot)
        .collect();
    let mut out = Vec::with_capacity(slot);
    for item in pending {
        let mut raw = item.raw;
        if let Some((target, field)) = item.target {
            let err = |kind| AsmError {
                line: item.line,
                kind,
            };
            let offset = match target {
                Target::Offset(o) => o,
                Target::Label(name) => {
                    let at = match labels.get(&name) {
                        Some(at) => *at,
                        // bpf_conformance convention: an undefined `exit` label means the
                        // first `exit` instruction of the program.
                        None if name == "exit" => exits
                            .first()
                            .copied()
                            .ok_or_else(|| err(AsmErrorKind::UnknownLabel(name.clone())))?,
                        None => return Err(err(AsmErrorKind::UnknownLabel(name.clone()))),
                    };
                    at as i64 - item.slot as i64 - 1
                }
            };
            match field {
                TargetField::Off => {
                    raw.off = i16::try_from(offset)
                        .map_err(|_| err(AsmErrorKind::JumpOutOfRange(offset)))?;
                }
                TargetField::Imm => {
                    raw.imm = i32::try_from(offset)
                        .map_err(|_| err(AsmErrorKind::JumpOutOfRange(offset)))?;
                }
            }
        }
        out.push(raw);
        if let Some(tail) = item.tail {
            out.push(tail);
        }
    }
    Ok(out)
}

/// Assembles to bytes (8 per slot, little-endian).
pub fn assemble_bytes(text: &str) -> Result<Vec<u8>, AsmError> {
    assemble(text).map(|slots| insn::slots_to_bytes(&slots))
}

fn strip_comment(line: &str) -> &str {
    let mut end = line.len();
    if let Some(i) = line.find('#') {
        end = end.min(i);
    }
    if let Some(i) = line.find("//") {
        end = end.min(i);
    }
    if let Some(i) = line.find(';') {
        end = end.min(i);
    }
    &line[..end]
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

struct Parsed {
    raw: RawInsn,
    tail: Option<RawInsn>,
    target: Option<(Target, TargetField)>,
}

impl Parsed {
    fn one(raw: RawInsn) -> Self {
        Parsed {
            raw,
            tail: None,
            target: None,
        }
    }
}

fn parse_reg(s: &str) -> Result<u8, AsmErrorKind> {
    let t = s.trim();
    let body = t.strip_prefix('%').unwrap_or(t);
    let digits = body
        .strip_prefix('r')
        .ok_or_else(|| AsmErrorKind::BadRegister(t.to_string()))?;
    match digits.parse::<u8>() {
        Ok(n) if n <= 10 && !digits.starts_with('+') => Ok(n),
        _ => Err(AsmErrorKind::BadRegister(t.to_string())),
    }
}

fn is_reg(s: &str) -> bool {
    let t = s.trim();
    let body = t.strip_prefix('%').unwrap_or(t);
    t.starts_with('%') || (body.starts_with('r') && body[1..].chars().all(|c| c.is_ascii_digit()))
}

/// Parses a signed or unsigned integer (decimal or 0x hex, optional sign).
fn parse_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, body) = if let Some(b) = t.strip_prefix('-') {
        (true, b)
    } else if let Some(b) = t.strip_prefix('+') {
        (false, b)
    } else {
        (false, t)
    };
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u128::from_str_radix(hex, 16).ok()?
    } else {
        if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        body.parse::<u128>().ok()?
    };
    if value > u64::MAX as u128 {
        return None;
    }
    Some(if neg { -(value as i128) } else { value as i128 })
}

/// A 32-bit immediate: accepts -2^31..2^32-1 (unsigned values keep their bit pattern).
fn parse_imm32(s: &str) -> Result<i32, AsmErrorKind> {
    match parse_int(s) {
        Some(v) if (i32::MIN as i128..=u32::MAX as i128).contains(&v) => Ok(v as u32 as i32),
        _ => Err(AsmErrorKind::BadNumber(s.trim().to_string())),
    }
}

fn parse_imm64(s: &str) -> Result<u64, AsmErrorKind> {
    match parse_int(s) {
        Some(v) if (i64::MIN as i128..=u64::MAX as i128).contains(&v) => Ok(v as u64),
        _ => Err(AsmErrorKind::BadNumber(s.trim().to_string())),
    }
}

/// `[%rN]`, `[%rN+off]`, `[%rN-off]`.
fn parse_mem(s: &str) -> Result<(u8, i16), AsmErrorKind> {
    let t = s.trim();
    let bad = || AsmErrorKind::BadMemoryOperand(t.to_string());
    let inner = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(bad)?
        .trim();
    let split = inner.find(['+', '-']);
    let (reg_text, off) = match split {
        Some(i) => {
            let off_text: String = inner[i..].chars().filter(|c| !c.is_whitespace()).collect();
            let off = parse_int(&off_text)
                .and_then(|v| i16::try_from(v).ok())
                .ok_or_else(|| AsmErrorKind::BadNumber(off_text.clone()))?;
            (&inner[..i], off)
        }
        None => (inner, 0),
    };
    Ok((parse_reg(reg_text)?, off))
}

fn parse_target(s: &str) -> Result<Target, AsmErrorKind> {
    let t = s.trim();
    if t.starts_with(['+', '-']) || t.starts_with(|c: char| c.is_ascii_digit()) {
        parse_int(t)
            .and_then(|v| i64::try_from(v).ok())
            .map(Target::Offset)
            .ok_or_else(|| AsmErrorKind::BadNumber(t.to_string()))
    } else if is_label_name(t) {
        Ok(Target::Label(t.to_string()))
    } else {
        Err(AsmErrorKind::BadLabel(t.to_string()))
    }
}

fn expect_count(mnemonic: &str, ops: &[&str], n: usize) -> Result<(), AsmErrorKind> {
    if ops.len() == n {
        Ok(())
    } else {
        Err(AsmErrorKind::OperandCount {
            mnemonic: mnemonic.to_string(),
            expected: n,
            found: ops.len(),
        })
    }
}

fn alu_op(name: &str) -> Option<(u8, i16)> {
    Some(match name {
        "add" => (alu::ADD, 0),
        "sub" => (alu::SUB, 0),
        "mul" => (alu::MUL, 0),
        "div" => (alu::DIV, 0),
        "sdiv" => (alu::DIV, 1),
        "or" => (alu::OR, 0),
        "and" => (alu::AND, 0),
        "lsh" => (alu::LSH, 0),
        "rsh" => (alu::RSH, 0),
        "mod" => (alu::MOD, 0),
        "smod" => (alu::MOD, 1),
        "xor" => (alu::XOR, 0),
        "mov" => (alu::MOV, 0),
        "arsh" => (alu::ARSH, 0),
        _ => return None,
    })
}

fn jmp_op(name: &str) -> Option<u8> {
    Some(match name {
        "jeq" => jmp::JEQ,
        "jgt" => jmp::JGT,
        "jge" => jmp::JGE,
        "jset" => jmp::JSET,
        "jne" => jmp::JNE,
        "jsgt" => jmp::JSGT,
        "jsge" => jmp::JSGE,
        "jlt" => jmp::JLT,
        "jle" => jmp::JLE,
        "jslt" => jmp::JSLT,
        "jsle" => jmp::JSLE,
        _ => return None,
    })
}

fn mem_size(suffix: &str) -> Option<u8> {
    Some(match suffix {
        "b" => size::B,
        "h" => size::H,
        "w" => size::W,
        "dw" => size::DW,
        _ => return None,
    })
}

/// Splits `name32` / `name64` / `name` into (name, is_32bit).
fn width_suffix(m: &str) -> (&str, bool) {
    if let Some(base) = m.strip_suffix("32") {
        (base, true)
    } else if let Some(base) = m.strip_suffix("64") {
        (base, false)
    } else {
        (m, false)
    }
}

fn split_operands(rest: &str) -> Vec<&str> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(',').map(str::trim).collect()
}

fn parse_line(text: &str) -> Result<Parsed, AsmErrorKind> {
    let (mnemonic, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    };
    let mnemonic_lower = mnemonic.to_ascii_lowercase();
    let m = mnemonic_lower.as_str();
    let unknown = || AsmErrorKind::UnknownMnemonic(mnemonic.to_string());

    if m == "lock" {
        return parse_atomic(rest);
    }
    let ops = split_operands(rest);

    match m {
        "exit" => {
            expect_count(m, &ops, 0)?;
            return Ok(Parsed::one(RawInsn::new(
                class::JMP | jmp::EXIT,
                0,
                0,
                0,
                0,
            )));
        }
        "call" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if words.first() == Some(&"local") {
                let target = words.get(1).ok_or(AsmErrorKind::OperandCount {
                    mnemonic: "call local".to_string(),
                    expected: 1,
                    found: 0,
                })?;
                return Ok(Parsed {
                    raw: RawInsn::new(class::JMP | jmp::CALL, 0, insn::call_src::LOCAL, 0, 0),
                    tail: None,
                    target: Some((parse_target(target)?, TargetField::Imm)),
                });
            }
            expect_count(m, &ops, 1)?;
            if let Some(id) = ops[0].strip_prefix("btf:") {
                // A helper by BTF id (src 2): decoded and printed, never executed here.
                return Ok(Parsed::one(RawInsn::new(
                    class::JMP | jmp::CALL,
                    0,
                    insn::call_src::HELPER_BY_BTF_ID,
                    0,
                    parse_imm32(id)?,
                )));
            }
            if is_reg(ops[0]) {
                let r = parse_reg(ops[0])?;
                return Ok(Parsed::one(RawInsn::new(
                    class::JMP | jmp::CALL | source::X,
                    r,
                    0,
                    0,
                    0,
                )));
            }
            let imm = parse_imm32(ops[0])?;
            return Ok(Parsed::one(RawInsn::new(
                class::JMP | jmp::CALL,
                0,
                0,
                0,
                imm,
            )));
        }
        "callx" => {
            expect_count(m, &ops, 1)?;
            let r = parse_reg(ops[0])?;
            return Ok(Parsed::one(RawInsn::new(
                class::JMP | jmp::CALL | source::X,
                r,
                0,
                0,
                0,
            )));
        }
        "ja" | "ja32" => {
            expect_count(m, &ops, 1)?;
            let (cls, field) = if m == "ja" {
                (class::JMP, TargetField::Off)
            } else {
                (class::JMP32, TargetField::Imm)
            };
            return Ok(Parsed {
                raw: RawInsn::new(cls | jmp::JA, 0, 0, 0, 0),
                tail: None,
                target: Some((parse_target(ops[0])?, field)),
            });
        }
        "lddw" => {
            expect_count(m, &ops, 2)?;
            let dst = parse_reg(ops[0])?;
            let (src, value) = parse_lddw_value(ops[1])?;
            return Ok(Parsed {
                raw: RawInsn::new(
                    class::LD | size::DW | mode::IMM,
                    dst,
                    src,
                    0,
                    value as u32 as i32,
                ),
                tail: Some(RawInsn::new(0, 0, 0, 0, (value >> 32) as u32 as i32)),
                target: None,
            });
        }
        _ => {}
    }

    // Byte order: le16/be32/bswap64 (and the swapNN alias of bswap).
    for (prefix, opcode) in [
        ("le", class::ALU | alu::END | source::K),
        ("be", class::ALU | alu::END | source::X),
        ("bswap", class::ALU64 | alu::END | source::K),
        ("swap", class::ALU64 | alu::END | source::K),
    ] {
        if let Some(bits) = m.strip_prefix(prefix) {
            if let Ok(bits @ (16 | 32 | 64)) = bits.parse::<i32>() {
                expect_count(m, &ops, 1)?;
                let dst = parse_reg(ops[0])?;
                return Ok(Parsed::one(RawInsn::new(opcode, dst, 0, 0, bits)));
            }
        }
    }

    // movsx{8,16,32}{32,64}.
    if let Some(spec) = m.strip_prefix("movsx") {
        let (from, to) = match spec {
            "832" => (8, 32),
            "864" => (8, 64),
            "1632" => (16, 32),
            "1664" => (16, 64),
            "3264" => (32, 64),
            _ => return Err(unknown()),
        };
        expect_count(m, &ops, 2)?;
        let cls = if to == 32 { class::ALU } else { class::ALU64 };
        return Ok(Parsed::one(RawInsn::new(
            cls | alu::MOV | source::X,
            parse_reg(ops[0])?,
            parse_reg(ops[1])?,
            from,
            0,
        )));
    }

    // Loads and stores.
    if let Some(sz) = m.strip_prefix("ldxs").and_then(mem_size) {
        if sz == size::DW {
            return Err(unknown());
        }
        expect_count(m, &ops, 2)?;
        let (base, off) = parse_mem(ops[1])?;
        return Ok(Parsed::one(RawInsn::new(
            class::LDX | mode::MEMSX | sz,
            parse_reg(ops[0])?,
            base,
            off,
            0,
        )));
    }
    if let Some(sz) = m.strip_prefix("ldx").and_then(mem_size) {
        expect_count(m, &ops, 2)?;
        let (base, off) = parse_mem(ops[1])?;
        return Ok(Parsed::one(RawInsn::new(
            class::LDX | mode::MEM | sz,
            parse_reg(ops[0])?,
            base,
            off,
            0,
        )));
    }
    if let Some(sz) = m.strip_prefix("stx").and_then(mem_size) {
        expect_count(m, &ops, 2)?;
        let (base, off) = parse_mem(ops[0])?;
        return Ok(Parsed::one(RawInsn::new(
            class::STX | mode::MEM | sz,
            base,
            parse_reg(ops[1])?,
            off,
            0,
        )));
    }
    if let Some(sz) = m.strip_prefix("st").and_then(mem_size) {
        expect_count(m, &ops, 2)?;
        let (base, off) = parse_mem(ops[0])?;
        return Ok(Parsed::one(RawInsn::new(
            class::ST | mode::MEM | sz,
            base,
            0,
            off,
            parse_imm32(ops[1])?,
        )));
    }
    if let Some(sz) = m.strip_prefix("ldabs").and_then(mem_size) {
        expect_count(m, &ops, 1)?;
        return Ok(Parsed::one(RawInsn::new(
            class::LD | mode::ABS | sz,
            0,
            0,
            0,
            parse_imm32(ops[0])?,
        )));
    }
    if let Some(sz) = m.strip_prefix("ldind").and_then(mem_size) {
        expect_count(m, &ops, 2)?;
        return Ok(Parsed::one(RawInsn::new(
            class::LD | mode::IND | sz,
            0,
            parse_reg(ops[0])?,
            0,
            parse_imm32(ops[1])?,
        )));
    }

    let (base, is32) = width_suffix(m);
    if base == "neg" {
        expect_count(m, &ops, 1)?;
        let cls = if is32 { class::ALU } else { class::ALU64 };
        return Ok(Parsed::one(RawInsn::new(
            cls | alu::NEG,
            parse_reg(ops[0])?,
            0,
            0,
            0,
        )));
    }
    if let Some((op, off)) = alu_op(base) {
        expect_count(m, &ops, 2)?;
        let cls = if is32 { class::ALU } else { class::ALU64 };
        let dst = parse_reg(ops[0])?;
        let raw = if is_reg(ops[1]) {
            RawInsn::new(cls | op | source::X, dst, parse_reg(ops[1])?, off, 0)
        } else {
            RawInsn::new(cls | op | source::K, dst, 0, off, parse_imm32(ops[1])?)
        };
        return Ok(Parsed::one(raw));
    }
    if let Some(op) = jmp_op(base) {
        expect_count(m, &ops, 3)?;
        let cls = if is32 { class::JMP32 } else { class::JMP };
        let dst = parse_reg(ops[0])?;
        let raw = if is_reg(ops[1]) {
            RawInsn::new(cls | op | source::X, dst, parse_reg(ops[1])?, 0, 0)
        } else {
            RawInsn::new(cls | op | source::K, dst, 0, 0, parse_imm32(ops[1])?)
        };
        return Ok(Parsed {
            raw,
            tail: None,
            target: Some((parse_target(ops[2])?, TargetField::Off)),
        });
    }
    Err(unknown())
}

fn parse_lddw_value(s: &str) -> Result<(u8, u64), AsmErrorKind> {
    let t = s.trim();
    if let Some((kind, value)) = t.split_once(':') {
        let kind = kind.trim();
        let src = PSEUDO_KINDS
            .iter()
            .find(|(name, _)| *name == kind)
            .map(|(_, src)| *src)
            .ok_or_else(|| AsmErrorKind::BadNumber(t.to_string()))?;
        return Ok((src, parse_imm64(value)?));
    }
    Ok((lddw_src::IMM64, parse_imm64(t)?))
}

/// `lock [fetch] add|or|and|xor[32] [mem], %rS`, `lock xchg[32] ...`, `lock cmpxchg[32] ...`.
fn parse_atomic(rest: &str) -> Result<Parsed, AsmErrorKind> {
    let mut words = rest.trim();
    let mut fetch = false;
    if let Some(after) = words.strip_prefix("fetch") {
        if after.starts_with(char::is_whitespace) {
            fetch = true;
            words = after.trim_start();
        }
    }
    let (op_word, operands) = match words.find(char::is_whitespace) {
        Some(i) => (&words[..i], &words[i..]),
        None => (words, ""),
    };
    let full = alloc::format!("lock {}{}", if fetch { "fetch " } else { "" }, op_word);
    let (base, is32) = width_suffix(op_word);
    let imm = match (base, fetch) {
        ("add", _) => insn::atomic::ADD,
        ("or", _) => insn::atomic::OR,
        ("and", _) => insn::atomic::AND,
        ("xor", _) => insn::atomic::XOR,
        ("xchg", false) => insn::atomic::XCHG,
        ("cmpxchg", false) => insn::atomic::CMPXCHG,
        _ => return Err(AsmErrorKind::UnknownMnemonic(full)),
    } | if fetch { insn::atomic::FETCH } else { 0 };
    let ops = split_operands(operands);
    expect_count(&full, &ops, 2)?;
    let (base_reg, off) = parse_mem(ops[0])?;
    let sz = if is32 { size::W } else { size::DW };
    Ok(Parsed::one(RawInsn::new(
        class::STX | mode::ATOMIC | sz,
        base_reg,
        parse_reg(ops[1])?,
        off,
        imm,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> RawInsn {
        let slots = assemble(text).unwrap();
        slots[0]
    }

    #[test]
    fn encodes_basic_forms() {
        assert_eq!(one("mov %r0, 1"), RawInsn::new(0xb7, 0, 0, 0, 1));
        assert_eq!(one("add32 r1, r2"), RawInsn::new(0x0c, 1, 2, 0, 0));
        assert_eq!(one("ldxw %r0, [%r1+4]"), RawInsn::new(0x61, 0, 1, 4, 0));
        assert_eq!(one("stxdw [%r10-8], %r1"), RawInsn::new(0x7b, 10, 1, -8, 0));
        assert_eq!(
            one("stb [%r10 - 1], 0xff"),
            RawInsn::new(0x72, 10, 0, -1, 255)
        );
        assert_eq!(one("sdiv32 %r1, 3"), RawInsn::new(0x34, 1, 0, 1, 3));
        assert_eq!(one("movsx832 %r0, %r1"), RawInsn::new(0xbc, 0, 1, 8, 0));
        assert_eq!(one("movsx3264 %r0, %r1"), RawInsn::new(0xbf, 0, 1, 32, 0));
        assert_eq!(one("ldxsb %r0, [%r10-1]"), RawInsn::new(0x91, 0, 10, -1, 0));
        assert_eq!(one("bswap16 %r0"), RawInsn::new(0xd7, 0, 0, 0, 16));
        assert_eq!(one("be16 %r0"), RawInsn::new(0xdc, 0, 0, 0, 16));
        assert_eq!(one("le64 %r0"), RawInsn::new(0xd4, 0, 0, 0, 64));
        assert_eq!(one("neg32 %r0"), RawInsn::new(0x84, 0, 0, 0, 0));
        assert_eq!(
            one("lock fetch add [%r10-8], %r1"),
            RawInsn::new(0xdb, 10, 1, -8, 1)
        );
        assert_eq!(
            one("lock xchg32 [%r10-8], %r1"),
            RawInsn::new(0xc3, 10, 1, -8, 0xe1)
        );
        assert_eq!(one("call %r2"), RawInsn::new(0x8d, 2, 0, 0, 0));
        assert_eq!(one("call 5"), RawInsn::new(0x85, 0, 0, 0, 5));
        assert_eq!(
            one("jsge %r1, 0xffffffff, +1"),
            RawInsn::new(0x75, 1, 0, 1, -1)
        );
    }

    #[test]
    fn resolves_labels_across_lddw() {
        let slots =
            assemble("ja end\nlddw %r0, 0x100000002\nend:\nja32 top\ntop: call local end\nexit")
                .unwrap();
        assert_eq!(slots[0].off, 2);
        assert_eq!(slots[1].imm, 2);
        assert_eq!(slots[2].imm, 1);
        assert_eq!(slots[3].imm, 0);
        assert_eq!(slots[4].imm, -2);
        assert_eq!(slots[4].src, 1);
        assert_eq!(slots[1], RawInsn::new(0x18, 0, 0, 0, 2));
    }

    #[test]
    fn errors_name_line_and_reason() {
        let e = assemble("mov %r0, 1\n\nfrob %r1").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.kind, AsmErrorKind::UnknownMnemonic("frob".into()));
        let e = assemble("mov %r11, 1").unwrap_err();
        assert!(matches!(e.kind, AsmErrorKind::BadRegister(_)));
        let e = assemble("ja nowhere").unwrap_err();
        assert_eq!(e.kind, AsmErrorKind::UnknownLabel("nowhere".into()));
        assert_eq!(assemble("jeq %r1, 0, exit\nexit").unwrap()[0].off, 0);
        let e = assemble("x:\nx:\nexit").unwrap_err();
        assert_eq!(e.line, 2);
        let e = assemble("add %r0").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(assemble("mov %r0, 0x100000000").is_err());
        assert!(assemble("ldxw %r0, [%r1+40000]").is_err());
        assert!(assemble("ja +40000").is_err());
    }

    #[test]
    fn map_pseudo_operands() {
        let slots = assemble("lddw %r1, map:3\nexit").unwrap();
        assert_eq!(slots[0], RawInsn::new(0x18, 1, 1, 0, 3));
    }
}
