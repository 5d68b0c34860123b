//! Fixed-point block scaling: the per-block scale products of the 32-element formats (Q4_0,
//! Q4_1, Q8_0) in integers, with one float operation per row instead of several per block.
//!
//! # Why
//! A dot product of a quantized row with quantized activations is, per 32-element block `b`,
//! `d_b dx_b isum_b (+ m_b s_b for Q4_1)`: an exact integer sum `isum_b` times f16 scales. ggml
//! and candle evaluate the scale part in f32, five or more float operations per block. Under
//! QEMU's TCG (the machine this kernel is measured on, and the one most users boot) every float
//! operation is a call into softfloat: 10-30 ns per element, where an integer vector operation
//! is inlined into the translated code and costs 1-2 ns for all its lanes. Measured with
//! qemu-aarch64 10.0.2 (cortex-a72), per instruction: `fmul v.4s` 56 ns, `fadd v.4s` 81 ns,
//! `scvtf v.4s` 76 ns, `fcvtl` 67 ns, against `mul v.4s` 1.2 ns, `sshl v.4s` 2.3 ns,
//! `smlal v.2d` 4 ns. The float part was two thirds of the whole forward pass.
//!
//! # How
//! Every f16 scale is split into a signed 11-bit mantissa and an exponent ([`split_f16`]):
//! `value = mantissa * 2^(exponent - 25)`, exactly (normal and subnormal numbers alike). The
//! scales of a matrix are brought to a common exponent per *matrix* ([`ScaleExponents`], the
//! largest exponent of its blocks, found once at load) and the activation scales to a common
//! exponent per *vector* (found when the vector is quantized); the per-block alignment is then a
//! shift of an integer mantissa. With
//!
//! * `d_fix = sshl(D, e_d + (f - F) + shift_d)` (the weight scale's mantissa, aligned for the
//!   weight *and* the activation exponent, at most 2^(11+K) in magnitude),
//! * `A = isum * X` (the integer sum times the activation scale's mantissa, below 2^30, exact:
//!   a small `isum` has few significant bits, so no shift is applied to it),
//! * `m_fix = sshl(M, e_m + shift_m)` and `s' = sshl(s_fix, shift_s)` for the Q4_1 minimum,
//!
//! a row is `unit * sum_b (d_fix A + m_fix s')`, summed exactly in 64 bits, converted to f32
//! once. `sshl` is the AArch64 vector shift by a signed amount (left when positive, arithmetic
//! right when negative), so the NEON kernels compute these very integers lane by lane and agree
//! with the portable kernels bit for bit.
//!
//! # Accuracy
//! Products are exact while a block's weight scale times its activation scale is within 2^K
//! of the largest possible (K = 10 for rows up to 1024 blocks: the matrix's largest weight
//! exponent with the vector's largest activation exponent), and its activation sum scale
//! within 2^19 of the vector's largest; smaller blocks lose low bits of terms that are that much
//! smaller. The sum itself is
//! exact (no rounding until the final conversion), so the result is at least as close to the
//! exact value of ggml's formula as ggml's own f32 evaluation, and usually closer.
//!
//! # Bounds
//! `|D|, |M|, |X|, |S| < 2^11`; `|isum| < 2^19` (Q8_0: 32 x 128 x 127); so `|A| < 2^30`,
//! `|s_fix| < 2^30`, each product below `2^(41+K)`, and with `K <= 20 - log2(blocks)` the sum of
//! `2 x blocks` products stays below 2^62: no overflow for any input. Shift amounts stay inside
//! the signed byte `sshl` reads. Arithmetic is wrapping anyway, so even an inconsistent input
//! cannot panic.

use crate::quant::{GgmlType, Q4_0_BYTES, Q4_1_BYTES, Q8_0_BYTES};

/// The exponent that makes an f16's mantissa an integer: `value = mantissa * 2^(e - 25)`.
pub const F16_EXPONENT_BIAS: i32 = 25;

/// Headroom bits of a weight scale above its matrix's largest-exponent alignment (K above)
/// for rows of up to 1024 blocks; longer rows give up one bit per doubling.
pub const WEIGHT_SCALE_HEADROOM: i32 = 10;

/// Bits the activation sum scale `s` is kept at relative to the vector's largest (`s_fix`
/// below 2^30 with an 11-bit mantissa).
pub const SUM_SCALE_BITS: i32 = 19;

/// Splits f16 bits into `(signed mantissa, effective exponent)` with
/// `value = mantissa * 2^(exponent - 25)`: the mantissa carries the implicit bit of normal
/// numbers; subnormals have exponent 1. Infinities and NaNs (exponent field 31) come out as
/// large finite numbers (a file with such scales gives garbage, never a fault).
#[inline(always)]
pub fn split_f16(bits: u16) -> (i32, i32) {
    let field = i32::from((bits >> 10) & 0x1f);
    let magnitude = i32::from(bits & 0x3ff) | if field != 0 { 0x400 } else { 0 };
    let mantissa = if bits & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    };
    (mantissa, field.max(1))
}

