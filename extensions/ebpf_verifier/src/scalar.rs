//! The scalar domain: what the verifier knows about a 64-bit integer.
//!
//! A [`Scalar`] is the conjunction of five facts, each a set of values:
//! an unsigned 64-bit range, a signed 64-bit range, an unsigned and a signed range of the low
//! 32 bits, and known bits ([`Tnum`]). Every fact is a sound over-approximation on its own;
//! [`Scalar::normalize`] lets each tighten the others (the Linux verifier's
//! `reg_bounds_sync`) and detects an empty set, which is how a branch is proven impossible.
//!
//! Why several ranges: unsigned and signed comparisons refine different ranges, 32-bit
//! instructions (ALU and JMP32 classes) only see the low half, and bit operations are only
//! precise in the known-bits form. Keeping all of them is what lets ordinary compiled code
//! (`if (i < n)`, masks, `w` registers) pass.
//!
//! Transfer functions follow one recipe so that 64- and 32-bit operations share code: the
//! unsigned and signed ranges are computed with *exact* (non-wrapping) arithmetic on the
//! operands' ranges; when the exact result leaves the width's range, that fact becomes
//! "unknown" (we never reason about wrap-around). For 32-bit operations the operands are the
//! low halves, embedded zero-extended (unsigned) or sign-extended (signed) in 64 bits; the
//! result is truncated to 32 bits the same way and zero-extended, as RFC 9669 defines.
//! Division and modulo by zero follow RFC 9669 (`x / 0 = 0`, `x % 0 = x`): they are
//! defined, so they are modelled, not rejected.

use crate::tnum::Tnum;
use ebpf::insn::{AluOp, Cond, Width};

/// What is known about one integer (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scalar {
    pub umin: u64,
    pub umax: u64,
    pub smin: i64,
    pub smax: i64,
    pub u32min: u32,
    pub u32max: u32,
    pub s32min: i32,
    pub s32max: i32,
    pub bits: Tnum,
}

/// The four ranges of one width, embedded in 64-bit integers (32-bit values zero-extended
/// for the unsigned pair, sign-extended for the signed pair).
#[derive(Clone, Copy, Debug)]
struct View {
    umin: u64,
    umax: u64,
    smin: i64,
    smax: i64,
}

impl View {
    fn is_empty(&self) -> bool {
        self.umin > self.umax || self.smin > self.smax
    }
}

impl Scalar {
    /// Any 64-bit value.
    pub const UNKNOWN: Scalar = Scalar {
        umin: 0,
        umax: u64::MAX,
        smin: i64::MIN,
        smax: i64::MAX,
        u32min: 0,
        u32max: u32::MAX,
        s32min: i32::MIN,
        s32max: i32::MAX,
        bits: Tnum::UNKNOWN,
    };

    /// Exactly `v`.
    pub fn constant(v: u64) -> Scalar {
        Scalar {
            umin: v,
            umax: v,
            smin: v as i64,
            smax: v as i64,
            u32min: v as u32,
            u32max: v as u32,
            s32min: v as u32 as i32,
            s32max: v as u32 as i32,
            bits: Tnum::constant(v),
        }
    }

    /// Any value of the unsigned range `[lo, hi]` (`lo <= hi`).
    pub fn unsigned_range(lo: u64, hi: u64) -> Scalar {
        let s = Scalar {
            umin: lo,
            umax: hi,
            ..Scalar::UNKNOWN
        };
        s.normalize().unwrap_or(Scalar::UNKNOWN)
    }

    /// Any value of the signed range `[lo, hi]` (`lo <= hi`).
    pub fn signed_range(lo: i64, hi: i64) -> Scalar {
        let s = Scalar {
            smin: lo,
            smax: hi,
            ..Scalar::UNKNOWN
        };
        s.normalize().unwrap_or(Scalar::UNKNOWN)
    }

    /// The smallest scalar holding every value of both (the join of state merging).
    pub fn join(&self, other: &Scalar) -> Scalar {
        let mask = self.bits.mask | other.bits.mask | (self.bits.value ^ other.bits.value);
        let s = Scalar {
            umin: self.umin.min(other.umin),
            umax: self.umax.max(other.umax),
            smin: self.smin.min(other.smin),
            smax: self.smax.max(other.smax),
            u32min: self.u32min.min(other.u32min),
            u32max: self.u32max.max(other.u32max),
            s32min: self.s32min.min(other.s32min),
            s32max: self.s32max.max(other.s32max),
            bits: Tnum {
                value: self.bits.value & !mask,
                mask,
            },
        };
        s.normalize().unwrap_or(Scalar::UNKNOWN)
    }

