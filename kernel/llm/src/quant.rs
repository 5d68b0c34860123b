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
        if n % self.block_size() != 0 {
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
#[allow(dead_code)]
pub(crate) fn read_f16(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}
