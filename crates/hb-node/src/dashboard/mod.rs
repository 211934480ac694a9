//! The operator dashboard, `hyperbuddy@1.0` (docs/dashboard.md):
//!
//! - `GET /~hyperbuddy@1.0/dashboard`: one self-contained HTML page (its
//!   style and script are compiled into the binary; it fetches nothing but
//!   the stats below) showing the node's address, version, uptime and
//!   store size, the totals, the live processes and two small charts of
//!   the last minutes;
//! - `GET /~hyperbuddy@1.0/stats`: the same numbers as JSON
//!   ([`stats_json`]).
//!
//! The numbers come from the node's own counters: the scheduler's and the
//! process layer's metrics, each live process's status
//! ([`hb_process::Processes::status`]) and a [`Sampler`] fed once a second
//! from the counters the HTTP layer keeps ([`Totals`]).

pub mod sampler;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{web, HttpResponse};
use hb_message::{Id, Value};
use hb_process::ProcessMetrics;
use hb_scheduler::SchedulerMetrics;
use tracing::Instrument;

pub use sampler::{Interval, Reading, Sampler, Totals};

use crate::metrics::{Metrics, Sources};
use crate::node::NodeState;

/// The most processes the dashboard lists (those furthest behind first).
pub const MAX_PROCESSES: usize = 100;

/// The page: HTML, style and script, all inside the binary.
const PAGE: &str = concat!(
    include_str!("page.html"),
    "<style>\n",
    include_str!("dashboard.css"),
    "</style>\n<script>\n",
    include_str!("dashboard.js"),
    "</script>\n</body>\n</html>\n"
);

/// The dashboard's state: when the node started and the sampled history.
#[derive(Debug)]
pub struct Dashboard {
    started: Instant,
    sampler: Mutex<Sampler>,
}

impl Default for Dashboard {
    fn default() -> Dashboard {
        Dashboard::new()
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Dashboard {
    /// A dashboard starting now, with an empty history.
    pub fn new() -> Dashboard {
        Dashboard {
            started: Instant::now(),
            sampler: Mutex::new(Sampler::new(sampler::CAPACITY)),
        }
    }

    fn with_sampler<T>(&self, f: impl FnOnce(&mut Sampler) -> T) -> T {
        // A panic while holding the lock leaves a usable ring buffer.
        let mut sampler = self.sampler.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut sampler)
    }

    /// Feeds the sampler one reading of the counters now.
    fn sample(&self, metrics: &Metrics, s: &SchedulerMetrics, p: &ProcessMetrics) {
        let reading = metrics.totals().read(
            now_ms(),
            s.assigned.load(Ordering::Relaxed),
            p.computed.load(Ordering::Relaxed),
        );
        self.with_sampler(|sampler| sampler.push(reading));
    }
}

/// Samples once a second until the dashboard is dropped (with the node's
/// HTTP state). Holds no store: only counters and a weak reference.
pub(crate) fn start_sampler(dashboard: &Arc<Dashboard>, metrics: &Arc<Metrics>, sources: &Sources) {
    let dashboard: Weak<Dashboard> = Arc::downgrade(dashboard);
    let metrics: Weak<Metrics> = Arc::downgrade(metrics);
    let s = Arc::clone(sources.scheduler.metrics());
    let p = Arc::clone(sources.processes.metrics());
    actix::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(sampler::INTERVAL_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (Some(d), Some(m)) = (dashboard.upgrade(), metrics.upgrade()) else {
                break;
            };
            d.sample(&m, &s, &p);
        }
    });
}

/// The routes of `hyperbuddy@1.0`.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/~hyperbuddy@1.0/dashboard", web::get().to(page))
        .route("/~hyperbuddy@1.0/stats", web::get().to(stats));
}

/// `GET /~hyperbuddy@1.0/dashboard`.
async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(PAGE)
}

/// `GET /~hyperbuddy@1.0/stats`.
async fn stats(state: web::Data<NodeState>) -> HttpResponse {
    let span = tracing::info_span!("dashboard_stats", processes = tracing::field::Empty);
    let body = gather(&state).instrument(span).await;
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(body)
}

/// The node-wide figures of the stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The node's address.
    pub address: String,
    /// The node's version.
    pub version: String,
    /// Whole seconds since the node started.
    pub uptime_seconds: u64,
    /// Bytes the store takes on disk, if it knows.
    pub store_bytes: Option<u64>,
    /// HTTP requests answered, 503s among them, other 5xx among them.
    pub requests: (u64, u64, u64),
    /// Slots assigned by the scheduler.
    pub slots_assigned: u64,
    /// Slots computed by the process layer.
    pub slots_computed: u64,
    /// Schedule calls refused with `busy`.
    pub scheduler_busy: u64,
    /// Live scheduler servers.
    pub scheduler_servers: usize,
    /// Live process workers.
    pub process_workers: usize,
    /// Processes with a live server or worker.
    pub live_processes: usize,
}

