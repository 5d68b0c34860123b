//! A bounds-checking reference interpreter with provenance, the oracle of differential tests.
//!
//! It runs a program concretely (RFC 9669 semantics) while tracking, for every register and
//! stack byte, whether it is initialised and whether it holds (part of) a pointer, and for
//! every pointer which region it points into. Any behaviour the verifier promises never to
//! happen is reported as a [`Violation`]: an out-of-bounds or misdirected access, a read of
//! an uninitialised register or stack byte, a pointer leaving through r0, the context or a
//! map value, arithmetic that launders a pointer, an unknown helper, or running longer than
//! the verifier's own count of explored instructions (an accepted program's every path is
//! one the analysis walked, so no run can be longer).
//!
//! It is deliberately independent of the verifier's abstract domain: a scalar is a `u64`.

use alloc::vec;
use alloc::vec::Vec;

use ebpf::insn::{
    decode_program, lddw_src, AluOp, AtomicOp, ByteOrder, CallTarget, Cond, Insn, Operand, Reg,
    Width,
};

use crate::config::VerifierConfig;

/// Where a pointer points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Context,
    Stack(usize),
    MapValue { map: u16, entry: usize },
}

/// A concrete value with provenance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V {
    Uninit,
    Num(u64),
    Ptr(Place, i64),
    Map(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Uninit,
    Byte(u8),
    PtrPart(V, u8),
}

/// A safety property broken at run time (a verifier bug if the program was accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    UninitRegister {
        pc: usize,
        reg: u8,
    },
    UninitMemory {
        pc: usize,
    },
    OutOfBounds {
        pc: usize,
        place: Place,
        offset: i64,
        size: usize,
    },
    NotWritable {
        pc: usize,
        offset: i64,
    },
    NotAPointer {
        pc: usize,
    },
    PointerLeak {
        pc: usize,
    },
    PointerLaundering {
        pc: usize,
    },
    PartialPointer {
        pc: usize,
    },
    BadHelper {
        pc: usize,
        id: i64,
    },
    BadCall {
        pc: usize,
    },
    Undecodable,
    BudgetExceeded {
        steps: u64,
    },
    StackPointerToDeadFrame {
        pc: usize,
    },
}

/// Entries per map (lookups return one of them or null).
const MAP_ENTRIES: usize = 2;

/// Deterministic random source for helper results.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Frame {
    regs: [V; 11],
    stack: Vec<Cell>,
    return_pc: usize,
}

struct Machine<'a> {
    config: &'a VerifierConfig,
    ctx: Vec<Cell>,
    maps: Vec<Vec<Vec<Cell>>>,
    frames: Vec<Frame>,
    rng: Rng,
}

fn sext(v: u64, bits: u32) -> u64 {
    let shift = 64 - bits;
    (((v << shift) as i64) >> shift) as u64
}

