//! `/metrics` (SPEC §7.5): the node's series in the Prometheus (OpenMetrics)
//! text format, through the Prometheus organisation's `prometheus-client`.
//!
//! Two kinds of series:
//!
//! - **recorded** as things happen, in [`Metrics`]: HTTP requests by route,
//!   method and status, requests in flight, handler panics, and the
//!   schedule, compute and store-flush latency histograms (the flush
//!   latency through [`TimedStore`], which wraps the node's store);
//! - **sampled** at each scrape from the libraries' own counters
//!   ([`Sources`]): slots assigned and computed, live scheduler servers and
//!   process workers, actor restarts by reason, snapshot failures, the
//!   store's size, and per process, for live workers only (so the number
//!   of series is bounded by activity, at most [`MAX_PROCESS_SERIES`]):
//!   the lag (scheduled slot − computed slot) and the last error slot.
//!
//! Route labels are bounded: a route is the pattern of its path (the
//! device, or `<pid>` for any process, and the first key when it is one
//! of the node's known keys), never the raw path or a process ID.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use hb_process::Processes;
use hb_scheduler::Scheduler;
use hb_store::{Batch, Direction, Entry, Store, StoreError};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The most live workers given per-process series in one scrape (those
/// with the largest lag first).
pub const MAX_PROCESS_SERIES: usize = 1000;

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the HTTP layer counts per request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

/// Which latency histogram a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timed {
    /// `POST …/schedule`.
    Schedule,
    /// `GET …/compute` and `…/now`.
    Compute,
}

/// The series recorded as requests and flushes happen.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    in_flight: Gauge,
    panics: Counter,
    schedule_seconds: Histogram,
    compute_seconds: Histogram,
    flush_seconds: Histogram,
    totals: crate::dashboard::Totals,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// Latency buckets from 0.5 ms to about 65 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 18)
}

impl Metrics {
    /// Every recorded series, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "hb_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "hb_http_requests_in_flight",
            "HTTP requests being handled now",
            in_flight.clone(),
        );
        let panics = Counter::default();
        registry.register(
            "hb_http_panics",
            "HTTP handlers that panicked (answered 500 internal)",
            panics.clone(),
        );
        let schedule_seconds = Histogram::new(latency_buckets());
        registry.register_with_unit(
            "hb_schedule_duration",
            "Latency of POST schedule requests, body to answer",
            Unit::Seconds,
            schedule_seconds.clone(),
        );
        let compute_seconds = Histogram::new(latency_buckets());
        registry.register_with_unit(
            "hb_compute_duration",
            "Latency of compute and now requests, body to answer",
            Unit::Seconds,
            compute_seconds.clone(),
        );
        let flush_seconds = Histogram::new(latency_buckets());
        registry.register_with_unit(
            "hb_store_flush_duration",
            "Latency of the store's flushes (group commit and others)",
            Unit::Seconds,
            flush_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            in_flight,
            panics,
            schedule_seconds,
            compute_seconds,
            flush_seconds,
            totals: crate::dashboard::Totals::default(),
        }
    }

    /// The cumulative counters the dashboard samples.
    pub fn totals(&self) -> &crate::dashboard::Totals {
        &self.totals
    }

    /// Counts one answered request.
    pub fn request(&self, route: &str, method: &str, status: u16, timed: Option<Timed>, secs: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.totals.record(status, timed, secs);
        match timed {
            Some(Timed::Schedule) => self.schedule_seconds.observe(secs),
            Some(Timed::Compute) => self.compute_seconds.observe(secs),
            None => {}
        }
    }

    /// A request started (`+1`) or ended (`-1`).
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    /// Counts a handler panic.
    pub fn panicked(&self) {
        self.panics.inc();
    }

    /// `store`, with its flushes timed into `hb_store_flush_duration_seconds`.
    pub fn timed_store(&self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(TimedStore {
            inner: store,
            flush_seconds: self.flush_seconds.clone(),
        })
    }

    /// The text of `/metrics`: the recorded series, then those sampled from
    /// `sources` now.
    pub async fn render(&self, sources: &Sources) -> String {
        let sampled = sources.sample().await;
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut text, &self.registry);
        let _ = encode_registry(&mut text, &sampled);
        let _ = encode_eof(&mut text);
        text
    }
}

