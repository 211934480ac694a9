//! `hb bench`: the load generator (docs/cli.md). A thin shell over
//! [`hb_node::bench`]: parses the options, loads the client key, stops
//! early on SIGINT/SIGTERM, shows progress on stderr, prints the report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hb_node::bench::{self, BenchError, InProcessStore, Settings, Signing, Target, Workload};
use hb_node::client::DEFAULT_NODE_URL;

use crate::client::{KeyArgs, Progress};

/// `hb bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The node's URL (default: `HB_NODE`, else the local default);
    /// several, comma-separated, spread the connections and the spawned
    /// processes round-robin over a cluster's nodes.
    #[arg(long, value_name = "URL", env = "HB_NODE", default_value = DEFAULT_NODE_URL)]
    node: String,
    /// Start a scheduler in this process on a temporary sled store instead
    /// (scheduler-only figures, no HTTP; the schedule workload only).
    #[arg(long)]
    in_process: bool,
    /// The temporary store of `--in-process`: `sled` or `fjall`.
    #[arg(long, value_name = "STORE", default_value = "sled", requires = "in_process", value_parser = parse_in_process_store)]
    in_process_store: InProcessStore,
    /// Concurrent workers, one connection each.
    #[arg(long, value_name = "N", default_value_t = 64)]
    connections: usize,
    /// Lua counter processes the load is spread over.
    #[arg(long, value_name = "M", default_value_t = 1)]
    processes: usize,
    /// What to send: schedule, compute (of an already computed slot),
    /// dry-run or mixed.
    #[arg(long, value_name = "WORKLOAD", default_value = "schedule", value_parser = parse_workload)]
    workload: Workload,
    /// Send unsigned messages (default: signed by the client key).
    #[arg(long)]
    unsigned: bool,
    /// Requests per second (open loop, latency from each request's due
    /// time); without it, closed loop.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    duration: f64,
    /// Seconds of load before the measurement starts.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_secs)]
    warmup: f64,
    /// Generator threads sharing the connections.
    #[arg(long, value_name = "T", default_value_t = 1)]
    threads: usize,
    /// One request's deadline, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_secs)]
    timeout: f64,
    /// Append one JSON line per acknowledged event to FILE.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Read the processes from FILE (one ID a line) if it exists; spawn
    /// the missing ones and write them to it.
    #[arg(long, value_name = "FILE")]
    pids: Option<PathBuf>,
    /// The node's OS process ID: report its CPU time by thread role too.
    #[arg(long, value_name = "PID")]
    node_pid: Option<u32>,
    /// Sign this many schedule messages before the load starts, so the
    /// generator's share of a shared machine is sending only (more are
    /// signed as they are sent).
    #[arg(long, value_name = "N", default_value_t = 0)]
    presign: usize,
    /// How signed messages are committed: `ed25519` (hb's own) or `ans104`
    /// (type-2 ANS-104 items, as ao's ed25519 clients sign).
    #[arg(long, value_name = "DEVICE", default_value = "ed25519", value_parser = parse_signing)]
    commitment: Signing,
    #[command(flatten)]
    key: KeyArgs,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Report progress on stderr even when it is no terminal.
    #[arg(long)]
    progress: bool,
}

fn parse_in_process_store(s: &str) -> Result<InProcessStore, String> {
    InProcessStore::parse(s).map_err(|e| e.to_string())
}

fn parse_signing(s: &str) -> Result<Signing, String> {
    Signing::parse(s).map_err(|e| e.to_string())
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    Workload::parse(s).map_err(|e| e.to_string())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1e9).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds")),
    }
}

/// Runs `hb bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    match bench(args) {
        Ok(code) => code,
        Err(e) => {
            let text = e.to_string();
            eprintln!(
                "hb: {}: {}",
                e.code(),
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}

fn bench(args: BenchArgs) -> Result<ExitCode, BenchError> {
    let settings = Settings {
        target: if args.in_process {
            Target::InProcess(args.in_process_store)
        } else {
            Target::Node(args.node.clone())
        },
        connections: args.connections,
        processes: args.processes,
        workload: args.workload,
        signed: !args.unsigned,
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
        threads: args.threads,
        timeout: Duration::from_secs_f64(args.timeout),
        record: args.record.clone(),
        pids: args.pids.clone(),
        node_pid: args.node_pid,
        presign: args.presign,
        signing: args.commitment,
    };
    settings.validate()?;
    let key = args.key.load().map_err(|f| BenchError::File {
        option: "--key-file",
        path: args.key.key_file.clone(),
        detail: f.detail().to_string(),
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(Arc::clone(&stop));
    let planned = (settings.warmup + settings.duration).as_secs().max(1);
    let progress = Arc::new(Progress::with_unit("bench", planned, "s", args.progress));
    let shown = Arc::clone(&progress);
    let on_progress: bench::OnProgress = Arc::new(move |p: bench::Progress| {
        shown.set_with(
            p.elapsed.as_secs(),
            &format!("{} ok, {} errors", p.ok, p.errors),
        );
    });
    let report = bench::run(settings, key, stop, Some(on_progress));
    if let Ok(progress) = Arc::try_unwrap(progress) {
        progress.finish();
    }
    let report = report?;
    let out = if args.json {
        format!("{}\n", report.to_json())
    } else {
        report.to_text()
    };
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Sets `stop` on SIGINT or SIGTERM: the run ends early and still reports.
fn stop_on_signals(stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            actix_rt::System::new().block_on(async move {
                #[cfg(unix)]
                {
                    use actix_rt::signal::unix::{signal, SignalKind};
                    if let Ok(mut term) = signal(SignalKind::terminate()) {
                        tokio::select! {
                            _ = term.recv() => {}
                            _ = actix_rt::signal::ctrl_c() => {}
                        }
                    } else {
                        let _ = actix_rt::signal::ctrl_c().await;
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = actix_rt::signal::ctrl_c().await;
                }
                stop.store(true, Ordering::Relaxed);
            })
        });
    if spawned.is_err() {
        eprintln!("hb: bench: signals cannot stop this run early (no thread for them)");
    }
}
