//! Portable dot-product kernels: the specification the NEON kernels are tested against.
//!
//! Q4_0, Q4_1, Q8_0: integer sums per block in the permuted activation order, scaled in fixed
//! point ([`super::fixed`]). Q4_K, Q6_K: integer sums per group, then ggml's float formulas.
//! F32/F16: plain float products.

use super::fixed::{split_f16, sshl32, BlockScaling};
use super::Activations;
use crate::quant::{
    f16_to_f32, q4_k_scale_min, GgmlType, Q4_0_BYTES, Q4_1_BYTES, Q4_K_BYTES, Q6_K_BYTES,
    Q8_0_BYTES, QK, QK_K,
};

#[inline]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Dot product of a row of type `ty` with `act`; `scaling` from [`super::block_scaling`] for
/// the 32-element formats (unused by the others). The caller checks the row length.
pub fn dot(ty: GgmlType, row: &[u8], scaling: &BlockScaling, act: &Activations) -> f32 {
    match ty {
        GgmlType::F32 => row
            .chunks_exact(4)
            .zip(act.values())
            .map(|(b, &x)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * x)
            .sum(),
        GgmlType::F16 => row
            .chunks_exact(2)
            .zip(act.values())
            .map(|(b, &x)| f16_to_f32(u16::from_le_bytes([b[0], b[1]])) * x)
            .sum(),
        GgmlType::Q4_0 => dot_q4_0(row, scaling, act),
        GgmlType::Q4_1 => dot_q4_1(row, scaling, act),
        GgmlType::Q8_0 => dot_q8_0(row, scaling, act),
        GgmlType::Q4_K => dot_q4_k(row, act),
        GgmlType::Q6_K => dot_q6_k(row, act),
    }
}

/// `sum(q x)` of one block's 16 nibble bytes (weights 0..15) with its 32 permuted activations
/// ([`super::PERMUTED`]): byte pair `l` as a 16-bit lane holds weights `2l`, `2l + 16`,
/// `2l + 1`, `2l + 17`.
#[inline]
pub fn nibble_sum(qs: &[u8], a: &[i16; QK]) -> i32 {
    let mut sum = 0i32;
    for l in 0..8 {
        let v = u16::from_le_bytes([qs[2 * l], qs[2 * l + 1]]);
        sum += i32::from(v & 0xf) * i32::from(a[l])
            + i32::from((v >> 4) & 0xf) * i32::from(a[8 + l])
            + i32::from((v >> 8) & 0xf) * i32::from(a[16 + l])
            + i32::from(v >> 12) * i32::from(a[24 + l]);
    }
    sum
}

/// `sum(w x)` of one block's 32 signed byte weights with its 32 activations.
#[inline]
pub fn byte_sum(qs: &[u8], a: &[i8; QK]) -> i32 {
    qs[..QK]
        .iter()
        .zip(a)
        .map(|(&w, &x)| i32::from(w as i8) * i32::from(x))
        .sum()
}

/// The specification of the Q8_1 element work: `q = clamp(round(x * inv), -127, 127)`
/// (rounding half away from zero), stored in natural order and widened in
/// [`super::PERMUTED`] order; returns `sum q`.
pub fn round_into(
    x: &[f32; QK],
    inv: f32,
    q8: &mut super::ActivationBlock,
    q16: &mut super::ActivationBlock16,
) -> i32 {
    let mut sum = 0i32;
    for (i, &v) in x.iter().enumerate() {
        // |x * inv| <= 127 (+ rounding): the clamp only guards the cast.
        let q = (libm::roundf(v * inv) as i32).clamp(-127, 127);
        q8.0[i] = q as i8;
        q16.0[super::PERMUTED[i]] = q as i16;
        sum += q;
    }
    sum
}

/// Block `b`'s scale term `d_fix * A` (see [`super::fixed`]) for f16 scale bits `d`.
#[inline]
pub fn scale_term(d: u16, isum: i32, b: usize, scaling: &BlockScaling, act: &Activations) -> i64 {
    let (mantissa, exponent) = split_f16(d);
    let d_fix = sshl32(mantissa, exponent + act.x_shift(b) + scaling.shift_d);
    i64::from(d_fix) * i64::from(isum.wrapping_mul(act.x_mantissa(b)))
}

