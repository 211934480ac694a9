//! The process cache: computed states by slot and by state ID (SPEC §6.6).
//!
//! `proc/<pid>/slot/<slot BE>` holds a [`StateRecord`] (the state, its ID
//! and when it was computed); `proc/<pid>/id/<state id>` holds the slot.
//! Both are written in one batch, first write wins: writing a slot or a
//! state ID again changes nothing.

use std::sync::Arc;

use hb_message::codec::Record;
use hb_message::{Id, Message, Value};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::error::StoreError;
use crate::keys;
use crate::record::{self, id_bytes};
use crate::store::{Direction, Store};

/// States read per seek by the backwards scan of [`ProcessCache::latest`].
const SCAN_CHUNK: usize = 32;

/// One computed state of a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The process.
    #[serde(with = "id_bytes")]
    pub pid: Id,
    /// The slot the state reflects.
    pub slot: u64,
    /// id(state, all).
    #[serde(with = "id_bytes")]
    pub state_id: Id,
    /// When the state was computed (ms since the Unix epoch).
    pub computed_at_ms: u64,
    /// The state.
    pub state: Message,
}

impl Record for StateRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "state";
}

#[derive(Serialize, Deserialize)]
struct StateIdRecord {
    slot: u64,
}

impl Record for StateIdRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "state-id";
}

/// The path a state must contain for [`ProcessCache::latest`]: segments
/// normalised like keys on lookup; empty matches any state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequiredPath(String);

impl RequiredPath {
    /// Matches every state.
    pub fn any() -> RequiredPath {
        RequiredPath::default()
    }

    /// From `a/b` text (empty segments are ignored).
    pub fn parse(path: &str) -> RequiredPath {
        RequiredPath::from_segments(path.split('/'))
    }

    /// From a list of segments.
    pub fn from_segments<'a>(segments: impl IntoIterator<Item = &'a str>) -> RequiredPath {
        let joined: Vec<&str> = segments.into_iter().filter(|s| !s.is_empty()).collect();
        RequiredPath(joined.join("/"))
    }

    /// Whether `state` contains the path.
    pub fn matches(&self, state: &Message) -> bool {
        self.0.is_empty() || state.has_path(&self.0)
    }
}

/// Parses a `latest` limit: an integer, or digit-only text (SPEC §6.6);
/// anything else is [`StoreError::InvalidLimit`].
pub fn parse_limit(value: &Value) -> Result<i64, StoreError> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Text(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
            t.parse().map_err(|_| StoreError::InvalidLimit(t.clone()))
        }
        other => Err(StoreError::InvalidLimit(match other {
            Value::Text(t) => t.clone(),
            v => format!("<{}>", v.type_name()),
        })),
    }
}

/// The process cache over a [`Store`].
#[derive(Clone)]
pub struct ProcessCache {
    store: Arc<dyn Store>,
}

