//! Conversion between hb values and Lua values (SPEC §6.10 "Conversion").
//!
//! - Message → Lua: text and bytes become strings; integers, floats and
//!   booleans map directly; lists become sequences; messages become tables
//!   whose string keys are looked up case-insensitively.
//! - Lua → message: a sequence `1..n` (n ≥ 1) becomes a list and `{}` an
//!   empty message; other tables become messages (string keys normalised,
//!   integer keys written as decimal); strings become text when valid UTF-8,
//!   else bytes. Functions, userdata, threads, cycles, non-finite floats,
//!   other key types and key collisions are refused with a message that does
//!   not depend on the table's memory layout.

use std::collections::HashSet;

use hb_message::{Key, Message, Value};
use mlua::{Lua, Table, Value as LuaValue};

use super::order::{sorted_entries, OrderedKey};

/// How deep a converted value may nest (SPEC §2.1's default).
pub const MAX_DEPTH: usize = 64;

/// How many values one conversion may produce, so a table shared many
/// times over (a DAG) cannot make a conversion explode.
pub const MAX_VALUES: usize = 1_000_000;

/// Builds the Lua form of a message: a table with `message_mt`.
pub(crate) fn message_to_lua(lua: &Lua, m: &Message, mt: &Table) -> mlua::Result<Table> {
    message_to_lua_at(lua, m, mt, 0)
}

fn message_to_lua_at(lua: &Lua, m: &Message, mt: &Table, depth: usize) -> mlua::Result<Table> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::RuntimeError(format!(
            "message nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let t = lua.create_table_with_capacity(0, m.len())?;
    for (k, v) in m.iter() {
        t.raw_set(k.as_str(), value_to_lua(lua, v, mt, depth + 1)?)?;
    }
    t.set_metatable(Some(mt.clone()))?;
    Ok(t)
}

/// The Lua form of one value.
pub(crate) fn value_to_lua(
    lua: &Lua,
    v: &Value,
    mt: &Table,
    depth: usize,
) -> mlua::Result<LuaValue> {
    Ok(match v {
        Value::Bytes(b) => LuaValue::String(lua.create_string(b)?),
        Value::Text(s) => LuaValue::String(lua.create_string(s)?),
        Value::Int(i) => LuaValue::Integer(*i),
        Value::Float(f) => LuaValue::Number(f.get()),
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::List(items) => {
            if depth > MAX_DEPTH {
                return Err(mlua::Error::RuntimeError(format!(
                    "message nests deeper than {MAX_DEPTH} levels"
                )));
            }
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, value_to_lua(lua, item, mt, depth + 1)?)?;
            }
            LuaValue::Table(t)
        }
        Value::Message(m) => LuaValue::Table(message_to_lua_at(lua, m, mt, depth)?),
    })
}

/// Why a Lua value could not become an hb value: a message for the script
/// (`User`), or a VM failure (`Vm`, for example memory).
#[derive(Debug)]
pub(crate) enum ConvertError {
    User(String),
    Vm(mlua::Error),
}

impl From<mlua::Error> for ConvertError {
    fn from(e: mlua::Error) -> Self {
        ConvertError::Vm(e)
    }
}

struct Converter {
    on_path: HashSet<usize>,
    produced: usize,
}

/// Converts a Lua value to an hb value.
pub(crate) fn lua_to_value(v: &LuaValue) -> Result<Value, ConvertError> {
    let mut c = Converter {
        on_path: HashSet::new(),
        produced: 0,
    };
    c.value(v, 0)
}

/// Converts a Lua table to a message (a sequence is refused: a state or a
/// sent message must be a message).
pub(crate) fn lua_to_message(v: &LuaValue, what: &str) -> Result<Message, ConvertError> {
    match lua_to_value(v)? {
        Value::Message(m) => Ok(m),
        other => Err(ConvertError::User(format!(
            "{what} must be a table with named keys, not a {}",
            if matches!(other, Value::List(_)) {
                "sequence"
            } else {
                other.type_name()
            }
        ))),
    }
}

