//! NEON dot-product kernels for AArch64 (Cortex-A72 class: ARMv8.0, no `sdot`).
//!
//! Designed for the instruction count per weight (what QEMU TCG time is proportional to).
//! Q4_1 and Q8_0 rows are processed four blocks (128 weights) at a time:
//!
//! * integer part, per block: the weights' nibbles are split with `and`/`ushr`, multiplied by
//!   the 8-bit activations with `smull`/`smlal` (4 instructions for 32 products; the 16-bit
//!   lanes cannot overflow: 4 x 15 x 127 for Q4_1, 2 x 128 x 127 for Q8_0 (activations stay in
//!   -127..=127)), widened once with `saddlp`; the four blocks' sums are reduced together with
//!   three `addp`;
//! * float part, per four blocks: the f16 scales of the four block headers are gathered with
//!   `trn1`/`zip1` and converted with one `fcvtl`, then `isum * d * dx + m * s` is evaluated on
//!   4 lanes (separate multiply and add, no fused multiply-add).
//!
//! That is about 16 instructions per 32 weights (the first version, one block at a time with a
//! horizontal add each, took 38). The remaining blocks of a row (row length not a multiple of
//! 128) go one at a time. The float sums are accumulated in a different order than the
//! portable kernel's strictly sequential one, so results agree to float rounding, not to the
//! bit: the tests bound the difference at 1e-6 of the sum of absolute block terms.
//!
//! Q4_K and Q6_K (TinyLlama-class files) use NEON for the integer sums of each 16 weights
//! (`smull`/`smlal2`, one `saddlv`) and keep the portable kernels' scalar float steps, so they
//! are bit-identical to the portable kernels; they are not yet grouped like Q4_1.

#![allow(unsafe_code)]

use core::arch::aarch64::*;
use core::arch::asm;

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

/// Dot product with a NEON kernel, or `None` when `ty` has none (or the lengths do not match
/// the activations, which the portable kernel then handles by its own bounds).
pub fn dot(ty: GgmlType, row: &[u8], act: &Activations) -> Option<f32> {
    let blocks = act.len() / QK;
    let (bytes, f): (usize, fn(&[u8], &Activations, usize) -> f32) = match ty {
        GgmlType::Q4_1 => (Q4_1_BYTES, dot_q4_1),
        GgmlType::Q8_0 => (Q8_0_BYTES, dot_q8_0),
        GgmlType::Q4_0 => (Q4_0_BYTES, dot_q4_0),
        GgmlType::Q4_K | GgmlType::Q6_K => return dot_k(ty, row, act),
        _ => return None,
    };
    if row.len() != blocks * bytes
        || act.q32.len() < blocks * QK
        || act.d32.len() < blocks
        || act.s32.len() < blocks
    {
        return None;
    }
    Some(f(row, act, blocks))
}

