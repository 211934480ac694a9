//! The canonical encoding, version 1 (SPEC §2.4; `docs/message-format.md`).
//!
//! Used only to compute IDs and signature inputs, and (with top-level
//! commitments kept) as the byte form of a message inside storage records.
//! Private keys are never encoded.

use sha2::{Digest, Sha256};

use crate::error::MessageError;
use crate::key::{is_id_shaped, is_private_text, Key, MAX_KEY_BYTES};
use crate::message::{Message, COMMITMENTS};
use crate::value::{Float, Value};

/// `HBC` and the version byte 1.
pub const HEADER: [u8; 4] = *b"HBC\x01";

/// Default nesting limit of the decoders (SPEC §2.1).
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Type tag of a byte string in the canonical encoding (SPEC §2.4).
pub const TAG_BYTES: u8 = 0x01;
/// Type tag of UTF-8 text.
pub const TAG_TEXT: u8 = 0x02;
/// Type tag of an integer.
pub const TAG_INT: u8 = 0x03;
/// Type tag of a float.
pub const TAG_FLOAT: u8 = 0x04;
/// Type tag of a boolean.
pub const TAG_BOOL: u8 = 0x05;
/// Type tag of a list.
pub const TAG_LIST: u8 = 0x06;
/// Type tag of a nested message.
pub const TAG_MESSAGE: u8 = 0x07;

/// Where encoded bytes go: a buffer, or straight into a hash.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Which top-level entries to encode.
pub(crate) enum Select<'a> {
    /// Everything non-private except `commitments` (IDs).
    Unsigned,
    /// Everything non-private, `commitments` included (storage form).
    Whole,
    /// Only these keys, sorted (signature inputs).
    Only(&'a [Key]),
}

/// canonical(m): the header and the message without top-level
/// `commitments` and without private keys.
pub fn canonical(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.put(&HEADER);
    write_message(&mut out, m, Select::Unsigned);
    out
}

/// enc(v) of one value, without the header.
pub fn encode_value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, v);
    out
}

/// The header and the whole message, top-level `commitments` included:
/// the byte form stored inside records. Not an ID input.
pub fn encode_whole(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_whole_into(&mut out, m);
    out
}

/// [`encode_whole`], appended to `out`.
pub(crate) fn encode_whole_into(out: &mut Vec<u8>, m: &Message) {
    out.put(&HEADER);
    write_message(out, m, Select::Whole);
}

/// sha256 of the canonical form of `m` restricted by `select`.
pub(crate) fn digest(m: &Message, select: Select<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.put(&HEADER);
    write_message(&mut h, m, select);
    h.finalize().into()
}

fn put_len<S: Sink>(s: &mut S, n: usize) {
    s.put(&(n as u64).to_be_bytes());
}

pub(crate) fn write_message<S: Sink>(s: &mut S, m: &Message, select: Select<'_>) {
    let included = |k: &Key| match &select {
        Select::Unsigned => k.as_str() != COMMITMENTS,
        Select::Whole => true,
        Select::Only(keys) => keys.binary_search(k).is_ok(),
    };
    let count = m.iter().filter(|(k, _)| included(k)).count();
    s.put(&[TAG_MESSAGE]);
    put_len(s, count);
    for (k, v) in m.iter().filter(|(k, _)| included(k)) {
        put_len(s, k.as_str().len());
        s.put(k.as_str().as_bytes());
        write_value(s, v);
    }
}

pub(crate) fn write_value<S: Sink>(s: &mut S, v: &Value) {
    match v {
        Value::Bytes(b) => {
            s.put(&[TAG_BYTES]);
            put_len(s, b.len());
            s.put(b);
        }
        Value::Text(t) => {
            s.put(&[TAG_TEXT]);
            put_len(s, t.len());
            s.put(t.as_bytes());
        }
        Value::Int(i) => {
            s.put(&[TAG_INT]);
            s.put(&i.to_be_bytes());
        }
        Value::Float(f) => {
            s.put(&[TAG_FLOAT]);
            s.put(&f.get().to_bits().to_be_bytes());
        }
        Value::Bool(b) => s.put(&[TAG_BOOL, u8::from(*b)]),
        Value::List(items) => {
            s.put(&[TAG_LIST]);
            put_len(s, items.len());
            for item in items {
                write_value(s, item);
            }
        }
        Value::Message(m) => write_message(s, m, Select::Whole),
    }
}

