//! Lease records (SPEC §11.2): `lease/<pid>` → `{owner, epoch, until}`.
//!
//! Which node may sequence a process, in which epoch, and until when (on
//! that node's clock). The record is stored in the usual form (the record
//! codec plus a CRC-32), and its exact bytes matter: a node takes and
//! renews a lease with a compare-and-swap on the bytes it read, and every
//! assignment batch it writes requires them
//! ([`crate::BatchOp::RequireEq`]), so a record is compared as bytes, never
//! re-encoded. The decisions (take, renew, lose, fence) are hb-scheduler's;
//! this module only stores the record.

use hb_message::codec::Record;
use hb_message::Id;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::record;
use crate::store::Store;

/// A process's lease, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The node holding it (its node id).
    pub owner: String,
    /// The fencing epoch: 1 for the first lease of a process, one more on
    /// every take (by any node, also a node taking its own lease again).
    pub epoch: u64,
    /// When it expires, in ms since the Unix epoch on the owner's clock.
    pub until_ms: i64,
}

impl Record for LeaseRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "lease";
}

impl LeaseRecord {
    /// The stored form: the record codec plus a CRC-32.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        record::encode(self)
    }

    /// Reads the stored form back; anything else is
    /// [`StoreError::Corrupt`] naming `key`.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<LeaseRecord, StoreError> {
        record::decode(key, bytes)
    }

    /// The lease of `pid` and its exact stored bytes, if one is stored.
    pub fn read(store: &dyn Store, pid: &Id) -> Result<Option<(LeaseRecord, Vec<u8>)>, StoreError> {
        let key = keys::lease(pid);
        match store.get(&key)? {
            Some(bytes) => Ok(Some((LeaseRecord::decode(&key, &bytes)?, bytes))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[test]
    fn a_lease_is_stored_under_its_process_and_read_back_with_its_bytes() {
        let store = MemoryStore::new();
        let pid = Id([3; 32]);
        assert_eq!(LeaseRecord::read(&store, &pid).unwrap(), None);
        let lease = LeaseRecord {
            owner: "node-a".into(),
            epoch: 7,
            until_ms: -5,
        };
        let bytes = lease.encode().unwrap();
        store.put(&keys::lease(&pid), &bytes).unwrap();
        assert_eq!(
            LeaseRecord::read(&store, &pid).unwrap(),
            Some((lease, bytes))
        );
        assert_eq!(LeaseRecord::read(&store, &Id([4; 32])).unwrap(), None);
    }

    #[test]
    fn a_garbled_lease_is_corrupt_naming_its_key() {
        let store = MemoryStore::new();
        let pid = Id([3; 32]);
        store.put(&keys::lease(&pid), b"not a lease").unwrap();
        let err = LeaseRecord::read(&store, &pid).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, .. } if *key == format!("lease/{pid}")),
            "{err:?}"
        );
    }
}
