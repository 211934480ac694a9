//! The message cache: content-addressed messages, readable by any of their
//! IDs (SPEC §3.4).
//!
//! A message is split into its content (everything but top-level
//! `commitments`) and its commitments. The content is stored once, at
//! `msg/<unsigned id>`; each commitment at `cmt/<unsigned id>/<commitment
//! id>`; each commitment ID and the message's id(all) get a link naming the
//! content and the commitments that ID covers. Reading by an alias gives
//! back exactly the message with that ID; reading by the unsigned ID gives
//! the content with every commitment stored for it. Storing the same
//! content twice stores it once.
//!
//! `msg/` and `cmt/` records are content-addressed: the key fixes the value
//! (the content's hash; the content's hash and the commitment's ID, itself
//! the hash of its signature). They are staged with
//! [`crate::BatchOp::PutContent`], written without an existence check: a
//! rewrite stores the bytes already there. Links stay first-write-wins
//! ([`crate::BatchOp::PutIfAbsent`]): a commitment that covers only some
//! keys can sit on two contents that differ in the others, so its ID does
//! not fix which content a link names, and the first link stays.

use std::sync::Arc;

use hb_message::codec::Record;
use hb_message::{Id, Message, MessageError, Value, COMMITMENTS};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::error::StoreError;
use crate::keys;
use crate::record::{self, id_bytes};
use crate::store::{Direction, Store};

/// Most commitments read back for one content.
const MAX_COMMITMENTS: usize = 4096;

#[derive(Serialize, Deserialize)]
struct ContentRecord {
    content: Message,
}

impl Record for ContentRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "message";
}

#[derive(Serialize, Deserialize)]
struct CommitmentRecord {
    body: Message,
}

impl Record for CommitmentRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "commitment";
}

#[derive(Serialize, Deserialize)]
struct LinkRecord {
    #[serde(with = "id_bytes")]
    content: Id,
    commitments: Vec<[u8; 32]>,
}

impl Record for LinkRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "link";
}

/// The IDs under which a stored message can be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageIds {
    /// The unsigned ID (where the content lives).
    pub unsigned: Id,
    /// id(all): equal to `unsigned` for an unsigned message.
    pub all: Id,
    /// Every commitment ID, in key order.
    pub commitments: Vec<Id>,
}

/// The content-addressed message cache over a [`Store`].
#[derive(Clone)]
pub struct MessageCache {
    store: Arc<dyn Store>,
}