    /// The value, when only one is possible.
    pub fn as_const(&self) -> Option<u64> {
        (self.umin == self.umax).then_some(self.umin)
    }

    /// True when `v` satisfies every fact.
    pub fn contains(&self, v: u64) -> bool {
        v >= self.umin
            && v <= self.umax
            && (v as i64) >= self.smin
            && (v as i64) <= self.smax
            && (v as u32) >= self.u32min
            && (v as u32) <= self.u32max
            && (v as u32 as i32) >= self.s32min
            && (v as u32 as i32) <= self.s32max
            && self.bits.contains(v)
    }

    /// True when every value `other` allows, `self` allows too (used for state pruning).
    pub fn includes(&self, other: &Scalar) -> bool {
        self.umin <= other.umin
            && self.umax >= other.umax
            && self.smin <= other.smin
            && self.smax >= other.smax
            && self.u32min <= other.u32min
            && self.u32max >= other.u32max
            && self.s32min <= other.s32min
            && self.s32max >= other.s32max
            && self.bits.includes(other.bits)
    }

    fn is_empty(&self) -> bool {
        self.umin > self.umax
            || self.smin > self.smax
            || self.u32min > self.u32max
            || self.s32min > self.s32max
    }

    /// Lets every fact tighten the others; `None` when no value satisfies them all.
    pub fn normalize(mut self) -> Option<Scalar> {
        for _ in 0..3 {
            // Known bits bound every range.
            self.umin = self.umin.max(self.bits.umin());
            self.umax = self.umax.min(self.bits.umax());
            self.smin = self.smin.max(self.bits.smin());
            self.smax = self.smax.min(self.bits.smax());
            let low = self.bits.low32();
            self.u32min = self.u32min.max(low.value as u32);
            self.u32max = self.u32max.min((low.value | low.mask) as u32);
            self.s32min = self
                .s32min
                .max((low.value | (low.mask & 0x8000_0000)) as u32 as i32);
            self.s32max = self
                .s32max
                .min((low.value | (low.mask & 0x7fff_ffff)) as u32 as i32);
            if self.is_empty() {
                return None;
            }
            // Unsigned and signed 64-bit ranges agree where they do not cross a sign change.
            if (self.umin as i64) <= (self.umax as i64) {
                self.smin = self.smin.max(self.umin as i64);
                self.smax = self.smax.min(self.umax as i64);
            }
            if (self.smin as u64) <= (self.smax as u64) {
                self.umin = self.umin.max(self.smin as u64);
                self.umax = self.umax.min(self.smax as u64);
            }
            if self.is_empty() {
                return None;
            }
            // The same for the 32-bit pair.
            if (self.u32min as i32) <= (self.u32max as i32) {
                self.s32min = self.s32min.max(self.u32min as i32);
                self.s32max = self.s32max.min(self.u32max as i32);
            }
            if (self.s32min as u32) <= (self.s32max as u32) {
                self.u32min = self.u32min.max(self.s32min as u32);
                self.u32max = self.u32max.min(self.s32max as u32);
            }
            if self.is_empty() {
                return None;
            }
            // 64 -> 32: when every value shares its high half, the low halves are ordered.
            if self.umin >> 32 == self.umax >> 32 {
                self.u32min = self.u32min.max(self.umin as u32);
                self.u32max = self.u32max.min(self.umax as u32);
            }
            if self.smin >> 32 == self.smax >> 32 {
                self.u32min = self.u32min.max(self.smin as u32);
                self.u32max = self.u32max.min(self.smax as u32);
            }
            if self.is_empty() {
                return None;
            }
            // 32 -> 64: the same shared high half, plus the low-half range.
            if self.umin >> 32 == self.umax >> 32 {
                let high = self.umin & !0xffff_ffff;
                self.umin = self.umin.max(high | self.u32min as u64);
                self.umax = self.umax.min(high | self.u32max as u64);
            }
            if self.smin >= i32::MIN as i64 && self.smax <= i32::MAX as i64 {
                // The value is the sign extension of its low half.
                self.smin = self.smin.max(self.s32min as i64);
                self.smax = self.smax.min(self.s32max as i64);
            }
            if self.is_empty() {
                return None;
            }
            // Ranges bound the known bits.
            self.bits = self.bits.intersect(Tnum::range(self.umin, self.umax))?;
            let low_range = Tnum::range(self.u32min as u64, self.u32max as u64);
            self.bits = self.bits.intersect(Tnum {
                value: low_range.value,
                mask: low_range.mask | !0xffff_ffffu64,
            })?;
        }
        if self.is_empty() {
            None
        } else {
            Some(self)
        }
    }

