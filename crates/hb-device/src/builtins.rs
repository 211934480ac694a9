//! The built-in devices of this crate, `message@1.0` and `stack@1.0`, and
//! the registry that holds them ([`DeviceRegistry::new`]).
//!
//! Kept apart from the registry so that the registry knows no device and
//! the devices (which resolve through the engine) do not sit below it.

use std::sync::Arc;

use crate::message_device::MessageDevice;
use crate::registry::DeviceRegistry;
use crate::stack::StackDevice;

impl DeviceRegistry {
    /// A registry with `message@1.0` and `stack@1.0`.
    pub fn new() -> DeviceRegistry {
        let mut r = DeviceRegistry::empty();
        r.insert_message_device(Arc::new(MessageDevice));
        // `stack@1.0` is a valid name not yet taken, and its info does not
        // panic, so this cannot fail.
        r.register(Arc::new(StackDevice))
            .expect("stack@1.0 registers in a registry holding only message@1.0");
        r
    }
}

impl Default for DeviceRegistry {
    fn default() -> DeviceRegistry {
        DeviceRegistry::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_holds_message_and_stack_and_message_is_called_by_reference() {
        let r = DeviceRegistry::new();
        assert_eq!(r.names(), vec!["message@1.0", "stack@1.0"]);
        assert!(r.lookup("Message@1.0").unwrap().is_message_device);
        assert!(!r.lookup("stack@1.0").unwrap().is_message_device);
        assert!(DeviceRegistry::empty().names().is_empty());
    }
}
