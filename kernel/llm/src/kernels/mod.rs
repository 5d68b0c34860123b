//! Dot-product kernels: quantized weight rows times quantized activations.
//!
//! A matrix-vector product is the whole cost of a forward pass, so the design is driven by the
//! inner loop. The activation vector is quantized once per product to 8-bit integers exactly
//! as candle/ggml do it, so the integer sums are the reference's to the bit:
//!
//! * for Q4_0/Q4_1/Q8_0 weights: Q8_1 blocks (32 values, scale `d = max|x| / 127` rounded to
//!   f16, and `s = d * sum(q)` rounded to f16 for Q4_1's minimum:
//!   `sum((d q + m) dx qx) = d dx sum(q qx) + m s`);
//! * for Q4_K/Q6_K weights: Q8_K blocks (256 values, f32 scale, sums of each 16 for the mins).
//!
//! The 32-element formats then scale each block's integer sum in fixed point ([`fixed`]): one
//! float conversion per row instead of five float operations per block, which under QEMU's
//! software floating point is the difference between the float part dominating the forward
//! pass and it vanishing.
//!
//! The portable path is the specification. The NEON path (`neon`) computes the same integers,
//! so for Q4_0/Q4_1/Q8_0 the two agree to the bit; for Q4_K/Q6_K the NEON integer sums feed
//! the portable kernels' float steps in the same order: bit-identical as well.

pub mod fixed;
#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod portable;

use alloc::vec::Vec;

pub use fixed::{BlockScaling, ScaleExponents};

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

/// One block of Q8_1 values (32 x i8); 16-byte aligned so that the NEON kernels load it with
/// one `ldp q`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct ActivationBlock(pub [i8; QK]);

/// Where element `i` of a block is stored in an [`ActivationBlock16`]: the order in which a Q4
/// block's weights unpack from 16-bit lanes. Byte `j` of a Q4 block holds weights `j` (low
/// nibble) and `j + 16` (high); read as eight 16-bit lanes, lane `l` holds weights `2l`,
/// `2l + 16`, `2l + 1`, `2l + 17` in its four nibbles. So the values are stored as four runs of
/// eight: even elements 0..16, even 16..32, odd 0..16, odd 16..32.
pub const PERMUTED: [usize; QK] = {
    let mut p = [0usize; QK];
    let mut i = 0;
    while i < QK {
        p[i] = (i % 2) * 16 + (i / 16) * 8 + (i % 16) / 2;
        i += 1;
    }
    p
};

/// Where element `i` of a 32-element Q4_K sub-block is stored in [`Activations::qk16`]: the
/// order in which its weights unpack from 16-bit lanes. A Q4_K sub-block pair (64 weights)
/// holds its first sub-block in the low nibbles of 32 bytes and its second in the high ones;
/// read as two registers of eight 16-bit lanes, lane `l` of the first holds weights `2l` and
/// `2l + 1` of each sub-block, lane `l` of the second `16 + 2l` and `17 + 2l`. So each
/// sub-block's values are stored as four runs of eight: even 0..16, odd 0..16, even 16..32,
/// odd 16..32.
pub const PERMUTED_K: [usize; QK] = {
    let mut p = [0usize; QK];
    let mut i = 0;
    while i < QK {
        p[i] = (i / 16) * 16 + (i % 2) * 8 + (i % 16) / 2;
        i += 1;
    }
    p
};

/// One block of Q8_1 values widened to i16 in [`PERMUTED`] order, for the Q4 kernels: the
/// unpacked nibbles meet their activations lane by lane in 16-bit `mul`/`mla`, which TCG
/// inlines (the widening 8-bit multiplies it does not, and they cost ~50% more there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct ActivationBlock16(pub [i16; QK]);

/// The fixed-point scale data of four consecutive activation blocks (a NEON kernel's group),
/// one 64-byte record: four 16-byte registers at one pointer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct GroupScales {
    /// The mantissa of each block's scale `d` (see [`fixed::split_f16`]).
    pub x_mantissa: [i32; 4],
    /// The exponent of each block's `d` minus the vector's largest (never positive).
    pub x_shift: [i32; 4],
    /// Each block's `s` in fixed point: `mantissa << (exponent - largest + 19)`.
    pub s_fix: [i32; 4],
    /// Each block's `sum(q)` (Q4_0's offset of 8 folds into it).
    pub q_sum: [i32; 4],
}

