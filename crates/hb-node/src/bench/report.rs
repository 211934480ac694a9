//! What a run counted, and the report made of it: throughput, latency
//! percentiles and errors by kind, overall and per operation, as text or
//! as one JSON document.

use std::collections::BTreeMap;
use std::time::Duration;

use super::histogram::Histogram;
use super::{Operation, Settings};
use crate::client::ClientError;

/// The kind an error is counted under: `busy` (503 `busy`), `unavailable`
/// (503 `unavailable` or `not-owner`: the node is stopping, or in a
/// cluster the process's lease is changing hands), `connect` (the node
/// could not be reached or the connection failed), `timeout`, `http-5xx`
/// (any other 5xx), `refused:<code>` (a 4xx with the node's
/// code), `unexpected` (an answer this client cannot read).
pub fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Unreachable { .. } => "connect".into(),
        ClientError::Timeout { .. } => "timeout".into(),
        ClientError::Node { code, status, .. } => kind_of(*status, code),
        ClientError::UnexpectedAnswer { status, .. } if *status >= 500 => "http-5xx".into(),
        other => other.code().to_string(),
    }
    .replace("unexpected-answer", "unexpected")
}

/// The kind of a refusal with `status` and `code`.
pub fn kind_of(status: u16, code: &str) -> String {
    if code == "busy" {
        "busy".into()
    } else if status == 503 && matches!(code, "unavailable" | "not-owner") {
        "unavailable".into()
    } else if status >= 500 {
        "http-5xx".into()
    } else {
        format!("refused:{code}")
    }
}

/// The answers and errors of one operation.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Latencies of the successful answers.
    pub latency: Histogram,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Successful answers.
    pub fn ok(&self) -> u64 {
        self.latency.count()
    }

    /// Errors of every kind.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Tally) {
        self.latency.merge(&other.latency);
        for (k, n) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += n;
        }
    }

    /// Counts one error.
    pub fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// Counts by operation.
#[derive(Debug, Clone, Default)]
pub struct Tallies(pub BTreeMap<Operation, Tally>);

impl Tallies {
    /// The tally of `op`.
    pub fn of(&mut self, op: Operation) -> &mut Tally {
        self.0.entry(op).or_default()
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Tallies) {
        for (op, t) in &other.0 {
            self.of(*op).merge(t);
        }
    }

    /// Every operation together.
    pub fn total(&self) -> Tally {
        let mut all = Tally::default();
        for t in self.0.values() {
            all.merge(t);
        }
        all
    }
}

/// CPU time by thread role of one process during the measured window.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuUse {
    /// `generator` or `node`.
    pub whose: String,
    /// CPU seconds of the whole process.
    pub seconds: f64,
    /// CPU seconds by thread role, largest first.
    pub roles: Vec<(String, f64)>,
    /// Seconds its threads were runnable but waited for a core.
    pub waited: f64,
}

/// The single-thread cost of the crypto of one request, measured before
/// the run: what the cores could do with nothing but signatures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CryptoBaseline {
    /// One ed25519 message signature (the generator's, and the node's for
    /// each assignment), µs.
    pub sign_us: f64,
    /// One signature check (the node's, of each signed message), µs.
    pub verify_us: f64,
    /// Cores available.
    pub cores: usize,
}

