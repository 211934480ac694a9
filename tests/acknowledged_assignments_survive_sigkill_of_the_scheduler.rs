//! SPEC §5.4 (`local_confirmation`: a caller is answered only once its
//! assignment, index entry and dedup entry are durable) and §5.7 (a stored
//! schedule verifies from slot 0), through the real scheduler, across
//! SIGKILLs: every acknowledged assignment survives a crash at a random
//! moment under load, at its slot, with its message, and every schedule
//! still verifies (slot continuity, hash chain, signatures, and the signer
//! named by the definition) after repeated kill–restart cycles.
//!
//! # Protocol
//!
//! The parent ([`acknowledged_assignments_survive_sigkill_of_the_scheduler`])
//! re-runs this test binary as a child, `--exact` on
//! [`crash_child_schedules_until_killed`] (ignored unless asked for), with
//! `HB_CRASH_CHILD_DIR=<data dir>` and `HB_CRASH_ROUND=<n>`. The child
//! opens a `SledStore` on the data dir (sled's background flush off, so
//! only group commit makes anything durable), starts a `Scheduler` with a
//! seeded node key in the default `local_confirmation` mode, and writes one
//! line per fact to stdout, flushed at once:
//!
//! - `start <pid> <slot>`: the last slot of `pid` as the restarted
//!   scheduler sees it (`-1`: not registered yet);
//! - `ack <pid> <slot> <message id>`: a schedule call returned `Ok` with
//!   this slot, for the message whose id(all) is given (its registration
//!   at slot 0 included);
//! - `error <detail>`: a schedule call failed (none should).
//!
//! It registers [`PROCESSES`] processes with deterministic definitions if
//! they are not there yet, then schedules unique signed messages from
//! [`TASKS`] concurrent tasks, round-robin over the processes, until it is
//! killed (it stops by itself after [`CHILD_LIFETIME`], which fails the
//! test rather than hanging it).
//!
//! For each of [`ROUNDS`] rounds on the same data dir, the parent reads the
//! child's lines on a thread, waits until the child has reported every
//! process's `start` and acknowledged something, then a pseudo-random
//! 50–400 ms more (from a fixed seed, or `HB_CRASH_SEED`), sends SIGKILL,
//! and keeps every line written before the kill. (The child registers the
//! processes one at a time, each waiting for a flush: under load that can
//! outlast the delay, and a kill before the last `start` line left a
//! process unreported in that round. A kill can still land while the last
//! process registers.) It checks across rounds that no slot was
//! acknowledged twice, that each restart starts at or after every slot
//! acknowledged before, and, at the end, with the store opened in the
//! parent: every acknowledged assignment is at its slot with its message
//! and dedup entry, the stored processes are exactly the registered ones,
//! and every schedule verifies with
//! `verify_stored(.., ExpectedSigner::FromDefinition, ..)`.
//!
//! A failing run keeps its data dir and says so, with the seed to replay
//! its kill delays (`HB_CRASH_SEED=<seed>`); a schedule that does not
//! verify also has the raw record of the faulty slot printed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_message::{Id, Message, NodeKey, Value};
use hb_scheduler::verify_chain::verify_stored;
use hb_scheduler::{
    Assignment, ExpectedSigner, ScheduleRequest, Scheduler, SchedulerBuilder, SchedulerConfig,
    SchedulingMode,
};
use hb_store::{keys, SchedulerCache, SledOptions, SledStore, Store, StoreError};
use hb_testkit::{Harness, NODE_SEED};

const CHILD_DIR_ENV: &str = "HB_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "HB_CRASH_ROUND";
const SEED_ENV: &str = "HB_CRASH_SEED";
const CHILD_TEST: &str = "crash_child_schedules_until_killed";

