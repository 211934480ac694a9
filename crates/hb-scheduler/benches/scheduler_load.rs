//! Load generator for hb-scheduler (issue 5, point 10): in-process, no HTTP,
//! a real sled store in a temporary directory, one actix `System` with the
//! `Scheduler` started inside it, exactly as the actor harness assembles it.
//!
//! ```text
//! cargo bench -p hb-scheduler --bench scheduler_load [-- SCENARIO...]
//! ```
//!
//! Scenarios (default: all, run in this order):
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
//! - `throughput`: saturating closed-loop load from `SCHEDBENCH_CLIENTS` (64)
//!   clients, `SCHEDBENCH_MESSAGES` (60,000) messages per run, signed and
//!   unsigned, local_confirmation and aggressive, over 1 and
//!   `SCHEDBENCH_PROCESSES` (1,000) processes. Each round first measures the
//!   crypto-only ceiling of both cores (the baseline: verify + sign with no
//!   actors and no store); ratios are to it. Besides assignments/s, each run
//!   reports the process CPU time per assignment split by thread role (from
//!   `/proc/self/task/*/schedstat`), which holds up when other work shares
//!   the cores, and how long our threads waited for a core.
//!   `SCHEDBENCH_VARIANT=text` keeps the variants whose name contains it;
//!   `SCHEDBENCH_STORE=memory` swaps sled for the in-memory store (a
//!   diagnostic, not a figure against the target).
//! - `latency`: open-loop paced load at half the median saturating rate of
//!   the signed local_confirmation runs (or `SCHEDBENCH_RATE`), for
//!   `SCHEDBENCH_LATENCY_SECS` (5) seconds; p50/p99 of one schedule call.
//!
//! Every measured scenario is repeated `SCHEDBENCH_REPEAT` (3) times; the
//! tables give the best and the median, and the load average at the time.
//! `SCHEDBENCH_PERF_CTL=<fifo>` enables a `perf record -D -1 --control
//! fifo:<fifo>` only during the timed throughput sections.

use std::alloc::{GlobalAlloc, Layout, System as SystemAlloc};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use hb_message::{Id, IdSelector, Message, NodeKey, Value};
use hb_scheduler::{
    AssignmentDraft, ChainTip, ManualClock, ScheduleRequest, Scheduler, SchedulerBuilder,
    SchedulerConfig, SchedulerMetrics, SchedulingMode, Sequencer, ServerCore, ServerHandle,
};
use hb_store::{
    AssignmentRecord, Batch, GroupCommit, GroupCommitStats, MessageCache, SchedulerCache,
    SledStore, Store,
};

// ---------------------------------------------------------------------------
// A counting allocator, switched on only while the memory scenario counts.

