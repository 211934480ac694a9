//! hb-store benchmarks (`cargo bench -p hb-store`). Figures and the command
//! that produced them are recorded in docs/PERFORMANCE.md (`## hb-store`).
//!
//! - `durable_writes/raw_sled_batch256`: the baseline, raw sled
//!   `apply_batch` of 256 records of 600 bytes, then `flush`.
//! - `durable_writes/raw_sled_single`: one record, then `flush`.
//! - `durable_writes/group_commit/{1,16,256}`: that many concurrent async
//!   writers, each submitting one assignment batch (a ~600-byte record
//!   under "must be absent") through [`GroupCommit`] and awaiting its
//!   acknowledgement (durable).
//! - `sched_latest_1m`: `SchedulerCache::latest` of a random process on a
//!   store holding 1,000,000 assignments over 10,000 processes.
//! - `sched_range_1000`: `SchedulerCache::range` of 1,000 assignments.
//! - `sched_range_1000_stored`: `SchedulerCache::range_stored` of the
//!   same (checksums, framing and keys checked, messages left packed).
//! - `sched_range_1000_decode_each`: the same, then each message decoded
//!   and dropped in turn, as `verify_stored` reads a schedule.
//! - `sched_range_1000_json`: the same page, each message's JSON written
//!   from its stored bytes (`StoredAssignment::write_json`), as the HTTP
//!   schedule page is answered.
//! - With `STOREBENCH_BACKEND=fjall`, the `sched` reads run on a
//!   `FjallStore` holding the same assignments (group `sched_fjall`).
//! - `proc_latest_10k/*`: `ProcessCache::latest` with a required path over
//!   10,000 stored states (path in every state, every 100th, or none).
//!
//! `pg_against_sled` (printed to stderr, no criterion benchmark; run it
//! alone with `STOREBENCH_ONLY=pg_against_sled`): group commit of
//! assignment-shaped batches on `SledStore` and on `PgStore` (a throwaway
//! database on the server `HB_TEST_POSTGRES_URL` names, default the local
//! one) in alternating rounds, with 1, 16 and 256 writers, then point reads
//! and "latest" seeks on both. Skipped, with a note, when no server answers.
//!
//! First, the paired rounds (printed to stderr, no criterion benchmark):
//! raw sled against group commit in alternating rounds, with the CPU per
//! write of the process and of the writing thread, for 600-byte records
//! and for assignment-shaped batches. `STOREBENCH_PAIRED_ONLY=1` runs only
//! them; `STOREBENCH_PAIRED_ROUNDS` (6, the first a warm-up) sets their
//! number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hb_message::{msg, Id, Message, NodeKey};
use hb_store::{
    AssignmentRecord, Batch, GroupCommit, GroupCommitOptions, PgOptions, PgStore, ProcessCache,
    RequiredPath, SchedulerCache, SledOptions, SledStore, Store,
};
use rand::{Rng, SeedableRng};

// The `hb` binary's global allocator (docs/PERFORMANCE.md, "Allocators"):
// figures measured before it was set here (with the system allocator) do not
// compare with later ones.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const RECORD_BYTES: usize = 600;

/// `STOREBENCH_PAIRED_ONLY=1`: run the paired rounds only (the other groups
/// build their stores before criterion's filter applies).
fn paired_only() -> bool {
    std::env::var_os("STOREBENCH_PAIRED_ONLY").is_some()
}

fn pid(n: u64) -> Id {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[8..16].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    Id(b)
}

/// A signed assignment message with a body of `body_bytes` of data.
fn assignment_message(body_bytes: usize) -> Message {
    let node = NodeKey::from_seed(&[9; 32]);
    msg! {
        "process" => pid(0).to_human(),
        "slot" => 0,
        "body" => msg! { "data" => vec![0x5au8; body_bytes] },
    }
    .commit(&node, None)
    .expect("literal message commits")
}

fn record(p: Id, slot: u64, message: &Message) -> AssignmentRecord {
    AssignmentRecord {
        pid: p,
        slot,
        hash_chain: vec![7; 32],
        assignment_id: Id([slot as u8; 32]),
        assignment: message.clone(),
    }
}

/// Whether the bench function `name` runs: all of them, unless
/// `STOREBENCH_ONLY` names a part of the names to run (`paired_ratio`,
/// `durable_writes`, `sched_reads`, `proc_latest`), since criterion's own
/// filter cannot skip their setup.
fn wanted(name: &str) -> bool {
    std::env::var("STOREBENCH_ONLY").map_or(true, |only| name.contains(only.as_str()))
}

