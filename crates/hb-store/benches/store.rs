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
//! - `proc_latest_10k/*`: `ProcessCache::latest` with a required path over
//!   10,000 stored states (path in every state, every 100th, or none).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hb_message::{msg, Id, Message, NodeKey};
use hb_store::{
    AssignmentRecord, Batch, GroupCommit, GroupCommitOptions, ProcessCache, RequiredPath,
    SchedulerCache, SledOptions, SledStore, Store,
};
use rand::{Rng, SeedableRng};

const RECORD_BYTES: usize = 600;

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
    if !wanted("durable_writes") {
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

/// Writes `total` pre-encoded 600-byte records through `writer` from
/// `writers` concurrent tasks; returns the elapsed time.
fn run_writers(
    runtime: &tokio::runtime::Runtime,
    writer: &Arc<GroupCommit>,
    writers: usize,
    total: u64,
    base: u64,
) -> Duration {
    let tickets = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let writer = writer.clone();
                let tickets = tickets.clone();
                let value = vec![0xa5u8; RECORD_BYTES];
                tokio::spawn(async move {
                    let p = pid(base + w as u64);
                    let mut slot = 0;
                    while tickets.fetch_add(1, Ordering::Relaxed) < total {
                        let mut batch = Batch::new();
                        batch.put_new(hb_store::keys::sched(&p, slot), value.clone());
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

/// The group-commit target as a ratio measured in alternating rounds, so
/// that both sides see the same load from other processes on the machine.
/// Prints; registers no criterion benchmark.
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let value = vec![0xa5u8; RECORD_BYTES];
    let per_round = 256 * 40u64;
    let mut n = 0u64;
    let mut ratios = Vec::new();
    let mut eager_ratios = Vec::new();
    for round in 0..6u64 {
        let start = Instant::now();
        for _ in 0..per_round / 256 {
            let mut batch = sled::Batch::default();
            for _ in 0..256 {
                n += 1;
                batch.insert(&n.to_be_bytes(), value.as_slice());
            }
            db.apply_batch(batch).unwrap();
            db.flush().unwrap();
        }
        let raw = per_round as f64 / start.elapsed().as_secs_f64();
        let gc = per_round as f64
            / run_writers(&runtime, &lingering, 256, per_round, 1 + round * 1000).as_secs_f64();
        let gc_eager = per_round as f64
            / run_writers(&runtime, &eager, 256, per_round, 1 + round * 1000).as_secs_f64();
        if round == 0 {
            continue; // warm-up
        }
        ratios.push(gc / raw);
        eager_ratios.push(gc_eager / raw);
        eprintln!(
            "paired round {round}: raw sled batch256 {raw:.0} rec/s, group commit 256 writers {gc:.0} rec/s ({:.0}%), without linger {gc_eager:.0} rec/s ({:.0}%)",
            100.0 * gc / raw,
            100.0 * gc_eager / raw
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    eprintln!(
        "paired median ratio: group commit / raw sled = {:.0}% (without linger {:.0}%)",
        100.0 * median(&mut ratios),
        100.0 * median(&mut eager_ratios)
    );
    let s = lingering.stats();
    eprintln!(
        "group commit with linger: {} batches in {} flushes",
        s.committed, s.flushes
    );
}

fn sched_reads(c: &mut Criterion) {
    if !wanted("sched_reads") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let options = SledOptions {
        flush_every_ms: None,
        ..SledOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(open(&tmp.path().join("sched"), &options));
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

    let mut group = c.benchmark_group("sched");
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
    group.finish();
}

fn proc_latest(c: &mut Criterion) {
    if !wanted("proc_latest") {
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
    durable_writes,
    sched_reads,
    proc_latest
);
criterion_main!(benches);
