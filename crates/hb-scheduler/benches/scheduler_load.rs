//! Scheduler benches that need a process of their own (issue 5, point
//! 10): in-process, no HTTP, a real sled store in a temporary directory,
//! one actix `System` with the `Scheduler` started inside it, exactly as
//! the actor harness assembles it.
//!
//! ```text
//! cargo bench -p hb-scheduler --bench scheduler_load [-- SCENARIO...]
//! ```
//!
//! Throughput and latency under load are measured by `hb bench` (docs/cli.md):
//! over HTTP against a node, or with `hb bench --in-process` against a
//! scheduler in its own process (the scheduler-only figures these
//! scenarios used to give), with the same crypto baseline, CPU time by
//! thread role and open-loop pacing.
//!
//! The bench's global allocator is jemalloc, as in the `hb` binary
//! (docs/PERFORMANCE.md, "Allocators"), wrapped by a counter that counts
//! only while a scenario measures.
//!
//! Scenarios (default: all three, run in this order):
//!
//! - `memory`: RSS growth and live heap per idle scheduler server, for
//!   `SCHEDBENCH_IDLE_ACTORS` (100,000) fresh processes. Runs first, while
//!   the allocator holds no memory freed by other scenarios.
//! - `startup`: open store + start scheduler + schedule one message on an
//!   existing process, for a store holding `SCHEDBENCH_STORE_ASSIGNMENTS`
//!   (1,000,000) assignments over `SCHEDBENCH_STORE_PROCESSES` (10,000)
//!   processes. The store is built once and cached under
//!   `$TMPDIR/hb-schedbench/` keyed by size (`SCHEDBENCH_FRESH_STORE=1`
//!   rebuilds it).
//! - `allocs`: allocations and bytes allocated per assignment, every
//!   thread of the process counted (clients, verify pool, servers, writer,
//!   sled): `SCHEDBENCH_ALLOC_MESSAGES` (20,000) signed messages, signed
//!   before counting, scheduled in local_confirmation by 64 closed-loop
//!   clients over 1 and over 1,000 processes.
//!
//! Every measured scenario is repeated `SCHEDBENCH_REPEAT` (3) times; the
//! tables give the best and the median, and the load average at the time.

#[path = "support/page_cache.rs"]
mod page_cache;
use page_cache::evict_page_cache;
use std::alloc::{GlobalAlloc, Layout};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use hb_message::{Id, Message, NodeKey, Value};
use hb_scheduler::{
    AssignmentDraft, ChainTip, ManualClock, ScheduleRequest, Scheduler, SchedulerBuilder,
    SchedulerConfig, SchedulerMetrics, Sequencer, ServerCore, ServerHandle,
};
use hb_store::{
    AssignmentRecord, Batch, GroupCommit, MessageCache, SchedulerCache, SledStore, Store,
};

// ---------------------------------------------------------------------------
// A counting allocator over jemalloc (the `hb` binary's), switched on only
// while a scenario counts.

struct Counting;

/// The allocator every call is forwarded to.
static INNER: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
/// Allocation calls (`alloc`, `alloc_zeroed`, `realloc`) while counting.
static TOTAL_ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes those calls asked for (a `realloc` counts its new size).
static TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);

static TRACK: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_ALLOCS: AtomicI64 = AtomicI64::new(0);
/// Net live bytes in allocations of 4 KiB and more (tables, buffers).
static LARGE_BYTES: AtomicI64 = AtomicI64::new(0);
/// Net live allocations by size, in 8-byte classes; the last class is
/// everything of 4 KiB and more.
const CLASSES: usize = 513;
static BY_SIZE: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];

