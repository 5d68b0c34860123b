//! Portable dot-product kernels: the specification the NEON kernels are tested against.
//!
//! Integer sums per block, then one float multiply-add per block, in ggml's formulas.

use super::Activations;
use crate::quant::{
    f16_to_f32, q4_k_scale_min, GgmlType, Q4_0_BYTES, Q4_1_BYTES, Q4_K_BYTES, Q6_K_BYTES,
    Q8_0_BYTES, QK, QK_K,
};

#[inline]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Dot product of a row of type `ty` with `act` (see [`super::dot`]).
pub fn dot(ty: GgmlType, row: &[u8], act: &Activations) -> f32 {
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
        GgmlType::Q4_0 => dot_q4_0(row, act),
        GgmlType::Q4_1 => dot_q4_1(row, act),
        GgmlType::Q8_0 => dot_q8_0(row, act),
        GgmlType::Q4_K => dot_q4_k(row, act),
        GgmlType::Q6_K => dot_q6_k(row, act),
    }
}

/// Q4_0 x Q8_0: `sum_b d_b dx_b sum((q - 8) qx)`.
pub fn dot_q4_0(row: &[u8], act: &Activations) -> f32 {
    let mut sum = 0f32;
    for ((b, qx), &dx) in row
        .chunks_exact(Q4_0_BYTES)
        .zip(act.q32.chunks_exact(QK))
        .zip(act.d32.iter())
    {
        let mut isum = 0i32;
        for j in 0..QK / 2 {
            let v = b[2 + j];
            isum += ((v & 0xf) as i32 - 8) * qx[j] as i32;
            isum += ((v >> 4) as i32 - 8) * qx[j + QK / 2] as i32;
        }
        sum += isum as f32 * f16_at(b, 0) * dx;
    }
    sum
}

/// Q4_1 x Q8_1: `sum_b (d_b dx_b sum(q qx) + m_b s_b)`.
pub fn dot_q4_1(row: &[u8], act: &Activations) -> f32 {
    let mut sum = 0f32;
    for (((b, qx), &dx), &sx) in row
        .chunks_exact(Q4_1_BYTES)
        .zip(act.q32.chunks_exact(QK))
        .zip(act.d32.iter())
        .zip(act.s32.iter())
    {
        let (Ok(w), Ok(x)) = (<&[u8; 16]>::try_from(&b[4..]), <&[i8; QK]>::try_from(qx)) else {
            continue; // unreachable: chunks_exact gives exact sizes
        };
        let mut isum = 0i32;
        for j in 0..QK / 2 {
            isum += (w[j] & 0xf) as i32 * x[j] as i32;
        }
        for j in 0..QK / 2 {
            isum += (w[j] >> 4) as i32 * x[j + QK / 2] as i32;
        }
        sum += isum as f32 * f16_at(b, 0) * dx + f16_at(b, 2) * sx;
    }
    sum
}

/// Q8_0 x Q8_0: `sum_b d_b dx_b sum(q qx)`.
pub fn dot_q8_0(row: &[u8], act: &Activations) -> f32 {
    let mut sum = 0f32;
    for ((b, qx), &dx) in row
        .chunks_exact(Q8_0_BYTES)
        .zip(act.q32.chunks_exact(QK))
        .zip(act.d32.iter())
    {
        let (Ok(w), Ok(x)) = (<&[u8; QK]>::try_from(&b[2..]), <&[i8; QK]>::try_from(qx)) else {
            continue; // unreachable: chunks_exact gives exact sizes
        };
        let mut isum = 0i32;
        for j in 0..QK {
            isum += (w[j] as i8) as i32 * x[j] as i32;
        }
        sum += isum as f32 * f16_at(b, 0) * dx;
    }
    sum
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
    use super::*;
    use crate::quant::{dequantize_row, quantize_row};
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

    #[test]
    fn activation_quantization_matches_candle_formulas() {
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 10.0) * 0.1).collect();
        let mut act = Activations::new(32);
        act.set(&x, true, false);
        // amax = 2.1 -> d = 2.1/127; q(2.1) = 127, q(-1.0) = round(-1.0 * 127 / 2.1) = -60.
        assert_eq!(act.q32[31], 127);
        assert_eq!(act.q32[0], -60);
        let sum: i32 = act.q32[..32].iter().map(|&q| q as i32).sum();
        let dh = f16_to_f32(crate::quant::f32_to_f16(2.1 / 127.0));
        assert_eq!(act.d32[0], dh);
        assert!((act.s32[0] - sum as f32 * dh).abs() <= 0.01 * (sum as f32 * dh).abs());
    }
}
