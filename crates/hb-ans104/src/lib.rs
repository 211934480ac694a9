//! ANS-104 data items (SPEC §10.1), pure: no actors, no other hb crate.
//!
//! - [`DataItem`]: byte-exact parsing and serialisation
//!   (`serialize(parse(b)) == b`), total and bounded parsing with typed
//!   errors naming the field and offset;
//! - [`tags`]: the Avro tag codec (several and negative blocks, limits);
//! - [`deephash`]: the SHA-384 deep hash and the signing message;
//! - [`DataItem::id`] and [`DataItem::owner_address`];
//! - [`DataItem::verify`]: types 1 (RSA-PSS SHA-256, any salt length),
//!   2 (ed25519 under ZIP-215 with SPEC §2.6's per-key checks) and 3
//!   (secp256k1 EIP-191 recovery);
//! - [`bundle`]: ANS-104 bundles both ways.
#![deny(missing_docs)]

pub mod bundle;
pub mod deephash;
mod error;
mod item;
#[cfg(any(test, feature = "test-support"))]
pub mod sign;
pub mod tags;
mod verify;

#[cfg(test)]
mod proptests;

pub use error::{Ans104Error, Result};
pub use item::{human, DataItem, SignatureType};
pub use tags::Tag;
