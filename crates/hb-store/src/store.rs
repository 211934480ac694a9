//! The `Store` trait: the contract every backend meets (SPEC §3.1).

use std::path::Path;

use crate::batch::{Batch, Lookup, Overlay};
use crate::error::StoreError;
use crate::keys::prefix_end;

/// What a [`Store::backup`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// Entries copied (every key of the store, its format marker included).
    pub entries: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

/// One key-value pair read from a store.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The order of a range scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending key order.
    Forward,
    /// Descending key order.
    Reverse,
}

/// A key-value store with ordered keys (unsigned byte order).
///
/// Calls are blocking (a backend may touch the disk): actors call them from
/// blocking threads, never from an arbiter serving a hot mailbox. The trait
/// is object-safe and used as `Arc<dyn Store>`.
///
/// Contract (checked by `tests/store_contract.rs` against every backend):
/// reads see every write that returned before them; batches apply all or
/// nothing; conditional operations and preconditions
/// ([`crate::BatchOp::PutNew`], [`crate::BatchOp::PutIfAbsent`],
/// [`crate::BatchOp::Require`], [`crate::BatchOp::RequireEq`],
/// [`Store::compare_and_swap`]) are atomic with respect to every other
/// write, also another process's on a shared database; [`crate::BatchOp::PutContent`] is a
/// plain write (no existence check); a write is durable once a
/// [`Store::flush`] called after it has returned.
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes one key.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// Removes one key (absent keys are fine).
    fn delete(&self, key: &[u8]) -> Result<(), StoreError>;

    /// Up to `limit` entries with `start <= key < end` (`end: None` means no
    /// upper bound), in the given direction. A reverse scan starts at the
    /// last key below `end`: a bounded seek, not a scan from `start`.
    fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;

    /// Applies a batch atomically, conditional operations included.
    fn apply(&self, batch: Batch) -> Result<(), StoreError>;

    /// Applies several independent batches, each atomically and in order,
    /// as if by successive [`Store::apply`] calls, and reports each one's
    /// outcome; a failing batch does not affect the others. Backends
    /// override this to write the accepted batches together (group commit).
    fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        batches.into_iter().map(|b| self.apply(b)).collect()
    }

    /// Sets `key` to `new` (`None`: removes it) only if it currently holds
    /// `expected` (`None`: absent). Returns `Ok(false)` without writing when
    /// it does not. Usable as a single-writer fence on one key.
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError>;

    /// Returns once everything written before the call is on disk.
    fn flush(&self) -> Result<(), StoreError>;

    /// Where the store lives, if on disk (for errors and logs).
    fn path(&self) -> Option<&Path> {
        None
    }

    /// Writes a consistent copy of the whole store into `dest`, a directory
    /// that must not exist yet ([`StoreError::DestinationExists`]): every
    /// write that returned before the call is in it, and no write is half
    /// in it (writes wait while the copy is made). The copy is durable
    /// when this returns and opens as a store of the same backend on disk.
    /// Backends that cannot answer [`StoreError::Unsupported`] (the
    /// default). Blocking, as every call.
    fn backup(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        let _ = dest;
        Err(StoreError::Unsupported {
            backend: "this",
            operation: "back up",
        })
    }

    /// How many bytes the store takes on disk, if it knows (for metrics).
    fn bytes_on_disk(&self) -> Option<u64> {
        None
    }

    /// Up to `limit` entries whose key starts with `prefix`, in the given
    /// direction.
    fn scan_prefix(
        &self,
        prefix: &[u8],
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let end = prefix_end(prefix);
        self.range(prefix, end.as_deref(), direction, limit)
    }

    /// The entry with the highest key starting with `prefix`: one reverse
    /// seek.
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Entry>, StoreError> {
        Ok(self
            .scan_prefix(prefix, Direction::Reverse, 1)?
            .into_iter()
            .next())
    }
}

/// Resolves `batches` one after another against `backend`, for backends
/// that apply a group as one write: each batch's outcome, and the writes of
/// the accepted ones in order.
pub(crate) fn resolve_group(
    batches: Vec<Batch>,
    backend: &mut dyn Lookup,
) -> (Vec<Result<(), StoreError>>, crate::batch::Writes) {
    let mut overlay = Overlay::default();
    let outcomes = batches
        .into_iter()
        .map(|batch| overlay.resolve(batch, backend))
        .collect();
    (outcomes, overlay.into_writes())
}

/// Up to `limit` entries of a backend's range iterator, in `direction`,
/// each read by `entry`: the scan every ordered backend's [`Store::range`]
/// shares.
pub(crate) fn collect_range<T>(
    iter: impl DoubleEndedIterator<Item = T>,
    direction: Direction,
    limit: usize,
    mut entry: impl FnMut(T) -> Result<Entry, StoreError>,
) -> Result<Vec<Entry>, StoreError> {
    fn take<T>(
        items: impl Iterator<Item = T>,
        limit: usize,
        entry: &mut impl FnMut(T) -> Result<Entry, StoreError>,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in items {
            if out.len() == limit {
                break;
            }
            out.push(entry(item)?);
        }
        Ok(out)
    }
    match direction {
        Direction::Forward => take(iter, limit, &mut entry),
        Direction::Reverse => take(iter.rev(), limit, &mut entry),
    }
}

/// A group written as one write that failed: every batch it had accepted
/// fails with that error (the refused ones keep their own).
pub(crate) fn fail_accepted(outcomes: &mut [Result<(), StoreError>], error: &StoreError) {
    for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
        *o = Err(error.clone());
    }
}
