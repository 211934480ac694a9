//! The scheduler cache: each process's assignments by slot, and the dedup
//! index (SPEC §3.4, §5.2–5.5).
//!
//! `sched/<pid>/<slot BE>` holds one assignment record; because slots are
//! big-endian, the last key under `sched/<pid>/` is the head, found by one
//! reverse seek. Slots are written with "must be absent", so the first
//! write of a slot wins even when writers race, and a second write is
//! [`StoreError::SlotExists`]. `dedup/<pid>/<message id>` maps a scheduled
//! message's id(all) to its slot and assignment ID, first write wins.
//!
//! Assignment records are written in version 2 (see [`ASSIGNMENT_VERSION`]
//! and `docs/storage.md`, "Record format"): the process and slot only in
//! the key (the checksum covers the key, so a record under another key
//! fails it), and the message packed ([`crate::compact`]). Version 1
//! records, written by earlier builds, are still read.

use std::sync::Arc;

use hb_message::codec::{Record, DEFAULT_RECORD_LIMIT, RECORD_MAX_DEPTH};
use hb_message::{canonical, Id, Message};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::compact;
use crate::error::StoreError;
use crate::keys;
use crate::record::{self, id_bytes};
use crate::store::{Direction, Store};

/// Entries read per seek by [`SchedulerCache::range`].
const RANGE_CHUNK: usize = 256;

/// The version of the assignment records this build writes. Version 1
/// (bincode of pid, slot, hash chain, assignment ID and the message in its
/// whole canonical form, CRC-32 of those bytes) is still read.
pub const ASSIGNMENT_VERSION: u8 = 2;

const CRC_LEN: usize = 4;

/// One stored assignment: the signed assignment message (whose `body` is the
/// scheduled message) with the fields the scheduler needs without parsing
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentRecord {
    /// The process.
    pub pid: Id,
    /// The slot.
    pub slot: u64,
    /// The raw hash chain after this slot (`chain_n`, SPEC §5.3).
    pub hash_chain: Vec<u8>,
    /// id(assignment, all).
    pub assignment_id: Id,
    /// The signed assignment message.
    pub assignment: Message,
}

/// The version 1 layout of an assignment record, read only.
#[derive(Serialize, Deserialize)]
struct RecordV1 {
    #[serde(with = "id_bytes")]
    pid: Id,
    slot: u64,
    #[serde(deserialize_with = "record::byte_vec::deserialize")]
    hash_chain: Vec<u8>,
    #[serde(with = "id_bytes")]
    assignment_id: Id,
    assignment: Message,
}

impl Record for RecordV1 {
    const VERSION: u8 = 1;
    const NAME: &'static str = "assignment";
}

/// An assignment as read from the store, its message not decoded yet:
/// [`StoredAssignment::message`] decodes it when a caller needs it.
///
/// The record's checksum, its framing and its key were checked when it was
/// read; the message itself is checked when it is decoded, and a message
/// that does not decode is [`StoreError::Corrupt`] naming the record's key
/// then. (A version 1 record is decoded whole when it is read.)
#[derive(Clone, Debug)]
pub struct StoredAssignment {
    /// The process.
    pub pid: Id,
    /// The slot.
    pub slot: u64,
    /// The raw hash chain after this slot.
    pub hash_chain: Vec<u8>,
    /// id(assignment, all).
    pub assignment_id: Id,
    key: Vec<u8>,
    message: Lazy,
}

#[derive(Clone, Debug)]
enum Lazy {
    /// The stored value and where its packed message lies in it.
    Packed {
        bytes: Vec<u8>,
        at: std::ops::Range<usize>,
    },
    /// A version 1 record, decoded when read.
    Decoded(Message),
}

impl StoredAssignment {
    /// Decodes the assignment message.
    pub fn message(&self) -> Result<Message, StoreError> {
        match &self.message {
            Lazy::Packed { bytes, at } => decode_packed(&self.key, &bytes[at.clone()]),
            Lazy::Decoded(m) => Ok(m.clone()),
        }
    }

