//! `hb bench`, the load generator: `connections` workers (one connection
//! each) send schedule, compute or dry-run requests for `processes` Lua
//! counter processes, closed loop or open loop at a target rate, for a
//! duration after a warm-up, against a node over HTTP or against a
//! scheduler started in-process on a temporary sled store (scheduler-only
//! figures). The outcome is a [`Report`]: throughput, latency percentiles
//! from a [`Histogram`] and errors by kind; with a record file, one JSON
//! line per acknowledged event ([`record`]).
//!
//! The plan ([`Settings`], [`Pacing`]), the histogram and the report are
//! plain values; [`run`] drives the workers (the `hb bench` subcommand is
//! a thin shell over it). Connection failures are counted as `connect`
//! errors and the worker carries on, so a node restarted under the load
//! does not end the run.

pub mod cpu;
mod driver;
pub mod histogram;
pub mod pacing;
pub mod record;
pub mod report;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_message::{IdSelector, Message, MessageError, NodeKey};

pub use histogram::Histogram;
pub use pacing::Pacing;
pub use record::{Event, Recorder};
pub use report::{CpuUse, CryptoBaseline, Report, Tally};

use crate::client::{ClientError, DEFAULT_NODE_URL};

/// The counter every bench process runs (examples/lua/counter.lua): `Inc`
/// adds one, `Get` prints the count.
pub const COUNTER_LUA: &str = include_str!("../../../../examples/lua/counter.lua");

/// Where the load goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A node over HTTP at this URL.
    Node(String),
    /// A scheduler started in this process on a temporary store of this
    /// embedded backend (no HTTP, no process layer: the `schedule`
    /// workload only).
    InProcess(InProcessStore),
}

/// The temporary store of an in-process bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InProcessStore {
    /// `SledStore`, the node's default.
    #[default]
    Sled,
    /// `FjallStore`.
    Fjall,
}

impl InProcessStore {
    /// Parses `sled` or `fjall`.
    pub fn parse(s: &str) -> Result<InProcessStore, BenchError> {
        match s {
            "sled" => Ok(InProcessStore::Sled),
            "fjall" => Ok(InProcessStore::Fjall),
            other => Err(BenchError::invalid(
                "--in-process-store",
                format!("unknown store {other:?} (sled or fjall)"),
            )),
        }
    }
}

/// What the workers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Schedule `Inc` messages.
    Schedule,
    /// Compute an already computed slot of each process (a cached
    /// answer).
    Compute,
    /// Dry-run `Get` on each process's latest state.
    DryRun,
    /// Each worker in turn: schedule, schedule, compute of the last slot
    /// it scheduled on that process, dry-run.
    Mixed,
}

impl Workload {
    /// Parses `schedule`, `compute`, `dry-run` or `mixed`.
    pub fn parse(s: &str) -> Result<Workload, BenchError> {
        Ok(match s {
            "schedule" => Workload::Schedule,
            "compute" => Workload::Compute,
            "dry-run" => Workload::DryRun,
            "mixed" => Workload::Mixed,
            other => {
                return Err(BenchError::invalid(
                    "--workload",
                    format!("unknown workload {other:?}; one of schedule, compute, dry-run, mixed"),
                ))
            }
        })
    }

    /// The workload's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Workload::Schedule => "schedule",
            Workload::Compute => "compute",
            Workload::DryRun => "dry-run",
            Workload::Mixed => "mixed",
        }
    }

    /// The operation of a worker's `k`-th request (worker `w`).
    pub fn operation(self, worker: usize, k: u64) -> Operation {
        match self {
            Workload::Schedule => Operation::Schedule,
            Workload::Compute => Operation::Compute,
            Workload::DryRun => Operation::DryRun,
            Workload::Mixed => match (k + worker as u64) % 4 {
                0 | 1 => Operation::Schedule,
                2 => Operation::Compute,
                _ => Operation::DryRun,
            },
        }
    }
}

/// How the generator signs its messages (`--commitment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signing {
    /// hb's own `ed25519@1.0` commitment.
    #[default]
    Ed25519,
    /// An `ans104@1.0` commitment: each message is a type-2 ANS-104 item
    /// (SPEC §10.2), as ao's ed25519 clients sign.
    Ans104,
}

