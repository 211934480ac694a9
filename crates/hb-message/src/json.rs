//! The JSON form of messages: the node's wire format (SPEC §2.9).
//!
//! Lossless for every value type: bytes travel as `{"@bytes": "<base64>"}`,
//! integers as numbers without fraction or exponent, floats always with one.
//! Private keys are never written, and are dropped from input at every
//! depth (a client cannot plant runtime data such as `priv/hashpath`).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number};

use crate::canonical::DEFAULT_MAX_DEPTH;
use crate::error::MessageError;
use crate::id::{decode_base64_any, encode_base64url};
use crate::key::Key;
use crate::message::Message;
use crate::value::{Float, Value};

/// The one key of a JSON object that stands for bytes.
pub const BYTES_KEY: &str = "@bytes";

/// The deepest nesting the JSON decoders accept whatever limit they are
/// given. serde_json refuses a 128th level before the decoder sees it;
/// lowering larger limits to 126 lets the decoder's own check fire first,
/// so that too deep is always [`MessageError::TooDeep`].
pub const JSON_MAX_DEPTH: usize = 126;

/// serde_json's marker for a number kept as text (`arbitrary_precision`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// One update of a `set` request: a value, or removal (`null`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Set (deep-merge) this value.
    Value(Value),
    /// Remove the key.
    Unset,
}

/// Parses a JSON object into a message, nesting at most [`DEFAULT_MAX_DEPTH`].
pub fn from_json(input: &[u8]) -> Result<Message, MessageError> {
    from_json_with_depth(input, DEFAULT_MAX_DEPTH)
}

/// Parses a JSON object into a message, nesting at most `max_depth` levels
/// (and never more than [`JSON_MAX_DEPTH`]).
pub fn from_json_with_depth(input: &[u8], max_depth: usize) -> Result<Message, MessageError> {
    match parse(input, max_depth, false)? {
        Some(Value::Message(m)) => Ok(m),
        _ => Err(MessageError::InvalidJson(
            "the top level must be an object".into(),
        )),
    }
}

/// Parses any JSON value (not `null`).
pub fn value_from_json(input: &[u8], max_depth: usize) -> Result<Value, MessageError> {
    parse(input, max_depth, false)?
        .ok_or_else(|| MessageError::InvalidValue("null is not a value".into()))
}

/// Parses the body of a `set` request: an object whose top-level `null`s
/// mean [`Update::Unset`].
pub fn updates_from_json(
    input: &[u8],
    max_depth: usize,
) -> Result<Vec<(Key, Update)>, MessageError> {
    let failure = RefCell::new(None);
    let seed = Seed {
        depth: 0,
        max_depth: max_depth.min(JSON_MAX_DEPTH),
        null_is_unset: true,
        failure: &failure,
    };
    let mut de = serde_json::Deserializer::from_slice(input);
    let parsed = de::Deserializer::deserialize_map(&mut de, UpdatesVisitor(seed));
    let updates = finish(parsed, &failure)?;
    de.end()
        .map_err(|e| MessageError::InvalidJson(e.to_string()))?;
    Ok(updates)
}

fn parse(
    input: &[u8],
    max_depth: usize,
    null_is_unset: bool,
) -> Result<Option<Value>, MessageError> {
    let failure = RefCell::new(None);
    let seed = Seed {
        depth: 0,
        max_depth: max_depth.min(JSON_MAX_DEPTH),
        null_is_unset,
        failure: &failure,
    };
    let mut de = serde_json::Deserializer::from_slice(input);
    let parsed = seed.deserialize(&mut de);
    let value = finish(parsed, &failure)?;
    de.end()
        .map_err(|e| MessageError::InvalidJson(e.to_string()))?;
    Ok(value)
}

/// Prefers the typed error a visitor stashed over serde's text.
fn finish<T>(
    parsed: Result<T, serde_json::Error>,
    failure: &RefCell<Option<MessageError>>,
) -> Result<T, MessageError> {
    parsed.map_err(|e| {
        failure
            .borrow_mut()
            .take()
            .unwrap_or_else(|| MessageError::InvalidJson(e.to_string()))
    })
}