/// An activation vector in every form a kernel may need, with buffers allocated once for the
/// longest vector (`capacity`), so quantizing inside the token loop does not allocate.
#[derive(Clone, Debug)]
pub struct Activations {
    len: usize,
    /// The f32 values.
    pub x: Vec<f32>,
    /// Q8_1 values, one [`ActivationBlock`] per 32 (Q8_0 weights), padded to whole groups of
    /// four.
    pub q8: Vec<ActivationBlock>,
    /// The same values widened and permuted, one [`ActivationBlock16`] per 32 (Q4_0 and Q4_1
    /// weights), padded likewise.
    pub q16: Vec<ActivationBlock16>,
    /// The fixed-point scales, one record per group of four blocks.
    pub groups: Vec<GroupScales>,
    /// Per-32 block scale `d` (f16-rounded, as f32).
    pub d32: Vec<f32>,
    /// Per-32 block `s = d * sum(q)` (f16-rounded like candle's Q8_1, as f32).
    pub s32: Vec<f32>,
    /// The largest exponent of the `d` scales of the current vector.
    pub scale_exponent_max: i32,
    /// The largest exponent of the `s` sums of the current vector.
    pub sum_exponent_max: i32,
    /// Q8_K values.
    pub qk: Vec<i8>,
    /// The same values widened to i16, each 32 in [`PERMUTED_K`] order (Q4_K weights).
    pub qk16: Vec<i16>,
    /// Per-256 block scale (f32).
    pub dk: Vec<f32>,
    /// Per-16 sums of the Q8_K values.
    pub bsums: Vec<i32>,
    /// The same sums as i16 (at most 16 x 128 in magnitude), for the Q6_K kernel's offset.
    pub bsums16: Vec<i16>,
    /// Per-32 sums of the Q8_K values as i16 (at most 32 x 128), for the Q4_K kernel's mins.
    pub bsums32: Vec<i16>,
}

impl Activations {
    /// Buffers for vectors of up to `capacity` elements (a multiple of 32; Q8_K forms need a
    /// multiple of 256 and are only produced when the length is one).
    pub fn new(capacity: usize) -> Activations {
        let cap_k = capacity.div_ceil(QK_K) * QK_K;
        let groups = capacity.div_ceil(4 * QK);
        Activations {
            len: 0,
            x: alloc::vec![0.0; capacity],
            q8: alloc::vec![ActivationBlock::default(); groups * 4],
            q16: alloc::vec![ActivationBlock16::default(); groups * 4],
            groups: alloc::vec![GroupScales::default(); groups],
            d32: alloc::vec![0.0; groups * 4],
            s32: alloc::vec![0.0; groups * 4],
            scale_exponent_max: 1,
            sum_exponent_max: 1,
            qk: alloc::vec![0; cap_k],
            qk16: alloc::vec![0; cap_k],
            dk: alloc::vec![0.0; cap_k / QK_K],
            bsums: alloc::vec![0; cap_k / 16],
            bsums16: alloc::vec![0; cap_k / 16],
            bsums32: alloc::vec![0; cap_k / 32],
        }
    }

    /// Block `b`'s 32 Q8_1 values.
    #[inline(always)]
    pub fn block(&self, b: usize) -> &[i8; QK] {
        &self.q8[b].0
    }

    /// Block `b`'s scale mantissa.
    #[inline(always)]
    pub fn x_mantissa(&self, b: usize) -> i32 {
        self.groups[b / 4].x_mantissa[b % 4]
    }

    /// Block `b`'s scale exponent minus the vector's largest.
    #[inline(always)]
    pub fn x_shift(&self, b: usize) -> i32 {
        self.groups[b / 4].x_shift[b % 4]
    }

    /// Block `b`'s sum scale in fixed point.
    #[inline(always)]
    pub fn s_fix(&self, b: usize) -> i32 {
        self.groups[b / 4].s_fix[b % 4]
    }