struct Counting;

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
    LIVE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
    LIVE_ALLOCS.fetch_add(sign, Ordering::Relaxed);
    BY_SIZE[size.div_ceil(8).min(CLASSES - 1)].fetch_add(sign, Ordering::Relaxed);
    if size >= 4096 {
        LARGE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = SystemAlloc.alloc(layout);
        if !p.is_null() && TRACK.load(Ordering::Relaxed) {
            note(layout.size(), 1);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if TRACK.load(Ordering::Relaxed) {
            note(layout.size(), -1);
        }
        SystemAlloc.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = SystemAlloc.alloc_zeroed(layout);
        if !p.is_null() && TRACK.load(Ordering::Relaxed) {
            note(layout.size(), 1);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = SystemAlloc.realloc(ptr, layout, new_size);
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
    messages: usize,
    clients: usize,
    processes: usize,
    repeat: usize,
    latency_secs: usize,
    rate: usize,
    store_assignments: usize,
    store_processes: usize,
    idle_actors: usize,
}

impl Opts {
    fn from_env() -> Opts {
        const ALL: [&str; 4] = ["memory", "startup", "throughput", "latency"];
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
            messages: env_usize("SCHEDBENCH_MESSAGES", 60_000),
            clients: env_usize("SCHEDBENCH_CLIENTS", 64).max(1),
            processes: env_usize("SCHEDBENCH_PROCESSES", 1_000).max(1),
            repeat: env_usize("SCHEDBENCH_REPEAT", 3).max(1),
            latency_secs: env_usize("SCHEDBENCH_LATENCY_SECS", 5).max(1),
            rate: env_usize("SCHEDBENCH_RATE", 0),
            store_assignments: env_usize("SCHEDBENCH_STORE_ASSIGNMENTS", 1_000_000),
            store_processes: env_usize("SCHEDBENCH_STORE_PROCESSES", 10_000).max(1),
            idle_actors: env_usize("SCHEDBENCH_IDLE_ACTORS", 100_000).max(1),
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

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn least(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::min)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU time used so far: the whole process (`/proc/self/stat`, utime +
/// stime, 100 ticks/s; includes threads that have exited) and each live
/// thread (`/proc/self/task/*/schedstat`: ns on the CPU, ns runnable but
/// waiting for one).
struct CpuSnap {
    process_s: f64,
    /// tid → (role, on-CPU seconds, run-queue wait seconds).
    threads: std::collections::HashMap<u32, (String, f64, f64)>,
}

fn cpu_snapshot() -> CpuSnap {
    let process_s = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            // Fields 14 and 15 of stat(5); `rest` starts at field 3.
            let utime: f64 = rest.get(11)?.parse().ok()?;
            let stime: f64 = rest.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0);
    let pid = std::process::id();
    let mut threads = std::collections::HashMap::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.filter_map(Result::ok) {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let sched = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            let mut f = sched
                .split_whitespace()
                .map(|x| x.parse::<f64>().unwrap_or(0.0) / 1e9);
            let (run, wait) = (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0));
            threads.insert(tid, (thread_role(tid == pid, comm.trim()), run, wait));
        }
    }
    CpuSnap { process_s, threads }
}

/// Groups threads by what they do.
fn thread_role(main: bool, comm: &str) -> String {
    if main {
        return "main".into(); // clients, Scheduler::schedule, the registry
    }
    if comm.starts_with("actix-rt|system") {
        return "arbiters".into(); // the scheduler servers
    }
    comm.trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches('-')
        .to_string()
}

/// CPU used between two snapshots: process seconds, on-CPU seconds by
/// role (threads that exited meanwhile appear as "exited"), and the
/// run-queue wait of our threads (time other work held the cores).
fn cpu_delta(a: &CpuSnap, b: &CpuSnap) -> (f64, Vec<(String, f64)>, f64) {
    let mut by_role: std::collections::BTreeMap<String, f64> = Default::default();
    let mut wait = 0.0;
    for (tid, (role, run, w)) in &b.threads {
        let (run0, w0) = a.threads.get(tid).map_or((0.0, 0.0), |t| (t.1, t.2));
        *by_role.entry(role.clone()).or_default() += run - run0;
        wait += w - w0;
    }
    let process = b.process_s - a.process_s;
    let seen: f64 = by_role.values().sum();
    if process - seen > 0.02 {
        by_role.insert("exited".into(), process - seen);
    }
    let mut roles: Vec<(String, f64)> = by_role.into_iter().filter(|(_, s)| *s > 0.0).collect();
    roles.sort_by(|x, y| y.1.total_cmp(&x.1));
    (process.max(seen), roles, wait)
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

/// Profiling aid: with `SCHEDBENCH_PERF_CTL=<fifo>` the timed sections
/// write `enable`/`disable` to perf's control FIFO (`perf record -D -1
/// --control fifo:<fifo>`), so a profile holds nothing but them.
fn perf_ctl(command: &str) {
    if let Ok(fifo) = std::env::var("SCHEDBENCH_PERF_CTL") {
        if let Err(e) = std::fs::write(&fifo, format!("{command}\n")) {
            eprintln!("cannot write to {fifo}: {e}");
        }
    }
}

fn open_store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir).expect("the bench store opens"))
}

/// A signed process definition naming the bench node as its scheduler.
fn process_definition(client: &NodeKey, node: &str, nonce: i64) -> Message {
    Message::new()
        .with("type", "Process")
        .and_then(|m| m.with("device", "process@1.0"))
        .and_then(|m| m.with("scheduler", node))
        .and_then(|m| m.with("execution-device", "test-device@1.0"))
        .and_then(|m| m.with("nonce", nonce))
        .and_then(|m| m.commit(client, None))
        .expect("literal keys are valid")
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
// Scenario 5: memory per idle scheduler server.

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
// Scenario 4: time to the first assignment on a big store.

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

/// Drops the store's files from the page cache (`dd iflag=nocache
/// count=0` is `posix_fadvise(DONTNEED)` on the whole file; the files are
/// clean after the last flush), so the next open reads from disk. Returns
/// false if `dd` is not there.
fn evict_page_cache(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut ok = true;
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            ok &= evict_page_cache(&path);
        } else {
            ok &= std::process::Command::new("dd")
                .arg(format!("if={}", path.display()))
                .args(["iflag=nocache", "count=0", "status=none"])
                .status()
                .is_ok_and(|s| s.success());
        }
    }
    ok
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
// Scenarios 1–2: throughput; the crypto ceiling as the same-run baseline.

