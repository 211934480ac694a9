//! The dashboard's history: cumulative counters recorded as requests are
//! answered ([`Totals`]), and a ring buffer ([`Sampler`]) that turns two
//! successive readings of them into one interval's counts and latency
//! percentiles. Plain structs: the sampler is fed readings, so a test can
//! inject them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::Timed;

/// Upper bounds of the latency buckets, in ms: 0.25 ms doubling up to
/// about 65 s; anything slower lands in a last, open bucket.
pub const BUCKET_BOUNDS_MS: [f64; 19] = [
    0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
    8192.0, 16384.0, 32768.0, 65536.0,
];

/// Buckets per latency histogram: the bounded ones and the open one.
pub const BUCKETS: usize = BUCKET_BOUNDS_MS.len() + 1;

/// How often the node samples (ms).
pub const INTERVAL_MS: u64 = 1_000;

/// How many intervals the dashboard keeps (5 minutes at one a second).
pub const CAPACITY: usize = 300;

/// Latency counts per bucket ([`BUCKET_BOUNDS_MS`]).
pub type Buckets = [u64; BUCKETS];

/// The bucket of a latency in seconds.
fn bucket_of(secs: f64) -> usize {
    let ms = secs * 1000.0;
    BUCKET_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(BUCKET_BOUNDS_MS.len())
}

/// Counters the HTTP layer bumps for every answered request (through
/// [`Metrics::request`](crate::metrics::Metrics::request)); never reset.
#[derive(Debug)]
pub struct Totals {
    requests: AtomicU64,
    unavailable: AtomicU64,
    server_errors: AtomicU64,
    schedule: [AtomicU64; BUCKETS],
    compute: [AtomicU64; BUCKETS],
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            requests: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            schedule: std::array::from_fn(|_| AtomicU64::new(0)),
            compute: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Totals {
    /// Counts one answered request.
    pub fn record(&self, status: u16, timed: Option<Timed>, secs: f64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status == 503 {
            self.unavailable.fetch_add(1, Ordering::Relaxed);
        } else if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let histogram = match timed {
            Some(Timed::Schedule) => &self.schedule,
            Some(Timed::Compute) => &self.compute,
            None => return,
        };
        histogram[bucket_of(secs)].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered, 503s among them, other 5xx among them.
    pub fn answered(&self) -> (u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
            self.server_errors.load(Ordering::Relaxed),
        )
    }

    /// The counters now, with the slot counters the libraries keep.
    pub fn read(&self, at_ms: u64, assigned: u64, computed: u64) -> Reading {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Reading {
            at_ms,
            requests: load(&self.requests),
            unavailable: load(&self.unavailable),
            server_errors: load(&self.server_errors),
            assigned,
            computed,
            schedule: std::array::from_fn(|i| load(&self.schedule[i])),
            compute: std::array::from_fn(|i| load(&self.compute[i])),
        }
    }
}

/// Cumulative counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// HTTP requests answered.
    pub requests: u64,
    /// Of which 503 (`busy` or `unavailable`).
    pub unavailable: u64,
    /// Of which other 5xx.
    pub server_errors: u64,
    /// Slots assigned by the scheduler.
    pub assigned: u64,
    /// Slots computed by the process layer.
    pub computed: u64,
    /// Schedule request latencies per bucket.
    pub schedule: Buckets,
    /// Compute request latencies per bucket.
    pub compute: Buckets,
}

/// Latency of one kind of request over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Requests answered.
    pub count: u64,
    /// Median, ms (the upper bound of its bucket; 0 without requests).
    pub p50_ms: f64,
    /// 99th percentile, ms (the upper bound of its bucket).
    pub p99_ms: f64,
}

/// One interval: what happened between two readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// End of the interval (ms since the Unix epoch).
    pub at_ms: u64,
    /// Its length (ms).
    pub length_ms: u64,
    /// HTTP requests answered.
    pub requests: u64,
    /// Of which 503.
    pub unavailable: u64,
    /// Of which other 5xx.
    pub server_errors: u64,
    /// Slots assigned.
    pub assigned: u64,
    /// Slots computed.
    pub computed: u64,
    /// Schedule requests.
    pub schedule: Latency,
    /// Compute requests.
    pub compute: Latency,
}

/// The `q` quantile (0 < q ≤ 1) of bucket counts: the upper bound of the
/// bucket holding it, in ms (the open bucket reports twice the last
/// bound); 0 when there are none.
pub fn quantile_ms(buckets: &Buckets, q: f64) -> f64 {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return 0.0;
    }
    // The rank of the quantile, at least 1 (counts are far below 2^52, so
    // the conversions are exact).
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return BUCKET_BOUNDS_MS
                .get(i)
                .copied()
                .unwrap_or(BUCKET_BOUNDS_MS[BUCKET_BOUNDS_MS.len() - 1] * 2.0);
        }
    }
    BUCKET_BOUNDS_MS[BUCKET_BOUNDS_MS.len() - 1] * 2.0
}

fn latency(now: &Buckets, before: &Buckets) -> Latency {
    let delta: Buckets = std::array::from_fn(|i| now[i].saturating_sub(before[i]));
    Latency {
        count: delta.iter().sum(),
        p50_ms: quantile_ms(&delta, 0.5),
        p99_ms: quantile_ms(&delta, 0.99),
    }
}

