//! Where the bytes of a signed assignment go on disk (issue 12, point 7;
//! figures in docs/PERFORMANCE.md, `## hb-store`, "Disk per assignment"):
//!
//! ```text
//! cargo run --release -p hb-scheduler --example disk_per_assignment -- [assignments] [processes] [sled|fjall]
//! ```
//!
//! Builds `assignments` (default 100,000) signed assignments round-robin
//! over `processes` (default 1,000) in a fresh store of the given embedded
//! backend (default sled), exactly as a
//! scheduler server stages them (`ServerCore::decide`: the assignment, a
//! `Require` of the previous slot, the dedup entry, the definition in the
//! message cache at slot 0), each body a signed message of the bench's
//! shape. Batches are applied 64 at a time, each group flushed, as group
//! commit does under 64 clients. Then it prints the CPU time the process
//! spent building it (background threads included), the logical bytes per
//! record kind, the bytes of the store's files per assignment (for fjall
//! also after a reopen, once its journals were flushed into tables), and
//! the time to open the store again: right after it was written (the kernel may still
//! be writing it back), after `sync` with its files dropped from the page
//! cache (cold), and warm.

#[path = "../benches/support/page_cache.rs"]
mod page_cache;
use page_cache::evict_page_cache;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_message::{canonical, Message, NodeKey, Value};
use hb_scheduler::server_core::{Decision, Request};
use hb_scheduler::{ChainTip, DedupPolicy, Sequencer, ServerCore};
use hb_store::{Batch, Direction, FjallStore, SledOptions, SledStore, Store, StoreError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let procs: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let backend = match args.get(3).map(String::as_str) {
        None | Some("sled") => Backend::Sled,
        Some("fjall") => Backend::Fjall,
        Some(other) => return Err(format!("unknown backend {other:?} (sled or fjall)").into()),
    };
    let keep = std::env::var_os("HB_DISK_KEEP").map(std::path::PathBuf::from);
    // Batches per group (64 clients' worth by default), and whether each
    // group is flushed (as group commit does) or only the last one.
    let group: usize = std::env::var("HB_DISK_GROUP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
        .max(1);
    let flush_each = std::env::var("HB_DISK_FLUSH").map_or(true, |v| v != "0");
    let tmp = tempfile::tempdir()?;
    let dir = keep.unwrap_or_else(|| tmp.path().join("store"));
    let options = SledOptions {
        flush_every_ms: None,
        ..SledOptions::default()
    };
    let store = backend.open(&dir, &options)?;
    let node = NodeKey::from_seed(&[9; 32]);
    let client = NodeKey::from_seed(&[1; 32]);

    // One server core per process, its definition at slot 0.
    let mut cores = Vec::with_capacity(procs);
    let mut pending: Vec<Batch> = Vec::with_capacity(group);
    let mut written = 0usize;
    let (mut record_bytes, mut message_bytes, mut body_bytes) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let cpu_before = cpu_time();
    let flush = |pending: &mut Vec<Batch>| -> Result<(), StoreError> {
        for outcome in store.apply_group(std::mem::take(pending)) {
            outcome?;
        }
        if flush_each {
            store.flush()?;
        }
        Ok(())
    };
    for p in 0..procs {
        let definition = Message::new()
            .with("type", "Process")?
            .with("device", "process@1.0")?
            .with("scheduler", node.address())?
            .with("execution-device", "test-device@1.0")?
            .with("nonce", p as i64)?
            .commit(&client, None)?;
        let pid = definition.id_all()?;
        let mut core = ServerCore::new(Sequencer::new(pid), DedupPolicy::Off);
        let batch = decide(&mut core, definition, &node, 0)?;
        pending.push(batch);
        if pending.len() == group {
            flush(&mut pending)?;
        }
        cores.push(core);
        written += 1;
    }
    let mut n = 1i64;
    while written < total {
        for core in cores.iter_mut() {
            if written == total {
                break;
            }
            let pid = core.pid();
            let body = Message::new()
                .with("target", pid.to_human())?
                .with("action", "Ping")?
                .with("n", Value::Int(n))?
                .commit(&client, None)?;
            body_bytes += canonical::encode_whole(&body).len() as u64;
            let batch = decide(core, body, &node, n)?;
            pending.push(batch);
            if pending.len() == group {
                flush(&mut pending)?;
            }
            written += 1;
        }
        n += 1;
    }
    flush(&mut pending)?;
    store.flush()?;
    let build = started.elapsed();
    let build_cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);

    // Logical bytes per record kind, read back from the store.
    let mut kinds: Vec<(String, u64, u64, u64)> = Vec::new();
    let mut start = Vec::new();
    loop {
        let chunk = store.range(&start, None, Direction::Forward, 4096)?;
        let Some((last, _)) = chunk.last() else { break };
        start = last.clone();
        start.push(0);
        for (k, v) in &chunk {
            let kind = k
                .iter()
                .position(|b| *b == b'/')
                .map_or("?".to_string(), |i| {
                    String::from_utf8_lossy(&k[..=i]).into()
                });
            if kind == "sched/" {
                record_bytes += v.len() as u64;
            }
            match kinds.iter_mut().find(|e| e.0 == kind) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += k.len() as u64;
                    e.3 += v.len() as u64;
                }
                None => kinds.push((kind, 1, k.len() as u64, v.len() as u64)),
            }
        }
    }
    // The canonical form of the stored assignments (read one per process).
    let schedule = hb_store::SchedulerCache::new(store.clone() as Arc<dyn Store>);
    let mut sample = 0u64;
    for core in &cores {
        if let Some(r) = schedule.read(&core.pid(), 1)? {
            message_bytes += canonical::encode_whole(&r.assignment).len() as u64;
            sample += 1;
        }
    }
    let on_disk = store.bytes_on_disk().unwrap_or(0);
    drop(schedule);
    drop(store);
    let per = |b: u64| b as f64 / total as f64;
    println!(
        "{total} signed assignments over {procs} processes in {}, built in {build:.1?} (groups of {group}, {}); load average {}",
        backend.name(),
        if flush_each { "each flushed" } else { "one flush at the end" },
        loadavg()
    );
    if let Some(cpu) = build_cpu {
        println!(
            "CPU time of the build (user + system, all threads): {cpu:.1?}, {:.1} µs per assignment",
            cpu.as_secs_f64() * 1e6 / total as f64
        );
    }
    println!("\n| record kind | entries | key bytes per assignment | value bytes per assignment |");
    println!("|---|---|---|---|");
    let (mut keys_total, mut values_total) = (0, 0);
    for (kind, count, k, v) in &kinds {
        println!("| `{kind}` | {count} | {:.1} | {:.1} |", per(*k), per(*v));
        keys_total += k;
        values_total += v;
    }
    println!(
        "| **all** | | {:.1} | {:.1} (together {:.1}) |",
        per(keys_total),
        per(values_total),
        per(keys_total + values_total)
    );
    let others = total.saturating_sub(procs).max(1) as f64;
    println!(
        "\nassignment record {:.1} B on average; canonical whole assignment (slot 1) {:.1} B; canonical body {:.1} B",
        record_bytes as f64 / total as f64,
        message_bytes as f64 / sample.max(1) as f64,
        body_bytes as f64 / others
    );
    print_files(&dir, "right after writing", per);
    println!(
        "{}'s own count of its bytes on disk: {on_disk} ({:.1} per assignment)",
        backend.name(),
        per(on_disk)
    );
    if backend == Backend::Fjall {
        // Closing and reopening flushes what the journals still hold into
        // tables and lets fjall drop them.
        open_timed(backend, &dir, &options)?;
        print_files(&dir, "after one reopen", per);
    }

    // Opening it again.
    let right_after = open_timed(backend, &dir, &options)?;
    let synced = Instant::now();
    sync_all(&dir);
    let sync_time = synced.elapsed();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..3 {
        if evict_page_cache(&dir) {
            cold.push(open_timed(backend, &dir, &options)?);
        }
        warm.push(open_timed(backend, &dir, &options)?);
    }
    cold.sort();
    warm.sort();
    println!(
        "\nopen right after writing {right_after:.1?}; sync {sync_time:.1?}; cold (files dropped from the page cache) {}; warm {}",
        best_median(&cold),
        best_median(&warm)
    );
    Ok(())
}