    /// Appends the JSON of the assignment message to `out`: the text of
    /// `hb_message::json::to_json(&self.message()?)`, written from the
    /// stored bytes without decoding them into a [`Message`]. On an error
    /// `out` may hold part of the message.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), StoreError> {
        match &self.message {
            Lazy::Packed { bytes, at } => {
                crate::packed_json::write_json(&bytes[at.clone()], RECORD_MAX_DEPTH, out)
                    .map_err(|e| StoreError::corrupt(&self.key, format!("assignment message: {e}")))
            }
            Lazy::Decoded(m) => serde_json::to_writer(&mut *out, &hb_message::json::to_json(m))
                .map_err(|e| StoreError::corrupt(&self.key, format!("assignment message: {e}"))),
        }
    }

    /// The record, its message decoded.
    pub fn into_record(self) -> Result<AssignmentRecord, StoreError> {
        let assignment = match self.message {
            Lazy::Packed { bytes, at } => decode_packed(&self.key, &bytes[at])?,
            Lazy::Decoded(m) => m,
        };
        Ok(AssignmentRecord {
            pid: self.pid,
            slot: self.slot,
            hash_chain: self.hash_chain,
            assignment_id: self.assignment_id,
            assignment,
        })
    }

    /// The bytes of the stored message, in the packed form of
    /// `docs/storage.md` (version 2 records; `None` for version 1).
    pub fn packed_message(&self) -> Option<&[u8]> {
        match &self.message {
            Lazy::Packed { bytes, at } => Some(&bytes[at.clone()]),
            Lazy::Decoded(_) => None,
        }
    }
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
        let key = keys::sched(&record.pid, record.slot);
        let value = encode(&key, record)?;
        batch.put_new(key, value);
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
            Some(bytes) => parse(key, bytes)?.into_record().map(Some),
            None => Ok(None),
        }
    }

    /// The assignments `from..=to` in slot order, stopping before the first
    /// missing slot (empty when `from` is missing or `to < from`). Reads
    /// only the requested slots; the caller caps the page size. Every
    /// message is decoded; [`SchedulerCache::range_stored`] leaves that to
    /// the caller.
    pub fn range(&self, pid: &Id, from: u64, to: u64) -> Result<Vec<AssignmentRecord>, StoreError> {
        self.range_stored(pid, from, to)?
            .into_iter()
            .map(StoredAssignment::into_record)
            .collect()
    }

    /// [`SchedulerCache::range`] without decoding the messages: each
    /// record's checksum, framing and key are checked, and its message is
    /// decoded only by [`StoredAssignment::message`]. A caller that handles
    /// one assignment at a time holds one decoded message at a time.
    pub fn range_stored(
        &self,
        pid: &Id,
        from: u64,
        to: u64,
    ) -> Result<Vec<StoredAssignment>, StoreError> {
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
                out.push(parse(key, bytes)?);
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
            Some((key, bytes)) => parse(key, bytes)?.into_record().map(Some),
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

/// The version 2 record of `record`, stored at `key`:
///
/// ```text
/// 0x02 ‖ varint len ‖ hash_chain ‖ assignment_id (32) ‖ packed message ‖ crc32(key ‖ all before)
/// ```
fn encode(key: &[u8], record: &AssignmentRecord) -> Result<Vec<u8>, StoreError> {
    let too_large = || StoreError::TooLarge {
        record: "assignment",
        limit: DEFAULT_RECORD_LIMIT,
    };
    // Checked before the recursive encoder runs (as version 1 did).
    if !record.assignment.depth_within(RECORD_MAX_DEPTH) {
        return Err(too_large());
    }
    let whole = canonical::encode_whole(&record.assignment);
    let mut out = Vec::with_capacity(1 + 1 + record.hash_chain.len() + 32 + whole.len());
    out.push(ASSIGNMENT_VERSION);
    compact::write_varint(&mut out, record.hash_chain.len() as u64);
    out.extend_from_slice(&record.hash_chain);
    out.extend_from_slice(record.assignment_id.as_bytes());
    compact::pack(&whole, RECORD_MAX_DEPTH, &mut out).map_err(|_| too_large())?;
    if out.len() as u64 + CRC_LEN as u64 > DEFAULT_RECORD_LIMIT {
        return Err(too_large());
    }
    let crc = crc_of(key, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn crc_of(key: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(key);
    h.update(body);
    h.finalize()
}

/// Reads the record stored at `key` (either version), checking its
/// checksum, framing and key; a version 2 message stays packed.
pub(crate) fn parse(key: Vec<u8>, bytes: Vec<u8>) -> Result<StoredAssignment, StoreError> {
    let Some((pid, slot)) = keys::parse_sched_raw(&key) else {
        return Err(StoreError::corrupt(&key, "not an assignment key"));
    };
    match bytes.first() {
        Some(&ASSIGNMENT_VERSION) => {}
        Some(&RecordV1::VERSION) => return parse_v1(key, &bytes, pid, slot),
        Some(v) => {
            return Err(StoreError::corrupt(
                &key,
                format!(
                    "assignment record version {v} (this build reads 1 and {ASSIGNMENT_VERSION})"
                ),
            ))
        }
        None => return Err(StoreError::corrupt(&key, "assignment record is empty")),
    }
    let corrupt = |detail: &str| StoreError::corrupt(&key, format!("assignment record {detail}"));
    let split = bytes
        .len()
        .checked_sub(CRC_LEN)
        .ok_or_else(|| corrupt("too short"))?;
    let (body, crc) = bytes.split_at(split);
    let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc_of(&key, body) != want {
        return Err(corrupt(
            "fails its checksum (or is stored under another key)",
        ));
    }
    let mut pos = 1;
    let chain_len = compact::read_varint(body, &mut pos)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| n.saturating_add(32) <= body.len() - pos)
        .ok_or_else(|| corrupt("has a malformed hash chain"))?;
    let hash_chain = body[pos..pos + chain_len].to_vec();
    pos += chain_len;
    let mut id = [0u8; 32];
    id.copy_from_slice(&body[pos..pos + 32]);
    pos += 32;
    Ok(StoredAssignment {
        pid,
        slot,
        hash_chain,
        assignment_id: Id(id),
        message: Lazy::Packed {
            at: pos..split,
            bytes,
        },
        key,
    })
}

/// A version 1 record, decoded whole, which must name the key's pid and slot.
fn parse_v1(
    key: Vec<u8>,
    bytes: &[u8],
    pid: Id,
    slot: u64,
) -> Result<StoredAssignment, StoreError> {
    let v1: RecordV1 = record::decode(&key, bytes)?;
    if (v1.pid, v1.slot) != (pid, slot) {
        return Err(StoreError::corrupt(
            &key,
            format!("holds the assignment of {}/{}", v1.pid, v1.slot),
        ));
    }
    Ok(StoredAssignment {
        pid,
        slot,
        hash_chain: v1.hash_chain,
        assignment_id: v1.assignment_id,
        message: Lazy::Decoded(v1.assignment),
        key,
    })
}

/// The message packed in a version 2 record read at `key`.
fn decode_packed(key: &[u8], packed: &[u8]) -> Result<Message, StoreError> {
    thread_local! {
        /// The canonical bytes being decoded: one buffer per thread,
        /// reused from record to record.
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    /// A scratch buffer larger than this is not kept after use.
    const KEEP: usize = 1 << 20;
    SCRATCH.with(|scratch| {
        // Never borrowed twice: nothing below calls back into this function.
        let Ok(mut whole) = scratch.try_borrow_mut() else {
            return decode_packed_into(key, packed, &mut Vec::new());
        };
        let decoded = decode_packed_into(key, packed, &mut whole);
        if whole.capacity() > KEEP {
            *whole = Vec::new();
        }
        decoded
    })
}

fn decode_packed_into(
    key: &[u8],
    packed: &[u8],
    whole: &mut Vec<u8>,
) -> Result<Message, StoreError> {
    compact::unpack_into(packed, RECORD_MAX_DEPTH, whole)
        .map_err(|e| StoreError::corrupt(key, format!("assignment message: {e}")))?;
    canonical::decode(whole, RECORD_MAX_DEPTH)
        .map_err(|e| StoreError::corrupt(key, format!("assignment message: {e}")))
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

    /// The version 1 bytes of `r`, as earlier builds wrote them.
    fn v1_bytes(r: &AssignmentRecord) -> Vec<u8> {
        record::encode(&RecordV1 {
            pid: r.pid,
            slot: r.slot,
            hash_chain: r.hash_chain.clone(),
            assignment_id: r.assignment_id,
            assignment: r.assignment.clone(),
        })
        .unwrap()
    }

    #[test]
    fn a_record_under_the_wrong_key_is_corrupt() {
        let (store, cache) = cache();
        let pid = Id([1; 32]);
        let v2 = encode(&keys::sched(&pid, 1), &record(pid, 1)).unwrap();
        for bytes in [v2, v1_bytes(&record(pid, 1))] {
            store.put(&keys::sched(&pid, 2), &bytes).unwrap();
            let err = cache.read(&pid, 2).unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt { key, .. } if *key == format!("sched/{pid}/2")),
                "{err:?}"
            );
            assert!(cache.latest(&pid).is_err());
            assert!(cache.range_stored(&pid, 2, 2).is_err());
        }
    }

    /// A signed assignment of the scheduler's shape, its body signed too.
    fn signed(pid: Id, slot: u64) -> AssignmentRecord {
        let body = msg! { "target" => pid.to_human(), "action" => "Ping", "n" => slot as i64 }
            .commit(&hb_message::NodeKey::from_seed(&[1; 32]), None)
            .unwrap();
        let assignment = msg! {
            "process" => pid.to_human(),
            "slot" => slot as i64,
            "hash-chain" => "x".repeat(43),
            "body" => body,
        }
        .commit(&hb_message::NodeKey::from_seed(&[2; 32]), None)
        .unwrap();
        AssignmentRecord {
            pid,
            slot,
            hash_chain: vec![slot as u8; 32],
            assignment_id: assignment.id_all().unwrap(),
            assignment,
        }
    }

    #[test]
    fn version_1_records_written_by_earlier_builds_still_read() {
        let (store, cache) = cache();
        let pid = Id([1; 32]);
        // Slots 0 and 1 as an earlier build wrote them, 2 and 3 as this one.
        for slot in 0..2 {
            let r = signed(pid, slot);
            store.put(&keys::sched(&pid, slot), &v1_bytes(&r)).unwrap();
        }
        for slot in 2..4 {
            cache.write(&signed(pid, slot)).unwrap();
        }
        let v1 = store.get(&keys::sched(&pid, 1)).unwrap().unwrap();
        let v2 = store.get(&keys::sched(&pid, 2)).unwrap().unwrap();
        assert_eq!((v1[0], v2[0]), (1, ASSIGNMENT_VERSION));
        assert!(
            v2.len() + 300 < v1.len(),
            "v1 {} B, v2 {} B",
            v1.len(),
            v2.len()
        );
        for slot in 0..4 {
            assert_eq!(cache.read(&pid, slot).unwrap(), Some(signed(pid, slot)));
        }
        let page = cache.range(&pid, 0, 10).unwrap();
        assert_eq!(page, (0..4).map(|s| signed(pid, s)).collect::<Vec<_>>());
        let stored = cache.range_stored(&pid, 0, 10).unwrap();
        assert_eq!(stored.len(), 4);
        for (s, r) in stored.iter().zip(&page) {
            assert_eq!(
                (s.pid, s.slot, &s.hash_chain),
                (r.pid, r.slot, &r.hash_chain)
            );
            assert_eq!(s.assignment_id, r.assignment_id);
            assert_eq!(s.message().unwrap(), r.assignment);
            assert_eq!(s.packed_message().is_some(), s.slot >= 2);
            // Either version answers the JSON of its decoded message.
            let mut json = Vec::new();
            s.write_json(&mut json).unwrap();
            assert_eq!(
                json,
                hb_message::json::to_json_string(&r.assignment).into_bytes()
            );
        }
        // The head may be either version.
        assert_eq!(cache.latest_record(&pid).unwrap(), Some(signed(pid, 3)));
        store.delete(&keys::sched(&pid, 3)).unwrap();
        store.delete(&keys::sched(&pid, 2)).unwrap();
        assert_eq!(cache.latest_record(&pid).unwrap(), Some(signed(pid, 1)));
    }

    #[test]
    fn no_truncation_or_bit_flip_of_a_signed_record_reads_as_another_message() {
        let pid = Id([1; 32]);
        let key = keys::sched(&pid, 1);
        let good = signed(pid, 1);
        assert!(good.assignment.is_signed());
        let bytes = encode(&key, &good).unwrap();
        let read = |b: &[u8]| parse(key.clone(), b.to_vec()).and_then(|s| s.into_record());
        assert_eq!(read(&bytes), Ok(good));
        let corrupt = |r: Result<AssignmentRecord, StoreError>| matches!(r, Err(StoreError::Corrupt { key, .. }) if key == format!("sched/{pid}/1"));
        for n in 0..bytes.len() {
            assert!(corrupt(read(&bytes[..n])), "cut at {n}");
        }
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(corrupt(read(&flipped)), "bit {bit}");
        }
        // Below the checksum too: no strict prefix of the packed message
        // decodes (to a message without its commitments, or any other).
        let stored = parse(key.clone(), bytes.clone()).unwrap();
        let packed = stored.packed_message().unwrap();
        assert!(decode_packed(&key, packed).unwrap().is_signed());
        for n in 0..packed.len() {
            assert!(
                matches!(
                    decode_packed(&key, &packed[..n]),
                    Err(StoreError::Corrupt { .. })
                ),
                "packed message cut at {n}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_sealed_version_2_records_never_panic(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)
        ) {
            // Sealed for their key, so only the framing and the message
            // decoder stand between them and the caller.
            let key = keys::sched(&Id([1; 32]), 0);
            let mut bytes = vec![ASSIGNMENT_VERSION];
            bytes.extend_from_slice(&tail);
            let crc = crc_of(&key, &bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
            if let Ok(stored) = parse(key, bytes) {
                // The JSON writer refuses what the decoder refuses, or
                // writes the decoded message's JSON.
                let mut json = Vec::new();
                match (stored.message(), stored.write_json(&mut json)) {
                    (Ok(m), Ok(())) => proptest::prop_assert_eq!(
                        json,
                        hb_message::json::to_json_string(&m).into_bytes()
                    ),
                    (Err(_), written) => proptest::prop_assert!(written.is_err()),
                    (Ok(_), Err(e)) => proptest::prop_assert!(false, "{e}"),
                }
            }
        }
    }

    #[test]
    fn a_packed_message_that_does_not_decode_is_corrupt_when_decoded() {
        let (store, cache) = cache();
        let pid = Id([1; 32]);
        let key = keys::sched(&pid, 0);
        // Good framing (version, a 32-byte chain, the assignment ID), then
        // a message whose only key has an unknown value tag, sealed for
        // its key.
        let mut body = vec![ASSIGNMENT_VERSION, 32];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(b"\x07\x01\x01a\x09");
        body.extend_from_slice(&crc_of(&key, &body).to_le_bytes());
        store.put(&key, &body).unwrap();
        let stored = cache.range_stored(&pid, 0, 0).unwrap();
        let err = stored[0].message().unwrap_err();
        let json_err = stored[0].write_json(&mut Vec::new()).unwrap_err();
        assert!(
            matches!(&json_err, StoreError::Corrupt { key, .. } if *key == format!("sched/{pid}/0")),
            "{json_err:?}"
        );
        assert!(
            matches!(&err, StoreError::Corrupt { key, .. } if *key == format!("sched/{pid}/0")),
            "{err:?}"
        );
        assert!(cache.range(&pid, 0, 0).is_err());
        assert!(cache.read(&pid, 0).is_err());
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
