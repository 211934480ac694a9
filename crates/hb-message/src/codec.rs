//! The storage record codec (SPEC §3.3): bincode 1.3.3 behind one helper.
//!
//! Every stored record goes through [`encode`] and [`decode`]: a one-byte
//! record version, then bincode with explicit options (fixed-width
//! little-endian integers, a size limit, no trailing bytes). Messages inside
//! records are written in their whole canonical form (see
//! [`crate::canonical::encode_whole`]), whose decoder bounds depth and
//! allocation. Nothing here ever takes part in an ID, a signature or a
//! HashPath.

use std::fmt;

use bincode::Options;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::canonical;
use crate::error::MessageError;
use crate::message::Message;

/// Default size limit of one record (64 MiB).
pub const DEFAULT_RECORD_LIMIT: u64 = 64 << 20;

/// Nesting limit for messages read back from records. Higher than the wire
/// limit because stored states may be built up by device operations.
pub const RECORD_MAX_DEPTH: usize = 512;

/// A type stored as a record.
pub trait Record: Serialize + DeserializeOwned {
    /// The record version written as the first byte; bump on any layout change.
    const VERSION: u8;
    /// A name for error messages.
    const NAME: &'static str;
}

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(limit)
        .reject_trailing_bytes()
}

/// Encodes a record: version byte, then bincode.
pub fn encode<R: Record>(record: &R) -> Result<Vec<u8>, MessageError> {
    let size = options(DEFAULT_RECORD_LIMIT)
        .serialized_size(record)
        .map_err(|e| MessageError::Codec(format!("{}: {e}", R::NAME)))?;
    let mut out = Vec::with_capacity(1 + size as usize);
    out.push(R::VERSION);
    options(DEFAULT_RECORD_LIMIT)
        .serialize_into(&mut out, record)
        .map_err(|e| MessageError::Codec(format!("{}: {e}", R::NAME)))?;
    Ok(out)
}

/// Decodes a record written by [`encode`], with the default size limit.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, MessageError> {
    decode_with_limit(bytes, DEFAULT_RECORD_LIMIT)
}

/// Decodes a record, refusing anything larger than `limit` bytes.
pub fn decode_with_limit<R: Record>(bytes: &[u8], limit: u64) -> Result<R, MessageError> {
    // A slice reader hands out borrowed bytes without charging bincode's
    // limit, so the record's own length is checked first.
    if bytes.len() as u64 > limit {
        return Err(MessageError::Codec(format!(
            "{}: record of {} bytes exceeds the limit of {limit}",
            R::NAME,
            bytes.len()
        )));
    }
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| MessageError::Codec(format!("{}: empty record", R::NAME)))?;
    if version != R::VERSION {
        return Err(MessageError::Codec(format!(
            "{}: record version {version}, expected {}",
            R::NAME,
            R::VERSION
        )));
    }
    options(limit)
        .deserialize(body)
        .map_err(|e| MessageError::Codec(format!("{}: {e}", R::NAME)))
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&canonical::encode_whole(self))
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Message, D::Error> {
        d.deserialize_bytes(MessageBytes)
    }
}

struct MessageBytes;

impl<'de> Visitor<'de> for MessageBytes {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the whole canonical encoding of a message")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Message, E> {
        canonical::decode(bytes, RECORD_MAX_DEPTH).map_err(E::custom)
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Message, E> {
        self.visit_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        slot: u64,
        body: Message,
    }

    impl Record for Sample {
        const VERSION: u8 = 1;
        const NAME: &'static str = "sample";
    }

    #[test]
    fn records_round_trip() {
        let r = Sample {
            slot: 7,
            body: msg! { "a" => 1, "commitments" => msg! { "x" => "y" } },
        };
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], 1);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), r);
    }

    #[test]
    fn truncated_and_garbage_records_are_errors() {
        let bytes = encode(&Sample {
            slot: 1,
            body: msg! { "a" => "b" },
        })
        .unwrap();
        for n in 0..bytes.len() {
            assert!(decode::<Sample>(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 9;
        assert!(decode::<Sample>(&wrong_version).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode::<Sample>(&trailing).is_err());
    }

    #[test]
    fn the_size_limit_is_enforced() {
        let r = Sample {
            slot: 1,
            body: msg! { "a" => vec![0u8; 1000] },
        };
        let bytes = encode(&r).unwrap();
        assert!(decode_with_limit::<Sample>(&bytes, 100).is_err());
        assert!(decode_with_limit::<Sample>(&bytes, 2000).is_ok());
    }
}