/// What `ServerCore` stages for `body`.
fn decide(
    core: &mut ServerCore,
    body: Message,
    node: &NodeKey,
    now: i64,
) -> Result<Batch, Box<dyn std::error::Error>> {
    let signed = body.is_signed();
    let body_id = body.id_all()?;
    match core.decide(Request {
        body,
        signed,
        idempotent: false,
        stored_original: None,
        tip: ChainTip::LOCAL,
        now_ms: 1_700_000_000_000 + now,
        key: node,
        fence: None,
    })? {
        Decision::New(assignment, batch) => {
            // Acknowledged at once (the write itself is measured apart), so
            // the core does not keep every assignment as in flight: a
            // server learns of each write from group commit.
            let _ = core.written(
                core.generation(),
                signed.then_some(body_id),
                assignment.slot,
                None,
            );
            Ok(batch)
        }
        Decision::Existing(_) => Err("a fresh message was found scheduled".into()),
    }
}

fn best_median(v: &[Duration]) -> String {
    match (v.first(), v.get(v.len() / 2)) {
        (Some(best), Some(median)) => format!("best {best:.1?} / median {median:.1?}"),
        _ => "not measured".into(),
    }
}

/// The embedded backend under measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sled,
    Fjall,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Fjall => "fjall",
        }
    }

    fn open(self, dir: &Path, options: &SledOptions) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            Backend::Sled => Arc::new(SledStore::open_with(dir, options)?),
            Backend::Fjall => Arc::new(FjallStore::open(dir)?),
        })
    }
}

