//! Tensor element types (ggml's block layouts) and their dequantization.
//!
//! Every quantized type stores a row as a sequence of fixed-size *blocks*: a block holds
//! `block_size()` weights in `type_size()` bytes, with its scale(s) first (or last, for Q6_K)
//! and then the packed integers. The layouts below are byte-for-byte ggml's (`ggml-common.h`),
//! because the weights are used in place, straight out of the GGUF file: nothing is converted
//! at load time. Blocks are read with `from_le_bytes` on byte slices, never by casting pointers,
//! so neither the alignment of the initrd nor a corrupt file can cause undefined behaviour.
//!
//! | type | weights/block | bytes/block | layout |
//! |---|---|---|---|
//! | F32  | 1   | 4   | IEEE binary32 |
//! | F16  | 1   | 2   | IEEE binary16 |
//! | Q4_0 | 32  | 18  | f16 d; 16 bytes of nibbles; w = d * (q - 8) |
//! | Q4_1 | 32  | 20  | f16 d, f16 m; 16 bytes of nibbles; w = d * q + m |
//! | Q8_0 | 32  | 34  | f16 d; 32 x i8; w = d * q |
//! | Q4_K | 256 | 144 | f16 d, f16 dmin; 12 bytes of 6-bit (scale, min) x 8; 128 bytes of nibbles |
//! | Q6_K | 256 | 210 | 128 bytes low nibbles; 64 bytes high 2-bit pairs; 16 x i8 scales; f16 d |
//!
//! In the 32-weight types, byte `j` of the nibbles holds weight `j` in its low half and weight
//! `j + 16` in its high half.

/// A ggml tensor element type supported by the engine (the types TinyLlama and SmolLM2 GGUF
/// files use). The discriminant is the ggml type id stored in GGUF tensor infos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 32-bit float.
    F32 = 0,
    /// 16-bit float.
    F16 = 1,
    /// 4-bit, one f16 scale per 32 weights, offset 8.
    Q4_0 = 2,
    /// 4-bit, f16 scale and f16 minimum per 32 weights.
    Q4_1 = 3,
    /// 8-bit, one f16 scale per 32 weights.
    Q8_0 = 8,
    /// 4-bit k-quant: 256-weight super-blocks of 8 sub-blocks with 6-bit scales and minimums.
    Q4_K = 12,
    /// 6-bit k-quant: 256-weight super-blocks of 16 sub-blocks with 8-bit scales.
    Q6_K = 14,
}

/// Weights per block of the 32-weight types (ggml `QK4_0`, `QK4_1`, `QK8_0`).
pub const QK: usize = 32;
/// Weights per super-block of the k-quants (ggml `QK_K`).
pub const QK_K: usize = 256;

/// Bytes of one Q4_0 block.
pub const Q4_0_BYTES: usize = 2 + QK / 2;
/// Bytes of one Q4_1 block.
pub const Q4_1_BYTES: usize = 4 + QK / 2;
/// Bytes of one Q8_0 block.
pub const Q8_0_BYTES: usize = 2 + QK;
/// Bytes of one Q4_K super-block.
pub const Q4_K_BYTES: usize = 2 + 2 + 12 + QK_K / 2;
/// Bytes of one Q6_K super-block.
pub const Q6_K_BYTES: usize = QK_K / 2 + QK_K / 4 + QK_K / 16 + 2;

impl GgmlType {
    /// The type for a ggml type id, or `None` when the engine does not support it.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            12 => GgmlType::Q4_K,
            14 => GgmlType::Q6_K,
            _ => return None,
        })
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Weights per block.
    pub fn block_size(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => QK,
            GgmlType::Q4_K | GgmlType::Q6_K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 => 2,
            GgmlType::Q4_0 => Q4_0_BYTES,
            GgmlType::Q4_1 => Q4_1_BYTES,
            GgmlType::Q8_0 => Q8_0_BYTES,
            GgmlType::Q4_K => Q4_K_BYTES,
            GgmlType::Q6_K => Q6_K_BYTES,
        }
    }

    /// ggml's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q6_K => "Q6_K",
        }
    }

    /// Bytes of a row of `n` weights, or `None` when `n` is not a whole number of blocks.
    pub fn row_bytes(self, n: usize) -> Option<usize> {
        if !n.is_multiple_of(self.block_size()) {
            return None;
        }
        (n / self.block_size()).checked_mul(self.type_size())
    }
}