    fn view(&self, width: Width) -> View {
        match width {
            Width::W64 => View {
                umin: self.umin,
                umax: self.umax,
                smin: self.smin,
                smax: self.smax,
            },
            Width::W32 => View {
                umin: self.u32min as u64,
                umax: self.u32max as u64,
                smin: self.s32min as i64,
                smax: self.s32max as i64,
            },
        }
    }

    /// Writes narrowed ranges back (the view must be non-empty and inside the width).
    fn set_view(&mut self, width: Width, v: View) {
        match width {
            Width::W64 => {
                self.umin = v.umin;
                self.umax = v.umax;
                self.smin = v.smin;
                self.smax = v.smax;
            }
            Width::W32 => {
                self.u32min = v.umin as u32;
                self.u32max = v.umax as u32;
                self.s32min = v.smin as i32;
                self.s32max = v.smax as i32;
            }
        }
    }

    /// A value known only by the low-32 facts, zero-extended to 64 bits (a 32-bit result).
    fn from_low32(u: Option<(u64, u64)>, s: Option<(i64, i64)>, bits: Tnum) -> Scalar {
        let (u32min, u32max) = match u {
            Some((lo, hi)) if hi <= u32::MAX as u64 => (lo as u32, hi as u32),
            _ => (0, u32::MAX),
        };
        let (s32min, s32max) = match s {
            Some((lo, hi)) if lo >= i32::MIN as i64 && hi <= i32::MAX as i64 => {
                (lo as i32, hi as i32)
            }
            _ => (i32::MIN, i32::MAX),
        };
        let s = Scalar {
            umin: 0,
            umax: u32::MAX as u64,
            smin: 0,
            smax: u32::MAX as i64,
            u32min,
            u32max,
            s32min,
            s32max,
            bits: bits.truncate(32),
        };
        s.normalize()
            .unwrap_or(Scalar::unsigned_range(0, u32::MAX as u64))
    }

    fn from_64(u: Option<(u64, u64)>, s: Option<(i64, i64)>, bits: Tnum) -> Scalar {
        let mut out = Scalar {
            bits,
            ..Scalar::UNKNOWN
        };
        if let Some((lo, hi)) = u {
            out.umin = lo;
            out.umax = hi;
        }
        if let Some((lo, hi)) = s {
            out.smin = lo;
            out.smax = hi;
        }
        out.normalize().unwrap_or(Scalar::UNKNOWN)
    }

    /// The low 32 bits, zero-extended (`mov32`).
    pub fn zero_extend_low32(&self) -> Scalar {
        Scalar::from_low32(
            Some((self.u32min as u64, self.u32max as u64)),
            Some((self.s32min as i64, self.s32max as i64)),
            self.bits.low32(),
        )
    }