/// AArch64 `SSHL` on a 32-bit lane: shift left by `amount` when it is positive, arithmetic
/// right when negative; the amount is the low byte of `amount`, as a signed number. Shifts of
/// 32 or more give 0 (left) or the sign (right).
#[inline(always)]
pub fn sshl32(x: i32, amount: i32) -> i32 {
    let s = i32::from(amount as i8);
    if s >= 0 {
        if s >= 32 {
            0
        } else {
            x.wrapping_shl(s as u32)
        }
    } else if s <= -32 {
        x >> 31
    } else {
        x >> (-s)
    }
}

/// The largest effective scale exponents of a matrix's blocks: the common reference the
/// fixed-point kernels align every block to. Any upper bound of the blocks' exponents is
/// correct; the tight one (from [`ScaleExponents::of`]) is the most precise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScaleExponents {
    /// Of the `d` scales.
    pub d: u8,
    /// Of the `m` minimums (Q4_1); 1 for the other formats.
    pub m: u8,
    /// Whether no scale (or minimum) is zero or subnormal (exponent field 0): then
    /// [`split_f16`] is the plain "implicit bit plus exponent field", which the NEON kernels
    /// compute with three fewer instructions per group. Real files have no such scales
    /// (SmolLM2: none among 4.2M blocks); `false` only costs those instructions.
    pub all_normal: bool,
}

impl ScaleExponents {
    /// Scans the block headers of `data` (rows of `ty`); formats without 32-element block
    /// scales give the default.
    pub fn of(ty: GgmlType, data: &[u8]) -> ScaleExponents {
        let (block, has_min) = match ty {
            GgmlType::Q4_0 => (Q4_0_BYTES, false),
            GgmlType::Q4_1 => (Q4_1_BYTES, true),
            GgmlType::Q8_0 => (Q8_0_BYTES, false),
            _ => return ScaleExponents::default(),
        };
        let mut d = 1i32;
        let mut m = 1i32;
        let mut all_normal = true;
        let normal = |bits: u16| bits & 0x7c00 != 0;
        for b in data.chunks_exact(block) {
            let d_bits = u16::from_le_bytes([b[0], b[1]]);
            d = d.max(split_f16(d_bits).1);
            all_normal &= normal(d_bits);
            if has_min {
                let m_bits = u16::from_le_bytes([b[2], b[3]]);
                m = m.max(split_f16(m_bits).1);
                all_normal &= normal(m_bits);
            }
        }
        ScaleExponents {
            d: d as u8,
            m: m as u8,
            all_normal,
        }
    }
}

/// The per-product constants of one matrix-vector product (one matrix's [`ScaleExponents`]
/// against one quantized vector).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockScaling {
    /// Added to a block's `d` exponent: the `sshl` amount that aligns its mantissa.
    pub shift_d: i32,
    /// Added to a block's `m` exponent (Q4_1).
    pub shift_m: i32,
    /// The `sshl` amount applied to the vector's `s_fix` (Q4_1; never positive).
    pub shift_s: i32,
    /// The value of one unit of the 64-bit sum.
    pub unit: f32,
    /// [`ScaleExponents::all_normal`] of the matrix.
    pub all_normal: bool,
}

/// `2^e` as an f32, `e` clamped to the normal range.
#[inline]
fn pow2(e: i32) -> f32 {
    f32::from_bits(((e.clamp(-126, 127) + 127) as u32) << 23)
}

/// `ceil(log2(n))` for `n >= 1`.
#[inline]
fn ceil_log2(n: usize) -> i32 {
    (usize::BITS - n.max(1).saturating_sub(1).leading_zeros()) as i32
}

impl BlockScaling {
    /// Constants for a row of `blocks` blocks of a matrix with scale exponents `weights`
    /// against a vector whose largest activation-scale and sum-scale exponents are
    /// `activation_max` and `sum_max`; `with_min` for Q4_1.
    pub fn new(
        weights: ScaleExponents,
        activation_max: i32,
        sum_max: i32,
        blocks: usize,
        with_min: bool,
    ) -> BlockScaling {
        let e_d = i32::from(weights.d);
        let e_m = i32::from(weights.m);
        // Headroom so that 2 x blocks products of at most 2^(41+K) sum below 2^62.
        let mut k = WEIGHT_SCALE_HEADROOM.min(20 - ceil_log2(blocks));
        let (mut shift_m, mut shift_s) = (0, 0);
        if with_min {
            // The minimum term, m_fix s', must land in the units of the scale term: it is
            // 2^delta of them per unit of m_fix s_fix. A positive delta is absorbed by giving
            // both terms less headroom (precision, not range, is what gives way).
            let delta = e_m + sum_max - e_d - activation_max - SUM_SCALE_BITS;
            let raise = delta.max(0);
            k -= raise;
            shift_m = (k + raise - e_m).clamp(-96, 96);
            shift_s = delta.clamp(-96, 0);
        }
        BlockScaling {
            shift_d: (k - e_d).clamp(-96, 96),
            shift_m,
            shift_s,
            unit: pow2(e_d + activation_max - k - 2 * F16_EXPONENT_BIAS),
            all_normal: weights.all_normal,
        }
    }

