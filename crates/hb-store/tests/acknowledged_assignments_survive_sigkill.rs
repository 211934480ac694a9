//! SPEC §3.2: an acknowledged caller finds its data after a crash, and a
//! schedule never has a gap.
//!
//! The parent re-spawns this test binary as a child (selected by an
//! environment variable) that writes assignments through group commit from
//! several threads, each pipelining several batches like a scheduler
//! server, each batch in the scheduler's real shape (see [`batch_for`]),
//! and prints every acknowledgement. The parent kills the child with
//! SIGKILL at a random moment, reopens the store, and checks that every
//! acknowledged assignment is present and intact, that every stored slot
//! is exactly what was written, that each schedule is gap-free (all of it,
//! not only below the acknowledged slots), and that the dedup and message
//! entries are those of the batch shape.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_message::{msg, Id, Message, NodeKey, Value};
use hb_store::{
    keys, AssignmentRecord, Batch, DedupEntry, Direction, FjallStore, GroupCommit, MessageCache,
    SchedulerCache, SledOptions, SledStore, Store, StoreError,
};
use rand::Rng;

const CHILD_ENV: &str = "HB_STORE_CRASH_CHILD_DIR";
const CHILD_TEST: &str = "crash_child_writes_until_killed";
/// The backend the child writes to: `sled` (the default) or `fjall`.
const BACKEND_ENV: &str = "HB_STORE_CRASH_BACKEND";
const WRITERS: u8 = 6;
/// Batches each writer has in flight, as a scheduler server pipelines its
/// assignments: slot n+1 is submitted before slot n is acknowledged.
const IN_FLIGHT: usize = 8;
const ROUNDS: usize = 5;
/// The writer whose write of slot [`FAIL_AT`] fails in the store (its
/// batch requires [`FAIL_KEY`], never written): the slots pipelined behind
/// it must fail too, and its schedule must end just before it, gap-free.
const FAIL_WRITER: u8 = 0;
const FAIL_AT: u64 = 40;
const FAIL_KEY: &[u8] = b"test/never-written";

/// The process definition of writer `w`: the body of its slot 0.
fn definition(writer: u8) -> Message {
    let key = NodeKey::from_seed(&[writer + 100; 32]);
    msg! { "type" => "Process", "writer" => writer as i64, "scheduler" => "crash-test" }
        .commit(&key, None)
        .expect("literal message commits")
}

/// The process of writer `w`: the ID of its definition, as for a real
/// process.
fn pid_of(writer: u8) -> Id {
    definition(writer).id_all().expect("just signed")
}

/// Whether the body of `slot` is signed: every slot but one in three, so
/// both batch shapes (with and without a dedup entry) are written.
fn signed(slot: u64) -> bool {
    slot % 3 != 2
}

/// The scheduled message of `(writer, slot)`: deterministic, about 600
/// bytes once signed.
fn body(writer: u8, slot: u64) -> Message {
    if slot == 0 {
        return definition(writer);
    }
    let filler: Vec<u8> = (0..400).map(|i| (i as u64 * 31 + slot) as u8).collect();
    let message = msg! { "action" => "crash-test", "writer" => writer as i64, "n" => slot as i64, "data" => filler };
    if !signed(slot) {
        return message;
    }
    let key = NodeKey::from_seed(&[writer + 100; 32]);
    message.commit(&key, None).expect("literal message commits")
}

/// The assignment of `(writer, slot)`, as the scheduler would build it.
fn assignment(node: &NodeKey, writer: u8, slot: u64) -> AssignmentRecord {
    let body = body(writer, slot);
    let chain = Id::hash(format!("chain/{writer}/{slot}").as_bytes())
        .0
        .to_vec();
    let signed = msg! {
        "process" => pid_of(writer).to_human(),
        "slot" => slot as i64,
        "hash-chain" => hb_message::encode_base64url(&chain),
        "body" => body,
    }
    .commit(node, None)
    .expect("literal message commits");
    AssignmentRecord {
        pid: pid_of(writer),
        slot,
        hash_chain: chain,
        assignment_id: signed.id_all().expect("just signed"),
        assignment: signed,
    }
}

