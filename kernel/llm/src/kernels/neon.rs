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
//! Q4_K and Q6_K (TinyLlama-class files) unpack their 4- and 6-bit weights from 16-bit lanes
//! the same way, against Q8_K activations widened to i16 in the matching order
//! ([`super::PERMUTED_K`]): `mul`/`mla` on 16-bit lanes per sub-block, then one widening
//! multiply-add by the sub-block's scale into a 32-bit accumulator, and one `addv` per 256
//! weights. The integer sums are the portable kernels' and the scalar float steps (a few per
//! 256 weights) run in the same order, so they are bit-identical to the portable kernels too.

#![allow(unsafe_code)]

use core::arch::aarch64::*;
use core::arch::asm;

use super::fixed::BlockScaling;
use super::{ActivationBlock, ActivationBlock16, Activations, GroupScales};
use crate::quant::{
    GgmlType, Q4_0_BYTES, Q4_1_BYTES, Q4_K_BYTES, Q6_K_BYTES, Q8_0_BYTES, QK, QK_K,
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

/// The f16 at `b[at..at + 2]` as f32, in integer arithmetic when it is a normal number (the
/// exponent rebiased, the mantissa moved up: exact), else by `fcvt`. Under TCG `fcvt` is a
/// helper call; the K-quant kernels convert two scales per 256 weights.
#[inline(always)]
fn f16_at_fast(b: &[u8], at: usize) -> f32 {
    let bits = u16::from_le_bytes([b[at], b[at + 1]]);
    let exponent = bits & 0x7c00;
    if exponent != 0 && exponent != 0x7c00 {
        let sign = u32::from(bits & 0x8000) << 16;
        let magnitude = (u32::from(bits & 0x7fff) + ((127 - 15) << 10)) << 13;
        f32::from_bits(sign | magnitude)
    } else {
        f16_hw(bits)
    }
}

/// The sum of the four lanes, through general registers: `addv` is a helper call in TCG.
#[inline(always)]
fn sum_lanes32(v: int32x4_t) -> i32 {
    // SAFETY: register-only NEON lane moves.
    let (low, high) = unsafe {
        let wide = vreinterpretq_u64_s32(v);
        (vgetq_lane_u64::<0>(wide), vgetq_lane_u64::<1>(wide))
    };
    (low as i32)
        .wrapping_add((low >> 32) as i32)
        .wrapping_add(high as i32)
        .wrapping_add((high >> 32) as i32)
}

/// `outs[t][i] = row i . acts[t]` for the rows of `rows` (`outs[t].len()` rows of
/// `row_bytes` bytes each, `row_bytes` matching every activation vector's length, as
/// `super::dot_rows_batch` checks) and every token `t` of a batch. Returns `false` (writing
/// nothing) when `ty` has no NEON kernel or a buffer is shorter than the kernel reads, so the
/// caller falls back to the portable kernels.
pub fn dot_rows(
    ty: GgmlType,
    rows: &[u8],
    row_bytes: usize,
    scalings: &[BlockScaling],
    acts: &[&Activations],
    outs: &mut [&mut [f32]],
) -> bool {
    if row_bytes == 0
        || acts.len() != outs.len()
        || scalings.len() != outs.len()
        || outs.iter().any(|out| rows.len() != out.len() * row_bytes)
    {
        return false;
    }
    match ty {
        GgmlType::Q4_0 => fixed_rows::<Q4_0Format>(rows, row_bytes, scalings, acts, outs),
        GgmlType::Q4_1 => fixed_rows::<Q4_1Format>(rows, row_bytes, scalings, acts, outs),
        GgmlType::Q8_0 => fixed_rows::<Q8_0Format>(rows, row_bytes, scalings, acts, outs),
        GgmlType::Q4_K | GgmlType::Q6_K => {
            for (out, act) in outs.iter_mut().zip(acts) {
                for (o, r) in out.iter_mut().zip(rows.chunks_exact(row_bytes)) {
                    match dot_k(ty, r, act) {
                        Some(v) => *o = v,
                        None => return false,
                    }
                }
            }
            true
        }
        _ => false,
    }
}

/// The rows of a 32-element format against every token of `acts`, one pass over the rows per
/// token. Passes serving several tokens at once (each weight block unpacked once for all of
/// them) were measured slower under TCG: four tokens' block sums, accumulators and shift
/// constants do not fit in the 32 vector registers, and the spills cost more than the shared
/// unpacking saves. Checks that each activation vector holds every block and group record a
/// pass reads; `false` when one does not.
fn fixed_rows<F: Format>(
    rows: &[u8],
    row_bytes: usize,
    scalings: &[BlockScaling],
    acts: &[&Activations],
    outs: &mut [&mut [f32]],
) -> bool {
    let Some(first) = acts.first() else {
        return true;
    };
    let blocks = first.len() / QK;
    if row_bytes != blocks * F::BLOCK_BYTES
        || acts.iter().any(|act| {
            act.len() != first.len()
                || act.q8.len() < blocks
                || act.q16.len() < blocks
                || act.groups.len() < blocks.div_ceil(4)
        })
    {
        return false;
    }
    for ((out, act), scaling) in outs.iter_mut().zip(acts).zip(scalings) {
        // SAFETY: `act` holds `blocks` activation blocks and `ceil(blocks / 4)` group records
        // (checked above), and every row of `rows` is `blocks` blocks of `F` (`row_bytes`
        // checked above, `rows` a whole number of rows by `dot_rows`).
        unsafe {
            if scaling.all_normal {
                pass::<F, true>(rows, row_bytes, blocks, scaling, act, out)
            } else {
                pass::<F, false>(rows, row_bytes, blocks, scaling, act, out)
            }
        };
    }
    true
}

/// One pass over the rows for one token; `NORMAL` when the matrix has no zero or subnormal
/// scale ([`super::ScaleExponents::all_normal`]).
///
/// # Safety
/// Every row of `rows` (`row_bytes` each) must be `blocks` blocks of `F`, and `act` must hold
/// at least `blocks` activation blocks of each form and `ceil(blocks / 4)` group records.
#[inline(always)]
unsafe fn pass<F: Format, const NORMAL: bool>(
    rows: &[u8],
    row_bytes: usize,
    blocks: usize,
    scaling: &BlockScaling,
    act: &Activations,
    out: &mut [f32],
) {
    let shifts = Shifts::new(scaling);
    let whole = blocks / 4;
    let (q8, q16, groups) = (act.q8.as_ptr(), act.q16.as_ptr(), act.groups.as_ptr());
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(row_bytes)) {
        let base = row.as_ptr();
        // SAFETY: group `g` is blocks `4g..4g + 4` (or the 1-3 left at the end) of the row,
        // activation blocks `4g..` and group record `g`: all in bounds by this function's
        // contract. `vdupq` is register-only.
        let sum = unsafe {
            let mut acc = vdupq_n_s64(0);
            for g in 0..whole {
                let blk = base.add(4 * g * F::BLOCK_BYTES);
                let a = (q8.add(4 * g), q16.add(4 * g));
                acc = group_terms::<F, 4, NORMAL>(acc, blk, a, groups.add(g), &shifts);
            }
            let (blk, a, g) = (
                base.add(4 * whole * F::BLOCK_BYTES),
                (q8.add(4 * whole), q16.add(4 * whole)),
                groups.add(whole),
            );
            acc = match blocks % 4 {
                1 => group_terms::<F, 1, NORMAL>(acc, blk, a, g, &shifts),
                2 => group_terms::<F, 2, NORMAL>(acc, blk, a, g, &shifts),
                3 => group_terms::<F, 3, NORMAL>(acc, blk, a, g, &shifts),
                _ => acc,
            };
            sum_lanes(acc)
        };
        *o = scaling.finish(sum);
    }
}

