//! A latency histogram: fixed memory, values in microseconds, buckets of
//! at most 1/64 (about 1.6 %) relative width, exact below 128 µs; the
//! count, sum, minimum and maximum are kept exactly. Histograms of several
//! workers merge by adding buckets.

use std::time::Duration;

/// Values below this are their own bucket.
const LINEAR: u64 = 128;
/// Buckets per power of two above [`LINEAR`].
const PER_OCTAVE: u64 = 64;
/// Octaves above [`LINEAR`] (2^7 µs … 2^64 µs).
const OCTAVES: u64 = 57;
const BUCKETS: usize = (LINEAR + OCTAVES * PER_OCTAVE) as usize;

/// Latencies recorded by one or more workers.
#[derive(Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum_us: u128,
    min_us: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: vec![0; BUCKETS],
            count: 0,
            sum_us: 0,
            min_us: u64::MAX,
            max_us: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("max_us", &self.max_us)
            .finish()
    }
}

/// The bucket of `v` µs.
fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let octave = 63 - u64::from(v.leading_zeros()); // ≥ 7
    let shift = octave - 6;
    let top = v >> shift; // in 64..128
    (LINEAR + (octave - 7) * PER_OCTAVE + (top - PER_OCTAVE)) as usize
}

/// The highest value of bucket `b`, in µs.
fn bucket_high(b: usize) -> u64 {
    let b = b as u64;
    if b < LINEAR {
        return b;
    }
    let octave = (b - LINEAR) / PER_OCTAVE + 7;
    let top = (b - LINEAR) % PER_OCTAVE + PER_OCTAVE;
    let shift = octave - 6;
    let high = (u128::from(top + 1) << shift) - 1;
    u64::try_from(high).unwrap_or(u64::MAX)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let v = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(v)] += 1;
        self.count += 1;
        self.sum_us += u128::from(v);
        self.min_us = self.min_us.min(v);
        self.max_us = self.max_us.max(v);
    }

    /// Adds `other`'s values to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value, exact (zero when empty).
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The mean (zero when empty).
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros((self.sum_us / u128::from(self.count)) as u64)
    }

    /// The value at quantile `q` (0 < q ≤ 1): the smallest bucket bound
    /// with at least `ceil(q × count)` values at or below it, never above
    /// the exact maximum nor below the exact minimum (zero when empty).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let v = bucket_high(b).clamp(self.min_us, self.max_us);
                return Duration::from_micros(v);
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..5_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v}");
            assert!(b >= last, "monotonic at {v}");
            assert!(bucket_high(b) >= v, "{v} is within its bucket");
            last = b;
        }
    }

    #[test]
    fn small_values_are_exact_and_large_ones_within_two_percent() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(us(v));
        }
        assert_eq!(h.quantile(0.5), us(50));
        assert_eq!(h.quantile(0.99), us(99));
        assert_eq!(h.quantile(1.0), us(100));
        assert_eq!(h.max(), us(100));
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(us(v * 100));
        }
        for (q, exact) in [(0.5, 500_000.0), (0.9, 900_000.0), (0.99, 990_000.0)] {
            let got = h.quantile(q).as_micros() as f64;
            assert!(
                got >= exact && got <= exact * 1.02,
                "q {q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), us(1_000_000));
        assert_eq!(h.mean(), us(500_050));
    }

    #[test]
    fn merged_histograms_equal_one_fed_everything() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..3_000u64 {
            let d = us(v * v % 70_001);
            if v % 3 == 0 {
                a.record(d)
            } else {
                b.record(d)
            }
            all.record(d);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        for q in [0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
        assert_eq!((a.max(), a.mean()), (all.max(), all.mean()));
    }

    #[test]
    fn an_empty_histogram_answers_zero() {
        let h = Histogram::new();
        assert_eq!(
            (h.count(), h.quantile(0.99), h.max()),
            (0, Duration::ZERO, Duration::ZERO)
        );
    }
}
