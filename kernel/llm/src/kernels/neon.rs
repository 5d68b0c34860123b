//! NEON dot-product kernels for AArch64 (Cortex-A72 class: ARMv8.0, no `sdot`).
//!
//! Designed for what QEMU's TCG makes cheap, because that is where this kernel is measured and
//! most often run: integer vector operations that TCG inlines into the translated block
//! (`and`, shifts, `mul`/`mla` on 16-bit lanes, `sshl`, `smlal` into 64-bit lanes: 1-4 ns each
//! on the host), never the ones it runs through a helper call (`addp`, `tbl`: ~30 ns) or
//! through softfloat (every float operation: 10-30 ns per lane). Per-instruction costs measured
//! with qemu-aarch64 10.0.2 are in `fixed.rs`.
//!
//! Q4_0, Q4_1 and Q8_0 rows go four blocks (a "group", 128 weights) at a time:
//!
//! * integer part, per block: the packed weights are read as eight 16-bit lanes and cut into
//!   four vectors of one weight per lane (Q4: `and`/`ushr`; Q8_0: `shl`/`sshr` sign-extend the
//!   low and high byte); the activations are already 16-bit and in that order
//!   ([`super::PERMUTED`]), so `mul` + three `mla` on 16-bit lanes form the products (each lane
//!   sums at most 4 x 15 x 127 for Q4, 2 x 128 x 127 per accumulator for Q8_0: no overflow),
//!   and one `saddlv` the block's sum;
//! * scale part, per group: the four f16 headers are gathered into one register with lane
//!   moves, split into mantissa and exponent with integer operations, aligned with `sshl`, and
//!   multiplied into two 64-bit lanes with `smlal` ([`super::fixed`]): no float operation
//!   until the row's one conversion.
//!
//! A row whose length is not a multiple of four blocks ends with a group copied into a zeroed
//! stack buffer (zero scales add nothing), so every block takes the same path. The integers are
//! the portable kernels' own, so results agree to the bit.
//!
//! Q4_K and Q6_K (TinyLlama-class files) use NEON for the integer sums of each 16 weights
//! (`smull`/`smlal2`, one `saddlv`) and keep the portable kernels' scalar float steps (a few per
//! 256 weights), so they are bit-identical to the portable kernels as well.

#![allow(unsafe_code)]

use core::arch::aarch64::*;
use core::arch::asm;

use super::fixed::BlockScaling;
use super::{ActivationBlock, Activations, GroupScales};
use crate::quant::{
    q4_k_scale_min, GgmlType, Q4_0_BYTES, Q4_1_BYTES, Q4_K_BYTES, Q6_K_BYTES, Q8_0_BYTES, QK, QK_K,
};

/// `x` rounded to the nearest integer, ties away from zero (exactly `roundf`), saturated to
/// i32, with the hardware `fcvtas` (one instruction instead of libm's software rounding).
#[inline(always)]
pub fn round_to_i32(x: f32) -> i32 {
    let out: i32;
    // SAFETY: `fcvtas` converts a register; no memory access, available on every AArch64 FPU.
    unsafe {
        asm!("fcvtas {out:w}, {x:s}", x = in(vreg) x, out = lateout(reg) out, options(pure, nomem, nostack));
    }
    out
}

/// f16 bits to f32 with the hardware `fcvt` (exact, like the portable conversion).
#[inline(always)]
fn f16_hw(bits: u16) -> f32 {
    let out: f32;
    // SAFETY: `fmov` and `fcvt` only move and convert register values; no memory is touched
    // and every AArch64 CPU with FP (all the targets this module is compiled for) has them.
    unsafe {
        asm!(
            "fmov {tmp:s}, {inp:w}",
            "fcvt {out:s}, {tmp:h}",
            inp = in(reg) bits as u32,
            tmp = out(vreg) _,
            out = lateout(vreg) out,
            options(pure, nomem, nostack)
        );
    }
    out
}

#[inline(always)]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_hw(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// `out[i] = row i . act` for the rows of `rows` (`out.len()` rows of `row_bytes` bytes each,
/// `row_bytes` matching `act.len()`, as `super::dot_rows` checks). Returns `false` (writing
/// nothing) when `ty` has no NEON kernel or a buffer is shorter than the kernel reads, so the
/// caller falls back to the portable kernels.
pub fn dot_rows(
    ty: GgmlType,
    rows: &[u8],
    row_bytes: usize,
    scaling: &BlockScaling,
    act: &Activations,
    out: &mut [f32],
) -> bool {
    if row_bytes == 0 || rows.len() != out.len() * row_bytes {
        return false;
    }
    match ty {
        GgmlType::Q4_0 => fixed_rows::<Q4_0Groups>(rows, row_bytes, scaling, act, out),
        GgmlType::Q4_1 => fixed_rows::<Q4_1Groups>(rows, row_bytes, scaling, act, out),
        GgmlType::Q8_0 => fixed_rows::<Q8_0Groups>(rows, row_bytes, scaling, act, out),
        GgmlType::Q4_K | GgmlType::Q6_K => {
            for (o, r) in out.iter_mut().zip(rows.chunks_exact(row_bytes)) {
                match dot_k(ty, r, act) {
                    Some(v) => *o = v,
                    None => return false,
                }
            }
            true
        }
        _ => false,
    }
}

