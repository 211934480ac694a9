//! The device registry: devices by name, looked up case-insensitively
//! (SPEC §4.1).
//!
//! It maps names to `Arc<dyn Device>` and knows no device in particular:
//! [`DeviceRegistry::new`], which holds the built-in devices, lives in
//! `builtins.rs`, above this module and the devices.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::device::{validate_device_name, Device, DeviceInfo};
use crate::error::{truncate, ResolveError};

/// A registered device with the info it gave at registration.
#[derive(Clone)]
pub struct Registered {
    /// The device.
    pub device: Arc<dyn Device>,
    /// Its [`Device::info`], read once.
    pub info: Arc<DeviceInfo>,
    /// Whether this is the built-in `message@1.0`, which the engine calls
    /// by reference.
    pub(crate) is_message_device: bool,
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("name", &self.device.name())
            .field("info", &self.info)
            .finish()
    }
}

/// Devices by name. Built before the [`Context`](crate::Context) that
/// carries it, then shared read-only.
///
/// [`DeviceRegistry::new`] holds this crate's devices, `message@1.0` and
/// `stack@1.0`; the node adds its own (`scheduler@1.0`, `process@1.0`, …)
/// and library users theirs with [`register`](DeviceRegistry::register).
#[derive(Clone)]
pub struct DeviceRegistry {
    /// Lower-cased name → device.
    devices: HashMap<String, Registered, BuildHasherDefault<NameHasher>>,
}

/// FNV-1a over a device name: the engine looks a name up on every step,
/// and names are a few bytes, where SipHash's setup dominates. Flooding is
/// no concern: the map only holds the devices the node registered, so an
/// unknown name from a message cannot make a lookup walk far.
struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> NameHasher {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl DeviceRegistry {
    /// A registry with no device at all. `message@1.0` still answers keys
    /// that other devices leave to it, and bases without `device`.
    pub fn empty() -> DeviceRegistry {
        DeviceRegistry {
            devices: HashMap::default(),
        }
    }

    /// Registers a device under its [`name`](Device::name). Fails with
    /// `InvalidDeviceName` for a malformed name, `DuplicateDevice` if a
    /// device of that name (in any case) is registered, and `Panicked`
    /// (key `info`) if its [`info`](Device::info) panics.
    pub fn register(&mut self, device: Arc<dyn Device>) -> Result<(), ResolveError> {
        let name = device.name();
        validate_device_name(name)?;
        let key = name.to_ascii_lowercase();
        if self.devices.contains_key(&key) {
            return Err(ResolveError::DuplicateDevice { name: key });
        }
        // Device code: a panic is answered like one in a call, with the
        // pseudo-key `info`.
        let info = match std::panic::catch_unwind(AssertUnwindSafe(|| device.info())) {
            Ok(info) => Arc::new(info),
            Err(_) => {
                tracing::error!(device = name, "device panicked in info");
                return Err(ResolveError::Panicked {
                    device: name.to_string(),
                    key: "info".into(),
                });
            }
        };
        tracing::debug!(device = name, "registered device");
        self.devices.insert(
            key,
            Registered {
                device,
                info,
                is_message_device: false,
            },
        );
        Ok(())
    }

    /// Builder form of [`register`](DeviceRegistry::register).
    pub fn with(mut self, device: Arc<dyn Device>) -> Result<DeviceRegistry, ResolveError> {
        self.register(device)?;
        Ok(self)
    }

    /// Looks a device up, case-insensitively (`Message@1.0` finds
    /// `message@1.0`). A malformed name gives `InvalidDeviceName`; an
    /// unknown one `UnknownDevice`, quoting the name as requested and listing
    /// the known devices.
    pub fn lookup(&self, name: &str) -> Result<&Registered, ResolveError> {
        let key: Cow<'_, str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        if let Some(r) = self.devices.get(key.as_ref()) {
            return Ok(r);
        }
        validate_device_name(name)?;
        Err(ResolveError::UnknownDevice {
            name: truncate(name),
            known: self.names(),
        })
    }

    /// Registers `device` as the engine's `message@1.0`, which it calls by
    /// reference instead of through [`Device::call`].
    pub(crate) fn insert_message_device(&mut self, device: Arc<dyn Device>) {
        let info = Arc::new(device.info());
        self.devices.insert(
            device.name().to_ascii_lowercase(),
            Registered {
                device,
                info,
                is_message_device: true,
            },
        );
    }

    /// Whether a device of that name (in any case) is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.devices.contains_key(&name.to_ascii_lowercase())
    }

    /// The registered names as the devices give them, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .devices
            .values()
            .map(|r| r.device.name().to_string())
            .collect();
        names.sort();
        names
    }
}

impl fmt::Debug for DeviceRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceRegistry")
            .field("devices", &self.names())
            .finish()
    }
}
