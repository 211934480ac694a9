//! Load bench for hb-process: slots computed per second with
//! `test-device@1.0` (issue 9's target: ≥ 200,000/s on one core) and with
//! the Lua counter of examples/lua (target ≥ 20,000/s), and dry-runs per
//! second on the final state (one after another); the Lua ledger of
//! examples/lua too (slots target ≥ 20,000/s, dry-runs ≥ 10,000/s). With
//! `HBPROC_IDLE=<n>` it measures memory per idle worker instead (target
//! < 16 KiB without a Lua VM). With `HBPROC_COLD=<n>`
//! it measures instead the cold compute of slot n after a restart, with a
//! snapshot every 1,000 slots against one at slot 0 only.
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

use std::alloc::{GlobalAlloc, Layout, System as SystemAlloc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hb_message::{Message, NodeKey};
use hb_process::{ProcessBuilder, ProcessConfig};
use hb_scheduler::{ScheduleRequest, SchedulerBuilder};
use hb_store::{SledStore, Store};

/// Live heap bytes, counted by the global allocator below.
static LIVE: AtomicI64 = AtomicI64::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a plain atomic and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = SystemAlloc.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        SystemAlloc.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = SystemAlloc.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The process under test.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `test-device@1.0`, `add` messages.
    Test,
    /// `lua@5.3a` running examples/lua/counter.lua, `Inc` messages.
    LuaCounter,
    /// `lua@5.3a` running examples/lua/ledger.lua, signed `Transfer`s of 1
    /// token from the client to one of 50 accounts.
    LuaLedger,
}

const LEDGER: &str = include_str!("../../../examples/lua/ledger.lua");

const COUNTER: &str = include_str!("../../../examples/lua/counter.lua");

/// Computes `slots` slots from init; returns (slots/s, CPU µs per slot,
/// dry-runs/s on the final state).
/// A node's parts for one scenario: a sled store in a temporary directory
/// (kept alive by the returned `TempDir`), a scheduler, and one process of
/// `kind` registered with `slots` messages scheduled on it (concurrently,
/// in waves: the order does not matter to these processes).
struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    scheduler: hb_scheduler::Scheduler,
    pid: hb_message::Id,
}

async fn setup(kind: Kind, slots: usize) -> Setup {
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
            Kind::LuaLedger => m
                .with("execution-device", "lua@5.3a")
                .and_then(|m| m.with("script", LEDGER))
                .and_then(|m| {
                    m.with(
                        "holders",
                        hb_message::Value::List(vec![client().address().into()]),
                    )
                })
                .and_then(|m| m.with("each", 1_000_000_000)),
        })
        .expect("literal keys");
    let pid = def.id_all().expect("an ID");
    let request = |message| ScheduleRequest {
        message,
        ..Default::default()
    };
    scheduler.schedule(request(def)).await.expect("registered");
    let all: Vec<usize> = (1..=slots).collect();
    for wave in all.chunks(256) {
        let calls = wave.iter().map(|n| {
            let m = Message::new()
                .with("target", pid.to_human())
                .and_then(|m| match kind {
                    Kind::Test => m.with("add", *n as i64),
                    Kind::LuaCounter => m.with("action", "Inc"),
                    Kind::LuaLedger => m
                        .with("action", "Transfer")
                        .and_then(|m| m.with("recipient", format!("account-{}", n % 50)))
                        .and_then(|m| m.with("quantity", "1"))
                        .and_then(|m| m.with("n", *n as i64))
                        .and_then(|m| m.commit(&client(), None)),
                })
                .expect("literal keys");
            scheduler.schedule(request(m))
        });
        for r in futures::future::join_all(calls).await {
            r.expect("scheduled");
        }
    }
    Setup {
        _dir: dir,
        store,
        scheduler,
        pid,
    }
}

async fn run(kind: Kind, slots: usize, snapshot_every: u64) -> (f64, f64, f64) {
    let Setup {
        _dir,
        scheduler,
        pid,
        ..
    } = setup(kind, slots).await;
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
        Kind::LuaLedger => assert_eq!(
            done.state
                .get_path("state/transfers")
                .and_then(hb_message::Value::to_int_lenient),
            Some(slots as i64)
        ),
    }
    // Dry-runs on the latest state, one after another.
    let probe = match kind {
        Kind::LuaLedger => Message::new()
            .with("action", "Balance")
            .and_then(|m| m.with("account", "account-7")),
        _ => Message::new()
            .with("add", 1)
            .and_then(|m| m.with("action", "Inc")),
    }
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

fn client() -> NodeKey {
    NodeKey::from_seed(&[3; 32])
}

