//! When each request is due. Closed loop: a worker sends its next request
//! as soon as the last one is answered. Open loop at `rate` requests/s:
//! request `i` (numbered across all workers) is due `i / rate` seconds
//! after the start whatever happened to the others, and its latency runs
//! from that due time, so a slow answer that delays later sends shows in
//! their latency (no coordinated omission).

use std::time::{Duration, Instant};

/// The timing of one run.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// When the warm-up starts (request 0 is due then).
    pub start: Instant,
    /// Requests due or started before this are not counted.
    pub measure_from: Instant,
    /// No request is due or started at or after this.
    pub end: Instant,
    /// Requests per second across all workers; `None` is closed loop.
    pub rate: Option<f64>,
    /// How many workers share the requests.
    pub workers: usize,
}

impl Pacing {
    /// Timing starting at `start`: `warmup`, then `duration` measured.
    pub fn new(
        start: Instant,
        warmup: Duration,
        duration: Duration,
        rate: Option<f64>,
        workers: usize,
    ) -> Pacing {
        Pacing {
            start,
            measure_from: start + warmup,
            end: start + warmup + duration,
            rate,
            workers: workers.max(1),
        }
    }

    /// The global number of worker `w`'s `k`-th request.
    pub fn index(&self, worker: usize, k: u64) -> u64 {
        k * self.workers as u64 + worker as u64
    }

    /// When request `i` is due in open loop (`None` in closed loop).
    pub fn due(&self, i: u64) -> Option<Instant> {
        let rate = self.rate?;
        Some(self.start + Duration::from_secs_f64(i as f64 / rate))
    }

    /// Whether a request due (or, in closed loop, started) at `t` counts.
    pub fn counts(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.end
    }

    /// Whether no request may be due or start at `t`.
    pub fn over(&self, t: Instant) -> bool {
        t >= self.end
    }

    /// The measured window's length.
    pub fn window(&self) -> Duration {
        self.end - self.measure_from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_requests_are_due_at_i_over_rate_across_workers() {
        let t0 = Instant::now();
        let p = Pacing::new(
            t0,
            Duration::from_secs(1),
            Duration::from_secs(2),
            Some(100.0),
            4,
        );
        assert_eq!(p.index(0, 0), 0);
        assert_eq!(p.index(3, 0), 3);
        assert_eq!(p.index(1, 2), 9);
        assert_eq!(p.due(0), Some(t0));
        assert_eq!(p.due(250), Some(t0 + Duration::from_millis(2_500)));
        // Every request index belongs to exactly one worker.
        let mut seen: Vec<u64> = (0..4)
            .flat_map(|w| (0..25).map(move |k| (w, k)))
            .map(|(w, k)| p.index(w, k))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        // Offered load in the window: rate × window.
        let counted = (0..10_000)
            .filter_map(|i| p.due(i))
            .filter(|t| p.counts(*t))
            .count();
        assert_eq!(counted, 200);
    }

    #[test]
    fn closed_loop_has_no_due_times_and_counts_after_the_warmup() {
        let t0 = Instant::now();
        let p = Pacing::new(t0, Duration::from_secs(1), Duration::from_secs(2), None, 8);
        assert_eq!(p.due(5), None);
        assert!(!p.counts(t0));
        assert!(p.counts(t0 + Duration::from_secs(1)));
        assert!(!p.counts(t0 + Duration::from_secs(3)));
        assert!(p.over(t0 + Duration::from_secs(3)));
        assert_eq!(p.window(), Duration::from_secs(2));
    }
}