/// The last [`capacity`](Sampler::new) intervals, oldest first.
#[derive(Debug, Clone)]
pub struct Sampler {
    capacity: usize,
    last: Option<Reading>,
    intervals: VecDeque<Interval>,
}

impl Sampler {
    /// A sampler keeping at most `capacity` intervals (at least one).
    pub fn new(capacity: usize) -> Sampler {
        let capacity = capacity.max(1);
        Sampler {
            capacity,
            last: None,
            intervals: VecDeque::with_capacity(capacity),
        }
    }

    /// Adds a reading: the interval since the previous one joins the
    /// history (the oldest leaves when full). The first reading only sets
    /// the start; a reading not later than the previous one, or with a
    /// counter lower than before (a restart), starts over from it.
    pub fn push(&mut self, reading: Reading) {
        if let Some(last) = self.last.take() {
            let went_back = reading.at_ms <= last.at_ms
                || reading.requests < last.requests
                || reading.assigned < last.assigned
                || reading.computed < last.computed;
            if !went_back {
                if self.intervals.len() == self.capacity {
                    self.intervals.pop_front();
                }
                self.intervals.push_back(Interval {
                    at_ms: reading.at_ms,
                    length_ms: reading.at_ms - last.at_ms,
                    requests: reading.requests - last.requests,
                    unavailable: reading.unavailable.saturating_sub(last.unavailable),
                    server_errors: reading.server_errors.saturating_sub(last.server_errors),
                    assigned: reading.assigned - last.assigned,
                    computed: reading.computed - last.computed,
                    schedule: latency(&reading.schedule, &last.schedule),
                    compute: latency(&reading.compute, &last.compute),
                });
            }
        }
        self.last = Some(reading);
    }

    /// The intervals kept, oldest first.
    pub fn intervals(&self) -> impl ExactSizeIterator<Item = &Interval> {
        self.intervals.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at_ms: u64, requests: u64, schedule_ms: &[f64]) -> Reading {
        let totals = Totals::default();
        for ms in schedule_ms {
            totals.record(200, Some(Timed::Schedule), ms / 1000.0);
        }
        let mut r = totals.read(at_ms, requests, requests);
        r.requests = requests;
        r
    }

    #[test]
    fn latencies_land_in_the_bucket_of_their_upper_bound() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(0.00025), 0);
        assert_eq!(bucket_of(0.0003), 1);
        assert_eq!(bucket_of(0.003), 4);
        assert_eq!(bucket_of(1_000.0), BUCKETS - 1);
        assert_eq!(bucket_of(f64::NAN), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_bucket_bounds_and_zero_without_requests() {
        let mut b = [0; BUCKETS];
        assert_eq!(quantile_ms(&b, 0.5), 0.0);
        b[2] = 98; // ≤ 1 ms
        b[6] = 2; // ≤ 16 ms
        assert_eq!(quantile_ms(&b, 0.5), 1.0);
        assert_eq!(quantile_ms(&b, 0.98), 1.0);
        assert_eq!(quantile_ms(&b, 0.99), 16.0);
        b[BUCKETS - 1] = 1_000;
        assert_eq!(quantile_ms(&b, 0.99), 65536.0 * 2.0);
    }

    #[test]
    fn each_interval_holds_the_difference_of_two_readings() {
        let mut s = Sampler::new(10);
        s.push(reading(1_000, 5, &[1.0]));
        assert_eq!(s.intervals().len(), 0, "the first reading only starts");
        s.push(reading(2_000, 12, &[1.0, 1.0, 1.0, 3.0]));
        let i: Vec<_> = s.intervals().cloned().collect();
        assert_eq!(i.len(), 1);
        assert_eq!((i[0].at_ms, i[0].length_ms), (2_000, 1_000));
        assert_eq!((i[0].requests, i[0].assigned, i[0].computed), (7, 7, 7));
        assert_eq!(i[0].schedule.count, 3);
        assert_eq!(i[0].schedule.p50_ms, 1.0);
        assert_eq!(i[0].schedule.p99_ms, 4.0);
        assert_eq!(i[0].compute.count, 0);
    }

    #[test]
    fn the_ring_keeps_the_newest_intervals() {
        let mut s = Sampler::new(3);
        for t in 0..10 {
            s.push(reading(t * 1_000, t * 2, &[]));
        }
        let at: Vec<_> = s.intervals().map(|i| i.at_ms).collect();
        assert_eq!(at, vec![7_000, 8_000, 9_000]);
        assert!(s.intervals().all(|i| i.requests == 2));
    }

    #[test]
    fn readings_that_go_back_start_over_without_an_interval() {
        let mut s = Sampler::new(5);
        s.push(reading(1_000, 10, &[]));
        s.push(reading(1_000, 11, &[]));
        s.push(reading(2_000, 3, &[]));
        assert_eq!(s.intervals().len(), 0);
        s.push(reading(3_000, 4, &[]));
        assert_eq!(s.intervals().map(|i| i.requests).collect::<Vec<_>>(), [1]);
    }
}
