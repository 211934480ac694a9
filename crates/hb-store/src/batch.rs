//! Atomic batches and their conditional operations.
//!
//! A [`Batch`] is applied all or nothing, also across a crash. Besides plain
//! writes and removals it can hold two conditional writes and two
//! preconditions, evaluated atomically with the batch by every backend and
//! by group commit: [`BatchOp::PutNew`] ("must be absent": the whole batch
//! fails with [`StoreError::SlotExists`] / [`StoreError::KeyExists`]
//! otherwise), [`BatchOp::PutIfAbsent`] ("first write wins": skipped when
//! present, the rest of the batch still applies), [`BatchOp::Require`]
//! ("must be present", [`StoreError::Missing`]) and [`BatchOp::RequireEq`]
//! ("must hold exactly this value", [`StoreError::PreconditionFailed`]: the
//! fence of SPEC §11.2).
//!
//! Content-addressed records, whose value is fixed by their key (a message's
//! content under its hash), are written with [`BatchOp::PutContent`]: an
//! unconditional write, because rewriting a present key writes the bytes it
//! already holds. It costs no existence check, where `PutIfAbsent` costs one
//! lookup in the backend per key.

use std::collections::HashMap;

use crate::error::StoreError;

/// One operation of an atomic batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// Write `value` at `key`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Vec<u8>),
    /// Write `value` at `key`, which must be absent; if it is present the
    /// whole batch fails and nothing of it is written.
    PutNew(Vec<u8>, Vec<u8>),
    /// Write `value` at `key` only if it is absent; if it is present this
    /// operation is skipped and the rest of the batch applies.
    PutIfAbsent(Vec<u8>, Vec<u8>),
    /// Write `value` at `key`, whose value is determined by the key
    /// (content-addressed: the key names a hash of the value, or of what
    /// the value is derived from). Written unconditionally: if the key is
    /// present it already holds these bytes, so the write changes nothing,
    /// and no existence check is made. Backends treat it as
    /// [`BatchOp::Put`]; the caller guarantees that the value is the one
    /// the key determines (use [`BatchOp::PutIfAbsent`] where two values
    /// may legitimately compete for one key and the first must stay).
    PutContent(Vec<u8>, Vec<u8>),
    /// Write nothing, but fail the whole batch unless `key` is present
    /// ([`StoreError::Missing`]). A scheduler slot requires the slot before
    /// it, so a failed write can never leave a later slot stored on top of
    /// a gap.
    Require(Vec<u8>),
    /// Write nothing, but fail the whole batch unless `key` holds exactly
    /// this value ([`StoreError::PreconditionFailed`]; an absent key fails
    /// too). A writer that must still own something when its batch lands
    /// (a scheduler holding a lease, SPEC §11.2) requires the value it
    /// holds: if another writer replaced it in between, nothing of the
    /// batch is written.
    RequireEq(Vec<u8>, Vec<u8>),
}

impl BatchOp {
    /// The key the operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put(k, _)
            | BatchOp::Delete(k)
            | BatchOp::PutNew(k, _)
            | BatchOp::PutIfAbsent(k, _)
            | BatchOp::PutContent(k, _)
            | BatchOp::Require(k)
            | BatchOp::RequireEq(k, _) => k,
        }
    }
}