/// Concrete ALU (RFC 9669): the value of `dst op src` for scalars.
pub fn alu(op: AluOp, width: Width, a: u64, b: u64) -> u64 {
    match width {
        Width::W64 => match op {
            AluOp::Add => a.wrapping_add(b),
            AluOp::Sub => a.wrapping_sub(b),
            AluOp::Mul => a.wrapping_mul(b),
            AluOp::Div => a.checked_div(b).unwrap_or(0),
            AluOp::SDiv => {
                if b == 0 {
                    0
                } else {
                    (a as i64).wrapping_div(b as i64) as u64
                }
            }
            AluOp::Mod => a.checked_rem(b).unwrap_or(a),
            AluOp::SMod => {
                if b == 0 {
                    a
                } else {
                    (a as i64).wrapping_rem(b as i64) as u64
                }
            }
            AluOp::Or => a | b,
            AluOp::And => a & b,
            AluOp::Xor => a ^ b,
            AluOp::Lsh => a << (b & 63),
            AluOp::Rsh => a >> (b & 63),
            AluOp::Arsh => ((a as i64) >> (b & 63)) as u64,
            AluOp::Mov => b,
            AluOp::MovSx(bits) => sext(b, bits as u32),
        },
        Width::W32 => {
            let (x, y) = (a as u32, b as u32);
            (match op {
                AluOp::Add => x.wrapping_add(y),
                AluOp::Sub => x.wrapping_sub(y),
                AluOp::Mul => x.wrapping_mul(y),
                AluOp::Div => x.checked_div(y).unwrap_or(0),
                AluOp::SDiv => {
                    if y == 0 {
                        0
                    } else {
                        (x as i32).wrapping_div(y as i32) as u32
                    }
                }
                AluOp::Mod => x.checked_rem(y).unwrap_or(x),
                AluOp::SMod => {
                    if y == 0 {
                        x
                    } else {
                        (x as i32).wrapping_rem(y as i32) as u32
                    }
                }
                AluOp::Or => x | y,
                AluOp::And => x & y,
                AluOp::Xor => x ^ y,
                AluOp::Lsh => x << (y & 31),
                AluOp::Rsh => x >> (y & 31),
                AluOp::Arsh => ((x as i32) >> (y & 31)) as u32,
                AluOp::Mov => y,
                AluOp::MovSx(bits) => sext(b, bits as u32) as u32,
            }) as u64
        }
    }
}

/// Concrete condition (RFC 9669).
pub fn holds(cond: Cond, width: Width, a: u64, b: u64) -> bool {
    let (a, b, sa, sb) = match width {
        Width::W64 => (a, b, a as i64, b as i64),
        Width::W32 => (
            a as u32 as u64,
            b as u32 as u64,
            a as u32 as i32 as i64,
            b as u32 as i32 as i64,
        ),
    };
    match cond {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::Gt => a > b,
        Cond::Ge => a >= b,
        Cond::Lt => a < b,
        Cond::Le => a <= b,
        Cond::Set => a & b != 0,
        Cond::SGt => sa > sb,
        Cond::SGe => sa >= sb,
        Cond::SLt => sa < sb,
        Cond::SLe => sa <= sb,
    }
}