impl Signing {
    /// Parses `ed25519` or `ans104`.
    pub fn parse(s: &str) -> Result<Signing, BenchError> {
        match s {
            "ed25519" => Ok(Signing::Ed25519),
            "ans104" => Ok(Signing::Ans104),
            other => Err(BenchError::invalid(
                "--commitment",
                format!("unknown commitment {other:?}; one of ed25519, ans104"),
            )),
        }
    }

    /// The commitment device's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Signing::Ed25519 => "ed25519@1.0",
            Signing::Ans104 => "ans104@1.0",
        }
    }

    /// The message-model device.
    pub fn device(self) -> hb_message::CommitmentDevice {
        match self {
            Signing::Ed25519 => hb_message::CommitmentDevice::Ed25519,
            Signing::Ans104 => hb_message::CommitmentDevice::Ans104,
        }
    }
}

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// `POST /~scheduler@1.0/schedule`.
    Schedule,
    /// `GET /<pid>~process@1.0/compute?slot=N`.
    Compute,
    /// `POST /<pid>~process@1.0/dry-run`.
    DryRun,
}

impl Operation {
    /// `schedule`, `compute` or `dry-run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Schedule => "schedule",
            Operation::Compute => "compute",
            Operation::DryRun => "dry-run",
        }
    }
}

/// Everything a run is told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the load goes.
    pub target: Target,
    /// Concurrent workers, one connection each.
    pub connections: usize,
    /// Processes the load is spread over (request `i` goes to process
    /// `i mod processes`).
    pub processes: usize,
    /// What is sent.
    pub workload: Workload,
    /// Messages signed by the client key (else unsigned).
    pub signed: bool,
    /// Requests/s across all workers (open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// How long the measured window lasts.
    pub duration: Duration,
    /// How long the load runs before the window opens.
    pub warmup: Duration,
    /// Generator threads, each with its own runtime and its share of the
    /// connections (in-process: always 1).
    pub threads: usize,
    /// One request's deadline.
    pub timeout: Duration,
    /// Where to append one JSON line per acknowledged event.
    pub record: Option<PathBuf>,
    /// A file of process IDs (one a line): the processes are read from it
    /// when it exists, and any missing ones are spawned and written to it.
    pub pids: Option<PathBuf>,
    /// The node's OS process ID, to report its CPU time by thread role.
    pub node_pid: Option<u32>,
    /// Schedule messages signed before the load starts (schedule workload):
    /// the generator then spends the window sending, not signing, so on a
    /// shared machine more of the cores go to the node. Messages beyond
    /// these are signed as they are sent.
    pub presign: usize,
    /// How signed messages are committed.
    pub signing: Signing,
}

/// The most messages `--presign` signs (about 1 KiB of memory each).
pub const MAX_PRESIGN: usize = 2_000_000;

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            target: Target::Node(DEFAULT_NODE_URL.to_string()),
            connections: 64,
            processes: 1,
            workload: Workload::Schedule,
            signed: true,
            rate: None,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            threads: 1,
            timeout: Duration::from_secs(30),
            record: None,
            pids: None,
            node_pid: None,
            presign: 0,
            signing: Signing::Ed25519,
        }
    }
}