/// Writes applied together: all or none, also across a crash. Operations
/// apply in order; a conditional operation sees the effect of the earlier
/// operations of its own batch.
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

    /// Adds a write of a key that must be absent (see [`BatchOp::PutNew`]).
    pub fn put_new(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::PutNew(key.into(), value.into()));
    }

    /// Adds a first-write-wins write (see [`BatchOp::PutIfAbsent`]).
    pub fn put_if_absent(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops
            .push(BatchOp::PutIfAbsent(key.into(), value.into()));
    }

    /// Adds a write of a content-addressed record, whose value the key
    /// determines (see [`BatchOp::PutContent`]): unconditional, no
    /// existence check.
    pub fn put_content(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::PutContent(key.into(), value.into()));
    }

    /// Adds a precondition: `key` must be present (see [`BatchOp::Require`]).
    pub fn require(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Require(key.into()));
    }

    /// Adds a precondition: `key` must hold exactly `value` (see
    /// [`BatchOp::RequireEq`]).
    pub fn require_eq(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::RequireEq(key.into(), value.into()));
    }

    /// Appends every operation of `other`.
    pub fn extend(&mut self, other: Batch) {
        self.ops.extend(other.ops);
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The unconditional writes a batch resolves to: `(key, Some(value))` to
/// write, `(key, None)` to remove, in order.
pub(crate) type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Batches of at most this many operations look up their own earlier
/// writes by a scan instead of a map.
const SMALL_BATCH: usize = 16;

/// What the backend holds, as the resolution of conditional operations
/// asks it: only for keys that neither the batch nor the group's earlier
/// batches wrote.
pub(crate) trait Lookup {
    /// Whether `key` is present.
    fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError>;
    /// Whether `key` is present and holds exactly `value`.
    fn holds(&mut self, key: &[u8], value: &[u8]) -> Result<bool, StoreError>;
}

/// What a conditional operation requires of its key.
#[derive(Clone, Copy)]
enum Condition {
    /// `PutNew`: absent, or the batch fails.
    Absent,
    /// `PutIfAbsent`: absent, or the operation is skipped.
    SkipIfPresent,
    /// `Require`: present, or the batch fails.
    Present,
}

/// The state of a group being resolved: the writes of the batches accepted
/// so far, in order, and the presence of every key they wrote (`true`:
/// present after them), consulted before the backend.
#[derive(Default)]
pub(crate) struct Overlay {
    present: HashMap<Vec<u8>, bool>,
    writes: Writes,
}

impl Overlay {
    /// Turns `batch` into unconditional writes appended to the overlay's,
    /// evaluating its conditional operations against the earlier operations
    /// of the batch, then the batches accepted before it, then `backend`.
    /// On failure nothing of the batch joins the overlay.
    pub(crate) fn resolve(
        &mut self,
        batch: Batch,
        backend: &mut dyn Lookup,
    ) -> Result<(), StoreError> {
        let start = self.writes.len();
        match self.resolve_ops(batch, backend) {
            Ok(()) => {
                for (k, v) in &self.writes[start..] {
                    self.present.insert(k.clone(), v.is_some());
                }
                Ok(())
            }
            Err(e) => {
                self.writes.truncate(start);
                Err(e)
            }
        }
    }

    /// The writes of every accepted batch, in order.
    pub(crate) fn into_writes(self) -> Writes {
        self.writes
    }

    fn resolve_ops(&mut self, batch: Batch, backend: &mut dyn Lookup) -> Result<(), StoreError> {
        let conditional = batch.ops.iter().any(|op| {
            matches!(
                op,
                BatchOp::PutNew(..)
                    | BatchOp::PutIfAbsent(..)
                    | BatchOp::Require(..)
                    | BatchOp::RequireEq(..)
            )
        });
        self.writes.reserve(batch.ops.len());
        if !conditional {
            for op in batch.ops {
                match op {
                    BatchOp::Put(k, v) | BatchOp::PutContent(k, v) => {
                        self.writes.push((k, Some(v)))
                    }
                    BatchOp::Delete(k) => self.writes.push((k, None)),
                    // Excluded by `conditional` above.
                    BatchOp::PutNew(..)
                    | BatchOp::PutIfAbsent(..)
                    | BatchOp::Require(..)
                    | BatchOp::RequireEq(..) => {}
                }
            }
            return Ok(());
        }
        // Keys written earlier in this batch: found by scanning its writes
        // for the small batches the caches stage (no map, no key copies),
        // by a map for large ones.
        let start = self.writes.len();
        let small = batch.ops.len() <= SMALL_BATCH;
        let mut local: HashMap<Vec<u8>, bool> = HashMap::new();
        for op in batch.ops {
            let (key, value, condition) = match op {
                BatchOp::Put(k, v) | BatchOp::PutContent(k, v) => (k, Some(v), None),
                BatchOp::Delete(k) => (k, None, None),
                BatchOp::PutNew(k, v) => (k, Some(v), Some(Condition::Absent)),
                BatchOp::PutIfAbsent(k, v) => (k, Some(v), Some(Condition::SkipIfPresent)),
                BatchOp::Require(k) => (k, None, Some(Condition::Present)),
                BatchOp::RequireEq(k, expected) => {
                    if self.holds(&k, &expected, start, small, &local, backend)? {
                        continue;
                    }
                    return Err(StoreError::PreconditionFailed {
                        key: crate::keys::printable(&k),
                    });
                }
            };
            if let Some(condition) = condition {
                let present = match self.written(&key, start, small, &local) {
                    Some(p) => p,
                    None => backend.exists(&key)?,
                };
                match (condition, present) {
                    (Condition::Absent, true) => return Err(StoreError::key_exists(&key)),
                    (Condition::SkipIfPresent, true) => continue,
                    (Condition::Present, false) => {
                        return Err(StoreError::Missing {
                            key: crate::keys::printable(&key),
                        })
                    }
                    (Condition::Present, true) => continue,
                    (Condition::Absent | Condition::SkipIfPresent, false) => {}
                }
            }
            if !small {
                local.insert(key.clone(), value.is_some());
            }
            self.writes.push((key, value));
        }
        Ok(())
    }

    /// Whether `key` is present after the writes resolved so far (the
    /// batch's own from `start` on, then the accepted batches'), if any of
    /// them wrote it.
    fn written(
        &self,
        key: &[u8],
        start: usize,
        small: bool,
        local: &HashMap<Vec<u8>, bool>,
    ) -> Option<bool> {
        let in_batch = if small {
            self.writes[start..]
                .iter()
                .rev()
                .find(|(k, _)| k.as_slice() == key)
                .map(|(_, v)| v.is_some())
        } else {
            local.get(key).copied()
        };
        in_batch.or_else(|| self.present.get(key).copied())
    }

    /// Whether `key` holds exactly `expected` after the writes resolved so
    /// far, else in the backend.
    fn holds(
        &self,
        key: &[u8],
        expected: &[u8],
        start: usize,
        small: bool,
        local: &HashMap<Vec<u8>, bool>,
        backend: &mut dyn Lookup,
    ) -> Result<bool, StoreError> {
        if self.written(key, start, small, local).is_none() {
            return backend.holds(key, expected);
        }
        // Written in this group: its last write is its value (a rare case,
        // so a scan of the group's writes is fine).
        Ok(self
            .writes
            .iter()
            .rev()
            .find(|(k, _)| k.as_slice() == key)
            .is_some_and(|(_, v)| v.as_deref() == Some(expected)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend answering presence by a function; it holds no values.
    struct Exists<F>(F);

    impl<F: FnMut(&[u8]) -> Result<bool, StoreError>> Lookup for Exists<F> {
        fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
            (self.0)(key)
        }
        fn holds(&mut self, _key: &[u8], _value: &[u8]) -> Result<bool, StoreError> {
            Ok(false)
        }
    }

    /// A backend holding exactly these entries.
    struct Holding(Vec<(&'static str, &'static str)>);

    impl Lookup for Holding {
        fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
            Ok(self.0.iter().any(|(k, _)| k.as_bytes() == key))
        }
        fn holds(&mut self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
            Ok(self
                .0
                .iter()
                .any(|(k, v)| k.as_bytes() == key && v.as_bytes() == value))
        }
    }

    fn none(_: &[u8]) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Resolves one batch on its own: its writes.
    fn resolve_one(batch: Batch, backend: &mut dyn Lookup) -> Result<Writes, StoreError> {
        let mut overlay = Overlay::default();
        overlay.resolve(batch, backend)?;
        Ok(overlay.into_writes())
    }

    #[test]
    fn put_new_sees_earlier_ops_of_its_batch() {
        let mut b = Batch::new();
        b.put("k", "1");
        b.put_new("k", "2");
        let err = resolve_one(b, &mut Exists(none)).unwrap_err();
        assert!(matches!(err, StoreError::KeyExists { .. }));

        let mut b = Batch::new();
        b.put("k", "1");
        b.delete("k");
        b.put_new("k", "2");
        let w = resolve_one(b, &mut Exists(none)).unwrap();
        assert_eq!(w.last(), Some(&(b"k".to_vec(), Some(b"2".to_vec()))));
    }

    #[test]
    fn large_batches_see_their_earlier_ops_too() {
        // Past SMALL_BATCH operations, earlier writes are found by a map.
        let padded = |tail: &[(&str, &str, u8)]| {
            let mut b = Batch::new();
            for i in 0..SMALL_BATCH {
                b.put(format!("pad{i}"), "p");
            }
            for (op, k, v) in tail {
                match *op {
                    "put" => b.put(*k, vec![*v]),
                    "delete" => b.delete(*k),
                    "new" => b.put_new(*k, vec![*v]),
                    "absent" => b.put_if_absent(*k, vec![*v]),
                    _ => b.require(*k),
                }
            }
            assert!(b.len() > SMALL_BATCH);
            b
        };
        let b = padded(&[("put", "k", 1), ("new", "k", 2)]);
        assert!(matches!(
            resolve_one(b, &mut Exists(none)),
            Err(StoreError::KeyExists { .. })
        ));
        let b = padded(&[("put", "k", 1), ("delete", "k", 0), ("new", "k", 2)]);
        let w = resolve_one(b, &mut Exists(none)).unwrap();
        assert_eq!(w.last(), Some(&(b"k".to_vec(), Some(vec![2]))));
        let b = padded(&[("absent", "k", 1), ("absent", "k", 2), ("require", "k", 0)]);
        let w = resolve_one(b, &mut Exists(none)).unwrap();
        assert_eq!(w.last(), Some(&(b"k".to_vec(), Some(vec![1]))));
        assert_eq!(w.len(), SMALL_BATCH + 1);
    }

    #[test]
    fn require_fails_the_whole_batch_when_its_key_is_absent() {
        let mut b = Batch::new();
        b.put("x", "1");
        b.require("needed");
        let err = resolve_one(b, &mut Exists(none)).unwrap_err();
        assert!(matches!(err, StoreError::Missing { .. }));
        // Present in the backend, in an earlier accepted batch, or earlier
        // in the same batch: all satisfy it.
        let mut b = Batch::new();
        b.require("needed");
        b.put("x", "1");
        let exists = |k: &[u8]| Ok(k == b"needed");
        assert_eq!(resolve_one(b, &mut Exists(exists)).unwrap().len(), 1);
        let mut overlay = Overlay::default();
        let mut first = Batch::new();
        first.put_new("a", "1");
        overlay.resolve(first, &mut Exists(none)).unwrap();
        let mut second = Batch::new();
        second.require("a");
        second.put("b", "2");
        assert!(overlay.resolve(second, &mut Exists(none)).is_ok());
        let mut same = Batch::new();
        same.put("c", "1");
        same.require("c");
        assert!(resolve_one(same, &mut Exists(none)).is_ok());
    }

    #[test]
    fn put_if_absent_skips_present_keys_only() {
        let mut b = Batch::new();
        b.put_if_absent("old", "x");
        b.put_if_absent("new", "y");
        let exists = |k: &[u8]| Ok(k == b"old");
        let w = resolve_one(b, &mut Exists(exists)).unwrap();
        assert_eq!(w, vec![(b"new".to_vec(), Some(b"y".to_vec()))]);
    }

    #[test]
    fn content_writes_make_no_existence_check() {
        let checked = std::cell::RefCell::new(Vec::new());
        let mut exists = Exists(|k: &[u8]| {
            checked.borrow_mut().push(k.to_vec());
            Ok(true)
        });
        let mut overlay = Overlay::default();
        let mut b = Batch::new();
        b.put_content("msg/a", "x");
        b.put_content("cmt/a/b", "y");
        overlay.resolve(b, &mut exists).unwrap();
        assert_eq!(
            overlay.writes.len(),
            2,
            "written even though the backend holds them"
        );
        // Beside a conditional write, only the conditional key is checked.
        let mut b = Batch::new();
        b.put_content("msg/c", "x");
        b.put_if_absent("link/c", "z");
        overlay.resolve(b, &mut exists).unwrap();
        assert_eq!(
            overlay.into_writes()[2..],
            [(b"msg/c".to_vec(), Some(b"x".to_vec()))]
        );
        assert_eq!(*checked.borrow(), vec![b"link/c".to_vec()]);
    }

    #[test]
    fn accepted_batches_are_seen_by_later_ones_and_failed_ones_are_not() {
        let mut overlay = Overlay::default();
        let mut first = Batch::new();
        first.put_new("a", "1");
        overlay.resolve(first, &mut Exists(none)).unwrap();
        let mut failing = Batch::new();
        failing.put("b", "1");
        failing.put_new("a", "2");
        assert!(overlay.resolve(failing, &mut Exists(none)).is_err());
        let mut third = Batch::new();
        third.put_new("b", "3");
        // "b" of the failed batch did not join the overlay.
        assert!(overlay.resolve(third, &mut Exists(none)).is_ok());
    }

    #[test]
    fn require_eq_holds_only_for_the_exact_current_value() {
        let backend = || Holding(vec![("lease", "owner-1"), ("empty", "")]);
        let mut b = Batch::new();
        b.require_eq("lease", "owner-1");
        b.put("x", "1");
        assert_eq!(resolve_one(b, &mut backend()).unwrap().len(), 1);
        // Another value, a prefix of it, an absent key: the whole batch fails.
        for (key, value) in [("lease", "owner-2"), ("lease", "owner"), ("gone", "")] {
            let mut b = Batch::new();
            b.put("x", "1");
            b.require_eq(key, value);
            let err = resolve_one(b, &mut backend()).unwrap_err();
            assert_eq!(
                err,
                StoreError::PreconditionFailed { key: key.into() },
                "{key} = {value:?}"
            );
        }
        // An empty value is a value: it holds for a present empty key only.
        let mut b = Batch::new();
        b.require_eq("empty", "");
        assert!(resolve_one(b, &mut backend()).is_ok());
    }

    #[test]
    fn require_eq_sees_earlier_writes_of_its_batch_and_group() {
        let backend = || Holding(vec![("lease", "old")]);
        // Replaced earlier in the same batch: the new value is what counts.
        let mut b = Batch::new();
        b.put("lease", "new");
        b.require_eq("lease", "new");
        assert!(resolve_one(b, &mut backend()).is_ok());
        let mut b = Batch::new();
        b.put("lease", "new");
        b.require_eq("lease", "old");
        assert!(resolve_one(b, &mut backend()).is_err());
        let mut b = Batch::new();
        b.delete("lease");
        b.require_eq("lease", "old");
        assert!(resolve_one(b, &mut backend()).is_err());
        // Large batches (found by the map) alike.
        let mut b = Batch::new();
        for i in 0..SMALL_BATCH {
            b.put(format!("pad{i}"), "p");
        }
        b.put("lease", "new");
        b.require_eq("lease", "new");
        assert!(resolve_one(b, &mut backend()).is_ok());
        // Replaced by an accepted batch of the group; a failed batch's
        // write does not count.
        let mut overlay = Overlay::default();
        let mut first = Batch::new();
        first.put("lease", "mid");
        overlay.resolve(first, &mut backend()).unwrap();
        let mut failing = Batch::new();
        failing.put("lease", "never");
        failing.require("absent");
        assert!(overlay.resolve(failing, &mut backend()).is_err());
        let mut stale = Batch::new();
        stale.require_eq("lease", "old");
        assert!(overlay.resolve(stale, &mut backend()).is_err());
        let mut never = Batch::new();
        never.require_eq("lease", "never");
        assert!(overlay.resolve(never, &mut backend()).is_err());
        let mut current = Batch::new();
        current.require_eq("lease", "mid");
        assert!(overlay.resolve(current, &mut backend()).is_ok());
    }
}