/// The last failure of a process's computation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// The slot.
    pub slot: i64,
    /// The error code.
    pub code: String,
    /// What happened.
    pub detail: String,
}

/// One live process, from its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRow {
    /// The process ID.
    pub pid: String,
    /// The last assigned slot (−1: none).
    pub scheduled: i64,
    /// The latest computed slot (−1: none).
    pub computed: i64,
    /// `running`, `idle` or `stopped`.
    pub worker: String,
    /// The last error, if its worker has one.
    pub last_error: Option<LastError>,
}

impl ProcessRow {
    /// Scheduled minus computed slot, never below 0.
    pub fn lag(&self) -> i64 {
        self.scheduled.saturating_sub(self.computed).max(0)
    }
}

/// The stats' JSON: the facts, the processes (as given) and the sampled
/// intervals, oldest first.
pub fn stats_json<'a>(
    facts: &Facts,
    processes: &[ProcessRow],
    intervals: impl Iterator<Item = &'a Interval>,
) -> serde_json::Value {
    use serde_json::json;
    let rows: Vec<_> = processes
        .iter()
        .map(|p| {
            json!({
                "process": p.pid,
                "scheduled-slot": p.scheduled,
                "computed-slot": p.computed,
                "lag": p.lag(),
                "worker": p.worker,
                "last-error": p.last_error.as_ref().map(|e| json!({
                    "slot": e.slot,
                    "code": e.code,
                    "detail": e.detail,
                })),
            })
        })
        .collect();
    let points: Vec<_> = intervals
        .map(|i| {
            json!({
                "at-ms": i.at_ms,
                "length-ms": i.length_ms,
                "requests": i.requests,
                "unavailable": i.unavailable,
                "server-errors": i.server_errors,
                "assigned": i.assigned,
                "computed": i.computed,
                "schedule-count": i.schedule.count,
                "schedule-p50-ms": i.schedule.p50_ms,
                "schedule-p99-ms": i.schedule.p99_ms,
                "compute-count": i.compute.count,
                "compute-p50-ms": i.compute.p50_ms,
                "compute-p99-ms": i.compute.p99_ms,
            })
        })
        .collect();
    let (requests, unavailable, server_errors) = facts.requests;
    json!({
        "address": facts.address,
        "version": facts.version,
        "uptime-seconds": facts.uptime_seconds,
        "store-bytes": facts.store_bytes,
        "totals": {
            "requests": requests,
            "unavailable": unavailable,
            "server-errors": server_errors,
            "slots-assigned": facts.slots_assigned,
            "slots-computed": facts.slots_computed,
            "scheduler-busy": facts.scheduler_busy,
            "scheduler-servers": facts.scheduler_servers,
            "process-workers": facts.process_workers,
            "live-processes": facts.live_processes,
            "processes-shown": processes.len(),
        },
        "processes": rows,
        "series": {
            "interval-ms": sampler::INTERVAL_MS,
            "points": points,
        },
    })
}

/// The first `max` processes of `(pid, scheduled, computed)`, those
/// furthest behind (scheduled − computed) first, then by ID.
pub fn furthest_behind(mut slots: Vec<(Id, i64, i64)>, max: usize) -> Vec<Id> {
    slots.sort_by_key(|(pid, scheduled, computed)| {
        (std::cmp::Reverse(scheduled.saturating_sub(*computed)), *pid)
    });
    slots.into_iter().take(max).map(|(pid, _, _)| pid).collect()
}

/// A process's status message as a row (`None` if it lacks the slots).
fn row_of(status: &hb_message::Message) -> Option<ProcessRow> {
    let last_error = status.get_message("last-error").map(|e| LastError {
        slot: e.get("slot").and_then(Value::to_int_lenient).unwrap_or(-1),
        code: e.get_text("code").unwrap_or_default().to_string(),
        detail: e.get_text("detail").unwrap_or_default().to_string(),
    });
    Some(ProcessRow {
        pid: status.get_text("process")?.to_string(),
        scheduled: status.get("scheduled-slot")?.to_int_lenient()?,
        computed: status.get("computed-slot")?.to_int_lenient()?,
        worker: status.get_text("worker").unwrap_or("stopped").to_string(),
        last_error,
    })
}