impl Settings {
    /// Checks the settings fit together; the first problem is the error.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.connections == 0 {
            return Err(BenchError::invalid("--connections", "must be at least 1"));
        }
        if self.processes == 0 {
            return Err(BenchError::invalid("--processes", "must be at least 1"));
        }
        if self.threads == 0 {
            return Err(BenchError::invalid("--threads", "must be at least 1"));
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(BenchError::invalid("--rate", "must be a positive number"));
            }
        }
        if self.duration.is_zero() {
            return Err(BenchError::invalid("--duration", "must be more than 0"));
        }
        if self.timeout.is_zero() {
            return Err(BenchError::invalid("--timeout", "must be more than 0"));
        }
        if matches!(self.target, Target::InProcess(_)) {
            if self.workload != Workload::Schedule {
                return Err(BenchError::invalid(
                    "--in-process",
                    "runs the schedule workload only (there is no process layer in it)",
                ));
            }
            if self.pids.is_some() {
                return Err(BenchError::invalid(
                    "--pids",
                    "cannot be used with --in-process (its store is temporary)",
                ));
            }
        }
        if self.presign > 0 && (self.workload != Workload::Schedule || !self.signed) {
            return Err(BenchError::invalid(
                "--presign",
                "applies to the signed schedule workload only",
            ));
        }
        if self.signing != Signing::Ed25519 && !self.signed {
            return Err(BenchError::invalid(
                "--commitment",
                "applies to signed messages only (drop --unsigned)",
            ));
        }
        if self.presign > MAX_PRESIGN {
            return Err(BenchError::invalid(
                "--presign",
                format!("at most {MAX_PRESIGN} messages"),
            ));
        }
        Ok(())
    }

    /// The target as the report names it.
    pub fn target_name(&self) -> String {
        match &self.target {
            Target::Node(url) => url.clone(),
            Target::InProcess(InProcessStore::Sled) => "in-process".into(),
            Target::InProcess(InProcessStore::Fjall) => "in-process (fjall)".into(),
        }
    }

    /// The settings as the report's `config`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target_name(),
            "workload": self.workload.as_str(),
            "connections": self.connections,
            "processes": self.processes,
            "signed": self.signed,
            "loop": if self.rate.is_some() { "open" } else { "closed" },
            "rate": self.rate,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "threads": self.threads,
            "timeout_s": self.timeout.as_secs_f64(),
            "presign": self.presign,
            "commitment": self.signing.as_str(),
        })
    }
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A setting is out of range or does not fit with another.
    #[error("{option}: {reason}")]
    Invalid {
        /// The option (`--rate`, …).
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{option} {}: {detail}", path.display())]
    File {
        /// The option naming it.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The setup (address, spawning, preparing slots) failed.
    #[error("setting up: {0}")]
    Setup(#[from] ClientError),
    /// A message could not be built or signed.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The in-process scheduler could not start or refused the setup.
    #[error("in-process scheduler: {0}")]
    InProcess(String),
    /// A generator thread failed.
    #[error("a generator thread failed: {0}")]
    Thread(String),
}

impl BenchError {
    fn invalid(option: &'static str, reason: impl Into<String>) -> BenchError {
        BenchError::Invalid {
            option,
            reason: reason.into(),
        }
    }

    /// A kebab-case code: `invalid-option`, `unreadable-file`, the
    /// client's code of a setup failure, `invalid-message`,
    /// `in-process`, `internal`.
    pub fn code(&self) -> String {
        use hb_message::ErrorCode;
        match self {
            BenchError::Invalid { .. } => "invalid-option".into(),
            BenchError::File { .. } => "unreadable-file".into(),
            BenchError::Setup(e) => e.code().to_string(),
            BenchError::Message(e) => e.code().to_string(),
            BenchError::InProcess(_) => "in-process".into(),
            BenchError::Thread(_) => "internal".into(),
        }
    }

    /// Whether the error is bad usage (the settings or a file).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            BenchError::Invalid { .. }
                | BenchError::File { .. }
                | BenchError::Setup(ClientError::InvalidUrl { .. })
        )
    }
}

/// Progress of a run, handed to the caller's callback about once a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Since the load started (warm-up included).
    pub elapsed: Duration,
    /// Warm-up plus duration.
    pub planned: Duration,
    /// Successful answers so far (warm-up included).
    pub ok: u64,
    /// Errors so far (warm-up included).
    pub errors: u64,
}

/// A progress callback.
pub type OnProgress = Arc<dyn Fn(Progress) + Send + Sync>;

/// Runs the load described by `settings`, signing with `key`, and reports.
/// Blocks the calling thread (it starts its own runtimes). `stop` ends the
/// run early (the report covers the window up to then); `on_progress` is
/// called about once a second.
pub fn run(
    settings: Settings,
    key: NodeKey,
    stop: Arc<AtomicBool>,
    on_progress: Option<OnProgress>,
) -> Result<Report, BenchError> {
    settings.validate()?;
    let span = tracing::info_span!(
        "bench",
        target = %settings.target_name(),
        workload = settings.workload.as_str()
    );
    let _entered = span.enter();
    let baseline = crypto_baseline(&key)?;
    let mut report = driver::run(settings, key, stop, on_progress)?;
    report.baseline = Some(baseline);
    Ok(report)
}

