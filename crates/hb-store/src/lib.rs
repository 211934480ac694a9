//! # hb-store: durable storage for hb
//!
//! Owns the [`Store`] trait and its backends, [`SledStore`] and
//! [`MemoryStore`], and [`GroupCommit`], the writer that makes many
//! callers' batches durable with one flush. Knows nothing of devices or actors.

#![deny(missing_docs)]

mod batch;
mod error;
mod group_commit;
pub mod keys;
mod memory;
mod sled_store;
mod store;

pub use batch::{Batch, BatchOp};
pub use error::StoreError;
pub use group_commit::{Ack, GroupCommit, GroupCommitOptions, GroupCommitStats};
pub use memory::MemoryStore;
pub use sled_store::{SledOptions, SledStore, FORMAT_KEY, FORMAT_VERSION};
pub use store::{Direction, Entry, Store};
