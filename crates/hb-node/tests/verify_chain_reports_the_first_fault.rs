//! SPEC §5.7: `hb verify-chain`, on a real sled store (`--data-dir`) and
//! over HTTP from a node serving that store, reports an intact schedule
//! and the first fault precisely, including a whole schedule re-signed by
//! another key (`wrong-signer`), which passes only when the operator names
//! that key with `--scheduler`. Bad usage exits 2.

mod cli_support;

use std::path::Path;
use std::sync::Arc;

use cli_support::{hb, Run, Serve};
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

/// Writes slots 0..slots of `definition`'s schedule into a sled store in
/// `dir`, signed by `signer`, the body at `break_at` altered after
/// signing; returns the pid.
fn write_schedule(
    dir: &Path,
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

/// `hb verify-chain <pid> --data-dir <dir> extra…`.
fn on_store(dir: &Path, pid: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "verify-chain",
        pid,
        "--data-dir",
        dir.to_str().expect("UTF-8"),
    ];
    args.extend(extra);
    hb(dir, &args)
}

/// `hb verify-chain <pid> --node <url> extra…` against a node serving
/// `dir`.
fn over_http(dir: &Path, pid: &str, extra: &[&str]) -> Run {
    let node = Serve::start(dir);
    let mut args = vec!["verify-chain", pid, "--node", node.url.as_str()];
    args.extend(extra);
    let run = hb(dir, &args);
    assert_eq!(node.stop(), 0);
    run
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
    )
    .to_human();
    for run in [
        on_store(dir.path(), &pid, &[]),
        over_http(dir.path(), &pid, &[]),
    ] {
        assert!(run.ok().contains("2500 slots verified"), "{run:?}");
        assert!(run.ok().contains(scheduler_key().address()), "{run:?}");
    }
    let json = on_store(dir.path(), &pid, &["--json"]).json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["slots"], 2500);
}

#[test]
fn a_schedule_resigned_by_another_key_is_a_wrong_signer_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let forger = NodeKey::from_seed(&[66; 32]);
    let pid = write_schedule(dir.path(), definition("forged"), 50, None, &forger).to_human();
    for run in [
        on_store(dir.path(), &pid, &[]),
        over_http(dir.path(), &pid, &[]),
    ] {
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stdout.contains("slot 0: wrong-signer check failed"),
            "{run:?}"
        );
        assert!(run.stdout.contains(forger.address()), "{run:?}");
    }
    // The forger's schedule passes only when the operator names the forger
    // as the scheduler.
    let named = ["--scheduler", forger.address()];
    assert_eq!(on_store(dir.path(), &pid, &named).code, 0);
    assert_eq!(over_http(dir.path(), &pid, &named).code, 0);
    let honest_key = scheduler_key();
    let honest = ["--scheduler", honest_key.address()];
    let run = on_store(dir.path(), &pid, &honest);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("wrong-signer"), "{run:?}");
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
    )
    .to_human();
    for run in [
        on_store(dir.path(), &pid, &[]),
        over_http(dir.path(), &pid, &[]),
    ] {
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stdout.contains("slot 1100: signature check failed"),
            "{run:?}"
        );
    }
    let json = on_store(dir.path(), &pid, &["--json"]).json_of_failure();
    assert_eq!(json["valid"], false);
    assert_eq!(json["fault"]["slot"], 1100);
    assert_eq!(json["fault"]["check"], "signature");
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    on_store(dir.path(), "not-an-id", &[]).fails(2, "hb: usage: ");
    let pid = Id::hash(b"p").to_human();
    on_store(dir.path(), &pid, &["--scheduler", "short"]).fails(2, "hb: usage: ");
    hb(dir.path(), &["verify-chain"]).fails(2, "hb: usage: ");
    hb(
        dir.path(),
        &["verify-chain", &pid, "--data-dir", "/no/such/dir"],
    )
    .fails(2, "hb: unreadable-file: ");
}
