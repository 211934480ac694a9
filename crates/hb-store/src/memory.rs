//! `MemoryStore`: the reference backend, a `BTreeMap` behind a lock.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use crate::batch::{Batch, Lookup, Overlay, Writes};
use crate::error::StoreError;
use crate::store::{resolve_group, Direction, Entry, Store};

/// An in-memory store for tests and embedding: the reference
/// implementation of the [`Store`] contract. Nothing survives the process;
/// [`Store::flush`] returns at once.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }
}

fn write_all(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, writes: Writes) {
    for (k, v) in writes {
        match v {
            Some(v) => {
                map.insert(k, v);
            }
            None => {
                map.remove(&k);
            }
        }
    }
}

/// The map, as conditional operations ask it.
struct Map<'a>(&'a BTreeMap<Vec<u8>, Vec<u8>>);

impl Lookup for Map<'_> {
    fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.0.contains_key(key))
    }

    fn holds(&mut self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        Ok(self.0.get(key).is_some_and(|v| v == value))
    }
}

impl Store for MemoryStore {
    fn backup(&self, _dest: &std::path::Path) -> Result<crate::BackupReport, StoreError> {
        Err(StoreError::Unsupported {
            backend: "in-memory",
            operation: "back up (it keeps nothing on disk)",
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.read().get(key).cloned())
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.map.write().insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.map.write().remove(key);
        Ok(())
    }

    fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        if end.is_some_and(|e| e <= start) || limit == 0 {
            return Ok(Vec::new());
        }
        let map = self.map.read();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let iter = map.range::<[u8], _>((Bound::Included(start), upper));
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(match direction {
            Direction::Forward => iter.take(limit).map(clone).collect(),
            Direction::Reverse => iter.rev().take(limit).map(clone).collect(),
        })
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let mut map = self.map.write();
        let mut overlay = Overlay::default();
        overlay.resolve(batch, &mut Map(&map))?;
        write_all(&mut map, overlay.into_writes());
        Ok(())
    }

    fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        let mut map = self.map.write();
        let (outcomes, writes) = resolve_group(batches, &mut Map(&map));
        write_all(&mut map, writes);
        outcomes
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let mut map = self.map.write();
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        match new {
            Some(v) => map.insert(key.to_vec(), v.to_vec()),
            None => map.remove(key),
        };
        Ok(true)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
