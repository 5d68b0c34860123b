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
use super::Activations;
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

/// A group kernel: four blocks of one 32-element format against four activation blocks.
trait GroupKernel {
    /// Bytes of one block.
    const BLOCK_BYTES: usize;

    /// `acc` plus the group's terms.
    ///
    /// # Safety
    /// `blk` must point to `4 * BLOCK_BYTES` readable bytes, and activation blocks
    /// `b..b + 4` must be in bounds of `q16` (32 values each) and of the per-block arrays.
    unsafe fn group(
        acc: int64x2_t,
        blk: *const u8,
        act: &Activations,
        b: usize,
        shifts: &Shifts,
    ) -> int64x2_t;
}

struct Q4_0Groups;
struct Q4_1Groups;
struct Q8_0Groups;

impl GroupKernel for Q4_0Groups {
    const BLOCK_BYTES: usize = Q4_0_BYTES;
    #[inline(always)]
    unsafe fn group(
        acc: int64x2_t,
        blk: *const u8,
        act: &Activations,
        b: usize,
        shifts: &Shifts,
    ) -> int64x2_t {
        // SAFETY: forwarded from the trait method's contract.
        unsafe { group_q4_0(acc, blk, act, b, shifts) }
    }
}

impl GroupKernel for Q4_1Groups {
    const BLOCK_BYTES: usize = Q4_1_BYTES;
    #[inline(always)]
    unsafe fn group(
        acc: int64x2_t,
        blk: *const u8,
        act: &Activations,
        b: usize,
        shifts: &Shifts,
    ) -> int64x2_t {
        // SAFETY: forwarded from the trait method's contract.
        unsafe { group_q4_1(acc, blk, act, b, shifts) }
    }
}

