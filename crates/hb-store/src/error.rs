//! The storage error type.

use std::path::PathBuf;

use hb_message::MessageError;
use thiserror::Error;

/// What can go wrong in storage. Each variant locates the problem: the
/// store's path, the record's key, or the process and slot.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StoreError {
    /// An I/O failure of the backend.
    #[error("store I/O error at {path}: {detail}")]
    Io {
        /// The store's path (`<memory>` for in-memory stores).
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
    /// The store's files are corrupt: it cannot be opened.
    #[error("store at {path} is corrupt: {detail}")]
    CorruptStore {
        /// The store's path.
        path: PathBuf,
        /// What the backend reported.
        detail: String,
    },
    /// A record read back is corrupt (truncated, garbage, failed checksum,
    /// or inconsistent with its key).
    #[error("corrupt record at key {key}: {detail}")]
    Corrupt {
        /// The key (printable form) of the record.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A record exceeds the size limit of the record codec.
    #[error("{record} record exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Which kind of record.
        record: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A scheduler slot was written twice; the first write stands.
    #[error("slot {slot} of process {pid} already exists")]
    SlotExists {
        /// The process ID (human form).
        pid: String,
        /// The slot.
        slot: u64,
    },
    /// A batch wrote a key with "must be absent" ([`crate::BatchOp::PutNew`])
    /// that was present; the batch was not applied. Scheduler keys give
    /// [`StoreError::SlotExists`] instead.
    #[error("key {key} already exists")]
    KeyExists {
        /// The key (printable form).
        key: String,
    },
    /// A batch required a key ([`crate::BatchOp::Require`]) that is absent;
    /// nothing of the batch was written.
    #[error("batch precondition failed: {key} is absent")]
    Missing {
        /// The key (printable form).
        key: String,
    },
    /// A batch required a key to hold exactly a value
    /// ([`crate::BatchOp::RequireEq`]) and it does not (another value, or
    /// absent); nothing of the batch was written. It is the fence of SPEC
    /// §11.2: the writer's view of that key is stale (another writer took
    /// over), so retrying the same batch cannot succeed.
    #[error("batch precondition failed: {key} does not hold the required value")]
    PreconditionFailed {
        /// The key (printable form).
        key: String,
    },
    /// The store's server cannot be reached or refused the work (a
    /// connection lost or refused, the database gone or shutting down, too
    /// many conflicting retries). For a write the outcome is unknown only
    /// when `detail` says so; otherwise nothing was written.
    #[error("store {store} is unavailable: {detail}")]
    Unavailable {
        /// Where the store is (a PostgreSQL URL without its password).
        store: String,
        /// What failed.
        detail: String,
    },
    /// A store's address (a PostgreSQL URL) cannot be used.
    #[error("invalid store URL: {detail}")]
    InvalidUrl {
        /// What is wrong with it.
        detail: String,
    },
    /// A message handed to a cache cannot be stored as given (for example
    /// its commitments are malformed).
    #[error("message cannot be stored: {0}")]
    Message(#[from] MessageError),
    /// A process-cache limit is neither an integer nor digit-only text.
    #[error("invalid limit {0:?}: expected an integer or digit-only text")]
    InvalidLimit(String),
    /// The store, or its group-commit writer, was closed (or died); the
    /// operation was not performed or its outcome is unknown.
    #[error("store is closed")]
    Closed,
    /// The store was written by a newer hb: its format marker names a
    /// format this build does not read. Nothing was written to it.
    #[error(
        "store at {path} has format {found}, newer than format {supported} this build reads: \
         run a newer hb on it (the store was left unchanged)"
    )]
    NewerFormat {
        /// The store's path.
        path: std::path::PathBuf,
        /// The format the store's marker names.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The backend cannot do this (say, back up an in-memory store).
    #[error("the {backend} store cannot {operation}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// What it was asked to do.
        operation: &'static str,
    },
    /// The directory holds a store of another embedded backend (say, a
    /// sled store opened as fjall). Nothing was written to it.
    #[error(
        "{path} holds a {found} store, not a {expected} one: open it with the {found} backend \
         (the directory was left unchanged)"
    )]
    WrongBackend {
        /// The store's path.
        path: std::path::PathBuf,
        /// The backend whose files are there.
        found: &'static str,
        /// The backend that was asked to open it.
        expected: &'static str,
    },
    /// A backup's destination already exists; a backup only ever makes a
    /// new directory, and nothing was written.
    #[error("backup destination {path} already exists")]
    DestinationExists {
        /// The destination.
        path: std::path::PathBuf,
    },
}

impl StoreError {
    /// The error for a "must be absent" key that was present: `SlotExists`
    /// for a scheduler slot, `KeyExists` otherwise.
    pub(crate) fn key_exists(key: &[u8]) -> StoreError {
        match crate::keys::parse_sched_raw(key) {
            Some((pid, slot)) => StoreError::SlotExists {
                pid: pid.to_human(),
                slot,
            },
            None => StoreError::KeyExists {
                key: crate::keys::printable(key),
            },
        }
    }

    /// A corrupt-record error naming `key` in printable form.
    pub(crate) fn corrupt(key: &[u8], detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            key: crate::keys::printable(key),
            detail: detail.into(),
        }
    }
}

impl hb_message::ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Message(e) => e.code(),
            StoreError::InvalidLimit(_) => "invalid-limit",
            StoreError::TooLarge { .. } => "body-too-large",
            StoreError::SlotExists { .. } | StoreError::KeyExists { .. } => "conflict",
            // A fenced writer (SPEC §11.2) and an unreachable database are
            // both "not here, not now": the caller may retry elsewhere or
            // later, never with the same request here.
            StoreError::Closed
            | StoreError::PreconditionFailed { .. }
            | StoreError::Unavailable { .. } => "unavailable",
            StoreError::NewerFormat { .. } => "newer-store-format",
            StoreError::WrongBackend { .. } => "wrong-store-backend",
            StoreError::Unsupported { .. } => "unsupported",
            StoreError::DestinationExists { .. } => "conflict",
            _ => "store-error",
        }
    }

    fn status(&self) -> u16 {
        match self {
            StoreError::Message(e) => e.status(),
            StoreError::InvalidLimit(_) => 400,
            StoreError::TooLarge { .. } => 413,
            StoreError::SlotExists { .. } | StoreError::KeyExists { .. } => 409,
            StoreError::Closed
            | StoreError::PreconditionFailed { .. }
            | StoreError::Unavailable { .. } => 503,
            StoreError::Unsupported { .. } => 501,
            StoreError::DestinationExists { .. } => 409,
            _ => 500,
        }
    }
}
