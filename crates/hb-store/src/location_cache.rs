//! Scheduler-location records by address (SPEC §3.4, §5.6.7).
//!
//! `loc/<address>` holds the signed location record with the time it was
//! stored (time-to-live counts from storage). Replacement by a higher
//! nonce is a compare-and-swap, so two concurrent registrations cannot
//! both win with the lower one stored last.

use std::sync::Arc;

use hb_message::codec::Record;
use hb_message::{Message, MessageError};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::record;
use crate::store::Store;

/// A stored location record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationRecord {
    /// The signed `scheduler-location` message.
    pub record: Message,
    /// When it was stored (ms since the Unix epoch).
    pub stored_at_ms: u64,
}

impl Record for LocationRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "location";
}

impl LocationRecord {
    /// The record's `nonce` (an integer, or digit-only text).
    pub fn nonce(&self) -> Option<i64> {
        self.record.get("nonce").and_then(|v| v.to_int_lenient())
    }
}

/// The outcome of [`LocationCache::put_if_newer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocationUpdate {
    /// The record was stored.
    Stored,
    /// A record with a nonce at least as high is stored; nothing changed.
    Stale {
        /// The stored record's nonce.
        existing_nonce: i64,
    },
}

/// Location records over a [`Store`], keyed by committer address.
#[derive(Clone)]
pub struct LocationCache {
    store: Arc<dyn Store>,
}

impl LocationCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn Store>) -> LocationCache {
        LocationCache { store }
    }

    /// The record stored for `address` (human form).
    pub fn get(&self, address: &str) -> Result<Option<LocationRecord>, StoreError> {
        let key = keys::loc(&parse_address(address)?);
        match self.store.get(&key)? {
            Some(bytes) => record::decode(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `record` for `address`, replacing any other.
    pub fn put(&self, address: &str, record: &LocationRecord) -> Result<(), StoreError> {
        let key = keys::loc(&parse_address(address)?);
        self.store.put(&key, &record::encode(record)?)
    }

    /// Stores `record` only if its nonce is higher than the stored one's
    /// (−1 when none is stored), atomically. A record without an integer
    /// `nonce` gives [`StoreError::Message`].
    pub fn put_if_newer(
        &self,
        address: &str,
        record: &LocationRecord,
    ) -> Result<LocationUpdate, StoreError> {
        let nonce = record.nonce().ok_or_else(|| {
            MessageError::InvalidValue("location record without an integer nonce".into())
        })?;
        let key = keys::loc(&parse_address(address)?);
        let new = record::encode(record)?;
        loop {
            let current = self.store.get(&key)?;
            let existing_nonce = match &current {
                Some(bytes) => record::decode::<LocationRecord>(&key, bytes)?
                    .nonce()
                    .unwrap_or(-1),
                None => -1,
            };
            if nonce <= existing_nonce {
                return Ok(LocationUpdate::Stale { existing_nonce });
            }
            if self
                .store
                .compare_and_swap(&key, current.as_deref(), Some(&new))?
            {
                return Ok(LocationUpdate::Stored);
            }
        }
    }
}

fn parse_address(address: &str) -> Result<hb_message::Id, StoreError> {
    Ok(hb_message::Id::parse(address)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use hb_message::{msg, NodeKey};

    fn rec(nonce: i64, url: &str) -> LocationRecord {
        LocationRecord {
            record: msg! { "type" => "scheduler-location", "url" => url, "nonce" => nonce },
            stored_at_ms: 5,
        }
    }

    #[test]
    fn records_are_stored_by_address_and_replaced_only_by_higher_nonces() {
        let cache = LocationCache::new(Arc::new(MemoryStore::new()));
        let addr = NodeKey::from_seed(&[1; 32]).address().to_string();
        assert_eq!(cache.get(&addr).unwrap(), None);
        assert_eq!(
            cache.put_if_newer(&addr, &rec(0, "http://a")).unwrap(),
            LocationUpdate::Stored
        );
        assert_eq!(
            cache.put_if_newer(&addr, &rec(0, "http://b")).unwrap(),
            LocationUpdate::Stale { existing_nonce: 0 }
        );
        assert_eq!(cache.get(&addr).unwrap(), Some(rec(0, "http://a")));
        assert_eq!(
            cache.put_if_newer(&addr, &rec(3, "http://c")).unwrap(),
            LocationUpdate::Stored
        );
        assert_eq!(cache.get(&addr).unwrap(), Some(rec(3, "http://c")));
        cache.put(&addr, &rec(1, "http://d")).unwrap();
        assert_eq!(cache.get(&addr).unwrap(), Some(rec(1, "http://d")));
    }

    #[test]
    fn bad_addresses_and_nonces_are_typed_errors() {
        let cache = LocationCache::new(Arc::new(MemoryStore::new()));
        assert!(matches!(cache.get("nope"), Err(StoreError::Message(_))));
        let addr = NodeKey::from_seed(&[1; 32]).address().to_string();
        let no_nonce = LocationRecord {
            record: msg! { "url" => "x" },
            stored_at_ms: 0,
        };
        assert!(matches!(
            cache.put_if_newer(&addr, &no_nonce),
            Err(StoreError::Message(_))
        ));
    }
}