/// The terms of a group of `COUNT` (1-4) consecutive blocks at `blk` against the activation
/// blocks at `q8` / `q16` and the group record at `g`: the missing blocks of a row's last group
/// are neither read nor computed (their lanes stay zero).
///
/// # Safety
/// `blk` must point to `COUNT` blocks of `F`, `q8` and `q16` to `COUNT` activation blocks each,
/// `g` to a group record.
#[inline(always)]
unsafe fn group_terms<F: Format, const COUNT: usize, const NORMAL: bool>(
    acc: int64x2_t,
    blk: *const u8,
    (q8, q16): (*const ActivationBlock, *const ActivationBlock16),
    g: *const GroupScales,
    shifts: &Shifts,
) -> int64x2_t {
    let b = F::BLOCK_BYTES;
    // SAFETY: every read is of block `k < COUNT`, activation block `k < COUNT` or the record,
    // which the caller guarantees.
    unsafe {
        let mut sums = [0i32; 4];
        sums[0] = F::block_sum::<0>(blk, q8, q16);
        if COUNT > 1 {
            sums[1] = F::block_sum::<1>(blk.add(b), q8, q16);
        }
        if COUNT > 2 {
            sums[2] = F::block_sum::<2>(blk.add(2 * b), q8, q16);
        }
        if COUNT > 3 {
            sums[3] = F::block_sum::<3>(blk.add(3 * b), q8, q16);
        }
        let headers = F::headers::<COUNT, NORMAL>(blk);
        let isum = lanes(sums[0], sums[1], sums[2], sums[3]);
        F::add_terms(acc, &headers, isum, &ld_group(&*g), shifts)
    }
}

/// The f16 scales (and Q4_1 minimums) of a group's four blocks, split into integers, one
/// block per 32-bit lane.
struct Headers {
    d_mantissa: int32x4_t,
    d_exponent: int32x4_t,
    m_mantissa: int32x4_t,
    m_exponent: int32x4_t,
}

/// One 32-element format, in the steps a group takes: each block's integer sum with its
/// activations, the group's headers, the group's scaled terms.
trait Format {
    /// Bytes of one block.
    const BLOCK_BYTES: usize;

    /// `sum(w x)` of the block at `block` with activation block `K` after `q8` / `q16` (the
    /// format reads the form it multiplies with).
    ///
    /// # Safety
    /// `block` must point to `BLOCK_BYTES` readable bytes, `q8 + K` and `q16 + K` to readable
    /// activation blocks.
    unsafe fn block_sum<const K: usize>(
        block: *const u8,
        q8: *const ActivationBlock,
        q16: *const ActivationBlock16,
    ) -> i32;

    /// The headers of the `COUNT` consecutive blocks at `blk`, one block per lane (the other
    /// lanes zero); `NORMAL` when no scale is zero or subnormal.
    ///
    /// # Safety
    /// `blk` must point to `COUNT` blocks.
    unsafe fn headers<const COUNT: usize, const NORMAL: bool>(blk: *const u8) -> Headers;

