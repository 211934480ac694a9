//! The `Store` trait: the contract every backend meets (SPEC §3.1).

use crate::error::StoreError;

/// One operation of an atomic batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// Write `value` at `key`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Vec<u8>),
}

/// Writes applied together: all or none, also across a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The operations, applied in order.
    pub ops: Vec<BatchOp>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a write.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Put(key.into(), value.into()));
    }

    /// Adds a removal.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Delete(key.into()));
    }
}

/// A key-value store with ordered keys (unsigned byte order).
///
/// Calls are blocking (a backend may touch the disk): actors call them from
/// blocking threads, never from an arbiter serving a hot mailbox.
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes one key.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes one key (absent keys are fine).
    fn delete(&self, key: &[u8]) -> Result<(), StoreError>;
    /// Up to `limit` entries with keys in `start..end` (end exclusive),
    /// ascending, or descending when `reverse`.
    fn range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// Applies a batch atomically.
    fn apply(&self, batch: Batch) -> Result<(), StoreError>;
    /// Sets `key` to `new` only if it currently holds `expected` (`None`:
    /// absent). Returns `Ok(false)` without writing when it does not.
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    /// Returns once everything written before the call is on disk.
    fn flush(&self) -> Result<(), StoreError>;
}