impl Converter {
    fn value(&mut self, v: &LuaValue, depth: usize) -> Result<Value, ConvertError> {
        self.produced += 1;
        if self.produced > MAX_VALUES {
            return Err(ConvertError::User(format!(
                "value too large to convert (more than {MAX_VALUES} values)"
            )));
        }
        match v {
            LuaValue::Boolean(b) => Ok(Value::Bool(*b)),
            LuaValue::Integer(i) => Ok(Value::Int(*i)),
            LuaValue::Number(f) => Value::float(*f).map_err(|_| {
                ConvertError::User("cannot convert a non-finite number (nan or inf)".to_string())
            }),
            LuaValue::String(s) => {
                let b = s.as_bytes();
                match std::str::from_utf8(&b) {
                    Ok(text) => Ok(Value::Text(text.to_string())),
                    Err(_) => Ok(Value::Bytes(b.to_vec())),
                }
            }
            LuaValue::Table(t) => self.table(t, depth),
            other => Err(ConvertError::User(format!(
                "cannot convert a value of type {}",
                other.type_name()
            ))),
        }
    }

    fn table(&mut self, t: &Table, depth: usize) -> Result<Value, ConvertError> {
        if depth >= MAX_DEPTH {
            return Err(ConvertError::User(format!(
                "cannot convert a table nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let id = t.to_pointer() as usize;
        if !self.on_path.insert(id) {
            return Err(ConvertError::User(
                "cannot convert a table that contains itself (a cycle)".to_string(),
            ));
        }
        let out = self.table_inner(t, depth);
        self.on_path.remove(&id);
        out
    }

    fn table_inner(&mut self, t: &Table, depth: usize) -> Result<Value, ConvertError> {
        let entries = match sorted_entries(t)? {
            Ok(e) => e,
            Err(_) => {
                // Name the first unorderable key type, as pairs would.
                let mut bad: Option<&'static str> = None;
                for pair in t.pairs::<LuaValue, LuaValue>() {
                    let (k, _) = pair?;
                    if let Err(name) = OrderedKey::of(&k) {
                        bad = Some(match bad {
                            Some(b) if b <= name => b,
                            _ => name,
                        });
                    }
                }
                return Err(ConvertError::User(format!(
                    "cannot convert a table key of type {}",
                    bad.unwrap_or("unknown")
                )));
            }
        };
        if entries.is_empty() {
            return Ok(Value::Message(Message::new()));
        }
        let is_sequence = entries
            .iter()
            .enumerate()
            .all(|(i, (k, _, _))| matches!(k, OrderedKey::Int(n) if *n == i as i64 + 1));
        if is_sequence {
            let mut items = Vec::with_capacity(entries.len());
            for (_, _, v) in &entries {
                items.push(self.value(v, depth + 1)?);
            }
            return Ok(Value::List(items));
        }
        let mut m = Message::new();
        for (k, _, v) in &entries {
            let key = match k {
                OrderedKey::Int(i) => i.to_string(),
                OrderedKey::Str(s) => match std::str::from_utf8(s) {
                    Ok(s) => s.to_string(),
                    Err(_) => {
                        return Err(ConvertError::User(
                            "cannot convert a table key that is not valid UTF-8".to_string(),
                        ))
                    }
                },
                OrderedKey::Float(_) => {
                    return Err(ConvertError::User(
                        "cannot convert a table key of type float".to_string(),
                    ))
                }
                OrderedKey::Bool(_) => {
                    return Err(ConvertError::User(
                        "cannot convert a table key of type boolean".to_string(),
                    ))
                }
            };
            let key = Key::new(&key)
                .map_err(|e| ConvertError::User(format!("cannot convert table key: {e}")))?;
            let value = self.value(v, depth + 1)?;
            if m.get_key(&key).is_some()
                || (key.is_private() && m.iter_all().any(|(k, _)| k == &key))
            {
                return Err(ConvertError::User(format!(
                    "cannot convert a table with two keys that normalise to {:?}",
                    key.as_str()
                )));
            }
            m.insert_key(key, value);
        }
        Ok(Value::Message(m))
    }
}