    /// `acc` plus the group's terms: the four block sums `isum`, the activations' group record
    /// `scales` (x mantissa, x shift, s_fix, q_sum) and the product's shifts.
    fn add_terms(
        acc: int64x2_t,
        headers: &Headers,
        isum: int32x4_t,
        scales: &[int32x4_t; 4],
        shifts: &Shifts,
    ) -> int64x2_t;
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

/// Activation block `K` after `a` as two registers (32 x i8), with one `ldp q` at an
/// immediate offset from one base register (see [`ld_u8x16`] for why asm).
///
/// # Safety
/// `a + K` must point to a readable activation block (16-byte aligned by its type).
#[inline(always)]
unsafe fn ld_block<const K: usize>(a: *const ActivationBlock) -> [int8x16_t; 2] {
    let (lo, hi): (int8x16_t, int8x16_t);
    // SAFETY: the caller guarantees the 32 bytes at offset 32K, aligned by the type.
    unsafe {
        asm!(
            "ldp {lo:q}, {hi:q}, [{p}, #{offset}]",
            p = in(reg) a,
            offset = const 32 * K,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    [lo, hi]
}

/// Widened activation block `K` after `a` as four registers (32 x i16), with two `ldp q` at
/// immediate offsets from one base register.
///
/// # Safety
/// `a + K` must point to a readable activation block (16-byte aligned by its type).
#[inline(always)]
unsafe fn ld_block16<const K: usize>(a: *const ActivationBlock16) -> [int16x8_t; 4] {
    let (b0, b1, b2, b3): (int16x8_t, int16x8_t, int16x8_t, int16x8_t);
    // SAFETY: the caller guarantees the 64 bytes at offset 64K, aligned by the type.
    unsafe {
        asm!(
            "ldp {b0:q}, {b1:q}, [{p}, #{first}]",
            "ldp {b2:q}, {b3:q}, [{p}, #{second}]",
            p = in(reg) a,
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

/// `sum(q x)` of a Q4 block's 16 nibble bytes at `p + OFFSET` with its widened, permuted
/// activations: the bytes read as eight 16-bit lanes are cut into four vectors of one weight
/// per lane (`and`/`ushr`), which meet their activations in `mul` + three `mla` on 16-bit
/// lanes (each lane sums 4 products of at most 15 x 127: no overflow), then one `saddlv`.
/// 14 instructions per 32 weights; the widening `smull`/`smlal` form on 8-bit activations takes
/// 10, but ran 50% slower under TCG, which inlines the 16-bit forms and not the widening ones.
///
/// # Safety
/// `p + OFFSET` must point to 16 readable bytes.
#[inline(always)]
unsafe fn nibble_sum<const OFFSET: i32>(p: *const u8, a: [int16x8_t; 4]) -> i32 {
    // SAFETY: forwarded load guarantee; the rest is register-only NEON.
    unsafe {
        let v = vreinterpretq_u16_u8(ld_u8x16_at::<OFFSET>(p));
        let low = vdupq_n_u16(0x000f);
        let n0 = vreinterpretq_s16_u16(vandq_u16(v, low));
        let n1 = vreinterpretq_s16_u16(vandq_u16(vshrq_n_u16::<4>(v), low));
        let n2 = vreinterpretq_s16_u16(vandq_u16(vshrq_n_u16::<8>(v), low));
        let n3 = vreinterpretq_s16_u16(vshrq_n_u16::<12>(v));
        let mut sum = vmulq_s16(n0, a[0]);
        sum = vmlaq_s16(sum, n1, a[1]);
        sum = vmlaq_s16(sum, n2, a[2]);
        sum = vmlaq_s16(sum, n3, a[3]);
        vaddlvq_s16(sum)
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

/// `fixed::split_f16` on eight lanes of f16 bits: (signed mantissa, exponent). With `NORMAL`
/// (no lane's exponent field is 0, see `ScaleExponents::all_normal`) the implicit bit is
/// always set and the exponent is the field itself: three instructions fewer, same result for
/// such lanes.
#[inline(always)]
fn split_f16x8<const NORMAL: bool>(h: uint16x8_t) -> (int16x8_t, int16x8_t) {
    // SAFETY: register-only NEON.
    unsafe {
        let field = vandq_u16(vshrq_n_u16::<10>(h), vdupq_n_u16(0x1f));
        let (magnitude, exponent) = if NORMAL {
            (
                vorrq_u16(vandq_u16(h, vdupq_n_u16(0x3ff)), vdupq_n_u16(0x400)),
                field,
            )
        } else {
            let normal = vtstq_u16(h, vdupq_n_u16(0x7c00));
            let magnitude = vorrq_u16(
                vandq_u16(h, vdupq_n_u16(0x3ff)),
                vandq_u16(normal, vdupq_n_u16(0x400)),
            );
            (magnitude, vmaxq_u16(field, vdupq_n_u16(1)))
        };
        let negative = vshrq_n_s16::<15>(vreinterpretq_s16_u16(h));
        let mantissa = vsubq_s16(
            veorq_s16(vreinterpretq_s16_u16(magnitude), negative),
            negative,
        );
        (mantissa, vreinterpretq_s16_u16(exponent))
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

/// `acc += d_fix * (isum * X)` for one group and token (see `portable::scale_term`).
#[inline(always)]
fn add_scale_terms(
    acc: int64x2_t,
    headers: &Headers,
    isum: int32x4_t,
    scales: &[int32x4_t; 4],
    shifts: &Shifts,
) -> int64x2_t {
    // SAFETY: register-only NEON.
    unsafe {
        let [x, x_shift, _, _] = *scales;
        let d_fix = vshlq_s32(
            headers.d_mantissa,
            vaddq_s32(vaddq_s32(headers.d_exponent, x_shift), shifts.d),
        );
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

/// The first 4 bytes of each of the first `COUNT` of four consecutive blocks of `BYTES` bytes
/// at `blk`, one block per 32-bit lane (the other lanes zero): Q4_1's `d | m << 16`, and for
/// Q4_0/Q8_0 `d` in the low half (the high half, the first weights, is ignored).
///
/// # Safety
/// `blk` must point to `COUNT` blocks of `BYTES >= 4` bytes.
#[inline(always)]
unsafe fn gather_headers<const BYTES: usize, const COUNT: usize>(blk: *const u8) -> uint16x8_t {
    // SAFETY: each lane load reads the first 4 bytes of a block `k < COUNT`; the rest is
    // register-only NEON.
    unsafe {
        let mut h = vdupq_n_u32(0);
        h = ld_lane_u32::<0>(h, blk);
        if COUNT > 1 {
            h = ld_lane_u32::<1>(h, blk.add(BYTES));
        }
        if COUNT > 2 {
            h = ld_lane_u32::<2>(h, blk.add(2 * BYTES));
        }
        if COUNT > 3 {
            h = ld_lane_u32::<3>(h, blk.add(3 * BYTES));
        }
        vreinterpretq_u16_u32(h)
    }
}

/// The scales of the first `COUNT` blocks at `blk` (no minimums: Q4_0 and Q8_0).
///
/// # Safety
/// As [`gather_headers`].
#[inline(always)]
unsafe fn scale_headers<const BYTES: usize, const COUNT: usize, const NORMAL: bool>(
    blk: *const u8,
) -> Headers {
    // SAFETY: forwarded to the caller's guarantee; the rest is register-only NEON.
    unsafe {
        let (mantissa, exponent) = split_f16x8::<NORMAL>(gather_headers::<BYTES, COUNT>(blk));
        let zero = vdupq_n_s32(0);
        Headers {
            d_mantissa: low_halves(mantissa),
            d_exponent: low_halves(exponent),
            m_mantissa: zero,
            m_exponent: zero,
        }
    }
}

struct Q4_1Format;

impl Format for Q4_1Format {
    const BLOCK_BYTES: usize = Q4_1_BYTES;

    #[inline(always)]
    unsafe fn block_sum<const K: usize>(
        block: *const u8,
        _q8: *const ActivationBlock,
        q16: *const ActivationBlock16,
    ) -> i32 {
        // SAFETY: the nibbles are bytes 4..20 of the 20-byte block; `q16 + K` readable.
        unsafe { nibble_sum::<4>(block, ld_block16::<K>(q16)) }
    }

    #[inline(always)]
    unsafe fn headers<const COUNT: usize, const NORMAL: bool>(blk: *const u8) -> Headers {
        // SAFETY: d | m << 16 are bytes 0..4 of each block `k < COUNT` (the caller's
        // guarantee); the rest is register-only NEON.
        unsafe {
            let (mantissa, exponent) =
                split_f16x8::<NORMAL>(gather_headers::<Q4_1_BYTES, COUNT>(blk));
            Headers {
                d_mantissa: low_halves(mantissa),
                d_exponent: low_halves(exponent),
                m_mantissa: high_halves(mantissa),
                m_exponent: high_halves(exponent),
            }
        }
    }

    #[inline(always)]
    fn add_terms(
        acc: int64x2_t,
        headers: &Headers,
        isum: int32x4_t,
        scales: &[int32x4_t; 4],
        shifts: &Shifts,
    ) -> int64x2_t {
        let acc = add_scale_terms(acc, headers, isum, scales, shifts);
        // acc += m_fix * s' (see `portable::min_term`).
        // SAFETY: register-only NEON.
        unsafe {
            let m_fix = vshlq_s32(headers.m_mantissa, vaddq_s32(headers.m_exponent, shifts.m));
            let s = vshlq_s32(scales[2], shifts.s);
            let acc = vmlal_s32(acc, vget_low_s32(m_fix), vget_low_s32(s));
            vmlal_high_s32(acc, m_fix, s)
        }
    }
}

struct Q4_0Format;

impl Format for Q4_0Format {
    const BLOCK_BYTES: usize = Q4_0_BYTES;

    #[inline(always)]
    unsafe fn block_sum<const K: usize>(
        block: *const u8,
        _q8: *const ActivationBlock,
        q16: *const ActivationBlock16,
    ) -> i32 {
        // SAFETY: the nibbles are bytes 2..18 of the 18-byte block; `q16 + K` readable.
        unsafe { nibble_sum::<2>(block, ld_block16::<K>(q16)) }
    }

    #[inline(always)]
    unsafe fn headers<const COUNT: usize, const NORMAL: bool>(blk: *const u8) -> Headers {
        // SAFETY: forwarded: d is bytes 0..2 of each block.
        unsafe { scale_headers::<Q4_0_BYTES, COUNT, NORMAL>(blk) }
    }

    #[inline(always)]
    fn add_terms(
        acc: int64x2_t,
        headers: &Headers,
        isum: int32x4_t,
        scales: &[int32x4_t; 4],
        shifts: &Shifts,
    ) -> int64x2_t {
        // The weights are q - 8: subtract 8 sum(x).
        // SAFETY: register-only NEON.
        let isum = unsafe { vsubq_s32(isum, vshlq_n_s32::<3>(scales[3])) };
        add_scale_terms(acc, headers, isum, scales, shifts)
    }
}

struct Q8_0Format;

impl Format for Q8_0Format {
    const BLOCK_BYTES: usize = Q8_0_BYTES;

    #[inline(always)]
    unsafe fn block_sum<const K: usize>(
        block: *const u8,
        q8: *const ActivationBlock,
        _q16: *const ActivationBlock16,
    ) -> i32 {
        // SAFETY: the weights are bytes 2..34 of the 34-byte block; `q8 + K` readable; the
        // rest is register-only. Widening multiplies here: 10 instructions per block against
        // 17 for the 16-bit form, for a little more host time (one matrix, the output).
        unsafe {
            let a = ld_block::<K>(q8);
            let w0 = vreinterpretq_s8_u8(ld_u8x16_at::<2>(block));
            let w1 = vreinterpretq_s8_u8(ld_u8x16_at::<18>(block));
            // Two products per 16-bit lane in each accumulator: at most 2 x 128 x 127.
            let p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(a[0])), w0, a[0]);
            let p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(a[1])), w1, a[1]);
            vaddvq_s32(vpadalq_s16(vpaddlq_s16(p0), p1))
        }
    }

    #[inline(always)]
    unsafe fn headers<const COUNT: usize, const NORMAL: bool>(blk: *const u8) -> Headers {
        // SAFETY: forwarded: d is bytes 0..2 of each block.
        unsafe { scale_headers::<Q8_0_BYTES, COUNT, NORMAL>(blk) }
    }

    #[inline(always)]
    fn add_terms(
        acc: int64x2_t,
        headers: &Headers,
        isum: int32x4_t,
        scales: &[int32x4_t; 4],
        shifts: &Shifts,
    ) -> int64x2_t {
        add_scale_terms(acc, headers, isum, scales, shifts)
    }
}

/// Eight registers of four `f32` (one block of 32 activations) with four `ldp q`.
#[inline(always)]
fn ld_f32x32(x: &[f32; QK]) -> [float32x4_t; 8] {
    let (a, b, c, d, e, f, g, h): (
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
    );
    // SAFETY: `x` is a valid reference to 128 bytes; `ldp q` at a 4-byte aligned address is
    // allowed on normal memory (SCTLR_EL1.A clear, see `ld_u8x16_at`).
    unsafe {
        asm!(
            "ldp {a:q}, {b:q}, [{p}]",
            "ldp {c:q}, {d:q}, [{p}, #32]",
            "ldp {e:q}, {f:q}, [{p}, #64]",
            "ldp {g:q}, {h:q}, [{p}, #96]",
            p = in(reg) x.as_ptr(),
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
    [a, b, c, d, e, f, g, h]
}

/// `max(0, max |x|)` with NaN ignored, as `f32::max` folds it, in integer arithmetic: the bit
/// patterns of non-negative floats order like the floats, so with the sign bit cleared and
/// NaNs (patterns above infinity's) replaced by zero, the largest pattern is the largest
/// magnitude. Under TCG each vector float operation is a helper call (~70 ns) and each integer
/// one is inlined (~1.5 ns): this is ~15x cheaper than `fabs`/`fmaxnm`, bit for bit the same.
pub fn abs_max(x: &[f32; QK]) -> f32 {
    let v = ld_f32x32(x);
    // SAFETY: register-only NEON.
    unsafe {
        let magnitude = vdupq_n_u32(0x7fff_ffff);
        let infinity = vdupq_n_u32(0x7f80_0000);
        let abs = |r: float32x4_t| {
            let a = vandq_u32(vreinterpretq_u32_f32(r), magnitude);
            // NaN (above infinity) becomes 0, which never wins against the fold's 0.0.
            vbicq_u32(a, vcgtq_u32(a, infinity))
        };
        let m01 = vmaxq_u32(abs(v[0]), abs(v[1]));
        let m23 = vmaxq_u32(abs(v[2]), abs(v[3]));
        let m45 = vmaxq_u32(abs(v[4]), abs(v[5]));
        let m67 = vmaxq_u32(abs(v[6]), abs(v[7]));
        let m = vmaxq_u32(vmaxq_u32(m01, m23), vmaxq_u32(m45, m67));
        // Lanes through general registers (an across-lanes `umaxv` is a helper call in TCG).
        let wide = vreinterpretq_u64_u32(m);
        let (low, high) = (vgetq_lane_u64::<0>(wide), vgetq_lane_u64::<1>(wide));
        let lanes = [
            low as u32,
            (low >> 32) as u32,
            high as u32,
            (high >> 32) as u32,
        ];
        f32::from_bits(lanes.into_iter().max().unwrap_or(0))
    }
}

/// `portable::round_into` with NEON: `fmul`, `fcvtas` (round half away, saturating, NaN to 0:
/// the scalar conversion's semantics), clamp, narrow, and `uzp1`/`uzp2` for the permuted
/// 16-bit form (even elements of each half, then odd ones).
pub fn round_into(
    x: &[f32; QK],
    inv: f32,
    q8: &mut ActivationBlock,
    q16: &mut ActivationBlock16,
) -> i32 {
    let v = ld_f32x32(x);
    // SAFETY: register-only NEON, then stores through the two exclusive references (32 and
    // 64 bytes, 16-byte aligned by their types).
    unsafe {
        let inv = vdupq_n_f32(inv);
        let (lo, hi) = (vdupq_n_s32(-127), vdupq_n_s32(127));
        let q = |r: float32x4_t| vmaxq_s32(vminq_s32(vcvtaq_s32_f32(vmulq_f32(r, inv)), hi), lo);
        let n0 = vmovn_high_s32(vmovn_s32(q(v[0])), q(v[1])); // x0..8
        let n1 = vmovn_high_s32(vmovn_s32(q(v[2])), q(v[3])); // x8..16
        let n2 = vmovn_high_s32(vmovn_s32(q(v[4])), q(v[5])); // x16..24
        let n3 = vmovn_high_s32(vmovn_s32(q(v[6])), q(v[7])); // x24..32
        let b0 = vmovn_high_s16(vmovn_s16(n0), n1);
        let b1 = vmovn_high_s16(vmovn_s16(n2), n3);
        let p = [
            vuzp1q_s16(n0, n1),
            vuzp1q_s16(n2, n3),
            vuzp2q_s16(n0, n1),
            vuzp2q_s16(n2, n3),
        ];
        asm!(
            "stp {b0:q}, {b1:q}, [{q8}]",
            "stp {p0:q}, {p1:q}, [{q16}]",
            "stp {p2:q}, {p3:q}, [{q16}, #32]",
            q8 = in(reg) q8 as *mut ActivationBlock,
            q16 = in(reg) q16 as *mut ActivationBlock16,
            b0 = in(vreg) b0,
            b1 = in(vreg) b1,
            p0 = in(vreg) p[0],
            p1 = in(vreg) p[1],
            p2 = in(vreg) p[2],
            p3 = in(vreg) p[3],
            options(nostack, preserves_flags)
        );
        // |sum| of four lanes of at most 127 each fits in i16.
        vaddlvq_s16(vaddq_s16(vaddq_s16(n0, n1), vaddq_s16(n2, n3)))
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
    if !act.len().is_multiple_of(QK_K)
        || row.len() != superblocks * bytes
        || act.qk.len() < superblocks * QK_K
        || act.qk16.len() < superblocks * QK_K
        || act.bsums16.len() < superblocks * (QK_K / 16)
        || act.bsums32.len() < superblocks * (QK_K / 32)
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

/// The eight 6-bit scales and the eight 6-bit mins of a Q4_K super-block (its 12 packed bytes)
/// as eight bytes each, unpacked with word-wide masks: the values `quant::q4_k_scale_min`
/// gives one sub-block at a time.
#[inline(always)]
pub fn q4_k_scales_mins(packed: &[u8; 12]) -> (u64, u64) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const TOP2: u32 = 0x0303_0303;
    let word = |i: usize| {
        u32::from_le_bytes([
            packed[4 * i],
            packed[4 * i + 1],
            packed[4 * i + 2],
            packed[4 * i + 3],
        ])
    };
    let (w0, w1, w2) = (word(0), word(1), word(2));
    // Sub-blocks 0-3: the low 6 bits of bytes 0-3 (scales) and 4-7 (mins). Sub-blocks 4-7: the
    // nibbles of bytes 8-11, topped with the 2 high bits of bytes 0-3 (scales) and 4-7 (mins).
    let scales_low = w0 & LOW6;
    let mins_low = w1 & LOW6;
    let scales_high = (w2 & LOW4) | (((w0 >> 6) & TOP2) << 4);
    let mins_high = ((w2 >> 4) & LOW4) | (((w1 >> 6) & TOP2) << 4);
    (
        u64::from(scales_low) | (u64::from(scales_high) << 32),
        u64::from(mins_low) | (u64::from(mins_high) << 32),
    )
}

/// Four 8-lane i16 registers from the 64 bytes at `p` (two `ldp q`, as [`ld_block16`]).
///
/// # Safety
/// `p` must point to 32 readable `i16`.
#[inline(always)]
unsafe fn ld_i16x32(p: *const i16) -> [int16x8_t; 4] {
    // SAFETY: ld_block16 reads the 64 bytes at its pointer with `ldp q`, which has no alignment
    // requirement on normal memory (see `ld_u8x16_at`); no reference to a block is formed.
    unsafe { ld_block16::<0>(p as *const ActivationBlock16) }
}

/// One Q4_K sub-block pair (64 weights: 32 nibble bytes at `q`) against its widened, permuted
/// activations at `x` ([`super::PERMUTED_K`]), each sub-block's sums times its scale (lanes `A`
/// and `B` of `scales`) added into `acc`. The bytes read as 16-bit lanes are cut into one
/// weight per lane with `and`/`ushr` and meet their activations in `mul` + three `mla` per
/// sub-block (each lane sums 4 products of at most 15 x 128: no overflow); the scale joins in
/// a widening multiply-add by lane.
///
/// # Safety
/// `q` must point to 32 readable bytes and `x` to 64 readable `i16`.
#[inline(always)]
unsafe fn q4_k_pair<const A: i32, const B: i32>(
    acc: int32x4_t,
    q: *const u8,
    x: *const i16,
    scales: int16x8_t,
) -> int32x4_t {
    // SAFETY: forwarded load guarantees; the rest is register-only NEON.
    unsafe {
        let q0 = vreinterpretq_u16_u8(ld_u8x16(q));
        let q1 = vreinterpretq_u16_u8(ld_u8x16(q.add(16)));
        let xa = ld_i16x32(x);
        let xb = ld_i16x32(x.add(32));
        let low = vdupq_n_u16(0x000f);
        let w = |v: uint16x8_t| vreinterpretq_s16_u16(v);
        let mut a = vmulq_s16(w(vandq_u16(q0, low)), xa[0]);
        a = vmlaq_s16(a, w(vandq_u16(vshrq_n_u16::<8>(q0), low)), xa[1]);
        a = vmlaq_s16(a, w(vandq_u16(q1, low)), xa[2]);
        a = vmlaq_s16(a, w(vandq_u16(vshrq_n_u16::<8>(q1), low)), xa[3]);
        let mut b = vmulq_s16(w(vandq_u16(vshrq_n_u16::<4>(q0), low)), xb[0]);
        b = vmlaq_s16(b, w(vshrq_n_u16::<12>(q0)), xb[1]);
        b = vmlaq_s16(b, w(vandq_u16(vshrq_n_u16::<4>(q1), low)), xb[2]);
        b = vmlaq_s16(b, w(vshrq_n_u16::<12>(q1)), xb[3]);
        let mut acc = vmlal_laneq_s16::<A>(acc, vget_low_s16(a), scales);
        acc = vmlal_high_laneq_s16::<A>(acc, a, scales);
        acc = vmlal_laneq_s16::<B>(acc, vget_low_s16(b), scales);
        vmlal_high_laneq_s16::<B>(acc, b, scales)
    }
}

/// Q4_K x Q8_K (see `portable::dot_q4_k`); sizes checked by `dot_k`. The integer sums are the
/// portable kernel's (exact), so with the float steps in the same order the result is
/// bit-identical. One 32-bit accumulator per super-block: one `addv` per 256 weights.
fn dot_q4_k(row: &[u8], act: &Activations, superblocks: usize) -> f32 {
    let mut sum = 0f32;
    for (sb, b) in row.chunks_exact(Q4_K_BYTES).take(superblocks).enumerate() {
        let dx = act.dk[sb];
        let d = f16_at_fast(b, 0) * dx;
        let dmin = f16_at_fast(b, 2) * dx;
        let mut packed = [0u8; 12];
        packed.copy_from_slice(&b[4..16]);
        let (scales, mins) = q4_k_scales_mins(&packed);
        // SAFETY: the 128 nibble bytes at 16.. of the 144-byte block, the super-block's 256
        // widened activations and 8 per-32 sums (qk16 holds as many values as qk, bsums32 one
        // per 32 of them; dot_k checked their lengths).
        let (sumi, summ) = unsafe {
            // Scales and mins are at most 63: as bytes widened to i16 they are the same values.
            let scales = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(scales)));
            let mins = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(mins)));
            let sums = ld_i16x8(act.bsums32.as_ptr().add(8 * sb));
            let summ = vmlal_high_s16(
                vmull_s16(vget_low_s16(mins), vget_low_s16(sums)),
                mins,
                sums,
            );
            let q = b.as_ptr().add(16);
            let x = act.qk16.as_ptr().add(sb * QK_K);
            let mut acc = vdupq_n_s32(0);
            acc = q4_k_pair::<0, 1>(acc, q, x, scales);
            acc = q4_k_pair::<2, 3>(acc, q.add(32), x.add(64), scales);
            acc = q4_k_pair::<4, 5>(acc, q.add(64), x.add(128), scales);
            acc = q4_k_pair::<6, 7>(acc, q.add(96), x.add(192), scales);
            (sum_lanes32(acc), sum_lanes32(summ))
        };
        sum += d * sumi as f32 - dmin * summ as f32;
    }
    sum
}

/// Eight i16 from `p` (see [`ld_u8x16`]).
///
/// # Safety
/// `p` must point to 8 readable `i16`.
#[inline(always)]
unsafe fn ld_i16x8(p: *const i16) -> int16x8_t {
    // SAFETY: forwarded to the caller's guarantee (16 bytes).
    unsafe { vreinterpretq_s16_u8(ld_u8x16(p as *const u8)) }
}

/// One Q6_K half super-block (128 weights: 64 `ql` bytes, 32 `qh` bytes) against its widened,
/// permuted activations at `x` ([`super::PERMUTED_K`]): each 16-weight group's sum times its
/// scale (lane `g` of `scales`) added into `acc`. Weight `l` of a quarter is the nibble of
/// `ql` byte `l` (or `l + 32`) topped with two bits of `qh` byte `l`; read as 16-bit lanes,
/// both nibbles and both `qh` pairs of two neighbouring weights come out with `and`/shifts and
/// one `orr` per 8 weights, kept unsigned (0..63: the offset of 32 is the caller's, through the
/// activation sums). Each 16-bit lane sums 2 products of at most 63 x 128: no overflow.
///
/// # Safety
/// `ql` must point to 64 readable bytes, `qh` to 32, `x` to 128 readable `i16`.
#[inline(always)]
unsafe fn q6_k_half(
    acc: int32x4_t,
    ql: *const u8,
    qh: *const u8,
    x: *const i16,
    scales: int16x8_t,
) -> int32x4_t {
    // SAFETY: forwarded load guarantees; the rest is register-only NEON.
    unsafe {
        let u16s = |p: *const u8| vreinterpretq_u16_u8(ld_u8x16(p));
        let (l0, l1, l2, l3) = (
            u16s(ql),
            u16s(ql.add(16)),
            u16s(ql.add(32)),
            u16s(ql.add(48)),
        );
        let (h0, h1) = (u16s(qh), u16s(qh.add(16)));
        let nibble = vdupq_n_u16(0x000f);
        let top = vdupq_n_u16(0x0030);
        let w = |v: uint16x8_t| vreinterpretq_s16_u16(v);
        // The low nibbles of the even / odd bytes, with the qh pair at bits `SHIFT` of the even
        // byte (`SHIFT + 8` of the odd one) moved to bits 4-5.
        let low_pair = |l: uint16x8_t, even_top: uint16x8_t, odd_top: uint16x8_t| {
            (
                w(vorrq_u16(vandq_u16(l, nibble), vandq_u16(even_top, top))),
                w(vorrq_u16(
                    vandq_u16(vshrq_n_u16::<8>(l), nibble),
                    vandq_u16(odd_top, top),
                )),
            )
        };
        let high_pair = |l: uint16x8_t, even_top: uint16x8_t, odd_top: uint16x8_t| {
            (
                w(vorrq_u16(
                    vandq_u16(vshrq_n_u16::<4>(l), nibble),
                    vandq_u16(even_top, top),
                )),
                w(vorrq_u16(vshrq_n_u16::<12>(l), vandq_u16(odd_top, top))),
            )
        };
        let x0 = ld_i16x32(x);
        let x1 = ld_i16x32(x.add(32));
        let x2 = ld_i16x32(x.add(64));
        let x3 = ld_i16x32(x.add(96));
        let group = |(even, odd): (int16x8_t, int16x8_t), xe: int16x8_t, xo: int16x8_t| {
            vmlaq_s16(vmulq_s16(even, xe), odd, xo)
        };
        // Quarter 1: ql[l] low nibble, qh[l] bits 0-1 (groups 0, 1).
        let g0 = group(
            low_pair(l0, vshlq_n_u16::<4>(h0), vshrq_n_u16::<4>(h0)),
            x0[0],
            x0[1],
        );
        let g1 = group(
            low_pair(l1, vshlq_n_u16::<4>(h1), vshrq_n_u16::<4>(h1)),
            x0[2],
            x0[3],
        );
        // Quarter 2: ql[l + 32] low nibble, qh[l] bits 2-3 (groups 2, 3).
        let g2 = group(
            low_pair(l2, vshlq_n_u16::<2>(h0), vshrq_n_u16::<6>(h0)),
            x1[0],
            x1[1],
        );
        let g3 = group(
            low_pair(l3, vshlq_n_u16::<2>(h1), vshrq_n_u16::<6>(h1)),
            x1[2],
            x1[3],
        );
        // Quarter 3: ql[l] high nibble, qh[l] bits 4-5 (groups 4, 5).
        let g4 = group(high_pair(l0, h0, vshrq_n_u16::<8>(h0)), x2[0], x2[1]);
        let g5 = group(high_pair(l1, h1, vshrq_n_u16::<8>(h1)), x2[2], x2[3]);
        // Quarter 4: ql[l + 32] high nibble, qh[l] bits 6-7 (groups 6, 7).
        let g6 = group(
            high_pair(l2, vshrq_n_u16::<2>(h0), vshrq_n_u16::<10>(h0)),
            x3[0],
            x3[1],
        );
        let g7 = group(
            high_pair(l3, vshrq_n_u16::<2>(h1), vshrq_n_u16::<10>(h1)),
            x3[2],
            x3[3],
        );
        let mut acc = vmlal_laneq_s16::<0>(acc, vget_low_s16(g0), scales);
        acc = vmlal_high_laneq_s16::<0>(acc, g0, scales);
        acc = vmlal_laneq_s16::<1>(acc, vget_low_s16(g1), scales);
        acc = vmlal_high_laneq_s16::<1>(acc, g1, scales);
        acc = vmlal_laneq_s16::<2>(acc, vget_low_s16(g2), scales);
        acc = vmlal_high_laneq_s16::<2>(acc, g2, scales);
        acc = vmlal_laneq_s16::<3>(acc, vget_low_s16(g3), scales);
        acc = vmlal_high_laneq_s16::<3>(acc, g3, scales);
        acc = vmlal_laneq_s16::<4>(acc, vget_low_s16(g4), scales);
        acc = vmlal_high_laneq_s16::<4>(acc, g4, scales);
        acc = vmlal_laneq_s16::<5>(acc, vget_low_s16(g5), scales);
        acc = vmlal_high_laneq_s16::<5>(acc, g5, scales);
        acc = vmlal_laneq_s16::<6>(acc, vget_low_s16(g6), scales);
        acc = vmlal_high_laneq_s16::<6>(acc, g6, scales);
        acc = vmlal_laneq_s16::<7>(acc, vget_low_s16(g7), scales);
        vmlal_high_laneq_s16::<7>(acc, g7, scales)
    }
}

/// Q6_K x Q8_K (see `portable::dot_q6_k`); sizes checked by `dot_k`. With the weights kept
/// unsigned, `sum(sc (q - 32) x) = sum(sc q x) - 32 sum(sc sum16(x))`, the second term from
/// the activations' 16-element sums: the same integer as the portable kernel's, so with its
/// float step the result is bit-identical.
fn dot_q6_k(row: &[u8], act: &Activations, superblocks: usize) -> f32 {
    let mut sum = 0f32;
    for (sb, b) in row.chunks_exact(Q6_K_BYTES).take(superblocks).enumerate() {
        let d = f16_at_fast(b, 208) * act.dk[sb];
        // SAFETY: ql (64 bytes at 64 * half), qh (32 bytes at 128 + 32 * half) and the 16 scale
        // bytes at 192 lie inside the 210-byte block; the super-block's 256 widened activations
        // and 16 per-16 sums are in qk16 and bsums16 (dot_k checked their lengths).
        let sumi = unsafe {
            let p = b.as_ptr();
            let x = act.qk16.as_ptr().add(sb * QK_K);
            let scale_bytes = vreinterpretq_s8_u8(ld_u8x16(p.add(192)));
            let (scales0, scales1) = (
                vmovl_s8(vget_low_s8(scale_bytes)),
                vmovl_high_s8(scale_bytes),
            );
            // offset = sum_g sc_g sum16_g(x): the -32 of every weight, through the sums.
            let sums = act.bsums16.as_ptr().add(16 * sb);
            let (sums0, sums1) = (ld_i16x8(sums), ld_i16x8(sums.add(8)));
            let mut offset = vmull_s16(vget_low_s16(scales0), vget_low_s16(sums0));
            offset = vmlal_high_s16(offset, scales0, sums0);
            offset = vmlal_s16(offset, vget_low_s16(scales1), vget_low_s16(sums1));
            offset = vmlal_high_s16(offset, scales1, sums1);
            let mut acc = vdupq_n_s32(0);
            acc = q6_k_half(acc, p, p.add(128), x, scales0);
            acc = q6_k_half(acc, p.add(64), p.add(160), x.add(128), scales1);
            sum_lanes32(vsubq_s32(acc, vshlq_n_s32::<5>(offset)))
        };
        sum += d * sumi as f32;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::super::portable;
    use super::*;
    use crate::quant::{f16_to_f32, q4_k_scale_min, quantize_row};
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
    fn neon_quantization_equals_the_portable_specification() {
        let mut s = 7u32;
        let mut rnd = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 8.0
        };
        let mut cases: Vec<[f32; QK]> = (0..200).map(|_| core::array::from_fn(|_| rnd())).collect();
        cases.push([0.0; QK]);
        cases.push([-0.0; QK]);
        cases.push([f32::NAN; QK]);
        let mut mixed: [f32; QK] = core::array::from_fn(|i| i as f32 - 15.5);
        mixed[3] = f32::NAN;
        mixed[7] = f32::INFINITY;
        mixed[9] = -1e30;
        mixed[11] = 1e-40; // subnormal
        cases.push(mixed);
        let mut signed_nans: [f32; QK] = core::array::from_fn(|i| -(i as f32) * 1e-39);
        signed_nans[0] = f32::from_bits(0xffc0_0001); // negative NaN
        signed_nans[5] = f32::NEG_INFINITY;
        cases.push(signed_nans);
        let mut big_nan: [f32; QK] = [-2.5; QK];
        big_nan[31] = f32::from_bits(0x7fff_ffff);
        cases.push(big_nan);
        cases.push(core::array::from_fn(
            |i| if i % 2 == 0 { 0.5 } else { -1.5 },
        )); // ties
        for x in &cases {
            let portable_max = x.iter().fold(0f32, |m, &v| m.max(v.abs()));
            assert_eq!(abs_max(x).to_bits(), portable_max.to_bits(), "{x:?}");
            for inv in [0.0f32, 1.0, 127.0 / 3.9, 3.0e38, f32::NAN] {
                let (mut a8, mut a16) = (ActivationBlock::default(), ActivationBlock16::default());
                let (mut b8, mut b16) = (ActivationBlock::default(), ActivationBlock16::default());
                let sa = round_into(x, inv, &mut a8, &mut a16);
                let sb = portable::round_into(x, inv, &mut b8, &mut b16);
                assert_eq!((sa, a8, a16), (sb, b8, b16), "inv {inv} x {x:?}");
            }
        }
    }

    #[test]
    fn batched_passes_give_each_tokens_own_result() {
        let n = 576; // four whole groups and a two-block tail
        let mut s = 99u32;
        let mut rnd = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 4.0
        };
        let tokens = crate::limits::MAX_BATCH;
        let acts: Vec<Activations> = (0..tokens)
            .map(|t| {
                let x: Vec<f32> = (0..n).map(|i| rnd() * (1 + (i + t) % 7) as f32).collect();
                let mut act = Activations::new(n);
                act.set(&x, true, false);
                act
            })
            .collect();
        let rows = 3;
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let w: Vec<f32> = (0..n * rows).map(|_| rnd()).collect();
            let mut bytes = Vec::new();
            assert!(quantize_row(ty, &w, &mut bytes));
            let row_bytes = bytes.len() / rows;
            let scales = super::super::ScaleExponents::of(ty, &bytes);
            for batch in 1..=tokens {
                let refs: Vec<&Activations> = acts[..batch].iter().collect();
                let scalings: Vec<BlockScaling> = refs
                    .iter()
                    .map(|act| super::super::block_scaling(ty, scales, act))
                    .collect();
                let mut out = alloc::vec![[0f32; 3]; batch];
                let mut outs: Vec<&mut [f32]> = out.iter_mut().map(|o| &mut o[..]).collect();
                assert!(dot_rows(ty, &bytes, row_bytes, &scalings, &refs, &mut outs));
                for (t, got) in out.iter().enumerate() {
                    for (r, &v) in got.iter().enumerate() {
                        let row = &bytes[r * row_bytes..(r + 1) * row_bytes];
                        let port = portable::dot(ty, row, &scalings[t], &acts[t]);
                        assert_eq!(
                            v.to_bits(),
                            port.to_bits(),
                            "{ty} batch {batch} token {t} row {r}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn integer_f16_conversion_equals_fcvt() {
        for bits in 0..=u16::MAX {
            let fast = f16_at_fast(&bits.to_le_bytes(), 0);
            assert_eq!(fast.to_bits(), f16_hw(bits).to_bits(), "{bits:#06x}");
        }
    }

    #[test]
    fn q4_k_scales_unpack_like_the_portable_reader() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            let mut packed = [0u8; 12];
            for byte in packed.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            let (scales, mins) = q4_k_scales_mins(&packed);
            for j in 0..8 {
                let (sc, m) = q4_k_scale_min(j, &packed);
                assert_eq!(((scales >> (8 * j)) & 0xff) as u8, sc, "{packed:?} {j}");
                assert_eq!(((mins >> (8 * j)) & 0xff) as u8, m, "{packed:?} {j}");
            }
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
            assert!(dot_rows(
                ty,
                &bytes,
                row_bytes,
                &[scaling],
                &[&act],
                &mut [&mut neon]
            ));
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
                assert!(dot_rows(
                    ty,
                    &bytes,
                    bytes.len(),
                    &[scaling],
                    &[&act],
                    &mut [&mut neon]
                ));
                let port = portable::dot(ty, &bytes, &scaling, &act);
                assert_eq!(neon[0].to_bits(), port.to_bits(), "{ty} byte {byte:#x}");
            }
        }
    }
}
