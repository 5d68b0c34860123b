//! Unit tests of the whole verifier: one program per rejection reason, and accepted programs
//! that look risky but are safe.

use alloc::vec::Vec;

use crate::config::{ByteRange, ContextDescriptor, MapDef, VerifierConfig};
use crate::error::VerifyErrorKind as K;
use crate::verify;
use ebpf::insn::RawInsn;

/// Tiny instruction builders (raw encodings, so the tests depend on no assembler).
pub mod b {
    use ebpf::insn::RawInsn;
    pub const ADD: u8 = 0x00;
    pub const SUB: u8 = 0x10;
    pub const MUL: u8 = 0x20;
    pub const DIV: u8 = 0x30;
    pub const OR: u8 = 0x40;
    pub const AND: u8 = 0x50;
    pub const LSH: u8 = 0x60;
    pub const MOD: u8 = 0x90;
    pub const JEQ: u8 = 0x10;
    pub const JGT: u8 = 0x20;
    pub const JGE: u8 = 0x30;
    pub const JNE: u8 = 0x50;
    pub const JLT: u8 = 0xa0;
    pub const W: u8 = 0x00;
    pub const H: u8 = 0x08;
    pub const B: u8 = 0x10;
    pub const DW: u8 = 0x18;

    pub fn mov(dst: u8, imm: i32) -> RawInsn {
        RawInsn::new(0xb7, dst, 0, 0, imm)
    }
    pub fn movr(dst: u8, src: u8) -> RawInsn {
        RawInsn::new(0xbf, dst, src, 0, 0)
    }
    pub fn mov32r(dst: u8, src: u8) -> RawInsn {
        RawInsn::new(0xbc, dst, src, 0, 0)
    }
    pub fn alu(op: u8, dst: u8, imm: i32) -> RawInsn {
        RawInsn::new(op | 0x07, dst, 0, 0, imm)
    }
    pub fn alur(op: u8, dst: u8, src: u8) -> RawInsn {
        RawInsn::new(op | 0x0f, dst, src, 0, 0)
    }
    pub fn alu32(op: u8, dst: u8, imm: i32) -> RawInsn {
        RawInsn::new(op | 0x04, dst, 0, 0, imm)
    }
    pub fn ldx(size: u8, dst: u8, src: u8, off: i16) -> RawInsn {
        RawInsn::new(0x61 | size, dst, src, off, 0)
    }
    pub fn stx(size: u8, dst: u8, src: u8, off: i16) -> RawInsn {
        RawInsn::new(0x63 | size, dst, src, off, 0)
    }
    pub fn st(size: u8, dst: u8, off: i16, imm: i32) -> RawInsn {
        RawInsn::new(0x62 | size, dst, 0, off, imm)
    }
    pub fn jmp(op: u8, dst: u8, imm: i32, off: i16) -> RawInsn {
        RawInsn::new(op | 0x05, dst, 0, off, imm)
    }
    pub fn jmpr(op: u8, dst: u8, src: u8, off: i16) -> RawInsn {
        RawInsn::new(op | 0x0d, dst, src, off, 0)
    }
    pub fn jmp32(op: u8, dst: u8, imm: i32, off: i16) -> RawInsn {
        RawInsn::new(op | 0x06, dst, 0, off, imm)
    }
    pub fn ja(off: i16) -> RawInsn {
        RawInsn::new(0x05, 0, 0, off, 0)
    }
    pub fn call(id: i32) -> RawInsn {
        RawInsn::new(0x85, 0, 0, 0, id)
    }
    pub fn call_local(imm: i32) -> RawInsn {
        RawInsn::new(0x85, 0, 1, 0, imm)
    }
    pub fn exit() -> RawInsn {
        RawInsn::new(0x95, 0, 0, 0, 0)
    }
    pub fn lddw(dst: u8, src: u8, imm: u64) -> [RawInsn; 2] {
        [
            RawInsn::new(0x18, dst, src, 0, imm as u32 as i32),
            RawInsn::new(0, 0, 0, 0, (imm >> 32) as u32 as i32),
        ]
    }
}

use b::*;