    /// `dst = dst op src` for the arithmetic and bitwise operations (not `mov`, `movsx`).
    pub fn alu(op: AluOp, width: Width, a: &Scalar, b: &Scalar) -> Scalar {
        let (bits_a, bits_b) = match width {
            Width::W64 => (a.bits, b.bits),
            Width::W32 => (a.bits.low32(), b.bits.low32()),
        };
        let va = a.view(width);
        let vb = b.view(width);
        let ua = (va.umin, va.umax);
        let ub = (vb.umin, vb.umax);
        let sa = (va.smin, va.smax);
        let sb = (vb.smin, vb.smax);
        let width_bits: u32 = match width {
            Width::W64 => 64,
            Width::W32 => 32,
        };
        let (u, s, t): (Option<(u64, u64)>, Option<(i64, i64)>, Tnum) = match op {
            AluOp::Add => (
                ua.0.checked_add(ub.0).zip(ua.1.checked_add(ub.1)),
                sa.0.checked_add(sb.0).zip(sa.1.checked_add(sb.1)),
                bits_a.add(bits_b),
            ),
            AluOp::Sub => (
                if ua.0 >= ub.1 {
                    Some((ua.0 - ub.1, ua.1 - ub.0))
                } else {
                    None
                },
                sa.0.checked_sub(sb.1).zip(sa.1.checked_sub(sb.0)),
                bits_a.sub(bits_b),
            ),
            AluOp::Mul => {
                let u = ua.1.checked_mul(ub.1).map(|hi| (ua.0 * ub.0, hi));
                let corners = [
                    sa.0.checked_mul(sb.0),
                    sa.0.checked_mul(sb.1),
                    sa.1.checked_mul(sb.0),
                    sa.1.checked_mul(sb.1),
                ];
                let s = if corners.iter().all(|c| c.is_some()) {
                    let vals = corners.map(|c| c.unwrap_or(0));
                    Some((
                        vals.iter().copied().min().unwrap_or(i64::MIN),
                        vals.iter().copied().max().unwrap_or(i64::MAX),
                    ))
                } else {
                    None
                };
                (u, s, bits_a.mul(bits_b))
            }
            AluOp::Div => {
                let u = if ub.1 == 0 {
                    Some((0, 0))
                } else if ub.0 == 0 {
                    // x / 0 = 0 and x / y <= x.
                    Some((0, ua.1))
                } else {
                    Some((ua.0 / ub.1, ua.1 / ub.0))
                };
                (u, None, Tnum::UNKNOWN)
            }
            AluOp::Mod => {
                let u = if ua.1 < ub.0 || ub.1 == 0 {
                    // Every divisor is larger than every dividend, or zero: x % y = x.
                    Some(ua)
                } else if ub.0 == 0 {
                    // x % 0 = x, and x % y <= x.
                    Some((0, ua.1))
                } else {
                    Some((0, ua.1.min(ub.1 - 1)))
                };
                (u, None, Tnum::UNKNOWN)
            }
            AluOp::SDiv | AluOp::SMod => {
                // Exact for constants only; otherwise unknown (sound, rarely needed).
                match (va.smin == va.smax, vb.smin == vb.smax) {
                    (true, true) => {
                        let (x, y) = (va.smin, vb.smin);
                        let r = signed_div_mod(op, width_bits, x, y);
                        (None, Some((r, r)), Tnum::UNKNOWN)
                    }
                    _ => (None, None, Tnum::UNKNOWN),
                }
            }
            AluOp::And => (Some((0, ua.1.min(ub.1))), None, bits_a.and(bits_b)),
            AluOp::Or => (Some((ua.0.max(ub.0), u64::MAX)), None, bits_a.or(bits_b)),
            AluOp::Xor => (None, None, bits_a.xor(bits_b)),
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                return Scalar::shift(op, width, a, b);
            }
            AluOp::Mov | AluOp::MovSx(_) => {
                // Not reached: moves are handled by the caller; stay sound regardless.
                return *b;
            }
        };
        match width {
            Width::W64 => Scalar::from_64(u, s, t),
            Width::W32 => Scalar::from_low32(u, s, t),
        }
    }

    fn shift(op: AluOp, width: Width, a: &Scalar, b: &Scalar) -> Scalar {
        let width_bits: u64 = match width {
            Width::W64 => 64,
            Width::W32 => 32,
        };
        let va = a.view(width);
        let vb = b.view(width);
        // RFC 9669 masks the shift amount to the width; a range that fits needs no mask.
        let (kmin, kmax) = if vb.umin == vb.umax {
            let k = vb.umin & (width_bits - 1);
            (k as u32, k as u32)
        } else if vb.umax < width_bits {
            (vb.umin as u32, vb.umax as u32)
        } else {
            return match width {
                Width::W64 => Scalar::UNKNOWN,
                Width::W32 => Scalar::unsigned_range(0, u32::MAX as u64),
            };
        };
        let bits_a = match width {
            Width::W64 => a.bits,
            Width::W32 => a.bits.low32(),
        };
        let constant_shift = kmin == kmax;
        let (u, s, t) = match op {
            AluOp::Lsh => {
                let u = if (va.umax.leading_zeros() as u64) >= (64 - width_bits) + kmax as u64 {
                    Some((va.umin << kmin, va.umax << kmax))
                } else {
                    None
                };
                let t = if constant_shift {
                    bits_a.lsh(kmin)
                } else {
                    Tnum::UNKNOWN
                };
                (u, None, t)
            }
            AluOp::Rsh => {
                let t = if constant_shift {
                    bits_a.rsh(kmin)
                } else {
                    Tnum::UNKNOWN
                };
                (Some((va.umin >> kmax, va.umax >> kmin)), None, t)
            }
            _ => {
                // Arithmetic shift: monotone in the value; the extremes sit at the ends of
                // the shift range.
                let lo = (va.smin >> kmin).min(va.smin >> kmax);
                let hi = (va.smax >> kmin).max(va.smax >> kmax);
                let t = if constant_shift {
                    match width {
                        Width::W64 => bits_a.arsh(kmin),
                        Width::W32 => {
                            let extended = Tnum {
                                value: bits_a.value as u32 as i32 as i64 as u64,
                                mask: bits_a.mask as u32 as i32 as i64 as u64,
                            };
                            extended.arsh(kmin)
                        }
                    }
                } else {
                    Tnum::UNKNOWN
                };
                (None, Some((lo, hi)), t)
            }
        };
        match width {
            Width::W64 => Scalar::from_64(u, s, t),
            Width::W32 => Scalar::from_low32(u, s, t),
        }
    }

    /// `movsx`: sign-extend the low `from_bits` (8, 16 or 32) bits; a 32-bit result is then
    /// zero-extended.
    pub fn sign_extend(&self, from_bits: u8, width: Width) -> Scalar {
        let half = 1i64 << (from_bits - 1);
        let (lo, hi) = if from_bits == 32 {
            (self.s32min as i64, self.s32max as i64)
        } else if self.umax < half as u64 {
            (self.umin as i64, self.umax as i64)
        } else if self.smin >= -half && self.smax < half {
            (self.smin, self.smax)
        } else {
            (-half, half - 1)
        };
        let t = if self.bits.truncate(from_bits as u32).is_const() {
            let v = self.bits.value;
            let shift = 64 - from_bits as u32;
            Tnum::constant((((v << shift) as i64) >> shift) as u64)
        } else {
            Tnum::UNKNOWN
        };
        match width {
            Width::W64 => Scalar::from_64(None, Some((lo, hi)), t),
            Width::W32 => {
                let u = (lo >= 0).then_some((lo as u64, hi as u64));
                Scalar::from_low32(u, Some((lo, hi)), t.low32())
            }
        }
    }

    /// The low `bits` bits, zero-extended (`le16`, `le32`, narrow loads).
    pub fn truncate(&self, bits: u32) -> Scalar {
        if bits >= 64 {
            return *self;
        }
        let mask = (1u64 << bits) - 1;
        Scalar::alu(AluOp::And, Width::W64, self, &Scalar::constant(mask))
    }

    /// The facts that hold when `a cond b` is true (first) and when it is false (second);
    /// `None` for an edge no value can take.
    pub fn refine(
        cond: Cond,
        width: Width,
        a: &Scalar,
        b: &Scalar,
    ) -> (Option<(Scalar, Scalar)>, Option<(Scalar, Scalar)>) {
        (
            refine_one(cond, false, width, a, b),
            refine_one(cond, true, width, a, b),
        )
    }
}