impl Machine<'_> {
    fn reg(&self, pc: usize, r: Reg) -> Result<V, Violation> {
        let v = self.frames[self.frames.len() - 1].regs[r.index()];
        if v == V::Uninit {
            return Err(Violation::UninitRegister { pc, reg: r.0 });
        }
        Ok(v)
    }

    fn set(&mut self, r: Reg, v: V) {
        let last = self.frames.len() - 1;
        self.frames[last].regs[r.index()] = v;
    }

    /// The cells a pointer access touches, after the bounds check.
    fn cells(
        &mut self,
        pc: usize,
        ptr: V,
        off: i64,
        size: usize,
        write: bool,
    ) -> Result<(&mut [Cell], bool), Violation> {
        let V::Ptr(place, base) = ptr else {
            return Err(Violation::NotAPointer { pc });
        };
        let start = base + off;
        let oob = Violation::OutOfBounds {
            pc,
            place,
            offset: start,
            size,
        };
        match place {
            Place::Context => {
                let ctx = &self.config.context;
                let ranges = if write { &ctx.writable } else { &ctx.readable };
                if !ctx.covers(ranges, start, start + size as i64) {
                    return Err(
                        if write && ctx.covers(&ctx.readable, start, start + size as i64) {
                            Violation::NotWritable { pc, offset: start }
                        } else {
                            oob
                        },
                    );
                }
                Ok((&mut self.ctx[start as usize..start as usize + size], true))
            }
            Place::Stack(frame) => {
                if frame >= self.frames.len() {
                    return Err(Violation::StackPointerToDeadFrame { pc });
                }
                if start < -512 || start + size as i64 > 0 {
                    return Err(oob);
                }
                let i = (start + 512) as usize;
                Ok((&mut self.frames[frame].stack[i..i + size], false))
            }
            Place::MapValue { map, entry } => {
                let value = &mut self.maps[map as usize][entry];
                if start < 0 || start + size as i64 > value.len() as i64 {
                    return Err(oob);
                }
                Ok((&mut value[start as usize..start as usize + size], true))
            }
        }
    }

    fn load(&mut self, pc: usize, ptr: V, off: i64, size: usize) -> Result<V, Violation> {
        let (cells, _) = self.cells(pc, ptr, off, size, false)?;
        if let Cell::PtrPart(p, 0) = cells[0] {
            if size == 8
                && cells
                    .iter()
                    .enumerate()
                    .all(|(i, c)| *c == Cell::PtrPart(p, i as u8))
            {
                return Ok(p);
            }
        }
        let mut v = 0u64;
        for (i, c) in cells.iter().enumerate() {
            match c {
                Cell::Byte(b) => v |= (*b as u64) << (8 * i),
                Cell::Uninit => return Err(Violation::UninitMemory { pc }),
                Cell::PtrPart(..) => return Err(Violation::PartialPointer { pc }),
            }
        }
        Ok(V::Num(v))
    }

    fn store(&mut self, pc: usize, ptr: V, off: i64, size: usize, v: V) -> Result<(), Violation> {
        let frames = self.frames.len();
        let (cells, shared) = self.cells(pc, ptr, off, size, true)?;
        match v {
            V::Num(n) => {
                for (i, c) in cells.iter_mut().enumerate() {
                    *c = Cell::Byte((n >> (8 * i)) as u8);
                }
                Ok(())
            }
            V::Ptr(..) | V::Map(_) => {
                if shared {
                    return Err(Violation::PointerLeak { pc });
                }
                if size != 8 {
                    return Err(Violation::PartialPointer { pc });
                }
                if let (V::Ptr(Place::Stack(pointee), _), V::Ptr(Place::Stack(holder), _)) =
                    (v, ptr)
                {
                    if pointee > holder || pointee >= frames {
                        return Err(Violation::StackPointerToDeadFrame { pc });
                    }
                }
                for (i, c) in cells.iter_mut().enumerate() {
                    *c = Cell::PtrPart(v, i as u8);
                }
                Ok(())
            }
            V::Uninit => Err(Violation::UninitRegister { pc, reg: 255 }),
        }
    }

    fn readable(&mut self, pc: usize, ptr: V, size: usize) -> Result<(), Violation> {
        if size == 0 {
            return Ok(());
        }
        let (cells, _) = self.cells(pc, ptr, 0, size, false)?;
        for c in cells.iter() {
            match c {
                Cell::Byte(_) => {}
                Cell::Uninit => return Err(Violation::UninitMemory { pc }),
                Cell::PtrPart(..) => return Err(Violation::PartialPointer { pc }),
            }
        }
        Ok(())
    }

    fn scalar(&self, pc: usize, r: Reg) -> Result<u64, Violation> {
        match self.reg(pc, r)? {
            V::Num(n) => Ok(n),
            _ => Err(Violation::PointerLeak { pc }),
        }
    }

    fn helper(&mut self, pc: usize, id: i64) -> Result<V, Violation> {
        let Some(spec) = u32::try_from(id).ok().and_then(|i| self.config.helper(i)) else {
            return Err(Violation::BadHelper { pc, id });
        };
        let spec = spec.clone();
        let r = |n: u8| Reg(n);
        let map_of = |m: &Machine, pc| match m.reg(pc, r(1)) {
            Ok(V::Map(map)) => Ok(map),
            Ok(_) => Err(Violation::BadHelper { pc, id }),
            Err(e) => Err(e),
        };
        let result = match spec.id {
            ebpf::helpers::id::MAP_LOOKUP_ELEM
            | ebpf::helpers::id::MAP_DELETE_ELEM
            | ebpf::helpers::id::MAP_UPDATE_ELEM => {
                let map = map_of(self, pc)?;
                let key_size = self.config.maps[map as usize].key_size as usize;
                let value_size = self.config.maps[map as usize].value_size as usize;
                let key = self.reg(pc, r(2))?;
                self.readable(pc, key, key_size)?;
                match spec.id {
                    ebpf::helpers::id::MAP_LOOKUP_ELEM => {
                        if self.rng.next() % 3 == 0 {
                            V::Num(0)
                        } else {
                            let entry = (self.rng.next() % MAP_ENTRIES as u64) as usize;
                            V::Ptr(Place::MapValue { map, entry }, 0)
                        }
                    }
                    ebpf::helpers::id::MAP_UPDATE_ELEM => {
                        let value = self.reg(pc, r(3))?;
                        self.readable(pc, value, value_size)?;
                        self.scalar(pc, r(4))?;
                        V::Num(0)
                    }
                    _ => V::Num(0),
                }
            }
            ebpf::helpers::id::TRACE_PRINTK => {
                let buf = self.reg(pc, r(1))?;
                let size = self.scalar(pc, r(2))?;
                self.readable(pc, buf, size as usize)?;
                for n in 3..=5 {
                    self.scalar(pc, r(n))?;
                }
                V::Num(size)
            }
            ebpf::helpers::id::RINGBUF_OUTPUT => {
                map_of(self, pc)?;
                let buf = self.reg(pc, r(2))?;
                let size = self.scalar(pc, r(3))?;
                self.readable(pc, buf, size as usize)?;
                self.scalar(pc, r(4))?;
                V::Num(0)
            }
            _ if spec.args.is_empty() => V::Num(self.rng.next()),
            _ => return Err(Violation::BadHelper { pc, id }),
        };
        for n in 1..=5 {
            self.set(r(n), V::Uninit);
        }
        Ok(result)
    }
}

