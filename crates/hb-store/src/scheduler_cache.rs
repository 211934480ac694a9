//! The scheduler cache: each process's assignments by slot, and the dedup
//! index (SPEC §3.4, §5.2–5.5).
//!
//! `sched/<pid>/<slot BE>` holds one [`AssignmentRecord`]; because slots are
//! big-endian, the last key under `sched/<pid>/` is the head, found by one
//! reverse seek. Slots are written with "must be absent", so the first
//! write of a slot wins even when writers race, and a second write is
//! [`StoreError::SlotExists`]. `dedup/<pid>/<message id>` maps a scheduled
//! message's id(all) to its slot and assignment ID, first write wins.

use std::sync::Arc;

use hb_message::codec::Record;
use hb_message::{Id, Message};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::error::StoreError;
use crate::keys;
use crate::record::{self, id_bytes};
use crate::store::{Direction, Store};

/// Entries read per seek by [`SchedulerCache::range`].
const RANGE_CHUNK: usize = 256;

/// One stored assignment: the signed assignment message (whose `body` is the
/// scheduled message) with the fields the scheduler needs without parsing
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRecord {
    /// The process.
    #[serde(with = "id_bytes")]
    pub pid: Id,
    /// The slot.
    pub slot: u64,
    /// The raw hash chain after this slot (`chain_n`, SPEC §5.3).
    #[serde(deserialize_with = "record::byte_vec::deserialize")]
    pub hash_chain: Vec<u8>,
    /// id(assignment, all).
    #[serde(with = "id_bytes")]
    pub assignment_id: Id,
    /// The signed assignment message.
    pub assignment: Message,
}

impl Record for AssignmentRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "assignment";
}

/// The head of a schedule: its highest slot and the chain after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The highest stored slot.
    pub slot: u64,
    /// The raw hash chain after that slot.
    pub hash_chain: Vec<u8>,
}

/// Where a message was scheduled: the dedup index's value (SPEC §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// The slot the message was assigned.
    pub slot: u64,
    /// The ID of that assignment.
    #[serde(with = "id_bytes")]
    pub assignment_id: Id,
}

impl Record for DedupEntry {
    const VERSION: u8 = 1;
    const NAME: &'static str = "dedup";
}

/// The scheduler cache over a [`Store`].
#[derive(Clone)]
pub struct SchedulerCache {
    store: Arc<dyn Store>,
}