fn signed_div_mod(op: AluOp, width_bits: u32, x: i64, y: i64) -> i64 {
    if width_bits == 32 {
        let (x, y) = (x as i32, y as i32);
        let r = match op {
            AluOp::SDiv => {
                if y == 0 {
                    0
                } else {
                    x.wrapping_div(y)
                }
            }
            _ => {
                if y == 0 {
                    x
                } else {
                    x.wrapping_rem(y)
                }
            }
        };
        r as i64
    } else {
        match op {
            AluOp::SDiv => {
                if y == 0 {
                    0
                } else {
                    x.wrapping_div(y)
                }
            }
            _ => {
                if y == 0 {
                    x
                } else {
                    x.wrapping_rem(y)
                }
            }
        }
    }
}

/// Narrows `a` and `b` assuming `a cond b` (or its negation); false when impossible.
fn refine_views(cond: Cond, negate: bool, a: &mut View, b: &mut View) -> bool {
    use Cond::*;
    let cond = if negate {
        match cond {
            Eq => Ne,
            Ne => Eq,
            Gt => Le,
            Le => Gt,
            Ge => Lt,
            Lt => Ge,
            SGt => SLe,
            SLe => SGt,
            SGe => SLt,
            SLt => SGe,
            Set => Set, // handled by the caller
        }
    } else {
        cond
    };
    match cond {
        Eq => {
            let umin = a.umin.max(b.umin);
            let umax = a.umax.min(b.umax);
            let smin = a.smin.max(b.smin);
            let smax = a.smax.min(b.smax);
            *a = View {
                umin,
                umax,
                smin,
                smax,
            };
            *b = *a;
        }
        Ne => {
            let (a0, b0) = (*a, *b);
            for (x, y) in [(&mut *a, b0), (&mut *b, a0)] {
                if y.umin == y.umax {
                    let c = y.umin;
                    if x.umin == c && x.umax == c {
                        return false;
                    }
                    if x.umin == c {
                        x.umin += 1;
                    } else if x.umax == c {
                        x.umax -= 1;
                    }
                }
                if y.smin == y.smax {
                    let c = y.smin;
                    if x.smin == c && x.smax == c {
                        return false;
                    }
                    if x.smin == c {
                        x.smin += 1;
                    } else if x.smax == c {
                        x.smax -= 1;
                    }
                }
            }
        }
        Gt => return unsigned_greater(a, b, true),
        Ge => return unsigned_greater(a, b, false),
        Lt => return unsigned_greater(b, a, true),
        Le => return unsigned_greater(b, a, false),
        SGt => return signed_greater(a, b, true),
        SGe => return signed_greater(a, b, false),
        SLt => return signed_greater(b, a, true),
        SLe => return signed_greater(b, a, false),
        Set => {}
    }
    !a.is_empty() && !b.is_empty()
}

