//! A bounded in-memory copy of processes' slot-0 assignments.
//!
//! Slot 0 holds a process's definition (SPEC §5.2) and, once durable, never
//! changes: it is written with "must be absent" and nothing deletes it. Every
//! request addressed to a process (`/<pid>~process@1.0/…`) reads it to build
//! its base, so serving it from memory saves a store read on the blocking
//! pool, and the two thread switches that come with it, per request.

use std::collections::HashMap;
use std::sync::Arc;

use hb_message::{Id, Message};
use parking_lot::Mutex;

/// How many definitions are kept by default. A definition is a few KiB (a
/// Lua script and its keys), so this bounds the cache to a few MiB.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Slot-0 assignments by process, at most `capacity` of them.
#[derive(Debug)]
pub struct DefinitionCache {
    capacity: usize,
    entries: Mutex<HashMap<Id, Arc<Message>>>,
}

impl DefinitionCache {
    /// An empty cache of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> DefinitionCache {
        DefinitionCache {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The stored slot-0 assignment of `pid`, if cached.
    pub fn get(&self, pid: &Id) -> Option<Arc<Message>> {
        self.entries.lock().get(pid).cloned()
    }

    /// Keeps `assignment`, read from the store as `pid`'s durable slot 0.
    /// A full cache starts over rather than tracking recency: entries are
    /// cheap to read again, and the bound is what matters.
    pub fn insert(&self, pid: Id, assignment: Arc<Message>) {
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&pid) {
            entries.clear();
        }
        entries.insert(pid, assignment);
    }

    /// How many definitions are held.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for DefinitionCache {
    fn default() -> DefinitionCache {
        DefinitionCache::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: u32) -> Id {
        Id::hash(&n.to_be_bytes())
    }

    fn definition(n: u32) -> Arc<Message> {
        Arc::new(Message::new().with("n", i64::from(n)).unwrap())
    }

    #[test]
    fn a_kept_definition_is_served_back_unchanged() {
        let cache = DefinitionCache::new(4);
        assert!(cache.get(&pid(1)).is_none());
        cache.insert(pid(1), definition(1));
        assert_eq!(cache.get(&pid(1)).as_deref(), Some(&*definition(1)));
        assert!(cache.get(&pid(2)).is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = DefinitionCache::new(8);
        for n in 0..100 {
            cache.insert(pid(n), definition(n));
            assert!(cache.len() <= 8, "{} after {n}", cache.len());
            // The newest entry always stays.
            assert!(cache.get(&pid(n)).is_some());
        }
        // Re-inserting a held key never clears the others.
        let held = cache.len();
        cache.insert(pid(99), definition(99));
        assert_eq!(cache.len(), held);
    }
}
