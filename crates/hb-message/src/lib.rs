//! # hb-message: the message model of hb
//!
//! Everything in hb is a message: an immutable map from normalised keys to
//! values. This crate owns what a message *is* and how it is identified and
//! signed, with no knowledge of storage, devices or actors:
//!
//! - [`Value`] and [`Message`], with the key rules of SPEC §2.2 ([`Key`]) and
//!   private keys (`priv…`) that are never listed, serialised or hashed;
//! - the canonical encoding, version 1 ([`canonical`]), which alone defines
//!   IDs and signature inputs (specified in `docs/message-format.md`);
//! - IDs ([`Id`], [`IdSelector`]): the unsigned ID, `id(all)`, the sum of
//!   commitment IDs, and the 43-character human form;
//! - keys and addresses ([`NodeKey`]) and `ed25519@1.0` commitments
//!   ([`Message::commit`], [`Message::verify`], [`verify_batch`]);
//! - HashPath ([`hashpath`]);
//! - the JSON wire form ([`json`]) and the storage record codec ([`codec`]);
//! - the pure operations behind `message@1.0` ([`Message::set`]).
//!
//! ```
//! use hb_message::{msg, IdSelector, NodeKey};
//!
//! let key = NodeKey::from_seed(&[1; 32]);
//! let m = msg! { "Action" => "Transfer", "amount" => 5 };
//! assert_eq!(m.get("action").and_then(|v| v.as_text()), Some("Transfer"));
//! let signed = m.commit(&key, None)?;
//! assert!(signed.verify(&IdSelector::All)?.is_valid());
//! assert_eq!(signed.committers()?, vec![key.address().to_string()]);
//! assert_ne!(signed.id_all()?, signed.unsigned_id());
//! # Ok::<(), hb_message::MessageError>(())
//! ```

#![deny(missing_docs)]

pub mod canonical;
pub mod codec;
mod commitment;
mod error;
mod error_code;
pub mod hashpath;
mod id;
pub mod json;
mod key;
mod message;
mod ops;
mod signer;
mod value;
mod zip215;

pub use commitment::{verify_batch, Verification, VerifyFailure, BATCH_CHUNK, ED25519_DEVICE};
pub use error::MessageError;
pub use error_code::ErrorCode;
pub use id::{decode_base64_any, encode_base64url, human, Id, IdSelector};
pub use json::Update;
pub use key::{is_id_shaped, Key, MAX_KEY_BYTES, PRIVATE_PREFIX};
pub use message::{list_index, Message, COMMITMENTS};
pub use ops::{deep_merge, SetMode};
pub use signer::{address_of, NodeKey};
pub use value::{Float, Value};
pub use zip215::KEY_CACHE_CAPACITY;