fn note(size: usize, sign: i64) {
    if sign > 0 {
        TOTAL_ALLOCS.fetch_add(1, Ordering::Relaxed);
        TOTAL_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
    LIVE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
    LIVE_ALLOCS.fetch_add(sign, Ordering::Relaxed);
    BY_SIZE[size.div_ceil(8).min(CLASSES - 1)].fetch_add(sign, Ordering::Relaxed);
    if size >= 4096 {
        LARGE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to jemalloc; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = INNER.alloc(layout);
        if !p.is_null() && TRACK.load(Ordering::Relaxed) {
            note(layout.size(), 1);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if TRACK.load(Ordering::Relaxed) {
            note(layout.size(), -1);
        }
        INNER.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = INNER.alloc_zeroed(layout);
        if !p.is_null() && TRACK.load(Ordering::Relaxed) {
            note(layout.size(), 1);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = INNER.realloc(ptr, layout, new_size);
        if !p.is_null() && TRACK.load(Ordering::Relaxed) {
            note(layout.size(), -1);
            note(new_size, 1);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

// ---------------------------------------------------------------------------
// Settings.

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

struct Opts {
    scenarios: Vec<String>,
    repeat: usize,
    store_assignments: usize,
    store_processes: usize,
    idle_actors: usize,
    alloc_messages: usize,
}

impl Opts {
    fn from_env() -> Opts {
        const ALL: [&str; 3] = ["memory", "startup", "allocs"];
        let asked: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        for a in &asked {
            assert!(
                ALL.contains(&a.as_str()),
                "unknown scenario {a:?}; scenarios: {ALL:?}"
            );
        }
        let scenarios = ALL
            .iter()
            .filter(|s| asked.is_empty() || asked.iter().any(|a| a == *s))
            .map(|s| s.to_string())
            .collect();
        Opts {
            scenarios,
            repeat: env_usize("SCHEDBENCH_REPEAT", 3).max(1),
            store_assignments: env_usize("SCHEDBENCH_STORE_ASSIGNMENTS", 1_000_000),
            store_processes: env_usize("SCHEDBENCH_STORE_PROCESSES", 10_000).max(1),
            idle_actors: env_usize("SCHEDBENCH_IDLE_ACTORS", 100_000).max(1),
            alloc_messages: env_usize("SCHEDBENCH_ALLOC_MESSAGES", 20_000).max(64),
        }
    }

    fn wants(&self, s: &str) -> bool {
        self.scenarios.iter().any(|x| x == s)
    }
}

// ---------------------------------------------------------------------------
// Small helpers.

/// The load average, and the share of time (last 10 s) in which some task
/// waited for a core or for I/O (`/proc/pressure`): how much other work
/// shares the machine.
fn loadavg() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into());
    let pressure = |what: &str| {
        std::fs::read_to_string(format!("/proc/pressure/{what}"))
            .ok()
            .and_then(|s| {
                let some = s.lines().next()?.split_whitespace().nth(1)?.to_string();
                Some(format!(
                    ", {what} pressure {}%",
                    some.trim_start_matches("avg10=")
                ))
            })
            .unwrap_or_default()
    };
    format!("{load}{}{}", pressure("cpu"), pressure("io"))
}

/// Resident set size in bytes (`/proc/self/statm`, second field, 4 KiB pages).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse().ok()))
        .map_or(0, |pages: u64| pages * 4096)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    s[s.len() / 2]
}

fn least(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::min)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The node key of every scheduler in this bench.
fn node_key() -> NodeKey {
    NodeKey::from_seed(&[42; 32])
}

fn client_key(n: usize) -> NodeKey {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
    NodeKey::from_seed(&seed)
}

/// A scheduler graph on a store, assembled as the actor harness does.
struct Graph {
    writer: Arc<GroupCommit>,
    metrics: Arc<SchedulerMetrics>,
    scheduler: Scheduler,
}

impl Graph {
    fn start(store: Arc<dyn Store>, config: SchedulerConfig) -> Graph {
        Graph::start_with_clock(store, config, None)
    }

    fn start_with_clock(
        store: Arc<dyn Store>,
        config: SchedulerConfig,
        clock: Option<ManualClock>,
    ) -> Graph {
        let writer = Arc::new(GroupCommit::start(Arc::clone(&store)).expect("group commit starts"));
        let metrics = Arc::new(SchedulerMetrics::default());
        let mut builder = SchedulerBuilder::new(Arc::clone(&store), node_key())
            .config(config)
            .group_commit(Arc::clone(&writer))
            .metrics(Arc::clone(&metrics));
        if let Some(clock) = clock {
            builder = builder.clock(Arc::new(clock));
        }
        let scheduler = builder.start().expect("the scheduler starts");
        Graph {
            writer,
            metrics,
            scheduler,
        }
    }

    /// Stops the actors and the writer (waiting for queued writes).
    async fn stop(self) {
        self.scheduler.shutdown().await;
        self.writer.close();
    }
}

/// The sled store of a bench in `dir`.
fn open_store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir).expect("the bench store opens"))
}