/// Where the sampled series come from.
#[derive(Clone)]
pub struct Sources {
    /// The scheduler (slots assigned, servers, restarts).
    pub scheduler: Scheduler,
    /// The process layer (slots computed, workers, snapshots, lag).
    pub processes: Processes,
    /// The store (its size).
    pub store: Arc<dyn Store>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("scheduler", &self.scheduler)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestartLabels {
    actor: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabels {
    pid: String,
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Sources {
    async fn sample(&self) -> Registry {
        let mut r = Registry::default();
        let s = self.scheduler.metrics();
        let p = self.processes.metrics();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        r.register(
            "hb_slots_assigned",
            "Slots assigned by this node's scheduler",
            counter(load(&s.assigned)),
        );
        r.register(
            "hb_slots_computed",
            "Slots computed (run and stored), replays included",
            counter(load(&p.computed)),
        );
        r.register(
            "hb_scheduler_busy",
            "Schedule calls refused with busy",
            counter(load(&s.busy)),
        );
        r.register(
            "hb_scheduler_servers",
            "Live scheduler servers",
            gauge(clamp(self.scheduler.live_servers())),
        );
        if self.scheduler.node_id().is_some() {
            // Clusters only (SPEC §11.2): a lost lease stopped a server.
            r.register(
                "hb_leases_taken",
                "Process leases this node took",
                counter(load(&s.leases_taken)),
            );
            r.register(
                "hb_leases_lost",
                "Process leases this node lost (failed renewal, failed fence, or expiry)",
                counter(load(&s.leases_lost)),
            );
        }
        let workers = self.processes.live_workers().await;
        r.register(
            "hb_process_workers",
            "Live process workers",
            gauge(clamp(workers.len())),
        );
        let restarts = Family::<RestartLabels, Counter>::default();
        for (actor, reason, n) in [
            ("scheduler-server", "panic", load(&s.panics)),
            ("scheduler-server", "write-failure", load(&s.write_failures)),
            ("process-worker", "device-panic", load(&p.restarts)),
        ] {
            restarts
                .get_or_create(&RestartLabels { actor, reason })
                .inc_by(n);
        }
        r.register(
            "hb_actor_restarts",
            "Actor restarts (from the store or the latest snapshot), by actor and reason",
            restarts,
        );
        r.register(
            "hb_snapshot_failures",
            "Snapshots that failed (the state was stored without one)",
            counter(load(&p.snapshot_failures)),
        );
        if let Some(bytes) = self.store.bytes_on_disk() {
            r.register_with_unit(
                "hb_store_size",
                "Bytes the store takes on disk",
                Unit::Bytes,
                gauge(i64::try_from(bytes).unwrap_or(i64::MAX)),
            );
        }
        let lag = Family::<ProcessLabels, Gauge>::default();
        let last_error = Family::<ProcessLabels, Gauge>::default();
        let mut rows = Vec::with_capacity(workers.len());
        for w in &workers {
            let scheduled = match self.scheduler.current(w.pid()).await {
                Ok(Some(c)) => c.slot,
                _ => continue,
            };
            rows.push((w, scheduled.saturating_sub(w.at_slot()).max(0)));
        }
        rows.sort_by_key(|row| std::cmp::Reverse(row.1));
        for (w, behind) in rows.into_iter().take(MAX_PROCESS_SERIES) {
            let labels = ProcessLabels {
                pid: w.pid().to_human(),
            };
            lag.get_or_create(&labels).set(behind);
            if let Some(e) = w.last_error() {
                last_error.get_or_create(&labels).set(e.slot);
            }
        }
        r.register(
            "hb_process_lag_slots",
            "Scheduled slot minus computed slot, for live workers",
            lag,
        );
        r.register(
            "hb_process_last_error_slot",
            "The slot of the last computation error, for live workers that have one",
            last_error,
        );
        r
    }
}

/// A store whose flushes are timed; everything else goes straight to the
/// store it wraps.
pub struct TimedStore {
    inner: Arc<dyn Store>,
    flush_seconds: Histogram,
}

impl std::fmt::Debug for TimedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedStore").finish_non_exhaustive()
    }
}

impl Store for TimedStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.inner.put(key, value)
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.inner.delete(key)
    }

    fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.range(start, end, direction, limit)
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.inner.apply(batch)
    }

    fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        self.inner.apply_group(batches)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        self.inner.compare_and_swap(key, expected, new)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.inner.flush();
        self.flush_seconds.observe(started.elapsed().as_secs_f64());
        result
    }

    fn path(&self) -> Option<&Path> {
        self.inner.path()
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan_prefix(prefix, direction, limit)
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Entry>, StoreError> {
        self.inner.last_with_prefix(prefix)
    }

    fn backup(&self, dest: &Path) -> Result<hb_store::BackupReport, StoreError> {
        self.inner.backup(dest)
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        self.inner.bytes_on_disk()
    }
}