impl core::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// IEEE binary16 to binary32, exact for every input (subnormals, infinities and NaN included).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = if exp == 0 {
        if mant == 0 {
            sign
        } else {
            // Subnormal: value = mant * 2^-24, exact in f32.
            let v = mant as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
    } else if exp == 0x1f {
        sign | 0x7f80_0000 | (mant << 13)
    } else {
        sign | ((exp + 112) << 23) | (mant << 13)
    };
    f32::from_bits(bits)
}

/// IEEE binary32 to binary16 with round-to-nearest-even (used by the synthesizer and tests to
/// write blocks; the engine itself only reads f16).
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        // Inf or NaN (keep NaN quiet and non-zero).
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal half: shift the mantissa (with its hidden bit) into place, round to even.
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        let rounded = if rem > halfway || (rem == halfway && (half & 1) == 1) {
            half + 1
        } else {
            half
        };
        return sign | rounded as u16;
    }
    let half = ((e as u32) << 10) | (mant >> 13);
    let rem = mant & 0x1fff;
    let rounded = if rem > 0x1000 || (rem == 0x1000 && (half & 1) == 1) {
        half + 1
    } else {
        half
    };
    sign | rounded as u16
}

#[inline]
pub(crate) fn read_f16(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// Scale and minimum (both 6-bit) of sub-block `j` (0..8) of a Q4_K super-block, from its
/// 12 packed scale bytes (ggml `get_scale_min_k4`).
#[inline]
pub fn q4_k_scale_min(j: usize, scales: &[u8]) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0xf) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// Dequantizes one row: `bytes` must hold exactly `out.len()` weights of type `ty` (the
/// callers take rows from validated tensors). Returns `false`, writing nothing, on a length
/// mismatch instead of panicking.
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> bool {
    if ty.row_bytes(out.len()) != Some(bytes.len()) {
        return false;
    }
    match ty {
        GgmlType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        GgmlType::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(Q4_0_BYTES)) {
                let d = read_f16(b, 0);
                for j in 0..QK / 2 {
                    o[j] = ((b[2 + j] & 0xf) as i32 - 8) as f32 * d;
                    o[j + QK / 2] = ((b[2 + j] >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(Q4_1_BYTES)) {
                let d = read_f16(b, 0);
                let m = read_f16(b, 2);
                for j in 0..QK / 2 {
                    o[j] = (b[4 + j] & 0xf) as f32 * d + m;
                    o[j + QK / 2] = (b[4 + j] >> 4) as f32 * d + m;
                }
            }
        }
        GgmlType::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(Q8_0_BYTES)) {
                let d = read_f16(b, 0);
                for j in 0..QK {
                    o[j] = (b[2 + j] as i8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_K => {
            for (o, b) in out
                .chunks_exact_mut(QK_K)
                .zip(bytes.chunks_exact(Q4_K_BYTES))
            {
                let d = read_f16(b, 0);
                let dmin = read_f16(b, 2);
                let scales = &b[4..16];
                let qs = &b[16..];
                for chunk in 0..4 {
                    let (sc1, m1) = q4_k_scale_min(2 * chunk, scales);
                    let (sc2, m2) = q4_k_scale_min(2 * chunk + 1, scales);
                    let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
                    let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
                    let q = &qs[32 * chunk..32 * chunk + 32];
                    let o = &mut o[64 * chunk..64 * chunk + 64];
                    for l in 0..32 {
                        o[l] = d1 * (q[l] & 0xf) as f32 - m1;
                        o[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
                    }
                }
            }
        }
        GgmlType::Q6_K => {
            for (o, b) in out
                .chunks_exact_mut(QK_K)
                .zip(bytes.chunks_exact(Q6_K_BYTES))
            {
                let d = read_f16(b, 208);
                for half in 0..2 {
                    let ql = &b[64 * half..64 * half + 64];
                    let qh = &b[128 + 32 * half..128 + 32 * half + 32];
                    let sc = &b[192 + 8 * half..192 + 8 * half + 8];
                    let o = &mut o[128 * half..128 * half + 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        o[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                        o[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                        o[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                        o[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
                    }
                }
            }
        }
    }
    true
}

/// Quantizes `x` (whole blocks) into `ty`'s layout, appending to `out`: the writer half used by
/// the synthesizer and the tests (ggml's reference quantizers, simplified for the k-quants:
/// scales from the block's range rather than ggml's iterative search). Returns `false` when
/// `x` is not a whole number of blocks.
pub fn quantize_row(ty: GgmlType, x: &[f32], out: &mut alloc::vec::Vec<u8>) -> bool {
    if !x.len().is_multiple_of(ty.block_size()) {
        return false;
    }
    let round = |v: f32| libm::roundf(v);
    match ty {
        GgmlType::F32 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&f32_to_f16(*v).to_le_bytes())),
        GgmlType::Q4_0 => {
            for b in x.chunks_exact(QK) {
                // ggml: the value of largest magnitude maps to -8.
                let max = b
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
                for j in 0..QK / 2 {
                    let q0 = (round(b[j] * id) + 8.0).clamp(0.0, 15.0) as u8;
                    let q1 = (round(b[j + 16] * id) + 8.0).clamp(0.0, 15.0) as u8;
                    out.push(q0 | (q1 << 4));
                }
            }
        }
        GgmlType::Q4_1 => {
            for b in x.chunks_exact(QK) {
                let min = b.iter().fold(f32::INFINITY, |m, &v| m.min(v));
                let max = b.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
                out.extend_from_slice(&f32_to_f16(min).to_le_bytes());
                for j in 0..QK / 2 {
                    let q0 = round((b[j] - min) * id).clamp(0.0, 15.0) as u8;
                    let q1 = round((b[j + 16] - min) * id).clamp(0.0, 15.0) as u8;
                    out.push(q0 | (q1 << 4));
                }
            }
        }
        GgmlType::Q8_0 => {
            for b in x.chunks_exact(QK) {
                let amax = b.iter().fold(0f32, |m, &v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
                for &v in b {
                    out.push(round(v * id) as i8 as u8);
                }
            }
        }
        GgmlType::Q4_K => {
            for sb in x.chunks_exact(QK_K) {
                // Per 32-weight sub-block: scale = range/15, min = -lowest (>= 0).
                let mut sub_scale = [0f32; 8];
                let mut sub_min = [0f32; 8];
                for (j, b) in sb.chunks_exact(32).enumerate() {
                    let lo = b.iter().fold(0f32, |m, &v| m.min(v));
                    let hi = b.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    sub_scale[j] = (hi - lo) / 15.0;
                    sub_min[j] = -lo;
                }
                let max_scale = sub_scale.iter().fold(0f32, |m, &v| m.max(v));
                let max_min = sub_min.iter().fold(0f32, |m, &v| m.max(v));
                let d = f16_to_f32(f32_to_f16(max_scale / 63.0));
                let dmin = f16_to_f32(f32_to_f16(max_min / 63.0));
                let mut ls = [0u8; 8];
                let mut lm = [0u8; 8];
                for j in 0..8 {
                    ls[j] = if d > 0.0 {
                        round(sub_scale[j] / d).clamp(0.0, 63.0) as u8
                    } else {
                        0
                    };
                    lm[j] = if dmin > 0.0 {
                        round(sub_min[j] / dmin).clamp(0.0, 63.0) as u8
                    } else {
                        0
                    };
                }
                let mut scales = [0u8; 12];
                for j in 0..8 {
                    if j < 4 {
                        scales[j] = ls[j];
                        scales[j + 4] = lm[j];
                    } else {
                        scales[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
                        scales[j - 4] |= (ls[j] >> 4) << 6;
                        scales[j] |= (lm[j] >> 4) << 6;
                    }
                }
                out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
                out.extend_from_slice(&f32_to_f16(dmin).to_le_bytes());
                out.extend_from_slice(&scales);
                let mut q = [0u8; QK_K];
                for j in 0..8 {
                    let (sc, m) = q4_k_scale_min(j, &scales);
                    let dj = d * sc as f32;
                    let mj = dmin * m as f32;
                    for l in 0..32 {
                        let v = sb[32 * j + l];
                        q[32 * j + l] = if dj > 0.0 {
                            round((v + mj) / dj).clamp(0.0, 15.0) as u8
                        } else {
                            0
                        };
                    }
                }
                for chunk in 0..4 {
                    for l in 0..32 {
                        out.push(q[64 * chunk + l] | (q[64 * chunk + 32 + l] << 4));
                    }
                }
            }
        }
        GgmlType::Q6_K => {
            for sb in x.chunks_exact(QK_K) {
                let mut sub_scale = [0f32; 16];
                for (j, b) in sb.chunks_exact(16).enumerate() {
                    let max = b
                        .iter()
                        .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                    sub_scale[j] = max / -32.0;
                }
                let max_scale = sub_scale
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = f16_to_f32(f32_to_f16(max_scale / -128.0));
                let mut scales = [0i8; 16];
                let mut q = [0u8; QK_K];
                for j in 0..16 {
                    scales[j] = if d != 0.0 {
                        round(sub_scale[j] / d).clamp(-128.0, 127.0) as i8
                    } else {
                        0
                    };
                    let dj = d * scales[j] as f32;
                    for l in 0..16 {
                        let v = sb[16 * j + l];
                        q[16 * j + l] = if dj != 0.0 {
                            (round(v / dj) + 32.0).clamp(0.0, 63.0) as u8
                        } else {
                            32
                        };
                    }
                }
                let mut ql = [0u8; 128];
                let mut qh = [0u8; 64];
                for half in 0..2 {
                    for l in 0..32 {
                        let base = 128 * half;
                        let q1 = q[base + l];
                        let q2 = q[base + l + 32];
                        let q3 = q[base + l + 64];
                        let q4 = q[base + l + 96];
                        ql[64 * half + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
                        ql[64 * half + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
                        qh[32 * half + l] =
                            (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
                    }
                }
                out.extend_from_slice(&ql);
                out.extend_from_slice(&qh);
                out.extend(scales.iter().map(|&s| s as u8));
                out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn f16_round_trip_and_specials() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f16_to_f32(f32_to_f16(f)).is_nan());
            } else {
                assert_eq!(f32_to_f16(f), h, "h={h:#x} f={f}");
            }
        }
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f32_to_f16(65520.0), 0x7c00); // rounds to infinity
    }

    fn test_vector(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 2.0
            })
            .collect()
    }

    #[test]
    fn every_type_round_trips_within_its_precision() {
        // Max abs error of quantize -> dequantize on uniform [-1, 1) data, per type: bounded by
        // half a quantization step (plus the f16 rounding of scales).
        let cases = [
            (GgmlType::F32, 0.0),
            (GgmlType::F16, 1e-3),
            (GgmlType::Q8_0, 0.01),
            (GgmlType::Q4_0, 0.15),
            (GgmlType::Q4_1, 0.08),
            (GgmlType::Q4_K, 0.12),
            (GgmlType::Q6_K, 0.04),
        ];
        let x = test_vector(512, 7);
        for (ty, tol) in cases {
            let mut bytes = Vec::new();
            assert!(quantize_row(ty, &x, &mut bytes));
            assert_eq!(bytes.len(), ty.row_bytes(512).unwrap(), "{ty}");
            let mut y = vec![0f32; 512];
            assert!(dequantize_row(ty, &bytes, &mut y));
            let err = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err <= tol, "{ty}: max error {err} > {tol}");
        }
    }

    #[test]
    fn q4_1_layout_is_ggml() {
        // d = 1, m = -8, nibbles: weight j = j % 16 in low halves, 15 - j in high halves.
        let mut b = Vec::new();
        b.extend_from_slice(&f32_to_f16(1.0).to_le_bytes());
        b.extend_from_slice(&f32_to_f16(-8.0).to_le_bytes());
        for j in 0..16u8 {
            b.push(j | ((15 - j) << 4));
        }
        let mut y = [0f32; 32];
        assert!(dequantize_row(GgmlType::Q4_1, &b, &mut y));
        for j in 0..16 {
            assert_eq!(y[j], j as f32 - 8.0);
            assert_eq!(y[j + 16], (15 - j) as f32 - 8.0);
        }
        assert!(!dequantize_row(GgmlType::Q4_1, &b[..19], &mut y));
    }

    #[test]
    fn q4_k_scale_packing_is_ggml() {
        // Sub-blocks 0..4 take the low 6 bits of bytes 0..8; 4..8 combine nibbles of bytes 8..12
        // with the top 2 bits of bytes 0..8.
        let scales = [
            0xC1, 0x02, 0x03, 0x44, 0x85, 0x06, 0x07, 0x08, 0x9A, 0xBC, 0xDE, 0xF0,
        ];
        assert_eq!(q4_k_scale_min(0, &scales), (1, 5));
        assert_eq!(q4_k_scale_min(3, &scales), (4, 8));
        assert_eq!(q4_k_scale_min(4, &scales), (0xA | (3 << 4), 0x9 | (2 << 4)));
        assert_eq!(q4_k_scale_min(7, &scales), (0x10, 0xF));
    }
}
