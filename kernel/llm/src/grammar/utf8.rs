//! Code-point ranges to UTF-8 byte-range sequences.
//!
//! The recogniser works on bytes (tokens split characters anywhere), so a character class such
//! as `[^"\n]` or `[α-ω]` is compiled into alternatives of byte-range sequences, each 1-4 bytes
//! long, that together match exactly the UTF-8 encodings of the class's code points. The
//! splitting is the classic one (as in RE2 and regex-syntax): split a range at encoding-length
//! boundaries, drop surrogates, then split until every continuation byte spans a full or
//! aligned sub-range, at which point the sequence is a product of per-byte ranges.

use alloc::vec::Vec;

/// One byte position of a sequence: an inclusive range of byte values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub low: u8,
    pub high: u8,
}

/// A sequence of 1-4 byte ranges matching a set of UTF-8 encoded code points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Sequence {
    pub ranges: [ByteRange; 4],
    pub len: usize,
}

impl Utf8Sequence {
    /// The ranges in use.
    pub fn ranges(&self) -> &[ByteRange] {
        &self.ranges[..self.len]
    }
}

const MAX_SCALAR: u32 = 0x10_FFFF;

fn encode(code_point: u32, out: &mut [u8; 4]) -> usize {
    // Surrogates never reach here (they are split off first), so from_u32 succeeds; fall back to
    // a raw encoding to stay total.
    match char::from_u32(code_point) {
        Some(c) => c.encode_utf8(out).len(),
        None => {
            out[0] = 0xED;
            out[1] = 0x80 | ((code_point >> 6) & 0x3F) as u8;
            out[2] = 0x80 | (code_point & 0x3F) as u8;
            3
        }
    }
}

/// Append to `out` the byte-range sequences matching exactly the code points in
/// `low..=high` (surrogates excluded, values clamped to U+10FFFF).
pub fn split_range(low: u32, high: u32, out: &mut Vec<Utf8Sequence>) {
    let high = high.min(MAX_SCALAR);
    if low > high {
        return;
    }
    // Explicit work list instead of recursion: bounded by a handful of splits per level.
    let mut work: Vec<(u32, u32)> = Vec::new();
    work.push((low, high));
    while let Some((low, high)) = work.pop() {
        if low > high {
            continue;
        }
        // Drop the surrogate block.
        if low <= 0xDFFF && high >= 0xD800 {
            if high > 0xDFFF {
                work.push((0xE000, high));
            }
            if low < 0xD800 {
                work.push((low, 0xD7FF));
            }
            continue;
        }
        // Split at encoding-length boundaries.
        let mut split = false;
        for boundary in [0x7F, 0x7FF, 0xFFFF] {
            if low <= boundary && boundary < high {
                work.push((boundary + 1, high));
                work.push((low, boundary));
                split = true;
                break;
            }
        }
        if split {
            continue;
        }
        if high <= 0x7F {
            out.push(Utf8Sequence {
                ranges: [
                    ByteRange {
                        low: low as u8,
                        high: high as u8,
                    },
                    ByteRange { low: 0, high: 0 },
                    ByteRange { low: 0, high: 0 },
                    ByteRange { low: 0, high: 0 },
                ],
                len: 1,
            });
            continue;
        }
        // Align on continuation-byte boundaries so that each byte position is independent.
        for level in 1..4 {
            let mask = (1u32 << (6 * level)) - 1;
            if low & !mask != high & !mask {
                if low & mask != 0 {
                    work.push(((low | mask) + 1, high));
                    work.push((low, low | mask));
                    split = true;
                    break;
                }
                if high & mask != mask {
                    work.push((high & !mask, high));
                    work.push((low, (high & !mask) - 1));
                    split = true;
                    break;
                }
            }
        }
        if split {
            continue;
        }
        let mut low_bytes = [0u8; 4];
        let mut high_bytes = [0u8; 4];
        let len = encode(low, &mut low_bytes);
        let high_len = encode(high, &mut high_bytes);
        debug_assert_eq!(len, high_len);
        let mut ranges = [ByteRange { low: 0, high: 0 }; 4];
        for index in 0..len {
            ranges[index] = ByteRange {
                low: low_bytes[index],
                high: high_bytes[index],
            };
        }
        out.push(Utf8Sequence { ranges, len });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(sequences: &[Utf8Sequence], bytes: &[u8]) -> bool {
        sequences.iter().any(|sequence| {
            sequence.len == bytes.len()
                && sequence
                    .ranges()
                    .iter()
                    .zip(bytes)
                    .all(|(range, &byte)| range.low <= byte && byte <= range.high)
        })
    }

    #[test]
    fn sequences_match_exactly_the_range() {
        let cases = [
            (0x00, 0x10_FFFF),
            (0x41, 0x5A),
            (0x70, 0x900),
            (0x3B1, 0x3C9),
            (0xD000, 0xE100),
            (0xFFF0, 0x1_0010),
            (0x1F600, 0x1F64F),
            (0x80, 0x80),
        ];
        for (low, high) in cases {
            let mut sequences = Vec::new();
            split_range(low, high, &mut sequences);
            // Every scalar value in a window around the range matches iff it is inside.
            let window_low = low.saturating_sub(300);
            let window_high = (high + 300).min(0x10_FFFF);
            let mut step = 1;
            if window_high - window_low > 200_000 {
                step = 7;
            }
            let mut code_point = window_low;
            while code_point <= window_high {
                if let Some(c) = char::from_u32(code_point) {
                    let mut buffer = [0u8; 4];
                    let bytes = c.encode_utf8(&mut buffer).as_bytes();
                    let inside = low <= code_point && code_point <= high;
                    assert_eq!(
                        matches(&sequences, bytes),
                        inside,
                        "U+{code_point:X} in {low:X}-{high:X}"
                    );
                }
                code_point += step;
            }
            // No sequence matches an encoded surrogate.
            assert!(!matches(&sequences, &[0xED, 0xA0, 0x80]));
        }
    }
}