    /// Block `b`'s `sum(q)`.
    #[inline(always)]
    pub fn q_sum(&self, b: usize) -> i32 {
        self.groups[b / 4].q_sum[b % 4]
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

    /// The Q8_1 value of element `i`.
    pub fn q8_at(&self, i: usize) -> i8 {
        self.q8[i / QK].0[i % QK]
    }

    /// Bytes of every buffer.
    pub fn heap_bytes(&self) -> usize {
        let words =
            self.x.len() + self.d32.len() + self.s32.len() + self.dk.len() + self.bsums.len();
        words * 4
            + self.q8.len() * core::mem::size_of::<ActivationBlock>()
            + self.q16.len() * core::mem::size_of::<ActivationBlock16>()
            + self.groups.len() * core::mem::size_of::<GroupScales>()
            + self.qk.len()
            + (self.qk16.len() + self.bsums16.len() + self.bsums32.len()) * 2
    }

    /// Loads `x` and computes the quantized forms in `kinds`. `x.len()` must not exceed the
    /// capacity and must be a multiple of 32 (256 for Q8K); the model guarantees both from its
    /// validated shapes.
    pub fn set(&mut self, x: &[f32], q8x32: bool, q8k: bool) {
        let n = x.len().min(self.x.len());
        self.len = n;
        self.x[..n].copy_from_slice(&x[..n]);
        if q8x32 {
            self.quantize_q8x32(n);
        }
        if q8k && n.is_multiple_of(QK_K) {
            quantize_q8k(&x[..n], &mut self.qk[..n], &mut self.dk, &mut self.bsums);
            for (wide, narrow) in self.qk16[..n]
                .chunks_exact_mut(QK)
                .zip(self.qk[..n].chunks_exact(QK))
            {
                for (&value, &at) in narrow.iter().zip(PERMUTED_K.iter()) {
                    wide[at] = i16::from(value);
                }
            }
            let sums = n / 16;
            for (narrow, &sum) in self.bsums16[..sums].iter_mut().zip(&self.bsums[..sums]) {
                *narrow = sum as i16; // |sum| <= 16 x 128
            }
            for (narrow, pair) in self.bsums32[..sums / 2]
                .iter_mut()
                .zip(self.bsums[..sums].chunks_exact(2))
            {
                *narrow = (pair[0] + pair[1]) as i16; // |sum| <= 32 x 128
            }
        }
    }

    /// The Q8_1 form of the first `n` values, and its fixed-point scales.
    fn quantize_q8x32(&mut self, n: usize) {
        let blocks = n / QK;
        let mut largest_d = 1;
        let mut largest_s = 1;
        for b in 0..blocks {
            let x: &[f32; QK] = match self.x[b * QK..(b + 1) * QK].try_into() {
                Ok(x) => x,
                Err(_) => continue, // a 32-element range always converts
            };
            let (sum, d, s) = quantize_block(x, &mut self.q8[b], &mut self.q16[b]);
            self.d32[b] = f16_to_f32(d);
            self.s32[b] = f16_to_f32(s);
            let (mantissa, exponent) = fixed::split_f16(d);
            let group = &mut self.groups[b / 4];
            group.q_sum[b % 4] = sum;
            group.x_mantissa[b % 4] = mantissa;
            group.x_shift[b % 4] = exponent;
            // The bits, until the largest exponent is known.
            group.s_fix[b % 4] = i32::from(s);
            largest_d = largest_d.max(exponent);
            largest_s = largest_s.max(fixed::split_f16(s).1);
        }
        for b in 0..blocks {
            let group = &mut self.groups[b / 4];
            let (mantissa, exponent) = fixed::split_f16(group.s_fix[b % 4] as u16);
            group.s_fix[b % 4] =
                fixed::sshl32(mantissa, exponent - largest_s + fixed::SUM_SCALE_BITS);
            group.x_shift[b % 4] -= largest_d;
        }
        self.scale_exponent_max = largest_d;
        self.sum_exponent_max = largest_s;
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

/// Quantizes one 32-element block: `q = round(x / d)`, `d = max|x| / 127` (f16 bits), and
/// `s = f16(f16(sum q) * d)` (f16 bits): exactly candle's `BlockQ8_1::from_float` (whose
/// `d`/`qs` also equal `BlockQ8_0::from_float`). Returns `(q, d, s)`.
pub fn quantize_q8_1(x: &[f32; QK]) -> ([i8; QK], u16, u16) {
    let (mut q8, mut q16) = (ActivationBlock::default(), ActivationBlock16::default());
    let (_, d, s) = quantize_block(x, &mut q8, &mut q16);
    (q8.0, d, s)
}

/// [`quantize_q8_1`] into both stored forms; returns `(sum q, d, s)`. The element work (the
/// largest magnitude; round, clamp, store) is NEON on AArch64, the same values either way.
pub fn quantize_block(
    x: &[f32; QK],
    q8: &mut ActivationBlock,
    q16: &mut ActivationBlock16,
) -> (i32, u16, u16) {
    let amax = abs_max(x);
    let scale = amax / 127.0;
    let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    let sum = round_into(x, inv, q8, q16);
    let d = f32_to_f16(scale);
    let s = f32_to_f16(f16_round(sum as f32) * f16_to_f32(d));
    (sum, d, s)
}

/// `max(0, max |x|)`, NaN ignored (as `f32::max` does).
#[inline]
fn abs_max(x: &[f32; QK]) -> f32 {
    #[cfg(target_arch = "aarch64")]
    {
        neon::abs_max(x)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        x.iter().fold(0f32, |m, &v| m.max(v.abs()))
    }
}

/// `q = clamp(round(x * inv), -127, 127)` into both forms; returns `sum q`.
#[inline]
fn round_into(
    x: &[f32; QK],
    inv: f32,
    q8: &mut ActivationBlock,
    q16: &mut ActivationBlock16,
) -> i32 {
    #[cfg(target_arch = "aarch64")]
    {
        neon::round_into(x, inv, q8, q16)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        portable::round_into(x, inv, q8, q16)
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

/// The fixed-point constants of a product of `ty` rows (of `act.len()` elements) with scale
/// exponents `scales` against the loaded activations.
pub fn block_scaling(ty: GgmlType, scales: ScaleExponents, act: &Activations) -> BlockScaling {
    BlockScaling::new(
        scales,
        act.scale_exponent_max,
        act.sum_exponent_max,
        act.len() / QK,
        ty == GgmlType::Q4_1,
    )
}

/// Dot product of one weight row (`row`: the row's bytes in `ty`'s layout) with the loaded
/// activations, using NEON where available. The row length must equal `act.len()`.
pub fn dot(ty: GgmlType, row: &[u8], act: &Activations) -> f32 {
    let mut out = [0f32];
    dot_rows(
        ty,
        row,
        row.len(),
        0,
        ScaleExponents::of(ty, row),
        act,
        &mut out,
    );
    out[0]
}

/// `out[i] = row(first + i) . act` for consecutive rows of a matrix (`row_bytes` bytes per row
/// in `data`, block scales bounded by `scales`, see [`ScaleExponents::of`]): one kernel
/// dispatch per call instead of per row. Rows outside `data`, or of the wrong length, give 0.
pub fn dot_rows(
    ty: GgmlType,
    data: &[u8],
    row_bytes: usize,
    first: usize,
    scales: ScaleExponents,
    act: &Activations,
    out: &mut [f32],
) {
    dot_rows_batch(ty, data, row_bytes, first, scales, &[act], &mut [out]);
}

/// [`dot_rows`] for a batch of activation vectors (one per token, all of one length):
/// `outs[t][i] = row(first + i) . acts[t]`, every `outs[t]` as long as the first. The weights
/// are read once for up to four tokens at a time (the NEON kernels' pass). More than
/// [`crate::limits::MAX_BATCH`] tokens, or mismatched lengths, give zeros.
pub fn dot_rows_batch(
    ty: GgmlType,
    data: &[u8],
    row_bytes: usize,
    first: usize,
    scales: ScaleExponents,
    acts: &[&Activations],
    outs: &mut [&mut [f32]],
) {
    let count = outs.first().map_or(0, |out| out.len());
    let len = acts.first().map_or(0, |act| act.len());
    let rows = first
        .checked_add(count)
        .and_then(|end| end.checked_mul(row_bytes))
        .and_then(|end| data.get(first * row_bytes..end));
    let consistent = acts.len() == outs.len()
        && acts.len() <= crate::limits::MAX_BATCH
        && outs.iter().all(|out| out.len() == count)
        && acts.iter().all(|act| act.len() == len)
        && ty.row_bytes(len) == Some(row_bytes)
        && row_bytes > 0;
    let (Some(rows), true) = (rows, consistent) else {
        for out in outs.iter_mut() {
            out.fill(0.0);
        }
        return;
    };
    let mut scalings = [BlockScaling::default(); crate::limits::MAX_BATCH];
    for (scaling, act) in scalings.iter_mut().zip(acts) {
        *scaling = block_scaling(ty, scales, act);
    }
    let scalings = &scalings[..acts.len()];
    #[cfg(target_arch = "aarch64")]
    {
        if neon::dot_rows(ty, rows, row_bytes, scalings, acts, outs) {
            return;
        }
    }
    for ((out, act), scaling) in outs.iter_mut().zip(acts).zip(scalings) {
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(row_bytes)) {
            *o = portable::dot(ty, row, scaling, act);
        }
    }
}