/// Kill–restart cycles on one data dir.
const ROUNDS: u64 = 12;
/// Processes the child registers and schedules to.
const PROCESSES: i64 = 4;
/// Concurrent scheduling tasks in the child.
const TASKS: u64 = 16;
/// The child stops by itself after this long (it is killed long before).
const CHILD_LIFETIME: Duration = Duration::from_secs(30);
/// How long the parent waits for a child's `start` lines and first
/// acknowledgement.
const FIRST_ACK_WITHIN: Duration = Duration::from_secs(60);
/// The kill comes this long after the child's `start` lines and first
/// acknowledgement (ms, half-open).
const KILL_AFTER_MS: std::ops::Range<u64> = 50..401;

fn node_key() -> NodeKey {
    NodeKey::from_seed(&NODE_SEED)
}

fn client_key() -> NodeKey {
    Harness::client(1)
}

/// The definition of process `i`: the harness's shape, signed by the
/// client, naming the node as scheduler. Deterministic, so every run of the
/// child (and the parent) derives the same pid.
fn definition(i: i64) -> Message {
    Message::new()
        .with("type", "Process")
        .and_then(|m| m.with("device", "process@1.0"))
        .and_then(|m| m.with("scheduler", node_key().address()))
        .and_then(|m| m.with("execution-device", "test-device@1.0"))
        .and_then(|m| m.with("nonce", i))
        .and_then(|m| m.commit(&client_key(), None))
        .expect("a literal definition commits")
}

fn pid_of(i: i64) -> Id {
    definition(i)
        .id_all()
        .expect("a signed definition has an ID")
}

/// A signed message to `pid`, unique per (round, task, n).
fn message(pid: &Id, round: u64, task: u64, n: u64) -> Message {
    let int = |v: u64| Value::Int(i64::try_from(v).expect("small counters"));
    Message::new()
        .with("target", pid.to_human())
        .and_then(|m| m.with("action", "Ping"))
        .and_then(|m| m.with("round", int(round)))
        .and_then(|m| m.with("task", int(task)))
        .and_then(|m| m.with("n", int(n)))
        .and_then(|m| m.commit(&client_key(), None))
        .expect("a literal message commits")
}

/// One line to stdout, flushed: the parent must see every line written
/// before the kill.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout is writable");
    out.flush().expect("stdout flushes");
}

/// The child role: only does something when the parent sets
/// `HB_CRASH_CHILD_DIR`; schedules until it is killed.
#[test]
#[ignore = "child role of acknowledged_assignments_survive_sigkill_of_the_scheduler"]
fn crash_child_schedules_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV)
        .expect("the parent sets the round")
        .parse()
        .expect("the round is a number");
    // End libtest's "test <name> ... " so that each fact starts a line.
    say(format_args!(""));
    // No background flushing: only group commit makes writes durable.
    let options = SledOptions {
        flush_every_ms: None,
        ..SledOptions::default()
    };
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open_with(&dir, &options).expect("the child opens the store"));
    actix::System::new().block_on(async move {
        let config = SchedulerConfig {
            mode: SchedulingMode::LocalConfirmation,
            ..SchedulerConfig::default()
        };
        let scheduler = SchedulerBuilder::new(store, node_key())
            .config(config)
            .start()
            .expect("the scheduler starts");
        let pids = register(&scheduler).await;
        let stop_at = tokio::time::Instant::now() + CHILD_LIFETIME;
        let tasks = (0..TASKS).map(|task| {
            let scheduler = scheduler.clone();
            let pids = pids.clone();
            async move {
                let mut n = 0;
                while tokio::time::Instant::now() < stop_at {
                    let index = usize::try_from((n * TASKS + task) % pids.len() as u64)
                        .expect("a small index");
                    let pid = pids[index];
                    schedule_and_say(&scheduler, message(&pid, round, task, n)).await;
                    n += 1;
                }
            }
        });
        futures::future::join_all(tasks).await;
        scheduler.shutdown().await;
    });
}

/// Registers the processes that are not registered yet; says where each
/// schedule starts.
async fn register(scheduler: &Scheduler) -> Vec<Id> {
    let mut pids = Vec::new();
    for i in 0..PROCESSES {
        let def = definition(i);
        let pid = def.id_all().expect("a signed definition has an ID");
        let current = scheduler
            .current(pid)
            .await
            .expect("the scheduler reads a schedule's head");
        let slot = current.as_ref().map_or(-1, |c| c.slot);
        say(format_args!("start {} {slot}", pid.to_human()));
        if current.is_none() {
            schedule_and_say(scheduler, def).await;
        }
        pids.push(pid);
    }
    pids
}

