//! SPEC §3.2: group commit makes many writers durable with one flush, each
//! acknowledged only after the flush covering its batch, and keeps "first
//! write wins" for slots when writers race through it.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use hb_message::{msg, Id};
use hb_store::{
    AssignmentRecord, Batch, Direction, Entry, GroupCommit, SchedulerCache, SledStore, Store,
    StoreError,
};
use parking_lot::Mutex;

/// A real sled store whose flushes wait for the test's go-ahead and report
/// that they started, so the test decides what queues up during a flush.
struct GatedStore {
    inner: SledStore,
    started: Mutex<Sender<()>>,
    proceed: Mutex<Receiver<()>>,
}

impl Store for GatedStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.inner.put(key, value)
    }
    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.inner.delete(key)
    }
    fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.range(start, end, direction, limit)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.inner.apply(batch)
    }
    fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        self.inner.apply_group(batches)
    }
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        self.inner.compare_and_swap(key, expected, new)
    }
    fn flush(&self) -> Result<(), StoreError> {
        let _ = self.started.lock().send(());
        // Bounded, so a failing test cannot hang the writer forever.
        let _ = self
            .proceed
            .lock()
            .recv_timeout(std::time::Duration::from_secs(20));
        self.inner.flush()
    }
    fn path(&self) -> Option<&Path> {
        self.inner.path()
    }
}

fn record(pid: Id, slot: u64, tag: u8) -> AssignmentRecord {
    AssignmentRecord {
        pid,
        slot,
        hash_chain: vec![tag; 32],
        assignment_id: Id([tag; 32]),
        assignment: msg! { "slot" => slot as i64, "writer" => tag as i64 },
    }
}

fn assignment_batch(r: &AssignmentRecord) -> Batch {
    let mut b = Batch::new();
    SchedulerCache::stage_assignment(&mut b, r).unwrap();
    b
}

#[test]
fn batches_queued_during_a_flush_share_the_next_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (proceed_tx, proceed_rx) = mpsc::channel();
    let store = Arc::new(GatedStore {
        inner: SledStore::open(tmp.path().join("s")).unwrap(),
        started: Mutex::new(started_tx),
        proceed: Mutex::new(proceed_rx),
    });
    let writer = GroupCommit::start(store.clone()).unwrap();
    let pid = Id([1; 32]);

    let first = writer.submit(assignment_batch(&record(pid, 0, 0)));
    started_rx.recv().unwrap(); // the writer is inside the first flush
    let queued: Vec<_> = (1..=100)
        .map(|slot| writer.submit(assignment_batch(&record(pid, slot, 1))))
        .collect();
    // Nothing queued is acknowledged while its flush has not happened.
    proceed_tx.send(()).unwrap();
    futures::executor::block_on(first).unwrap();
    started_rx.recv().unwrap(); // the second flush: all 100 in one group
    let stats = writer.stats();
    assert_eq!(stats.committed, 1, "acknowledged before their flush");
    proceed_tx.send(()).unwrap();
    for ack in queued {
        futures::executor::block_on(ack).unwrap();
    }
    let stats = writer.stats();
    assert_eq!(stats.committed, 101);
    assert_eq!(stats.flushes, 2);
    let head = SchedulerCache::new(store).latest(&pid).unwrap().unwrap();
    assert_eq!(head.slot, 100);
}

#[test]
fn racing_writers_through_group_commit_have_one_winner_per_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(tmp.path().join("s")).unwrap());
    let writer = Arc::new(GroupCommit::start(store.clone()).unwrap());
    let pid = Id([2; 32]);
    let slots = 20u64;
    let writers = 16u8;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let wins: Vec<Vec<(u64, u8)>> = runtime.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|tag| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut won = Vec::new();
                    for slot in 0..slots {
                        match writer
                            .submit(assignment_batch(&record(pid, slot, tag)))
                            .await
                        {
                            Ok(()) => won.push((slot, tag)),
                            Err(StoreError::SlotExists { slot: s, .. }) => assert_eq!(s, slot),
                            Err(e) => panic!("unexpected {e:?}"),
                        }
                    }
                    won
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let mut winners: Vec<(u64, u8)> = wins.into_iter().flatten().collect();
    winners.sort();
    assert_eq!(winners.len() as u64, slots, "{winners:?}");
    let cache = SchedulerCache::new(store);
    for (i, (slot, tag)) in winners.into_iter().enumerate() {
        assert_eq!(slot, i as u64);
        assert_eq!(
            cache.read(&pid, slot).unwrap(),
            Some(record(pid, slot, tag))
        );
    }
    let stats = writer.stats();
    assert_eq!(stats.committed, slots);
    assert_eq!(stats.failed, slots * (writers as u64 - 1));
}

#[test]
fn acknowledged_writes_survive_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let pid = Id([3; 32]);
    {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
        let writer = GroupCommit::start(store).unwrap();
        for slot in 0..10 {
            writer
                .commit(assignment_batch(&record(pid, slot, 3)))
                .unwrap();
        }
    }
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
    let page = SchedulerCache::new(store).range(&pid, 0, 100).unwrap();
    assert_eq!(page.len(), 10);
}
