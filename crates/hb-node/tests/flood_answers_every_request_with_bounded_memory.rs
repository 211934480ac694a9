//! A flood of the real `hb serve`: hundreds of connections sending signed
//! schedule requests and compute (`now`) requests as fast as they are
//! answered, first all at one hot process, then spread over many
//! processes. Every request gets an answer (no connection dropped): 200,
//! or 503 `busy` with `retry-after`; nothing else. The node's peak
//! resident memory (`VmHWM`) stays under a bound, and a flood twice as
//! large (twice the connections, twice the requests) does not raise it
//! proportionally.
//!
//! The node runs with small limits so that the flood reaches them:
//! `max_requests_in_flight` 32 (the node-wide bound), scheduler and worker
//! mailboxes of 8 requests, at most 16 live process workers (of the 64
//! processes flooded) and request bodies of at most 64 KiB (the test's
//! usual limit). What a flood can hold in memory at once is then
//! bounded by those, not by the number of clients or requests: at most 32
//! requests being handled (≤ 2 MiB of bodies), the rest wait in the
//! kernel's socket buffers or are refused at once.

mod http_support;

use std::time::Duration;

use hb_message::json::to_json;
use http_support::{adding, register, Binary, Endpoint};

/// The node's limits for the flood.
const LIMITS: [&str; 8] = [
    "--process-max-live-workers",
    "16",
    "--max-requests-in-flight",
    "32",
    "--scheduler-mailbox-capacity",
    "8",
    "--process-worker-mailbox-capacity",
    "8",
];

/// Requests each connection sends in one flood.
const PER_CONNECTION: usize = 12;

/// Processes of the spread-out flood.
const PROCESSES: usize = 64;

/// Peak resident memory the node may reach (MiB): its own footprint (a
/// debug build with sled's page cache and the actix runtimes, about 30–60
/// MiB here) plus the limits above (≤ 2 MiB of request bodies, ≤ 8
/// requests queued per process) plus the state of the processes touched,
/// with a wide margin; far below what holding every request of the
/// larger flood would need if nothing bounded them.
const MAX_PEAK_MIB: u64 = 256;

/// How much the floods may raise the node's peak RSS above what it was
/// before them (MiB).
const MAX_GROWTH_MIB: u64 = 64;

/// What the answers were.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    busy_node: u64,
    busy_scheduler: u64,
    busy_worker: u64,
    /// Anything else: the request, the status (0: no answer) and the body.
    wrong: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.busy_node += other.busy_node;
        self.busy_scheduler += other.busy_scheduler;
        self.busy_worker += other.busy_worker;
        self.wrong.extend(other.wrong);
    }

    fn busy(&self) -> u64 {
        self.busy_node + self.busy_scheduler + self.busy_worker
    }

    fn answered(&self) -> u64 {
        self.ok + self.busy()
    }
}

/// One client connection's share of the flood.
async fn connection(url: String, targets: Vec<String>, k: usize) -> Tally {
    let client = awc::Client::builder()
        .connector(awc::Connector::new().timeout(Duration::from_secs(60)))
        .timeout(Duration::from_secs(120))
        .finish();
    let mut tally = Tally::default();
    for j in 0..PER_CONNECTION {
        let pid = &targets[(k + j) % targets.len()];
        let (what, sent) = if (k + j).is_multiple_of(2) {
            let body = to_json(&adding(pid, 1));
            (
                "schedule",
                client
                    .post(format!("{url}/~scheduler@1.0/schedule"))
                    .send_json(&body)
                    .await,
            )
        } else {
            (
                "now",
                client
                    .get(format!("{url}/{pid}~process@1.0/now"))
                    .send()
                    .await,
            )
        };
        let mut res = match sent {
            Ok(res) => res,
            Err(e) => {
                tally.wrong.push(format!("{what}: no answer: {e}"));
                continue;
            }
        };
        let status = res.status().as_u16();
        let retry_after = res.headers().contains_key("retry-after");
        let body = match res.body().limit(1 << 20).await {
            Ok(b) => b,
            Err(e) => {
                tally
                    .wrong
                    .push(format!("{what}: {status} with no full body: {e}"));
                continue;
            }
        };
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match (status, json["error"].as_str(), retry_after) {
            (200, _, _) => tally.ok += 1,
            (503, Some("busy"), true) => {
                let detail = json["detail"].as_str().unwrap_or_default();
                if detail.starts_with("the node is busy") {
                    tally.busy_node += 1;
                } else if detail.starts_with("scheduler for process") {
                    tally.busy_scheduler += 1;
                } else {
                    tally.busy_worker += 1;
                }
            }
            _ => tally.wrong.push(format!(
                "{what}: {status} (retry-after: {retry_after}): {}",
                String::from_utf8_lossy(&body)
            )),
        }
    }
    tally
}

