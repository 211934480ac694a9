//! SPEC §3.3: a corrupt head record of a schedule reads back as
//! `StoreError::Corrupt { key, .. }` naming its key, from every reader of
//! the scheduler cache (`read`, `latest`, `latest_record`, `range`) and on
//! every backend, never as another error variant, a panic or wrong data.
//! The key it names parses back to `(pid, slot)` with `keys::parse_sched`,
//! so the scheduler can report `CorruptSchedule { pid, slot }`.

use std::sync::Arc;

use hb_message::{msg, Id, NodeKey};
use hb_store::{keys, AssignmentRecord, MemoryStore, SchedulerCache, SledStore, Store, StoreError};

/// A store and whatever keeps it alive.
struct Subject {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Subject {
    Subject {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

fn sled() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("s")).unwrap();
    Subject {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

fn record(pid: Id, slot: u64) -> AssignmentRecord {
    let assignment = msg! { "slot" => slot as i64, "body" => msg! { "n" => slot as i64 } }
        .commit(&NodeKey::from_seed(&[3; 32]), None)
        .unwrap();
    AssignmentRecord {
        pid,
        slot,
        hash_chain: vec![slot as u8; 32],
        assignment_id: assignment.id_all().unwrap(),
        assignment,
    }
}

/// `body` followed by its CRC-32: passes the stored form's checksum, so
/// decoding itself must catch the damage.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut bytes = body.to_vec();
    bytes.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    bytes
}

/// Damaged versions of the good record `good` of `(pid, slot)`, each with
/// what it is.
fn damage(good: &[u8], pid: Id, slot: u64) -> Vec<(&'static str, Vec<u8>)> {
    let body = &good[..good.len() - 4];
    let mut flipped = good.to_vec();
    flipped[good.len() / 2] ^= 0x10;
    let mut wrong_version = body.to_vec();
    wrong_version[0] = wrong_version[0].wrapping_add(1);
    // A version byte, then a claimed length far past the record limit.
    let mut huge = vec![body[0]];
    huge.extend_from_slice(&[0xff; 8]);
    huge.extend_from_slice(&body[1..]);
    // A good record, of the next slot.
    let elsewhere = {
        let store = Arc::new(MemoryStore::new());
        SchedulerCache::new(store.clone())
            .write(&record(pid, slot + 1))
            .unwrap();
        store.get(&keys::sched(&pid, slot + 1)).unwrap().unwrap()
    };
    vec![
        ("empty", Vec::new()),
        ("one byte", vec![1]),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("last byte cut", good[..good.len() - 1].to_vec()),
        ("bit flip", flipped),
        ("all 0xff", vec![0xff; good.len()]),
        ("text", b"this is not an assignment record".to_vec()),
        (
            "sealed garbage",
            sealed(b"\x01garbage that passes the checksum"),
        ),
        ("sealed, wrong version", sealed(&wrong_version)),
        ("sealed, huge length", sealed(&huge)),
        ("sealed, truncated", sealed(&body[..body.len() / 2])),
        ("another slot's record", elsewhere),
    ]
}

fn expect_corrupt<T: std::fmt::Debug>(
    what: &str,
    reader: &str,
    result: Result<T, StoreError>,
    pid: Id,
    slot: u64,
) {
    let want = keys::printable(&keys::sched(&pid, slot));
    match result {
        Err(StoreError::Corrupt { key, detail }) => {
            assert_eq!(key, want, "{what}: {reader}: {detail}");
            assert_eq!(
                keys::parse_sched(key.as_bytes()),
                Some((pid, slot)),
                "{what}: {reader}: the named key {key} does not parse back"
            );
        }
        other => panic!("{what}: {reader}: expected Corrupt naming {want}, got {other:?}"),
    }
}

fn a_corrupt_head_is_corrupt_from_every_reader(store: Arc<dyn Store>) {
    let cache = SchedulerCache::new(store.clone());
    let pid = Id([0x42; 32]);
    // A neighbouring process, whose schedule must stay readable.
    let other = Id([0x43; 32]);
    let head = 4;
    for slot in 0..=head {
        cache.write(&record(pid, slot)).unwrap();
        cache.write(&record(other, slot)).unwrap();
    }
    let key = keys::sched(&pid, head);
    let good = store.get(&key).unwrap().unwrap();
    for (what, bad) in damage(&good, pid, head) {
        store.put(&key, &bad).unwrap();
        expect_corrupt(what, "read", cache.read(&pid, head), pid, head);
        expect_corrupt(what, "latest", cache.latest(&pid), pid, head);
        expect_corrupt(what, "latest_record", cache.latest_record(&pid), pid, head);
        expect_corrupt(
            what,
            "range(0..=head)",
            cache.range(&pid, 0, head),
            pid,
            head,
        );
        expect_corrupt(
            what,
            "range(head..=head)",
            cache.range(&pid, head, head),
            pid,
            head,
        );
        expect_corrupt(
            what,
            "range(0..)",
            cache.range(&pid, 0, u64::MAX),
            pid,
            head,
        );
        // What is below the head, and the other process, read as before.
        assert_eq!(cache.range(&pid, 0, head - 1).unwrap().len() as u64, head);
        assert_eq!(cache.read(&pid, 0).unwrap(), Some(record(pid, 0)));
        assert_eq!(cache.latest(&other).unwrap().map(|h| h.slot), Some(head));
        assert_eq!(cache.processes().unwrap(), vec![pid, other]);
    }
    store.put(&key, &good).unwrap();
    assert_eq!(cache.latest_record(&pid).unwrap(), Some(record(pid, head)));
    assert_eq!(
        cache.range(&pid, 0, u64::MAX).unwrap().len() as u64,
        head + 1
    );
}

/// A schedule whose only record (slot 0) is corrupt, and one whose head is
/// the last possible slot: the key named is still exact.
fn corrupt_heads_at_the_edges_name_their_slot(store: Arc<dyn Store>) {
    let cache = SchedulerCache::new(store.clone());
    for (pid, slot) in [(Id([1; 32]), 0), (Id([0xff; 32]), u64::MAX)] {
        store.put(&keys::sched(&pid, slot), b"\x00garbage").unwrap();
        expect_corrupt("garbage", "read", cache.read(&pid, slot), pid, slot);
        expect_corrupt("garbage", "latest", cache.latest(&pid), pid, slot);
        expect_corrupt("garbage", "range", cache.range(&pid, slot, slot), pid, slot);
    }
}

#[test]
fn memory_a_corrupt_head_is_corrupt_from_every_reader() {
    a_corrupt_head_is_corrupt_from_every_reader(memory().store);
}

#[test]
fn sled_a_corrupt_head_is_corrupt_from_every_reader() {
    let subject = sled();
    a_corrupt_head_is_corrupt_from_every_reader(subject.store.clone());
}

#[test]
fn memory_corrupt_heads_at_the_edges_name_their_slot() {
    corrupt_heads_at_the_edges_name_their_slot(memory().store);
}

#[test]
fn sled_corrupt_heads_at_the_edges_name_their_slot() {
    let subject = sled();
    corrupt_heads_at_the_edges_name_their_slot(subject.store.clone());
}

/// The printable form is parsed strictly: only exactly what
/// `keys::printable` writes for a scheduler key.
#[test]
fn parse_sched_reads_raw_and_printable_keys_only() {
    let pid = Id([9; 32]);
    for slot in [0, 7, u64::MAX] {
        let raw = keys::sched(&pid, slot);
        assert_eq!(keys::parse_sched(&raw), Some((pid, slot)));
        let printable = keys::printable(&raw);
        assert_eq!(keys::parse_sched(printable.as_bytes()), Some((pid, slot)));
    }
    let human = pid.to_human();
    for bad in [
        format!("sched/{human}/"),
        format!("sched/{human}/07"),
        format!("sched/{human}/-1"),
        format!("sched/{human}/1x"),
        format!("sched/{human}/18446744073709551616"),
        format!("sched/{human}/1/2"),
        format!("sched/{human}="),
        format!("sched/{}/1", &human[1..]),
        format!("sched/{human}=/1"),
        format!("proc/{human}/1"),
        format!("dedup/{human}/1"),
    ] {
        assert_eq!(keys::parse_sched(bad.as_bytes()), None, "{bad}");
    }
}
