//! Tristate numbers ("tnums"): which bits of a 64-bit value are known, and to what.
//!
//! A tnum is `(value, mask)`: a bit set in `mask` is unknown; a bit clear in `mask` is known
//! and equal to the same bit of `value` (which is always 0 where `mask` is 1). This is the
//! known-bits domain of the Linux verifier; it complements the range domains in
//! [`crate::scalar`] because it is exact for `and`, `or`, `xor` and shifts by constants,
//! where ranges lose everything, while ranges are exact for `add` and comparisons.

/// A set of 64-bit values described by known bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tnum {
    /// Values of the known bits (0 where unknown).
    pub value: u64,
    /// Unknown bits.
    pub mask: u64,
}

impl Tnum {
    /// Nothing known.
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    /// Exactly `v`.
    pub const fn constant(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// True when every bit is known.
    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    /// The smallest tnum holding every value of `[min, max]`.
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum {
            value: min & !delta,
            mask: delta,
        }
    }

    /// True when `v` is one of the values.
    pub fn contains(self, v: u64) -> bool {
        (v & !self.mask) == self.value
    }

    /// True when every value of `other` is a value of `self`.
    pub fn includes(self, other: Tnum) -> bool {
        if other.mask & !self.mask != 0 {
            return false;
        }
        (other.value & !self.mask) == self.value
    }

    /// Values in both, or `None` if the known bits contradict.
    pub fn intersect(self, other: Tnum) -> Option<Tnum> {
        if (self.value ^ other.value) & !self.mask & !other.mask != 0 {
            return None;
        }
        let value = self.value | other.value;
        let mask = self.mask & other.mask;
        Some(Tnum {
            value: value & !mask,
            mask,
        })
    }

    /// Wrapping sum.
    pub fn add(self, other: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(other.mask);
        let sv = self.value.wrapping_add(other.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | other.mask;
        Tnum {
            value: sv & !mu,
            mask: mu,
        }
    }

    /// Wrapping difference.
    pub fn sub(self, other: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(other.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(other.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | other.mask;
        Tnum {
            value: dv & !mu,
            mask: mu,
        }
    }

    /// Bitwise and.
    pub fn and(self, other: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = other.value | other.mask;
        let v = self.value & other.value;
        Tnum {
            value: v,
            mask: alpha & beta & !v,
        }
    }

    /// Bitwise or.
    pub fn or(self, other: Tnum) -> Tnum {
        let v = self.value | other.value;
        let mu = self.mask | other.mask;
        Tnum {
            value: v,
            mask: mu & !v,
        }
    }

    /// Bitwise exclusive or.
    pub fn xor(self, other: Tnum) -> Tnum {
        let v = self.value ^ other.value;
        let mu = self.mask | other.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// Product: exact for constants; otherwise only the trailing zero bits both factors
    /// share survive (a product of multiples of 2^a and 2^b is a multiple of 2^(a+b)).
    pub fn mul(self, other: Tnum) -> Tnum {
        if self.is_const() && other.is_const() {
            return Tnum::constant(self.value.wrapping_mul(other.value));
        }
        let tz_a = (self.value | self.mask).trailing_zeros();
        let tz_b = (other.value | other.mask).trailing_zeros();
        let tz = (tz_a + tz_b).min(64);
        if tz >= 64 {
            return Tnum::constant(0);
        }
        Tnum {
            value: 0,
            mask: u64::MAX << tz,
        }
    }

    /// Left shift by a constant below 64.
    pub fn lsh(self, shift: u32) -> Tnum {
        Tnum {
            value: self.value << shift,
            mask: self.mask << shift,
        }
    }

    /// Logical right shift by a constant below 64.
    pub fn rsh(self, shift: u32) -> Tnum {
        Tnum {
            value: self.value >> shift,
            mask: self.mask >> shift,
        }
    }

    /// Arithmetic right shift (of the 64-bit value) by a constant below 64.
    pub fn arsh(self, shift: u32) -> Tnum {
        Tnum {
            value: ((self.value as i64) >> shift) as u64,
            mask: ((self.mask as i64) >> shift) as u64,
        }
    }

    /// The low 32 bits, zero-extended.
    pub fn low32(self) -> Tnum {
        Tnum {
            value: self.value & 0xffff_ffff,
            mask: self.mask & 0xffff_ffff,
        }
    }

    /// The low `bits` bits, the rest known zero.
    pub fn truncate(self, bits: u32) -> Tnum {
        if bits >= 64 {
            return self;
        }
        let keep = (1u64 << bits) - 1;
        Tnum {
            value: self.value & keep,
            mask: self.mask & keep,
        }
    }

    /// Smallest value (unsigned).
    pub fn umin(self) -> u64 {
        self.value
    }

    /// Largest value (unsigned).
    pub fn umax(self) -> u64 {
        self.value | self.mask
    }

    /// Smallest value read as signed 64-bit.
    pub fn smin(self) -> i64 {
        (self.value | (self.mask & (1u64 << 63))) as i64
    }

    /// Largest value read as signed 64-bit.
    pub fn smax(self) -> i64 {
        (self.value | (self.mask & !(1u64 << 63))) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(t: Tnum) -> impl Iterator<Item = u64> {
        // Only for tnums with few unknown bits.
        let bits: alloc::vec::Vec<u32> = (0..64).filter(|b| t.mask >> b & 1 == 1).collect();
        let n = 1u64 << bits.len();
        (0..n).map(move |k| {
            let mut v = t.value;
            for (i, b) in bits.iter().enumerate() {
                if k >> i & 1 == 1 {
                    v |= 1 << b;
                }
            }
            v
        })
    }

    extern crate alloc;

    #[test]
    fn operations_contain_every_concrete_result() {
        let samples = [
            Tnum::constant(5),
            Tnum { value: 4, mask: 3 },
            Tnum {
                value: 0x10,
                mask: 0x0f,
            },
            Tnum {
                value: 1 << 63,
                mask: 0x6,
            },
            Tnum::range(3, 9),
        ];
        for a in samples {
            for b in samples {
                for x in members(a) {
                    for y in members(b) {
                        assert!(a.add(b).contains(x.wrapping_add(y)));
                        assert!(a.sub(b).contains(x.wrapping_sub(y)));
                        assert!(a.and(b).contains(x & y));
                        assert!(a.or(b).contains(x | y));
                        assert!(a.xor(b).contains(x ^ y));
                        assert!(a.mul(b).contains(x.wrapping_mul(y)));
                    }
                    assert!(a.lsh(3).contains(x << 3));
                    assert!(a.rsh(3).contains(x >> 3));
                    assert!(a.arsh(3).contains(((x as i64) >> 3) as u64));
                }
            }
        }
    }

    #[test]
    fn range_and_intersection() {
        let t = Tnum::range(8, 15);
        assert_eq!(t, Tnum { value: 8, mask: 7 });
        assert!(Tnum::UNKNOWN.includes(t));
        assert!(!t.includes(Tnum::UNKNOWN));
        assert_eq!(Tnum::constant(1).intersect(Tnum::constant(2)), None);
        assert_eq!(
            t.intersect(Tnum { value: 1, mask: !1 }),
            Some(Tnum { value: 9, mask: 6 })
        );
        assert_eq!(Tnum::range(0, u64::MAX), Tnum::UNKNOWN);
    }
}