fn config() -> VerifierConfig {
    let mut c = VerifierConfig::new(64).with_all_runtime_helpers();
    c.maps.push(MapDef {
        name: "counts".into(),
        key_size: 4,
        value_size: 16,
    });
    c
}

fn prog(parts: &[&[RawInsn]]) -> Vec<RawInsn> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

#[track_caller]
fn accepts(p: &[RawInsn]) {
    accepts_with(p, &config());
}

#[track_caller]
fn accepts_with(p: &[RawInsn], c: &VerifierConfig) {
    if let Err(e) = verify(p, c) {
        panic!("expected ACCEPT, got REJECT {e}");
    }
}

#[track_caller]
fn rejects(p: &[RawInsn], insn: usize, kind: K) {
    rejects_with(p, &config(), insn, kind);
}

#[track_caller]
fn rejects_with(p: &[RawInsn], c: &VerifierConfig, insn: usize, kind: K) {
    match verify(p, c) {
        Ok(s) => panic!("expected REJECT insn={insn} {kind}, got ACCEPT {s:?}"),
        Err(e) => {
            assert_eq!(
                (e.insn, &e.kind),
                (insn, &kind),
                "got REJECT {e} (wanted insn={insn}: {kind})"
            );
        }
    }
}

/// `r0 = map_lookup(map 0, &key on stack)` with key at fp-4: 7 slots, r0 nullable after.
fn lookup() -> Vec<RawInsn> {
    prog(&[
        &[st(W, 10, -4, 0), movr(2, 10), alu(ADD, 2, -4)],
        &lddw(1, 1, 0),
        &[call(1)],
    ])
}

// ---------------------------------------------------------------- structure

#[test]
fn empty_program() {
    rejects(&[], 0, K::EmptyProgram);
}

#[test]
fn too_many_instructions() {
    let mut c = config();
    c.max_insns = 2;
    rejects_with(
        &[mov(0, 0), mov(0, 0), exit()],
        &c,
        2,
        K::TooManyInstructions { count: 3, limit: 2 },
    );
}

#[test]
fn undefined_encoding() {
    rejects(
        &[RawInsn::new(0xff, 0, 0, 0, 0)],
        0,
        K::Decode(ebpf::insn::DecodeErrorKind::UnknownOpcode(0xff)),
    );
}

#[test]
fn jump_out_of_range() {
    rejects(
        &[mov(0, 0), ja(5), exit()],
        1,
        K::JumpOutOfRange { target: 7, len: 3 },
    );
}

#[test]
fn jump_into_lddw() {
    rejects(
        &prog(&[&[ja(1)], &lddw(0, 0, 1), &[exit()]]),
        0,
        K::JumpIntoLddw { target: 2 },
    );
}

#[test]
fn falls_off_end() {
    rejects(&[mov(0, 0)], 0, K::FallsOffEnd);
}

#[test]
fn unreachable_code() {
    rejects(&[mov(0, 0), exit(), mov(0, 1), exit()], 2, K::Unreachable);
}

// ---------------------------------------------------------------- registers

#[test]
fn uninitialised_register() {
    rejects(
        &[movr(0, 2), exit()],
        0,
        K::UninitialisedRegister {
            reg: ebpf::insn::Reg(2),
        },
    );
    rejects(
        &[exit()],
        0,
        K::UninitialisedRegister {
            reg: ebpf::insn::Reg(0),
        },
    );
}

#[test]
fn frame_pointer_is_read_only() {
    rejects(
        &[alu(ADD, 10, 8), mov(0, 0), exit()],
        0,
        K::FramePointerWrite,
    );
}

#[test]
fn registers_clobbered_by_helper_call() {
    rejects(
        &[mov(2, 1), call(5), movr(0, 2), exit()],
        2,
        K::UninitialisedRegister {
            reg: ebpf::insn::Reg(2),
        },
    );
}

// ---------------------------------------------------------------- stack

#[test]
fn uninitialised_stack_message() {
    let e = verify(&[ldx(DW, 0, 10, -16), exit()], &config()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "insn=0: read of 8 bytes at stack offset -16 which is not initialised"
    );
}

