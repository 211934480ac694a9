//! docs/storage.md, "Record format" and "Recovery and bad data": a store
//! written by a build of format 1 (marker `hb-store/1`, assignment records
//! of version 1) opens in this build, which marks it `hb-store/2` before
//! writing anything else, reads its version 1 records exactly, and writes
//! version 2 records after them. The version 1 bytes are made here from
//! the layout the documentation gives, not from hb-store's own code.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_message::codec::{self, Record};
use hb_message::{msg, Id, Message, NodeKey};
use hb_store::{
    keys, AssignmentRecord, SchedulerCache, SledStore, Store, StoreError, ASSIGNMENT_VERSION,
    FORMAT_KEY, FORMAT_VERSION,
};
use serde::Serialize;

/// Version 1 of an assignment record: bincode of these fields in order.
#[derive(Serialize, serde::Deserialize)]
struct V1 {
    pid: [u8; 32],
    slot: u64,
    hash_chain: Vec<u8>,
    assignment_id: [u8; 32],
    assignment: Message,
}

impl Record for V1 {
    const VERSION: u8 = 1;
    const NAME: &'static str = "assignment v1";
}

fn v1_bytes(r: &AssignmentRecord) -> Vec<u8> {
    let mut bytes = codec::encode(&V1 {
        pid: r.pid.0,
        slot: r.slot,
        hash_chain: r.hash_chain.clone(),
        assignment_id: r.assignment_id.0,
        assignment: r.assignment.clone(),
    })
    .unwrap();
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn record(pid: Id, slot: u64) -> AssignmentRecord {
    let body = msg! { "target" => pid.to_human(), "n" => slot as i64 }
        .commit(&NodeKey::from_seed(&[1; 32]), None)
        .unwrap();
    let assignment = msg! { "process" => pid.to_human(), "slot" => slot as i64, "body" => body }
        .commit(&NodeKey::from_seed(&[2; 32]), None)
        .unwrap();
    AssignmentRecord {
        pid,
        slot,
        hash_chain: vec![slot as u8; 32],
        assignment_id: assignment.id_all().unwrap(),
        assignment,
    }
}

/// Opens `dir`, waiting out sled's asynchronous release of the lock of a
/// store this process just dropped.
fn reopen(dir: &Path) -> SledStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(dir) {
            Ok(store) => return store,
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{} does not open: {e}", dir.display()),
        }
    }
}

#[test]
fn a_format_1_store_is_read_marked_2_and_written_in_version_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let pid = Id([5; 32]);
    {
        // What a format 1 build left: its marker and version 1 records.
        let store = SledStore::open(&dir).unwrap();
        store.put(FORMAT_KEY, b"hb-store/1").unwrap();
        for slot in 0..3 {
            store
                .put(&keys::sched(&pid, slot), &v1_bytes(&record(pid, slot)))
                .unwrap();
        }
        store.flush().unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(reopen(&dir));
    assert_eq!(
        store.get(FORMAT_KEY).unwrap().as_deref(),
        Some(FORMAT_VERSION)
    );
    let cache = SchedulerCache::new(store.clone());
    for slot in 0..3 {
        assert_eq!(cache.read(&pid, slot).unwrap(), Some(record(pid, slot)));
    }
    assert_eq!(cache.latest(&pid).unwrap().map(|h| h.slot), Some(2));
    for slot in 3..5 {
        cache.write(&record(pid, slot)).unwrap();
        let stored = store.get(&keys::sched(&pid, slot)).unwrap().unwrap();
        assert_eq!(stored[0], ASSIGNMENT_VERSION);
    }
    let page = cache.range(&pid, 0, 10).unwrap();
    assert_eq!(page, (0..5).map(|s| record(pid, s)).collect::<Vec<_>>());
    let stored = cache.range_stored(&pid, 0, 10).unwrap();
    for (s, r) in stored.iter().zip(&page) {
        assert_eq!(s.message().unwrap(), r.assignment);
    }
    store.flush().unwrap();
    drop((cache, store, stored));
    // The mark is durable: the store opens as format 2 from now on.
    let store = reopen(&dir);
    assert_eq!(
        store.get(FORMAT_KEY).unwrap().as_deref(),
        Some(FORMAT_VERSION)
    );
}
