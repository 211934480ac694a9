//! SPEC §3.2: an acknowledged caller finds its data after a crash.
//!
//! The parent re-spawns this test binary as a child (selected by an
//! environment variable) that writes assignments through group commit from
//! several threads, each assignment in the scheduler's real batch shape
//! (assignment, scheduled message, dedup entry), and prints every
//! acknowledgement. The parent kills the child with SIGKILL at a random
//! moment, reopens the store, and checks that every acknowledged
//! assignment is present and intact, and that each schedule is gap-free.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_message::{msg, Id, Message, NodeKey, Value};
use hb_store::{
    AssignmentRecord, Batch, DedupEntry, GroupCommit, MessageCache, SchedulerCache, SledOptions,
    SledStore, Store, StoreError,
};
use rand::Rng;

const CHILD_ENV: &str = "HB_STORE_CRASH_CHILD_DIR";
const CHILD_TEST: &str = "crash_child_writes_until_killed";
const WRITERS: u8 = 6;
const ROUNDS: usize = 5;

fn pid_of(writer: u8) -> Id {
    Id([writer + 1; 32])
}

/// The scheduled message of `(writer, slot)`: deterministic, about 600
/// bytes once signed.
fn body(writer: u8, slot: u64) -> Message {
    let filler: Vec<u8> = (0..400).map(|i| (i as u64 * 31 + slot) as u8).collect();
    let key = NodeKey::from_seed(&[writer + 100; 32]);
    msg! { "action" => "crash-test", "writer" => writer as i64, "n" => slot as i64, "data" => filler }
        .commit(&key, None)
        .expect("literal message commits")
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

fn batch_for(record: &AssignmentRecord) -> Result<Batch, StoreError> {
    let body = record
        .assignment
        .get_message("body")
        .expect("assignments carry a body");
    let mut batch = Batch::new();
    SchedulerCache::stage_assignment(&mut batch, record)?;
    MessageCache::stage(&mut batch, body)?;
    SchedulerCache::stage_dedup(
        &mut batch,
        &record.pid,
        &body.id_all()?,
        &DedupEntry {
            slot: record.slot,
            assignment_id: record.assignment_id,
        },
    )?;
    Ok(batch)
}

/// The child role: only runs when the parent sets `CHILD_ENV`; writes
/// until it is killed.
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
    let store: Arc<dyn Store> = Arc::new(SledStore::open_with(&dir, &options).unwrap());
    let writer = Arc::new(GroupCommit::start(store).unwrap());
    let node = NodeKey::from_seed(&[42; 32]);
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let writer = writer.clone();
            let node = node.clone();
            std::thread::spawn(move || {
                for slot in 0.. {
                    let record = assignment(&node, w, slot);
                    writer.commit(batch_for(&record).unwrap()).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {w} {slot}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Runs one child, kills it after `after` past its first acknowledgement,
/// and returns the acknowledged slots per writer.
fn run_and_kill(dir: &Path, after: Duration) -> BTreeMap<u8, Vec<u64>> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(u8, u64)>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print "test <name> ... " before the first line.
            let Some(at) = line.find("ACK ") else {
                continue;
            };
            let mut parts = line[at + 4..].split_whitespace();
            let w = parts.next().and_then(|s| s.parse().ok());
            let s = parts.next().and_then(|s| s.parse().ok());
            if let (Some(w), Some(s)) = (w, s) {
                if tx.send((w, s)).is_err() {
                    break;
                }
            }
        }
    });
    let mut acks: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
    // Wait for the first acknowledgement (bounded), then let it run.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the child acknowledged nothing within 20 s");
    acks.entry(first.0).or_default().push(first.1);
    let deadline = Instant::now() + after;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((w, s)) => acks.entry(w).or_default().push(s),
            Err(_) => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    // Acknowledgements printed before the kill are still in the pipe.
    acks_drain(&rx, &mut acks);
    acks
}

fn acks_drain(rx: &std::sync::mpsc::Receiver<(u8, u64)>, acks: &mut BTreeMap<u8, Vec<u64>>) {
    while let Ok((w, s)) = rx.try_recv() {
        acks.entry(w).or_default().push(s);
    }
}

#[test]
fn acknowledged_assignments_survive_sigkill() {
    let node = NodeKey::from_seed(&[42; 32]);
    let mut rng = rand::thread_rng();
    for round in 0..ROUNDS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let after = Duration::from_millis(rng.gen_range(50..700));
        let acks = run_and_kill(&dir, after);
        let total: usize = acks.values().map(Vec::len).sum();
        assert!(total > 0, "round {round}: no acknowledgement");

        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
        let schedule = SchedulerCache::new(store.clone());
        let messages = MessageCache::new(store.clone());
        for (&w, slots) in &acks {
            let pid = pid_of(w);
            let highest = *slots.iter().max().unwrap();
            // Every acknowledged slot is there, with exactly what was written;
            // the schedule has no gap below the highest acknowledged slot.
            let page = schedule.range(&pid, 0, highest).unwrap();
            assert_eq!(
                page.len() as u64,
                highest + 1,
                "round {round}, writer {w}: gap below acknowledged slot {highest}"
            );
            for &slot in slots {
                let want = assignment(&node, w, slot);
                assert_eq!(
                    page[slot as usize], want,
                    "round {round}, writer {w}, slot {slot}"
                );
                let body = want.assignment.get_message("body").unwrap();
                let id = body.id_all().unwrap();
                assert_eq!(messages.read(&id).unwrap().as_ref(), Some(body));
                assert_eq!(
                    schedule.dedup(&pid, &id).unwrap(),
                    Some(DedupEntry {
                        slot,
                        assignment_id: want.assignment_id
                    })
                );
            }
            // The head is at or past the acknowledged slots and intact.
            let head = schedule.latest(&pid).unwrap().unwrap();
            assert!(head.slot >= highest);
            let head_record = schedule.read(&pid, head.slot).unwrap().unwrap();
            assert_eq!(head_record, assignment(&node, w, head.slot));
            assert!(matches!(
                head_record.assignment.get("slot"),
                Some(Value::Int(s)) if *s as u64 == head.slot
            ));
        }
        eprintln!(
            "round {round}: killed after {after:?}; {total} acknowledged assignments verified"
        );
    }
}
