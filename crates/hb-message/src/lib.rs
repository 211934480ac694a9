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
//! - `ans104@1.0` commitments ([`ans104`], SPEC §10.2): ANS-104 data items
//!   as messages whose `id(all)` is the item ID
//!   ([`Message::from_data_item`]) and back, byte-exactly
//!   ([`Message::to_data_item`]); verification dispatched on the
//!   commitment's device, type-2 (ed25519) items batched with
//!   `ed25519@1.0`; signing with the node key as a type-2 item
//!   ([`Message::commit_with`], [`NodeKey::sign_data_item`]);
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

pub mod ans104;
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

pub use ans104::ANS104_DEVICE;
pub use commitment::{
    verify_batch, CommitmentDevice, Verification, VerifyFailure, BATCH_CHUNK, ED25519_DEVICE,
};
pub use error::MessageError;
pub use error_code::ErrorCode;
/// The ANS-104 crate whose items [`Message::from_data_item`] and
/// [`NodeKey::sign_data_item`] take and give (`DataItem`, `Tag`, …).
pub use hb_ans104;
pub use id::{decode_base64_any, encode_base64url, human, Id, IdSelector};
pub use json::Update;
pub use key::{is_id_shaped, is_private_text, Key, MAX_KEY_BYTES, PRIVATE_PREFIX};
pub use message::{list_index, Message, COMMITMENTS};
pub use ops::{deep_merge, SetMode};
pub use signer::{address_of, NodeKey, UnsignedItem};
pub use value::{Float, Value};
pub use zip215::KEY_CACHE_CAPACITY;