/// `connections` clients at once, each sending [`PER_CONNECTION`]
/// requests over `targets`.
async fn flood(node: &Binary, targets: &[String], connections: usize) -> Tally {
    let tasks: Vec<_> = (0..connections)
        .map(|k| actix_rt::spawn(connection(node.base_url(), targets.to_vec(), k)))
        .collect();
    let mut tally = Tally::default();
    for t in tasks {
        tally.add(t.await.expect("a client task"));
    }
    tally
}

/// The peak resident memory of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc is readable");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// A node flooded by `connections` clients at one hot process, then over
/// [`PROCESSES`] processes; its peak RSS (KiB) before and after the
/// floods, and the answers.
async fn run(connections: usize) -> (u64, u64, Tally, Tally) {
    let node = Binary::start_with(&LIMITS);
    let hot = vec![register(&node, "hot").await];
    let idle = peak_rss_kib(node.pid());
    let one = flood(&node, &hot, connections).await;
    let mut many = Vec::with_capacity(PROCESSES);
    for i in 0..PROCESSES {
        many.push(register(&node, &format!("many-{i}")).await);
    }
    let spread = flood(&node, &many, connections).await;
    let peak = peak_rss_kib(node.pid());
    assert_eq!(
        node.stop(),
        Some(0),
        "the node stops cleanly after the flood"
    );
    (idle, peak, one, spread)
}

#[actix_rt::test]
async fn every_request_of_a_flood_is_answered_and_peak_memory_stays_bounded() {
    let mut busy = 0;
    let mut peaks = Vec::new();
    for connections in [128, 256] {
        let (idle, peak, one, spread) = run(connections).await;
        for (name, tally) in [("one hot process", &one), ("many processes", &spread)] {
            eprintln!(
                "{connections} connections, {name}: {} ok, busy {} node / {} scheduler / {} worker; peak RSS {} MiB ({} MiB before)",
                tally.ok,
                tally.busy_node,
                tally.busy_scheduler,
                tally.busy_worker,
                peak / 1024,
                idle / 1024
            );
            assert!(
                tally.wrong.is_empty(),
                "{connections} connections, {name}: {} wrong answers, first: {:?}",
                tally.wrong.len(),
                tally.wrong.first()
            );
            let sent = u64::try_from(connections * PER_CONNECTION).expect("small");
            assert_eq!(tally.answered(), sent, "{name}: every request answered");
            assert!(tally.ok > 0, "{name}: some requests got through");
            busy += tally.busy();
        }
        assert!(
            (peak - idle) / 1024 < MAX_GROWTH_MIB,
            "{connections} connections: the flood grew peak RSS by {} MiB",
            (peak - idle) / 1024
        );
        assert!(
            peak / 1024 < MAX_PEAK_MIB,
            "{connections} connections: peak RSS {} MiB ≥ {MAX_PEAK_MIB} MiB",
            peak / 1024
        );
        peaks.push(peak);
    }
    assert!(
        busy > 0,
        "the floods reached a limit (some answers were busy)"
    );
    // Twice the flood, not twice the memory: at most half as much again.
    assert!(
        peaks[1] * 2 < peaks[0] * 3,
        "peak RSS {} KiB with twice the flood of {} KiB",
        peaks[1],
        peaks[0]
    );
}