fn unsigned_greater(a: &mut View, b: &mut View, strict: bool) -> bool {
    let d = strict as u64;
    if b.umin.checked_add(d).is_none() || a.umax.checked_sub(d).is_none() {
        return false;
    }
    a.umin = a.umin.max(b.umin + d);
    b.umax = b.umax.min(a.umax - d);
    !a.is_empty() && !b.is_empty()
}

fn signed_greater(a: &mut View, b: &mut View, strict: bool) -> bool {
    let d = strict as i64;
    if b.smin.checked_add(d).is_none() || a.smax.checked_sub(d).is_none() {
        return false;
    }
    a.smin = a.smin.max(b.smin + d);
    b.smax = b.smax.min(a.smax - d);
    !a.is_empty() && !b.is_empty()
}

fn refine_one(
    cond: Cond,
    negate: bool,
    width: Width,
    a: &Scalar,
    b: &Scalar,
) -> Option<(Scalar, Scalar)> {
    let mut a = *a;
    let mut b = *b;
    let width_mask = match width {
        Width::W64 => u64::MAX,
        Width::W32 => 0xffff_ffff,
    };
    if cond == Cond::Set {
        let a_may = (a.bits.value | a.bits.mask) & width_mask;
        let b_may = (b.bits.value | b.bits.mask) & width_mask;
        if !negate {
            // Some bit set in both.
            if a_may & b_may == 0 {
                return None;
            }
            if let Some(c) = b.as_const() {
                let c = c & width_mask;
                if c.is_power_of_two() {
                    a.bits = a.bits.intersect(Tnum { value: c, mask: !c })?;
                }
            }
        } else {
            // No bit set in both.
            if a.bits.value & b.bits.value & width_mask != 0 {
                return None;
            }
            if let Some(c) = b.as_const() {
                let c = c & width_mask;
                a.bits = a.bits.intersect(Tnum { value: 0, mask: !c })?;
            }
        }
        return Some((a.normalize()?, b.normalize()?));
    }
    let mut va = a.view(width);
    let mut vb = b.view(width);
    if !refine_views(cond, negate, &mut va, &mut vb) {
        return None;
    }
    a.set_view(width, va);
    b.set_view(width, vb);
    let is_eq = (cond == Cond::Eq && !negate) || (cond == Cond::Ne && negate);
    if is_eq {
        match width {
            Width::W64 => {
                let both = a.bits.intersect(b.bits)?;
                a.bits = both;
                b.bits = both;
            }
            Width::W32 => {
                let low_b = b.bits.low32();
                let low_a = a.bits.low32();
                a.bits = a.bits.intersect(Tnum {
                    value: low_b.value,
                    mask: low_b.mask | !0xffff_ffffu64,
                })?;
                b.bits = b.bits.intersect(Tnum {
                    value: low_a.value,
                    mask: low_a.mask | !0xffff_ffffu64,
                })?;
            }
        }
    }
    Some((a.normalize()?, b.normalize()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so tests need no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn interesting(&mut self) -> u64 {
            let pool = [
                0,
                1,
                2,
                7,
                31,
                32,
                63,
                64,
                0xff,
                0x7fff_ffff,
                0x8000_0000,
                0xffff_ffff,
                1 << 32,
                i64::MAX as u64,
                1 << 63,
                u64::MAX,
                u64::MAX - 1,
                (-5i64) as u64,
            ];
            match self.next() % 3 {
                0 => pool[(self.next() % pool.len() as u64) as usize],
                1 => self.next() % 100,
                _ => self.next(),
            }
        }
    }

    /// A random scalar plus a few concrete members of it.
    fn sample(rng: &mut Rng) -> (Scalar, [u64; 4]) {
        let x = rng.interesting();
        let y = rng.interesting();
        let s = match rng.next() % 4 {
            0 => Scalar::constant(x),
            1 => Scalar::unsigned_range(x.min(y), x.max(y)),
            2 => Scalar::signed_range((x as i64).min(y as i64), (x as i64).max(y as i64)),
            _ => Scalar::constant(x).zero_extend_low32(),
        };
        let mut members = [s.umin, s.umax, s.smin as u64, s.smax as u64];
        for m in members.iter_mut() {
            if !s.contains(*m) {
                *m = s.umin;
            }
        }
        (s, members)
    }

    fn concrete(op: AluOp, width: Width, x: u64, y: u64) -> u64 {
        let (x32, y32) = (x as u32, y as u32);
        match width {
            Width::W64 => match op {
                AluOp::Add => x.wrapping_add(y),
                AluOp::Sub => x.wrapping_sub(y),
                AluOp::Mul => x.wrapping_mul(y),
                AluOp::Div => x.checked_div(y).unwrap_or(0),
                AluOp::Mod => x.checked_rem(y).unwrap_or(x),
                AluOp::SDiv | AluOp::SMod => signed_div_mod(op, 64, x as i64, y as i64) as u64,
                AluOp::And => x & y,
                AluOp::Or => x | y,
                AluOp::Xor => x ^ y,
                AluOp::Lsh => x << (y & 63),
                AluOp::Rsh => x >> (y & 63),
                AluOp::Arsh => ((x as i64) >> (y & 63)) as u64,
                _ => y,
            },
            Width::W32 => {
                (match op {
                    AluOp::Add => x32.wrapping_add(y32),
                    AluOp::Sub => x32.wrapping_sub(y32),
                    AluOp::Mul => x32.wrapping_mul(y32),
                    AluOp::Div => x32.checked_div(y32).unwrap_or(0),
                    AluOp::Mod => x32.checked_rem(y32).unwrap_or(x32),
                    AluOp::SDiv | AluOp::SMod => {
                        signed_div_mod(op, 32, x32 as i32 as i64, y32 as i32 as i64) as u32
                    }
                    AluOp::And => x32 & y32,
                    AluOp::Or => x32 | y32,
                    AluOp::Xor => x32 ^ y32,
                    AluOp::Lsh => x32 << (y32 & 31),
                    AluOp::Rsh => x32 >> (y32 & 31),
                    AluOp::Arsh => ((x32 as i32) >> (y32 & 31)) as u32,
                    _ => y32,
                }) as u64
            }
        }
    }

    #[test]
    fn alu_results_contain_every_concrete_result() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let ops = [
            AluOp::Add,
            AluOp::Sub,
            AluOp::Mul,
            AluOp::Div,
            AluOp::Mod,
            AluOp::SDiv,
            AluOp::SMod,
            AluOp::And,
            AluOp::Or,
            AluOp::Xor,
            AluOp::Lsh,
            AluOp::Rsh,
            AluOp::Arsh,
        ];
        for _ in 0..20_000 {
            let (a, xs) = sample(&mut rng);
            let (b, ys) = sample(&mut rng);
            let op = ops[(rng.next() % ops.len() as u64) as usize];
            let width = if rng.next() % 2 == 0 {
                Width::W64
            } else {
                Width::W32
            };
            let r = Scalar::alu(op, width, &a, &b);
            for &x in &xs {
                for &y in &ys {
                    let v = concrete(op, width, x, y);
                    assert!(
                        r.contains(v),
                        "{op:?} {width:?}: {x:#x} op {y:#x} = {v:#x} not in {r:?} (a={a:?}, b={b:?})"
                    );
                }
            }
        }
    }

    fn holds(cond: Cond, width: Width, x: u64, y: u64) -> bool {
        let (x, y) = match width {
            Width::W64 => (x, y),
            Width::W32 => (x as u32 as u64, y as u32 as u64),
        };
        let (sx, sy) = match width {
            Width::W64 => (x as i64, y as i64),
            Width::W32 => (x as u32 as i32 as i64, y as u32 as i32 as i64),
        };
        match cond {
            Cond::Eq => x == y,
            Cond::Ne => x != y,
            Cond::Gt => x > y,
            Cond::Ge => x >= y,
            Cond::Lt => x < y,
            Cond::Le => x <= y,
            Cond::Set => x & y != 0,
            Cond::SGt => sx > sy,
            Cond::SGe => sx >= sy,
            Cond::SLt => sx < sy,
            Cond::SLe => sx <= sy,
        }
    }

    #[test]
    fn refinement_keeps_every_concrete_pair_on_its_edge() {
        let mut rng = Rng(0xfeed_beef_0bad_cafe);
        let conds = [
            Cond::Eq,
            Cond::Ne,
            Cond::Gt,
            Cond::Ge,
            Cond::Lt,
            Cond::Le,
            Cond::Set,
            Cond::SGt,
            Cond::SGe,
            Cond::SLt,
            Cond::SLe,
        ];
        for _ in 0..20_000 {
            let (a, xs) = sample(&mut rng);
            let (b, ys) = sample(&mut rng);
            let cond = conds[(rng.next() % conds.len() as u64) as usize];
            let width = if rng.next() % 2 == 0 {
                Width::W64
            } else {
                Width::W32
            };
            let (taken, fall) = Scalar::refine(cond, width, &a, &b);
            for &x in &xs {
                for &y in &ys {
                    let edge = if holds(cond, width, x, y) {
                        taken
                    } else {
                        fall
                    };
                    let (ra, rb) = edge.unwrap_or_else(|| {
                        panic!("{cond:?} {width:?} {x:#x} {y:#x}: edge proven impossible (a={a:?} b={b:?})")
                    });
                    assert!(
                        ra.contains(x) && rb.contains(y),
                        "{cond:?} {width:?} {x:#x} {y:#x}: {ra:?} {rb:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn join_contains_both() {
        let mut rng = Rng(7);
        for _ in 0..5000 {
            let (a, xs) = sample(&mut rng);
            let (b, ys) = sample(&mut rng);
            let j = a.join(&b);
            assert!(j.includes(&a) && j.includes(&b), "{a:?} {b:?} -> {j:?}");
            for v in xs.iter().chain(ys.iter()) {
                assert!(j.contains(*v));
            }
        }
    }

    #[test]
    fn bounded_compare_proves_edges() {
        let i = Scalar::constant(10);
        let (taken, fall) = Scalar::refine(Cond::Lt, Width::W64, &i, &Scalar::constant(10));
        assert!(taken.is_none());
        assert!(fall.is_some());
        let n = Scalar::UNKNOWN;
        let (taken, _) = Scalar::refine(Cond::Le, Width::W64, &n, &Scalar::constant(100));
        let (n, _) = taken.unwrap();
        assert_eq!((n.umin, n.umax), (0, 100));
        assert_eq!((n.smin, n.smax), (0, 100));
        let masked = Scalar::alu(
            AluOp::And,
            Width::W64,
            &Scalar::UNKNOWN,
            &Scalar::constant(0xff),
        );
        assert_eq!((masked.umin, masked.umax), (0, 0xff));
    }

    #[test]
    fn division_by_zero_follows_rfc() {
        let r = Scalar::alu(
            AluOp::Div,
            Width::W64,
            &Scalar::constant(7),
            &Scalar::constant(0),
        );
        assert_eq!(r.as_const(), Some(0));
        let r = Scalar::alu(
            AluOp::Mod,
            Width::W64,
            &Scalar::constant(7),
            &Scalar::constant(0),
        );
        assert_eq!(r.as_const(), Some(7));
    }

    #[test]
    fn sign_extension_is_sound() {
        let mut rng = Rng(99);
        for _ in 0..5000 {
            let (a, xs) = sample(&mut rng);
            for from in [8u8, 16, 32] {
                for width in [Width::W64, Width::W32] {
                    if width == Width::W32 && from == 32 {
                        continue;
                    }
                    let r = a.sign_extend(from, width);
                    for &x in &xs {
                        let shift = 64 - from as u32;
                        let mut v = (((x << shift) as i64) >> shift) as u64;
                        if width == Width::W32 {
                            v &= 0xffff_ffff;
                        }
                        assert!(
                            r.contains(v),
                            "movsx{from} {width:?} {x:#x} -> {v:#x} not in {r:?}"
                        );
                    }
                }
            }
        }
    }
}