/// Zero bytes standing in for the missing blocks of a row's last group (at least the
/// largest block, Q8_0's 34 bytes): zero scales add nothing.
static ZERO_BLOCK: [u8; Q8_0_BYTES] = [0; Q8_0_BYTES];

/// A group kernel: four blocks of one 32-element format against four activation blocks.
trait GroupKernel {
    /// Bytes of one block.
    const BLOCK_BYTES: usize;

    /// `acc` plus the terms of the blocks at `blocks` against activation blocks `b..b + 4`.
    ///
    /// # Safety
    /// Each pointer must point to `BLOCK_BYTES` readable bytes. (Activation blocks `b..b + 4`
    /// and group `b / 4` are indexed with bounds checks, which `fixed_rows` makes sure pass.)
    unsafe fn group(
        acc: int64x2_t,
        blocks: [*const u8; 4],
        act: &Activations,
        b: usize,
        shifts: &Shifts,
    ) -> int64x2_t;
}

/// The rows of a 32-element format through its group kernel. Checks that the activations
/// hold every block a group may read; `false` when they do not.
fn fixed_rows<K: GroupKernel>(
    rows: &[u8],
    row_bytes: usize,
    scaling: &BlockScaling,
    act: &Activations,
    out: &mut [f32],
) -> bool {
    let block_bytes = K::BLOCK_BYTES;
    let blocks = act.len() / QK;
    let padded = blocks.div_ceil(4) * 4;
    if row_bytes != blocks * block_bytes
        || block_bytes > ZERO_BLOCK.len()
        || act.q16.len() < padded
        || act.groups.len() < padded / 4
    {
        return false;
    }
    let shifts = Shifts::new(scaling);
    let whole = blocks / 4;
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(row_bytes)) {
        let base = row.as_ptr();
        // SAFETY: block `k < blocks` is the row's bytes `k * block_bytes..(k + 1) *
        // block_bytes`; the last group's missing blocks are `ZERO_BLOCK`, at least as long
        // (checked above). Every group uses activation blocks `4g..4g + 4 <= padded`, present
        // by the check above. `vdupq` is register-only.
        let sum = unsafe {
            let mut acc = vdupq_n_s64(0);
            for g in 0..whole {
                let p = base.add(4 * g * block_bytes);
                let group = [
                    p,
                    p.add(block_bytes),
                    p.add(2 * block_bytes),
                    p.add(3 * block_bytes),
                ];
                acc = K::group(acc, group, act, 4 * g, &shifts);
            }
            if whole * 4 < blocks {
                let mut group = [ZERO_BLOCK.as_ptr(); 4];
                for (k, slot) in group.iter_mut().enumerate().take(blocks - whole * 4) {
                    *slot = base.add((whole * 4 + k) * block_bytes);
                }
                acc = K::group(acc, group, act, 4 * whole, &shifts);
            }
            sum_lanes(acc)
        };
        *o = scaling.finish(sum);
    }
    true
}

/// The per-product shift constants of [`BlockScaling`], broadcast to every lane.
struct Shifts {
    d: int32x4_t,
    m: int32x4_t,
    s: int32x4_t,
}

impl Shifts {
    fn new(scaling: &BlockScaling) -> Shifts {
        // SAFETY: register-only NEON (part of the aarch64 baseline).
        unsafe {
            Shifts {
                d: vdupq_n_s32(scaling.shift_d),
                m: vdupq_n_s32(scaling.shift_m),
                s: vdupq_n_s32(scaling.shift_s),
            }
        }
    }
}

