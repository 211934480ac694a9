//! # hb-device: devices and the resolution engine of hb
//!
//! A device is named code (`name@version`) that gives meaning to a
//! message's keys. This crate owns:
//!
//! - the [`Device`] trait, its [`DeviceInfo`] and [`Outcome`], and the
//!   [`DeviceRegistry`] (case-insensitive, typed errors for unknown names);
//! - the resolution engine, [`Context::resolve`]: device selection, paths
//!   and chains, the key → function rules, HashPaths, the nesting limit and
//!   panic containment, plus the shortcuts [`Context::get`],
//!   [`Context::find`], [`Context::resolve_as`] and [`Context::set`];
//! - the [`Context`] handed to devices: store, node key, [`DeviceConfig`],
//!   registry, and a type-map of [`Extensions`] for later crates' services;
//! - `message@1.0` ([`message_device`]) and `stack@1.0` ([`stack`]);
//! - test devices in [`test_support`], behind the feature `test-devices`.
//!
//! It deliberately knows nothing of actors, HTTP, schedules or processes:
//! `hb-scheduler` and `hb-process` add their devices to a registry and their
//! actors' addresses to the context's extensions.
//!
//! ```
//! use hb_device::{Context, DeviceRegistry, Outcome};
//! use hb_message::{msg, NodeKey, Value};
//!
//! # futures::executor::block_on(async {
//! let ctx = Context::new(DeviceRegistry::new(), NodeKey::from_seed(&[1; 32]));
//! let base = msg! { "Greeting" => "hello", "nested" => msg! { "n" => 5 } };
//! // A field read through message@1.0, case-insensitively.
//! let out = ctx.resolve(base.clone(), &msg! { "path" => "greeting" }).await?;
//! assert_eq!(out, Outcome::Raw(Value::from("hello")));
//! // A two-step chain.
//! assert_eq!(ctx.get("nested/n", &base, Value::Int(0)).await, Value::Int(5));
//! # Ok::<(), hb_device::ResolveError>(())
//! # }).unwrap();
//! ```
//!
//! See `docs/devices.md` for how resolution works and how to write a device.

#![deny(missing_docs)]

mod builtins;
mod config;
mod context;
mod device;
mod error;
mod extensions;
mod guard;
mod keys;
pub mod message_device;
pub mod path;
mod registry;
mod resolve;
pub mod stack;
#[cfg(feature = "test-devices")]
pub mod test_support;

pub use async_trait::async_trait;
pub use config::{
    DeviceConfig, ErrorStrategy, HashpathMode, DEFAULT_MAX_DEPTH, DEFAULT_MAX_STACK_BYTES,
    DEFAULT_STACK_MAX_PASSES,
};
pub use context::{Context, ContextBuilder};
pub use device::{validate_device_name, Device, DeviceInfo, Outcome, Route};
pub use error::{DeviceFailure, ResolveError};
pub use extensions::Extensions;
pub use message_device::MessageDevice;
pub use registry::{DeviceRegistry, Registered};
pub use resolve::DEVICE;
pub use stack::StackDevice;