#[derive(Clone, Copy)]
struct Seed<'f> {
    depth: usize,
    max_depth: usize,
    null_is_unset: bool,
    failure: &'f RefCell<Option<MessageError>>,
}

impl<'f> Seed<'f> {
    fn fail<E: de::Error>(&self, e: MessageError) -> E {
        let text = e.to_string();
        *self.failure.borrow_mut() = Some(e);
        E::custom(text)
    }

    fn nested<E: de::Error>(&self) -> Result<Seed<'f>, E> {
        if self.depth + 1 > self.max_depth {
            return Err(self.fail(MessageError::TooDeep {
                limit: self.max_depth,
            }));
        }
        Ok(Seed {
            depth: self.depth + 1,
            null_is_unset: false,
            ..*self
        })
    }

    fn number<E: de::Error>(&self, text: &str) -> Result<Value, E> {
        if text.contains(['.', 'e', 'E']) {
            let f: f64 = text
                .parse()
                .map_err(|_| self.fail(MessageError::InvalidValue(format!("bad number {text}"))))?;
            Float::new(f).map(Value::Float).map_err(|e| self.fail(e))
        } else {
            text.parse::<i64>().map(Value::Int).map_err(|_| {
                self.fail(MessageError::InvalidValue(format!(
                    "integer {text} is outside the 64-bit signed range"
                )))
            })
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Option<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Some(Value::Bool(b)))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Self::Value, E> {
        Ok(Some(Value::Int(i)))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Self::Value, E> {
        self.number(&u.to_string()).map(Some)
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Self::Value, E> {
        Float::new(f)
            .map(|f| Some(Value::Float(f)))
            .map_err(|e| self.fail(e))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(Value::Text(s.to_string())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Some(Value::Text(s)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.null_is_unset {
            Ok(None)
        } else {
            Err(self.fail(MessageError::InvalidValue(
                "null is not a value (it means removal only in set requests)".into(),
            )))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            // `inner` never allows null, so every element is a value.
            items.extend(item);
        }
        Ok(Some(Value::List(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let first = match map.next_key_seed(KeySeed(self))? {
            None => {
                self.nested::<A::Error>()?;
                return Ok(Some(Value::Message(Message::new())));
            }
            Some(ObjectKey::Number) => {
                let text: String = map.next_value()?;
                return self.number(&text).map(Some);
            }
            Some(ObjectKey::Name(name)) => name,
        };
        if first == BYTES_KEY {
            let text: String = map.next_value().map_err(|_| {
                self.fail::<A::Error>(MessageError::InvalidValue(
                    "@bytes must hold base64 text".into(),
                ))
            })?;
            if map.next_key::<String>()?.is_some() {
                return Err(self.fail(MessageError::InvalidValue(
                    "an object with @bytes must have no other key".into(),
                )));
            }
            let bytes = decode_base64_any(&text).map_err(|_| {
                self.fail::<A::Error>(MessageError::InvalidValue("@bytes is not base64".into()))
            })?;
            return Ok(Some(Value::Bytes(bytes)));
        }
        let inner = self.nested()?;
        let mut m = Message::new();
        // Private keys are dropped but still checked for duplicates: a set,
        // so that an object of many of them decodes in linear time.
        let mut private_seen: HashSet<Key> = HashSet::new();
        let mut key = Some(first);
        while let Some(k) = key {
            let v = map.next_value_seed(inner)?;
            let v = v.expect("nested seeds never accept null");
            let k = Key::new(&k).map_err(|e| self.fail::<A::Error>(e))?;
            if k.is_private() {
                // Runtime-only: never accepted from the wire, at any depth.
                if private_seen.contains(&k) {
                    return Err(self.fail(MessageError::DuplicateKey(k.as_str().to_string())));
                }
                private_seen.insert(k);
            } else {
                m.insert_new_key(k, v)
                    .map_err(|e| self.fail::<A::Error>(e))?;
            }
            key = match map.next_key_seed(KeySeed(self))? {
                Some(ObjectKey::Name(name)) => Some(name),
                Some(ObjectKey::Number) => {
                    return Err(self.fail(MessageError::InvalidJson(
                        "unexpected number marker inside an object".into(),
                    )))
                }
                None => None,
            };
        }
        Ok(Some(Value::Message(m)))
    }
}

/// What the first key of a JSON object turned out to be.
enum ObjectKey {
    /// A real key, from the input text.
    Name(String),
    /// serde_json's private marker: the "object" is a number
    /// (`arbitrary_precision`).
    Number,
}

/// Reads an object key as bytes. serde_json hands a real key's bytes to
/// `visit_bytes`, but its number marker to `visit_str`, so an input object
/// whose key merely spells the marker stays an object.
struct KeySeed<'f>(Seed<'f>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ObjectKey;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<ObjectKey, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ObjectKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<ObjectKey, E> {
        match std::str::from_utf8(b) {
            Ok(s) => Ok(ObjectKey::Name(s.to_string())),
            Err(_) => Err(self.0.fail(MessageError::InvalidJson(
                "object key is not valid UTF-8 (a lone surrogate escape?)".into(),
            ))),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<ObjectKey, E> {
        if s == NUMBER_TOKEN {
            Ok(ObjectKey::Number)
        } else {
            Ok(ObjectKey::Name(s.to_string()))
        }
    }
}

struct UpdatesVisitor<'f>(Seed<'f>);

impl<'de> Visitor<'de> for UpdatesVisitor<'_> {
    type Value = Vec<(Key, Update)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of updates")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let seed = self.0;
        let value_seed = Seed {
            null_is_unset: true,
            ..seed.nested()?
        };
        let mut out: Vec<(Key, Update)> = Vec::new();
        // Every key so far, private ones included: a set keeps the
        // duplicate check linear in the number of keys.
        let mut seen: HashSet<Key> = HashSet::new();
        while let Some(k) = map.next_key_seed(KeySeed(seed))? {
            let ObjectKey::Name(k) = k else {
                return Err(seed.fail(MessageError::InvalidJson(
                    "unexpected number marker inside an object".into(),
                )));
            };
            let key = Key::new(&k).map_err(|e| seed.fail::<A::Error>(e))?;
            if seen.contains(&key) {
                return Err(seed.fail(MessageError::DuplicateKey(key.as_str().to_string())));
            }
            seen.insert(key.clone());
            let v = map.next_value_seed(value_seed)?;
            // Private keys are runtime-only: a request cannot set them.
            if !key.is_private() {
                out.push((key, v.map_or(Update::Unset, Update::Value)));
            }
        }
        Ok(out)
    }
}

/// The JSON form of a message. Private keys are never written.
pub fn to_json(m: &Message) -> serde_json::Value {
    let mut map = Map::new();
    for (k, v) in m.iter() {
        map.insert(k.as_str().to_string(), value_to_json(v));
    }
    serde_json::Value::Object(map)
}

/// The JSON form of one value.
pub fn value_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Bytes(b) => {
            let mut map = Map::new();
            map.insert(BYTES_KEY.into(), J::String(encode_base64url(b)));
            J::Object(map)
        }
        Value::Text(t) => J::String(t.clone()),
        Value::Int(i) => J::Number(Number::from(*i)),
        // Debug formatting of a finite f64 is its shortest round-trip form
        // and always has a `.` or an exponent (`1.0`, `1e300`).
        Value::Float(f) => match format!("{:?}", f.get()).parse::<Number>() {
            Ok(n) => J::Number(n),
            Err(_) => J::Null, // unreachable: a finite float always formats as a JSON number
        },
        Value::Bool(b) => J::Bool(*b),
        Value::List(l) => J::Array(l.iter().map(value_to_json).collect()),
        Value::Message(m) => to_json(m),
    }
}

/// The JSON text of a message.
pub fn to_json_string(m: &Message) -> String {
    to_json(m).to_string()
}

/// The JSON text of a message ([`to_json_string`]'s text, byte for byte)
/// written straight to bytes, without building the `serde_json::Value`
/// tree of [`to_json`] first: what the node answers over HTTP.
pub fn to_json_vec(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::new(&mut out);
    // Writing to a `Vec` cannot fail and every value serialises (floats
    // are finite by construction), so there is no error to report.
    let _ = serde::Serialize::serialize(&JsonOf::Message(m), &mut ser);
    out
}

/// A message or value serialised as [`to_json`] would write it.
enum JsonOf<'a> {
    Message(&'a Message),
    Value(&'a Value),
}

impl serde::Serialize for JsonOf<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            JsonOf::Message(m) => {
                let mut map = ser.serialize_map(None)?;
                // Public keys in byte order: the order of `to_json`'s map.
                for (k, v) in m.iter() {
                    map.serialize_entry(k.as_str(), &JsonOf::Value(v))?;
                }
                map.end()
            }
            JsonOf::Value(v) => match v {
                Value::Bytes(b) => {
                    let mut map = ser.serialize_map(Some(1))?;
                    map.serialize_entry(BYTES_KEY, &encode_base64url(b))?;
                    map.end()
                }
                Value::Text(t) => ser.serialize_str(t),
                Value::Int(i) => ser.serialize_i64(*i),
                // As `value_to_json`: the Debug text read as a number.
                Value::Float(f) => match format!("{:?}", f.get()).parse::<Number>() {
                    Ok(n) => n.serialize(ser),
                    Err(_) => ser.serialize_unit(), // unreachable, as in `value_to_json`
                },
                Value::Bool(b) => ser.serialize_bool(*b),
                Value::List(l) => {
                    let mut seq = ser.serialize_seq(Some(l.len()))?;
                    for item in l {
                        seq.serialize_element(&JsonOf::Value(item))?;
                    }
                    seq.end()
                }
                Value::Message(m) => JsonOf::Message(m).serialize(ser),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;

    #[test]
    fn to_json_vec_writes_the_text_of_to_json() {
        let m = msg! {
            "b" => vec![0u8, 255, 10], "t" => "quote \" nl \n ☃", "i" => -5,
            "f" => Value::float(1.0).unwrap(), "big" => Value::float(1e300).unwrap(),
            "g" => Value::float(-2.5e-10).unwrap(), "yes" => true,
            "l" => Value::List(vec![Value::from(1), Value::from("1"), msg! { "x" => 1 }.into()]),
            "m" => msg! { "inner" => Value::List(vec![]) }, "e" => Message::new(),
        };
        assert_eq!(to_json_vec(&m), to_json_string(&m).into_bytes());
        assert_eq!(to_json_vec(&Message::new()), b"{}");
    }

    #[test]
    fn every_type_round_trips() {
        let m = msg! {
            "b" => vec![0u8, 255, 10], "t" => "text", "i" => -5, "f" => Value::float(1.0).unwrap(),
            "g" => Value::float(-2.5e-10).unwrap(), "big" => Value::float(1e300).unwrap(),
            "yes" => true, "l" => Value::List(vec![Value::from(1), Value::from("1")]),
            "m" => msg! { "inner" => Value::List(vec![]) }, "e" => Message::new(),
        };
        let text = to_json_string(&m);
        assert!(text.contains("\"f\":1.0"), "{text}");
        assert_eq!(from_json(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn numbers_are_classified_by_their_text() {
        let m = from_json(br#"{"a": 1, "b": 1.0, "c": 1e2, "d": -0.0}"#).unwrap();
        assert_eq!(m.get("a"), Some(&Value::Int(1)));
        assert_eq!(m.get("b"), Some(&Value::float(1.0).unwrap()));
        assert_eq!(m.get("c"), Some(&Value::float(100.0).unwrap()));
        assert_eq!(m.get("d"), Some(&Value::float(0.0).unwrap()));
        for big in [
            &br#"{"a": 9223372036854775808}"#[..],
            br#"{"a": 99999999999999999999999}"#,
        ] {
            assert!(matches!(from_json(big), Err(MessageError::InvalidValue(_))));
        }
        assert!(matches!(
            from_json(br#"{"a": 1e400}"#),
            Err(MessageError::NonFiniteFloat)
        ));
    }

    #[test]
    fn bad_input_is_typed() {
        assert!(matches!(
            from_json(br#"{"a": null}"#),
            Err(MessageError::InvalidValue(_))
        ));
        assert!(matches!(
            from_json(br#"{"a": 1, "A": 2}"#),
            Err(MessageError::DuplicateKey(_))
        ));
        assert!(matches!(
            from_json(br#"{"a": 1, "a": 2}"#),
            Err(MessageError::DuplicateKey(_))
        ));
        assert!(matches!(
            from_json(br#"{"@x": 1}"#),
            Err(MessageError::InvalidKey { .. })
        ));
        assert!(matches!(
            from_json(br#"{"@bytes": "AA", "x": 1}"#),
            Err(MessageError::InvalidValue(_))
        ));
        assert!(matches!(
            from_json(br#"[1]"#),
            Err(MessageError::InvalidJson(_))
        ));
        assert!(matches!(from_json(b"5"), Err(MessageError::InvalidJson(_))));
        assert!(matches!(
            from_json(b"null"),
            Err(MessageError::InvalidValue(_))
        ));
        assert!(matches!(
            from_json(br#"{"a": 1"#),
            Err(MessageError::InvalidJson(_))
        ));
        assert!(matches!(
            from_json(br#"{} x"#),
            Err(MessageError::InvalidJson(_))
        ));
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(70),
            "1".to_string() + &"}".repeat(70)
        );
        assert!(matches!(
            from_json(deep.as_bytes()),
            Err(MessageError::TooDeep { limit: 64 })
        ));
    }

    #[test]
    fn both_base64_alphabets_decode_bytes() {
        let m = from_json(br#"{"a": {"@bytes": "+/8="}, "b": {"@bytes": "-_8"}}"#).unwrap();
        assert_eq!(m.get("a"), m.get("b"));
        assert_eq!(m.get("a"), Some(&Value::Bytes(vec![0xfb, 0xff])));
    }

    #[test]
    fn private_keys_are_never_written() {
        let mut m = msg! { "a" => 1 };
        m.set_private("priv", msg! { "secret" => "x" }).unwrap();
        assert_eq!(to_json_string(&m), r#"{"a":1}"#);
    }

    #[test]
    fn private_keys_are_dropped_from_input_at_every_depth() {
        let m = from_json(
            br#"{"a": 1, "priv": {"hashpath": "forged"}, "b": {"Private-X": 2, "c": [{"privacy": 3, "d": 4}]}}"#,
        )
        .unwrap();
        let expected = msg! {
            "a" => 1,
            "b" => msg! { "c" => Value::List(vec![msg! { "d" => 4 }.into()]) },
        };
        assert_eq!(m, expected);
        assert!(m.get_private("priv").is_none());
        assert!(matches!(
            from_json(br#"{"priv": 1, "PRIV": 2}"#),
            Err(MessageError::DuplicateKey(_))
        ));
        let u = updates_from_json(br#"{"priv": {"hashpath": "x"}, "a": 1}"#, 64).unwrap();
        assert_eq!(
            u,
            vec![(Key::new("a").unwrap(), Update::Value(Value::Int(1)))]
        );
    }

    #[test]
    fn an_object_spelling_the_number_marker_stays_an_object() {
        let text = format!(r#"{{"a": {{"{NUMBER_TOKEN}": "5"}}}}"#);
        let m = from_json(text.as_bytes()).unwrap();
        let inner = m.get_message("a").expect("an object, not a number");
        assert_eq!(inner.len(), 1);
        assert_eq!(inner.iter().next().unwrap().1, &Value::Text("5".into()));
        assert_eq!(from_json(&to_json_string(&m).into_bytes()).unwrap(), m);
        // Real numbers still classify.
        assert_eq!(value_from_json(b"5", 64).unwrap(), Value::Int(5));
        assert_eq!(
            value_from_json(b"5.5", 64).unwrap(),
            Value::float(5.5).unwrap()
        );
    }

    #[test]
    fn escaped_keys_and_bad_surrogates() {
        let m = from_json(br#"{"a\u0062\n": 1, "\u00e9": 2}"#).unwrap();
        assert_eq!(m.get("ab\n"), Some(&Value::Int(1)));
        assert_eq!(m.get("é"), Some(&Value::Int(2)));
        assert!(from_json(br#"{"\ud800": 1}"#).is_err());
        assert!(from_json(br#"{"a": "\ud800"}"#).is_err());
    }

    /// An object of `n` public keys (`k0`…) and `n` private ones
    /// (`priv-0`…), interleaved.
    fn many_keys(n: usize) -> String {
        let mut text = String::from("{");
        for i in 0..n {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!(r#""k{i}":{i},"priv-{i}":{i}"#));
        }
        text.push('}');
        text
    }

    #[test]
    fn duplicate_checks_are_linear_in_the_number_of_keys() {
        // A quadratic check (each key against every earlier one) makes
        // ~n²/2 comparisons; a set makes about one per key.
        let n = 10_000;
        let text = many_keys(n);
        crate::key::eq_probes::take();
        assert_eq!(from_json(text.as_bytes()).unwrap().len(), n);
        let from_json_probes = crate::key::eq_probes::take();
        assert_eq!(updates_from_json(text.as_bytes(), 64).unwrap().len(), n);
        let updates_probes = crate::key::eq_probes::take();
        let bound = 2 * n as u64;
        assert!(
            from_json_probes <= bound,
            "from_json: {from_json_probes} key comparisons"
        );
        assert!(
            updates_probes <= bound,
            "updates_from_json: {updates_probes} key comparisons"
        );
    }

    #[test]
    fn a_mebibyte_of_keys_decodes_and_duplicates_are_still_found() {
        // ~96k keys, as in the report that found the quadratic check.
        let n = 48_000;
        let text = many_keys(n);
        assert!(text.len() >= 1 << 20, "{} bytes", text.len());
        let m = from_json(text.as_bytes()).unwrap();
        assert_eq!(m.len(), n);
        for i in [0, 1, n / 2, n - 1] {
            assert_eq!(m.get(&format!("k{i}")), Some(&Value::Int(i as i64)));
            assert_eq!(m.get_private(&format!("priv-{i}")), None);
        }
        let u = updates_from_json(text.as_bytes(), 64).unwrap();
        assert_eq!(u.len(), n);
        for (i, (k, v)) in u.iter().enumerate() {
            assert_eq!(k.as_str(), format!("k{i}"));
            assert_eq!(v, &Update::Value(Value::Int(i as i64)));
        }
        // A late key normalising like an early one, public or private.
        let last = format!(r#""k{}":1"#, n - 1);
        for dup in [r#""K0":1"#, r#""PRIV-0":1"#, &last] {
            let bad = format!("{},{dup}}}", &text[..text.len() - 1]);
            assert!(
                matches!(
                    from_json(bad.as_bytes()),
                    Err(MessageError::DuplicateKey(_))
                ),
                "{dup}"
            );
            assert!(
                matches!(
                    updates_from_json(bad.as_bytes(), 64),
                    Err(MessageError::DuplicateKey(_))
                ),
                "{dup}"
            );
        }
    }

    #[test]
    fn set_requests_read_null_as_unset() {
        let u = updates_from_json(br#"{"a": null, "B": 1}"#, 64).unwrap();
        assert_eq!(u[0], (Key::new("a").unwrap(), Update::Unset));
        assert_eq!(u[1], (Key::new("b").unwrap(), Update::Value(Value::Int(1))));
        assert!(updates_from_json(br#"{"a": {"b": null}}"#, 64).is_err());
    }
}