#[test]
fn partially_initialised_stack() {
    rejects(
        &[st(W, 10, -8, 1), ldx(DW, 0, 10, -8), exit()],
        1,
        K::UninitialisedStack {
            offset: -4,
            size: 4,
        },
    );
    accepts(&[st(W, 10, -8, 1), ldx(W, 0, 10, -8), exit()]);
}

#[test]
fn stack_out_of_bounds() {
    rejects(
        &[st(DW, 10, -520, 1), mov(0, 0), exit()],
        0,
        K::StackOutOfBounds {
            min: -520,
            max: -520,
            size: 8,
        },
    );
    rejects(
        &[st(W, 10, -2, 1), mov(0, 0), exit()],
        0,
        K::StackOutOfBounds {
            min: -2,
            max: -2,
            size: 4,
        },
    );
}

#[test]
fn variable_stack_write() {
    rejects(
        &[
            ldx(B, 2, 1, 0),
            alu(AND, 2, 7),
            movr(3, 10),
            alu(ADD, 3, -16),
            alur(ADD, 3, 2),
            st(B, 3, 0, 1),
            mov(0, 0),
            exit(),
        ],
        5,
        K::VariableStackWrite { min: -16, max: -9 },
    );
}

#[test]
fn spilled_pointer_reload_is_safe() {
    // Save the context pointer, clobber r1 by a call, reload it and read the context.
    accepts(&[
        stx(DW, 10, 1, -8),
        call(5),
        ldx(DW, 1, 10, -8),
        ldx(W, 0, 1, 4),
        exit(),
    ]);
}

#[test]
fn partial_pointer_read() {
    rejects(
        &[stx(DW, 10, 1, -8), ldx(W, 0, 10, -8), exit()],
        1,
        K::PartialPointerRead {
            offset: -8,
            size: 4,
        },
    );
}

#[test]
fn partial_pointer_spill() {
    rejects(
        &[stx(W, 10, 1, -8), mov(0, 0), exit()],
        0,
        K::PartialPointerSpill {
            offset: -8,
            size: 4,
        },
    );
    rejects(
        &[stx(DW, 10, 1, -12), mov(0, 0), exit()],
        0,
        K::PartialPointerSpill {
            offset: -12,
            size: 8,
        },
    );
}

#[test]
fn spilled_scalar_keeps_its_range() {
    // A bounded index saved to the stack and reloaded still bounds a map access.
    let p = prog(&[
        &lookup(),
        &[
            jmp(JNE, 0, 0, 2),
            mov(0, 0),
            exit(),
            ldx(B, 2, 0, 0), // 10
            alu(AND, 2, 7),
            stx(DW, 10, 2, -16),
            call(5),
            ldx(DW, 2, 10, -16),
            // r0 was clobbered by the call: redo the lookup is too long; use the stack.
            movr(3, 10),
            alu(ADD, 3, -24),
            alur(ADD, 3, 2),
            ldx(B, 0, 3, 0),
            exit(),
        ],
    ]);
    // The bytes at fp-24..fp-17 are not initialised: the reload's range proves the read
    // lands there, which is rejected as uninitialised, not out of bounds.
    rejects(
        &p,
        17,
        K::UninitialisedStack {
            offset: -24,
            size: 8,
        },
    );
    let mut q = p.clone();
    q.insert(0, st(DW, 10, -24, 0));
    // After initialising them the same program is accepted (all jumps are relative and
    // the inserted slot is before them).
    accepts(&q);
}

#[test]
fn stack_pointer_escape_and_return() {
    // main: r1 = fp-8; call f; r0 = 0; exit.  f: *(u64 *)(r1) = r10 (callee's frame).
    rejects(
        &[
            movr(1, 10),
            alu(ADD, 1, -8),
            call_local(2),
            mov(0, 0),
            exit(),
            stx(DW, 1, 10, 0),
            mov(0, 0),
            exit(),
        ],
        5,
        K::StackPointerEscape,
    );
    rejects(
        &[call_local(1), exit(), movr(0, 10), exit()],
        3,
        K::ReturnsStackPointer,
    );
}

// ---------------------------------------------------------------- context

