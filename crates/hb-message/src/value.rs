//! Values: what a message's keys map to (SPEC §2.1).

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::MessageError;
use crate::message::Message;

/// A finite 64-bit float. `-0.0` is stored as `0.0`, so equality by bits is
/// equality by value.
#[derive(Clone, Copy)]
pub struct Float(f64);

impl Float {
    /// Accepts finite floats only.
    pub fn new(f: f64) -> Result<Float, MessageError> {
        if !f.is_finite() {
            return Err(MessageError::NonFiniteFloat);
        }
        // `-0.0 + 0.0` is `0.0`: one representation for zero.
        Ok(Float(f + 0.0))
    }

    /// The float.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for Float {
    fn eq(&self, other: &Float) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

// Finite and with one zero, bit equality is a total equivalence.
impl Eq for Float {}

impl Hash for Float {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

impl fmt::Debug for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A value: bytes, text, integer, finite float, boolean, list or nested
/// message. Bytes and text are distinct: `"a"` is not bytes `61`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// UTF-8 text.
    Text(String),
    /// A signed 64-bit integer.
    Int(i64),
    /// A finite float.
    Float(Float),
    /// A boolean.
    Bool(bool),
    /// An ordered list.
    List(Vec<Value>),
    /// A nested message.
    Message(Message),
}

impl Value {
    /// A float value; NaN and infinities are rejected.
    pub fn float(f: f64) -> Result<Value, MessageError> {
        Float::new(f).map(Value::Float)
    }

    /// The value's type name, as used in error messages and `ao-types`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bytes(_) => "binary",
            Value::Text(_) => "text",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "boolean",
            Value::List(_) => "list",
            Value::Message(_) => "message",
        }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The float, if this is a float.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(f.get()),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The list, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The nested message, if this is one.
    pub fn as_message(&self) -> Option<&Message> {
        match self {
            Value::Message(m) => Some(m),
            _ => None,
        }
    }

    /// Takes the nested message out, if this is one.
    pub fn into_message(self) -> Option<Message> {
        match self {
            Value::Message(m) => Some(m),
            _ => None,
        }
    }

    /// The integer, also from digit-only text (`"5"` → 5). Used where
    /// HTTP parameters arrive as text.
    pub fn to_int_lenient(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Text(s) => {
                let digits = s.strip_prefix('-').unwrap_or(s);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                s.parse().ok()
            }
            _ => None,
        }
    }

    /// Nesting depth: scalars are 0, a list or message adds one level.
    pub fn depth(&self) -> usize {
        match self {
            Value::List(l) => 1 + l.iter().map(Value::depth).max().unwrap_or(0),
            Value::Message(m) => m.depth(),
            _ => 0,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Text(s.clone())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<Float> for Value {
    fn from(f: Float) -> Value {
        Value::Float(f)
    }
}

impl From<Message> for Value {
    fn from(m: Message) -> Value {
        Value::Message(m)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

impl TryFrom<u64> for Value {
    type Error = MessageError;
    fn try_from(i: u64) -> Result<Value, MessageError> {
        i64::try_from(i)
            .map(Value::Int)
            .map_err(|_| MessageError::InvalidValue(format!("integer {i} is outside i64")))
    }
}

impl TryFrom<f64> for Value {
    type Error = MessageError;
    fn try_from(f: f64) -> Result<Value, MessageError> {
        Value::float(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_floats_are_rejected() {
        assert_eq!(Value::float(f64::NAN), Err(MessageError::NonFiniteFloat));
        assert_eq!(
            Value::float(f64::INFINITY),
            Err(MessageError::NonFiniteFloat)
        );
        assert_eq!(
            Value::float(f64::NEG_INFINITY),
            Err(MessageError::NonFiniteFloat)
        );
    }

    #[test]
    fn negative_zero_is_stored_as_zero() {
        let z = Float::new(-0.0).unwrap();
        assert!(z.get().is_sign_positive());
        assert_eq!(z, Float::new(0.0).unwrap());
    }

    #[test]
    fn bytes_and_text_are_distinct() {
        assert_ne!(Value::from("a"), Value::from(vec![0x61u8]));
    }

    #[test]
    fn lenient_integers_accept_digit_text_only() {
        assert_eq!(Value::from("42").to_int_lenient(), Some(42));
        assert_eq!(Value::from("-3").to_int_lenient(), Some(-3));
        assert_eq!(Value::from("4x").to_int_lenient(), None);
        assert_eq!(Value::from("+4").to_int_lenient(), None);
        assert_eq!(Value::from("").to_int_lenient(), None);
        assert_eq!(Value::from(true).to_int_lenient(), None);
    }
}
