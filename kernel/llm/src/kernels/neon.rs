//! NEON dot-product kernels for AArch64 (Cortex-A72 class: ARMv8.0, no `sdot`).
//!
//! Each kernel computes, per weight block, the same *integer* sum as the portable kernel
//! (exactly: integer arithmetic is associative) with widening multiplies: `smull`/`smull2`
//! give 16-bit products of 8 lanes, `saddlp`/`sadalp` widen and accumulate them pairwise into
//! 32-bit lanes, `addv` reduces. The per-block float step (`isum * d * dx + m * s`) is then done
//! in scalar in the portable kernel's order, so the NEON path returns *bit-identical* results
//! to the portable one (the host tests, run under qemu-aarch64, assert equality). That costs one
//! horizontal add per 32 weights, which is cheap next to the loads and multiplies.
//!
//! Instructions per 32 weights (Q4_1): 3 loads, `and` + `ushr` to split nibbles, 4 widening
//! multiplies, 4 pairwise adds, 1 reduction, 2 `fcvt` for the f16 scales and ~5 scalar float
//! operations: about 25, i.e. under one instruction per weight, which is what the
//! "instructions per token" target needs.
//!
//! K-quant types use the portable kernels (they are used by TinyLlama-class files, whose speed
//! target is secondary); `dot` returns `None` for them.

#![allow(unsafe_code)]

use core::arch::aarch64::*;
use core::arch::asm;

use super::Activations;
use crate::quant::{GgmlType, Q4_0_BYTES, Q4_1_BYTES, Q8_0_BYTES, QK};

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

/// Q4_1 x Q8_1 (see `portable::dot_q4_1`); `row` holds `blocks` blocks and `act` at least as
/// many (checked by `dot`).
fn dot_q4_1(row: &[u8], act: &Activations, blocks: usize) -> f32 {
    let mut sum = 0f32;
    let q = act.q32.as_ptr();
    for b in 0..blocks {
        let blk = &row[b * Q4_1_BYTES..(b + 1) * Q4_1_BYTES];
        // SAFETY: `blk` has 20 bytes, so 16 bytes from offset 4 are in bounds; `q` has at least
        // `blocks * 32` elements (checked in `dot`), so 32 from `b * 32` are in bounds. The
        // loads have no alignment requirement.
        let isum = unsafe {
            let qs = vld1q_u8(blk.as_ptr().add(4));
            let lo = vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0f)));
            let hi = vreinterpretq_s8_u8(vshrq_n_u8(qs, 4));
            let x0 = vld1q_s8(q.add(b * QK));
            let x1 = vld1q_s8(q.add(b * QK + 16));
            let acc = mla16(mla16(vdupq_n_s32(0), lo, x0), hi, x1);
            vaddvq_s32(acc)
        };
        sum += isum as f32 * f16_at(blk, 0) * act.d32[b] + f16_at(blk, 2) * act.s32[b];
    }
    sum
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
            let qs = vld1q_u8(blk.as_ptr().add(2));
            let eight = vdupq_n_s8(8);
            let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0f))), eight);
            let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(qs, 4)), eight);
            let x0 = vld1q_s8(q.add(b * QK));
            let x1 = vld1q_s8(q.add(b * QK + 16));
            vaddvq_s32(mla16(mla16(vdupq_n_s32(0), lo, x0), hi, x1))
        };
        sum += isum as f32 * f16_at(blk, 0) * act.d32[b];
    }
    sum
}

/// Q8_0 x Q8_0 (see `portable::dot_q8_0`).
fn dot_q8_0(row: &[u8], act: &Activations, blocks: usize) -> f32 {
    let mut sum = 0f32;
    let q = act.q32.as_ptr();
    for b in 0..blocks {
        let blk = &row[b * Q8_0_BYTES..(b + 1) * Q8_0_BYTES];
        // SAFETY: 32 bytes at offset 2 of a 34-byte block; 32 activations at `b * 32` of at
        // least `blocks * 32`.
        let isum = unsafe {
            let w0 = vld1q_s8(blk.as_ptr().add(2) as *const i8);
            let w1 = vld1q_s8(blk.as_ptr().add(18) as *const i8);
            let x0 = vld1q_s8(q.add(b * QK));
            let x1 = vld1q_s8(q.add(b * QK + 16));
            vaddvq_s32(mla16(mla16(vdupq_n_s32(0), w0, x0), w1, x1))
        };
        sum += isum as f32 * f16_at(blk, 0) * act.d32[b];
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
    fn neon_kernels_are_bit_identical_to_portable() {
        let n = 1536;
        let mut s = 12345u32;
        let mut rnd = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 4.0
        };
        let x: Vec<f32> = (0..n).map(|_| rnd()).collect();
        let mut act = Activations::new(n);
        act.set(&x, true, false);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            for _ in 0..8 {
                let w: Vec<f32> = (0..n).map(|_| rnd()).collect();
                let mut bytes = Vec::new();
                assert!(quantize_row(ty, &w, &mut bytes));
                let neon = dot(ty, &bytes, &act).expect("NEON kernel");
                let port = portable::dot(ty, &bytes, &act);
                assert_eq!(neon.to_bits(), port.to_bits(), "{ty}: {neon} vs {port}");
            }
        }
        // Extreme values: all weights -128/15, activations +-127.
        let mut bytes = Vec::new();
        for _ in 0..n / 32 {
            bytes.extend_from_slice(&crate::quant::f32_to_f16(1.0).to_le_bytes());
            bytes.extend(core::iter::repeat_n(0x80u8, 32));
        }
        assert_eq!(
            dot(GgmlType::Q8_0, &bytes, &act).unwrap().to_bits(),
            portable::dot(GgmlType::Q8_0, &bytes, &act).to_bits()
        );
    }
}
