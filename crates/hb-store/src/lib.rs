//! # hb-store: durable storage for hb
//!
//! Owns the [`Store`] trait and its backends, and the caches built on it.
//! Knows nothing of devices or actors.
//!
//! (Skeleton: the backends and caches are being built under issue 3.)

#![deny(missing_docs)]

mod error;
mod store;

pub use error::StoreError;
pub use store::{Batch, BatchOp, Store};
