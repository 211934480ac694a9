//! The JSON form of messages: the node's wire format (SPEC §2.9).
//!
//! Lossless for every value type: bytes travel as `{"@bytes": "<base64>"}`,
//! integers as numbers without fraction or exponent, floats always with one.

use std::cell::RefCell;
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

/// Parses a JSON object into a message, nesting at most `max_depth` levels.
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
        max_depth,
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
        max_depth,
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
        let Some(first) = map.next_key::<String>()? else {
            self.nested::<A::Error>()?;
            return Ok(Some(Value::Message(Message::new())));
        };
        if first == NUMBER_TOKEN {
            let text: String = map.next_value()?;
            return self.number(&text).map(Some);
        }
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
        let mut key = Some(first);
        while let Some(k) = key {
            let v = map.next_value_seed(inner)?;
            let v = v.expect("nested seeds never accept null");
            m.insert_new(&k, v).map_err(|e| self.fail::<A::Error>(e))?;
            key = map.next_key::<String>()?;
        }
        Ok(Some(Value::Message(m)))
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
        while let Some(k) = map.next_key::<String>()? {
            let key = Key::new(&k).map_err(|e| seed.fail::<A::Error>(e))?;
            if out.iter().any(|(existing, _)| *existing == key) {
                return Err(seed.fail(MessageError::DuplicateKey(key.as_str().to_string())));
            }
            let v = map.next_value_seed(value_seed)?;
            out.push((key, v.map_or(Update::Unset, Update::Value)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;

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
    fn set_requests_read_null_as_unset() {
        let u = updates_from_json(br#"{"a": null, "B": 1}"#, 64).unwrap();
        assert_eq!(u[0], (Key::new("a").unwrap(), Update::Unset));
        assert_eq!(u[1], (Key::new("b").unwrap(), Update::Value(Value::Int(1))));
        assert!(updates_from_json(br#"{"a": {"b": null}}"#, 64).is_err());
    }
}