/// `out[i] = row(first + i) . act` for consecutive rows of a matrix stored as `rows` of
/// `row_bytes` bytes in `data`: the checks and the kernel choice happen once per call, not
/// once per row. Returns `false` (writing nothing) when `ty` has no NEON kernel or the sizes
/// do not match, so the caller falls back to the portable kernels.
pub fn dot_rows(
    ty: GgmlType,
    data: &[u8],
    row_bytes: usize,
    first: usize,
    act: &Activations,
    out: &mut [f32],
) -> bool {
    let blocks = act.len() / QK;
    let bytes = match ty {
        GgmlType::Q4_1 => Q4_1_BYTES,
        GgmlType::Q8_0 => Q8_0_BYTES,
        GgmlType::Q4_0 => Q4_0_BYTES,
        GgmlType::Q4_K | GgmlType::Q6_K => {
            let Some(end) = first
                .checked_add(out.len())
                .and_then(|e| e.checked_mul(row_bytes))
            else {
                return false;
            };
            let Some(rows) = data.get(first * row_bytes..end) else {
                return false;
            };
            for (o, r) in out.iter_mut().zip(rows.chunks_exact(row_bytes.max(1))) {
                match dot_k(ty, r, act) {
                    Some(v) => *o = v,
                    None => return false,
                }
            }
            return true;
        }
        _ => return false,
    };
    let end = first
        .checked_add(out.len())
        .and_then(|e| e.checked_mul(row_bytes));
    if row_bytes != blocks * bytes
        || end.is_none_or(|e| e > data.len())
        || act.q32.len() < blocks * QK
        || act.d32.len() < blocks
        || act.s32.len() < blocks
    {
        return false;
    }
    let rows = data[first * row_bytes..].chunks_exact(row_bytes);
    match ty {
        GgmlType::Q4_1 => out
            .iter_mut()
            .zip(rows)
            .for_each(|(o, r)| *o = dot_q4_1(r, act, blocks)),
        GgmlType::Q8_0 => out
            .iter_mut()
            .zip(rows)
            .for_each(|(o, r)| *o = dot_q8_0(r, act, blocks)),
        _ => out
            .iter_mut()
            .zip(rows)
            .for_each(|(o, r)| *o = dot_q4_0(r, act, blocks)),
    }
    true
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

/// 4 `f32` from `p` with `ld1 {v.4s}` (element alignment, which an `f32` pointer has).
///
/// # Safety
/// `p` must point to 4 readable, aligned `f32`.
#[inline(always)]
unsafe fn ld_f32x4(p: *const f32) -> float32x4_t {
    let v: float32x4_t;
    // SAFETY: the caller guarantees 16 readable bytes at an f32-aligned `p`.
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

/// 16-bit products of 16 lanes of `w` and `x`, summed pairwise into `acc`'s 32-bit lanes.
#[inline(always)]
fn mla16(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    // SAFETY: register-only NEON arithmetic (NEON is part of the aarch64 baseline).
    unsafe {
        let lo = vmull_s8(vget_low_s8(w), vget_low_s8(x));
        let hi = vmull_high_s8(w, x);
        vpadalq_s16(vpadalq_s16(acc, lo), hi)
    }
}

/// Integer dot product of one Q4_1 block's 16 nibble bytes with 32 activations, as four
/// 32-bit partial sums.
///
/// # Safety
/// `qs` must point to 16 readable bytes and `x` to 32 readable `i8`.
#[inline(always)]
unsafe fn q4_block(qs: *const u8, x: *const i8) -> int32x4_t {
    // SAFETY: the caller guarantees the 16 + 32 bytes; loads are byte-aligned.
    unsafe {
        let q = ld_u8x16(qs);
        let lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f)));
        let hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
        let x0 = ld_s8x16(x);
        let x1 = ld_s8x16(x.add(16));
        // 8 lanes of 16 bits, each the sum of 4 products of at most 15 x 127: no overflow.
        let mut p = vmull_s8(vget_low_s8(lo), vget_low_s8(x0));
        p = vmlal_high_s8(p, lo, x0);
        p = vmlal_s8(p, vget_low_s8(hi), vget_low_s8(x1));
        p = vmlal_high_s8(p, hi, x1);
        vpaddlq_s16(p)
    }
}

/// Integer dot product of one Q4_1 block's 16 nibble bytes (in a register) with 32
/// activations (two registers), as four 32-bit partial sums.
#[inline(always)]
fn q4_block_reg(q: uint8x16_t, x0: int8x16_t, x1: int8x16_t) -> int32x4_t {
    // SAFETY: register-only NEON arithmetic.
    unsafe {
        let lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f)));
        let hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
        // 8 lanes of 16 bits, each the sum of 4 products of at most 15 x 127: no overflow.
        let mut p = vmull_s8(vget_low_s8(lo), vget_low_s8(x0));
        p = vmlal_high_s8(p, lo, x0);
        p = vmlal_s8(p, vget_low_s8(hi), vget_low_s8(x1));
        p = vmlal_high_s8(p, hi, x1);
        vpaddlq_s16(p)
    }
}