/// Schedules `message`; on success says `ack`, on failure `error`. The
/// line is written only after the call returned.
async fn schedule_and_say(scheduler: &Scheduler, message: Message) {
    let id = message.id_all().expect("a signed message has an ID");
    let reply = scheduler
        .schedule(ScheduleRequest {
            message,
            ..ScheduleRequest::default()
        })
        .await;
    match reply {
        Ok(a) => say(format_args!(
            "ack {} {} {}",
            a.pid.to_human(),
            a.slot,
            id.to_human()
        )),
        Err(e) => say(format_args!("error {} {e}", id.to_human())),
    }
}

/// One line of the child, parsed.
#[derive(Debug)]
enum Fact {
    Start { pid: Id, slot: i64 },
    Ack { pid: Id, slot: u64, id: Id },
    Error(String),
}

fn parse(line: &str) -> Option<Fact> {
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let id = |w: Option<&str>| Id::parse(w.unwrap_or_default()).ok();
    let fact = match kind {
        "start" => Fact::Start {
            pid: id(words.next())?,
            slot: words.next()?.parse().ok()?,
        },
        "ack" => Fact::Ack {
            pid: id(words.next())?,
            slot: words.next()?.parse().ok()?,
            id: id(words.next())?,
        },
        "error" => Fact::Error(line.to_string()),
        _ => return None,
    };
    Some(fact)
}

/// splitmix64: a small deterministic generator for the kill delays.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of the kill delays: fixed, so a failure replays, unless
/// `HB_CRASH_SEED` gives another (to explore other kill moments).
fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(seed) => seed.parse().expect("HB_CRASH_SEED is a number"),
        Err(_) => 0x6862_2d63_7261_7368,
    }
}

fn kill_delay(seed: u64, round: u64) -> Duration {
    let mut state = seed ^ round;
    let span = KILL_AFTER_MS.end - KILL_AFTER_MS.start;
    Duration::from_millis(KILL_AFTER_MS.start + splitmix64(&mut state) % span)
}

/// What one round saw.
struct Round {
    facts: Vec<Fact>,
    killed_after: Duration,
}

/// Runs one child on `dir`, kills it `after` it reported every process's
/// head and acknowledged something,
/// and returns every line it wrote before dying.
fn run_and_kill(dir: &Path, round: u64, after: Duration) -> Round {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel::<Fact>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(fact) = parse(&line) {
                if tx.send(fact).is_err() {
                    break;
                }
            } else {
                assert!(
                    !line.starts_with("ack") && !line.starts_with("start"),
                    "malformed line from the child: {line:?}"
                );
            }
        }
    });
    let mut facts = Vec::new();
    // Until every process's head is reported and something is
    // acknowledged (bounded)…
    let started = Instant::now();
    let (mut starts, mut acked) = (0, false);
    loop {
        let left = FIRST_ACK_WITHIN.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(fact) => {
                match fact {
                    Fact::Start { .. } => starts += 1,
                    Fact::Ack { .. } => acked = true,
                    Fact::Error(_) => {}
                }
                facts.push(fact);
                if acked && starts >= PROCESSES {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "round {round}: within {FIRST_ACK_WITHIN:?} the child reported {starts} of \
                     {PROCESSES} heads and acknowledged {}",
                    if acked { "something" } else { "nothing" }
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The child ended, or the reader gave up on a bad line.
                let _ = child.kill();
                let status = child.wait().expect("the child is reaped");
                panic!("round {round}: the child ended ({status}) before acknowledging anything")
            }
        }
    }
    // …then under load for `after`, then SIGKILL.
    let kill_at = Instant::now() + after;
    while let Some(left) = kill_at.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(fact) => facts.push(fact),
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL is sent");
    let status = child.wait().expect("the child is reaped");
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the child was not running when killed ({status})"
    );
    reader.join().expect("the reader thread ends with the pipe");
    // Lines written before the kill are still read from the pipe.
    drain(&rx, &mut facts);
    Round {
        facts,
        killed_after: after,
    }
}

