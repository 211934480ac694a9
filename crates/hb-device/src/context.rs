//! The context handed to every device call: store, node key, configuration,
//! registry and extensions (SPEC §4.2 "Execution").

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use hb_message::NodeKey;
use hb_store::Store;

use crate::config::{DeviceConfig, ErrorStrategy, HashpathMode};
use crate::extensions::Extensions;
use crate::registry::DeviceRegistry;

/// What every clone of a context shares.
struct Shared {
    store: Option<Arc<dyn Store>>,
    node_key: Arc<NodeKey>,
    registry: Arc<DeviceRegistry>,
    extensions: Arc<Extensions>,
}

/// The environment of a resolution. Cheap to clone (one `Arc` and a few
/// words); the resolution methods ([`resolve`](Context::resolve),
/// [`get`](Context::get), …) live on it.
///
/// The configuration travels by value, so a device can resolve with a
/// variation (`ctx.with_hashpath(HashpathMode::Ignore)`) without touching
/// anyone else's. The nesting depth grows by one for each nested resolution.
#[derive(Clone)]
pub struct Context {
    shared: Arc<Shared>,
    config: DeviceConfig,
    depth: usize,
}

impl Context {
    /// A context with `registry`, `node_key`, no store and the default
    /// configuration.
    pub fn new(registry: DeviceRegistry, node_key: NodeKey) -> Context {
        Context::builder(node_key).registry(registry).build()
    }

    /// Starts building a context around the node key.
    pub fn builder(node_key: NodeKey) -> ContextBuilder {
        ContextBuilder {
            store: None,
            node_key: Arc::new(node_key),
            registry: Arc::new(DeviceRegistry::new()),
            config: DeviceConfig::default(),
            extensions: Arc::new(Extensions::new()),
        }
    }

    /// The store, if the node has one.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.shared.store.as_ref()
    }

    /// The node's signing key.
    pub fn node_key(&self) -> &NodeKey {
        &self.shared.node_key
    }

    /// The node key, shared.
    pub fn node_key_arc(&self) -> Arc<NodeKey> {
        Arc::clone(&self.shared.node_key)
    }

    /// The configuration in force for this call.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// The device registry.
    pub fn registry(&self) -> &DeviceRegistry {
        &self.shared.registry
    }

    /// The extensions shared by every clone of this context.
    pub fn extensions(&self) -> &Extensions {
        &self.shared.extensions
    }

    /// The extension of type `T`, if one was stored.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.shared.extensions.get::<T>()
    }

    /// Stores an extension, visible to every clone of this context (and to
    /// contexts derived from it). Returns the previous value of that type.
    pub fn insert_extension<T: Any + Send + Sync>(&self, value: Arc<T>) -> Option<Arc<T>> {
        self.shared.extensions.insert(value)
    }

    /// How many resolutions enclose the current one (0 at the top).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// This context with another configuration.
    pub fn with_config(&self, config: DeviceConfig) -> Context {
        Context {
            shared: Arc::clone(&self.shared),
            config,
            depth: self.depth,
        }
    }

    /// This context with another HashPath mode.
    pub fn with_hashpath(&self, mode: HashpathMode) -> Context {
        let mut c = self.clone();
        c.config.hashpath = mode;
        c
    }

    /// This context with another stack error strategy.
    pub fn with_error_strategy(&self, strategy: ErrorStrategy) -> Context {
        let mut c = self.clone();
        c.config.error_strategy = strategy;
        c
    }

    /// This context with another registry (same store, key, configuration
    /// and extensions).
    pub fn with_registry(&self, registry: DeviceRegistry) -> Context {
        Context {
            shared: Arc::new(Shared {
                store: self.shared.store.clone(),
                node_key: Arc::clone(&self.shared.node_key),
                registry: Arc::new(registry),
                extensions: Arc::clone(&self.shared.extensions),
            }),
            config: self.config.clone(),
            depth: self.depth,
        }
    }

    /// The context handed to device calls one level down.
    pub(crate) fn nested(&self) -> Context {
        Context {
            shared: Arc::clone(&self.shared),
            config: self.config.clone(),
            depth: self.depth + 1,
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("node", &self.shared.node_key.address())
            .field("store", &self.shared.store.is_some())
            .field("registry", &self.shared.registry)
            .field("config", &self.config)
            .field("depth", &self.depth)
            .finish()
    }
}

/// Builds a [`Context`].
pub struct ContextBuilder {
    store: Option<Arc<dyn Store>>,
    node_key: Arc<NodeKey>,
    registry: Arc<DeviceRegistry>,
    config: DeviceConfig,
    extensions: Arc<Extensions>,
}

impl ContextBuilder {
    /// The store devices may read and write.
    pub fn store(mut self, store: Arc<dyn Store>) -> ContextBuilder {
        self.store = Some(store);
        self
    }

    /// The device registry (default: [`DeviceRegistry::new`]).
    pub fn registry(mut self, registry: DeviceRegistry) -> ContextBuilder {
        self.registry = Arc::new(registry);
        self
    }

    /// The configuration (default: [`DeviceConfig::default`]).
    pub fn config(mut self, config: DeviceConfig) -> ContextBuilder {
        self.config = config;
        self
    }

    /// Adds an extension.
    pub fn extension<T: Any + Send + Sync>(self, value: Arc<T>) -> ContextBuilder {
        self.extensions.insert(value);
        self
    }

    /// The context.
    pub fn build(self) -> Context {
        Context {
            shared: Arc::new(Shared {
                store: self.store,
                node_key: self.node_key,
                registry: self.registry,
                extensions: self.extensions,
            }),
            config: self.config,
            depth: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variations_keep_the_shared_parts() {
        let ctx = Context::new(DeviceRegistry::new(), NodeKey::from_seed(&[1; 32]));
        let ignore = ctx.with_hashpath(HashpathMode::Ignore);
        assert_eq!(ignore.config().hashpath, HashpathMode::Ignore);
        assert_eq!(ctx.config().hashpath, HashpathMode::Update);
        assert_eq!(ignore.node_key().address(), ctx.node_key().address());
        let stop = ctx.with_error_strategy(ErrorStrategy::Stop);
        assert_eq!(stop.config().error_strategy, ErrorStrategy::Stop);
        assert_eq!(ctx.nested().nested().depth(), 2);
        assert!(ctx.store().is_none());
    }

    #[test]
    fn extensions_are_shared_by_clones_and_derived_contexts() {
        let ctx = Context::new(DeviceRegistry::new(), NodeKey::from_seed(&[1; 32]));
        let derived = ctx.with_registry(DeviceRegistry::empty());
        ctx.clone().insert_extension(Arc::new(42u32));
        assert_eq!(*derived.extension::<u32>().unwrap(), 42);
        assert_eq!(*ctx.nested().extension::<u32>().unwrap(), 42);
        assert!(derived.registry().names().is_empty());
    }
}