/// Block `b`'s minimum term `m_fix * s'` (Q4_1) for f16 minimum bits `m`.
#[inline]
pub fn min_term(m: u16, b: usize, scaling: &BlockScaling, act: &Activations) -> i64 {
    let (mantissa, exponent) = split_f16(m);
    let m_fix = sshl32(mantissa, exponent + scaling.shift_m);
    i64::from(m_fix) * i64::from(sshl32(act.s_fix(b), scaling.shift_s))
}

/// Q4_0 x Q8_0: `sum_b d_b dx_b sum((q - 8) qx)`, the offset folded into `sum(qx)`.
pub fn dot_q4_0(row: &[u8], scaling: &BlockScaling, act: &Activations) -> f32 {
    let mut sum = 0i64;
    for (b, blk) in row.chunks_exact(Q4_0_BYTES).enumerate() {
        let raw = nibble_sum(&blk[2..], &act.q16[b].0);
        let isum = raw.wrapping_sub(8 * act.q_sum(b));
        sum = sum.wrapping_add(scale_term(u16_at(blk, 0), isum, b, scaling, act));
    }
    scaling.finish(sum)
}

/// Q4_1 x Q8_1: `sum_b (d_b dx_b sum(q qx) + m_b s_b)`.
pub fn dot_q4_1(row: &[u8], scaling: &BlockScaling, act: &Activations) -> f32 {
    let mut sum = 0i64;
    for (b, blk) in row.chunks_exact(Q4_1_BYTES).enumerate() {
        let isum = nibble_sum(&blk[4..], &act.q16[b].0);
        sum = sum
            .wrapping_add(scale_term(u16_at(blk, 0), isum, b, scaling, act))
            .wrapping_add(min_term(u16_at(blk, 2), b, scaling, act));
    }
    scaling.finish(sum)
}

/// Q8_0 x Q8_0: `sum_b d_b dx_b sum(q qx)`.
pub fn dot_q8_0(row: &[u8], scaling: &BlockScaling, act: &Activations) -> f32 {
    let mut sum = 0i64;
    for (b, blk) in row.chunks_exact(Q8_0_BYTES).enumerate() {
        let isum = byte_sum(&blk[2..], act.block(b));
        sum = sum.wrapping_add(scale_term(u16_at(blk, 0), isum, b, scaling, act));
    }
    scaling.finish(sum)
}

/// Q4_K x Q8_K: per super-block `d dx sum_j sc_j sum(q qx) - dmin dx sum_j m_j sum(qx)`.
pub fn dot_q4_k(row: &[u8], act: &Activations) -> f32 {
    let mut sum = 0f32;
    for (((b, qx), &dx), bs) in row
        .chunks_exact(Q4_K_BYTES)
        .zip(act.qk.chunks_exact(QK_K))
        .zip(act.dk.iter())
        .zip(act.bsums.chunks_exact(QK_K / 16))
    {
        let d = f16_at(b, 0) * dx;
        let dmin = f16_at(b, 2) * dx;
        let scales = &b[4..16];
        let qs = &b[16..];
        let mut sumi = 0i32;
        let mut summ = 0i32;
        for chunk in 0..4 {
            let (sc1, m1) = q4_k_scale_min(2 * chunk, scales);
            let (sc2, m2) = q4_k_scale_min(2 * chunk + 1, scales);
            let q = &qs[32 * chunk..32 * chunk + 32];
            let x = &qx[64 * chunk..64 * chunk + 64];
            let mut lo = 0i32;
            let mut hi = 0i32;
            for l in 0..32 {
                lo += (q[l] & 0xf) as i32 * x[l] as i32;
                hi += (q[l] >> 4) as i32 * x[l + 32] as i32;
            }
            sumi += sc1 as i32 * lo + sc2 as i32 * hi;
            summ += m1 as i32 * (bs[4 * chunk] + bs[4 * chunk + 1]);
            summ += m2 as i32 * (bs[4 * chunk + 2] + bs[4 * chunk + 3]);
        }
        sum += d * sumi as f32 - dmin * summ as f32;
    }
    sum
}