/// Reads everything the stats show.
async fn gather(state: &NodeState) -> serde_json::Value {
    let sources = &state.sources;
    let scheduler = &sources.scheduler;
    let workers = sources.processes.live_workers().await;
    let servers = scheduler.live_server_processes();
    // The live processes, those furthest behind first by what is cheap to
    // read (the worker's live slot), then the status of the first few.
    let mut at: std::collections::BTreeMap<Id, i64> = servers.iter().map(|p| (*p, -1)).collect();
    for w in &workers {
        at.insert(w.pid(), w.at_slot());
    }
    let live_processes = at.len();
    let mut slots = Vec::with_capacity(at.len());
    for (pid, computed) in at {
        let scheduled = match scheduler.current(pid).await {
            Ok(Some(c)) => c.slot,
            _ => -1,
        };
        slots.push((pid, scheduled, computed));
    }
    let mut rows = Vec::new();
    for pid in furthest_behind(slots, MAX_PROCESSES) {
        if let Some(row) = sources
            .processes
            .status(pid)
            .await
            .ok()
            .as_ref()
            .and_then(row_of)
        {
            rows.push(row);
        }
    }
    tracing::Span::current().record("processes", rows.len());
    let s = scheduler.metrics();
    let p = sources.processes.metrics();
    let (requests, unavailable, server_errors) = state.metrics.totals().answered();
    let facts = Facts {
        address: scheduler.address().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_seconds: state.dashboard.started.elapsed().as_secs(),
        store_bytes: sources.store.bytes_on_disk(),
        requests: (requests, unavailable, server_errors),
        slots_assigned: s.assigned.load(Ordering::Relaxed),
        slots_computed: p.computed.load(Ordering::Relaxed),
        scheduler_busy: s.busy.load(Ordering::Relaxed),
        scheduler_servers: servers.len(),
        process_workers: workers.len(),
        live_processes,
    };
    state
        .dashboard
        .with_sampler(|sampler| stats_json(&facts, &rows, sampler.intervals()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            address: "addr".into(),
            version: "0.1.0".into(),
            uptime_seconds: 7,
            store_bytes: Some(1234),
            requests: (10, 2, 1),
            slots_assigned: 5,
            slots_computed: 4,
            scheduler_busy: 2,
            scheduler_servers: 1,
            process_workers: 1,
            live_processes: 1,
        }
    }

    #[test]
    fn the_stats_show_every_fact_row_and_interval() {
        let rows = [ProcessRow {
            pid: "p".into(),
            scheduled: 5,
            computed: 3,
            worker: "idle".into(),
            last_error: Some(LastError {
                slot: 2,
                code: "device-error".into(),
                detail: "boom".into(),
            }),
        }];
        let mut sampler = Sampler::new(4);
        let totals = Totals::default();
        sampler.push(totals.read(1_000, 0, 0));
        totals.record(200, Some(crate::metrics::Timed::Schedule), 0.003);
        sampler.push(totals.read(2_000, 1, 0));
        let j = stats_json(&facts(), &rows, sampler.intervals());
        assert_eq!(j["address"], "addr");
        assert_eq!(j["store-bytes"], 1234);
        assert_eq!(j["totals"]["requests"], 10);
        assert_eq!(j["totals"]["unavailable"], 2);
        assert_eq!(j["totals"]["processes-shown"], 1);
        assert_eq!(j["processes"][0]["lag"], 2);
        assert_eq!(j["processes"][0]["last-error"]["code"], "device-error");
        let points = j["series"]["points"].as_array().unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0]["requests"], 1);
        assert_eq!(points[0]["assigned"], 1);
        assert_eq!(points[0]["schedule-p99-ms"], 4.0);
    }

    #[test]
    fn a_status_without_slots_is_no_row_and_lag_is_never_negative() {
        let status = hb_message::Message::new().with("process", "p").unwrap();
        assert_eq!(row_of(&status), None);
        let status = status
            .with("scheduled-slot", 1)
            .and_then(|m| m.with("computed-slot", 3))
            .unwrap();
        let row = row_of(&status).unwrap();
        assert_eq!((row.lag(), row.worker.as_str()), (0, "stopped"));
    }

    #[test]
    fn at_most_max_processes_are_listed_furthest_behind_first() {
        let ids: Vec<Id> = (0..5u8).map(|i| Id::hash(&[i])).collect();
        let slots = vec![
            (ids[0], 10, 10),
            (ids[1], 10, 2),
            (ids[2], 5, -1),
            (ids[3], 7, 7),
            (ids[4], 3, 0),
        ];
        assert_eq!(
            furthest_behind(slots.clone(), 3),
            vec![ids[1], ids[2], ids[4]]
        );
        let all = furthest_behind(slots, 100);
        assert_eq!(all.len(), 5);
        assert_eq!(&all[3..], &[ids[0].min(ids[3]), ids[0].max(ids[3])]);
    }

    #[test]
    fn the_page_is_self_contained() {
        assert!(PAGE.contains("<script>") && PAGE.contains("<style>"));
        for external in ["http://", "https://", "src=", "@import"] {
            assert!(!PAGE.contains(external), "the page names {external}");
        }
    }
}
