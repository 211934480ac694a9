//! A cluster node's registration (SPEC §11.3): the record `node/<node id>`
//! → `{url, started, last seen}` that tells the other nodes where to send
//! the requests of the processes this node sequences, and whether it is
//! still alive. Each node writes only its own row (a plain put, refreshed
//! like a lease); every node reads the others'.

use hb_message::codec::Record;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::record;
use crate::store::{Direction, Store};

/// The stored registration of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The URL the other nodes reach this node at (`advertised_url`).
    pub url: String,
    /// When the node started (wall-clock ms).
    pub started_ms: i64,
    /// When the node last refreshed this record (wall-clock ms).
    pub last_seen_ms: i64,
}

impl Record for NodeRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "node";
}

/// Most registrations [`NodeRecord::list`] reads: far more nodes than one
/// database can serve (SPEC §11.6).
pub const MAX_LISTED_NODES: usize = 1024;

impl NodeRecord {
    /// The stored form.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        record::encode(self)
    }

    /// Decodes the record stored at `key`; [`StoreError::Corrupt`] naming
    /// the key if it is not a node record.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<NodeRecord, StoreError> {
        record::decode(key, bytes)
    }

    /// The registration of `node_id`, if any.
    pub fn read(store: &dyn Store, node_id: &str) -> Result<Option<NodeRecord>, StoreError> {
        let key = keys::node(node_id);
        match store.get(&key)? {
            Some(bytes) => Ok(Some(NodeRecord::decode(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes the registration of `node_id` (durable when the call
    /// returns, as every `apply`).
    pub fn write(&self, store: &dyn Store, node_id: &str) -> Result<(), StoreError> {
        let mut batch = crate::Batch::new();
        batch.put(keys::node(node_id), self.encode()?);
        store.apply(batch)
    }

    /// Every registered node, in node-id order (at most
    /// `MAX_LISTED_NODES`).
    pub fn list(store: &dyn Store) -> Result<Vec<(String, NodeRecord)>, StoreError> {
        store
            .scan_prefix(keys::NODE, Direction::Forward, MAX_LISTED_NODES)?
            .into_iter()
            .map(|(key, bytes)| {
                let id = String::from_utf8_lossy(&key[keys::NODE.len()..]).into_owned();
                Ok((id, NodeRecord::decode(&key, &bytes)?))
            })
            .collect()
    }

    /// Whether the node refreshed its row within `stale_after_ms` of
    /// `now_ms` (a node refreshes every third of a lease).
    pub fn is_live(&self, now_ms: i64, stale_after_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) < i64::try_from(stale_after_ms).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn record(url: &str, seen: i64) -> NodeRecord {
        NodeRecord {
            url: url.into(),
            started_ms: 1,
            last_seen_ms: seen,
        }
    }

    #[test]
    fn registrations_are_written_read_back_and_listed_in_id_order() {
        let store = MemoryStore::new();
        assert_eq!(NodeRecord::read(&store, "b").unwrap(), None);
        record("http://b", 5).write(&store, "b").unwrap();
        record("http://a", 6).write(&store, "a").unwrap();
        assert_eq!(
            NodeRecord::read(&store, "b").unwrap(),
            Some(record("http://b", 5))
        );
        let listed = NodeRecord::list(&store).unwrap();
        let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(listed[0].1.url, "http://a");
        // A refresh replaces the row.
        record("http://b2", 9).write(&store, "b").unwrap();
        assert_eq!(
            NodeRecord::read(&store, "b").unwrap().unwrap().url,
            "http://b2"
        );
    }

    #[test]
    fn a_garbled_registration_is_corrupt_naming_its_key() {
        let store = MemoryStore::new();
        store.put(&keys::node("x"), b"garbage").unwrap();
        let err = NodeRecord::read(&store, "x").unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, .. } if key == "node/x"),
            "{err:?}"
        );
        assert!(NodeRecord::list(&store).is_err());
    }

    #[test]
    fn a_node_is_live_until_its_row_is_older_than_the_staleness_bound() {
        let r = record("u", 1_000);
        assert!(r.is_live(1_000, 1));
        assert!(r.is_live(1_999, 1_000));
        assert!(!r.is_live(2_000, 1_000));
        // A row from the future (clock skew) is live.
        assert!(r.is_live(0, 1_000));
    }
}
