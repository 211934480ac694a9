//! SPEC §5.7: the operators' chain verifier, as a real command on a real
//! sled store, reports an intact schedule and the first fault precisely,
//! including a whole schedule re-signed by another key (`wrong-signer`).

use std::process::Command;
use std::sync::Arc;

use hb_message::{msg, Id, Message, NodeKey};
use hb_scheduler::{ChainTip, Sequencer};
use hb_store::{AssignmentRecord, SchedulerCache, SledStore, Store};

fn scheduler_key() -> NodeKey {
    NodeKey::from_seed(&[1; 32])
}

/// A definition naming `scheduler_key()` as its scheduler; `tag` makes it
/// unique.
fn definition(tag: &str) -> Message {
    msg! { "type" => "Process", "scheduler" => scheduler_key().address(), "tag" => tag }
}

/// Writes slots 0..slots of `definition`'s schedule, signed by `signer`;
/// returns the pid.
fn write_schedule(
    dir: &std::path::Path,
    definition: Message,
    slots: i64,
    break_at: Option<u64>,
    signer: &NodeKey,
) -> Id {
    let pid = definition.id_all().expect("an ID");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).expect("store opens"));
    let cache = SchedulerCache::new(Arc::clone(&store));
    let mut seq = Sequencer::new(pid);
    for n in 0..slots {
        let body = if n == 0 {
            definition.clone()
        } else {
            msg! { "n" => n }
        };
        let mut a = seq
            .assign(body, ChainTip::LOCAL, n)
            .expect("assign")
            .sign(signer)
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
    pid
}

fn run(dir: &std::path::Path, pid: &str) -> (i32, String) {
    run_with(dir, pid, &[])
}

fn run_with(dir: &std::path::Path, pid: &str, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hb-verify-chain"))
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
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
    let pid = write_schedule(
        dir.path(),
        definition("intact"),
        2_500,
        None,
        &scheduler_key(),
    );
    let (code, out) = run(dir.path(), &pid.to_human());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2500 slots verified"), "{out}");
    assert!(out.contains(scheduler_key().address()), "{out}");
}

#[test]
fn a_schedule_resigned_by_another_key_is_a_wrong_signer_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let forger = NodeKey::from_seed(&[66; 32]);
    let pid = write_schedule(dir.path(), definition("forged"), 50, None, &forger);
    let (code, out) = run(dir.path(), &pid.to_human());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("slot 0: wrong-signer check failed"), "{out}");
    assert!(out.contains(forger.address()), "{out}");
    // The operator names the expected scheduler: the forger's schedule
    // passes only when the operator says the forger is the scheduler.
    let (code, out) = run_with(
        dir.path(),
        &pid.to_human(),
        &["--scheduler", forger.address()],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_with(
        dir.path(),
        &pid.to_human(),
        &["--scheduler", scheduler_key().address()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wrong-signer"), "{out}");
}

#[test]
fn a_tampered_slot_is_reported_with_its_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid = write_schedule(
        dir.path(),
        definition("tampered"),
        1_200,
        Some(1_100),
        &scheduler_key(),
    );
    let (code, out) = run(dir.path(), &pid.to_human());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("slot 1100: signature check failed"), "{out}");
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _) = run(dir.path(), "not-an-id");
    assert_eq!(code, 2);
    let pid = Id::hash(b"p").to_human();
    let (code, _) = run_with(dir.path(), &pid, &["--scheduler", "short"]);
    assert_eq!(code, 2);
}