/// 16 bytes from `p` with one `ld1 {v.16b}` (byte elements: valid at any alignment).
///
/// Written as asm because `aarch64-unknown-none` enables `strict-align`, under which LLVM
/// lowers `vld1q_u8` at an unknown alignment to sixteen byte loads and a trip through the
/// stack (measured: ~130 instructions for four blocks instead of 4 loads).
///
/// # Safety
/// `p` must point to 16 readable bytes.
#[inline(always)]
unsafe fn ld_u8x16(p: *const u8) -> uint8x16_t {
    let v: uint8x16_t;
    // SAFETY: the caller guarantees 16 readable bytes at `p`; `ld1` with byte elements has no
    // alignment requirement.
    unsafe {
        asm!(
            "ld1 {{{v:v}.16b}}, [{p}]",
            p = in(reg) p,
            v = out(vreg) v,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    v
}

/// 16 `i8` from `p` (see [`ld_u8x16`]).
///
/// # Safety
/// `p` must point to 16 readable bytes.
#[inline(always)]
unsafe fn ld_s8x16(p: *const i8) -> int8x16_t {
    // SAFETY: forwarded to the caller's guarantee.
    unsafe { vreinterpretq_s8_u8(ld_u8x16(p as *const u8)) }
}

/// 16 bytes at `p + OFFSET` with one `ldur q` (immediate offset, so no address arithmetic).
/// Unaligned access to normal memory is allowed: the kernel leaves SCTLR_EL1.A clear, as
/// Linux does for user space (where the host tests run).
///
/// # Safety
/// `p + OFFSET` must point to 16 readable bytes.
#[inline(always)]
unsafe fn ld_u8x16_at<const OFFSET: i32>(p: *const u8) -> uint8x16_t {
    let v: uint8x16_t;
    // SAFETY: the caller guarantees the 16 bytes; see above for alignment.
    unsafe {
        asm!(
            "ldur {v:q}, [{p}, #{offset}]",
            p = in(reg) p,
            offset = const OFFSET,
            v = out(vreg) v,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    v
}

/// Activation block `K` of the four at `a` as four registers, with two `ldp q` at immediate
/// offsets from one base register (free register choice, unlike a four-register `ld1`; see
/// [`ld_u8x16`] for why asm).
#[inline(always)]
fn ld_block<const K: usize>(a: &[ActivationBlock; 4]) -> [int16x8_t; 4] {
    let (b0, b1, b2, b3): (int16x8_t, int16x8_t, int16x8_t, int16x8_t);
    // SAFETY: `a` is a valid reference to four 64-byte blocks, 16-byte aligned by their type;
    // block K's 64 bytes are at offsets 64K..64K + 64, in bounds and aligned.
    unsafe {
        asm!(
            "ldp {b0:q}, {b1:q}, [{p}, #{first}]",
            "ldp {b2:q}, {b3:q}, [{p}, #{second}]",
            p = in(reg) a as *const [ActivationBlock; 4],
            first = const 64 * K,
            second = const 64 * K + 32,
            b0 = out(vreg) b0,
            b1 = out(vreg) b1,
            b2 = out(vreg) b2,
            b3 = out(vreg) b3,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    [b0, b1, b2, b3]
}

/// A group's fixed-point scale record as four registers: x_mantissa, x_shift, s_fix, q_sum.
#[inline(always)]
fn ld_group(group: &GroupScales) -> [int32x4_t; 4] {
    let (a, b, c, d): (int32x4_t, int32x4_t, int32x4_t, int32x4_t);
    // SAFETY: as in `ld_block`: a valid, 16-byte aligned 64-byte record.
    unsafe {
        asm!(
            "ldp {a:q}, {b:q}, [{p}]",
            "ldp {c:q}, {d:q}, [{p}, #32]",
            p = in(reg) group as *const GroupScales,
            a = out(vreg) a,
            b = out(vreg) b,
            c = out(vreg) c,
            d = out(vreg) d,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    [a, b, c, d]
}

/// The sum of the two 64-bit lanes, through general registers: left to LLVM this becomes
/// `addp d, v.2d`, which TCG runs as a helper call.
#[inline(always)]
fn sum_lanes(v: int64x2_t) -> i64 {
    let sum: i64;
    // SAFETY: register moves and an add; no memory access.
    unsafe {
        asm!(
            "mov {lo}, {v:v}.d[0]",
            "mov {hi}, {v:v}.d[1]",
            "add {lo}, {lo}, {hi}",
            v = in(vreg) v,
            lo = out(reg) sum,
            hi = out(reg) _,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    sum
}

/// `sum(q x)` of one Q4 block's 16 nibble bytes `q` (weights 0..15) with its 32 permuted
/// activations `a` (see `portable::nibble_sum`).
#[inline(always)]
fn nibble_sum(q: uint8x16_t, a: [int16x8_t; 4]) -> i32 {
    // SAFETY: register-only NEON.
    unsafe {
        let v = vreinterpretq_u16_u8(q);
        let low = vdupq_n_u16(0x000f);
        let n0 = vreinterpretq_s16_u16(vandq_u16(v, low));
        let n1 = vreinterpretq_s16_u16(vandq_u16(vshrq_n_u16::<4>(v), low));
        let n2 = vreinterpretq_s16_u16(vandq_u16(vshrq_n_u16::<8>(v), low));
        let n3 = vreinterpretq_s16_u16(vshrq_n_u16::<12>(v));
        let [a0, a1, a2, a3] = a;
        let mut p = vmulq_s16(n0, a0);
        p = vmlaq_s16(p, n1, a1);
        p = vmlaq_s16(p, n2, a2);
        p = vmlaq_s16(p, n3, a3);
        vaddlvq_s16(p)
    }
}

/// `sum(w x)` of one Q8_0 block's 32 signed weights (`w0`: bytes 0..16, `w1`: 16..32) with
/// its 32 permuted activations `a` (see `portable::byte_sum`).
#[inline(always)]
fn byte_sum(w0: uint8x16_t, w1: uint8x16_t, a: [int16x8_t; 4]) -> i32 {
    // SAFETY: register-only NEON.
    unsafe {
        let v0 = vreinterpretq_s16_u8(w0);
        let v1 = vreinterpretq_s16_u8(w1);
        // Low bytes sign-extended (weights 2l and 16 + 2l), high bytes (2l + 1, 17 + 2l).
        let lo0 = vshrq_n_s16::<8>(vshlq_n_s16::<8>(v0));
        let lo1 = vshrq_n_s16::<8>(vshlq_n_s16::<8>(v1));
        let hi0 = vshrq_n_s16::<8>(v0);
        let hi1 = vshrq_n_s16::<8>(v1);
        let [a0, a1, a2, a3] = a;
        // Two products per lane in each accumulator: at most 2 x 128 x 127 = 32512.
        let p0 = vmlaq_s16(vmulq_s16(lo0, a0), hi0, a2);
        let p1 = vmlaq_s16(vmulq_s16(lo1, a1), hi1, a3);
        vaddvq_s32(vpadalq_s16(vpaddlq_s16(p0), p1))
    }
}

/// Four block sums as one register (lane k = block k).
#[inline(always)]
fn lanes(s0: i32, s1: i32, s2: i32, s3: i32) -> int32x4_t {
    // SAFETY: register-only NEON.
    unsafe {
        let v = vdupq_n_s32(s0);
        let v = vsetq_lane_s32::<1>(s1, v);
        let v = vsetq_lane_s32::<2>(s2, v);
        vsetq_lane_s32::<3>(s3, v)
    }
}

/// `fixed::split_f16` on eight lanes of f16 bits: (signed mantissa, exponent).
#[inline(always)]
fn split_f16x8(h: uint16x8_t) -> (int16x8_t, int16x8_t) {
    // SAFETY: register-only NEON.
    unsafe {
        let field = vandq_u16(vshrq_n_u16::<10>(h), vdupq_n_u16(0x1f));
        let normal = vtstq_u16(h, vdupq_n_u16(0x7c00));
        let magnitude = vorrq_u16(
            vandq_u16(h, vdupq_n_u16(0x3ff)),
            vandq_u16(normal, vdupq_n_u16(0x400)),
        );
        let exponent = vreinterpretq_s16_u16(vmaxq_u16(field, vdupq_n_u16(1)));
        let negative = vshrq_n_s16::<15>(vreinterpretq_s16_u16(h));
        let mantissa = vsubq_s16(
            veorq_s16(vreinterpretq_s16_u16(magnitude), negative),
            negative,
        );
        (mantissa, exponent)
    }
}

/// The 32-bit lanes' low 16-bit halves, sign-extended.
#[inline(always)]
fn low_halves(v: int16x8_t) -> int32x4_t {
    // SAFETY: register-only NEON.
    unsafe { vshrq_n_s32::<16>(vshlq_n_s32::<16>(vreinterpretq_s32_s16(v))) }
}

/// The 32-bit lanes' high 16-bit halves, sign-extended.
#[inline(always)]
fn high_halves(v: int16x8_t) -> int32x4_t {
    // SAFETY: register-only NEON.
    unsafe { vshrq_n_s32::<16>(vreinterpretq_s32_s16(v)) }
}

/// `acc += d_fix * (isum * X)` for one group (see `portable::scale_term`), from the four
/// blocks' scale mantissas and exponents, integer sums, and the group's activation record.
#[inline(always)]
fn add_scale_terms(
    acc: int64x2_t,
    mantissa: int32x4_t,
    exponent: int32x4_t,
    isum: int32x4_t,
    scales: &[int32x4_t; 4],
    shifts: &Shifts,
) -> int64x2_t {
    // SAFETY: register-only NEON.
    unsafe {
        let [x, x_shift, _, _] = *scales;
        let d_fix = vshlq_s32(mantissa, vaddq_s32(vaddq_s32(exponent, x_shift), shifts.d));
        let a = vmulq_s32(isum, x);
        let acc = vmlal_s32(acc, vget_low_s32(d_fix), vget_low_s32(a));
        vmlal_high_s32(acc, d_fix, a)
    }
}

/// `v` with 32-bit lane `K` loaded from `p` (`ld1 {v.s}[K]`).
///
/// # Safety
/// `p` must point to 4 readable bytes.
#[inline(always)]
unsafe fn ld_lane_u32<const K: i32>(v: uint32x4_t, p: *const u8) -> uint32x4_t {
    let mut v = v;
    // SAFETY: the caller guarantees 4 readable bytes; a lane load of 32-bit elements needs
    // element alignment only when SCTLR_EL1.A is set, which this kernel leaves clear.
    unsafe {
        asm!(
            "ld1 {{{v:v}.s}}[{k}], [{p}]",
            v = inout(vreg) v,
            p = in(reg) p,
            k = const K,
            options(readonly, nostack, preserves_flags)
        );
    }
    v
}

/// `v` with 16-bit lane `K` loaded from `p` (`ld1 {v.h}[K]`).
///
/// # Safety
/// `p` must point to 2 readable bytes.
#[inline(always)]
unsafe fn ld_lane_u16<const K: i32>(v: uint16x8_t, p: *const u8) -> uint16x8_t {
    let mut v = v;
    // SAFETY: as in `ld_lane_u32`, for 2 bytes.
    unsafe {
        asm!(
            "ld1 {{{v:v}.h}}[{k}], [{p}]",
            v = inout(vreg) v,
            p = in(reg) p,
            k = const K,
            options(readonly, nostack, preserves_flags)
        );
    }
    v
}

/// The f16 scales at the start of four blocks, one per 32-bit lane (low half), split into
/// mantissa and exponent.
///
/// # Safety
/// Each pointer must point to 2 readable bytes.
#[inline(always)]
unsafe fn block_scales(blocks: &[*const u8; 4]) -> (int32x4_t, int32x4_t) {
    // SAFETY: forwarded to the caller's guarantee; the rest is register-only NEON.
    unsafe {
        let mut h = vdupq_n_u16(0);
        h = ld_lane_u16::<0>(h, blocks[0]);
        h = ld_lane_u16::<2>(h, blocks[1]);
        h = ld_lane_u16::<4>(h, blocks[2]);
        h = ld_lane_u16::<6>(h, blocks[3]);
        let (mantissa, exponent) = split_f16x8(h);
        (low_halves(mantissa), low_halves(exponent))
    }
}

/// Activation blocks `b..b + 4` as one array reference (zero blocks past the end, which
/// `fixed_rows`' checks rule out).
#[inline(always)]
fn act_blocks(act: &Activations, b: usize) -> &[ActivationBlock; 4] {
    act.q16
        .get(b..)
        .and_then(|rest| rest.first_chunk::<4>())
        .unwrap_or(&ZERO_ACTIVATIONS)
}

/// Zero activation blocks (see [`act_blocks`]).
static ZERO_ACTIVATIONS: [ActivationBlock; 4] = [ActivationBlock([0; QK]); 4];

struct Q4_1Groups;

impl GroupKernel for Q4_1Groups {
    const BLOCK_BYTES: usize = Q4_1_BYTES;

    #[inline(always)]
    unsafe fn group(
        acc: int64x2_t,
        blocks: [*const u8; 4],
        act: &Activations,
        b: usize,
        shifts: &Shifts,
    ) -> int64x2_t {
        // SAFETY: each block is 20 readable bytes (the caller's guarantee): d and m at 0..4,
        // the nibbles at 4..20. The rest is register-only NEON and bounds-checked indexing.
        unsafe {
            let a = act_blocks(act, b);
            let scales = ld_group(&act.groups[b / 4]);
            let isum = lanes(
                nibble_sum(ld_u8x16_at::<4>(blocks[0]), ld_block::<0>(a)),
                nibble_sum(ld_u8x16_at::<4>(blocks[1]), ld_block::<1>(a)),
                nibble_sum(ld_u8x16_at::<4>(blocks[2]), ld_block::<2>(a)),
                nibble_sum(ld_u8x16_at::<4>(blocks[3]), ld_block::<3>(a)),
            );
            // Headers d | m << 16, one per 32-bit lane.
            let mut h = vdupq_n_u32(0);
            h = ld_lane_u32::<0>(h, blocks[0]);
            h = ld_lane_u32::<1>(h, blocks[1]);
            h = ld_lane_u32::<2>(h, blocks[2]);
            h = ld_lane_u32::<3>(h, blocks[3]);
            let (mantissa, exponent) = split_f16x8(vreinterpretq_u16_u32(h));
            let acc = add_scale_terms(
                acc,
                low_halves(mantissa),
                low_halves(exponent),
                isum,
                &scales,
                shifts,
            );
            // acc += m_fix * s' (see `portable::min_term`).
            let m_fix = vshlq_s32(
                high_halves(mantissa),
                vaddq_s32(high_halves(exponent), shifts.m),
            );
            let s = vshlq_s32(scales[2], shifts.s);
            let acc = vmlal_s32(acc, vget_low_s32(m_fix), vget_low_s32(s));
            vmlal_high_s32(acc, m_fix, s)
        }
    }
}

struct Q8_0Groups;

impl GroupKernel for Q8_0Groups {
    const BLOCK_BYTES: usize = Q8_0_BYTES;

    #[inline(always)]
    unsafe fn group(
        acc: int64x2_t,
        blocks: [*const u8; 4],
        act: &Activations,
        b: usize,
        shifts: &Shifts,
    ) -> int64x2_t {
        // SAFETY: each block is 34 readable bytes (the caller's guarantee): d at 0..2, the
        // weights at 2..34.
        unsafe {
            let a = act_blocks(act, b);
            let w = |k: usize| (ld_u8x16_at::<2>(blocks[k]), ld_u8x16_at::<18>(blocks[k]));
            let (w0, w1, w2, w3) = (w(0), w(1), w(2), w(3));
            let isum = lanes(
                byte_sum(w0.0, w0.1, ld_block::<0>(a)),
                byte_sum(w1.0, w1.1, ld_block::<1>(a)),
                byte_sum(w2.0, w2.1, ld_block::<2>(a)),
                byte_sum(w3.0, w3.1, ld_block::<3>(a)),
            );
            let (mantissa, exponent) = block_scales(&blocks);
            let scales = ld_group(&act.groups[b / 4]);
            add_scale_terms(acc, mantissa, exponent, isum, &scales, shifts)
        }
    }
}

struct Q4_0Groups;

impl GroupKernel for Q4_0Groups {
    const BLOCK_BYTES: usize = Q4_0_BYTES;

    #[inline(always)]
    unsafe fn group(
        acc: int64x2_t,
        blocks: [*const u8; 4],
        act: &Activations,
        b: usize,
        shifts: &Shifts,
    ) -> int64x2_t {
        // SAFETY: each block is 18 readable bytes (the caller's guarantee): d at 0..2, the
        // nibbles at 2..18.
        unsafe {
            let a = act_blocks(act, b);
            let scales = ld_group(&act.groups[b / 4]);
            let raw = lanes(
                nibble_sum(ld_u8x16_at::<2>(blocks[0]), ld_block::<0>(a)),
                nibble_sum(ld_u8x16_at::<2>(blocks[1]), ld_block::<1>(a)),
                nibble_sum(ld_u8x16_at::<2>(blocks[2]), ld_block::<2>(a)),
                nibble_sum(ld_u8x16_at::<2>(blocks[3]), ld_block::<3>(a)),
            );
            // The weights are q - 8: subtract 8 sum(x).
            let isum = vsubq_s32(raw, vshlq_n_s32::<3>(scales[3]));
            let (mantissa, exponent) = block_scales(&blocks);
            add_scale_terms(acc, mantissa, exponent, isum, &scales, shifts)
        }
    }
}

/// Q4_K / Q6_K x Q8_K with NEON integer sums and the portable kernel's float steps in the
/// same order, so the result is bit-identical to `portable::dot_q4_k` / `dot_q6_k`.
/// `None` when the sizes do not match (the portable kernel then decides).
fn dot_k(ty: GgmlType, row: &[u8], act: &Activations) -> Option<f32> {
    let superblocks = act.len() / QK_K;
    let bytes = if ty == GgmlType::Q4_K {
        Q4_K_BYTES
    } else {
        Q6_K_BYTES
    };
    if act.len() % QK_K != 0
        || row.len() != superblocks * bytes
        || act.qk.len() < superblocks * QK_K
        || act.dk.len() < superblocks
        || act.bsums.len() < superblocks * (QK_K / 16)
    {
        return None;
    }
    Some(if ty == GgmlType::Q4_K {
        dot_q4_k(row, act, superblocks)
    } else {
        dot_q6_k(row, act, superblocks)
    })
}

/// Sum of the 16 products of 16 lanes (widening to 16 bits, then one widening add across).
/// Lanes must keep 2 x |w| x |x| within i16 (Q4_K nibbles: 2 x 15 x 128; Q6_K: 2 x 32 x 128).
#[inline(always)]
fn sum16(w: int8x16_t, x: int8x16_t) -> i32 {
    // SAFETY: register-only NEON arithmetic.
    unsafe {
        let p = vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(x)), w, x);
        vaddlvq_s16(p)
    }
}

/// Q4_K x Q8_K (see `portable::dot_q4_k`); sizes checked by `dot_k`.
fn dot_q4_k(row: &[u8], act: &Activations, superblocks: usize) -> f32 {
    let mut sum = 0f32;
    for sb in 0..superblocks {
        let b = &row[sb * Q4_K_BYTES..(sb + 1) * Q4_K_BYTES];
        let dx = act.dk[sb];
        let d = f16_at(b, 0) * dx;
        let dmin = f16_at(b, 2) * dx;
        let scales = &b[4..16];
        let bs = &act.bsums[sb * 16..sb * 16 + 16];
        let x = act.qk[sb * QK_K..].as_ptr();
        let mut sumi = 0i32;
        let mut summ = 0i32;
        for chunk in 0..4 {
            let (sc1, m1) = q4_k_scale_min(2 * chunk, scales);
            let (sc2, m2) = q4_k_scale_min(2 * chunk + 1, scales);
            // SAFETY: 32 nibble bytes at 16 + 32 * chunk of the 144-byte block, and 64
            // activations at 64 * chunk of the super-block's 256 (q32 length checked).
            let (lo, hi) = unsafe {
                let q0 = ld_u8x16(b.as_ptr().add(16 + 32 * chunk));
                let q1 = ld_u8x16(b.as_ptr().add(32 + 32 * chunk));
                let xp = x.add(64 * chunk);
                let m = vdupq_n_u8(0x0f);
                let l0 = vreinterpretq_s8_u8(vandq_u8(q0, m));
                let l1 = vreinterpretq_s8_u8(vandq_u8(q1, m));
                let h0 = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4));
                let h1 = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4));
                let lo = sum16(l0, ld_s8x16(xp)) + sum16(l1, ld_s8x16(xp.add(16)));
                let hi = sum16(h0, ld_s8x16(xp.add(32))) + sum16(h1, ld_s8x16(xp.add(48)));
                (lo, hi)
            };
            sumi += sc1 as i32 * lo + sc2 as i32 * hi;
            summ += m1 as i32 * (bs[4 * chunk] + bs[4 * chunk + 1]);
            summ += m2 as i32 * (bs[4 * chunk + 2] + bs[4 * chunk + 3]);
        }
        sum += d * sumi as f32 - dmin * summ as f32;
    }
    sum
}

/// Q6_K x Q8_K (see `portable::dot_q6_k`); sizes checked by `dot_k`.
fn dot_q6_k(row: &[u8], act: &Activations, superblocks: usize) -> f32 {
    let mut sum = 0f32;
    for sb in 0..superblocks {
        let b = &row[sb * Q6_K_BYTES..(sb + 1) * Q6_K_BYTES];
        let d = f16_at(b, 208) * act.dk[sb];
        let x = act.qk[sb * QK_K..].as_ptr();
        let mut sumi = 0i32;
        for half in 0..2 {
            let sc = &b[192 + 8 * half..192 + 8 * half + 8];
            // SAFETY: ql (64 bytes at 64 * half), qh (32 bytes at 128 + 32 * half) lie inside
            // the 210-byte block; 128 activations at 128 * half of the super-block's 256.
            let g = unsafe {
                let ql = b.as_ptr().add(64 * half);
                let qh = b.as_ptr().add(128 + 32 * half);
                let (ql0, ql1, ql2, ql3) = (
                    ld_u8x16(ql),
                    ld_u8x16(ql.add(16)),
                    ld_u8x16(ql.add(32)),
                    ld_u8x16(ql.add(48)),
                );
                let (qh0, qh1) = (ld_u8x16(qh), ld_u8x16(qh.add(16)));
                let m4 = vdupq_n_u8(0x0f);
                let m2 = vdupq_n_u8(0x30);
                let off = vdupq_n_s8(32);
                // q = low-or-high nibble | (2 bits of qh) << 4, minus 32.
                let mk = |nib: uint8x16_t, hb: uint8x16_t| -> int8x16_t {
                    vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(nib, vandq_u8(hb, m2))), off)
                };
                let q1a = mk(vandq_u8(ql0, m4), vshlq_n_u8(qh0, 4));
                let q1b = mk(vandq_u8(ql1, m4), vshlq_n_u8(qh1, 4));
                let q2a = mk(vandq_u8(ql2, m4), vshlq_n_u8(qh0, 2));
                let q2b = mk(vandq_u8(ql3, m4), vshlq_n_u8(qh1, 2));
                let q3a = mk(vshrq_n_u8(ql0, 4), qh0);
                let q3b = mk(vshrq_n_u8(ql1, 4), qh1);
                let q4a = mk(vshrq_n_u8(ql2, 4), vshrq_n_u8(qh0, 2));
                let q4b = mk(vshrq_n_u8(ql3, 4), vshrq_n_u8(qh1, 2));
                let xp = x.add(128 * half);
                [
                    sum16(q1a, ld_s8x16(xp)),
                    sum16(q1b, ld_s8x16(xp.add(16))),
                    sum16(q2a, ld_s8x16(xp.add(32))),
                    sum16(q2b, ld_s8x16(xp.add(48))),
                    sum16(q3a, ld_s8x16(xp.add(64))),
                    sum16(q3b, ld_s8x16(xp.add(80))),
                    sum16(q4a, ld_s8x16(xp.add(96))),
                    sum16(q4b, ld_s8x16(xp.add(112))),
                ]
            };
            for (k, gs) in g.iter().enumerate() {
                sumi += (sc[k] as i8) as i32 * gs;
            }
        }
        sum += d * sumi as f32;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::super::portable;
    use super::*;
    use crate::quant::{f16_to_f32, quantize_row};
    use alloc::vec::Vec;

    #[test]
    fn hardware_rounding_is_roundf() {
        for x in [
            0.5f32, -0.5, 1.5, 2.5, -2.5, 126.49, 126.5, -127.5, 0.49999997, 1e10, -1e10,
        ] {
            let expected = libm::roundf(x).clamp(i32::MIN as f32, i32::MAX as f32) as i32;
            assert_eq!(round_to_i32(x), expected, "{x}");
        }
    }

    #[test]
    fn hardware_f16_conversion_is_exact() {
        for h in 0..=u16::MAX {
            let a = f16_hw(h);
            let b = f16_to_f32(h);
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{h:#x}"
            );
        }
    }

    #[test]
    fn neon_kernels_agree_with_portable() {
        // 1536 = 12 groups of 4 blocks; 1568 adds a one-block tail; 576 = SmolLM2's width
        // (two-block tail); 608 a three-block tail.
        for n in [1536usize, 1568, 576, 608, 2048, 5632] {
            check_kernels(n);
        }
    }

    fn check_kernels(n: usize) {
        let mut s = 12345u32;
        let mut rnd = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 4.0
        };
        let x: Vec<f32> = (0..n).map(|_| rnd()).collect();
        let mut act = Activations::new(n);
        act.set(&x, true, true);
        let rows = 5;
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q8_0,
            GgmlType::Q4_K,
            GgmlType::Q6_K,
        ] {
            if n % ty.block_size() != 0 {
                continue;
            }
            let w: Vec<f32> = (0..n * rows).map(|i| rnd() * (1 + i % 5) as f32).collect();
            let mut bytes = Vec::new();
            assert!(quantize_row(ty, &w, &mut bytes));
            let row_bytes = bytes.len() / rows;
            let scales = super::super::ScaleExponents::of(ty, &bytes);
            let scaling = super::super::block_scaling(ty, scales, &act);
            let mut neon = [0f32; 5];
            assert!(dot_rows(ty, &bytes, row_bytes, &scaling, &act, &mut neon));
            for (r, &v) in neon.iter().enumerate() {
                let port = portable::dot(
                    ty,
                    &bytes[r * row_bytes..(r + 1) * row_bytes],
                    &scaling,
                    &act,
                );
                assert_eq!(
                    v.to_bits(),
                    port.to_bits(),
                    "{ty} n {n} row {r}: {v} vs {port}"
                );
            }
        }
        // Extreme values: all weights -128 or 0xff nibbles, every kind of scale.
        for byte in [0x80u8, 0xff, 0x00] {
            for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
                let mut bytes = Vec::new();
                for b in 0..n / 32 {
                    let d: u16 = [0x3c00, 0x0001, 0xfbff, 0x0000, 0x7c00, 0x8400][b % 6];
                    bytes.extend_from_slice(&d.to_le_bytes());
                    if ty == GgmlType::Q4_1 {
                        bytes.extend_from_slice(&d.rotate_left(3).to_le_bytes());
                    }
                    let weights = if ty == GgmlType::Q8_0 { 32 } else { 16 };
                    bytes.extend(core::iter::repeat_n(byte, weights));
                }
                let scales = super::super::ScaleExponents::of(ty, &bytes);
                let scaling = super::super::block_scaling(ty, scales, &act);
                let mut neon = [0f32];
                assert!(dot_rows(ty, &bytes, bytes.len(), &scaling, &act, &mut neon));
                let port = portable::dot(ty, &bytes, &scaling, &act);
                assert_eq!(neon[0].to_bits(), port.to_bits(), "{ty} byte {byte:#x}");
            }
        }
    }
}