impl MessageCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn Store>) -> MessageCache {
        MessageCache { store }
    }

    /// Adds the writes that store `message` to `batch`. Staging an already
    /// stored message changes nothing: its content and commitments are
    /// rewritten with the bytes they hold (no existence check), and its
    /// links are kept (first write wins).
    /// Malformed commitments give [`StoreError::Message`].
    pub fn stage(batch: &mut Batch, message: &Message) -> Result<MessageIds, StoreError> {
        let all = message.id_all()?;
        let unsigned = message.unsigned_id();
        let mut content = message.clone();
        content.remove(COMMITMENTS);
        let mut commitments = Vec::new();
        if let Some(map) = message.commitments() {
            for (cid_text, body) in map.iter() {
                let cid =
                    Id::parse(cid_text.as_str()).map_err(|_| MessageError::InvalidCommitment {
                        id: cid_text.to_string(),
                        reason: "commitment ID is not an ID".into(),
                    })?;
                let body = body
                    .as_message()
                    .ok_or_else(|| MessageError::InvalidCommitment {
                        id: cid_text.to_string(),
                        reason: "commitment is not a message".into(),
                    })?;
                batch.put_content(
                    keys::cmt(&unsigned, &cid),
                    record::encode(&CommitmentRecord { body: body.clone() })?,
                );
                batch.put_if_absent(
                    keys::link(&cid),
                    record::encode(&LinkRecord {
                        content: unsigned,
                        commitments: vec![cid.0],
                    })?,
                );
                commitments.push(cid);
            }
        }
        batch.put_content(
            keys::msg(&unsigned),
            record::encode(&ContentRecord { content })?,
        );
        if commitments.len() > 1 {
            batch.put_if_absent(
                keys::link(&all),
                record::encode(&LinkRecord {
                    content: unsigned,
                    commitments: commitments.iter().map(|c| c.0).collect(),
                })?,
            );
        }
        Ok(MessageIds {
            unsigned,
            all,
            commitments,
        })
    }

    /// Stores `message` now (one atomic batch).
    pub fn write(&self, message: &Message) -> Result<MessageIds, StoreError> {
        let _span = tracing::debug_span!("message_cache_write").entered();
        let mut batch = Batch::new();
        let ids = MessageCache::stage(&mut batch, message)?;
        self.store.apply(batch)?;
        Ok(ids)
    }

    /// Whether a message is stored under `id` (any of its IDs).
    pub fn contains(&self, id: &Id) -> Result<bool, StoreError> {
        Ok(self.store.get(&keys::msg(id))?.is_some() || self.store.get(&keys::link(id))?.is_some())
    }

    /// Reads the message with ID `id`: by its unsigned ID (the content with
    /// every stored commitment), by a commitment ID (the content with that
    /// commitment) or by its id(all) (the content with exactly those
    /// commitments).
    pub fn read(&self, id: &Id) -> Result<Option<Message>, StoreError> {
        let _span = tracing::debug_span!("message_cache_read", id = %id).entered();
        if let Some(content) = self.content(id)? {
            let prefix = keys::cmt_prefix(id);
            let mut commitments = Vec::new();
            for (key, bytes) in
                self.store
                    .scan_prefix(&prefix, Direction::Forward, MAX_COMMITMENTS)?
            {
                let cid = key
                    .get(prefix.len()..)
                    .and_then(|rest| <[u8; 32]>::try_from(rest).ok())
                    .map(Id)
                    .ok_or_else(|| StoreError::corrupt(&key, "malformed commitment key"))?;
                let body = record::decode::<CommitmentRecord>(&key, &bytes)?.body;
                commitments.push((cid, body));
            }
            return assemble(&keys::msg(id), content, commitments).map(Some);
        }
        let link_key = keys::link(id);
        let Some(bytes) = self.store.get(&link_key)? else {
            return Ok(None);
        };
        let link = record::decode::<LinkRecord>(&link_key, &bytes)?;
        let content = self
            .content(&link.content)?
            .ok_or_else(|| StoreError::corrupt(&link_key, "link to a missing message"))?;
        let mut commitments = Vec::with_capacity(link.commitments.len());
        for cid in link.commitments.into_iter().map(Id) {
            let key = keys::cmt(&link.content, &cid);
            let bytes = self
                .store
                .get(&key)?
                .ok_or_else(|| StoreError::corrupt(&link_key, "link to a missing commitment"))?;
            commitments.push((cid, record::decode::<CommitmentRecord>(&key, &bytes)?.body));
        }
        let message = assemble(&link_key, content, commitments)?;
        if message.id_all()? != *id {
            return Err(StoreError::corrupt(
                &link_key,
                "linked message does not have the linked ID",
            ));
        }
        Ok(Some(message))
    }

    /// The content stored at `msg/<uid>`, checked against its address.
    fn content(&self, uid: &Id) -> Result<Option<Message>, StoreError> {
        let key = keys::msg(uid);
        let Some(bytes) = self.store.get(&key)? else {
            return Ok(None);
        };
        let content = record::decode::<ContentRecord>(&key, &bytes)?.content;
        if content.unsigned_id() != *uid {
            return Err(StoreError::corrupt(
                &key,
                "content does not hash to its address",
            ));
        }
        Ok(Some(content))
    }
}