/// Q4_1 x Q8_1 (see `portable::dot_q4_1`); `row` holds `blocks` blocks and `act` at least as
/// many (checked by `dot`).
///
/// A group of four blocks is 80 contiguous bytes, loaded with five post-incremented `ld1`
/// (asm: see [`ld_u8x16`]); the nibbles of each
/// block are cut out with `ext`, the four (d, m) headers merged with three lane moves.
fn dot_q4_1(row: &[u8], act: &Activations, blocks: usize) -> f32 {
    let q = act.q32.as_ptr();
    let base = row.as_ptr();
    let groups = blocks / 4;
    // SAFETY: block `b` occupies bytes `b*20..b*20+20` of `row` (row.len() == blocks*20,
    // checked in `dot`); group `g` reads bytes `g*80..g*80+80`, inside the first `groups*4`
    // blocks; activations `b*32..b*32+128` and scales `b..b+4` for `b + 4 <= blocks` are in
    // bounds (q32.len() >= blocks*32, d32/s32 lengths >= blocks, checked in `dot`). Loads are
    // element-aligned (bytes; f32 from f32 slices).
    let mut sum = unsafe {
        let mut acc = vdupq_n_f32(0.0);
        for g in 0..groups {
            let b = g * 4;
            let blk = base.add(b * Q4_1_BYTES);
            let r = ld_u8x16x5(blk);
            let x = ld_s8x16x8(q.add(b * QK));
            // Nibbles: bytes 4..20, 24..40, 44..60, 64..80 of the group.
            let s0 = q4_block_reg(vextq_u8::<4>(r[0], r[1]), x[0], x[1]);
            let s1 = q4_block_reg(vextq_u8::<8>(r[1], r[2]), x[2], x[3]);
            let s2 = q4_block_reg(vextq_u8::<12>(r[2], r[3]), x[4], x[5]);
            let s3 = q4_block_reg(r[4], x[6], x[7]);
            let isum = vpaddq_s32(vpaddq_s32(s0, s1), vpaddq_s32(s2, s3));
            // Headers (d, m as f16 pairs): bytes 0..4, 20..24, 40..44, 60..64, i.e. 32-bit
            // lane k of register k.
            let mut h = vreinterpretq_u32_u8(r[0]);
            h = vcopyq_laneq_u32::<1, 1>(h, vreinterpretq_u32_u8(r[1]));
            h = vcopyq_laneq_u32::<2, 2>(h, vreinterpretq_u32_u8(r[2]));
            h = vcopyq_laneq_u32::<3, 3>(h, vreinterpretq_u32_u8(r[3]));
            let h = vreinterpretq_u16_u32(h);
            // [d0 d1 d2 d3], [m0 m1 m2 m3] as f16, then f32.
            let d = f16x4_to_f32(vget_low_u16(vuzp1q_u16(h, h)));
            let m = f16x4_to_f32(vget_low_u16(vuzp2q_u16(h, h)));
            let dx = ld_f32x4(act.d32.as_ptr().add(b));
            let sx = ld_f32x4(act.s32.as_ptr().add(b));
            let t = vmulq_f32(vmulq_f32(vcvtq_f32_s32(isum), d), dx);
            acc = vaddq_f32(acc, vaddq_f32(t, vmulq_f32(m, sx)));
        }
        vaddvq_f32(acc)
    };
    for b in groups * 4..blocks {
        let blk = &row[b * Q4_1_BYTES..(b + 1) * Q4_1_BYTES];
        // SAFETY: 16 bytes at offset 4 of a 20-byte block; 32 activations at `b * 32` of at
        // least `blocks * 32`.
        let isum = unsafe { vaddvq_s32(q4_block(blk.as_ptr().add(4), q.add(b * QK))) };
        sum += isum as f32 * f16_at(blk, 0) * act.d32[b] + f16_at(blk, 2) * act.s32[b];
    }
    sum
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

/// Four f16 values (as bits) to f32 with `fcvtl`.
#[inline(always)]
fn f16x4_to_f32(h: uint16x4_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: `fcvtl` converts register lanes; no memory access. (The f16 vector intrinsics
    // are not stable in Rust, hence the one-instruction asm.)
    unsafe {
        asm!(
            "fcvtl {out:v}.4s, {inp:v}.4h",
            inp = in(vreg) h,
            out = lateout(vreg) out,
            options(pure, nomem, nostack)
        );
    }
    out
}

/// Q4_0 x Q8_0 (see `portable::dot_q4_0`).
fn dot_q4_0(row: &[u8], act: &Activations, blocks: usize) -> f32 {
    let mut sum = 0f32;
    let q = act.q32.as_ptr();
    for b in 0..blocks {
        let blk = &row[b * Q4_0_BYTES..(b + 1) * Q4_0_BYTES];
        // SAFETY: as in `dot_q4_1`: 16 bytes at offset 2 of an 18-byte block, 32 activations
        // at `b * 32` of at least `blocks * 32`.
        let isum = unsafe {
            let qs = ld_u8x16(blk.as_ptr().add(2));
            let eight = vdupq_n_s8(8);
            let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0f))), eight);
            let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(qs, 4)), eight);
            let x0 = ld_s8x16(q.add(b * QK));
            let x1 = ld_s8x16(q.add(b * QK + 16));
            vaddvq_s32(mla16(mla16(vdupq_n_s32(0), lo, x0), hi, x1))
        };
        sum += isum as f32 * f16_at(blk, 0) * act.d32[b];
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