#[test]
fn context_bounds_and_writes() {
    rejects(
        &[ldx(DW, 0, 1, 60), exit()],
        0,
        K::ContextNotReadable {
            min: 60,
            max: 60,
            size: 8,
        },
    );
    rejects(
        &[st(W, 1, 0, 1), mov(0, 0), exit()],
        0,
        K::ContextNotWritable {
            min: 0,
            max: 0,
            size: 4,
        },
    );
    let mut c = config();
    c.context = ContextDescriptor {
        size: 64,
        readable: alloc::vec![ByteRange::new(0, 64)],
        writable: alloc::vec![ByteRange::new(8, 16)],
    };
    accepts_with(&[st(DW, 1, 8, 1), mov(0, 0), exit()], &c);
    rejects_with(
        &[stx(DW, 1, 1, 8), mov(0, 0), exit()],
        &c,
        0,
        K::PointerLeakStore {
            region: crate::error::RegionName::Context,
        },
    );
}

// ---------------------------------------------------------------- maps

#[test]
fn checked_map_value_is_safe() {
    let p = prog(&[
        &lookup(),
        &[
            jmp(JEQ, 0, 0, 4),
            ldx(DW, 2, 0, 8),
            alu(ADD, 2, 1),
            stx(DW, 0, 2, 8),
            mov(0, 0),
            exit(),
        ],
    ]);
    // The null edge reaches `exit` with r0 = 0 (a scalar): accepted.
    accepts(&p);
}

#[test]
fn possibly_null_dereference() {
    let p = prog(&[&lookup(), &[ldx(DW, 2, 0, 0), mov(0, 0), exit()]]);
    rejects(
        &p,
        6,
        K::PossiblyNullDereference {
            reg: ebpf::insn::Reg(0),
        },
    );
}

#[test]
fn null_check_through_a_copy() {
    let p = prog(&[
        &lookup(),
        &[
            movr(6, 0),
            jmp(JEQ, 0, 0, 2),
            ldx(DW, 0, 6, 0),
            exit(),
            mov(0, 0),
            exit(),
        ],
    ]);
    accepts(&p);
}

#[test]
fn map_value_bounds() {
    let p = prog(&[
        &lookup(),
        &[
            jmp(JEQ, 0, 0, 2),
            ldx(DW, 2, 0, 12),
            exit(),
            mov(0, 0),
            exit(),
        ],
    ]);
    rejects(
        &p,
        7,
        K::MapValueOutOfBounds {
            min: 12,
            max: 12,
            size: 8,
            value_size: 16,
        },
    );
}

#[test]
fn variable_map_offset_needs_a_bound() {
    let body = |mask: i32| {
        prog(&[
            &lookup(),
            &[
                jmp(JEQ, 0, 0, 5),
                ldx(B, 2, 0, 0),
                alu(AND, 2, mask),
                alur(ADD, 0, 2),
                ldx(B, 0, 0, 0),
                exit(),
                mov(0, 0),
                exit(),
            ],
        ])
    };
    accepts(&body(15));
    rejects(
        &body(31),
        10,
        K::MapValueOutOfBounds {
            min: 0,
            max: 31,
            size: 1,
            value_size: 16,
        },
    );
}

#[test]
fn pointer_stored_into_map_value() {
    let p = prog(&[
        &lookup(),
        &[jmp(JEQ, 0, 0, 1), stx(DW, 0, 10, 0), mov(0, 0), exit()],
    ]);
    rejects(
        &p,
        7,
        K::PointerLeakStore {
            region: crate::error::RegionName::MapValue,
        },
    );
}

#[test]
fn nullable_pointer_arithmetic() {
    let p = prog(&[&lookup(), &[alu(ADD, 0, 4), mov(0, 0), exit()]]);
    rejects(
        &p,
        6,
        K::NullablePointerArithmetic {
            reg: ebpf::insn::Reg(0),
        },
    );
}

#[test]
fn unknown_map_and_unsupported_lddw() {
    rejects(
        &prog(&[&lddw(1, 1, 3), &[mov(0, 0), exit()]]),
        0,
        K::UnknownMap { index: 3 },
    );
    rejects(
        &prog(&[&lddw(1, 4, 0), &[mov(0, 0), exit()]]),
        0,
        K::UnsupportedLddw { src: 4 },
    );
}