fn assemble(
    key: &[u8],
    mut content: Message,
    commitments: Vec<(Id, Message)>,
) -> Result<Message, StoreError> {
    if commitments.is_empty() {
        return Ok(content);
    }
    let mut map = Message::new();
    for (cid, body) in commitments {
        map.insert(&cid.to_human(), body)
            .map_err(|e| StoreError::corrupt(key, e.to_string()))?;
    }
    content
        .insert(COMMITMENTS, Value::Message(map))
        .map_err(|e| StoreError::corrupt(key, e.to_string()))?;
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use hb_message::{msg, NodeKey};

    fn cache() -> (Arc<MemoryStore>, MessageCache) {
        let store = Arc::new(MemoryStore::new());
        (store.clone(), MessageCache::new(store))
    }

    #[test]
    fn unsigned_messages_are_read_by_their_id() {
        let (_, cache) = cache();
        let m = msg! { "a" => 1, "b" => "two" };
        let ids = cache.write(&m).unwrap();
        assert_eq!(ids.unsigned, m.unsigned_id());
        assert_eq!(ids.all, ids.unsigned);
        assert_eq!(cache.read(&ids.unsigned).unwrap(), Some(m));
        assert_eq!(cache.read(&Id([9; 32])).unwrap(), None);
    }

    #[test]
    fn every_commitment_id_and_id_all_resolve() {
        let (_, cache) = cache();
        let a = NodeKey::from_seed(&[1; 32]);
        let b = NodeKey::from_seed(&[2; 32]);
        let base = msg! { "action" => "transfer", "qty" => 5 };
        let signed_a = base.commit(&a, None).unwrap();
        let signed_ab = signed_a.commit(&b, None).unwrap();
        let ids = cache.write(&signed_ab).unwrap();
        assert_eq!(ids.commitments.len(), 2);
        assert_eq!(cache.read(&ids.all).unwrap().as_ref(), Some(&signed_ab));
        for cid in &ids.commitments {
            let one = cache.read(cid).unwrap().unwrap();
            assert_eq!(one.id_all().unwrap(), *cid);
            assert_eq!(one.unsigned_id(), base.unsigned_id());
        }
        // By the unsigned ID: the content with every stored commitment.
        assert_eq!(cache.read(&ids.unsigned).unwrap(), Some(signed_ab));
        // The signed-by-a message was never written as such, yet its ID
        // is a commitment ID and resolves.
        assert_eq!(
            cache.read(&signed_a.id_all().unwrap()).unwrap(),
            Some(signed_a)
        );
    }

    #[test]
    fn the_same_content_is_stored_once() {
        let (store, cache) = cache();
        let m = msg! { "k" => "v" };
        cache.write(&m).unwrap();
        let after_first = store.len();
        cache.write(&m).unwrap();
        assert_eq!(store.len(), after_first);
        // A signed copy adds its commitment and link, not a second content.
        let signed = m.commit(&NodeKey::from_seed(&[3; 32]), None).unwrap();
        cache.write(&signed).unwrap();
        assert_eq!(store.len(), after_first + 2);
        let content_keys = store
            .scan_prefix(keys::MSG, Direction::Forward, 100)
            .unwrap();
        assert_eq!(content_keys.len(), 1);
    }

    #[test]
    fn content_and_commitments_are_content_writes_and_links_first_write_wins() {
        let signed = msg! { "k" => "v" }
            .commit(&NodeKey::from_seed(&[5; 32]), None)
            .unwrap()
            .commit(&NodeKey::from_seed(&[6; 32]), None)
            .unwrap();
        let mut batch = Batch::new();
        let ids = MessageCache::stage(&mut batch, &signed).unwrap();
        for op in &batch.ops {
            let key = op.key();
            match op {
                crate::BatchOp::PutContent(..) => {
                    assert!(key.starts_with(keys::MSG) || key.starts_with(keys::CMT))
                }
                crate::BatchOp::PutIfAbsent(..) => assert!(key.starts_with(keys::LINK)),
                other => panic!("unexpected {other:?}"),
            }
        }
        // One content, two commitments, a link per commitment and id(all).
        assert_eq!(batch.len(), 1 + 2 + 3);
        // Staging it again over the stored copy changes no byte.
        let (store, cache) = cache();
        store.apply(batch.clone()).unwrap();
        let before = store
            .range(b"", None, Direction::Forward, usize::MAX)
            .unwrap();
        store.apply(batch).unwrap();
        cache.write(&signed).unwrap();
        assert_eq!(
            store
                .range(b"", None, Direction::Forward, usize::MAX)
                .unwrap(),
            before
        );
        assert_eq!(cache.read(&ids.all).unwrap(), Some(signed));
    }

    #[test]
    fn malformed_commitments_are_refused() {
        let (store, cache) = cache();
        let m = msg! { "a" => 1, "commitments" => msg! { "not-an-id" => msg! {} } };
        assert!(matches!(cache.write(&m), Err(StoreError::Message(_))));
        let m = msg! { "a" => 1, "commitments" => "text" };
        assert!(matches!(cache.write(&m), Err(StoreError::Message(_))));
        assert!(store.is_empty());
    }

    #[test]
    fn tampered_or_dangling_records_are_corrupt() {
        let (store, cache) = cache();
        let m = msg! { "a" => 1 };
        let other = msg! { "a" => 2 };
        let ids = cache.write(&m).unwrap();
        // A valid record of other content at m's address.
        let mut batch = Batch::new();
        MessageCache::stage(&mut batch, &other).unwrap();
        store.apply(batch).unwrap();
        let moved = store
            .get(&keys::msg(&other.unsigned_id()))
            .unwrap()
            .unwrap();
        store.put(&keys::msg(&ids.unsigned), &moved).unwrap();
        assert!(matches!(
            cache.read(&ids.unsigned),
            Err(StoreError::Corrupt { .. })
        ));
        // A link to content that is not there.
        let signed = other.commit(&NodeKey::from_seed(&[4; 32]), None).unwrap();
        let sids = cache.write(&signed).unwrap();
        store.delete(&keys::msg(&sids.unsigned)).unwrap();
        let err = cache.read(&sids.all).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, .. } if key.starts_with("link/")),
            "{err:?}"
        );
    }
}