fn drain(rx: &Receiver<Fact>, facts: &mut Vec<Fact>) {
    while let Ok(fact) = rx.try_recv() {
        facts.push(fact);
    }
}

/// Opens the store once the dead child's lock is released.
fn open_when_free(dir: &Path) -> Arc<dyn Store> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(dir) {
            Ok(store) => return Arc::new(store),
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("the parent cannot open the store: {e}"),
        }
    }
}

/// The run's data dir: removed when the test passes, kept when it fails
/// (a panic), with the seed and the path printed, so that the store can be
/// examined and the kill delays replayed.
struct KeptOnFailure {
    root: PathBuf,
    seed: u64,
}

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "FAILED with {SEED_ENV}={}: the store is kept in {}",
                self.seed,
                self.root.join("store").display()
            );
        } else if let Err(e) = std::fs::remove_dir_all(&self.root) {
            eprintln!("cannot remove {}: {e}", self.root.display());
        }
    }
}

/// What is stored at `pid`'s `slot`, for a failure message: the raw
/// record, and the keys and commitments of the message it decodes to.
fn describe_record(store: &Arc<dyn Store>, pid: &Id, slot: u64) -> String {
    let key = keys::sched(pid, slot);
    let raw = match store.get(&key) {
        Ok(Some(raw)) => raw,
        Ok(None) => return format!("nothing stored at {}", keys::printable(&key)),
        Err(e) => return format!("{} cannot be read: {e}", keys::printable(&key)),
    };
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let decoded = match SchedulerCache::new(Arc::clone(store)).read(pid, slot) {
        Ok(Some(record)) => {
            let m = &record.assignment;
            let keys: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
            format!(
                "keys {keys:?}, commitments {:?}, assignment id {}",
                m.get("commitments"),
                record.assignment_id
            )
        }
        Ok(None) => "vanished".to_string(),
        Err(e) => format!("does not decode: {e}"),
    };
    format!(
        "record {} ({} bytes): {hex}\n  decoded: {decoded}",
        keys::printable(&key),
        raw.len()
    )
}