fn is_process(message: &Message) -> bool {
    message.get_text("type") == Some("Process")
}

/// One assignment's batch, in the shape of hb-scheduler's
/// `schedule_store::stage` (duplicated here: hb-store cannot depend on the
/// scheduler): the assignment with "must be absent" on its own key; the
/// previous slot required, so a failed pipelined write never leaves a gap;
/// the message-cache entry only for a process definition; the dedup entry
/// only for a signed message.
fn batch_for(record: &AssignmentRecord) -> Result<Batch, StoreError> {
    let body = record
        .assignment
        .get_message("body")
        .expect("assignments carry a body");
    let mut batch = Batch::new();
    SchedulerCache::stage_assignment(&mut batch, record)?;
    if let Some(previous) = record.slot.checked_sub(1) {
        batch.require(keys::sched(&record.pid, previous));
    }
    if is_process(body) {
        MessageCache::stage(&mut batch, body)?;
    }
    if body.commitments().is_some() {
        SchedulerCache::stage_dedup(
            &mut batch,
            &record.pid,
            &body.id_all()?,
            &DedupEntry {
                slot: record.slot,
                assignment_id: record.assignment_id,
            },
        )?;
    }
    Ok(batch)
}

/// The child role: only runs when the parent sets `CHILD_ENV`; writes
/// until it is killed. Each outcome is printed for the parent: `ACK`, the
/// injected failure (`INJECTED`), a slot failing because the one before it
/// failed (`CASCADE`), and anything else (`FAILED …`).
#[test]
#[ignore = "child role of acknowledged_assignments_survive_sigkill"]
fn crash_child_writes_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    // No background flushing: only group commit makes writes durable.
    let options = SledOptions {
        flush_every_ms: None,
        ..SledOptions::default()
    };
    let store: Arc<dyn Store> = match std::env::var(BACKEND_ENV).as_deref() {
        Ok("fjall") => Arc::new(FjallStore::open(&dir).unwrap()),
        _ => Arc::new(SledStore::open_with(&dir, &options).unwrap()),
    };
    let writer = Arc::new(GroupCommit::start(store).unwrap());
    let node = NodeKey::from_seed(&[42; 32]);
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let writer = writer.clone();
            let node = node.clone();
            std::thread::spawn(move || {
                // The failing writer stops once everything it pipelined
                // behind the failed write has failed; the others write on.
                let last = if w == FAIL_WRITER {
                    FAIL_AT + IN_FLIGHT as u64 - 1
                } else {
                    u64::MAX
                };
                let mut in_flight = VecDeque::new();
                for slot in 0..=last {
                    let record = assignment(&node, w, slot);
                    let mut batch = batch_for(&record).unwrap();
                    if w == FAIL_WRITER && slot == FAIL_AT {
                        batch.require(FAIL_KEY);
                    }
                    in_flight.push_back((slot, writer.submit(batch)));
                    if in_flight.len() == IN_FLIGHT {
                        let (slot, ack) = in_flight.pop_front().expect("the queue is full");
                        if !settle(w, slot, futures::executor::block_on(ack)) {
                            return;
                        }
                    }
                }
                while let Some((slot, ack)) = in_flight.pop_front() {
                    if !settle(w, slot, futures::executor::block_on(ack)) {
                        return;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Reports the outcome of `(w, slot)`; `false` when it was unexpected.
fn settle(w: u8, slot: u64, outcome: Result<(), StoreError>) -> bool {
    let failing = w == FAIL_WRITER && slot >= FAIL_AT;
    let line = match outcome {
        Ok(()) if !failing => format!("ACK {w} {slot}"),
        Err(StoreError::Missing { key }) if failing => {
            let injected = slot == FAIL_AT && key == keys::printable(FAIL_KEY);
            let cascade =
                slot > FAIL_AT && key == keys::printable(&keys::sched(&pid_of(w), slot - 1));
            match (injected, cascade) {
                (true, _) => format!("INJECTED {w} {slot}"),
                (_, true) => format!("CASCADE {w} {slot}"),
                _ => format!("FAILED {w} {slot}: requires the wrong key {key}"),
            }
        }
        Ok(()) => format!("FAILED {w} {slot}: stored although an earlier write failed"),
        Err(e) => format!("FAILED {w} {slot}: {e}"),
    };
    let expected = !line.starts_with("FAILED");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
    expected
}

/// One line a child printed.
enum Line {
    Ack(u8, u64),
    Injected,
    Cascade,
    Failed(String),
}

/// What one child reported before it was killed.
#[derive(Default)]
struct Reported {
    /// Acknowledged slots per writer.
    acks: BTreeMap<u8, Vec<u64>>,
    /// Whether the injected failure was reported.
    injected: bool,
    /// Slots that failed because the one before them had.
    cascaded: usize,
    /// Unexpected outcomes (there must be none).
    failures: Vec<String>,
}

impl Reported {
    fn take(&mut self, line: Line) {
        match line {
            Line::Ack(w, s) => self.acks.entry(w).or_default().push(s),
            Line::Injected => self.injected = true,
            Line::Cascade => self.cascaded += 1,
            Line::Failed(failure) => self.failures.push(failure),
        }
    }
}

/// Parses one line of the child's output.
fn parse_line(line: &str) -> Option<Line> {
    if let Some(at) = line.find("FAILED ") {
        return Some(Line::Failed(line[at..].to_string()));
    }
    // libtest may print "test <name> ... " before the first line.
    for (tag, kind) in [("ACK ", 0), ("INJECTED ", 1), ("CASCADE ", 2)] {
        let Some(at) = line.find(tag) else {
            continue;
        };
        let mut parts = line[at + tag.len()..].split_whitespace();
        let w = parts.next().and_then(|s| s.parse().ok())?;
        let s = parts.next().and_then(|s| s.parse().ok())?;
        return Some(match kind {
            0 => Line::Ack(w, s),
            1 => Line::Injected,
            _ => Line::Cascade,
        });
    }
    None
}

/// Runs one child, kills it after `after` past its first report, and
/// returns what it reported.
fn run_and_kill(dir: &Path, backend: &str, after: Duration) -> Reported {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env(BACKEND_ENV, backend)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Line>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(parsed) = parse_line(&line) else {
                continue;
            };
            if tx.send(parsed).is_err() {
                break;
            }
        }
    });
    let mut reported = Reported::default();
    // Wait for the first report (bounded), then let it run.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the child acknowledged nothing within 20 s");
    reported.take(first);
    let deadline = Instant::now() + after;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => reported.take(line),
            Err(_) => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    // Reports printed before the kill are still in the pipe.
    while let Ok(line) = rx.try_recv() {
        reported.take(line);
    }
    reported
}

/// Checks everything stored for `writer`: the schedule is gap-free from
/// slot 0 to its head, every stored slot is exactly what was written, and
/// the dedup and message-cache entries are those of [`batch_for`]. Returns
/// the number of stored slots.
fn check_schedule(store: &Arc<dyn Store>, node: &NodeKey, writer: u8, round: usize) -> u64 {
    let pid = pid_of(writer);
    let schedule = SchedulerCache::new(store.clone());
    let messages = MessageCache::new(store.clone());
    let stored = store
        .scan_prefix(&keys::sched_prefix(&pid), Direction::Forward, usize::MAX)
        .unwrap();
    for (i, (key, _)) in stored.iter().enumerate() {
        assert_eq!(
            keys::parse_sched(key),
            Some((pid, i as u64)),
            "round {round}, writer {writer}: gap in the schedule before the {i}th slot"
        );
    }
    let n = stored.len() as u64;
    match schedule.latest(&pid).unwrap() {
        None => assert_eq!(n, 0),
        Some(head) => assert_eq!(head.slot + 1, n, "round {round}, writer {writer}"),
    }
    let page = schedule.range(&pid, 0, u64::MAX).unwrap();
    assert_eq!(page.len() as u64, n, "round {round}, writer {writer}");
    for (slot, got) in (0..).zip(&page) {
        let want = assignment(node, writer, slot);
        assert_eq!(got, &want, "round {round}, writer {writer}, slot {slot}");
        assert!(matches!(
            got.assignment.get("slot"),
            Some(Value::Int(s)) if *s as u64 == slot
        ));
        let body = want.assignment.get_message("body").unwrap();
        let id = body.id_all().unwrap();
        let dedup = schedule.dedup(&pid, &id).unwrap();
        if signed(slot) {
            let entry = DedupEntry {
                slot,
                assignment_id: want.assignment_id,
            };
            assert_eq!(dedup, Some(entry), "round {round}, writer {writer}, {slot}");
        } else {
            assert_eq!(dedup, None, "round {round}, writer {writer}, slot {slot}");
        }
        // Only the process definition goes to the message cache.
        let cached = messages.read(&id).unwrap();
        if slot == 0 {
            assert_eq!(
                cached.as_ref(),
                Some(body),
                "round {round}, writer {writer}"
            );
        } else {
            assert_eq!(cached, None, "round {round}, writer {writer}, slot {slot}");
        }
    }
    // No dedup entry outlives (or precedes) its slot: each came in the
    // assignment's own batch.
    let mut dedup_prefix = keys::DEDUP.to_vec();
    dedup_prefix.extend_from_slice(pid.as_bytes());
    let entries = store
        .scan_prefix(&dedup_prefix, Direction::Forward, usize::MAX)
        .unwrap();
    let signed_slots = (0..n).filter(|s| signed(*s)).count();
    assert_eq!(
        entries.len(),
        signed_slots,
        "round {round}, writer {writer}"
    );
    n
}

#[test]
fn acknowledged_assignments_survive_sigkill() {
    survive_sigkill("sled", |dir| Arc::new(SledStore::open(dir).unwrap()));
}

#[test]
fn acknowledged_assignments_survive_sigkill_on_fjall() {
    survive_sigkill("fjall", |dir| Arc::new(FjallStore::open(dir).unwrap()));
}

/// [`ROUNDS`] children on `backend`, each killed at a random moment; the
/// store reopened by `open` after each.
fn survive_sigkill(backend: &str, open: impl Fn(&Path) -> Arc<dyn Store>) {
    let node = NodeKey::from_seed(&[42; 32]);
    let mut rng = rand::thread_rng();
    for round in 0..ROUNDS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let after = Duration::from_millis(rng.gen_range(50..700));
        let reported = run_and_kill(&dir, backend, after);
        assert!(
            reported.failures.is_empty(),
            "round {round}: writes failed in the child: {:?}",
            reported.failures
        );
        let acks = &reported.acks;
        let total: usize = acks.values().map(Vec::len).sum();
        assert!(total > 0, "round {round}: no acknowledgement");

        let store = open(&dir);
        let mut stored = 0;
        for w in 0..WRITERS {
            let n = check_schedule(&store, &node, w, round);
            stored += n;
            if w == FAIL_WRITER {
                // Nothing at or after the failed write, even what was
                // pipelined behind it.
                assert!(
                    n <= FAIL_AT,
                    "round {round}: {n} slots stored past the failure"
                );
                if reported.injected {
                    assert_eq!(n, FAIL_AT, "round {round}");
                }
            }
            // Every acknowledged slot is stored (and, checked above, gap-free
            // below it and exactly as written).
            if let Some(&highest) = acks.get(&w).and_then(|s| s.iter().max()) {
                assert!(
                    highest < n,
                    "round {round}, writer {w}: acknowledged slot {highest} lost \
                     ({n} slots stored)"
                );
            }
        }
        eprintln!(
            "{backend} round {round}: killed after {after:?}; {total} acknowledged assignments verified, \
             {stored} stored, every schedule gap-free; injected failure {}, {} pipelined \
             writes failed behind it",
            if reported.injected {
                "reached"
            } else {
                "not reached"
            },
            reported.cascaded
        );
    }
}
