//! Wait-time histogram with log-linear buckets, for run-queue latency p50/p99.
//!
//! Values below 16 have a bucket each; above that every power of two is split into eight
//! equal sub-buckets (the HDR-histogram idea at 3 bits of precision), so a percentile is exact
//! to within 12.5 % over the whole `u64` range with 496 fixed buckets and no allocation.
//! Recording is a few instructions (a leading-zero count and a shift), cheap enough for the
//! dispatch path.

const LINEAR_BUCKETS: usize = 16;
const SUB_BUCKET_BITS: u32 = 3;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
const BUCKETS: usize = LINEAR_BUCKETS + (64 - 4) * SUB_BUCKETS;

/// Counts of values (nanoseconds) in log-linear buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitHistogram {
    counts: [u64; BUCKETS],
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for WaitHistogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(value: u64) -> usize {
    if value < LINEAR_BUCKETS as u64 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= 4
    let sub = (value >> (exponent - SUB_BUCKET_BITS)) as usize & (SUB_BUCKETS - 1);
    LINEAR_BUCKETS + (exponent as usize - 4) * SUB_BUCKETS + sub
}

/// Largest value that falls in `bucket`.
fn bucket_upper_bound(bucket: usize) -> u64 {
    if bucket < LINEAR_BUCKETS {
        return bucket as u64;
    }
    let exponent = ((bucket - LINEAR_BUCKETS) / SUB_BUCKETS) as u32 + 4;
    let sub = ((bucket - LINEAR_BUCKETS) % SUB_BUCKETS) as u64;
    let width = 1u64 << (exponent - SUB_BUCKET_BITS);
    let lower = (1u64 << exponent) + sub * width;
    lower.saturating_add(width - 1)
}

impl WaitHistogram {
    /// An empty histogram.
    pub const fn new() -> WaitHistogram {
        WaitHistogram {
            counts: [0; BUCKETS],
            total: 0,
            max: 0,
            sum: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
        self.sum += value as u128;
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest recorded value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean of the recorded values (0 when empty).
    pub fn mean(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum / self.total as u128) as u64
        }
    }

    /// The value at or below which `per_mille`/1000 of the records fall, as the upper bound of
    /// its bucket (never above the true maximum). `None` when empty.
    pub fn percentile(&self, per_mille: u32) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let per_mille = per_mille.min(1000) as u64;
        // Rank of the wanted record, 1-based, rounded up: p50 of 2 values is the first.
        let rank = ((self.total as u128 * per_mille as u128).div_ceil(1000) as u64).max(1);
        let mut seen = 0u64;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_upper_bound(bucket).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Median.
    pub fn p50(&self) -> Option<u64> {
        self.percentile(500)
    }

    /// 99th percentile.
    pub fn p99(&self) -> Option<u64> {
        self.percentile(990)
    }

    /// Adds another histogram's records (for a whole-system view over cores).
    pub fn merge(&mut self, other: &WaitHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_contain_their_values() {
        let mut previous = 0;
        for value in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let bucket = bucket_of(value);
            assert!(bucket >= previous, "bucket order broke at {value}");
            assert!(bucket < BUCKETS);
            assert!(bucket_upper_bound(bucket) >= value);
            if bucket > 0 {
                assert!(
                    bucket_upper_bound(bucket - 1) < value,
                    "value {value} in too high a bucket"
                );
            }
            previous = bucket;
        }
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_within_bucket_precision() {
        let mut histogram = WaitHistogram::new();
        for value in 1..=10_000u64 {
            histogram.record(value);
        }
        let p50 = histogram.p50().unwrap_or(0);
        let p99 = histogram.p99().unwrap_or(0);
        assert!((5000..=5000 + 5000 / 8).contains(&p50), "p50 = {p50}");
        assert!((9900..=10_000).contains(&p99), "p99 = {p99}");
        assert_eq!(histogram.count(), 10_000);
        assert_eq!(histogram.max(), 10_000);
        assert_eq!(histogram.mean(), 5000);
    }

    #[test]
    fn a_tail_shows_in_p99_not_p50() {
        let mut histogram = WaitHistogram::new();
        for _ in 0..980 {
            histogram.record(100);
        }
        for _ in 0..20 {
            histogram.record(1_000_000);
        }
        assert!(histogram.p50().unwrap_or(0) <= 112);
        assert!(histogram.p99().unwrap_or(0) >= 1_000_000 * 7 / 8);
    }

    #[test]
    fn empty_histogram_has_no_percentiles_and_merge_adds() {
        let mut a = WaitHistogram::new();
        assert_eq!(a.p50(), None);
        let mut b = WaitHistogram::new();
        b.record(7);
        b.record(9);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.p50(), Some(7));
        assert_eq!(a.percentile(1000), Some(9));
    }
}
