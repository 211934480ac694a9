//! The storage record codec (SPEC §3.3): bincode 1.3.3 behind one helper.
//!
//! Every stored record goes through [`encode`] and [`decode`]: a one-byte
//! record version, then bincode with explicit options (fixed-width
//! little-endian integers, a size limit, no trailing bytes). Messages inside
//! records are written in their whole canonical form (see
//! [`crate::canonical::encode_whole`]), whose decoder bounds depth and
//! allocation. Nothing here ever takes part in an ID, a signature or a
//! HashPath.

use std::cell::{Cell, RefCell};
use std::fmt;

use bincode::Options;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{ser, Deserialize, Deserializer, Serialize, Serializer};

use crate::canonical;
use crate::error::MessageError;
use crate::message::Message;

/// Default size limit of one record (64 MiB).
pub const DEFAULT_RECORD_LIMIT: u64 = 64 << 20;

/// Default budget for what one record decodes to (256 MiB): 4× the default
/// size limit. See [`decode_with_limits`].
pub const DEFAULT_DECODED_LIMIT: u64 = DECODED_PER_ENCODED * DEFAULT_RECORD_LIMIT;

/// The decoded budget [`decode_with_limit`] allows per byte of its size limit.
pub const DECODED_PER_ENCODED: u64 = 4;

/// Nesting limit for messages in records, enforced when they are written
/// ([`encode`] refuses deeper ones with [`MessageError::TooDeep`]) and
/// when they are read back. Higher than the wire limit (64) because stored
/// states wrap wire messages, and low enough that the recursive encoder,
/// decoder, `Drop`, `Clone` and JSON decoder at this depth fit in a 2 MiB
/// thread stack in debug builds with room to spare for the caller
/// (`tests/nesting_fits_a_small_stack.rs`). Was 512, which overflowed.
pub const RECORD_MAX_DEPTH: usize = 128;

thread_local! {
    /// The decoding budget of the record being decoded on this thread, if
    /// any: its total and what is left. Shared by every message inside
    /// one record, which serde decodes one at a time.
    static BUDGET: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
    /// A typed error met inside serde (which only carries text), for
    /// [`encode`] and [`decode_with_limits`] to return.
    static FAILURE: Cell<Option<MessageError>> = const { Cell::new(None) };
}

/// Sets this thread's record budget for its lifetime, restoring the one
/// before (none) when dropped, also on unwinding.
struct BudgetScope(Option<(u64, u64)>);

impl BudgetScope {
    fn enter(limit: u64) -> BudgetScope {
        FAILURE.set(None);
        BudgetScope(BUDGET.replace(Some((limit, limit))))
    }
}

impl Drop for BudgetScope {
    fn drop(&mut self) {
        BUDGET.set(self.0);
    }
}

/// Keeps `e` for [`take_failure`] if it is a limit (typed for callers);
/// other errors travel as serde's text.
fn stash(e: &MessageError) {
    if matches!(
        e,
        MessageError::TooDeep { .. } | MessageError::DecodedTooLarge { .. }
    ) {
        FAILURE.set(Some(e.clone()));
    }
}

/// The typed error stashed by the serde impls, or `Codec` with serde's text.
fn take_failure(name: &str, e: impl fmt::Display) -> MessageError {
    FAILURE
        .take()
        .unwrap_or_else(|| MessageError::Codec(format!("{name}: {e}")))
}

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

/// Encodes a record: version byte, then bincode. A message nested deeper
/// than [`RECORD_MAX_DEPTH`] is [`MessageError::TooDeep`]: it could not be
/// read back.
pub fn encode<R: Record>(record: &R) -> Result<Vec<u8>, MessageError> {
    encode_reserving(record, 0)
}

/// [`encode`], returning a buffer with room for `spare` more bytes, so that
/// a caller appending a checksum does not reallocate it.
///
/// Each message of the record is encoded once: the record is serialised in
/// one pass into a reused per-thread buffer and the size limit checked
/// afterwards (bincode's own limit check serialises everything an extra
/// time first, and sizing the output a third), then copied into a buffer
/// of exactly its size plus `spare`.
pub fn encode_reserving<R: Record>(record: &R, spare: usize) -> Result<Vec<u8>, MessageError> {
    FAILURE.set(None);
    with_scratch(&RECORD_SCRATCH, |buf| {
        buf.push(R::VERSION);
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian()
            .serialize_into(&mut *buf, record)
            .map_err(|e| take_failure(R::NAME, e))?;
        if (buf.len() - 1) as u64 > DEFAULT_RECORD_LIMIT {
            return Err(MessageError::Codec(format!(
                "{}: {}",
                R::NAME,
                bincode::ErrorKind::SizeLimit
            )));
        }
        let mut out = Vec::with_capacity(buf.len() + spare);
        out.extend_from_slice(buf);
        Ok(out)
    })
}

/// Scratch buffers kept by a thread between encodings up to this capacity;
/// a larger one is released after use.
const SCRATCH_KEEP: usize = 1 << 20;

