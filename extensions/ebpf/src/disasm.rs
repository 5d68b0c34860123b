//! Disassembler: decoded instructions back to the assembler's syntax.
//!
//! The output is exactly what [`crate::asm::assemble`] reads, so disassemble → assemble gives
//! back the same bytes (a tested property over every conformance program). Jump targets are
//! printed as relative slot offsets (`+3`, `-2`), the way ubpf prints them, because offsets
//! survive round trips even where labels would have to be invented.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::asm::PSEUDO_KINDS;
use crate::insn::{
    decode_program, lddw_src, AluOp, AtomicOp, ByteOrder, CallTarget, Cond, DecodeError, Insn,
    MemSize, Operand, RawInsn, Width,
};

fn suffix(width: Width) -> &'static str {
    match width {
        Width::W32 => "32",
        Width::W64 => "",
    }
}

fn size_name(size: MemSize) -> &'static str {
    match size {
        MemSize::B => "b",
        MemSize::H => "h",
        MemSize::W => "w",
        MemSize::DW => "dw",
    }
}

fn operand(op: Operand) -> String {
    match op {
        Operand::Reg(r) => format!("%r{}", r.0),
        Operand::Imm(i) => format!("{i}"),
    }
}

fn mem(base: u8, off: i16) -> String {
    if off < 0 {
        format!("[%r{base}{off}]")
    } else {
        format!("[%r{base}+{off}]")
    }
}

fn rel(offset: i64) -> String {
    if offset < 0 {
        format!("{offset}")
    } else {
        format!("+{offset}")
    }
}

/// Text of one decoded instruction (`None` for the second slot of `lddw`).
pub fn format_insn(insn: &Insn) -> Option<String> {
    Some(match *insn {
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let name = match op {
                AluOp::Add => "add",
                AluOp::Sub => "sub",
                AluOp::Mul => "mul",
                AluOp::Div => "div",
                AluOp::SDiv => "sdiv",
                AluOp::Or => "or",
                AluOp::And => "and",
                AluOp::Lsh => "lsh",
                AluOp::Rsh => "rsh",
                AluOp::Mod => "mod",
                AluOp::SMod => "smod",
                AluOp::Xor => "xor",
                AluOp::Mov => "mov",
                AluOp::Arsh => "arsh",
                AluOp::MovSx(bits) => {
                    let to = if width == Width::W32 { 32 } else { 64 };
                    return Some(format!("movsx{bits}{to} %r{}, {}", dst.0, operand(src)));
                }
            };
            format!("{name}{} %r{}, {}", suffix(width), dst.0, operand(src))
        }
        Insn::Neg { width, dst } => format!("neg{} %r{}", suffix(width), dst.0),
        Insn::End { order, bits, dst } => {
            let name = match order {
                ByteOrder::ToLittle => "le",
                ByteOrder::ToBig => "be",
                ByteOrder::Swap => "bswap",
            };
            format!("{name}{bits} %r{}", dst.0)
        }
        Insn::LoadImm64 { dst, src, imm } => {
            if src == lddw_src::IMM64 {
                format!("lddw %r{}, {:#x}", dst.0, imm)
            } else {
                let kind = PSEUDO_KINDS
                    .iter()
                    .rev()
                    .find(|(_, s)| *s == src)
                    .map(|(name, _)| *name)
                    .unwrap_or("map");
                let kind = if kind == "map_fd" { "map" } else { kind };
                format!("lddw %r{}, {kind}:{:#x}", dst.0, imm)
            }
        }
        Insn::LoadImm64Tail => return None,
        Insn::Load {
            size,
            sign_extend,
            dst,
            base,
            off,
        } => format!(
            "ldx{}{} %r{}, {}",
            if sign_extend { "s" } else { "" },
            size_name(size),
            dst.0,
            mem(base.0, off)
        ),
        Insn::Store {
            size,
            base,
            off,
            src,
        } => match src {
            Operand::Reg(r) => format!("stx{} {}, %r{}", size_name(size), mem(base.0, off), r.0),
            Operand::Imm(i) => format!("st{} {}, {i}", size_name(size), mem(base.0, off)),
        },
        Insn::Atomic {
            size,
            op,
            fetch,
            base,
            off,
            src,
        } => {
            let name = match op {
                AtomicOp::Add => "add",
                AtomicOp::Or => "or",
                AtomicOp::And => "and",
                AtomicOp::Xor => "xor",
                AtomicOp::Xchg => "xchg",
                AtomicOp::CmpXchg => "cmpxchg",
            };
            let fetch = fetch && !matches!(op, AtomicOp::Xchg | AtomicOp::CmpXchg);
            format!(
                "lock {}{name}{} {}, %r{}",
                if fetch { "fetch " } else { "" },
                if size == MemSize::W { "32" } else { "" },
                mem(base.0, off),
                src.0
            )
        }
        Insn::LegacyPacketLoad {
            size,
            indirect,
            imm,
        } => match indirect {
            None => format!("ldabs{} {imm}", size_name(size)),
            Some(r) => format!("ldind{} %r{}, {imm}", size_name(size), r.0),
        },
        Insn::Ja { offset } => {
            // Both forms print their own mnemonic; `ja` uses the 16-bit field.
            format!("ja {}", rel(offset as i64))
        }
        Insn::Jump {
            width,
            cond,
            dst,
            src,
            offset,
        } => {
            let name = match cond {
                Cond::Eq => "jeq",
                Cond::Gt => "jgt",
                Cond::Ge => "jge",
                Cond::Set => "jset",
                Cond::Ne => "jne",
                Cond::SGt => "jsgt",
                Cond::SGe => "jsge",
                Cond::Lt => "jlt",
                Cond::Le => "jle",
                Cond::SLt => "jslt",
                Cond::SLe => "jsle",
            };
            format!(
                "{name}{} %r{}, {}, {}",
                suffix(width),
                dst.0,
                operand(src),
                rel(offset as i64)
            )
        }
        Insn::Call(CallTarget::Helper(id)) => format!("call {id}"),
        Insn::Call(CallTarget::Local(offset)) => format!("call local {}", rel(offset as i64)),
        Insn::Call(CallTarget::HelperByBtfId(id)) => format!("call btf:{id}"),
        Insn::Call(CallTarget::Register(r)) => format!("call %r{}", r.0),
        Insn::Exit => String::from("exit"),
    })
}