impl GroupKernel for Q8_0Groups {
    const BLOCK_BYTES: usize = Q8_0_BYTES;
    #[inline(always)]
    unsafe fn group(
        acc: int64x2_t,
        blk: *const u8,
        act: &Activations,
        b: usize,
        shifts: &Shifts,
    ) -> int64x2_t {
        // SAFETY: forwarded from the trait method's contract.
        unsafe { group_q8_0(acc, blk, act, b, shifts) }
    }
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
        || act.q16.len() < padded * QK
        || act.x_mantissa.len() < padded
        || act.x_shift.len() < padded
        || act.s_fix.len() < padded
        || act.q_sum.len() < padded
    {
        return false;
    }
    let shifts = Shifts::new(scaling);
    let whole = blocks / 4;
    let start = whole * 4 * block_bytes;
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(row_bytes)) {
        // SAFETY: group `g < whole` is the row's bytes `g * 4 * block_bytes..(g + 1) * 4 *
        // block_bytes` (inside the row), the tail group a stack buffer of four blocks
        // (`4 * Q8_0_BYTES` is the largest); both read activation blocks `4g..4g + 4 <=
        // padded`, in bounds by the check above. `vdupq`/`vgetq` are register-only.
        let sum = unsafe {
            let mut acc = vdupq_n_s64(0);
            for g in 0..whole {
                acc = K::group(
                    acc,
                    row.as_ptr().add(g * 4 * block_bytes),
                    act,
                    4 * g,
                    &shifts,
                );
            }
            if start < row.len() {
                // The last 1-3 blocks, in a zeroed four-block buffer: zero scales add nothing.
                let mut buffer = [0u8; 4 * Q8_0_BYTES];
                buffer[..row.len() - start].copy_from_slice(&row[start..]);
                acc = K::group(acc, buffer.as_ptr(), act, 4 * whole, &shifts);
            }
            vgetq_lane_s64::<0>(acc).wrapping_add(vgetq_lane_s64::<1>(acc))
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

/// Five consecutive 16-byte registers from `p` (80 bytes: one Q4_1 group of four blocks).
///
/// # Safety
/// `p` must point to 80 readable bytes.
#[inline(always)]
unsafe fn ld_u8x16x5(p: *const u8) -> [uint8x16_t; 5] {
    let (a, b, c, d, e): (uint8x16_t, uint8x16_t, uint8x16_t, uint8x16_t, uint8x16_t);
    // SAFETY: the caller guarantees 80 readable bytes; byte-element `ld1` has no alignment
    // requirement; the post-incremented pointer is a scratch copy.
    unsafe {
        asm!(
            "ld1 {{{a:v}.16b}}, [{p}], #16",
            "ld1 {{{b:v}.16b}}, [{p}], #16",
            "ld1 {{{c:v}.16b}}, [{p}], #16",
            "ld1 {{{d:v}.16b}}, [{p}], #16",
            "ld1 {{{e:v}.16b}}, [{p}]",
            p = inout(reg) p => _,
            a = out(vreg) a,
            b = out(vreg) b,
            c = out(vreg) c,
            d = out(vreg) d,
            e = out(vreg) e,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    [a, b, c, d, e]
}

/// Eight consecutive 16-byte registers of `i8` from `p` (128 activations: four blocks).
///
/// # Safety
/// `p` must point to 128 readable bytes.
#[inline(always)]
unsafe fn ld_s8x16x8(p: *const i8) -> [int8x16_t; 8] {
    let r: [int8x16_t; 8];
    let (a, b, c, d, e, f, g, h): (
        int8x16_t,
        int8x16_t,
        int8x16_t,
        int8x16_t,
        int8x16_t,
        int8x16_t,
        int8x16_t,
        int8x16_t,
    );
    // SAFETY: as in `ld_u8x16x5`, for 128 bytes.
    unsafe {
        asm!(
            "ld1 {{{a:v}.16b}}, [{p}], #16",
            "ld1 {{{b:v}.16b}}, [{p}], #16",
            "ld1 {{{c:v}.16b}}, [{p}], #16",
            "ld1 {{{d:v}.16b}}, [{p}], #16",
            "ld1 {{{e:v}.16b}}, [{p}], #16",
            "ld1 {{{f:v}.16b}}, [{p}], #16",
            "ld1 {{{g:v}.16b}}, [{p}], #16",
            "ld1 {{{h:v}.16b}}, [{p}]",
            p = inout(reg) p => _,
            a = out(vreg) a,
            b = out(vreg) b,
            c = out(vreg) c,
            d = out(vreg) d,
            e = out(vreg) e,
            f = out(vreg) f,
            g = out(vreg) g,
            h = out(vreg) h,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    r = [a, b, c, d, e, f, g, h];
    r
}

/// Four registers of eight `i16` from `p` (one block of 16-bit activations) with one
/// `ld1 {v0.8h-v3.8h}` (see [`ld_u8x16`] for why asm).
///
/// # Safety
/// `p` must point to 32 readable, 2-byte aligned `i16`.
#[inline(always)]
unsafe fn ld_s16x8x4(p: *const i16) -> [int16x8_t; 4] {
    let (a, b, c, d): (int16x8_t, int16x8_t, int16x8_t, int16x8_t);
    // SAFETY: the caller guarantees 64 readable bytes at an i16-aligned `p`; `ld1` with
    // 16-bit elements needs only element alignment. The four registers must be consecutive,
    // hence the fixed v16-v19.
    unsafe {
        asm!(
            "ld1 {{v16.8h, v17.8h, v18.8h, v19.8h}}, [{p}]",
            p = in(reg) p,
            out("v16") a,
            out("v17") b,
            out("v18") c,
            out("v19") d,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    [a, b, c, d]
}

/// 4 `i32` from `p` with `ld1 {v.4s}`.
///
/// # Safety
/// `p` must point to 4 readable, aligned `i32`.
#[inline(always)]
unsafe fn ld_s32x4(p: *const i32) -> int32x4_t {
    let v: int32x4_t;
    // SAFETY: the caller guarantees 16 readable bytes at an i32-aligned `p`.
    unsafe {
        asm!(
            "ld1 {{{v:v}.4s}}, [{p}]",
            p = in(reg) p,
            v = out(vreg) v,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    v
}

/// `sum(q x)` of one Q4 block's 16 nibble bytes `q` (weights 0..15) with its 32 permuted
/// activations at `a` (see `portable::nibble_sum`).
///
/// # Safety
/// `a` must point to 32 readable, aligned `i16`.
#[inline(always)]
unsafe fn nibble_sum(q: uint8x16_t, a: *const i16) -> i32 {
    // SAFETY: forwarded load guarantee; the rest is register-only NEON.
    unsafe {
        let v = vreinterpretq_u16_u8(q);
        let low = vdupq_n_u16(0x000f);
        let n0 = vreinterpretq_s16_u16(vandq_u16(v, low));
        let n1 = vreinterpretq_s16_u16(vandq_u16(vshrq_n_u16::<4>(v), low));
        let n2 = vreinterpretq_s16_u16(vandq_u16(vshrq_n_u16::<8>(v), low));
        let n3 = vreinterpretq_s16_u16(vshrq_n_u16::<12>(v));
        let [a0, a1, a2, a3] = ld_s16x8x4(a);
        let mut p = vmulq_s16(n0, a0);
        p = vmlaq_s16(p, n1, a1);
        p = vmlaq_s16(p, n2, a2);
        p = vmlaq_s16(p, n3, a3);
        vaddlvq_s16(p)
    }
}

/// `sum(w x)` of one Q8_0 block's 32 signed weights (`w0`: bytes 0..16, `w1`: 16..32) with
/// its 32 permuted activations at `a` (see `portable::byte_sum`).
///
/// # Safety
/// `a` must point to 32 readable, aligned `i16`.
#[inline(always)]
unsafe fn byte_sum(w0: uint8x16_t, w1: uint8x16_t, a: *const i16) -> i32 {
    // SAFETY: forwarded load guarantee; the rest is register-only NEON.
    unsafe {
        let v0 = vreinterpretq_s16_u8(w0);
        let v1 = vreinterpretq_s16_u8(w1);
        // Low bytes sign-extended (weights 2l and 16 + 2l), high bytes (2l + 1, 17 + 2l).
        let lo0 = vshrq_n_s16::<8>(vshlq_n_s16::<8>(v0));
        let lo1 = vshrq_n_s16::<8>(vshlq_n_s16::<8>(v1));
        let hi0 = vshrq_n_s16::<8>(v0);
        let hi1 = vshrq_n_s16::<8>(v1);
        let [a0, a1, a2, a3] = ld_s16x8x4(a);
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

/// `acc += d_fix * (isum * X)` for activation blocks `b..b + 4` (see `portable::scale_term`):
/// `d` holds the four blocks' f16 scale bits in the low halves of its 32-bit lanes.
///
/// # Safety
/// Activation blocks `b..b + 4` must be in bounds of `x_mantissa` and `x_shift`.
#[inline(always)]
unsafe fn add_scale_terms(
    acc: int64x2_t,
    mantissa: int32x4_t,
    exponent: int32x4_t,
    isum: int32x4_t,
    act: &Activations,
    b: usize,
    shifts: &Shifts,
) -> int64x2_t {
    // SAFETY: the caller guarantees the four elements of each array at `b`.
    unsafe {
        let x = ld_s32x4(act.x_mantissa.as_ptr().add(b));
        let x_shift = ld_s32x4(act.x_shift.as_ptr().add(b));
        let d_fix = vshlq_s32(mantissa, vaddq_s32(vaddq_s32(exponent, x_shift), shifts.d));
        let a = vmulq_s32(isum, x);
        let acc = vmlal_s32(acc, vget_low_s32(d_fix), vget_low_s32(a));
        vmlal_high_s32(acc, d_fix, a)
    }
}

/// One group of four Q4_1 blocks (80 bytes at `blk`) against activation blocks `b..b + 4`.
///
/// # Safety
/// `blk` must point to 80 readable bytes; activation blocks `b..b + 4` must be in bounds.
#[inline(always)]
unsafe fn group_q4_1(
    acc: int64x2_t,
    blk: *const u8,
    act: &Activations,
    b: usize,
    shifts: &Shifts,
) -> int64x2_t {
    // SAFETY: the caller's guarantees cover every load below (activation block k is 32 i16
    // at `(b + k) * 32`, and the per-block arrays at `b`).
    unsafe {
        let r = ld_u8x16x5(blk);
        let a = act.q16.as_ptr().add(b * QK);
        // Nibbles: bytes 4..20, 24..40, 44..60, 64..80 of the group.
        let isum = lanes(
            nibble_sum(vextq_u8::<4>(r[0], r[1]), a),
            nibble_sum(vextq_u8::<8>(r[1], r[2]), a.add(QK)),
            nibble_sum(vextq_u8::<12>(r[2], r[3]), a.add(2 * QK)),
            nibble_sum(r[4], a.add(3 * QK)),
        );
        // Headers (d | m << 16): bytes 0..4, 20..24, 40..44, 60..64, i.e. 32-bit lane k of
        // register k.
        let mut h = vreinterpretq_u32_u8(r[0]);
        h = vcopyq_laneq_u32::<1, 1>(h, vreinterpretq_u32_u8(r[1]));
        h = vcopyq_laneq_u32::<2, 2>(h, vreinterpretq_u32_u8(r[2]));
        h = vcopyq_laneq_u32::<3, 3>(h, vreinterpretq_u32_u8(r[3]));
        let (mantissa, exponent) = split_f16x8(vreinterpretq_u16_u32(h));
        let acc = add_scale_terms(
            acc,
            low_halves(mantissa),
            low_halves(exponent),
            isum,
            act,
            b,
            shifts,
        );
        // acc += m_fix * s' (see `portable::min_term`).
        let m_fix = vshlq_s32(
            high_halves(mantissa),
            vaddq_s32(high_halves(exponent), shifts.m),
        );
        let s = vshlq_s32(ld_s32x4(act.s_fix.as_ptr().add(b)), shifts.s);
        let acc = vmlal_s32(acc, vget_low_s32(m_fix), vget_low_s32(s));
        vmlal_high_s32(acc, m_fix, s)
    }
}

/// The f16 scales at 16-bit lanes (0, 1, 2, 3) of registers (r0, r1, r2, r3), one per 32-bit
/// lane (low half), split into mantissa and exponent.
#[inline(always)]
fn scales_at_diagonal(
    r0: uint8x16_t,
    r1: uint8x16_t,
    r2: uint8x16_t,
    r3: uint8x16_t,
) -> (int32x4_t, int32x4_t) {
    // SAFETY: register-only NEON.
    unsafe {
        let mut h = vdupq_n_u16(0);
        h = vcopyq_laneq_u16::<0, 0>(h, vreinterpretq_u16_u8(r0));
        h = vcopyq_laneq_u16::<2, 1>(h, vreinterpretq_u16_u8(r1));
        h = vcopyq_laneq_u16::<4, 2>(h, vreinterpretq_u16_u8(r2));
        h = vcopyq_laneq_u16::<6, 3>(h, vreinterpretq_u16_u8(r3));
        let (mantissa, exponent) = split_f16x8(h);
        (low_halves(mantissa), low_halves(exponent))
    }
}

/// One group of four Q8_0 blocks (136 bytes at `blk`) against activation blocks `b..b + 4`.
///
/// # Safety
/// `blk` must point to 136 readable bytes; activation blocks `b..b + 4` must be in bounds.
#[inline(always)]
unsafe fn group_q8_0(
    acc: int64x2_t,
    blk: *const u8,
    act: &Activations,
    b: usize,
    shifts: &Shifts,
) -> int64x2_t {
    // SAFETY: as in `group_q4_1`, with 34-byte blocks (eight registers and 8 more bytes).
    unsafe {
        let r = ld_s8x16x8(blk as *const i8).map(|v| vreinterpretq_u8_s8(v));
        let r8 = ld_u8x8(blk.add(128));
        let a = act.q16.as_ptr().add(b * QK);
        // Weights: bytes 2..34, 36..68, 70..102, 104..136 of the group.
        let isum = lanes(
            byte_sum(vextq_u8::<2>(r[0], r[1]), vextq_u8::<2>(r[1], r[2]), a),
            byte_sum(
                vextq_u8::<4>(r[2], r[3]),
                vextq_u8::<4>(r[3], r[4]),
                a.add(QK),
            ),
            byte_sum(
                vextq_u8::<6>(r[4], r[5]),
                vextq_u8::<6>(r[5], r[6]),
                a.add(2 * QK),
            ),
            byte_sum(
                vextq_u8::<8>(r[6], r[7]),
                vextq_u8::<8>(r[7], r8),
                a.add(3 * QK),
            ),
        );
        // Scales: bytes 0..2, 34..36, 68..70, 102..104: 16-bit lane k of register 2k.
        let (mantissa, exponent) = scales_at_diagonal(r[0], r[2], r[4], r[6]);
        add_scale_terms(acc, mantissa, exponent, isum, act, b, shifts)
    }
}

/// One group of four Q4_0 blocks (72 bytes at `blk`) against activation blocks `b..b + 4`.
///
/// # Safety
/// `blk` must point to 72 readable bytes; activation blocks `b..b + 4` must be in bounds.
#[inline(always)]
unsafe fn group_q4_0(
    acc: int64x2_t,
    blk: *const u8,
    act: &Activations,
    b: usize,
    shifts: &Shifts,
) -> int64x2_t {
    // SAFETY: as in `group_q4_1`, with 18-byte blocks (four registers and 8 more bytes).
    unsafe {
        let r = [
            ld_u8x16(blk),
            ld_u8x16(blk.add(16)),
            ld_u8x16(blk.add(32)),
            ld_u8x16(blk.add(48)),
        ];
        let r4 = ld_u8x8(blk.add(64));
        let a = act.q16.as_ptr().add(b * QK);
        // Nibbles: bytes 2..18, 20..36, 38..54, 56..72 of the group.
        let raw = lanes(
            nibble_sum(vextq_u8::<2>(r[0], r[1]), a),
            nibble_sum(vextq_u8::<4>(r[1], r[2]), a.add(QK)),
            nibble_sum(vextq_u8::<6>(r[2], r[3]), a.add(2 * QK)),
            nibble_sum(vextq_u8::<8>(r[3], r4), a.add(3 * QK)),
        );
        // The weights are q - 8: subtract 8 sum(x).
        let isum = vsubq_s32(raw, vshlq_n_s32::<3>(ld_s32x4(act.q_sum.as_ptr().add(b))));
        // Scales: bytes 0..2, 18..20, 36..38, 54..56: 16-bit lane k of register k.
        let (mantissa, exponent) = scales_at_diagonal(r[0], r[1], r[2], r[3]);
        add_scale_terms(acc, mantissa, exponent, isum, act, b, shifts)
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

/// 8 bytes from `p` into the low half of a register (`ld1 {v.8b}`).
///
/// # Safety
/// `p` must point to 8 readable bytes.
#[inline(always)]
unsafe fn ld_u8x8(p: *const u8) -> uint8x16_t {
    let v: uint8x16_t;
    // SAFETY: the caller guarantees 8 readable bytes; byte elements need no alignment. The
    // upper half of the register is zeroed by `ld1 {v.8b}`.
    unsafe {
        asm!(
            "ld1 {{{v:v}.8b}}, [{p}]",
            p = in(reg) p,
            v = out(vreg) v,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    v
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
