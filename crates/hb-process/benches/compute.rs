//! Load bench for hb-process: slots computed per second with
//! `test-device@1.0` (issue 9's target: ≥ 200,000/s on one core) and with
//! the Lua counter of examples/lua (target ≥ 20,000/s), and dry-runs per
//! second on the final state (one after another).
//!
//! ```text
//! cargo bench -p hb-process --bench compute
//! ```
//!
//! In-process, one actix `System`, a real sled store in a temporary
//! directory. For each size in `HBPROC_SLOTS` (default `500,2000`), that
//! many unsigned messages are scheduled on one process first (not timed);
//! then the timed part computes the process from init to its last slot,
//! once with a snapshot at every slot (`process_cache_frequency` 1, the
//! default) and once with a snapshot at slot 0 only, each on a fresh
//! process layer and store. Every slot's state is written to the process
//! cache before the answer (SPEC §6.6). `test-device@1.0` appends each
//! slot to `seen` (SPEC §6.9), so its state grows by one entry per slot;
//! comparing the two sizes shows how the cost per slot grows with it.

use std::sync::Arc;
use std::time::Instant;

use hb_message::{Message, NodeKey};
use hb_process::{ProcessBuilder, ProcessConfig};
use hb_scheduler::{ScheduleRequest, SchedulerBuilder};
use hb_store::{SledStore, Store};

/// The process under test.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `test-device@1.0`, `add` messages.
    Test,
    /// `lua@5.3a` running examples/lua/counter.lua, `Inc` messages.
    LuaCounter,
}

const COUNTER: &str = include_str!("../../../examples/lua/counter.lua");

/// Computes `slots` slots from init; returns (slots/s, CPU µs per slot,
/// dry-runs/s on the final state).
async fn run(kind: Kind, slots: usize, snapshot_every: u64) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("the store opens"));
    let key = NodeKey::from_seed(&[9; 32]);
    let scheduler = SchedulerBuilder::new(Arc::clone(&store), key.clone())
        .start()
        .expect("the scheduler starts");
    let def = Message::new()
        .with("type", "Process")
        .and_then(|m| m.with("scheduler", key.address()))
        .and_then(|m| match kind {
            Kind::Test => m.with("execution-device", "test-device@1.0"),
            Kind::LuaCounter => m
                .with("execution-device", "lua@5.3a")
                .and_then(|m| m.with("script", COUNTER)),
        })
        .expect("literal keys");
    let pid = def.id_all().expect("an ID");
    let request = |message| ScheduleRequest {
        message,
        ..Default::default()
    };
    scheduler.schedule(request(def)).await.expect("registered");
    // Concurrently, in waves (the order of `add`s does not matter).
    let all: Vec<usize> = (1..=slots).collect();
    for wave in all.chunks(256) {
        let calls = wave.iter().map(|n| {
            let m = Message::new()
                .with("target", pid.to_human())
                .and_then(|m| match kind {
                    Kind::Test => m.with("add", *n as i64),
                    Kind::LuaCounter => m.with("action", "Inc"),
                })
                .expect("literal keys");
            scheduler.schedule(request(m))
        });
        for r in futures::future::join_all(calls).await {
            r.expect("scheduled");
        }
    }
    let processes = ProcessBuilder::new(scheduler.clone())
        .config(ProcessConfig {
            snapshot_every,
            ..ProcessConfig::default()
        })
        .start()
        .expect("the process layer starts");
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let done = processes
        .compute(pid, slots as u64)
        .await
        .expect("computed");
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    match kind {
        Kind::Test => assert_eq!(done.state.get_int("count"), Some(slots as i64 + 1)),
        Kind::LuaCounter => assert_eq!(
            done.state
                .get_path("state/count")
                .and_then(hb_message::Value::to_int_lenient),
            Some(slots as i64)
        ),
    }
    // Dry-runs on the latest state, one after another.
    let probe = Message::new()
        .with("add", 1)
        .and_then(|m| m.with("action", "Inc"))
        .expect("literal keys");
    let dry_runs = 300;
    let t = Instant::now();
    for _ in 0..dry_runs {
        processes
            .dry_run(pid, probe.clone(), Default::default())
            .await
            .expect("dry-run");
    }
    let dry_rate = dry_runs as f64 / t.elapsed().as_secs_f64();
    processes.shutdown().await;
    scheduler.shutdown().await;
    let n = (slots + 1) as f64;
    (n / wall, cpu / n * 1e6, dry_rate)
}

/// Process CPU time (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` (for tooling): nothing to list
    }
    let sizes: Vec<usize> = std::env::var("HBPROC_SLOTS")
        .unwrap_or_else(|_| "500,2000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "hb-process compute bench: test-device@1.0; load average {}",
        load.trim()
    );
    println!(
        "| process | slots | snapshots | slots/s | CPU µs per slot | slot target | dry-runs/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    let system = actix::System::new();
    system.block_on(async {
        for (kind, name, target) in [
            (Kind::Test, "test-device@1.0", 200_000.0),
            (Kind::LuaCounter, "lua counter", 20_000.0),
        ] {
            for slots in &sizes {
                for (label, every) in [("every slot", 1u64), ("slot 0 only", 0)] {
                    let (rate, cpu_us, dry) = run(kind, *slots, every).await;
                    println!(
                        "| {name} | {slots} | {label} | {rate:.0} | {cpu_us:.1} | ≥ {target:.0}/s: **{}** | {dry:.0} |",
                        if rate >= target { "met" } else { "missed" }
                    );
                }
            }
        }
    });
}
