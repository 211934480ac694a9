//! The storage error type.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong in storage. Each variant locates the problem.
#[derive(Debug, Error)]
pub enum StoreError {
    /// An I/O failure of the backend.
    #[error("store I/O error at {path}: {detail}")]
    Io {
        /// The store's path (empty for in-memory stores).
        path: PathBuf,
        /// What the backend reported.
        detail: String,
    },
    /// Another process holds the store.
    #[error("store at {path} is locked by another process")]
    Locked {
        /// The store's path.
        path: PathBuf,
    },
    /// A record or the store itself is corrupt.
    #[error("corrupt record at key {key}: {detail}")]
    Corrupt {
        /// The key (printable form) of the record.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A record exceeds the size limit.
    #[error("record of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The record's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A scheduler slot was written twice; the first write stands.
    #[error("slot {slot} of process {pid} already exists")]
    SlotExists {
        /// The process ID.
        pid: String,
        /// The slot.
        slot: u64,
    },
    /// The store was closed.
    #[error("store is closed")]
    Closed,
}