// ---------------------------------------------------------------- pointers

#[test]
fn not_a_pointer() {
    rejects(
        &[mov(2, 100), ldx(B, 0, 2, 0), exit()],
        1,
        K::NotAPointer {
            reg: ebpf::insn::Reg(2),
            class: crate::error::ValueClass::Scalar,
        },
    );
}

#[test]
fn pointer_leak_at_exit() {
    rejects(
        &[movr(0, 1), exit()],
        1,
        K::PointerLeakExit {
            class: crate::error::ValueClass::ContextPointer,
        },
    );
}

#[test]
fn forbidden_pointer_arithmetic() {
    rejects(
        &[alu(MUL, 1, 2), mov(0, 0), exit()],
        0,
        K::ForbiddenPointerArithmetic {
            op: ebpf::insn::AluOp::Mul,
            class: crate::error::ValueClass::ContextPointer,
        },
    );
    rejects(
        &[alu(AND, 1, 0xff), movr(0, 1), exit()],
        0,
        K::ForbiddenPointerArithmetic {
            op: ebpf::insn::AluOp::And,
            class: crate::error::ValueClass::ContextPointer,
        },
    );
}

#[test]
fn pointer_truncation() {
    rejects(
        &[mov32r(0, 1), exit()],
        0,
        K::PointerTruncation {
            reg: ebpf::insn::Reg(1),
        },
    );
    rejects(
        &[alu32(ADD, 1, 4), mov(0, 0), exit()],
        0,
        K::PointerTruncation {
            reg: ebpf::insn::Reg(1),
        },
    );
}

#[test]
fn pointer_offset_too_large() {
    rejects(
        &[ldx(W, 2, 1, 0), alur(ADD, 1, 2), mov(0, 0), exit()],
        1,
        K::PointerOffsetTooLarge {
            min: 0,
            max: u32::MAX as i64,
        },
    );
}

#[test]
fn pointer_subtraction() {
    // Same region: a scalar difference (safe to return).
    accepts(&[
        movr(2, 10),
        alu(ADD, 2, -8),
        movr(0, 10),
        alur(SUB, 0, 2),
        exit(),
    ]);
    rejects(
        &[movr(0, 10), alur(SUB, 0, 1), exit()],
        1,
        K::PointerSubtractionAcrossRegions,
    );
}

#[test]
fn pointer_comparison() {
    rejects(
        &[jmp(JGT, 1, 5, 0), mov(0, 0), exit()],
        0,
        K::PointerComparison {
            reg: ebpf::insn::Reg(1),
            class: crate::error::ValueClass::ContextPointer,
        },
    );
    rejects(
        &[jmp32(JEQ, 1, 0, 0), mov(0, 0), exit()],
        0,
        K::PointerComparison {
            reg: ebpf::insn::Reg(1),
            class: crate::error::ValueClass::ContextPointer,
        },
    );
    // A non-null pointer compared with 0: only one edge is possible.
    accepts(&[jmp(JEQ, 1, 0, 1), mov(0, 0), exit()]);
    // Unsigned comparisons of a non-null pointer with 0 have a known outcome: `p < 0`
    // never holds, so r0 is set on the only path.
    accepts(&[jmp(JLT, 1, 0, 1), mov(0, 1), exit()]);
}

#[test]
fn atomics() {
    rejects(
        &[mov(2, 1), RawInsn::new(0xdb, 1, 2, 0, 0), mov(0, 0), exit()],
        1,
        K::AtomicNotAllowed {
            region: crate::error::RegionName::Context,
        },
    );
    // Atomic add on an initialised stack slot, with fetch: fine.
    accepts(&[
        st(DW, 10, -8, 5),
        mov(2, 1),
        RawInsn::new(0xdb, 10, 2, -8, 1),
        movr(0, 2),
        exit(),
    ]);
    // Found by the differential fuzzer: fetch-add on a spilled pointer.
    rejects(
        &[
            stx(DW, 10, 1, -8),
            mov(2, 1),
            RawInsn::new(0xdb, 10, 2, -8, 1),
            mov(0, 0),
            exit(),
        ],
        2,
        K::AtomicOnPointer {
            class: crate::error::ValueClass::ContextPointer,
        },
    );
    rejects(
        &[
            mov(2, 1),
            RawInsn::new(0xdb, 10, 2, -8, 0),
            mov(0, 0),
            exit(),
        ],
        1,
        K::UninitialisedStack {
            offset: -8,
            size: 8,
        },
    );
}