fn open(dir: &std::path::Path, options: &SledOptions) -> SledStore {
    SledStore::open_with(dir, options).expect("open bench store")
}

fn durable_writes(c: &mut Criterion) {
    if paired_only() || !wanted("durable_writes") {
        return;
    }
    let mut group = c.benchmark_group("durable_writes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));

    // The baseline: raw sled in the same run.
    let tmp = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(tmp.path().join("raw"))
        .flush_every_ms(None)
        .mode(sled::Mode::HighThroughput)
        .open()
        .unwrap();
    let value = vec![0xa5u8; RECORD_BYTES];
    let mut n = 0u64;
    group.throughput(Throughput::Elements(256));
    group.bench_function("raw_sled_batch256", |b| {
        b.iter(|| {
            let mut batch = sled::Batch::default();
            for _ in 0..256 {
                n += 1;
                batch.insert(&n.to_be_bytes(), value.as_slice());
            }
            db.apply_batch(batch).unwrap();
            db.flush().unwrap();
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_sled_single", |b| {
        b.iter(|| {
            n += 1;
            db.insert(n.to_be_bytes(), value.as_slice()).unwrap();
            db.flush().unwrap();
        })
    });
    drop(db);

    // The assignment's stored record is ~600 bytes.
    let message = assignment_message(RECORD_BYTES - 400);
    let encoded = {
        let mut b = Batch::new();
        SchedulerCache::stage_assignment(&mut b, &record(pid(0), 0, &message)).unwrap();
        match &b.ops[0] {
            hb_store::BatchOp::PutNew(_, v) => v.len(),
            _ => 0,
        }
    };
    eprintln!("assignment record: {encoded} bytes");

    let options = SledOptions {
        flush_every_ms: None,
        ..SledOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(open(&tmp.path().join("gc"), &options));
    let writer = Arc::new(GroupCommit::start(store).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let next_pid = AtomicU64::new(1);
    // `record`: the value is a pre-encoded 600-byte record, as in the raw
    // baseline (group commit's own cost). `assignment`: each writer also
    // encodes its AssignmentRecord (the scheduler's full write path).
    for variant in ["record", "assignment"] {
        for writers in [1usize, 16, 256] {
            group.bench_with_input(
                BenchmarkId::new(format!("group_commit_{variant}"), writers),
                &writers,
                |b, &writers| {
                    b.iter_custom(|iters| {
                        // Each run writes fresh processes so slots never collide.
                        let base = next_pid.fetch_add(writers as u64, Ordering::Relaxed);
                        let tickets = Arc::new(AtomicU64::new(0));
                        let before = writer.stats();
                        let start = Instant::now();
                        runtime.block_on(async {
                            let tasks: Vec<_> = (0..writers)
                                .map(|w| {
                                    let writer = writer.clone();
                                    let tickets = tickets.clone();
                                    let message = message.clone();
                                    let value = vec![0xa5u8; RECORD_BYTES];
                                    tokio::spawn(async move {
                                        let p = pid(base + w as u64);
                                        let mut slot = 0;
                                        while tickets.fetch_add(1, Ordering::Relaxed) < iters {
                                            let mut batch = Batch::new();
                                            if variant == "record" {
                                                batch.put_new(
                                                    hb_store::keys::sched(&p, slot),
                                                    value.clone(),
                                                );
                                            } else {
                                                SchedulerCache::stage_assignment(
                                                    &mut batch,
                                                    &record(p, slot, &message),
                                                )
                                                .unwrap();
                                            }
                                            writer.submit(batch).await.unwrap();
                                            slot += 1;
                                        }
                                    })
                                })
                                .collect();
                            for t in tasks {
                                t.await.unwrap();
                            }
                        });
                        let elapsed = start.elapsed();
                        let after = writer.stats();
                        let batches = after.committed - before.committed;
                        let flushes = after.flushes - before.flushes;
                        if batches > 5000 {
                            eprintln!(
                                "group_commit_{variant}/{writers}: {batches} batches in {flushes} flushes ({:.1} per flush)",
                                batches as f64 / flushes.max(1) as f64
                            );
                        }
                        elapsed
                    })
                },
            );
        }
    }
    group.finish();
}

/// What one write of the paired rounds is: one 600-byte record under
/// "must be absent" (`Record`), or what the scheduler writes for a signed
/// assignment (`Assignment`): the 600-byte record (`PutNew`), a `Require`
/// of the previous slot and a dedup entry (`PutIfAbsent`).
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Record,
    Assignment,
}

/// The dedup entry's value: the size of an encoded `DedupEntry`.
const DEDUP_BYTES: usize = 45;

fn dedup_key(p: &Id, slot: u64) -> Vec<u8> {
    let mut mid = [0u8; 32];
    mid[..8].copy_from_slice(&slot.to_be_bytes());
    hb_store::keys::dedup(p, &Id(mid))
}

/// Writes `total` writes of `shape` through `writer` from `writers`
/// concurrent tasks; returns the elapsed time.
fn run_writers(
    runtime: &tokio::runtime::Runtime,
    writer: &Arc<GroupCommit>,
    writers: usize,
    total: u64,
    base: u64,
    shape: Shape,
) -> Duration {
    let tickets = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let writer = writer.clone();
                let tickets = tickets.clone();
                let value = vec![0xa5u8; RECORD_BYTES];
                let entry = vec![0x5au8; DEDUP_BYTES];
                tokio::spawn(async move {
                    let p = pid(base + w as u64);
                    let mut slot = 0;
                    while tickets.fetch_add(1, Ordering::Relaxed) < total {
                        let mut batch = Batch::new();
                        batch.put_new(hb_store::keys::sched(&p, slot), value.clone());
                        if shape == Shape::Assignment {
                            if let Some(previous) = slot.checked_sub(1) {
                                batch.require(hb_store::keys::sched(&p, previous));
                            }
                            batch.put_if_absent(dedup_key(&p, slot), entry.clone());
                        }
                        writer.submit(batch).await.unwrap();
                        slot += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    start.elapsed()
}

/// CPU time (ns) spent so far by this process's threads named `name`
/// (every thread when `None`), from `/proc/self/task/*/schedstat`. Threads
/// that have exited are not counted.
fn cpu_ns(name: Option<&str>) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut total = 0;
    for task in tasks.flatten() {
        let dir = task.path();
        if let Some(name) = name {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
        }
        total += std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// CPU time (ns) of the calling thread so far.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One side of a paired round: writes per second, process CPU µs per
/// write, and the CPU µs per write of the thread doing the writing (the
/// bench's own thread for raw sled, the group-commit writer for group
/// commit).
#[derive(Default)]
struct Side {
    rate: Vec<f64>,
    process_us: Vec<f64>,
    thread_us: Vec<f64>,
}

impl Side {
    fn add(&mut self, n: u64, elapsed: Duration, process_ns: u64, thread_ns: u64) {
        self.rate.push(n as f64 / elapsed.as_secs_f64());
        self.process_us.push(process_ns as f64 / 1e3 / n as f64);
        self.thread_us.push(thread_ns as f64 / 1e3 / n as f64);
    }
}

fn median_of(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn best_of(v: &[f64], lowest: bool) -> f64 {
    let pick = if lowest { f64::min } else { f64::max };
    v.iter().copied().reduce(pick).unwrap_or(f64::NAN)
}

/// The group-commit target as a ratio measured in alternating rounds, so
/// that both sides see the same load from other processes on the machine,
/// with the CPU each side spends per write. Prints; registers no criterion
/// benchmark.
fn paired_ratio(_: &mut Criterion) {
    if !wanted("paired_ratio") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(tmp.path().join("raw"))
        .flush_every_ms(None)
        .mode(sled::Mode::HighThroughput)
        .open()
        .unwrap();
    let options = SledOptions {
        flush_every_ms: None,
        ..SledOptions::default()
    };
    let mk = |name: &str, linger: Duration| {
        let store: Arc<dyn Store> = Arc::new(open(&tmp.path().join(name), &options));
        Arc::new(
            GroupCommit::with_options(
                store,
                GroupCommitOptions {
                    linger,
                    ..GroupCommitOptions::default()
                },
            )
            .unwrap(),
        )
    };
    let lingering = mk("gc-linger", GroupCommitOptions::default().linger);
    let eager = mk("gc-eager", Duration::ZERO);
    let assignments = mk("gc-assignments", GroupCommitOptions::default().linger);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let value = vec![0xa5u8; RECORD_BYTES];
    let entry = vec![0x5au8; DEDUP_BYTES];
    let per_round = 256 * 40u64;
    let rounds = std::env::var("STOREBENCH_PAIRED_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6u64)
        .max(2);
    let mut n = 0u64;
    let writer_name = "hb-store-writer";
    // The raw baseline: `shape` written straight to sled, 256 writes per
    // batch and flush, on this thread.
    let mut raw_round = |shape: Shape, round: u64| {
        let (p0, t0, start) = (cpu_ns(None), thread_cpu_ns(), Instant::now());
        for b in 0..per_round / 256 {
            let mut batch = sled::Batch::default();
            for i in 0..256 {
                n += 1;
                match shape {
                    Shape::Record => batch.insert(&n.to_be_bytes(), value.as_slice()),
                    Shape::Assignment => {
                        let p = pid(1_000_000 + round * 1000 + i);
                        batch.insert(hb_store::keys::sched(&p, b), value.as_slice());
                        batch.insert(dedup_key(&p, b), entry.as_slice());
                    }
                }
            }
            db.apply_batch(batch).unwrap();
            db.flush().unwrap();
        }
        let elapsed = start.elapsed();
        (elapsed, cpu_ns(None) - p0, thread_cpu_ns() - t0)
    };
    let gc_round = |writer: &Arc<GroupCommit>, shape: Shape, base: u64| {
        let (p0, w0) = (cpu_ns(None), cpu_ns(Some(writer_name)));
        let elapsed = run_writers(&runtime, writer, 256, per_round, base, shape);
        (elapsed, cpu_ns(None) - p0, cpu_ns(Some(writer_name)) - w0)
    };
    let (mut raw, mut gc, mut gc_eager, mut raw_a, mut gc_a) = Default::default();
    let (mut ratios, mut eager_ratios, mut a_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let r = raw_round(Shape::Record, round);
        let g = gc_round(&lingering, Shape::Record, 1 + round * 1000);
        let e = gc_round(&eager, Shape::Record, 1 + round * 1000);
        let ra = raw_round(Shape::Assignment, round);
        let ga = gc_round(&assignments, Shape::Assignment, 1 + round * 1000);
        if round == 0 {
            continue; // warm-up
        }
        let sides: [(&mut Side, _); 5] = [
            (&mut raw, r),
            (&mut gc, g),
            (&mut gc_eager, e),
            (&mut raw_a, ra),
            (&mut gc_a, ga),
        ];
        for (side, (elapsed, process, thread)) in sides {
            side.add(per_round, elapsed, process, thread);
        }
        let last = |s: &Side| *s.rate.last().unwrap();
        ratios.push(last(&gc) / last(&raw));
        eager_ratios.push(last(&gc_eager) / last(&raw));
        a_ratios.push(last(&gc_a) / last(&raw_a));
        let cpu = |s: &Side| {
            format!(
                "{:.1} µs process, {:.1} µs writing thread",
                s.process_us.last().unwrap(),
                s.thread_us.last().unwrap()
            )
        };
        eprintln!(
            "paired round {round}: raw sled batch256 {:.0} rec/s ({}), group commit 256 writers {:.0} rec/s ({:.0}%; {}), without linger {:.0} rec/s ({:.0}%); \
             assignment-shaped: raw {:.0}/s ({}), group commit {:.0}/s ({:.0}%; {})",
            last(&raw),
            cpu(&raw),
            last(&gc),
            100.0 * last(&gc) / last(&raw),
            cpu(&gc),
            last(&gc_eager),
            100.0 * last(&gc_eager) / last(&raw),
            last(&raw_a),
            cpu(&raw_a),
            last(&gc_a),
            100.0 * last(&gc_a) / last(&raw_a),
            cpu(&gc_a),
        );
    }
    eprintln!(
        "paired median ratio: group commit / raw sled = {:.0}% (without linger {:.0}%); assignment-shaped {:.0}%",
        100.0 * median_of(&ratios),
        100.0 * median_of(&eager_ratios),
        100.0 * median_of(&a_ratios),
    );
    eprintln!("| side (rounds {}) | writes/s best / median | process CPU µs per write best / median | writing thread CPU µs per write best / median |", rounds - 1);
    eprintln!("|---|---|---|---|");
    for (name, side) in [
        ("raw sled batch256 + flush, 600 B records", &raw),
        ("group commit, 256 writers, record", &gc),
        ("group commit, 256 writers, record, no linger", &gc_eager),
        (
            "raw sled batch256 + flush, assignment-shaped (2 keys)",
            &raw_a,
        ),
        ("group commit, 256 writers, assignment-shaped batch", &gc_a),
    ] {
        eprintln!(
            "| {name} | {:.0} / {:.0} | {:.1} / {:.1} | {:.1} / {:.1} |",
            best_of(&side.rate, false),
            median_of(&side.rate),
            best_of(&side.process_us, true),
            median_of(&side.process_us),
            best_of(&side.thread_us, true),
            median_of(&side.thread_us),
        );
    }
    let s = lingering.stats();
    eprintln!(
        "group commit with linger: {} batches in {} flushes; assignment-shaped: {} in {}",
        s.committed,
        s.flushes,
        assignments.stats().committed,
        assignments.stats().flushes
    );
}

/// Group commit on sled against group commit on PostgreSQL, in
/// alternating rounds on this machine, then reads. Prints; registers no
/// criterion benchmark.
fn pg_against_sled(_: &mut Criterion) {
    if paired_only() || !wanted("pg_against_sled") {
        return;
    }
    let database = match std::panic::catch_unwind(hb_store::pg_testing::TempDatabase::create) {
        Ok(database) => database,
        Err(_) => {
            eprintln!("pg_against_sled: skipped, no PostgreSQL server (see the message above)");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let sled_store: Arc<dyn Store> = Arc::new(open(
        &tmp.path().join("sled"),
        &SledOptions {
            flush_every_ms: None,
            ..SledOptions::default()
        },
    ));
    let pg_store: Arc<dyn Store> =
        Arc::new(PgStore::open(database.url(), &PgOptions::default()).unwrap());
    let sled_writer = Arc::new(GroupCommit::start(sled_store.clone()).unwrap());
    let pg_writer = Arc::new(GroupCommit::start(pg_store.clone()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let rounds = std::env::var("STOREBENCH_PG_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4u64)
        .max(2);
    let mut base = 1u64;
    eprintln!(
        "| writers | sled batches/s best / median | postgres batches/s best / median | postgres / sled (median) | postgres batches per commit |"
    );
    eprintln!("|---|---|---|---|---|");
    for (writers, per_round) in [(1usize, 300u64), (16, 3_000), (256, 10_240)] {
        let (mut sled_rates, mut pg_rates) = (Vec::new(), Vec::new());
        let before = pg_writer.stats();
        for round in 0..rounds {
            let s = run_writers(
                &runtime,
                &sled_writer,
                writers,
                per_round,
                base,
                Shape::Assignment,
            );
            let p = run_writers(
                &runtime,
                &pg_writer,
                writers,
                per_round,
                base,
                Shape::Assignment,
            );
            base += writers as u64;
            if round == 0 {
                continue; // warm-up
            }
            sled_rates.push(per_round as f64 / s.as_secs_f64());
            pg_rates.push(per_round as f64 / p.as_secs_f64());
        }
        let after = pg_writer.stats();
        eprintln!(
            "| {writers} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0}% | {:.1} |",
            best_of(&sled_rates, false),
            median_of(&sled_rates),
            best_of(&pg_rates, false),
            median_of(&pg_rates),
            100.0 * median_of(&pg_rates) / median_of(&sled_rates),
            (after.committed - before.committed) as f64
                / (after.flushes - before.flushes).max(1) as f64,
        );
    }
    // Reads of what was written: a point read of a random assignment, and
    // the head of a random process (one reverse seek).
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let reads = 2_000;
    let probes: Vec<(Id, u64)> = (0..reads)
        .map(|_| (pid(rng.gen_range(1..base)), rng.gen_range(0..2)))
        .collect();
    for (name, store) in [("sled", &sled_store), ("postgres", &pg_store)] {
        let start = Instant::now();
        for (p, slot) in &probes {
            store.get(&hb_store::keys::sched(p, *slot)).unwrap();
        }
        let get = start.elapsed() / reads;
        let start = Instant::now();
        for (p, _) in &probes {
            store
                .last_with_prefix(&hb_store::keys::sched_prefix(p))
                .unwrap();
        }
        let latest = start.elapsed() / reads;
        eprintln!(
            "{name}: get {get:?} per read, last_with_prefix {latest:?} per seek (one thread)"
        );
    }
}

fn sched_reads(c: &mut Criterion) {
    if paired_only() || !wanted("sched_reads") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let options = SledOptions {
        flush_every_ms: None,
        ..SledOptions::default()
    };
    // `STOREBENCH_BACKEND=fjall` reads from a FjallStore instead (group
    // `sched_fjall`).
    let fjall = std::env::var("STOREBENCH_BACKEND").is_ok_and(|b| b == "fjall");
    let store: Arc<dyn Store> = if fjall {
        Arc::new(hb_store::FjallStore::open(tmp.path().join("sched")).expect("open bench store"))
    } else {
        Arc::new(open(&tmp.path().join("sched"), &options))
    };
    let cache = SchedulerCache::new(store.clone());
    let processes = 10_000u64;
    let per_process = 100u64;
    // Small assignments keep the 1M-record build quick; `latest` reads one.
    let small = assignment_message(64);
    let built = Instant::now();
    let mut batch = Batch::new();
    for slot in 0..per_process {
        for p in 0..processes {
            SchedulerCache::stage_assignment(&mut batch, &record(pid(p), slot, &small)).unwrap();
            if batch.len() == 20_000 {
                store.apply(std::mem::take(&mut batch)).unwrap();
            }
        }
    }
    store.apply(batch).unwrap();
    // One long process of 600-byte assignments for the range read.
    let big = assignment_message(RECORD_BYTES - 400);
    let long = pid(u64::MAX);
    let mut batch = Batch::new();
    for slot in 0..2_000 {
        SchedulerCache::stage_assignment(&mut batch, &record(long, slot, &big)).unwrap();
    }
    store.apply(batch).unwrap();
    store.flush().unwrap();
    eprintln!(
        "built {} assignments in {:.1?}",
        processes * per_process + 2_000,
        built.elapsed()
    );

    let mut group = c.benchmark_group(if fjall { "sched_fjall" } else { "sched" });
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    group.bench_function("latest_1m", |b| {
        b.iter(|| {
            let p = pid(rng.gen_range(0..processes));
            let head = cache.latest(&p).unwrap().unwrap();
            assert_eq!(head.slot, per_process - 1);
            head
        })
    });
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("range_1000", |b| {
        b.iter(|| {
            let from = rng.gen_range(0..1_000);
            let page = cache.range(&long, from, from + 999).unwrap();
            assert_eq!(page.len(), 1_000);
            page
        })
    });
    group.bench_function("range_1000_stored", |b| {
        b.iter(|| {
            let from = rng.gen_range(0..1_000);
            let page = cache.range_stored(&long, from, from + 999).unwrap();
            assert_eq!(page.len(), 1_000);
            page
        })
    });
    group.bench_function("range_1000_decode_each", |b| {
        b.iter(|| {
            let from = rng.gen_range(0..1_000);
            let page = cache.range_stored(&long, from, from + 999).unwrap();
            let mut keys = 0;
            for stored in &page {
                keys += stored.message().unwrap().len();
            }
            assert_eq!(page.len(), 1_000);
            keys
        })
    });
    // How a schedule page is answered over HTTP: each message's JSON
    // written from the stored bytes into one buffer.
    let mut json = Vec::new();
    group.bench_function("range_1000_json", |b| {
        b.iter(|| {
            let from = rng.gen_range(0..1_000);
            let page = cache.range_stored(&long, from, from + 999).unwrap();
            json.clear();
            json.push(b'[');
            for stored in &page {
                stored.write_json(&mut json).unwrap();
                json.push(b',');
            }
            assert_eq!(page.len(), 1_000);
            json.len()
        })
    });
    group.finish();
}

fn proc_latest(c: &mut Criterion) {
    if paired_only() || !wanted("proc_latest") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(open(&tmp.path().join("proc"), &SledOptions::default()));
    let cache = ProcessCache::new(store.clone());
    let p = pid(7);
    let slots = 10_000u64;
    let mut batch = Batch::new();
    for slot in 0..slots {
        let mut state = msg! {
            "device" => "process@1.0",
            "at-slot" => slot as i64,
            "results" => msg! { "data" => vec![1u8; 400], "outbox" => msg! {} },
            "balances" => msg! { "a" => 1, "b" => 2, "c" => 3 },
        };
        if slot % 100 == 0 {
            state
                .insert("snapshot", msg! { "memory" => vec![2u8; 2000] })
                .unwrap();
        }
        ProcessCache::stage_write(&mut batch, &p, slot, &state, slot).unwrap();
    }
    store.apply(batch).unwrap();
    store.flush().unwrap();

    let mut group = c.benchmark_group("proc_latest_10k");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    for (name, path) in [
        ("path_in_every_state", "results/data"),
        ("snapshot_every_100", "snapshot"),
        ("path_in_no_state", "missing/key"),
    ] {
        let required = RequiredPath::parse(path);
        group.bench_function(name, |b| {
            b.iter(|| {
                let limit = rng.gen_range(0..slots as i64);
                cache.latest(&p, &required, Some(limit)).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    paired_ratio,
    pg_against_sled,
    durable_writes,
    sched_reads,
    proc_latest
);
criterion_main!(benches);