/// Q6_K x Q8_K: per super-block `d dx sum_g sc_g sum((q - 32) qx)` over 16-element groups.
pub fn dot_q6_k(row: &[u8], act: &Activations) -> f32 {
    let mut sum = 0f32;
    for ((b, qx), &dx) in row
        .chunks_exact(Q6_K_BYTES)
        .zip(act.qk.chunks_exact(QK_K))
        .zip(act.dk.iter())
    {
        let d = f16_at(b, 208) * dx;
        let mut sumi = 0i32;
        for half in 0..2 {
            let ql = &b[64 * half..64 * half + 64];
            let qh = &b[128 + 32 * half..128 + 32 * half + 32];
            let sc = &b[192 + 8 * half..192 + 8 * half + 8];
            let x = &qx[128 * half..128 * half + 128];
            let mut g = [0i32; 8];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                g[is] += q1 * x[l] as i32;
                g[is + 2] += q2 * x[l + 32] as i32;
                g[is + 4] += q3 * x[l + 64] as i32;
                g[is + 6] += q4 * x[l + 96] as i32;
            }
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
    use super::super::{dot, ActivationKind};
    use super::*;
    use crate::quant::{dequantize_row, f32_to_f16, quantize_row};
    use alloc::vec;
    use alloc::vec::Vec;

    fn vector(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 2.0
            })
            .collect()
    }

    #[test]
    fn quantized_dots_match_float_dots_of_dequantized_rows() {
        // Exact weights (dequantized) times exact x, against the kernel: the only difference is
        // the activation quantization (relative error well under 2% for n = 512).
        let n = 512;
        let x = vector(n, 3);
        let mut act = Activations::new(n);
        act.set(&x, true, true);
        for ty in [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q8_0,
            GgmlType::Q4_K,
            GgmlType::Q6_K,
        ] {
            for seed in 0..4 {
                let w = vector(n, 100 + seed);
                let mut bytes = Vec::new();
                assert!(quantize_row(ty, &w, &mut bytes));
                let mut wd = vec![0f32; n];
                assert!(dequantize_row(ty, &bytes, &mut wd));
                let exact: f32 = wd.iter().zip(&x).map(|(a, b)| a * b).sum();
                let norm: f32 = wd.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
                let got = dot(ty, &bytes, &act);
                assert!(
                    (got - exact).abs() <= 0.01 * norm,
                    "{ty} seed {seed}: {got} vs {exact} (norm {norm})"
                );
            }
        }
    }

    /// ggml's formula for a 32-element format, in f64 from the same integers: the value the
    /// fixed-point kernels must reproduce. Returns (value, sum of |block terms|).
    fn reference(ty: GgmlType, row: &[u8], act: &Activations) -> (f64, f64) {
        let bytes = ty.type_size();
        let (mut sum, mut norm) = (0f64, 0f64);
        for (b, blk) in row.chunks_exact(bytes).enumerate() {
            let q = |i: usize| f64::from(act.q8_at(b * QK + i));
            let isum: f64 = match ty {
                GgmlType::Q4_0 => (0..16)
                    .map(|j| {
                        f64::from(i32::from(blk[2 + j] & 0xf) - 8) * q(j)
                            + f64::from(i32::from(blk[2 + j] >> 4) - 8) * q(j + 16)
                    })
                    .sum(),
                GgmlType::Q4_1 => (0..16)
                    .map(|j| {
                        f64::from(blk[4 + j] & 0xf) * q(j) + f64::from(blk[4 + j] >> 4) * q(j + 16)
                    })
                    .sum(),
                _ => (0..32).map(|j| f64::from(blk[2 + j] as i8) * q(j)).sum(),
            };
            let d = f64::from(f16_at(blk, 0));
            let mut term = d * f64::from(act.d32[b]) * isum;
            norm += term.abs();
            if ty == GgmlType::Q4_1 {
                let m = f64::from(f16_at(blk, 2)) * f64::from(act.s32[b]);
                norm += m.abs();
                term += m;
            }
            sum += term;
        }
        (sum, norm)
    }

    /// `dot` equals the exact formula rounded once to f32, up to `spread` bits of low-order
    /// truncation relative to the sum of the terms' magnitudes.
    fn assert_close(ty: GgmlType, row: &[u8], act: &Activations, spread: i32, what: &str) {
        let got = f64::from(dot(ty, row, act));
        let (exact, norm) = reference(ty, row, act);
        let bound = exact.abs() * 2f64.powi(-23) + norm * 2f64.powi(-spread);
        assert!(
            (got - exact).abs() <= bound,
            "{ty} {what}: {got} vs exact {exact} (bound {bound})"
        );
    }

    #[test]
    fn fixed_point_scaling_is_ggml_formula_rounded_once() {
        for n in [32usize, 64, 96, 576, 1536, 32 * 4096] {
            let x = vector(n, 7 + n as u32);
            let mut act = Activations::new(n);
            act.set(&x, true, false);
            for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
                for seed in 0..3 {
                    let w: Vec<f32> = vector(n, 200 + seed)
                        .iter()
                        .enumerate()
                        // Scales spread over several binades within the row.
                        .map(|(i, v)| v * (1 << (i / 32 % 7)) as f32 * 1e-2)
                        .collect();
                    let mut bytes = Vec::new();
                    assert!(quantize_row(ty, &w, &mut bytes));
                    // Scales within 2^K of each other: every product exact.
                    let what = alloc::format!("n {n} seed {seed}");
                    assert_close(ty, &bytes, &act, 30, &what);
                }
            }
        }
    }

    /// A row of `blocks` blocks with the given header bits and every weight byte `byte`.
    fn raw_row(ty: GgmlType, headers: &[(u16, u16)], byte: u8) -> Vec<u8> {
        let mut row = Vec::new();
        for &(d, m) in headers {
            row.extend_from_slice(&d.to_le_bytes());
            if ty == GgmlType::Q4_1 {
                row.extend_from_slice(&m.to_le_bytes());
            }
            let weights = ty.type_size() - if ty == GgmlType::Q4_1 { 4 } else { 2 };
            row.extend(core::iter::repeat_n(byte, weights));
        }
        row
    }

    #[test]
    fn extreme_scales_stay_exact_and_never_fault() {
        let n = 8 * 32;
        let x: Vec<f32> = (0..n)
            .map(|i| if i % 3 == 0 { -1.5 } else { 0.25 })
            .collect();
        let mut act = Activations::new(n);
        act.set(&x, true, false);
        let f = |v: f32| f32_to_f16(v);
        // Zero, subnormal, negative, tiny and huge scales side by side; minimums much larger
        // than the scales (a constant block has d = 0, m = its value).
        let headers = [
            (0, f(3.0)),
            (1, f(-2.0)),
            (0x03ff, 0x8001),
            (f(-0.5), f(1e-7)),
            (f(65504.0), f(-65504.0)),
            (f(1e-3), 0),
            (f(2e-5), f(7.0)),
            (f(0.125), f(-0.75)),
        ];
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            for byte in [0x00u8, 0x80, 0xff, 0x7f, 0x5a] {
                let row = raw_row(ty, &headers, byte);
                // Scales 2^40 apart: terms far below the largest keep 11 + K bits at its
                // alignment (one unit of the aligned mantissa: 2^-21 of the largest term).
                assert_close(ty, &row, &act, 20, &alloc::format!("byte {byte:#x}"));
            }
            // Infinite and NaN scales: some finite number, no fault.
            let row = raw_row(ty, &[(0x7c00, 0xfe00); 8], 0x33);
            assert!(dot(ty, &row, &act).is_finite());
        }
    }

    #[test]
    fn activation_quantization_matches_candle_formulas() {
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 10.0) * 0.1).collect();
        let mut act = Activations::new(32);
        act.set(&x, true, false);
        // amax = 2.1 -> d = 2.1/127; q(2.1) = 127, q(-1.0) = round(-1.0 * 127 / 2.1) = -60.
        assert_eq!(act.q8_at(31), 127);
        assert_eq!(act.q8_at(0), -60);
        let sum: i32 = (0..32).map(|i| act.q8_at(i) as i32).sum();
        assert_eq!(act.q_sum(0), sum);
        let dh = f16_to_f32(crate::quant::f32_to_f16(2.1 / 127.0));
        assert_eq!(act.d32[0], dh);
        assert!((act.s32[0] - sum as f32 * dh).abs() <= 0.01 * (sum as f32 * dh).abs());
        assert_eq!(
            ActivationKind::for_weights(GgmlType::Q4_1),
            ActivationKind::Q8x32
        );
    }
}