/// Memory per idle worker (issue 9): `n` `test-device@1.0` processes
/// computed to slot 0 (one worker each, idle afterwards); then the workers
/// retire on a manual clock, and the live heap that frees is theirs (the
/// store keeps what they wrote). Returns bytes per worker.
async fn idle_workers(n: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("the store opens"));
    let key = NodeKey::from_seed(&[9; 32]);
    let scheduler = SchedulerBuilder::new(Arc::clone(&store), key.clone())
        .start()
        .expect("the scheduler starts");
    let mut pids = Vec::new();
    let defs: Vec<Message> = (0..n)
        .map(|i| {
            Message::new()
                .with("type", "Process")
                .and_then(|m| m.with("scheduler", key.address()))
                .and_then(|m| m.with("execution-device", "test-device@1.0"))
                .and_then(|m| m.with("nonce", i as i64))
                .expect("literal keys")
        })
        .collect();
    for wave in defs.chunks(512) {
        let calls = wave.iter().map(|d| {
            scheduler.schedule(ScheduleRequest {
                message: d.clone(),
                ..Default::default()
            })
        });
        for r in futures::future::join_all(calls).await {
            pids.push(r.expect("registered").pid);
        }
    }
    let clock = hb_scheduler::ManualClock::new(1_000_000);
    let processes = ProcessBuilder::new(scheduler.clone())
        .config(ProcessConfig {
            worker_max_idle_ms: 1_000,
            ..ProcessConfig::default()
        })
        .clock(Arc::new(clock.clone()))
        .start()
        .expect("starts");
    for wave in pids.chunks(512) {
        for r in futures::future::join_all(wave.iter().map(|p| processes.compute(*p, 0))).await {
            r.expect("computed");
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = LIVE.load(Ordering::Relaxed);
    clock.advance(1_000);
    let t = Instant::now();
    while processes.metrics().ended.load(Ordering::Relaxed) < n as u64
        && t.elapsed().as_secs() < 120
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ended = processes.metrics().ended.load(Ordering::Relaxed);
    let freed = before - LIVE.load(Ordering::Relaxed);
    processes.shutdown().await;
    scheduler.shutdown().await;
    (freed as f64 / ended.max(1) as f64, ended)
}

/// Cold compute (issue 9): a node computed the Lua counter to slot
/// `n - 500` with a snapshot every `every` slots (0: slot 0 only) and
/// restarted; the time for a fresh process layer to compute slot `n`.
async fn cold(n: usize, every: u64) -> (f64, u64) {
    let Setup {
        _dir,
        store,
        scheduler,
        pid,
    } = setup(Kind::LuaCounter, n).await;
    let config = ProcessConfig {
        snapshot_every: every,
        ..ProcessConfig::default()
    };
    let before = n.saturating_sub(500) as u64;
    let warm = ProcessBuilder::new(scheduler.clone())
        .config(config.clone())
        .start()
        .expect("starts");
    warm.compute(pid, before).await.expect("computed");
    // Shutdown snapshots the live state: take it out again, so the cold
    // start finds only the snapshots taken while computing.
    warm.shutdown().await;
    if every == 0 || !before.is_multiple_of(every) {
        let cache = hb_store::ProcessCache::new(Arc::clone(&store));
        let record = cache
            .read_slot(&pid, before)
            .expect("read")
            .expect("stored");
        let mut bare = record.state.clone();
        bare.remove("snapshot");
        let mut batch = hb_store::Batch::new();
        hb_store::ProcessCache::stage_write(&mut batch, &pid, before, &bare, record.computed_at_ms)
            .expect("staged");
        store
            .delete(&hb_store::keys::proc_slot(&pid, before))
            .expect("deleted");
        cache.apply_write(&pid, before, batch).expect("rewritten");
    }
    let cold_layer = ProcessBuilder::new(scheduler.clone())
        .config(config)
        .start()
        .expect("starts");
    let t = Instant::now();
    let done = cold_layer.compute(pid, n as u64).await.expect("computed");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        done.state
            .get_path("state/count")
            .and_then(hb_message::Value::to_int_lenient),
        Some(n as i64)
    );
    let replayed = n as u64
        - hb_store::ProcessCache::new(Arc::clone(&store))
            .nearest_snapshot(&pid, before)
            .expect("read")
            .map_or(0, |r| r.slot);
    cold_layer.shutdown().await;
    scheduler.shutdown().await;
    (secs, replayed)
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
    println!("hb-process compute bench; load average {}", load.trim());
    let system = actix::System::new();
    if let Some(n) = std::env::var("HBPROC_IDLE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let (per, ended) = system.block_on(idle_workers(n));
        println!(
            "memory per idle worker: {per:.0} B of live heap freed per worker when {ended} of {n} idle workers retired (target < 16 KiB without a Lua VM: **{}**)",
            if per < 16.0 * 1024.0 && ended == n as u64 { "met" } else { "missed" }
        );
        return;
    }
    if let Some(n) = std::env::var("HBPROC_COLD")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        println!("\ncold compute of slot {n} of the Lua counter after a restart:");
        println!("| snapshots | slots replayed | seconds |");
        println!("|---|---|---|");
        system.block_on(async {
            for (label, every) in [("every 1,000 slots", 1_000u64), ("slot 0 only", 0)] {
                let (secs, replayed) = cold(n, every).await;
                println!("| {label} | {replayed} | {secs:.2} |");
            }
        });
        return;
    }
    println!(
        "| process | slots | snapshots | slots/s | CPU µs per slot | slot target | dry-runs/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    system.block_on(async {
        for (kind, name, target) in [
            (Kind::Test, "test-device@1.0", 200_000.0),
            (Kind::LuaCounter, "lua counter", 20_000.0),
            (Kind::LuaLedger, "lua ledger", 20_000.0),
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
