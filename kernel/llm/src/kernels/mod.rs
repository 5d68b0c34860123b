//! Dot-product kernels: quantized weight rows times quantized activations.
//!
//! A matrix-vector product is the whole cost of a forward pass, so the design is driven by the
//! inner loop. The activation vector is quantized once per product to 8-bit integers (exactly
//! as candle/ggml do it, so that the engine matches the reference closely):
//!
//! * for Q4_0/Q8_0 weights: Q8_0 blocks (32 x i8, scale rounded to f16);
//! * for Q4_1 weights: Q8_1 blocks (Q8_0 plus `s = d * sum(q)`, both f16-rounded), so the
//!   weight minimum folds into one multiply per block: `sum((d q + m) dx qx) = d dx sum(q qx) + m s`;
//! * for Q4_K/Q6_K weights: Q8_K blocks (256 x i8, f32 scale, sums of each 16 for the mins).
//!
//! Each weight block then costs integer multiply-adds plus one or two float operations. The
//! portable path is the specification; on AArch64 the NEON path (`neon`) computes the same
//! integer sums with widening multiplies (`smull`/`sadalp`: the Cortex-A72 has no `sdot`), so the
//! two agree up to float summation order: the stated tolerance, asserted by the tests under
//! qemu-aarch64, is 1e-6 of the sum of the absolute block terms (Q4_0 is bit-identical).

#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod portable;

use alloc::vec::Vec;

use crate::quant::{f16_to_f32, f32_to_f16, GgmlType, QK, QK_K};

/// Which activation quantization a weight type consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationKind {
    /// Plain f32 (F32/F16 weights).
    Float,
    /// 32-element blocks with scale and sum (Q4_0, Q4_1, Q8_0).
    Q8x32,
    /// 256-element blocks with 16-element sums (Q4_K, Q6_K).
    Q8K,
}

impl ActivationKind {
    /// The activation form that `ty`'s kernel reads.
    pub fn for_weights(ty: GgmlType) -> ActivationKind {
        match ty {
            GgmlType::F32 | GgmlType::F16 => ActivationKind::Float,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => ActivationKind::Q8x32,
            GgmlType::Q4_K | GgmlType::Q6_K => ActivationKind::Q8K,
        }
    }
}

/// An activation vector in every form a kernel may need, with buffers allocated once for the
/// longest vector (`capacity`), so quantizing inside the token loop does not allocate.
#[derive(Clone, Debug)]
pub struct Activations {
    len: usize,
    /// The f32 values.
    pub x: Vec<f32>,
    /// 8-bit quantized values (both block forms share the buffer layout but not the values,
    /// hence two buffers).
    pub q32: Vec<i8>,
    /// Per-32 block scale (f16-rounded, as f32).
    pub d32: Vec<f32>,
    /// Per-32 block `d * sum(q)` (f16-rounded like candle's Q8_1, as f32).
    pub s32: Vec<f32>,
    /// Q8_K values.
    pub qk: Vec<i8>,
    /// Per-256 block scale (f32).
    pub dk: Vec<f32>,
    /// Per-16 sums of the Q8_K values.
    pub bsums: Vec<i32>,
}

impl Activations {
    /// Buffers for vectors of up to `capacity` elements (a multiple of 32; Q8_K forms need a
    /// multiple of 256 and are only produced when the length is one).
    pub fn new(capacity: usize) -> Activations {
        let cap_k = capacity.div_ceil(QK_K) * QK_K;
        Activations {
            len: 0,
            x: alloc::vec![0.0; capacity],
            q32: alloc::vec![0; capacity],
            d32: alloc::vec![0.0; capacity / QK],
            s32: alloc::vec![0.0; capacity / QK],
            qk: alloc::vec![0; cap_k],
            dk: alloc::vec![0.0; cap_k / QK_K],
            bsums: alloc::vec![0; cap_k / 16],
        }
    }

    /// Length of the current vector.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no vector is loaded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The current f32 vector.
    pub fn values(&self) -> &[f32] {
        &self.x[..self.len]
    }