#[test]
fn acknowledged_assignments_survive_sigkill_of_the_scheduler() {
    let started = Instant::now();
    let seed = seed();
    let kept = KeptOnFailure {
        root: tempfile::Builder::new()
            .prefix("hb-crash-")
            .tempdir()
            .expect("a temporary directory")
            .keep(),
        seed,
    };
    let dir = kept.root.join("store");
    let pids: Vec<Id> = (0..PROCESSES).map(pid_of).collect();
    eprintln!(
        "kill delays from seed {seed} ({SEED_ENV}), store in {}",
        dir.display()
    );
    // Every acknowledgement, as (round, pid, slot, message), over all rounds.
    let mut acks_seen: Vec<(u64, Id, u64, Id)> = Vec::new();
    // The message acknowledged at each (pid, slot), and in which round.
    let mut acked: BTreeMap<(Id, u64), (u64, Id)> = BTreeMap::new();
    // The highest slot acknowledged so far, per process.
    let mut highest: BTreeMap<Id, i64> = pids.iter().map(|p| (*p, -1)).collect();
    // Where the last restart started, per process.
    let mut last_start: BTreeMap<Id, i64> = pids.iter().map(|p| (*p, -1)).collect();
    let mut acks_per_round = Vec::new();

    for round in 0..ROUNDS {
        let run = run_and_kill(&dir, round, kill_delay(seed, round));
        let mut acks = 0;
        let mut starts = 0;
        for fact in run.facts {
            match fact {
                Fact::Start { pid, slot } => {
                    assert!(pids.contains(&pid), "round {round}: unknown process {pid}");
                    // The restart lost nothing acknowledged, and schedules
                    // only grow from one restart to the next.
                    assert!(
                        slot >= highest[&pid] && slot >= last_start[&pid],
                        "round {round}: {pid} restarted at slot {slot}, but slot {} was \
                         acknowledged and the previous restart began at {}",
                        highest[&pid],
                        last_start[&pid]
                    );
                    last_start.insert(pid, slot);
                    starts += 1;
                }
                Fact::Ack { pid, slot, id } => {
                    assert!(pids.contains(&pid), "round {round}: unknown process {pid}");
                    acks_seen.push((round, pid, slot, id));
                    if let Some((then, earlier)) = acked.insert((pid, slot), (round, id)) {
                        panic!(
                            "round {round}: {pid} slot {slot} acknowledged twice, for {earlier} \
                             in round {then} and now for {id}"
                        );
                    }
                    let h = highest.get_mut(&pid).expect("a known process");
                    *h = (*h).max(i64::try_from(slot).expect("a small slot"));
                    acks += 1;
                }
                Fact::Error(line) => panic!("round {round}: a schedule call failed: {line}"),
            }
        }
        assert_eq!(
            starts, PROCESSES,
            "round {round}: the child reported every process's head"
        );
        assert!(
            acks > 0,
            "round {round}: no acknowledgement before the kill"
        );
        eprintln!(
            "round {round}: killed {:?} after the heads and the first ack; {acks} acks",
            run.killed_after
        );
        acks_per_round.push(acks);
    }

    // The child is dead: the parent opens the store and checks everything.
    let store = open_when_free(&dir);
    let cache = SchedulerCache::new(Arc::clone(&store));
    let mut stored = cache.processes().expect("the processes are listed");
    stored.sort();
    let mut registered = pids.clone();
    registered.sort();
    assert_eq!(stored, registered, "exactly the registered processes");
    for &(round, pid, slot, id) in &acks_seen {
        let record = cache
            .read(&pid, slot)
            .expect("the store reads")
            .unwrap_or_else(|| panic!("round {round}: {pid} acknowledged slot {slot} is missing"));
        let assignment =
            Assignment::from_message(record.assignment.clone()).unwrap_or_else(|why| {
                panic!("round {round}: {pid} slot {slot}: malformed assignment: {why}")
            });
        assert_eq!(
            (assignment.pid, assignment.slot, assignment.body_id),
            (pid, slot, id),
            "round {round}: {pid} slot {slot}: the acknowledged message is not the stored one"
        );
        let dedup = cache
            .dedup(&pid, &id)
            .expect("the store reads")
            .unwrap_or_else(|| panic!("round {round}: {pid} slot {slot}: no dedup entry for {id}"));
        assert_eq!(
            (dedup.slot, dedup.assignment_id),
            (slot, record.assignment_id),
            "round {round}: {pid} slot {slot}: the dedup entry points elsewhere"
        );
    }
    let mut slots = Vec::new();
    for pid in &pids {
        let report = verify_stored(
            Arc::clone(&store),
            *pid,
            ExpectedSigner::FromDefinition,
            |_| {},
        )
        .expect("the store reads")
        .unwrap_or_else(|fault| {
            panic!(
                "{pid}: the schedule does not verify: {fault}\n{}",
                describe_record(&store, pid, fault.slot)
            )
        });
        assert_eq!(report.signer.as_deref(), Some(node_key().address()));
        let acked_up_to = u64::try_from(highest[pid] + 1).expect("each process was acknowledged");
        assert!(
            report.slots >= acked_up_to,
            "{pid}: {} slots verified, slot {} was acknowledged",
            report.slots,
            highest[pid]
        );
        assert!(
            i64::try_from(report.slots).expect("a small schedule") > last_start[pid],
            "{pid}: {} slots verified, the last restart began at slot {}",
            report.slots,
            last_start[pid]
        );
        slots.push(report.slots);
    }
    eprintln!(
        "{ROUNDS} rounds, {} acks (per round {acks_per_round:?}), slots per process {slots:?}, \
         {:?}",
        acks_seen.len(),
        started.elapsed()
    );
}
