//! SPEC §5.7: the operators' chain verifier, as a real command on a real
//! sled store, reports an intact schedule and the first fault precisely.

use std::process::Command;
use std::sync::Arc;

use hb_message::{msg, Id, NodeKey};
use hb_scheduler::{ChainTip, Sequencer};
use hb_store::{AssignmentRecord, SchedulerCache, SledStore, Store};

fn write_schedule(dir: &std::path::Path, pid: Id, slots: i64, break_at: Option<u64>) {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).expect("store opens"));
    let cache = SchedulerCache::new(Arc::clone(&store));
    let key = NodeKey::from_seed(&[1; 32]);
    let mut seq = Sequencer::new(pid);
    for n in 0..slots {
        let mut a = seq
            .assign(msg! { "n" => n }, ChainTip::LOCAL, n)
            .expect("assign")
            .sign(&key)
            .expect("sign");
        if break_at == Some(a.slot) {
            // Tamper with the body after signing.
            let mut body = a.message.get_message("body").expect("body").clone();
            body.insert("n", -1).expect("key");
            a.message.insert("body", body).expect("key");
        }
        cache
            .write(&AssignmentRecord {
                pid,
                slot: a.slot,
                hash_chain: a.chain.to_vec(),
                assignment_id: a.id,
                assignment: a.message,
            })
            .expect("write");
    }
    store.flush().expect("flush");
}

fn run(dir: &std::path::Path, pid: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hb-verify-chain"))
        .arg("--data-dir")
        .arg(dir)
        .arg(pid)
        .output()
        .expect("the command runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn an_intact_schedule_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid = Id::hash(b"intact");
    write_schedule(dir.path(), pid, 2_500, None);
    let (code, out) = run(dir.path(), &pid.to_human());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2500 slots verified"), "{out}");
}

#[test]
fn a_tampered_slot_is_reported_with_its_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid = Id::hash(b"tampered");
    write_schedule(dir.path(), pid, 1_200, Some(1_100));
    let (code, out) = run(dir.path(), &pid.to_human());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("slot 1100: signature check failed"), "{out}");
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _) = run(dir.path(), "not-an-id");
    assert_eq!(code, 2);
}