/// Disassembles a program, one line per instruction (lddw prints once, on its first slot).
/// `ja32` is recognised from the raw slot, since [`Insn::Ja`] does not record the class.
pub fn disassemble(slots: &[RawInsn]) -> Result<String, DecodeError> {
    let program = decode_program(slots)?;
    let mut out = String::new();
    for (slot, insn) in program.iter().enumerate() {
        let Some(mut text) = format_insn(insn) else {
            continue;
        };
        if let (Insn::Ja { offset }, Some(raw)) = (insn, slots.get(slot)) {
            if raw.class() == crate::insn::class::JMP32 {
                text = format!("ja32 {}", rel(*offset as i64));
            }
        }
        out.push_str(&text);
        out.push('\n');
    }
    Ok(out)
}

/// Disassembles with slot numbers, for people reading a listing (`  12: jeq %r1, 0, +2`).
pub fn listing(slots: &[RawInsn]) -> Result<Vec<(usize, String)>, DecodeError> {
    let text = disassemble(slots)?;
    let program = decode_program(slots)?;
    let mut lines = text.lines();
    let mut out = Vec::new();
    for (slot, insn) in program.iter().enumerate() {
        if *insn == Insn::LoadImm64Tail {
            continue;
        }
        if let Some(line) = lines.next() {
            out.push((slot, String::from(line)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::assemble;

    #[test]
    fn round_trips_every_form() {
        let text = "mov %r0, 1\nadd32 %r1, %r2\nldxw %r0, [%r1+4]\nstxdw [%r10-8], %r1\n\
                    jeq %r1, 0, +2\nja -1\nja32 +0\ncall 1\ncall local +1\ncall %r2\n\
                    lddw %r0, 0x1122334455667788\nlddw %r1, map:0x3\nlock add [%r10-8], %r1\n\
                    lock fetch xor32 [%r10-4], %r3\nlock xchg [%r10-8], %r1\n\
                    lock cmpxchg32 [%r10-8], %r1\nle16 %r0\nbe32 %r0\nbswap64 %r0\n\
                    movsx1664 %r0, %r1\nldxsh %r0, [%r10-2]\nsdiv %r1, -3\nsmod32 %r1, %r2\n\
                    neg %r3\nstw [%r10-4], -5\nldabsh 12\nldindb %r1, 3\ncall btf:3\nexit\n";
        let slots = assemble(text).unwrap();
        let back = disassemble(&slots).unwrap();
        assert_eq!(back, text);
        assert_eq!(assemble(&back).unwrap(), slots);
    }

    #[test]
    fn listing_numbers_slots() {
        let slots = assemble("lddw %r0, 1\nexit").unwrap();
        let lines = listing(&slots).unwrap();
        assert_eq!(lines[1], (2, String::from("exit")));
    }
}
