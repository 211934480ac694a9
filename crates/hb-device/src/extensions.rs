//! A type-map through which later crates hand devices their own services
//! (actor addresses, caches) without this crate knowing their types.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

/// Values keyed by their type, shared by every clone of a context.
///
/// `hb-scheduler` puts its registry's address here, `hb-process` its own;
/// their devices read them back with [`get`](Extensions::get).
#[derive(Default)]
pub struct Extensions {
    map: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// An empty map.
    pub fn new() -> Extensions {
        Extensions::default()
    }

    /// Stores `value` as the one value of its type, returning the previous one.
    pub fn insert<T: Any + Send + Sync>(&self, value: Arc<T>) -> Option<Arc<T>> {
        self.map
            .write()
            .insert(TypeId::of::<T>(), value)
            .and_then(|old| old.downcast::<T>().ok())
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let value = self.map.read().get(&TypeId::of::<T>())?.clone();
        value.downcast::<T>().ok()
    }

    /// Removes the value of type `T`.
    pub fn remove<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.map
            .write()
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast::<T>().ok())
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Address(u32);
    #[derive(Debug, PartialEq)]
    struct Other(&'static str);

    #[test]
    fn values_are_keyed_by_type() {
        let ext = Extensions::new();
        assert!(ext.get::<Address>().is_none());
        assert!(ext.insert(Arc::new(Address(1))).is_none());
        ext.insert(Arc::new(Other("x")));
        assert_eq!(*ext.get::<Address>().unwrap(), Address(1));
        assert_eq!(*ext.get::<Other>().unwrap(), Other("x"));
        assert_eq!(*ext.insert(Arc::new(Address(2))).unwrap(), Address(1));
        assert_eq!(*ext.get::<Address>().unwrap(), Address(2));
        assert_eq!(ext.len(), 2);
        assert_eq!(*ext.remove::<Address>().unwrap(), Address(2));
        assert!(ext.get::<Address>().is_none());
    }
}