thread_local! {
    /// The record being encoded on this thread.
    static RECORD_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The canonical bytes of the message being serialised on this thread.
    static MESSAGE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `scratch`, emptied, or on a fresh buffer if `scratch` is in
/// use (a nested call); releases a buffer that grew past [`SCRATCH_KEEP`].
fn with_scratch<T>(
    scratch: &'static std::thread::LocalKey<RefCell<Vec<u8>>>,
    f: impl FnOnce(&mut Vec<u8>) -> T,
) -> T {
    scratch.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let out = f(&mut buf);
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            out
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// Decodes a record written by [`encode`], with the default limits.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, MessageError> {
    decode_with_limits(bytes, DEFAULT_RECORD_LIMIT, DEFAULT_DECODED_LIMIT)
}

/// Decodes a record, refusing anything larger than `limit` bytes or
/// decoding to more than [`DECODED_PER_ENCODED`] × `limit`.
pub fn decode_with_limit<R: Record>(bytes: &[u8], limit: u64) -> Result<R, MessageError> {
    decode_with_limits(bytes, limit, limit.saturating_mul(DECODED_PER_ENCODED))
}

/// Decodes a record, refusing one larger than `limit` bytes, and one whose
/// messages would decode to more than `decoded_limit` bytes
/// ([`MessageError::DecodedTooLarge`], checked before allocating; a
/// message's cost is its strings' and byte strings' lengths plus a fixed
/// cost per value and per entry). bincode's own fields are not counted:
/// they decode to at most about 3× their encoded size (a 24-byte header
/// per 8-byte length), while a message could reach 16× (a 32-byte value
/// per 2-byte boolean). Nesting deeper than [`RECORD_MAX_DEPTH`] is
/// [`MessageError::TooDeep`]; other faults are [`MessageError::Codec`].
pub fn decode_with_limits<R: Record>(
    bytes: &[u8],
    limit: u64,
    decoded_limit: u64,
) -> Result<R, MessageError> {
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
    let _scope = BudgetScope::enter(decoded_limit);
    options(limit)
        .deserialize(body)
        .map_err(|e| take_failure(R::NAME, e))
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Checked before the recursive encoder runs, and without recursing
        // deeper than the limit itself.
        if !self.depth_within(RECORD_MAX_DEPTH) {
            let e = MessageError::TooDeep {
                limit: RECORD_MAX_DEPTH,
            };
            stash(&e);
            return Err(ser::Error::custom(e));
        }
        with_scratch(&MESSAGE_SCRATCH, |buf| {
            canonical::encode_whole_into(buf, self);
            s.serialize_bytes(buf)
        })
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
        // Outside `decode_with_limits` (another serde format), each message
        // gets the default budget of its own.
        let (limit, mut remaining) = BUDGET
            .get()
            .unwrap_or((DEFAULT_DECODED_LIMIT, DEFAULT_DECODED_LIMIT));
        let decoded = canonical::decode_bounded(bytes, RECORD_MAX_DEPTH, limit, &mut remaining);
        if let Some((limit, _)) = BUDGET.get() {
            BUDGET.set(Some((limit, remaining)));
        }
        decoded.map_err(|e| {
            stash(&e);
            E::custom(e)
        })
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

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Two {
        a: Message,
        b: Message,
    }

    impl Record for Two {
        const VERSION: u8 = 1;
        const NAME: &'static str = "two";
    }

    #[test]
    fn the_messages_of_one_record_share_its_decoded_budget() {
        // About 1.1 kB decoded each.
        let m = msg! { "t" => "x".repeat(1000) };
        let two = encode(&Two {
            a: m.clone(),
            b: m.clone(),
        })
        .unwrap();
        let one = encode(&Sample { slot: 1, body: m }).unwrap();
        assert!(decode_with_limits::<Sample>(&one, 1 << 20, 1800).is_ok());
        assert!(decode_with_limits::<Two>(&two, 1 << 20, 3000).is_ok());
        assert_eq!(
            decode_with_limits::<Two>(&two, 1 << 20, 1800).err(),
            Some(MessageError::DecodedTooLarge { limit: 1800 })
        );
        // The budget ends with the record: the next decode starts afresh.
        assert!(decode_with_limits::<Sample>(&one, 1 << 20, 1800).is_ok());
    }

    #[test]
    fn encoding_is_the_same_alone_nested_and_with_spare_room() {
        let r = Two {
            a: msg! { "x" => vec![7u8; 300], "commitments" => msg! { "c" => "d" } },
            b: msg! { "y" => "z" },
        };
        let plain = encode(&r).unwrap();
        // The bytes are bincode's of the whole canonical forms.
        let mut want = vec![Two::VERSION];
        want.extend(
            options(DEFAULT_RECORD_LIMIT)
                .serialize(&(
                    serde_bytes_of(&canonical::encode_whole(&r.a)),
                    serde_bytes_of(&canonical::encode_whole(&r.b)),
                ))
                .unwrap(),
        );
        assert_eq!(plain, want);
        let spared = encode_reserving(&r, 4).unwrap();
        assert_eq!(spared, plain);
        assert!(spared.capacity() >= plain.len() + 4);
        // Encoding while this thread's scratch buffers are in use (a record
        // whose serialisation encodes another) gives the same bytes.
        let nested = RECORD_SCRATCH.with(|c| {
            let _held = c.borrow_mut();
            MESSAGE_SCRATCH.with(|m| {
                let _held = m.borrow_mut();
                encode(&r).unwrap()
            })
        });
        assert_eq!(nested, plain);
        assert_eq!(decode::<Two>(&plain).unwrap(), r);
    }

    /// A byte string as serde sees one (`serialize_bytes`).
    fn serde_bytes_of(b: &[u8]) -> Bytes<'_> {
        Bytes(b)
    }

    struct Bytes<'a>(&'a [u8]);

    impl Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
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