#[derive(Clone, Copy, PartialEq, Eq)]
struct Variant {
    signed: bool,
    processes: usize,
    mode: SchedulingMode,
}

impl Variant {
    fn name(&self) -> String {
        format!(
            "{} {}, {} process{}",
            self.mode,
            if self.signed { "signed" } else { "unsigned" },
            self.processes,
            if self.processes == 1 { "" } else { "es" }
        )
    }
}

/// The load of one variant, built before any timing.
struct Workload {
    definitions: Vec<Message>,
    /// Messages per client, in send order.
    per_client: Vec<Vec<Message>>,
}

fn workload(opts: &Opts, processes: usize, signed: bool) -> Workload {
    let node = node_key();
    let owner = client_key(1_000_000);
    let definitions: Vec<Message> = parallel(processes, |p| {
        process_definition(&owner, node.address(), p as i64)
    });
    let pids: Vec<Id> = definitions
        .iter()
        .map(|d| d.id_all().expect("a signed definition has an ID"))
        .collect();
    let clients: Vec<NodeKey> = (0..opts.clients).map(client_key).collect();
    let c = opts.clients;
    // Message g goes to process g % P and is sent by client g % C.
    let all = parallel(opts.messages, |g| {
        message(
            signed.then(|| &clients[g % c]),
            &pids[g % processes],
            g as i64,
        )
    });
    let mut per_client: Vec<Vec<Message>> = vec![Vec::new(); c];
    for (g, m) in all.into_iter().enumerate() {
        per_client[g % c].push(m);
    }
    Workload {
        definitions,
        per_client,
    }
}

struct RunResult {
    rate: f64,
    /// Process CPU per assignment, µs.
    cpu_us: f64,
    /// CPU per assignment by thread role, µs.
    roles: Vec<(String, f64)>,
    /// Run-queue wait of our threads per assignment, µs.
    wait_us: f64,
    elapsed: Duration,
    stats: GroupCommitStats,
    drain: Duration,
    errors: usize,
    first_error: Option<String>,
}

async fn registered(graph: &Graph, definitions: &[Message]) {
    for chunk in definitions.chunks(256) {
        let done = join_all(
            chunk
                .iter()
                .map(|d| graph.scheduler.schedule(request(d.clone()))),
        )
        .await;
        for r in done {
            r.expect("a process registers");
        }
    }
}

/// The store of a throughput run: sled, or with `SCHEDBENCH_STORE=memory`
/// the in-memory store (a diagnostic: what the actors and the crypto reach
/// without sled; not a figure against the target).
fn throughput_store(dir: &Path) -> Arc<dyn Store> {
    if std::env::var("SCHEDBENCH_STORE").is_ok_and(|s| s == "memory") {
        Arc::new(hb_store::MemoryStore::new())
    } else {
        open_store(dir)
    }
}