/// Integer dot product of 32 weights (two registers) with 32 activations (two registers) as
/// four 32-bit partial sums.
#[inline(always)]
fn q8_block_reg(w0: int8x16_t, w1: int8x16_t, x0: int8x16_t, x1: int8x16_t) -> int32x4_t {
    // SAFETY: register-only NEON arithmetic.
    unsafe {
        // Each 16-bit lane sums 2 products of at most 128 x 127 = 16256: no overflow.
        let mut lo = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
        lo = vmlal_s8(lo, vget_low_s8(w1), vget_low_s8(x1));
        let mut hi = vmull_high_s8(w0, x0);
        hi = vmlal_high_s8(hi, w1, x1);
        vpadalq_s16(vpaddlq_s16(lo), hi)
    }
}

/// Q8_0 x Q8_0 (see `portable::dot_q8_0`). A group of four 34-byte blocks is 136 bytes: eight
/// registers and an 8-byte load; each block's weights are cut out with `ext`, the four f16
/// scales merged with three lane moves.
fn dot_q8_0(row: &[u8], act: &Activations, blocks: usize) -> f32 {
    let q = act.q32.as_ptr();
    let base = row.as_ptr();
    let groups = blocks / 4;
    // SAFETY: as in `dot_q4_1`, with 34-byte blocks: group `g` reads bytes `g*136..g*136+136`
    // of `row`, inside the first `groups*4` blocks; activations and scales as there.
    let mut sum = unsafe {
        let mut acc = vdupq_n_f32(0.0);
        for g in 0..groups {
            let b = g * 4;
            let blk = base.add(b * Q8_0_BYTES);
            let r = ld_s8x16x8(blk as *const i8);
            let r = r.map(|v| vreinterpretq_u8_s8(v));
            let r8 = ld_u8x8(blk.add(128));
            let x = ld_s8x16x8(q.add(b * QK));
            let w = |v: uint8x16_t| vreinterpretq_s8_u8(v);
            // Weights: bytes 2..34, 36..68, 70..102, 104..136 of the group.
            let s0 = q8_block_reg(
                w(vextq_u8::<2>(r[0], r[1])),
                w(vextq_u8::<2>(r[1], r[2])),
                x[0],
                x[1],
            );
            let s1 = q8_block_reg(
                w(vextq_u8::<4>(r[2], r[3])),
                w(vextq_u8::<4>(r[3], r[4])),
                x[2],
                x[3],
            );
            let s2 = q8_block_reg(
                w(vextq_u8::<6>(r[4], r[5])),
                w(vextq_u8::<6>(r[5], r[6])),
                x[4],
                x[5],
            );
            let s3 = q8_block_reg(
                w(vextq_u8::<8>(r[6], r[7])),
                w(vextq_u8::<8>(r[7], r8)),
                x[6],
                x[7],
            );
            let isum = vpaddq_s32(vpaddq_s32(s0, s1), vpaddq_s32(s2, s3));
            // Scales: bytes 0..2, 34..36, 68..70, 102..104: 16-bit lane k of register 2k.
            let mut h = vreinterpretq_u16_u8(r[0]);
            h = vcopyq_laneq_u16::<1, 1>(h, vreinterpretq_u16_u8(r[2]));
            h = vcopyq_laneq_u16::<2, 2>(h, vreinterpretq_u16_u8(r[4]));
            h = vcopyq_laneq_u16::<3, 3>(h, vreinterpretq_u16_u8(r[6]));
            let d = f16x4_to_f32(vget_low_u16(h));
            let dx = ld_f32x4(act.d32.as_ptr().add(b));
            acc = vaddq_f32(acc, vmulq_f32(vmulq_f32(vcvtq_f32_s32(isum), d), dx));
        }
        vaddvq_f32(acc)
    };
    for b in groups * 4..blocks {
        let blk = &row[b * Q8_0_BYTES..(b + 1) * Q8_0_BYTES];
        // SAFETY: 32 bytes at offset 2 of a 34-byte block; 32 activations at `b * 32`.
        let isum = unsafe { vaddvq_s32(q8_block(blk.as_ptr().add(2) as *const i8, q.add(b * QK))) };
        sum += isum as f32 * f16_at(blk, 0) * act.d32[b];
    }
    sum
}