impl SchedulerCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn Store>) -> SchedulerCache {
        SchedulerCache { store }
    }

    /// Adds the assignment's write to `batch`, with "must be absent": when
    /// the batch is applied (directly or through group commit) and the slot
    /// already exists, the whole batch fails with
    /// [`StoreError::SlotExists`] and the stored assignment stands.
    pub fn stage_assignment(
        batch: &mut Batch,
        record: &AssignmentRecord,
    ) -> Result<(), StoreError> {
        batch.put_new(
            keys::sched(&record.pid, record.slot),
            record::encode(record)?,
        );
        Ok(())
    }

    /// Adds the dedup entry `(pid, message_id) → entry` to `batch`, first
    /// write wins: an existing entry is kept and the rest of the batch
    /// applies.
    pub fn stage_dedup(
        batch: &mut Batch,
        pid: &Id,
        message_id: &Id,
        entry: &DedupEntry,
    ) -> Result<(), StoreError> {
        batch.put_if_absent(keys::dedup(pid, message_id), record::encode(entry)?);
        Ok(())
    }

    /// Writes one assignment now (not flushed; see [`crate::GroupCommit`]).
    pub fn write(&self, record: &AssignmentRecord) -> Result<(), StoreError> {
        let _span =
            tracing::debug_span!("sched_write", pid = %record.pid, slot = record.slot).entered();
        let mut batch = Batch::new();
        SchedulerCache::stage_assignment(&mut batch, record)?;
        self.store.apply(batch)
    }

    /// The assignment at `(pid, slot)`.
    pub fn read(&self, pid: &Id, slot: u64) -> Result<Option<AssignmentRecord>, StoreError> {
        let key = keys::sched(pid, slot);
        match self.store.get(&key)? {
            Some(bytes) => decode_checked(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The assignments `from..=to` in slot order, stopping before the first
    /// missing slot (empty when `from` is missing or `to < from`). Reads
    /// only the requested slots; the caller caps the page size.
    pub fn range(&self, pid: &Id, from: u64, to: u64) -> Result<Vec<AssignmentRecord>, StoreError> {
        let _span = tracing::debug_span!("sched_range", pid = %pid, from, to).entered();
        let mut out = Vec::new();
        if to < from {
            return Ok(out);
        }
        let end = match to.checked_add(1) {
            Some(next) => keys::sched(pid, next),
            None => keys::prefix_end(&keys::sched_prefix(pid))
                .unwrap_or_else(|| keys::sched(pid, u64::MAX)),
        };
        let mut expected = from;
        let mut start = keys::sched(pid, from);
        loop {
            let chunk = self
                .store
                .range(&start, Some(&end), Direction::Forward, RANGE_CHUNK)?;
            let full = chunk.len() == RANGE_CHUNK;
            for (key, bytes) in chunk {
                if keys::parse_sched_raw(&key).map(|(_, s)| s) != Some(expected) {
                    return Ok(out); // a gap (or a stray key): the page ends here
                }
                out.push(decode_checked(&key, &bytes)?);
                match expected.checked_add(1) {
                    Some(next) => expected = next,
                    None => return Ok(out),
                }
            }
            if !full {
                return Ok(out);
            }
            start = keys::sched(pid, expected);
        }
    }

    /// The head of `pid`'s schedule, by one reverse seek; `None` when it
    /// has no assignment.
    pub fn latest(&self, pid: &Id) -> Result<Option<Head>, StoreError> {
        Ok(self.latest_record(pid)?.map(|r| Head {
            slot: r.slot,
            hash_chain: r.hash_chain,
        }))
    }

    /// The assignment at the head of `pid`'s schedule, by one reverse seek.
    pub fn latest_record(&self, pid: &Id) -> Result<Option<AssignmentRecord>, StoreError> {
        let _span = tracing::debug_span!("sched_latest", pid = %pid).entered();
        match self.store.last_with_prefix(&keys::sched_prefix(pid))? {
            Some((key, bytes)) => decode_checked(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every process with at least one assignment, sorted: one seek per
    /// process, never a scan of the schedules.
    pub fn processes(&self) -> Result<Vec<Id>, StoreError> {
        let mut out = Vec::new();
        let end = keys::prefix_end(keys::SCHED);
        let mut start = keys::SCHED.to_vec();
        loop {
            let Some((key, _)) = self
                .store
                .range(&start, end.as_deref(), Direction::Forward, 1)?
                .into_iter()
                .next()
            else {
                return Ok(out);
            };
            let (pid, _) = keys::parse_sched_raw(&key)
                .ok_or_else(|| StoreError::corrupt(&key, "malformed scheduler key"))?;
            out.push(pid);
            match keys::prefix_end(&keys::sched_prefix(&pid)) {
                Some(next) => start = next,
                None => return Ok(out),
            }
        }
    }

    /// The dedup entry of `message_id` in `pid`'s schedule.
    pub fn dedup(&self, pid: &Id, message_id: &Id) -> Result<Option<DedupEntry>, StoreError> {
        let key = keys::dedup(pid, message_id);
        match self.store.get(&key)? {
            Some(bytes) => record::decode(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// Decodes an assignment and checks it belongs at `key`.
fn decode_checked(key: &[u8], bytes: &[u8]) -> Result<AssignmentRecord, StoreError> {
    let record: AssignmentRecord = record::decode(key, bytes)?;
    if keys::parse_sched_raw(key) != Some((record.pid, record.slot)) {
        return Err(StoreError::corrupt(
            key,
            format!("holds the assignment of {}/{}", record.pid, record.slot),
        ));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use hb_message::msg;

    fn record(pid: Id, slot: u64) -> AssignmentRecord {
        AssignmentRecord {
            pid,
            slot,
            hash_chain: vec![slot as u8; 32],
            assignment_id: Id([slot as u8; 32]),
            assignment: msg! { "slot" => slot as i64, "body" => msg! { "n" => slot as i64 } },
        }
    }

    fn cache() -> (Arc<MemoryStore>, SchedulerCache) {
        let store = Arc::new(MemoryStore::new());
        (store.clone(), SchedulerCache::new(store))
    }

    #[test]
    fn first_write_wins() {
        let (_, cache) = cache();
        let pid = Id([1; 32]);
        cache.write(&record(pid, 0)).unwrap();
        let mut other = record(pid, 0);
        other.hash_chain = vec![0xee; 32];
        assert_eq!(
            cache.write(&other),
            Err(StoreError::SlotExists {
                pid: pid.to_human(),
                slot: 0
            })
        );
        assert_eq!(cache.read(&pid, 0).unwrap(), Some(record(pid, 0)));
    }

    #[test]
    fn ranges_stop_at_the_first_gap() {
        let (_, cache) = cache();
        let pid = Id([1; 32]);
        for slot in [0, 1, 2, 4, 5] {
            cache.write(&record(pid, slot)).unwrap();
        }
        // A neighbouring process is never read into the page.
        cache.write(&record(Id([2; 32]), 3)).unwrap();
        let slots = |v: Vec<AssignmentRecord>| v.iter().map(|r| r.slot).collect::<Vec<_>>();
        assert_eq!(slots(cache.range(&pid, 0, 10).unwrap()), vec![0, 1, 2]);
        assert_eq!(slots(cache.range(&pid, 1, 1).unwrap()), vec![1]);
        assert_eq!(slots(cache.range(&pid, 4, u64::MAX).unwrap()), vec![4, 5]);
        assert!(cache.range(&pid, 3, 10).unwrap().is_empty());
        assert!(cache.range(&pid, 2, 1).unwrap().is_empty());
    }

    #[test]
    fn ranges_longer_than_one_chunk_are_complete() {
        let (_, cache) = cache();
        let pid = Id([1; 32]);
        let n = RANGE_CHUNK as u64 * 2 + 10;
        for slot in 0..n {
            cache.write(&record(pid, slot)).unwrap();
        }
        let got = cache.range(&pid, 5, n + 100).unwrap();
        assert_eq!(got.len() as u64, n - 5);
        assert!(got.iter().enumerate().all(|(i, r)| r.slot == i as u64 + 5));
    }

    #[test]
    fn latest_and_processes() {
        let (_, cache) = cache();
        let (a, b, c) = (Id([1; 32]), Id([0xff; 32]), Id([0; 32]));
        assert_eq!(cache.latest(&a).unwrap(), None);
        assert!(cache.processes().unwrap().is_empty());
        for slot in [0, 1, 300] {
            cache.write(&record(a, slot)).unwrap();
        }
        cache.write(&record(b, u64::MAX)).unwrap();
        cache.write(&record(c, 7)).unwrap();
        assert_eq!(
            cache.latest(&a).unwrap(),
            Some(Head {
                slot: 300,
                hash_chain: vec![300u64 as u8; 32]
            })
        );
        assert_eq!(cache.latest(&b).unwrap().unwrap().slot, u64::MAX);
        assert_eq!(cache.processes().unwrap(), vec![c, a, b]);
    }

    #[test]
    fn a_record_under_the_wrong_key_is_corrupt() {
        let (store, cache) = cache();
        let pid = Id([1; 32]);
        let bytes = record::encode(&record(pid, 1)).unwrap();
        store.put(&keys::sched(&pid, 2), &bytes).unwrap();
        let err = cache.read(&pid, 2).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, .. } if *key == format!("sched/{pid}/2")),
            "{err:?}"
        );
        assert!(cache.latest(&pid).is_err());
    }

    #[test]
    fn a_record_over_the_codec_limit_is_too_large() {
        let limit = hb_message::codec::DEFAULT_RECORD_LIMIT;
        let mut big = record(Id([1; 32]), 0);
        big.assignment = msg! { "data" => vec![0u8; limit as usize + 1] };
        let mut batch = Batch::new();
        assert_eq!(
            SchedulerCache::stage_assignment(&mut batch, &big),
            Err(StoreError::TooLarge {
                record: "assignment",
                limit
            })
        );
        assert!(batch.is_empty());
    }

    #[test]
    fn dedup_entries_keep_the_first_write() {
        let (store, cache) = cache();
        let (pid, mid) = (Id([1; 32]), Id([2; 32]));
        assert_eq!(cache.dedup(&pid, &mid).unwrap(), None);
        let first = DedupEntry {
            slot: 3,
            assignment_id: Id([3; 32]),
        };
        let mut batch = Batch::new();
        SchedulerCache::stage_dedup(&mut batch, &pid, &mid, &first).unwrap();
        store.apply(batch).unwrap();
        let mut batch = Batch::new();
        let second = DedupEntry {
            slot: 9,
            assignment_id: Id([9; 32]),
        };
        SchedulerCache::stage_dedup(&mut batch, &pid, &mid, &second).unwrap();
        SchedulerCache::stage_assignment(&mut batch, &record(pid, 9)).unwrap();
        store.apply(batch).unwrap();
        assert_eq!(cache.dedup(&pid, &mid).unwrap(), Some(first));
        assert!(cache.read(&pid, 9).unwrap().is_some());
    }
}
