//! # hb-store: durable storage for hb
//!
//! This crate owns everything hb keeps on disk and how it gets there:
//!
//! - the [`Store`] trait, an ordered key-value contract with atomic
//!   [`Batch`]es (including "must be absent" and "first write wins"
//!   operations, "must be present" and "must hold exactly this value"
//!   preconditions, and unchecked writes of content-addressed records),
//!   compare-and-swap and a durability call, with four backends:
//!   [`SledStore`] (the embedded default: one sled `Db`, key prefixes,
//!   big-endian slots), [`FjallStore`] (the compact embedded one: an LSM
//!   tree with compressed blocks, the same keys; [`copy_store`] moves a
//!   store between the two), [`MemoryStore`] (the reference implementation) and
//!   `PgStore` (one PostgreSQL table shared by several nodes, SPEC §11.1;
//!   behind the cargo feature `postgres`, on by default: build with
//!   `default-features = false` to leave tokio-postgres out);
//! - [`GroupCommit`], the writer that makes many callers' batches durable
//!   with one flush and acknowledges each only after it;
//! - the caches over a store, each with "stage into this batch" functions
//!   (so a caller can write several caches in one atomic batch) and reads:
//!   [`MessageCache`] (content-addressed messages, readable by any of their
//!   IDs), [`SchedulerCache`] (assignments by process and slot, first write
//!   wins, head by one reverse seek, the dedup index), [`ProcessCache`]
//!   (computed states by slot and by state ID), [`LocationCache`] and
//!   [`PushCache`]; and the stored [`LeaseRecord`] of a process (SPEC
//!   §11.2; the lease decisions are hb-scheduler's);
//! - the physical key layout ([`keys`]) and the stored record form (the
//!   `hb_message::codec` record plus a CRC-32; assignments in a packed
//!   version 2 of their own, [`ASSIGNMENT_VERSION`], whose CRC also covers
//!   the key, read lazily by [`SchedulerCache::range_stored`]), so that a corrupt record
//!   read back is [`StoreError::Corrupt`] naming its key, never a panic
//!   and never wrong data.
//!
//! It deliberately knows nothing of devices, actors or HTTP: sequencing,
//! signing, hash-chain computation and dedup *policy* belong to
//! hb-scheduler, computing states to hb-process. Every call is blocking;
//! async callers use [`GroupCommit::submit`] or a blocking thread
//! (`PgStore` drives its connections on a runtime of its own, so it may
//! also be called on a runtime thread). The feature `test-support` adds
//! `pg_testing`, a throwaway database per test.
//! `docs/storage.md` describes the layout, record formats and durability
//! semantics in full.
//!
//! ```
//! use std::sync::Arc;
//! use hb_message::{msg, Id};
//! use hb_store::{AssignmentRecord, Batch, GroupCommit, MemoryStore, MessageCache,
//!                SchedulerCache, Store, StoreError};
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let writer = GroupCommit::start(store.clone())?;
//! let pid = Id([7; 32]);
//! let body = msg! { "action" => "ping" };
//! let record = AssignmentRecord {
//!     pid,
//!     slot: 0,
//!     hash_chain: vec![1; 32],
//!     assignment_id: Id([2; 32]),
//!     assignment: msg! { "slot" => 0, "body" => body.clone() },
//! };
//! // One atomic batch: the assignment and the scheduled message.
//! let mut batch = Batch::new();
//! SchedulerCache::stage_assignment(&mut batch, &record)?;
//! MessageCache::stage(&mut batch, &body)?;
//! writer.commit(batch.clone())?; // durable once this returns
//!
//! let schedule = SchedulerCache::new(store.clone());
//! assert_eq!(schedule.latest(&pid)?.map(|h| h.slot), Some(0));
//! // First write wins: the same slot again is a typed error.
//! assert!(matches!(writer.commit(batch), Err(StoreError::SlotExists { slot: 0, .. })));
//! assert_eq!(MessageCache::new(store).read(&body.unsigned_id())?, Some(body));
//! # Ok::<(), StoreError>(())
//! ```

#![deny(missing_docs)]

mod batch;
mod compact;
mod error;
mod fjall_store;
mod group_commit;
pub mod keys;
mod lease_record;
mod location_cache;
mod memory;
mod message_cache;
mod node_record;
mod packed_json;
#[cfg(feature = "postgres")]
mod pg_store;
#[cfg(feature = "test-support")]
pub mod pg_testing;
mod process_cache;
mod push_cache;
mod record;
mod scheduler_cache;
mod sled_store;
mod store;
mod store_dir;

pub use batch::{Batch, BatchOp};
pub use error::StoreError;
pub use fjall_store::{FjallOptions, FjallStore};
pub use group_commit::{Ack, GroupCommit, GroupCommitOptions, GroupCommitStats};
pub use lease_record::LeaseRecord;
pub use location_cache::{LocationCache, LocationRecord, LocationUpdate};
pub use memory::MemoryStore;
pub use message_cache::{MessageCache, MessageIds};
pub use node_record::NodeRecord;
#[cfg(feature = "postgres")]
pub use pg_store::{PgOptions, PgStore};
pub use process_cache::{parse_limit, state_id_of, ProcessCache, RequiredPath, StateRecord};
pub use push_cache::PushCache;
pub use scheduler_cache::{
    AssignmentRecord, DedupEntry, Head, SchedulerCache, StoredAssignment, ASSIGNMENT_VERSION,
};
pub use sled_store::{
    SledOptions, SledStore, CREATING_FILE, FORMAT, FORMAT_KEY, FORMAT_PREFIX, FORMAT_VERSION,
    OLDEST_FORMAT,
};
pub use store::{BackupReport, Direction, Entry, Store};
pub use store_dir::{copy_store, embedded_backend_in, open_embedded};