// ---------------------------------------------------------------- helpers and calls

#[test]
fn helper_not_allowed() {
    rejects(&[call(4), exit()], 0, K::HelperNotAllowed { id: 4 });
}

#[test]
fn helper_argument_types() {
    // map_lookup_elem with a scalar where the map must be.
    rejects(
        &[mov(1, 0), movr(2, 10), call(1), mov(0, 0), exit()],
        2,
        K::HelperArgument {
            helper: 1,
            arg: 1,
            expected: crate::ArgType::MapPointer,
            found: crate::error::ValueClass::Scalar,
        },
    );
    // The key on the stack must be initialised.
    let p = prog(&[
        &[movr(2, 10), alu(ADD, 2, -4)],
        &lddw(1, 1, 0),
        &[call(1), mov(0, 0), exit()],
    ]);
    rejects(
        &p,
        4,
        K::UninitialisedStack {
            offset: -4,
            size: 4,
        },
    );
}

#[test]
fn helper_argument_without_map() {
    let mut c = config();
    c.helpers.push(crate::HelperSpec {
        id: 200,
        name: "bad".into(),
        args: alloc::vec![crate::ArgType::MapKey],
        ret: crate::RetType::Scalar,
    });
    rejects_with(
        &[movr(1, 10), call(200), exit()],
        &c,
        1,
        K::HelperArgumentWithoutMap {
            helper: 200,
            arg: 1,
        },
    );
}

#[test]
fn helper_memory_size() {
    // trace_printk(buf, size, ...): the size must be bounded and fit the buffer.
    let head = [
        ldx(DW, 6, 1, 0),
        st(DW, 10, -8, 0),
        movr(1, 10),
        alu(ADD, 1, -8),
    ];
    let tail = [mov(3, 0), mov(4, 0), mov(5, 0), call(6), exit()];
    accepts(&prog(&[&head, &[mov(2, 8)], &tail]));
    rejects(
        &prog(&[&head, &[mov(2, 9)], &tail]),
        8,
        K::StackOutOfBounds {
            min: -8,
            max: -8,
            size: 9,
        },
    );
    rejects(
        &prog(&[&head, &[movr(2, 6)], &tail]),
        8,
        K::HelperSizeUnbounded { helper: 6, arg: 2 },
    );
}

#[test]
fn memory_argument_without_size() {
    // A malformed prototype (memory argument last) is rejected at the call, not trusted.
    let mut c = config();
    c.helpers.push(crate::HelperSpec {
        id: 201,
        name: "no_size".into(),
        args: alloc::vec![crate::ArgType::ReadableMemory],
        ret: crate::RetType::Scalar,
    });
    rejects_with(
        &[
            st(DW, 10, -8, 0),
            movr(1, 10),
            alu(ADD, 1, -8),
            call(201),
            exit(),
        ],
        &c,
        3,
        K::HelperSizeUnbounded {
            helper: 201,
            arg: 2,
        },
    );
}

#[test]
fn callx_needs_a_known_target() {
    let callx = |r: u8| RawInsn::new(0x8d, r, 0, 0, 0);
    accepts(&[mov(2, 5), callx(2), mov(0, 0), exit()]);
    rejects(
        &[ldx(B, 2, 1, 0), callx(2), mov(0, 0), exit()],
        1,
        K::IndirectCallUnknownTarget {
            reg: ebpf::insn::Reg(2),
        },
    );
}

#[test]
fn btf_helper_and_legacy_packet() {
    rejects(
        &[RawInsn::new(0x85, 0, 2, 0, 7), exit()],
        0,
        K::BtfHelperCall { id: 7 },
    );
    rejects(
        &[RawInsn::new(0x30, 0, 0, 0, 12), exit()],
        0,
        K::LegacyPacketAccess,
    );
}