    /// Loads `x` and computes the quantized forms in `kinds`. `x.len()` must not exceed the
    /// capacity and must be a multiple of 32 (256 for Q8K); the model guarantees both from its
    /// validated shapes.
    pub fn set(&mut self, x: &[f32], q8x32: bool, q8k: bool) {
        let n = x.len().min(self.x.len());
        self.len = n;
        self.x[..n].copy_from_slice(&x[..n]);
        if q8x32 {
            quantize_q8x32(&x[..n], &mut self.q32[..n], &mut self.d32, &mut self.s32);
        }
        if q8k && n % QK_K == 0 {
            quantize_q8k(&x[..n], &mut self.qk[..n], &mut self.dk, &mut self.bsums);
        }
    }
}

/// Round half away from zero to an integer (`roundf`), with `fcvtas` on AArch64.
#[inline(always)]
fn round_i32(x: f32) -> i32 {
    #[cfg(target_arch = "aarch64")]
    {
        neon::round_to_i32(x)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        libm::roundf(x) as i32
    }
}

#[inline]
fn f16_round(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

/// Quantizes `x` into 32-element blocks: `q = round(x / d)`, `d = max|x| / 127` (stored
/// f16-rounded), `s = f16(f16(sum q) * d)`: exactly candle's `BlockQ8_1::from_float` (whose
/// `d`/`qs` also equal `BlockQ8_0::from_float`).
pub fn quantize_q8x32(x: &[f32], q: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    for (((xb, qb), db), sb) in x
        .chunks_exact(QK)
        .zip(q.chunks_exact_mut(QK))
        .zip(d.iter_mut())
        .zip(s.iter_mut())
    {
        let amax = xb.iter().fold(0f32, |m, &v| m.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        let mut sum = 0i32;
        for (qv, &xv) in qb.iter_mut().zip(xb) {
            // |x * inv| <= 127 (+ rounding): the clamp only guards the cast.
            *qv = round_i32(xv * inv).clamp(-127, 127) as i8;
            sum += *qv as i32;
        }
        let dh = f16_round(scale);
        *db = dh;
        *sb = f16_round(f16_round(sum as f32) * dh);
    }
}

/// Quantizes `x` into 256-element Q8_K blocks (candle's `BlockQ8K::from_float`): the value of
/// largest magnitude maps to -127, `d = 1 / iscale` in f32, plus the sum of each 16 values.
pub fn quantize_q8k(x: &[f32], q: &mut [i8], d: &mut [f32], bsums: &mut [i32]) {
    for (((xb, qb), db), sb) in x
        .chunks_exact(QK_K)
        .zip(q.chunks_exact_mut(QK_K))
        .zip(d.iter_mut())
        .zip(bsums.chunks_exact_mut(QK_K / 16))
    {
        let mut max = 0f32;
        let mut amax = 0f32;
        for &v in xb {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            *db = 0.0;
            qb.fill(0);
            sb.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        for (qv, &xv) in qb.iter_mut().zip(xb) {
            *qv = round_i32(iscale * xv).clamp(-128, 127) as i8;
        }
        for (s, g) in sb.iter_mut().zip(qb.chunks_exact(16)) {
            *s = g.iter().map(|&v| v as i32).sum();
        }
        *db = 1.0 / iscale;
    }
}

/// Dot product of one weight row (`row`: the row's bytes in `ty`'s layout) with the loaded
/// activations, using NEON where available. The row length must equal `act.len()`.
#[inline]
pub fn dot(ty: GgmlType, row: &[u8], act: &Activations) -> f32 {
    #[cfg(target_arch = "aarch64")]
    {
        if let Some(v) = neon::dot(ty, row, act) {
            return v;
        }
    }
    portable::dot(ty, row, act)
}

/// `out[i] = row(first + i) . act` for consecutive rows of a matrix (`row_bytes` bytes per row
/// in `data`): one kernel dispatch per call instead of per row. Rows outside `data` give 0.
pub fn dot_rows(
    ty: GgmlType,
    data: &[u8],
    row_bytes: usize,
    first: usize,
    act: &Activations,
    out: &mut [f32],
) {
    #[cfg(target_arch = "aarch64")]
    {
        if neon::dot_rows(ty, data, row_bytes, first, act, out) {
            return;
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        let start = (first + i).saturating_mul(row_bytes);
        *o = match data.get(start..start.saturating_add(row_bytes)) {
            Some(row) => portable::dot(ty, row, act),
            None => 0.0,
        };
    }
}