/// A message to `pid` carrying `n`, signed by `client` if given.
fn message(client: Option<&NodeKey>, pid: &Id, n: i64) -> Message {
    let m = Message::new()
        .with("target", pid.to_human())
        .and_then(|m| m.with("action", "Ping"))
        .and_then(|m| m.with("n", Value::Int(n)))
        .expect("literal keys are valid");
    match client {
        Some(k) => m
            .commit(k, None)
            .expect("committing a fresh message succeeds"),
        None => m,
    }
}

fn request(message: Message) -> ScheduleRequest {
    ScheduleRequest {
        message,
        ..ScheduleRequest::default()
    }
}

/// Runs `f(i)` for `i in 0..n` on both cores, results in order.
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(2, |t| t.get());
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let f = &f;
                s.spawn(move || (start..(start + chunk).min(n)).map(f).collect::<Vec<T>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a bench worker panicked"))
            .collect()
    })
}

// ---------------------------------------------------------------------------
// Scenario 1: memory per idle scheduler server.

async fn memory(opts: &Opts) {
    println!("\n## memory per idle scheduler server");
    let n = opts.idle_actors;
    let warmup = 2_000.min(n);
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A manual clock: no server goes idle until the measurement is taken;
    // then moving it retires them all, and what that frees is the servers'
    // own memory (the store keeps the definitions they wrote).
    let clock = ManualClock::new(1_000_000);
    let config = SchedulerConfig {
        max_idle_ms: 1_000,
        ..SchedulerConfig::default()
    };
    let graph = Graph::start_with_clock(open_store(dir.path()), config, Some(clock.clone()));
    // Slot 0 is the definition: a server starts by registering one
    // (unsigned, so the figure is the server's, not verification's).
    let node = node_key().address().to_string();
    let def_of = move |i: usize| {
        Message::new()
            .with("type", "Process")
            .and_then(|m| m.with("scheduler", node.as_str()))
            .and_then(|m| m.with("nonce", i as i64))
            .expect("literal keys are valid")
    };
    // Starts servers for `range` in waves, making sure each one runs (its
    // registration is answered), and keeps no handle.
    let start_servers = |range: std::ops::Range<usize>| {
        let scheduler = graph.scheduler.clone();
        let def_of = def_of.clone();
        async move {
            let ids: Vec<usize> = range.collect();
            for wave in ids.chunks(1_000) {
                let started = join_all(wave.iter().map(|&i| {
                    let s = scheduler.clone();
                    let def = def_of(i);
                    async move { s.schedule(request(def)).await.map(|_| ()) }
                }))
                .await;
                for r in started {
                    r.expect("an idle server starts");
                }
            }
        }
    };
    // Warm up: the blocking pool's threads, the registry's first growth,
    // the arbiters' first allocations.
    start_servers(0..warmup).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss0 = rss_bytes();
    let (bytes0, allocs0, large0) = (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_ALLOCS.load(Ordering::Relaxed),
        LARGE_BYTES.load(Ordering::Relaxed),
    );
    let classes0: Vec<i64> = BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    TRACK.store(true, Ordering::Relaxed);
    let t = Instant::now();
    start_servers(warmup..warmup + n).await;
    let took = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    TRACK.store(false, Ordering::Relaxed);
    let rss1 = rss_bytes();
    let live = graph.scheduler.processes().await.map_or(0, |p| p.len());
    let bytes = LIVE_BYTES.load(Ordering::Relaxed) - bytes0;
    let allocs = LIVE_ALLOCS.load(Ordering::Relaxed) - allocs0;
    let large = LARGE_BYTES.load(Ordering::Relaxed) - large0;
    let per = |x: f64| x / n as f64;
    println!("load average: {}", loadavg());
    println!(
        "{n} idle servers started in {:.2} s ({:.0}/s); {live} processes live",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    println!("| measurement | total | per server | target |");
    println!("|---|---|---|---|");
    let rss_per = per(rss1.saturating_sub(rss0) as f64);
    println!(
        "| RSS growth (/proc/self/statm) | {:.1} MiB | {:.0} B ({:.2} KiB) | < 4 KiB: **{}** |",
        (rss1.saturating_sub(rss0)) as f64 / (1 << 20) as f64,
        rss_per,
        rss_per / 1024.0,
        if rss_per < 4096.0 { "met" } else { "missed" }
    );
    println!(
        "| live heap (counting allocator) | {:.1} MiB | {:.0} B | – |",
        bytes as f64 / (1 << 20) as f64,
        per(bytes as f64)
    );
    println!(
        "| live allocations | {allocs} | {:.1} | – |",
        per(allocs as f64)
    );
    println!(
        "| of which in allocations >= 4 KiB (the registry's table) | {:.1} MiB | {:.0} B | – |",
        large as f64 / (1 << 20) as f64,
        per(large as f64)
    );
    println!("\nlive allocations per server by size class (net, >= 0.05 per server):");
    println!("| size class | allocations per server | bytes per server |");
    println!("|---|---|---|");
    let mut classes: Vec<(usize, i64)> = BY_SIZE
        .iter()
        .zip(&classes0)
        .enumerate()
        .map(|(i, (c, c0))| (i, c.load(Ordering::Relaxed) - c0))
        .filter(|(i, d)| *i < CLASSES - 1 && *d as f64 / n as f64 >= 0.05)
        .collect();
    classes.sort_by_key(|(i, d)| std::cmp::Reverse(*d * (*i as i64).max(1)));
    for (class, d) in classes {
        let label = format!("{}..={}", (class * 8).saturating_sub(7), class * 8);
        println!(
            "| {label} | {:.2} | {:.0} |",
            per(d as f64),
            per(d as f64) * (class * 8) as f64
        );
    }
    // Retire every server and count what that frees (frees are counted
    // while tracking, whenever their allocation was made).
    let live_before_retiring = LIVE_BYTES.load(Ordering::Relaxed);
    let classes_before: Vec<i64> = BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    TRACK.store(true, Ordering::Relaxed);
    clock.advance(1_000);
    let wait_from = Instant::now();
    let total = (warmup + n) as u64;
    while graph.metrics.ended.load(Ordering::Relaxed) < total
        && wait_from.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    TRACK.store(false, Ordering::Relaxed);
    let ended = graph.metrics.ended.load(Ordering::Relaxed);
    let freed = live_before_retiring - LIVE_BYTES.load(Ordering::Relaxed);
    let freed_per = freed as f64 / ended.max(1) as f64;
    println!(
        "\nretired and ended {ended} of {total} servers in {:.2} s; live heap freed: {:.1} MiB, \
         {freed_per:.0} B per server (the servers' own memory): < 4 KiB: **{}**",
        wait_from.elapsed().as_secs_f64(),
        freed as f64 / (1 << 20) as f64,
        if freed_per < 4096.0 && ended == total {
            "met"
        } else {
            "missed"
        }
    );
    let mut freed_classes: Vec<(usize, i64)> = BY_SIZE
        .iter()
        .zip(&classes_before)
        .enumerate()
        .map(|(i, (c, c0))| (i, c0 - c.load(Ordering::Relaxed)))
        .filter(|(i, d)| *i < CLASSES - 1 && *d as f64 / ended.max(1) as f64 >= 0.05)
        .collect();
    freed_classes.sort_by_key(|(i, d)| std::cmp::Reverse(*d * (*i as i64).max(1)));
    let freed_list: Vec<String> = freed_classes
        .iter()
        .map(|(class, d)| {
            format!(
                "{}..={} B × {:.2}",
                (class * 8).saturating_sub(7),
                class * 8,
                *d as f64 / ended.max(1) as f64
            )
        })
        .collect();
    println!("freed per server by size class: {}", freed_list.join(", "));
    println!(
        "\nsizes: ServerCore {} B, ServerHandle {} B, Sequencer {} B, Id {} B",
        std::mem::size_of::<ServerCore>(),
        std::mem::size_of::<ServerHandle>(),
        std::mem::size_of::<Sequencer>(),
        std::mem::size_of::<Id>(),
    );
    graph.stop().await;
}

// ---------------------------------------------------------------------------
// Scenario 2: time to the first assignment on a big store.

fn built_store(opts: &Opts) -> PathBuf {
    let (total, procs) = (
        opts.store_assignments.max(opts.store_processes),
        opts.store_processes,
    );
    let dir = std::env::temp_dir()
        .join("hb-schedbench")
        .join(format!("store-{total}x{procs}-v1"));
    let marker = dir.join("complete");
    let fresh = std::env::var("SCHEDBENCH_FRESH_STORE").is_ok_and(|v| v == "1");
    if marker.exists() && !fresh {
        println!("using the cached store {}", dir.display());
        return dir;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("the stale bench store is removed");
    }
    std::fs::create_dir_all(&dir).expect("the bench store's directory is created");
    let t = Instant::now();
    let store = open_store(&dir);
    let node = node_key();
    let per_process = total / procs;
    let extra = total % procs;
    const PROCS_PER_BATCH: usize = 50;
    let mut staged = 0usize;
    for first in (0..procs).step_by(PROCS_PER_BATCH) {
        let range: Vec<usize> = (first..(first + PROCS_PER_BATCH).min(procs)).collect();
        // Build the batches on both cores, apply them on this thread.
        let batches = parallel(range.len(), |k| {
            let p = range[k];
            let slots = per_process + usize::from(p < extra);
            let mut batch = Batch::new();
            let definition = Message::new()
                .with("type", "Process")
                .and_then(|m| m.with("device", "process@1.0"))
                .and_then(|m| m.with("scheduler", node.address()))
                .and_then(|m| m.with("nonce", p as i64))
                .expect("literal keys are valid");
            let pid = definition.id_all().expect("an unsigned message has an ID");
            let mut seq = Sequencer::new(pid);
            for slot in 0..slots {
                let body = if slot == 0 {
                    definition.clone()
                } else {
                    message(None, &pid, slot as i64)
                };
                let draft: AssignmentDraft = seq
                    .assign(body, ChainTip::LOCAL, 1_700_000_000_000 + slot as i64)
                    .expect("a well-formed body is assigned");
                // Well-formed but unsigned: signing a million assignments
                // would only slow the build, and loading never verifies.
                let assignment = draft.to_message().expect("a draft converts");
                MessageCache::stage(&mut batch, &draft.body).expect("the body stages");
                let record = AssignmentRecord {
                    pid,
                    slot: slot as u64,
                    hash_chain: draft.chain.to_vec(),
                    assignment_id: assignment.id_all().expect("an unsigned message has an ID"),
                    assignment,
                };
                SchedulerCache::stage_assignment(&mut batch, &record).expect("the record stages");
            }
            (slots, batch)
        });
        for (slots, batch) in batches {
            store.apply(batch).expect("the bench store takes the batch");
            staged += slots;
        }
        if first % 1_000 == 0 && first > 0 {
            println!(
                "  built {staged} assignments in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    store.flush().expect("the bench store flushes");
    drop(store);
    std::fs::write(&marker, format!("{staged}\n")).expect("the marker is written");
    println!(
        "built {staged} assignments over {procs} processes in {:.1} s at {}",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    dir
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Times of one start: open, start, first schedule, second process.
#[derive(Default)]
struct StartTimes {
    open: Vec<f64>,
    start: Vec<f64>,
    first: Vec<f64>,
    total: Vec<f64>,
    second: Vec<f64>,
}

async fn startup(opts: &Opts) {
    println!("\n## time to the first assignment served");
    let dir = built_store(opts);
    let procs = opts.store_processes;
    println!(
        "store: {} assignments over {procs} processes, {:.0} MiB on disk; load average {}",
        opts.store_assignments.max(procs),
        dir_size(&dir) as f64 / (1 << 20) as f64,
        loadavg()
    );
    let node = node_key();
    let client = client_key(0);
    // Processes as the build made them.
    let pid_of = |p: usize| {
        Message::new()
            .with("type", "Process")
            .and_then(|m| m.with("device", "process@1.0"))
            .and_then(|m| m.with("scheduler", node.address()))
            .and_then(|m| m.with("nonce", p as i64))
            .and_then(|m| m.id_all())
            .expect("literal keys are valid")
    };
    let mut cold = StartTimes::default();
    let mut warm = StartTimes::default();
    let mut n = 0usize;
    for round in 0..opts.repeat {
        for is_cold in [true, false] {
            if is_cold && !evict_page_cache(&dir) {
                println!("  (dd is missing: no cold-cache rounds)");
                continue;
            }
            // A different process each time, so each first call starts a
            // server that was never loaded (and reads its head from disk).
            n += 1;
            let p1 = (n * 7919) % procs;
            let p2 = (n * 7919 + procs / 2) % procs;
            let m1 = message(Some(&client), &pid_of(p1), -(n as i64));
            let m2 = message(Some(&client), &pid_of(p2), -(n as i64));
            // sled releases its file lock a moment after the last handle is
            // dropped (its I/O threads finish first): a `Locked` attempt is
            // retried and not counted.
            let (t0, store) = loop {
                let t0 = Instant::now();
                match SledStore::open(&dir) {
                    Ok(s) => break (t0, Arc::new(s) as Arc<dyn Store>),
                    Err(hb_store::StoreError::Locked { .. }) => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => panic!("the bench store opens: {e}"),
                }
            };
            let t1 = Instant::now();
            let graph = Graph::start(store, SchedulerConfig::default());
            let t2 = Instant::now();
            let a = graph
                .scheduler
                .schedule(request(m1))
                .await
                .expect("the first message is scheduled");
            let t3 = Instant::now();
            let b = graph
                .scheduler
                .schedule(request(m2))
                .await
                .expect("the second message is scheduled");
            let t4 = Instant::now();
            assert!(a.slot > 0 && b.slot > 0, "existing processes resume");
            let times = if is_cold { &mut cold } else { &mut warm };
            times.open.push(ms(t1 - t0));
            times.start.push(ms(t2 - t1));
            times.first.push(ms(t3 - t2));
            times.total.push(ms(t3 - t0));
            times.second.push(ms(t4 - t3));
            println!(
                "  round {round}, {} page cache: open {:.1} ms, start {:.2} ms, first schedule \
                 {:.2} ms (slot {}), total {:.1} ms; next process {:.2} ms",
                if is_cold { "cold" } else { "warm" },
                ms(t1 - t0),
                ms(t2 - t1),
                ms(t3 - t2),
                a.slot,
                ms(t3 - t0),
                ms(t4 - t3)
            );
            graph.stop().await;
        }
    }
    println!("\n| measurement | cold page cache: best / median | warm: best / median | target |");
    println!("|---|---|---|---|");
    let row = |what: &str, c: &[f64], w: &[f64]| {
        println!(
            "| {what} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | – |",
            least(c),
            median(c),
            least(w),
            median(w)
        );
    };
    row("open the sled store", &cold.open, &warm.open);
    row("start group commit + scheduler", &cold.start, &warm.start);
    row(
        "schedule one signed message on an existing process (load + verify + sign + flush)",
        &cold.first,
        &warm.first,
    );
    let worst = median(&cold.total).max(median(&warm.total));
    println!(
        "| **start to first assignment served** | {:.1} / {:.1} ms | {:.1} / {:.1} ms | < 1 s: **{}** |",
        least(&cold.total),
        median(&cold.total),
        least(&warm.total),
        median(&warm.total),
        if worst < 1000.0 { "met" } else { "missed" }
    );
    row(
        "a second process's first message",
        &cold.second,
        &warm.second,
    );
}

// ---------------------------------------------------------------------------
// Scenario 3: allocations per assignment.

/// Signed messages scheduled in local_confirmation by 64 closed-loop
/// clients; every allocation of the process is counted while they run.
async fn allocs(opts: &Opts) {
    println!("\n## allocations per signed assignment (local_confirmation, 64 clients)");
    println!("load average: {}", loadavg());
    println!(
        "| processes | assignments | allocations per assignment | bytes allocated per assignment | \
         net live allocations per assignment after | rounds |"
    );
    println!("|---|---|---|---|---|---|");
    let clients = 64usize;
    let n = opts.alloc_messages;
    for processes in [1usize, 1_000] {
        let mut counts = Vec::new();
        let mut bytes = Vec::new();
        let mut live = Vec::new();
        for _ in 0..opts.repeat {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let graph = Graph::start(open_store(dir.path()), SchedulerConfig::default());
            let node = node_key().address().to_string();
            let mut pids = Vec::with_capacity(processes);
            for p in 0..processes {
                let def = Message::new()
                    .with("type", "Process")
                    .and_then(|m| m.with("scheduler", node.as_str()))
                    .and_then(|m| m.with("nonce", p as i64))
                    .expect("literal keys are valid");
                pids.push(def.id_all().expect("an unsigned message has an ID"));
                graph
                    .scheduler
                    .schedule(request(def))
                    .await
                    .expect("the definition is scheduled");
            }
            let keys: Vec<NodeKey> = (0..clients).map(client_key).collect();
            // Warm-up (not counted), then the counted messages: all signed
            // before anything is counted.
            let warmup = 1_000usize;
            let signed = parallel(warmup + n, |i| {
                message(Some(&keys[i % clients]), &pids[i % processes], i as i64)
            });
            let (warm, counted) = signed.split_at(warmup);
            let run = |batch: Vec<Message>| {
                let scheduler = graph.scheduler.clone();
                async move {
                    let mut per_client: Vec<Vec<Message>> = vec![Vec::new(); clients];
                    for (i, m) in batch.into_iter().enumerate() {
                        per_client[i % clients].push(m);
                    }
                    let done = join_all(per_client.into_iter().map(|queue| {
                        let s = scheduler.clone();
                        async move {
                            for m in queue {
                                s.schedule(request(m))
                                    .await
                                    .expect("the message is scheduled");
                            }
                        }
                    }))
                    .await;
                    done.len()
                }
            };
            run(warm.to_vec()).await;
            let counted = counted.to_vec();
            let live0 = LIVE_ALLOCS.load(Ordering::Relaxed);
            let (a0, b0) = (
                TOTAL_ALLOCS.load(Ordering::Relaxed),
                TOTAL_BYTES.load(Ordering::Relaxed),
            );
            TRACK.store(true, Ordering::Relaxed);
            run(counted).await;
            TRACK.store(false, Ordering::Relaxed);
            let per = |x: f64| x / n as f64;
            counts.push(per((TOTAL_ALLOCS.load(Ordering::Relaxed) - a0) as f64));
            bytes.push(per((TOTAL_BYTES.load(Ordering::Relaxed) - b0) as f64));
            live.push(per((LIVE_ALLOCS.load(Ordering::Relaxed) - live0) as f64));
            graph.stop().await;
        }
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {processes} | {n} | {:.0} (median; rounds {}) | {:.0} (median; rounds {}) | {:.1} | {} |",
            median(&counts),
            fmt(&counts),
            median(&bytes),
            fmt(&bytes),
            median(&live),
            opts.repeat
        );
    }
}

// ---------------------------------------------------------------------------

fn main() {
    let opts = Opts::from_env();
    println!(
        "hb-scheduler load bench: scenarios {:?}; {} cores; load average {}",
        opts.scenarios,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    let system = actix::System::new();
    system.block_on(async {
        if opts.wants("memory") {
            memory(&opts).await;
        }
        if opts.wants("startup") {
            startup(&opts).await;
        }
        if opts.wants("allocs") {
            allocs(&opts).await;
        }
    });
    println!("\nload average at the end: {}", loadavg());
}