/// Decodes `canonical(m)` or `encode_whole(m)` back to a message, nesting at
/// most `max_depth` levels. Rejects anything that is not exactly what the
/// encoder would produce: unsorted or duplicate keys, keys that are not
/// normalised or are private, non-finite floats, `-0.0`, invalid UTF-8 and
/// trailing bytes. Allocation is bounded by the input's length.
pub fn decode(bytes: &[u8], max_depth: usize) -> Result<Message, MessageError> {
    // Allocation is bounded by the input's length without a budget.
    let mut unlimited = u64::MAX;
    decode_bounded(bytes, max_depth, u64::MAX, &mut unlimited)
}

/// What a decoded list item costs in the decoding budget: its `Value`.
const ITEM_COST: u64 = std::mem::size_of::<Value>() as u64;

/// What a decoded message entry costs beyond its key's text: the `Key` and
/// `Value` in a B-tree slot (nodes filled in order are about half full, so
/// twice), and the allocator's rounding of the key's text.
const ENTRY_COST: u64 = 2 * (std::mem::size_of::<Key>() + std::mem::size_of::<Value>()) as u64 + 32;

/// [`decode`], charging an estimate of the decoded size against
/// `remaining` before each allocation; running out is
/// [`MessageError::DecodedTooLarge`] naming `limit`, the budget's total.
pub(crate) fn decode_bounded(
    bytes: &[u8],
    max_depth: usize,
    limit: u64,
    remaining: &mut u64,
) -> Result<Message, MessageError> {
    let mut r = Reader {
        bytes,
        pos: 0,
        max_depth,
        limit,
        remaining: *remaining,
    };
    let m = r.whole()?;
    *remaining = r.remaining;
    Ok(m)
}

impl Reader<'_> {
    /// The header and one top-level message, nothing after it.
    fn whole(&mut self) -> Result<Message, MessageError> {
        if self.take(4)? != HEADER {
            return Err(self.error_at(0, "missing header HBC\\x01 (or unknown version)"));
        }
        let tag = self.byte()?;
        if tag != TAG_MESSAGE {
            return Err(self.error("top level must be a message (tag 07)"));
        }
        let m = self.message(1)?;
        if self.pos != self.bytes.len() {
            return Err(self.error("trailing bytes after the message"));
        }
        Ok(m)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
    /// The decoding budget's total, for the error.
    limit: u64,
    /// What is left of it.
    remaining: u64,
}

impl<'a> Reader<'a> {
    fn error_at(&self, offset: usize, reason: &str) -> MessageError {
        MessageError::Malformed {
            offset,
            reason: reason.to_string(),
        }
    }