/// The store's files per assignment, grouped by their first path component
/// (fjall's journals as one group).
fn print_files(dir: &Path, when: &str, per: impl Fn(u64) -> f64) {
    println!("\n| file ({when}) | bytes | per assignment |");
    println!("|---|---|---|");
    let mut files = Vec::new();
    list_files(dir, dir, &mut files);
    let mut groups: std::collections::BTreeMap<String, u64> = Default::default();
    for (name, len) in &files {
        let group = if name.ends_with(".jnl") {
            "*.jnl (journals)".to_string()
        } else {
            name.split('/').next().unwrap_or(name).to_string()
        };
        *groups.entry(group).or_default() += len;
    }
    let mut sum = 0;
    for (name, len) in &groups {
        println!("| {name} | {len} | {:.1} |", per(*len));
        sum += len;
    }
    println!(
        "| **directory** | {sum} ({:.1} MiB) | **{:.1}** |",
        sum as f64 / (1 << 20) as f64,
        per(sum)
    );
}

/// User plus system CPU time of this process so far (Linux), all threads.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) end with ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux configuration we run on.
    Some(Duration::from_millis(ticks * 10))
}

/// Opens the store (retrying while the lock of the previous handle is
/// still being released), returns how long the successful open took.
fn open_timed(backend: Backend, dir: &Path, options: &SledOptions) -> Result<Duration, StoreError> {
    loop {
        let t = Instant::now();
        match backend.open(dir, options) {
            Ok(store) => {
                let took = t.elapsed();
                drop(store);
                return Ok(took);
            }
            Err(StoreError::Locked { .. }) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e),
        }
    }
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        match e.metadata() {
            Ok(m) if m.is_dir() => list_files(root, &path, out),
            Ok(m) => out.push((
                path.strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
                m.len(),
            )),
            Err(_) => {}
        }
    }
}

fn sync_all(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            sync_all(&path);
        } else if let Ok(f) = std::fs::File::open(&path) {
            let _ = f.sync_all();
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