impl ProcessCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn Store>) -> ProcessCache {
        ProcessCache { store }
    }

    /// Adds the writes of `state` at `(pid, slot)` to `batch`: the state
    /// record with its computed-at time ("must be absent": if the slot is
    /// already stored, applying the batch fails with
    /// [`StoreError::KeyExists`] for that slot's key and writes nothing),
    /// and the state-ID entry (first write wins). Returns the state ID.
    pub fn stage_write(
        batch: &mut Batch,
        pid: &Id,
        slot: u64,
        state: &Message,
        computed_at_ms: u64,
    ) -> Result<Id, StoreError> {
        let state_id = state_id_of(state)?;
        let record = StateRecord {
            pid: *pid,
            slot,
            state_id,
            computed_at_ms,
            state: state.clone(),
        };
        batch.put_new(keys::proc_slot(pid, slot), record::encode(&record)?);
        batch.put_if_absent(
            keys::proc_id(pid, &state_id),
            record::encode(&StateIdRecord { slot })?,
        );
        Ok(state_id)
    }

    /// Stores `state` at `(pid, slot)` now, in one batch. First write wins:
    /// when the slot is already stored nothing changes and the result is
    /// `Ok(false)`.
    pub fn write(
        &self,
        pid: &Id,
        slot: u64,
        state: &Message,
        computed_at_ms: u64,
    ) -> Result<bool, StoreError> {
        let _span = tracing::debug_span!("proc_write", pid = %pid, slot).entered();
        let mut batch = Batch::new();
        ProcessCache::stage_write(&mut batch, pid, slot, state, computed_at_ms)?;
        self.apply_write(pid, slot, batch)
    }

    /// Applies a batch made by [`stage_write`](Self::stage_write) for
    /// `slot`: `false` when the slot was already stored (first write wins).
    pub fn apply_write(&self, pid: &Id, slot: u64, batch: Batch) -> Result<bool, StoreError> {
        match self.store.apply(batch) {
            Ok(()) => Ok(true),
            Err(e) if ProcessCache::is_already_stored(&e, pid, slot) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `error`, from applying a batch staged by
    /// [`ProcessCache::stage_write`], only says that `(pid, slot)` was
    /// already stored (the first write stands).
    pub fn is_already_stored(error: &StoreError, pid: &Id, slot: u64) -> bool {
        matches!(error, StoreError::KeyExists { key } if *key == keys::printable(&keys::proc_slot(pid, slot)))
    }

    /// The state at `(pid, slot)`.
    pub fn read_slot(&self, pid: &Id, slot: u64) -> Result<Option<StateRecord>, StoreError> {
        let key = keys::proc_slot(pid, slot);
        match self.store.get(&key)? {
            Some(bytes) => decode_checked(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The state of `pid` whose ID is `state_id`.
    pub fn read_id(&self, pid: &Id, state_id: &Id) -> Result<Option<StateRecord>, StoreError> {
        let key = keys::proc_id(pid, state_id);
        let Some(bytes) = self.store.get(&key)? else {
            return Ok(None);
        };
        let slot = record::decode::<StateIdRecord>(&key, &bytes)?.slot;
        let state = self
            .read_slot(pid, slot)?
            .ok_or_else(|| StoreError::corrupt(&key, format!("names missing slot {slot}")))?;
        if state.state_id != *state_id {
            return Err(StoreError::corrupt(
                &key,
                format!("slot {slot} holds another state"),
            ));
        }
        Ok(Some(state))
    }

    /// The state at the highest slot `<= limit` (no limit: any slot) that
    /// contains `required`; `None` when there is none (or `limit` is
    /// negative). Scans backwards from `limit` and stops at the first match.
    pub fn latest(
        &self,
        pid: &Id,
        required: &RequiredPath,
        limit: Option<i64>,
    ) -> Result<Option<StateRecord>, StoreError> {
        let _span =
            tracing::debug_span!("proc_latest", pid = %pid, path = %required.0, ?limit).entered();
        let prefix = keys::proc_slot_prefix(pid);
        let mut end = match limit {
            Some(l) if l < 0 => return Ok(None),
            Some(l) => match (l as u64).checked_add(1) {
                Some(next) => Some(keys::proc_slot(pid, next)),
                None => keys::prefix_end(&prefix),
            },
            None => keys::prefix_end(&prefix),
        };
        loop {
            let chunk =
                self.store
                    .range(&prefix, end.as_deref(), Direction::Reverse, SCAN_CHUNK)?;
            let full = chunk.len() == SCAN_CHUNK;
            for (key, bytes) in chunk {
                let state = decode_checked(&key, &bytes)?;
                if required.matches(&state.state) {
                    return Ok(Some(state));
                }
                end = Some(key);
            }
            if !full {
                return Ok(None);
            }
        }
    }

    /// The nearest state at or below `slot` that carries a `snapshot`
    /// (SPEC §6.4's starting point).
    pub fn nearest_snapshot(&self, pid: &Id, slot: u64) -> Result<Option<StateRecord>, StoreError> {
        let limit = i64::try_from(slot).unwrap_or(i64::MAX);
        self.latest(pid, &RequiredPath::parse("snapshot"), Some(limit))
    }
}

/// Decodes a state and checks it belongs at `key`.
/// A state's ID: id(state, all) without its `snapshot` (restore data of
/// the execution device, present on some stored copies only), so a state
/// has one ID however it was stored.
pub fn state_id_of(state: &Message) -> Result<Id, StoreError> {
    if state.get("snapshot").is_none() {
        return Ok(state.id_all()?);
    }
    let mut bare = state.clone();
    bare.remove("snapshot");
    Ok(bare.id_all()?)
}

impl ProcessCache {
    /// Adds `snapshot` to the stored state of `slot` (the worker's idle
    /// stop), replacing the record only if it still holds the same state
    /// (same state ID) without a snapshot. Returns whether it was added:
    /// `false` when the slot is not stored, already has a snapshot, or holds
    /// another state. Atomic (compare-and-swap), so it never loses a
    /// concurrent write.
    pub fn attach_snapshot(
        &self,
        pid: &Id,
        slot: u64,
        state_id: &Id,
        snapshot: Message,
    ) -> Result<bool, StoreError> {
        let key = keys::proc_slot(pid, slot);
        let Some(old) = self.store.get(&key)? else {
            return Ok(false);
        };
        let mut record = decode_checked(&key, &old)?;
        if record.state_id != *state_id || record.state.get("snapshot").is_some() {
            return Ok(false);
        }
        record.state.insert("snapshot", snapshot)?;
        let new = record::encode(&record)?;
        self.store.compare_and_swap(&key, Some(&old), Some(&new))
    }
}

fn decode_checked(key: &[u8], bytes: &[u8]) -> Result<StateRecord, StoreError> {
    let record: StateRecord = record::decode(key, bytes)?;
    if keys::parse_proc_slot(key) != Some((record.pid, record.slot)) {
        return Err(StoreError::corrupt(
            key,
            format!("holds the state of {}/{}", record.pid, record.slot),
        ));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use hb_message::msg;

    fn cache() -> (Arc<MemoryStore>, ProcessCache) {
        let store = Arc::new(MemoryStore::new());
        (store.clone(), ProcessCache::new(store))
    }

    fn state(slot: u64) -> Message {
        let mut m = msg! { "at-slot" => slot as i64, "results" => msg! { "data" => "x" } };
        if slot.is_multiple_of(10) {
            m.insert("snapshot", msg! { "data" => "mem" }).unwrap();
        }
        m
    }

    #[test]
    fn a_snapshot_attaches_once_to_the_same_state_and_keeps_its_id() {
        let (_, cache) = cache();
        let pid = Id::hash(b"p");
        let state = msg! { "at-slot" => 3, "n" => 1 };
        assert!(cache.write(&pid, 3, &state, 10).unwrap());
        let id = state.id_all().unwrap();
        // Another state's ID is refused; the right one attaches once.
        assert!(!cache
            .attach_snapshot(&pid, 3, &Id::hash(b"x"), msg! { "n" => 1 })
            .unwrap());
        assert!(cache
            .attach_snapshot(&pid, 3, &id, msg! { "n" => 1 })
            .unwrap());
        assert!(!cache
            .attach_snapshot(&pid, 3, &id, msg! { "n" => 2 })
            .unwrap());
        assert!(
            !cache
                .attach_snapshot(&pid, 4, &id, msg! { "n" => 1 })
                .unwrap(),
            "not stored"
        );
        let record = cache.read_slot(&pid, 3).unwrap().unwrap();
        assert_eq!(
            record.state.get_message("snapshot"),
            Some(&msg! { "n" => 1 })
        );
        assert_eq!(
            record.state_id, id,
            "the snapshot is not part of the state's ID"
        );
        assert_eq!(cache.read_id(&pid, &id).unwrap().map(|r| r.slot), Some(3));
        assert_eq!(
            cache.nearest_snapshot(&pid, 10).unwrap().map(|r| r.slot),
            Some(3)
        );
    }

    #[test]
    fn states_read_by_slot_and_by_id() {
        let (_, cache) = cache();
        let pid = Id([1; 32]);
        assert!(cache.write(&pid, 4, &state(4), 1000).unwrap());
        let id = state(4).id_all().unwrap();
        let by_slot = cache.read_slot(&pid, 4).unwrap().unwrap();
        assert_eq!(by_slot.state, state(4));
        assert_eq!(by_slot.computed_at_ms, 1000);
        assert_eq!(cache.read_id(&pid, &id).unwrap(), Some(by_slot));
        assert_eq!(cache.read_slot(&pid, 5).unwrap(), None);
        assert_eq!(cache.read_id(&pid, &Id([0; 32])).unwrap(), None);
        // Another process does not see it.
        assert_eq!(cache.read_id(&Id([2; 32]), &id).unwrap(), None);
    }

    #[test]
    fn repeating_a_write_changes_nothing() {
        let (store, cache) = cache();
        let pid = Id([1; 32]);
        cache.write(&pid, 1, &state(1), 10).unwrap();
        let before = store.scan_prefix(b"", Direction::Forward, 100).unwrap();
        assert!(!cache.write(&pid, 1, &state(1), 20).unwrap());
        let other = msg! { "other" => 1 };
        assert!(!cache.write(&pid, 1, &other, 30).unwrap());
        let after = store.scan_prefix(b"", Direction::Forward, 100).unwrap();
        assert_eq!(after, before);
        assert_eq!(
            cache.read_slot(&pid, 1).unwrap().unwrap().computed_at_ms,
            10
        );
        assert_eq!(cache.read_id(&pid, &other.id_all().unwrap()).unwrap(), None);
    }

    #[test]
    fn latest_honours_path_and_limit() {
        let (_, cache) = cache();
        let pid = Id([1; 32]);
        for slot in 0..75 {
            cache.write(&pid, slot, &state(slot), slot).unwrap();
        }
        let any = RequiredPath::any();
        let at = |p: &RequiredPath, l| cache.latest(&pid, p, l).unwrap().map(|s| s.slot);
        assert_eq!(at(&any, None), Some(74));
        assert_eq!(at(&any, Some(40)), Some(40));
        assert_eq!(at(&any, Some(1000)), Some(74));
        assert_eq!(at(&any, Some(-1)), None);
        let snap = RequiredPath::parse("snapshot");
        assert_eq!(at(&snap, None), Some(70));
        assert_eq!(at(&snap, Some(69)), Some(60));
        assert_eq!(at(&snap, Some(0)), Some(0));
        // Case-insensitive, nested, and as a list.
        assert_eq!(
            at(&RequiredPath::parse("Snapshot/DATA"), Some(15)),
            Some(10)
        );
        assert_eq!(
            at(&RequiredPath::from_segments(["results", "data"]), None),
            Some(74)
        );
        assert_eq!(at(&RequiredPath::parse("missing"), None), None);
        assert_eq!(cache.latest(&Id([2; 32]), &any, None).unwrap(), None);
        assert_eq!(
            cache.nearest_snapshot(&pid, 55).unwrap().map(|s| s.slot),
            Some(50)
        );
    }

    #[test]
    fn limits_parse_from_integers_and_digit_text_only() {
        assert_eq!(parse_limit(&Value::Int(5)).unwrap(), 5);
        assert_eq!(parse_limit(&Value::from("42")).unwrap(), 42);
        for bad in [
            Value::from("4a"),
            Value::from(""),
            Value::from("-3"),
            Value::from("99999999999999999999"),
            Value::Bool(true),
        ] {
            assert!(
                matches!(parse_limit(&bad), Err(StoreError::InvalidLimit(_))),
                "{bad:?}"
            );
        }
    }
}