    fn error(&self, reason: &str) -> MessageError {
        self.error_at(self.pos, reason)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Takes `units × cost` bytes from the budget, before they are allocated.
    fn charge(&mut self, units: usize, cost: u64) -> Result<(), MessageError> {
        let need = (units as u64).saturating_mul(cost);
        if need > self.remaining {
            return Err(MessageError::DecodedTooLarge { limit: self.limit });
        }
        self.remaining -= need;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        if n > self.remaining() {
            return Err(self.error("unexpected end of input"));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, MessageError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A length that must fit in what is left, each unit taking at least
    /// `min_unit` bytes: this bounds every allocation by the input size.
    fn len(&mut self, min_unit: usize) -> Result<usize, MessageError> {
        let at = self.pos;
        let n = self.u64()?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(min_unit) <= self.remaining());
        fits.ok_or_else(|| self.error_at(at, "length exceeds the remaining input"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, MessageError> {
        let tag = self.byte()?;
        Ok(match tag {
            TAG_BYTES => {
                let n = self.len(1)?;
                self.charge(n, 1)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            TAG_TEXT => {
                let n = self.len(1)?;
                self.charge(n, 1)?;
                let at = self.pos;
                let raw = self.take(n)?;
                let s =
                    std::str::from_utf8(raw).map_err(|_| self.error_at(at, "text is not UTF-8"))?;
                Value::Text(s.to_string())
            }
            TAG_INT => Value::Int(self.u64()? as i64), // two's complement, by definition
            TAG_FLOAT => {
                let at = self.pos;
                let f = f64::from_bits(self.u64()?);
                if f == 0.0 && f.is_sign_negative() {
                    return Err(self.error_at(at, "-0.0 is encoded as 0.0"));
                }
                Value::Float(Float::new(f).map_err(|_| self.error_at(at, "float is not finite"))?)
            }
            TAG_BOOL => match self.byte()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(self.error_at(self.pos - 1, "boolean must be 00 or 01")),
            },
            TAG_LIST => {
                self.check_depth(depth + 1)?;
                let n = self.len(2)?;
                self.charge(n, ITEM_COST)?;
                // `n` fits the input, but a `Value` is larger than its
                // smallest encoding: cap what is reserved up front.
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            TAG_MESSAGE => {
                self.check_depth(depth + 1)?;
                Value::Message(self.message(depth + 1)?)
            }
            _ => return Err(self.error_at(self.pos - 1, "unknown value tag")),
        })
    }

    fn check_depth(&self, depth: usize) -> Result<(), MessageError> {
        if depth > self.max_depth {
            return Err(MessageError::TooDeep {
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    /// A message body (after its tag) at nesting level `depth`.
    fn message(&mut self, depth: usize) -> Result<Message, MessageError> {
        self.check_depth(depth)?;
        // Each entry needs a key length (8), a key byte and a value (≥ 2).
        let n = self.len(11)?;
        self.charge(n, ENTRY_COST)?;
        // Entries arrive sorted (checked below against the previous key's
        // bytes, borrowed from the input). Inserting them one by one was
        // measured no slower than a bulk build from a `Vec` for the small
        // messages records hold (one B-tree leaf, no sort, no extra buffer).
        let mut m = Message::new();
        let mut previous: Option<&'a [u8]> = None;
        for _ in 0..n {
            let at = self.pos;
            let klen = self.len(1)?;
            self.charge(klen, 1)?;
            let raw = self.take(klen)?;
            let text =
                std::str::from_utf8(raw).map_err(|_| self.error_at(at, "key is not UTF-8"))?;
            if !is_normal_key(text) {
                return Err(self.key_error(at, text));
            }
            if is_private_text(text) {
                return Err(self.error_at(at, "private keys are never encoded"));
            }
            // Byte order of the encoded keys is the order of `Key`.
            if previous.is_some_and(|p| p >= raw) {
                return Err(self.error_at(at, "keys are not in ascending byte order"));
            }
            previous = Some(raw);
            let v = self.value(depth)?;
            m.insert_key(Key::from_normalised(text.to_owned()), v);
        }
        Ok(m)
    }

    /// The error for a key that [`is_normal_key`] refused: the rule
    /// [`Key::new`] names, or "not normalised".
    fn key_error(&self, at: usize, text: &str) -> MessageError {
        match Key::new(text) {
            Err(e) => self.error_at(at, &e.to_string()),
            Ok(_) => self.error_at(at, "key is not normalised"),
        }
    }
}

/// Whether `text` is a valid key that [`Key::new`] leaves unchanged: the
/// same rules, checked without building a key. Decoders of other forms of
/// the canonical encoding (hb-store's packed records) check keys with it.
pub fn is_normal_key(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_KEY_BYTES
        && !text.starts_with('@')
        && (!text.bytes().any(|b| b.is_ascii_uppercase()) || is_id_shaped(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;

    #[test]
    fn empty_message_is_header_tag_and_zero_count() {
        assert_eq!(
            canonical(&Message::new()),
            [b'H', b'B', b'C', 1, 7, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn decode_inverts_encode_whole() {
        let m = msg! {
            "a" => 1, "b" => "x", "c" => vec![1u8, 2], "d" => true,
            "e" => Value::float(1.5).unwrap(),
            "f" => Value::List(vec![Value::from(1), msg! { "z" => 0 }.into()]),
            "commitments" => msg! { "k" => "v" },
        };
        assert_eq!(decode(&encode_whole(&m), 64).unwrap(), m);
        let unsigned = decode(&canonical(&m), 64).unwrap();
        assert!(unsigned.get("commitments").is_none());
    }

    #[test]
    fn non_canonical_input_is_rejected() {
        // Keys out of order: {"b": true, "a": true}.
        let mut bad = HEADER.to_vec();
        bad.extend([7, 0, 0, 0, 0, 0, 0, 0, 2]);
        for k in [b'b', b'a'] {
            bad.extend([0, 0, 0, 0, 0, 0, 0, 1, k, 5, 1]);
        }
        assert!(matches!(
            decode(&bad, 64),
            Err(MessageError::Malformed { .. })
        ));
        // A huge declared length does not allocate.
        let mut huge = HEADER.to_vec();
        huge.extend([7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decode(&huge, 64),
            Err(MessageError::Malformed { .. })
        ));
    }

    /// `{key: true}` encoded as-is, bypassing `Key`.
    fn with_raw_key(key: &[u8]) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        out.extend([7, 0, 0, 0, 0, 0, 0, 0, 1]);
        out.extend((key.len() as u64).to_be_bytes());
        out.extend(key);
        out.extend([5, 1]);
        out
    }

    #[test]
    fn each_key_rule_is_enforced_with_its_reason() {
        let id = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_ABCDE";
        for (key, reason) in [
            // One spare byte, so that the entry count fits the input.
            (&b""[..], "keys must not be empty"),
            (b"@x", "keys must not start with '@'"),
            (&[b'a'; 1025][..], "keys must be at most 1024 bytes"),
            (b"Content-Type", "key is not normalised"),
            (&id.as_bytes()[..42], "key is not normalised"),
            (b"private", "private keys are never encoded"),
            (b"\xff", "key is not UTF-8"),
        ] {
            let mut bytes = with_raw_key(key);
            if key.is_empty() {
                bytes.push(0);
            }
            match decode(&bytes, 64) {
                Err(MessageError::Malformed { offset, reason: r }) => {
                    assert_eq!(offset, 13, "{key:?}");
                    assert!(r.contains(reason), "{key:?}: {r}");
                }
                other => panic!("{key:?}: {other:?}"),
            }
        }
        // An ID-shaped key is never private, even one starting `priv`.
        let priv_id = format!("priv{}", &id[4..]);
        for key in [id, &priv_id, "a", "content-type", "Äbc", &"a".repeat(1024)] {
            let m = decode(&with_raw_key(key.as_bytes()), 64).unwrap();
            assert_eq!(m.keys().map(|k| k.as_str()).collect::<Vec<_>>(), [key]);
        }
    }

    #[test]
    fn an_id_shaped_key_starting_with_priv_is_encoded() {
        let id = format!("priv{}", "Ab-_0".repeat(8).get(..39).unwrap());
        let mut m = msg! { "a" => 1 };
        m.insert(&id, 2).unwrap();
        let whole = encode_whole(&m);
        assert_eq!(decode(&whole, 64).unwrap(), m);
        assert_ne!(canonical(&m), canonical(&msg! { "a" => 1 }));
    }

    #[test]
    fn depth_is_limited() {
        let mut v = Value::List(vec![]);
        for _ in 0..100 {
            v = Value::List(vec![v]);
        }
        let m = msg! { "deep" => v };
        assert_eq!(
            decode(&encode_whole(&m), 64),
            Err(MessageError::TooDeep { limit: 64 })
        );
        assert!(decode(&encode_whole(&m), 200).is_ok());
    }
}