/// Runs `program` on a context holding `ctx_bytes` (cut or zero-padded to the configured
/// size), with at most `budget` instructions; returns r0 or the first violation.
pub fn run(
    program: &[ebpf::insn::RawInsn],
    config: &VerifierConfig,
    ctx_bytes: &[u8],
    seed: u64,
    budget: u64,
) -> Result<u64, Violation> {
    let prog = decode_program(program).map_err(|_| Violation::Undecodable)?;
    let mut ctx = vec![Cell::Byte(0); config.context.size as usize];
    for (c, b) in ctx.iter_mut().zip(ctx_bytes) {
        *c = Cell::Byte(*b);
    }
    let mut regs = [V::Uninit; 11];
    regs[1] = V::Ptr(Place::Context, 0);
    regs[10] = V::Ptr(Place::Stack(0), 0);
    let mut m = Machine {
        config,
        ctx,
        maps: config
            .maps
            .iter()
            .map(|d| vec![vec![Cell::Byte(0); d.value_size as usize]; MAP_ENTRIES])
            .collect(),
        frames: vec![Frame {
            regs,
            stack: vec![Cell::Uninit; 512],
            return_pc: 0,
        }],
        rng: Rng(seed | 1),
    };
    let mut pc = 0usize;
    let mut steps = 0u64;
    loop {
        steps += 1;
        if steps > budget {
            return Err(Violation::BudgetExceeded { steps });
        }
        let Some(insn) = prog.get(pc).copied() else {
            return Err(Violation::BadCall { pc });
        };
        let operand = |m: &Machine, src: Operand| match src {
            Operand::Imm(i) => Ok(V::Num(i as i64 as u64)),
            Operand::Reg(r) => m.reg(pc, r),
        };
        match insn {
            Insn::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let b = operand(&m, src)?;
                let result = match (op, width, b) {
                    (AluOp::Mov, Width::W64, v) => v,
                    (_, _, b) => {
                        let a = if op == AluOp::Mov || matches!(op, AluOp::MovSx(_)) {
                            V::Num(0)
                        } else {
                            m.reg(pc, dst)?
                        };
                        match (a, b, width, op) {
                            (V::Num(x), V::Num(y), _, _) => V::Num(alu(op, width, x, y)),
                            (V::Ptr(p, o), V::Num(y), Width::W64, AluOp::Add) => {
                                V::Ptr(p, o.wrapping_add(y as i64))
                            }
                            (V::Ptr(p, o), V::Num(y), Width::W64, AluOp::Sub) => {
                                V::Ptr(p, o.wrapping_sub(y as i64))
                            }
                            (V::Num(x), V::Ptr(p, o), Width::W64, AluOp::Add) => {
                                V::Ptr(p, o.wrapping_add(x as i64))
                            }
                            (V::Ptr(p, o), V::Ptr(q, s), Width::W64, AluOp::Sub) if p == q => {
                                V::Num(o.wrapping_sub(s) as u64)
                            }
                            _ => return Err(Violation::PointerLaundering { pc }),
                        }
                    }
                };
                m.set(dst, result);
                pc += 1;
            }
            Insn::Neg { width, dst } => {
                let V::Num(x) = m.reg(pc, dst)? else {
                    return Err(Violation::PointerLaundering { pc });
                };
                m.set(dst, V::Num(alu(AluOp::Sub, width, 0, x)));
                pc += 1;
            }
            Insn::End { order, bits, dst } => {
                let V::Num(x) = m.reg(pc, dst)? else {
                    return Err(Violation::PointerLaundering { pc });
                };
                let v = match (order, bits) {
                    (ByteOrder::ToLittle, 16) => x & 0xffff,
                    (ByteOrder::ToLittle, 32) => x & 0xffff_ffff,
                    (ByteOrder::ToLittle, _) => x,
                    (_, 16) => (x as u16).swap_bytes() as u64,
                    (_, 32) => (x as u32).swap_bytes() as u64,
                    _ => x.swap_bytes(),
                };
                m.set(dst, V::Num(v));
                pc += 1;
            }
            Insn::LoadImm64 { dst, src, imm } => {
                let v = match src {
                    lddw_src::IMM64 => V::Num(imm),
                    lddw_src::MAP_BY_FD | lddw_src::MAP_BY_INDEX => V::Map(imm as u32 as u16),
                    lddw_src::MAP_VALUE_BY_FD | lddw_src::MAP_VALUE_BY_INDEX => V::Ptr(
                        Place::MapValue {
                            map: imm as u32 as u16,
                            entry: 0,
                        },
                        (imm >> 32) as i64,
                    ),
                    _ => return Err(Violation::BadCall { pc }),
                };
                m.set(dst, v);
                pc += 2;
            }
            Insn::LoadImm64Tail => return Err(Violation::BadCall { pc }),
            Insn::Load {
                size,
                sign_extend,
                dst,
                base,
                off,
            } => {
                let b = m.reg(pc, base)?;
                let mut v = m.load(pc, b, off as i64, size.bytes())?;
                if sign_extend {
                    if let V::Num(n) = v {
                        v = V::Num(sext(n, size.bytes() as u32 * 8));
                    }
                }
                m.set(dst, v);
                pc += 1;
            }
            Insn::Store {
                size,
                base,
                off,
                src,
            } => {
                let v = operand(&m, src)?;
                let b = m.reg(pc, base)?;
                m.store(pc, b, off as i64, size.bytes(), v)?;
                pc += 1;
            }
            Insn::Atomic {
                size,
                op,
                fetch,
                base,
                off,
                src,
            } => {
                let b = m.reg(pc, base)?;
                let bytes = size.bytes();
                let V::Num(old) = m.load(pc, b, off as i64, bytes)? else {
                    return Err(Violation::PartialPointer { pc });
                };
                let V::Num(x) = m.reg(pc, src)? else {
                    return Err(Violation::PointerLeak { pc });
                };
                let width = if bytes == 8 { Width::W64 } else { Width::W32 };
                let new = match op {
                    AtomicOp::Add => alu(AluOp::Add, width, old, x),
                    AtomicOp::Or => alu(AluOp::Or, width, old, x),
                    AtomicOp::And => alu(AluOp::And, width, old, x),
                    AtomicOp::Xor => alu(AluOp::Xor, width, old, x),
                    AtomicOp::Xchg => x,
                    AtomicOp::CmpXchg => {
                        let V::Num(expected) = m.reg(pc, Reg(0))? else {
                            return Err(Violation::PointerLeak { pc });
                        };
                        let mask = if bytes == 8 { u64::MAX } else { 0xffff_ffff };
                        if old & mask == expected & mask {
                            x
                        } else {
                            old
                        }
                    }
                };
                m.store(pc, b, off as i64, bytes, V::Num(new))?;
                if fetch {
                    let dst = if op == AtomicOp::CmpXchg { Reg(0) } else { src };
                    m.set(dst, V::Num(old));
                }
                pc += 1;
            }
            Insn::LegacyPacketLoad { .. } => return Err(Violation::BadCall { pc }),
            Insn::Ja { offset } => pc = (pc as i64 + 1 + offset as i64) as usize,
            Insn::Jump {
                width,
                cond,
                dst,
                src,
                offset,
            } => {
                let a = m.reg(pc, dst)?;
                let b = operand(&m, src)?;
                let taken = match (a, b) {
                    (V::Num(x), V::Num(y)) => holds(cond, width, x, y),
                    // A pointer against 0: compare as a non-null address.
                    (V::Ptr(..), V::Num(0)) => holds(cond, width, 1, 0),
                    (V::Num(0), V::Ptr(..)) => holds(cond, width, 0, 1),
                    // Same region: addresses compare like their (signed) offsets.
                    (V::Ptr(p, o), V::Ptr(q, s)) if p == q => {
                        let signed = match cond {
                            Cond::Gt => Cond::SGt,
                            Cond::Ge => Cond::SGe,
                            Cond::Lt => Cond::SLt,
                            Cond::Le => Cond::SLe,
                            other => other,
                        };
                        holds(signed, width, o as u64, s as u64)
                    }
                    _ => return Err(Violation::PointerLeak { pc }),
                };
                pc = if taken {
                    (pc as i64 + 1 + offset as i64) as usize
                } else {
                    pc + 1
                };
            }
            Insn::Call(CallTarget::Helper(id)) => {
                let v = m.helper(pc, id as i64)?;
                m.set(Reg(0), v);
                pc += 1;
            }
            Insn::Call(CallTarget::Register(r)) => {
                let V::Num(id) = m.reg(pc, r)? else {
                    return Err(Violation::BadCall { pc });
                };
                let v = m.helper(pc, id as i64)?;
                m.set(Reg(0), v);
                pc += 1;
            }
            Insn::Call(CallTarget::HelperByBtfId(_)) => return Err(Violation::BadCall { pc }),
            Insn::Call(CallTarget::Local(imm)) => {
                let caller = m.frames.len() - 1;
                let mut regs = [V::Uninit; 11];
                regs[1..6].copy_from_slice(&m.frames[caller].regs[1..6]);
                regs[10] = V::Ptr(Place::Stack(caller + 1), 0);
                m.frames.push(Frame {
                    regs,
                    stack: vec![Cell::Uninit; 512],
                    return_pc: pc + 1,
                });
                if m.frames.len() > config.max_call_depth {
                    return Err(Violation::BadCall { pc });
                }
                pc = (pc as i64 + 1 + imm as i64) as usize;
            }
            Insn::Exit => {
                let r0 = m.reg(pc, Reg(0))?;
                if m.frames.len() == 1 {
                    return match r0 {
                        V::Num(n) => Ok(n),
                        _ => Err(Violation::PointerLeak { pc }),
                    };
                }
                let depth = m.frames.len() - 1;
                if let V::Ptr(Place::Stack(f), _) = r0 {
                    if f >= depth {
                        return Err(Violation::StackPointerToDeadFrame { pc });
                    }
                }
                let callee = m.frames.pop().ok_or(Violation::BadCall { pc })?;
                let last = m.frames.len() - 1;
                let frame = &mut m.frames[last];
                frame.regs[0] = r0;
                for n in 1..=5 {
                    frame.regs[n] = V::Uninit;
                }
                pc = callee.return_pc;
            }
        }
    }
}