#[test]
fn local_call_with_stack_argument() {
    // main writes fp-8, passes its address; f reads it and returns it + 1.
    accepts(&[
        st(DW, 10, -8, 41),
        movr(1, 10),
        alu(ADD, 1, -8),
        call_local(1),
        exit(),
        ldx(DW, 0, 1, 0),
        alu(ADD, 0, 1),
        exit(),
    ]);
}

#[test]
fn call_depth() {
    // Unbounded recursion: f calls f.
    let mut c = config();
    c.max_call_depth = 3;
    rejects_with(
        &[call_local(1), exit(), call_local(-1), exit()],
        &c,
        2,
        K::CallDepthExceeded { limit: 3 },
    );
}

// ---------------------------------------------------------------- loops and limits

#[test]
fn bounded_loop_is_accepted() {
    // for (i = 0; i < 100; i++) sum += i;
    let s = verify(
        &[
            mov(0, 0),
            mov(1, 0),
            alur(ADD, 0, 1),
            alu(ADD, 1, 1),
            jmp(JLT, 1, 100, -3),
            exit(),
        ],
        &config(),
    )
    .unwrap();
    assert!(s.states_explored > 300, "{s:?}");
}

#[test]
fn loop_bounded_by_input_is_accepted() {
    // n = ctx[0] & 31; for (i = 0; i < n; i++) ;
    accepts(&[
        ldx(B, 2, 1, 0),
        alu(AND, 2, 31),
        mov(1, 0),
        jmpr(JGE, 1, 2, 2),
        alu(ADD, 1, 1),
        ja(-3),
        mov(0, 0),
        exit(),
    ]);
}

#[test]
fn infinite_loop() {
    rejects(&[mov(0, 0), jmp(JEQ, 0, 0, -1), exit()], 1, K::InfiniteLoop);
    // A loop on an unknown value that never changes.
    rejects(
        &[ldx(W, 2, 1, 0), jmp(JNE, 2, 0, -1), mov(0, 0), exit()],
        1,
        K::InfiniteLoop,
    );
}

#[test]
fn complexity_limit() {
    // A loop whose state changes forever: i grows without bound.
    let mut c = config();
    c.complexity_limit = 10_000;
    let e = verify(
        &[
            mov(1, 0),
            alu(ADD, 1, 1),
            jmp(JNE, 1, 0, -2),
            mov(0, 0),
            exit(),
        ],
        &c,
    )
    .unwrap_err();
    assert_eq!(e.kind, K::ComplexityLimit { limit: 10_000 });
    assert!((1..=2).contains(&e.insn));
}

#[test]
fn too_many_pending_branches() {
    let mut c = config();
    c.max_pending_paths = 2;
    rejects_with(
        &[
            ldx(W, 2, 1, 0),
            ldx(W, 3, 1, 4),
            ldx(W, 4, 1, 8),
            jmp(JGT, 2, 5, 0),
            jmp(JGT, 3, 6, 0),
            jmp(JGT, 4, 7, 0),
            mov(0, 0),
            exit(),
        ],
        &c,
        5,
        K::TooManyPendingBranches { limit: 2 },
    );
}

// ---------------------------------------------------------------- arithmetic

#[test]
fn division_by_zero_is_allowed() {
    accepts(&[
        ldx(W, 2, 1, 0),
        mov(0, 10),
        alur(DIV, 0, 2),
        alur(MOD, 0, 2),
        exit(),
    ]);
}

#[test]
fn jmp32_refinement_bounds_an_index() {
    // w2 = ctx[0]; if w2 > 7 goto out; r3 = fp - 8 + r2 ... read one byte.
    accepts(&[
        st(DW, 10, -8, 0),
        ldx(W, 2, 1, 0),
        jmp32(JGT, 2, 7, 5),
        movr(3, 10),
        alu(ADD, 3, -8),
        alur(ADD, 3, 2),
        ldx(B, 0, 3, 0),
        exit(),
        mov(0, 0),
        exit(),
    ]);
}

