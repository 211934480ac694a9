//! The JSON of a packed message (`compact`), written straight from the
//! stored bytes: no `Message` is built, so a page of a schedule is served
//! without allocating every key and value of every assignment
//! (docs/PERFORMANCE.md, hb-store, "Reads").
//!
//! The text is `hb_message::json::to_json` of the message the bytes
//! decode to, entry for entry and in the same key order (the packed form
//! keeps the canonical order, which is the byte order of the keys, as is
//! `serde_json`'s map). It refuses what the canonical decoder refuses:
//! the grammar, lengths against the input, keys (UTF-8, normalised, not
//! private, strictly ascending), UTF-8 text, booleans, finite floats and
//! the nesting depth; so a record answers JSON exactly when it decodes.
//! (The one check left out is the decoder's budget on the decoded size,
//! which bounds what decoding allocates; the writer allocates only its
//! output, which grows with the input.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hb_message::canonical::is_normal_key;
use hb_message::canonical::{
    TAG_BOOL, TAG_BYTES, TAG_FLOAT, TAG_INT, TAG_LIST, TAG_MESSAGE, TAG_TEXT,
};
use hb_message::is_private_text;
use hb_message::json::BYTES_KEY;

use crate::compact::{read_varint, Malformed};

/// Appends the JSON of the packed message `packed` to `out`. On an error,
/// `out` may hold part of it.
pub(crate) fn write_json(
    packed: &[u8],
    max_depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), Malformed> {
    // Base64 makes bytes a third longer; the rest is near its size.
    out.reserve(packed.len() + packed.len() / 2);
    let mut w = JsonWriter {
        input: packed,
        pos: 0,
        out,
        max_depth,
    };
    if w.byte()? != TAG_MESSAGE {
        return Err(Malformed("top level must be a message"));
    }
    w.message(1)?;
    if w.pos != w.input.len() {
        return Err(Malformed("trailing bytes after the message"));
    }
    Ok(())
}

struct JsonWriter<'a, 'o> {
    input: &'a [u8],
    pos: usize,
    out: &'o mut Vec<u8>,
    max_depth: usize,
}