impl CryptoBaseline {
    /// Signed schedule requests/s all cores could do if signing the
    /// message, checking it and signing its assignment were all the work.
    pub fn signed_schedule_ceiling(&self) -> f64 {
        self.cores as f64 * 1e6 / (2.0 * self.sign_us + self.verify_us)
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was run.
    pub settings: Settings,
    /// The measured window.
    pub window: Duration,
    /// Counts by operation (requests due or started in the window).
    pub tallies: Tallies,
    /// Events written to the record file (or that would have been).
    pub events: BTreeMap<&'static str, u64>,
    /// CPU use during the window, when it could be read.
    pub cpu: Vec<CpuUse>,
    /// The crypto baseline, when measured.
    pub baseline: Option<CryptoBaseline>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn latency_json(h: &Histogram) -> serde_json::Value {
    serde_json::json!({
        "p50": ms(h.quantile(0.50)),
        "p90": ms(h.quantile(0.90)),
        "p99": ms(h.quantile(0.99)),
        "max": ms(h.max()),
        "mean": ms(h.mean()),
    })
}

fn tally_json(t: &Tally, window: Duration) -> serde_json::Value {
    serde_json::json!({
        "requests": t.ok() + t.error_total(),
        "ok": t.ok(),
        "error_total": t.error_total(),
        "errors": t.errors,
        "throughput": per_second(t.ok(), window),
        "latency_ms": latency_json(&t.latency),
    })
}

fn per_second(n: u64, window: Duration) -> f64 {
    let s = window.as_secs_f64();
    if s <= 0.0 {
        return 0.0;
    }
    (n as f64 / s * 10.0).round() / 10.0
}

impl Report {
    /// The whole report as one JSON document: `config`, `duration_s`,
    /// `requests`, `ok`, `error_total`, `errors` (by kind), `throughput`
    /// (successful answers/s), `latency_ms` (`p50`, `p90`, `p99`, `max`,
    /// `mean`), `operations` (the same per operation), `events`, `cpu`,
    /// `crypto_baseline`.
    pub fn to_json(&self) -> serde_json::Value {
        let total = self.tallies.total();
        let mut doc = tally_json(&total, self.window);
        let operations: serde_json::Map<String, serde_json::Value> = self
            .tallies
            .0
            .iter()
            .map(|(op, t)| (op.as_str().to_string(), tally_json(t, self.window)))
            .collect();
        let cpu: Vec<serde_json::Value> = self
            .cpu
            .iter()
            .map(|c| {
                let per = |s: f64| {
                    if total.ok() == 0 {
                        0.0
                    } else {
                        (s * 1e6 / total.ok() as f64 * 10.0).round() / 10.0
                    }
                };
                let roles: serde_json::Map<String, serde_json::Value> = c
                    .roles
                    .iter()
                    .map(|(r, s)| (r.clone(), serde_json::json!(per(*s))))
                    .collect();
                serde_json::json!({
                    "process": c.whose,
                    "seconds": (c.seconds * 1e3).round() / 1e3,
                    "us_per_ok": per(c.seconds),
                    "us_per_ok_by_role": roles,
                    "waited_for_a_core_s": (c.waited * 1e3).round() / 1e3,
                })
            })
            .collect();
        if let serde_json::Value::Object(map) = &mut doc {
            map.insert("config".into(), self.settings.to_json());
            map.insert(
                "duration_s".into(),
                serde_json::json!((self.window.as_secs_f64() * 1e3).round() / 1e3),
            );
            map.insert("operations".into(), operations.into());
            map.insert("events".into(), serde_json::json!(self.events));
            map.insert("cpu".into(), cpu.into());
            map.insert(
                "crypto_baseline".into(),
                match self.baseline {
                    Some(b) => serde_json::json!({
                        "sign_us": (b.sign_us * 10.0).round() / 10.0,
                        "verify_us": (b.verify_us * 10.0).round() / 10.0,
                        "cores": b.cores,
                        "signed_schedule_ceiling": b.signed_schedule_ceiling().round(),
                    }),
                    None => serde_json::Value::Null,
                },
            );
        }
        doc
    }

    /// The report as lines of text.
    pub fn to_text(&self) -> String {
        let total = self.tallies.total();
        let s = &self.settings;
        let mut out = format!(
            "hb bench: {} against {}, {} connection(s), {} process(es), {}, {}\n",
            s.workload.as_str(),
            s.target_name(),
            s.connections,
            s.processes,
            if s.signed { "signed" } else { "unsigned" },
            match s.rate {
                Some(r) => format!("open loop at {r} requests/s"),
                None => "closed loop".into(),
            },
        );
        let line = |name: &str, t: &Tally| {
            format!(
                "{name:<9} {:>9} ok {:>10.1}/s  p50 {:>8.3} ms  p90 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  errors {}\n",
                t.ok(),
                per_second(t.ok(), self.window),
                ms(t.latency.quantile(0.5)),
                ms(t.latency.quantile(0.9)),
                ms(t.latency.quantile(0.99)),
                ms(t.latency.max()),
                if t.errors.is_empty() {
                    "0".to_string()
                } else {
                    t.errors
                        .iter()
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )
        };
        out.push_str(&format!(
            "measured {:.2} s after a {:.2} s warm-up\n",
            self.window.as_secs_f64(),
            s.warmup.as_secs_f64()
        ));
        if self.tallies.0.len() > 1 {
            for (op, t) in &self.tallies.0 {
                out.push_str(&line(op.as_str(), t));
            }
        }
        out.push_str(&line("total", &total));
        for c in &self.cpu {
            let per = |x: f64| x * 1e6 / total.ok().max(1) as f64;
            out.push_str(&format!(
                "cpu {}: {:.0} µs per answer ({}); waited for a core {:.2} s\n",
                c.whose,
                per(c.seconds),
                c.roles
                    .iter()
                    .map(|(r, x)| format!("{r} {:.0}", per(*x)))
                    .collect::<Vec<_>>()
                    .join(", "),
                c.waited
            ));
        }
        if let Some(b) = self.baseline {
            out.push_str(&format!(
                "crypto baseline: sign {:.1} µs, verify {:.1} µs; {} cores could do {:.0} signed schedules/s on signatures alone\n",
                b.sign_us,
                b.verify_us,
                b.cores,
                b.signed_schedule_ceiling()
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Target, Workload};

    fn settings() -> Settings {
        Settings {
            target: Target::Node("http://127.0.0.1:1".into()),
            workload: Workload::Mixed,
            ..Settings::default()
        }
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let node = |status, code: &str| ClientError::Node {
            status,
            code: code.into(),
            detail: String::new(),
        };
        let cases = [
            (node(503, "busy"), "busy"),
            (node(503, "unavailable"), "unavailable"),
            (node(503, "not-owner"), "unavailable"),
            (node(503, "store-unavailable"), "http-5xx"),
            (node(504, "timeout"), "http-5xx"),
            (node(404, "unknown-process"), "refused:unknown-process"),
            (
                ClientError::Unreachable {
                    url: "u".into(),
                    detail: "refused".into(),
                },
                "connect",
            ),
            (
                ClientError::Timeout {
                    url: "u".into(),
                    seconds: 1,
                },
                "timeout",
            ),
            (
                ClientError::UnexpectedAnswer {
                    url: "u".into(),
                    status: 502,
                    detail: String::new(),
                },
                "http-5xx",
            ),
            (
                ClientError::UnexpectedAnswer {
                    url: "u".into(),
                    status: 200,
                    detail: String::new(),
                },
                "unexpected",
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(error_kind(&e), kind, "{e:?}");
        }
    }

    #[test]
    fn the_json_report_adds_up() {
        let mut tallies = Tallies::default();
        for i in 0..90u64 {
            tallies
                .of(Operation::Schedule)
                .latency
                .record(Duration::from_micros(1_000 + i));
        }
        for _ in 0..10 {
            tallies
                .of(Operation::Compute)
                .latency
                .record(Duration::from_millis(2));
        }
        tallies.of(Operation::Schedule).error("busy".into());
        tallies.of(Operation::DryRun).error("busy".into());
        tallies.of(Operation::DryRun).error("connect".into());
        let report = Report {
            settings: settings(),
            window: Duration::from_secs(2),
            tallies,
            events: BTreeMap::from([("scheduled", 90)]),
            cpu: Vec::new(),
            baseline: None,
        };
        let j = report.to_json();
        assert_eq!(j["ok"], 100);
        assert_eq!(j["error_total"], 3);
        assert_eq!(j["requests"], 103);
        assert_eq!(j["errors"]["busy"], 2);
        assert_eq!(j["errors"]["connect"], 1);
        assert_eq!(j["throughput"], 50.0);
        assert_eq!(j["operations"]["schedule"]["ok"], 90);
        assert_eq!(j["operations"]["compute"]["ok"], 10);
        assert_eq!(j["operations"]["dry-run"]["requests"], 2);
        assert_eq!(j["latency_ms"]["max"], 2.0);
        assert!(j["latency_ms"]["p50"].as_f64() <= j["latency_ms"]["p99"].as_f64());
        assert_eq!(j["config"]["workload"], "mixed");
        assert_eq!(j["config"]["loop"], "closed");
        assert_eq!(j["events"]["scheduled"], 90);
        let text = report.to_text();
        assert!(text.contains("busy 2, connect 1"), "{text}");
        assert!(text.contains("closed loop"), "{text}");
    }
}
