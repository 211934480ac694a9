//! Push records: what happened to each outbox entry of a slot (SPEC §6.12).
//!
//! `push/<pid>/<slot BE>/<outbox index BE>` holds the record of entry
//! `index` of `(pid, slot)`'s outbox (`{status, target, slot, message}` or
//! a skip reason: the push device decides the fields).

use std::sync::Arc;

use hb_message::codec::Record;
use hb_message::{Id, Message};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::error::StoreError;
use crate::keys;
use crate::record;
use crate::store::{Direction, Store};

#[derive(Serialize, Deserialize)]
struct PushRecord {
    record: Message,
}

impl Record for PushRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "push";
}

/// Push records over a [`Store`].
#[derive(Clone)]
pub struct PushCache {
    store: Arc<dyn Store>,
}

impl PushCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn Store>) -> PushCache {
        PushCache { store }
    }

    /// Adds the write of entry `index`'s record to `batch` (replacing any).
    pub fn stage(
        batch: &mut Batch,
        pid: &Id,
        slot: u64,
        index: u64,
        record: &Message,
    ) -> Result<(), StoreError> {
        batch.put(
            keys::push(pid, slot, index),
            record::encode(&PushRecord {
                record: record.clone(),
            })?,
        );
        Ok(())
    }

    /// Writes entry `index`'s record now (not flushed).
    pub fn put(&self, pid: &Id, slot: u64, index: u64, record: &Message) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        PushCache::stage(&mut batch, pid, slot, index, record)?;
        self.store.apply(batch)
    }

    /// The record of entry `index`.
    pub fn get(&self, pid: &Id, slot: u64, index: u64) -> Result<Option<Message>, StoreError> {
        let key = keys::push(pid, slot, index);
        match self.store.get(&key)? {
            Some(bytes) => Ok(Some(record::decode::<PushRecord>(&key, &bytes)?.record)),
            None => Ok(None),
        }
    }

    /// Every record of `(pid, slot)`, by outbox index.
    pub fn list(&self, pid: &Id, slot: u64) -> Result<Vec<(u64, Message)>, StoreError> {
        let prefix = keys::push_prefix(pid, slot);
        self.store
            .scan_prefix(&prefix, Direction::Forward, usize::MAX)?
            .into_iter()
            .map(|(key, bytes)| {
                let index = key
                    .get(prefix.len()..)
                    .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StoreError::corrupt(&key, "malformed push key"))?;
                Ok((index, record::decode::<PushRecord>(&key, &bytes)?.record))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use hb_message::msg;

    #[test]
    fn records_are_kept_per_slot_and_index() {
        let cache = PushCache::new(Arc::new(MemoryStore::new()));
        let pid = Id([1; 32]);
        cache
            .put(&pid, 3, 2, &msg! { "status" => "delivered" })
            .unwrap();
        cache
            .put(&pid, 3, 1, &msg! { "status" => "skipped" })
            .unwrap();
        cache
            .put(&pid, 4, 1, &msg! { "status" => "other-slot" })
            .unwrap();
        assert_eq!(
            cache.get(&pid, 3, 2).unwrap(),
            Some(msg! { "status" => "delivered" })
        );
        assert_eq!(cache.get(&pid, 3, 3).unwrap(), None);
        let listed: Vec<u64> = cache.list(&pid, 3).unwrap().iter().map(|e| e.0).collect();
        assert_eq!(listed, vec![1, 2]);
    }
}