impl<'a> JsonWriter<'a, '_> {
    fn byte(&mut self) -> Result<u8, Malformed> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or(Malformed("unexpected end of input"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let input: &'a [u8] = self.input;
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= input.len())
            .ok_or(Malformed("unexpected end of input"))?;
        let slice = &input[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn eight(&mut self) -> Result<[u8; 8], Malformed> {
        let bytes = self.take(8)?;
        // `take(8)` returned exactly eight bytes.
        bytes
            .try_into()
            .map_err(|_| Malformed("unexpected end of input"))
    }

    /// A length or count, each unit taking at least `min_unit` input bytes.
    fn len(&mut self, min_unit: usize) -> Result<usize, Malformed> {
        let n = read_varint(self.input, &mut self.pos)?;
        let left = self.input.len() - self.pos;
        usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(min_unit) <= left)
            .ok_or(Malformed("length exceeds the remaining input"))
    }

    fn depth(&self, depth: usize) -> Result<(), Malformed> {
        if depth > self.max_depth {
            return Err(Malformed("nested too deep"));
        }
        Ok(())
    }

    fn text(&mut self, n: usize) -> Result<(), Malformed> {
        let bytes = self.take(n)?;
        // Printable ASCII without quotes or backslashes (IDs, addresses,
        // signatures, most text) is valid UTF-8 that JSON takes as it is:
        // one scan instead of a UTF-8 check and an escaping pass. The scan
        // has no early exit, so it is vectorised.
        let plain = bytes.iter().fold(true, |plain, &b| {
            plain & (0x20..0x80).contains(&b) & (b != b'"') & (b != b'\\')
        });
        if plain {
            self.out.reserve(bytes.len() + 2);
            self.out.push(b'"');
            self.out.extend_from_slice(bytes);
            self.out.push(b'"');
            return Ok(());
        }
        let s = std::str::from_utf8(bytes).map_err(|_| Malformed("text is not UTF-8"))?;
        write_str(self.out, s);
        Ok(())
    }

    fn message(&mut self, depth: usize) -> Result<(), Malformed> {
        self.depth(depth)?;
        let n = self.len(4)?;
        self.out.push(b'{');
        let mut previous: Option<&[u8]> = None;
        for i in 0..n {
            if i > 0 {
                self.out.push(b',');
            }
            let klen = self.len(1)?;
            let raw = self.take(klen)?;
            let key = std::str::from_utf8(raw).map_err(|_| Malformed("key is not UTF-8"))?;
            if !is_normal_key(key) || is_private_text(key) {
                return Err(Malformed("key is not a normalised public key"));
            }
            if previous.is_some_and(|p| p >= raw) {
                return Err(Malformed("keys are not in ascending byte order"));
            }
            previous = Some(raw);
            write_str(self.out, key);
            self.out.push(b':');
            self.value(depth)?;
        }
        self.out.push(b'}');
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<(), Malformed> {
        match self.byte()? {
            TAG_BYTES => {
                let n = self.len(1)?;
                let bytes = self.take(n)?;
                self.out.push(b'{');
                write_str(self.out, BYTES_KEY);
                self.out.push(b':');
                self.out.push(b'"');
                // Unpadded base64url (hb-message's form), written in place;
                // it needs no JSON escaping.
                let start = self.out.len();
                let len = base64::encoded_len(bytes.len(), false)
                    .ok_or(Malformed("bytes too long to encode"))?;
                self.out.resize(start + len, 0);
                URL_SAFE_NO_PAD
                    .encode_slice(bytes, &mut self.out[start..])
                    .map_err(|_| Malformed("bytes too long to encode"))?;
                self.out.extend_from_slice(b"\"}");
                Ok(())
            }
            TAG_TEXT => {
                let n = self.len(1)?;
                self.text(n)
            }
            TAG_INT => {
                // Two's complement, as the canonical decoder reads it.
                let n = u64::from_be_bytes(self.eight()?) as i64;
                self.out.extend_from_slice(n.to_string().as_bytes());
                Ok(())
            }
            TAG_FLOAT => {
                let f = f64::from_bits(u64::from_be_bytes(self.eight()?));
                if !f.is_finite() {
                    return Err(Malformed("float is not finite"));
                }
                // `value_to_json`'s form: Debug of a finite f64 (its
                // shortest round-trip text) read as a JSON number, which
                // writes it back in serde_json's own spelling (`1e+300`).
                let n = format!("{f:?}")
                    .parse::<serde_json::Number>()
                    .map_err(|_| Malformed("float is not a JSON number"))?;
                self.out.extend_from_slice(n.to_string().as_bytes());
                Ok(())
            }
            TAG_BOOL => {
                match self.byte()? {
                    0 => self.out.extend_from_slice(b"false"),
                    1 => self.out.extend_from_slice(b"true"),
                    _ => return Err(Malformed("boolean is neither 0 nor 1")),
                }
                Ok(())
            }
            TAG_LIST => {
                self.depth(depth + 1)?;
                let n = self.len(2)?;
                self.out.push(b'[');
                for i in 0..n {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.value(depth + 1)?;
                }
                self.out.push(b']');
                Ok(())
            }
            TAG_MESSAGE => self.message(depth + 1),
            _ => Err(Malformed("unknown value tag")),
        }
    }
}

/// `s` as a JSON string, escaped as `serde_json` escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    // Without early exit, so that the check compiles to vector code.
    let escapes = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !escapes {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    let mut ser = serde_json::Serializer::new(&mut *out);
    // Writing to a `Vec` cannot fail, and a `&str` always serialises.
    let _ = serde::Serializer::serialize_str(&mut ser, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::pack;
    use hb_message::canonical::encode_whole;
    use hb_message::json::to_json;
    use hb_message::{msg, Message, NodeKey, Value};
    use proptest::prelude::*;

    fn packed(m: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        pack(&encode_whole(m), 128, &mut out).unwrap();
        out
    }

    fn json_of_packed(m: &Message) -> String {
        let mut out = Vec::new();
        write_json(&packed(m), 128, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_type_gives_the_text_of_to_json() {
        let body = msg! { "data" => vec![0x5au8; 300], "action" => "eval" }
            .commit(&NodeKey::from_seed(&[1; 32]), None)
            .unwrap();
        let m = msg! {
            "a" => -1, "b" => "quote \" slash \\ newline \n tab \t nul \u{0} é ☃",
            "c" => vec![1u8, 2, 255], "d" => true, "d2" => false,
            "e" => Value::float(-1.5).unwrap(), "e2" => Value::float(1e300).unwrap(),
            "e3" => Value::float(-2.5e-10).unwrap(), "i" => i64::MIN, "j" => i64::MAX,
            "f" => Value::List(vec![Value::from(1), msg! { "z" => 0 }.into(), Value::List(vec![])]),
            "g" => Message::new(),
            "body" => body,
        }
        .commit(&NodeKey::from_seed(&[2; 32]), None)
        .unwrap();
        assert_eq!(json_of_packed(&m), to_json(&m).to_string());
        assert_eq!(json_of_packed(&Message::new()), "{}");
    }

    #[test]
    fn bad_input_is_refused_not_written_as_json() {
        let good = packed(&msg! { "k" => "text", "n" => 7 });
        // Every strict prefix is refused (cut inside a length, a key, a value).
        for cut in 0..good.len() {
            assert!(
                write_json(&good[..cut], 128, &mut Vec::new()).is_err(),
                "{cut}"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(write_json(&trailing, 128, &mut Vec::new()).is_err());
        // Invalid UTF-8 in a text value: [message, 1 entry, key "k", text of 1 byte 0xff].
        let bad_text = [TAG_MESSAGE, 1, 1, b'k', TAG_TEXT, 1, 0xff];
        assert_eq!(
            write_json(&bad_text, 128, &mut Vec::new()),
            Err(Malformed("text is not UTF-8"))
        );
        for (entries, why) in [
            (
                &b"\x02\x01b\x05\x01\x01a\x05\x01"[..],
                "keys are not in ascending byte order",
            ),
            (
                &b"\x02\x01a\x05\x01\x01a\x05\x01"[..],
                "keys are not in ascending byte order",
            ),
            (
                &b"\x01\x01A\x05\x01"[..],
                "key is not a normalised public key",
            ),
            (
                &b"\x01\x04priv\x05\x01"[..],
                "key is not a normalised public key",
            ),
        ] {
            let mut bytes = vec![TAG_MESSAGE];
            bytes.extend_from_slice(entries);
            assert_eq!(
                write_json(&bytes, 128, &mut Vec::new()),
                Err(Malformed(why))
            );
        }
        let bad_bool = [TAG_MESSAGE, 1, 1, b'k', TAG_BOOL, 2];
        assert!(write_json(&bad_bool, 128, &mut Vec::new()).is_err());
        let mut nan = vec![TAG_MESSAGE, 1, 1, b'k', TAG_FLOAT];
        nan.extend_from_slice(&f64::NAN.to_bits().to_be_bytes());
        assert_eq!(
            write_json(&nan, 128, &mut Vec::new()),
            Err(Malformed("float is not finite"))
        );
        let deep = packed(&msg! { "a" => msg! { "b" => msg! { "c" => 1 } } });
        assert!(write_json(&deep, 3, &mut Vec::new()).is_ok());
        assert_eq!(
            write_json(&deep, 2, &mut Vec::new()),
            Err(Malformed("nested too deep"))
        );
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            ".{0,12}".prop_map(Value::Text),
            any::<i64>().prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
            (-1e12f64..1e12).prop_map(|f| Value::float(f).unwrap()),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
                proptest::collection::btree_map("[a-z0-9-]{1,8}", inner, 0..4).prop_map(|m| {
                    let mut out = Message::new();
                    for (k, v) in m {
                        out.insert(k.as_str(), v).unwrap();
                    }
                    Value::Message(out)
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_message_gives_the_text_of_to_json(
            entries in proptest::collection::btree_map("[a-z0-9-]{1,10}", value(), 0..6)
        ) {
            let mut m = Message::new();
            for (k, v) in entries {
                m.insert(k.as_str(), v).unwrap();
            }
            prop_assert_eq!(json_of_packed(&m), to_json(&m).to_string());
        }
    }
}