#[test]
fn shifts_and_masks_bound_values() {
    // r2 = ctx[0] >> 60 is at most 15: an index into the 16-byte map value.
    let p = prog(&[
        &[movr(6, 1)],
        &lookup(),
        &[
            jmp(JEQ, 0, 0, 5),
            ldx(DW, 2, 6, 0),
            RawInsn::new(0x77, 2, 0, 0, 60),
            alur(ADD, 0, 2),
            ldx(B, 0, 0, 0),
            exit(),
            mov(0, 0),
            exit(),
        ],
    ]);
    accepts(&p);
    let _ = LSH;
    let _ = OR;
    let _ = JGE;
    let _ = H;
}

#[test]
fn summary_counts() {
    let s = verify(
        &[
            st(DW, 10, -24, 0),
            call_local(2),
            mov(0, 0),
            exit(),
            mov(0, 1),
            exit(),
        ],
        &config(),
    )
    .unwrap();
    assert_eq!(s.insns, 6);
    assert_eq!(s.max_stack_depth, 24);
    assert_eq!(s.max_call_depth, 2);
    assert_eq!(s.subprograms, 1);
}

#[test]
fn error_size_is_pinned_and_every_message_names_the_instruction() {
    // Errors travel through the model's retry loop and the extension history: keep them small.
    assert!(
        core::mem::size_of::<crate::VerifyError>() <= 48,
        "VerifyError grew to {} bytes",
        core::mem::size_of::<crate::VerifyError>()
    );
    let e = verify(&[exit()], &config()).unwrap_err();
    let text = alloc::format!("{e}");
    assert!(text.starts_with("insn=0: "), "{text}");
    assert!(text.len() > "insn=0: ".len() + 10, "{text}");
}

#[test]
fn hostile_entry_states_and_prototypes_do_not_panic() {
    use crate::scalar::Scalar;
    use crate::state::{Region, State, Value};
    let mut entry = State::entry();
    entry.frames[0].regs[2] = Value::Pointer {
        region: Region::Stack { frame: 7 },
        offset: Scalar::constant(0),
    };
    entry.frames[0].regs[3] = Value::Pointer {
        region: Region::Context,
        offset: Scalar::constant(i64::MIN as u64),
    };
    entry.frames[0].regs[4] = Value::MapPointer { map: 99 };
    // Each register is made uninitialised, so using it is a clean rejection.
    for (r, p) in [
        (2u8, ldx(B, 0, 2, 0)),
        (3, ldx(B, 0, 3, -1)),
        (4, movr(0, 4)),
    ] {
        let e = crate::verify_from(&[p, exit()], &config(), entry.clone()).unwrap_err();
        assert_eq!(
            e.kind,
            K::UninitialisedRegister {
                reg: ebpf::insn::Reg(r)
            }
        );
    }
    let mut c = config();
    c.helpers.push(crate::HelperSpec {
        id: 202,
        name: "too_many".into(),
        args: alloc::vec![crate::ArgType::Scalar; 7],
        ret: crate::RetType::Scalar,
    });
    rejects_with(&[call(202), exit()], &c, 0, K::HelperNotAllowed { id: 202 });
}

#[test]
fn pointer_loop_over_a_stack_buffer() {
    // for (p = fp - 64; p < fp; p += 8) *p = 0;   then read the first slot back.
    accepts(&[
        movr(2, 10),
        alu(ADD, 2, -64),
        jmpr(JGE, 2, 10, 3),
        st(DW, 2, 0, 0),
        alu(ADD, 2, 8),
        ja(-4),
        ldx(DW, 0, 10, -64),
        exit(),
    ]);
    // One step too far (p <= fp) writes at fp + 0: rejected.
    rejects(
        &[
            movr(2, 10),
            alu(ADD, 2, -64),
            jmpr(0xb0, 2, 10, 1),
            ja(3),
            st(DW, 2, 0, 0),
            alu(ADD, 2, 8),
            ja(-5),
            mov(0, 0),
            exit(),
        ],
        4,
        K::StackOutOfBounds {
            min: 0,
            max: 0,
            size: 8,
        },
    );
}