    /// The f32 value of a row's 64-bit sum.
    #[inline(always)]
    pub fn finish(&self, sum: i64) -> f32 {
        sum as f32 * self.unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::f16_to_f32;

    #[test]
    fn f16_split_is_exact_for_every_finite_value() {
        for bits in 0..=u16::MAX {
            let value = f16_to_f32(bits);
            if !value.is_finite() {
                continue;
            }
            let (mantissa, exponent) = split_f16(bits);
            assert!((1..=30).contains(&exponent), "{bits:#x}");
            assert!(mantissa.abs() < 2048, "{bits:#x}");
            let rebuilt = mantissa as f64 * 2f64.powi(exponent - F16_EXPONENT_BIAS);
            assert_eq!(rebuilt, value as f64, "{bits:#x}");
        }
        // Infinity and NaN: finite, bounded numbers.
        for bits in [0x7c00u16, 0xfc00, 0x7e00, 0xffff] {
            let (mantissa, exponent) = split_f16(bits);
            assert_eq!(exponent, 31);
            assert!(mantissa.abs() < 2048);
        }
    }

    #[test]
    fn sshl_follows_the_arm_definition() {
        assert_eq!(sshl32(3, 4), 48);
        assert_eq!(sshl32(-48, -4), -3);
        assert_eq!(sshl32(-1, -1), -1); // arithmetic shift rounds toward minus infinity
        assert_eq!(sshl32(-5, -1), -3);
        assert_eq!(sshl32(5, 32), 0);
        assert_eq!(sshl32(5, -32), 0);
        assert_eq!(sshl32(-5, -40), -1);
        assert_eq!(sshl32(1, 31), i32::MIN);
        // Only the low byte counts: 256 + 2 shifts by 2, 255 is -1.
        assert_eq!(sshl32(1, 258), 4);
        assert_eq!(sshl32(8, 255), 4);
    }

    #[test]
    fn scale_exponents_are_the_largest_of_the_blocks() {
        let mut data = alloc::vec::Vec::new();
        for (d, m) in [(0x3c00u16, 0x0001u16), (0x2000, 0xc400), (0x0000, 0x0000)] {
            data.extend_from_slice(&d.to_le_bytes());
            data.extend_from_slice(&m.to_le_bytes());
            data.extend_from_slice(&[0u8; 16]);
        }
        let e = ScaleExponents::of(GgmlType::Q4_1, &data);
        assert_eq!(
            e,
            ScaleExponents {
                d: 15,
                m: 17,
                all_normal: false
            }
        );
        let normal = ScaleExponents::of(GgmlType::Q4_1, &data[..40]);
        assert!(!normal.all_normal, "the subnormal minimum 0x0001");
        assert!(ScaleExponents::of(GgmlType::Q4_1, &data[20..40]).all_normal);
        assert_eq!(
            ScaleExponents::of(GgmlType::Q4_K, &data),
            ScaleExponents::default()
        );
    }

    #[test]
    fn headroom_shrinks_with_the_row_length_and_units_are_powers_of_two() {
        let w = ScaleExponents {
            d: 10,
            m: 12,
            all_normal: true,
        };
        let s = BlockScaling::new(w, 8, 20, 18, true);
        // delta = 12 + 20 - 10 - 8 - 19 = -5: no raise, K = 10.
        assert_eq!((s.shift_d, s.shift_m, s.shift_s), (0, -2, -5));
        assert_eq!(s.unit, pow2(10 + 8 - 10 - 50));
        let long = BlockScaling::new(w, 8, 20, 4096, false);
        assert_eq!(long.shift_d, 8 - 10);
        // A large minimum scale: both terms give up headroom.
        let extreme = ScaleExponents {
            d: 1,
            m: 30,
            all_normal: false,
        };
        let raised = BlockScaling::new(extreme, 1, 30, 18, true);
        let delta = 30 + 30 - 1 - 1 - SUM_SCALE_BITS;
        assert_eq!(raised.shift_d, 10 - delta - 1);
        assert_eq!(raised.shift_s, 0);
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(1024), 10);
        assert_eq!(ceil_log2(1025), 11);
    }
}