/// Integer dot product of 32 weights with 32 activations as four 32-bit partial sums.
///
/// # Safety
/// `w` and `x` must each point to 32 readable `i8`.
#[inline(always)]
unsafe fn q8_block(w: *const i8, x: *const i8) -> int32x4_t {
    // SAFETY: the caller guarantees both 32-byte ranges.
    unsafe {
        q8_block_reg(
            ld_s8x16(w),
            ld_s8x16(w.add(16)),
            ld_s8x16(x),
            ld_s8x16(x.add(16)),
        )
    }
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
        // 1536 = 12 groups of 4 blocks; 1568 adds a one-block tail; 576 = SmolLM2's width.
        for n in [1536usize, 1568, 576, 2048, 5632] {
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
            for _ in 0..8 {
                let w: Vec<f32> = (0..n).map(|_| rnd()).collect();
                let mut bytes = Vec::new();
                assert!(quantize_row(ty, &w, &mut bytes));
                let neon = dot(ty, &bytes, &act).expect("NEON kernel");
                let port = portable::dot(ty, &bytes, &act);
                if matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_K | GgmlType::Q6_K) {
                    // Scalar float part in the portable order: bit-identical.
                    assert_eq!(neon.to_bits(), port.to_bits(), "{ty}: {neon} vs {port}");
                } else {
                    // Bound: 1e-6 of the sum of |block terms| (float reassociation only).
                    let mut wd = alloc::vec![0f32; n];
                    assert!(crate::quant::dequantize_row(ty, &bytes, &mut wd));
                    let scale: f32 = wd.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
                    assert!(
                        (neon - port).abs() <= 1e-6 * scale,
                        "{ty}: {neon} vs {port}"
                    );
                }
            }
        }
        // Extreme values: all weights -128/15, activations +-127.
        let mut bytes = Vec::new();
        for _ in 0..n / 32 {
            bytes.extend_from_slice(&crate::quant::f32_to_f16(1.0).to_le_bytes());
            bytes.extend(core::iter::repeat_n(0x80u8, 32));
        }
        let (a, b) = (
            dot(GgmlType::Q8_0, &bytes, &act).unwrap(),
            portable::dot(GgmlType::Q8_0, &bytes, &act),
        );
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
}