/// Measures one signature and one check on this thread.
pub fn crypto_baseline(key: &NodeKey) -> Result<CryptoBaseline, BenchError> {
    const N: u32 = 300;
    let t = Instant::now();
    let mut signed = Vec::with_capacity(N as usize);
    for i in 0..N {
        signed.push(
            Message::new()
                .with("action", "Inc")?
                .with("n", i64::from(i))?
                .commit(key, None)?,
        );
    }
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(N);
    let t = Instant::now();
    for m in &signed {
        // The outcome is not the point; only its cost is.
        let _ = m.verify(&IdSelector::All)?;
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(N);
    Ok(CryptoBaseline {
        sign_us,
        verify_us,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_parse_and_mixed_interleaves_every_operation() {
        for w in ["schedule", "compute", "dry-run", "mixed"] {
            assert_eq!(Workload::parse(w).map(Workload::as_str).ok(), Some(w));
        }
        assert!(Workload::parse("read").is_err());
        let ops: Vec<Operation> = (0..8).map(|k| Workload::Mixed.operation(0, k)).collect();
        assert_eq!(ops.iter().filter(|o| **o == Operation::Schedule).count(), 4);
        assert_eq!(ops.iter().filter(|o| **o == Operation::Compute).count(), 2);
        assert_eq!(ops.iter().filter(|o| **o == Operation::DryRun).count(), 2);
        // Workers start at different points of the cycle.
        assert_ne!(
            Workload::Mixed.operation(0, 0),
            Workload::Mixed.operation(2, 0)
        );
    }

    #[test]
    fn settings_that_do_not_fit_are_refused_by_option() {
        let ok = Settings::default();
        assert!(ok.validate().is_ok());
        let cases = [
            (
                Settings {
                    connections: 0,
                    ..ok.clone()
                },
                "--connections",
            ),
            (
                Settings {
                    processes: 0,
                    ..ok.clone()
                },
                "--processes",
            ),
            (
                Settings {
                    rate: Some(0.0),
                    ..ok.clone()
                },
                "--rate",
            ),
            (
                Settings {
                    rate: Some(f64::NAN),
                    ..ok.clone()
                },
                "--rate",
            ),
            (
                Settings {
                    duration: Duration::ZERO,
                    ..ok.clone()
                },
                "--duration",
            ),
            (
                Settings {
                    target: Target::InProcess(InProcessStore::Sled),
                    workload: Workload::Compute,
                    ..ok.clone()
                },
                "--in-process",
            ),
            (
                Settings {
                    target: Target::InProcess(InProcessStore::Sled),
                    pids: Some("p".into()),
                    ..ok.clone()
                },
                "--pids",
            ),
        ];
        for (s, option) in cases {
            match s.validate() {
                Err(e @ BenchError::Invalid { .. }) => {
                    assert!(e.to_string().starts_with(option), "{e}");
                    assert!(e.is_usage());
                }
                other => panic!("{option}: {other:?}"),
            }
        }
    }

    #[test]
    fn commitments_parse_and_ans104_needs_signed_messages() {
        for (name, device) in [("ed25519", "ed25519@1.0"), ("ans104", "ans104@1.0")] {
            assert_eq!(Signing::parse(name).map(Signing::as_str).ok(), Some(device));
        }
        assert!(Signing::parse("rsa").is_err());
        let unsigned = Settings {
            signing: Signing::Ans104,
            signed: false,
            ..Settings::default()
        };
        assert!(matches!(
            unsigned.validate(),
            Err(BenchError::Invalid {
                option: "--commitment",
                ..
            })
        ));
    }

    #[test]
    fn the_baseline_measures_both_costs() {
        let b = crypto_baseline(&NodeKey::from_seed(&[3; 32])).expect("measured");
        assert!(b.sign_us > 0.0 && b.verify_us > 0.0 && b.cores >= 1);
        assert!(b.signed_schedule_ceiling() > 0.0);
    }
}