/// One saturating closed-loop run on a fresh store.
async fn throughput_run(variant: Variant, work: &Workload) -> RunResult {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = SchedulerConfig {
        mode: variant.mode,
        ..SchedulerConfig::default()
    };
    let graph = Graph::start(throughput_store(dir.path()), config);
    registered(&graph, &work.definitions).await;
    let loads: Vec<Vec<Message>> = work.per_client.clone();
    let total: usize = loads.iter().map(Vec::len).sum();
    let before = graph.writer.stats();
    perf_ctl("enable");
    let cpu0 = cpu_snapshot();
    let t = Instant::now();
    let clients = loads.into_iter().map(|msgs| {
        let s = graph.scheduler.clone();
        actix::spawn(async move {
            let mut errors = 0;
            let mut first = None;
            for m in msgs {
                if let Err(e) = s.schedule(request(m)).await {
                    errors += 1;
                    first.get_or_insert_with(|| e.to_string());
                }
            }
            (errors, first)
        })
    });
    let outcomes = join_all(clients).await;
    let elapsed = t.elapsed();
    let cpu1 = cpu_snapshot();
    perf_ctl("disable");
    // Aggressive mode answers before the write; wait until it is all stored.
    let submitted = graph.writer.stats().submitted;
    while graph.writer.stats().committed + graph.writer.stats().failed < submitted {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drain = t.elapsed() - elapsed;
    // In aggressive mode the writes finish after the answers: their CPU
    // belongs to the run too.
    let cpu1 = if drain > Duration::from_millis(2) {
        cpu_snapshot()
    } else {
        cpu1
    };
    let (cpu_s, roles, wait_s) = cpu_delta(&cpu0, &cpu1);
    let after = graph.writer.stats();
    let mut errors = 0;
    let mut first_error = None;
    for o in outcomes {
        let (e, f) = o.expect("a client task finishes");
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let restarts = graph.metrics.restarts.load(Ordering::Relaxed);
    assert_eq!(restarts, 0, "no server restarts under load");
    graph.stop().await;
    let per = |x: f64| x * 1e6 / total.max(1) as f64;
    RunResult {
        rate: (total - errors) as f64 / elapsed.as_secs_f64(),
        cpu_us: per(cpu_s),
        roles: roles.into_iter().map(|(r, s)| (r, per(s))).collect(),
        wait_us: per(wait_s),
        elapsed,
        stats: GroupCommitStats {
            submitted: after.submitted - before.submitted,
            committed: after.committed - before.committed,
            failed: after.failed - before.failed,
            flushes: after.flushes - before.flushes,
        },
        drain,
        errors,
        first_error,
    }
}

/// The crypto-only ceiling of this machine right now: per message, verify
/// the incoming message (if signed) and sign an assignment for it, spread
/// over every core with no coordination at all; its rate and its CPU time
/// per message.
fn ceiling(messages: &[&Message], signed: bool) -> Ceiling {
    let node = node_key();
    let pid = Id::hash(b"ceiling");
    let cpu0 = cpu_snapshot();
    let t = Instant::now();
    let ok = parallel(messages.len(), |i| {
        let m = messages[i];
        if signed {
            assert!(m
                .verify(&IdSelector::All)
                .expect("a well-formed message verifies")
                .is_valid());
        }
        let draft = AssignmentDraft {
            pid,
            slot: i as u64,
            chain: [0; 32],
            tip: ChainTip::LOCAL,
            timestamp: 0,
            body: m.clone(),
            body_id: m.id_all().expect("a message has an ID"),
        };
        draft.sign(&node).is_ok()
    });
    assert!(ok.into_iter().all(|x| x));
    let rate = messages.len() as f64 / t.elapsed().as_secs_f64();
    let (cpu_s, _, _) = cpu_delta(&cpu0, &cpu_snapshot());
    Ceiling {
        rate,
        cpu_us: cpu_s * 1e6 / messages.len() as f64,
    }
}

/// The crypto-only baseline of one round.
#[derive(Clone, Copy)]
struct Ceiling {
    /// Messages per second on all cores.
    rate: f64,
    /// CPU per message, µs.
    cpu_us: f64,
}

/// Single-thread cost of one `verify` and one assignment `sign`, in µs.
fn crypto_costs(messages: &[&Message]) -> (f64, f64) {
    let node = node_key();
    let pid = Id::hash(b"cost");
    let t = Instant::now();
    for m in messages {
        assert!(m.verify(&IdSelector::All).map(|v| v.is_valid()) == Ok(true));
    }
    let verify = us(t.elapsed()) / messages.len() as f64;
    let t = Instant::now();
    for (i, m) in messages.iter().enumerate() {
        let draft = AssignmentDraft {
            pid,
            slot: i as u64,
            chain: [0; 32],
            tip: ChainTip::LOCAL,
            timestamp: 0,
            body: (*m).clone(),
            body_id: m.id_all().expect("a message has an ID"),
        };
        assert!(draft.sign(&node).is_ok());
    }
    (verify, us(t.elapsed()) / messages.len() as f64)
}

struct VariantResults {
    variant: Variant,
    runs: Vec<RunResult>,
    /// Per run: throughput / the round's crypto-only rate.
    rate_ratios: Vec<f64>,
    /// Per run: CPU per assignment / the round's crypto-only CPU per message.
    cpu_ratios: Vec<f64>,
}

async fn throughput(opts: &Opts) -> Vec<VariantResults> {
    println!(
        "\n## throughput: {} clients, {} messages per run, {} rounds",
        opts.clients, opts.messages, opts.repeat
    );
    let t = Instant::now();
    let mut works = Vec::new();
    for signed in [true, false] {
        for processes in [1, opts.processes] {
            works.push(((signed, processes), workload(opts, processes, signed)));
        }
    }
    println!(
        "workloads pre-signed in {:.1} s; load average {}",
        t.elapsed().as_secs_f64(),
        loadavg()
    );
    let work_of = |signed: bool, processes: usize| {
        &works
            .iter()
            .find(|((s, p), _)| *s == signed && *p == processes)
            .expect("every workload was built")
            .1
    };
    let sample = |signed: bool| -> Vec<&Message> {
        work_of(signed, opts.processes)
            .per_client
            .iter()
            .flatten()
            .take(8_000)
            .collect()
    };
    let (signed_sample, unsigned_sample) = (sample(true), sample(false));
    let (verify_us, sign_us) = crypto_costs(&signed_sample[..2_000.min(signed_sample.len())]);
    println!(
        "single-thread costs: verify {verify_us:.1} µs, sign an assignment {sign_us:.1} µs \
         (one core: {:.0} signed/s, {:.0} unsigned/s)",
        1e6 / (verify_us + sign_us),
        1e6 / sign_us
    );
    let mut variants = Vec::new();
    for mode in [
        SchedulingMode::LocalConfirmation,
        SchedulingMode::Aggressive,
    ] {
        for signed in [true, false] {
            for processes in [1, opts.processes] {
                variants.push(VariantResults {
                    variant: Variant {
                        signed,
                        processes,
                        mode,
                    },
                    runs: Vec::new(),
                    rate_ratios: Vec::new(),
                    cpu_ratios: Vec::new(),
                });
            }
        }
    }
    // `SCHEDBENCH_VARIANT=text` keeps the variants whose name contains it.
    if let Ok(only) = std::env::var("SCHEDBENCH_VARIANT") {
        variants.retain(|v| v.variant.name().contains(only.as_str()));
    }
    let mut ceilings: Vec<(Ceiling, Ceiling)> = Vec::new();
    for round in 0..opts.repeat {
        let c_signed = ceiling(&signed_sample, true);
        let c_unsigned = ceiling(&unsigned_sample, false);
        ceilings.push((c_signed, c_unsigned));
        println!(
            "round {round}: load average {}; crypto-only baseline on all cores: {:.0} signed/s \
             ({:.1} µs CPU each), {:.0} unsigned/s ({:.1} µs CPU each)",
            loadavg(),
            c_signed.rate,
            c_signed.cpu_us,
            c_unsigned.rate,
            c_unsigned.cpu_us
        );
        for v in variants.iter_mut() {
            let r = throughput_run(v.variant, work_of(v.variant.signed, v.variant.processes)).await;
            let c = if v.variant.signed {
                c_signed
            } else {
                c_unsigned
            };
            println!(
                "  {:<44} {:>6.0}/s in {:.2} s ({:.2}× the baseline rate); {} flushes, {:.1} \
                 batches/flush{}{}",
                v.variant.name(),
                r.rate,
                r.elapsed.as_secs_f64(),
                r.rate / c.rate,
                r.stats.flushes,
                r.stats.committed as f64 / r.stats.flushes.max(1) as f64,
                if r.drain > Duration::from_millis(2) {
                    format!("; writes drained {:.0} ms later", ms(r.drain))
                } else {
                    String::new()
                },
                match &r.first_error {
                    Some(e) => format!("; {} ERRORS, first: {e}", r.errors),
                    None => String::new(),
                }
            );
            println!(
                "  {:<44} CPU {:.0} µs/assignment ({:.2}× the baseline's): {}; waiting for a \
                 core {:.0} µs",
                "",
                r.cpu_us,
                r.cpu_us / c.cpu_us,
                r.roles
                    .iter()
                    .map(|(role, x)| format!("{role} {x:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                r.wait_us
            );
            v.rate_ratios.push(r.rate / c.rate);
            v.cpu_ratios.push(r.cpu_us / c.cpu_us);
            v.runs.push(r);
        }
    }
    let cs: Vec<f64> = ceilings.iter().map(|c| c.0.rate).collect();
    let cu: Vec<f64> = ceilings.iter().map(|c| c.1.rate).collect();
    let cs_cpu: Vec<f64> = ceilings.iter().map(|c| c.0.cpu_us).collect();
    let cu_cpu: Vec<f64> = ceilings.iter().map(|c| c.1.cpu_us).collect();
    println!(
        "\n| scenario | assignments/s best | median | median ratio to baseline rate | CPU µs per \
         assignment (median) | ratio to baseline CPU | flushes (median run) | batches per flush \
         | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| baseline: verify + sign only, signed, all cores | {:.0} | {:.0} | 1 | {:.1} | 1 | – | – \
         | – |",
        best(&cs),
        median(&cs),
        median(&cs_cpu)
    );
    println!(
        "| baseline: sign only, unsigned, all cores | {:.0} | {:.0} | 1 | {:.1} | 1 | – | – | – |",
        best(&cu),
        median(&cu),
        median(&cu_cpu)
    );
    for v in &variants {
        let rates: Vec<f64> = v.runs.iter().map(|r| r.rate).collect();
        let cpus: Vec<f64> = v.runs.iter().map(|r| r.cpu_us).collect();
        let med = median(&rates);
        let mid = v
            .runs
            .iter()
            .min_by(|a, b| (a.rate - med).abs().total_cmp(&(b.rate - med).abs()))
            .expect("at least one run");
        let target = if v.variant.signed && v.variant.mode == SchedulingMode::LocalConfirmation {
            format!(
                "≥ 15,000/s: **{}**",
                if med >= 15_000.0 { "met" } else { "missed" }
            )
        } else {
            "–".into()
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {} | {:.1} | {target} |",
            v.variant.name(),
            best(&rates),
            med,
            median(&v.rate_ratios),
            median(&cpus),
            median(&v.cpu_ratios),
            mid.stats.flushes,
            mid.stats.committed as f64 / mid.stats.flushes.max(1) as f64,
        );
    }
    println!("\nCPU µs per assignment by thread (median run of each variant):");
    for v in &variants {
        let cpus: Vec<f64> = v.runs.iter().map(|r| r.cpu_us).collect();
        let med = median(&cpus);
        if let Some(mid) = v.runs.iter().find(|r| r.cpu_us == med) {
            println!(
                "  {:<44} {}",
                v.variant.name(),
                mid.roles
                    .iter()
                    .map(|(role, x)| format!("{role} {x:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    variants
}

// ---------------------------------------------------------------------------
// Scenario 3: latency at half the saturating load (open loop).

async fn latency(opts: &Opts, measured: &[VariantResults]) {
    println!("\n## latency of one schedule call at half the saturating load (open loop)");
    let mut rows = Vec::new();
    for processes in [1, opts.processes] {
        let saturating = measured
            .iter()
            .find(|v| {
                v.variant.signed
                    && v.variant.processes == processes
                    && v.variant.mode == SchedulingMode::LocalConfirmation
            })
            .map(|v| median(&v.runs.iter().map(|r| r.rate).collect::<Vec<_>>()));
        let rate = match (opts.rate, saturating) {
            (r, _) if r > 0 => r as f64,
            (_, Some(s)) => s / 2.0,
            (_, None) => {
                let quick = Opts {
                    messages: opts.messages.min(20_000),
                    ..Opts::from_env()
                };
                let work = workload(&quick, processes, true);
                let v = Variant {
                    signed: true,
                    processes,
                    mode: SchedulingMode::LocalConfirmation,
                };
                let r = throughput_run(v, &work).await;
                println!("saturating rate ({}): {:.0}/s", v.name(), r.rate);
                r.rate / 2.0
            }
        };
        let count = (rate * opts.latency_secs as f64) as usize;
        let paced = Opts {
            messages: count,
            ..Opts::from_env()
        };
        let work = workload(&paced, processes, true);
        let mut sends = Vec::new();
        let mut services = Vec::new();
        let mut achieved = Vec::new();
        for round in 0..opts.repeat {
            let (from_intended, from_send, rate_done, lag) = latency_run(&work, rate).await;
            println!(
                "  {processes} process(es), round {round}: {rate:.0}/s offered, {rate_done:.0}/s \
                 done; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (from the send: p50 {:.2}, p99 \
                 {:.2}); pacing lag p99 {:.2} ms; load average {}",
                ms(percentile(&from_intended, 0.5)),
                ms(percentile(&from_intended, 0.99)),
                ms(*from_intended.last().unwrap_or(&Duration::ZERO)),
                ms(percentile(&from_send, 0.5)),
                ms(percentile(&from_send, 0.99)),
                ms(lag),
                loadavg()
            );
            sends.push((
                ms(percentile(&from_intended, 0.5)),
                ms(percentile(&from_intended, 0.99)),
            ));
            services.push((
                ms(percentile(&from_send, 0.5)),
                ms(percentile(&from_send, 0.99)),
            ));
            achieved.push(rate_done);
        }
        rows.push((processes, rate, sends, services, achieved));
    }
    println!(
        "\n| scenario | offered rate | p50 best / median | p99 best / median | \
         p50 / p99 from the actual send (median) |"
    );
    println!("|---|---|---|---|---|");
    for (processes, rate, from_intended, from_send, _) in rows {
        let p50: Vec<f64> = from_intended.iter().map(|x| x.0).collect();
        let p99: Vec<f64> = from_intended.iter().map(|x| x.1).collect();
        let s50: Vec<f64> = from_send.iter().map(|x| x.0).collect();
        let s99: Vec<f64> = from_send.iter().map(|x| x.1).collect();
        println!(
            "| local_confirmation signed, {processes} process(es) | {rate:.0}/s | {:.2} / {:.2} ms | \
             {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
            least(&p50),
            median(&p50),
            least(&p99),
            median(&p99),
            median(&s50),
            median(&s99)
        );
    }
}

/// One open-loop run: message i is due at `i / rate` seconds; each is sent
/// by its own task, so a slow answer never delays later sends. Latency is
/// measured from the due time (no coordinated omission) and from the send.
async fn latency_run(work: &Workload, rate: f64) -> (Vec<Duration>, Vec<Duration>, f64, Duration) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let graph = Graph::start(open_store(dir.path()), SchedulerConfig::default());
    registered(&graph, &work.definitions).await;
    // Interleave the clients' messages back into their global order
    // (message g was dealt to client g % C).
    let mut queues: Vec<std::vec::IntoIter<Message>> = work
        .per_client
        .clone()
        .into_iter()
        .map(Vec::into_iter)
        .collect();
    let total: usize = work.per_client.iter().map(Vec::len).sum();
    let mut ordered = Vec::with_capacity(total);
    while ordered.len() < total {
        for q in queues.iter_mut() {
            ordered.extend(q.next());
        }
    }
    let from_intended = Rc::new(RefCell::new(Vec::with_capacity(total)));
    let from_send = Rc::new(RefCell::new(Vec::with_capacity(total)));
    let mut lags = Vec::with_capacity(total);
    let mut tasks = Vec::with_capacity(total);
    let start = tokio::time::Instant::now() + Duration::from_millis(5);
    for (i, m) in ordered.into_iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if tokio::time::Instant::now() < due {
            tokio::time::sleep_until(due).await;
        }
        let sent = tokio::time::Instant::now();
        lags.push(sent - due);
        let s = graph.scheduler.clone();
        let (fi, fs) = (Rc::clone(&from_intended), Rc::clone(&from_send));
        tasks.push(actix::spawn(async move {
            let r = s.schedule(request(m)).await;
            let done = tokio::time::Instant::now();
            fi.borrow_mut().push(done - due);
            fs.borrow_mut().push(done - sent);
            r.is_ok()
        }));
    }
    let oks = join_all(tasks).await;
    let elapsed = start.elapsed();
    assert!(
        oks.into_iter().all(|r| matches!(r, Ok(true))),
        "every paced call succeeds"
    );
    graph.stop().await;
    let mut a = Rc::try_unwrap(from_intended)
        .map(RefCell::into_inner)
        .unwrap_or_default();
    let mut b = Rc::try_unwrap(from_send)
        .map(RefCell::into_inner)
        .unwrap_or_default();
    a.sort();
    b.sort();
    lags.sort();
    let p99_lag = percentile(&lags, 0.99);
    (a, b, total as f64 / elapsed.as_secs_f64(), p99_lag)
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
        let measured = if opts.wants("throughput") {
            throughput(&opts).await
        } else {
            Vec::new()
        };
        if opts.wants("latency") {
            latency(&opts, &measured).await;
        }
    });
    println!("\nload average at the end: {}", loadavg());
}
