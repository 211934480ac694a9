//! The deterministic key order of `pairs`, `next` and snapshots (SPEC
//! §6.10): integers ascending, then floats ascending, then strings by
//! bytes, then `false`, then `true`. Keys of any other type cannot be
//! ordered.

use std::cmp::Ordering;

use mlua::{Table, Value};

/// A table key in the deterministic order.
#[derive(Clone, Debug)]
pub(crate) enum OrderedKey {
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Bool(bool),
}

impl OrderedKey {
    /// The key, or the name of its unorderable type.
    pub(crate) fn of(v: &Value) -> Result<OrderedKey, &'static str> {
        match v {
            Value::Integer(i) => Ok(OrderedKey::Int(*i)),
            Value::Number(f) => Ok(OrderedKey::Float(*f)),
            Value::String(s) => Ok(OrderedKey::Str(s.as_bytes().to_vec())),
            Value::Boolean(b) => Ok(OrderedKey::Bool(*b)),
            other => Err(other.type_name()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            OrderedKey::Int(_) => 0,
            OrderedKey::Float(_) => 1,
            OrderedKey::Str(_) => 2,
            OrderedKey::Bool(_) => 3,
        }
    }
}

impl PartialEq for OrderedKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for OrderedKey {}

impl PartialOrd for OrderedKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (OrderedKey::Int(a), OrderedKey::Int(b)) => a.cmp(b),
            // Table keys are never NaN (Lua refuses them), so total_cmp is
            // the numeric order here.
            (OrderedKey::Float(a), OrderedKey::Float(b)) => a.total_cmp(b),
            (OrderedKey::Str(a), OrderedKey::Str(b)) => a.cmp(b),
            (OrderedKey::Bool(a), OrderedKey::Bool(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// One table entry with its ordering key.
pub(crate) type Entry = (OrderedKey, Value, Value);

/// The message for a table holding a key of an unorderable type.
pub(crate) fn unorderable(type_name: &str) -> String {
    format!("cannot iterate a table with a key of type {type_name}: only integer, float, string and boolean keys have a deterministic order")
}

/// The table's entries (raw, ignoring metatables) in the deterministic
/// order, or the message for an unorderable key. When several key types
/// are unorderable, the first in a fixed type order is named, so the
/// message does not depend on the table's layout.
pub(crate) fn sorted_entries(t: &Table) -> mlua::Result<Result<Vec<Entry>, String>> {
    let mut entries = Vec::new();
    let mut bad: Option<&'static str> = None;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        match OrderedKey::of(&k) {
            Ok(ok) => entries.push((ok, k, v)),
            Err(name) => bad = Some(first_type(bad, name)),
        }
    }
    if let Some(name) = bad {
        return Ok(Err(unorderable(name)));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Ok(entries))
}

fn first_type(current: Option<&'static str>, new: &'static str) -> &'static str {
    match current {
        Some(c) if c <= new => c,
        _ => new,
    }
}

/// The key after `after` (or the first key when `after` is nil) in the
/// deterministic order, with its value; `None` at the end. `after` need
/// not be present any more, so fields may be cleared while traversing (Lua
/// allows that for the current key; here any key may be cleared).
pub(crate) fn next_entry(
    t: &Table,
    after: &Value,
) -> mlua::Result<Result<Option<(Value, Value)>, String>> {
    let bound = match after {
        Value::Nil => None,
        v => match OrderedKey::of(v) {
            Ok(k) => Some(k),
            Err(name) => return Ok(Err(unorderable(name))),
        },
    };
    let mut best: Option<(OrderedKey, Value, Value)> = None;
    let mut bad: Option<&'static str> = None;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let ok = match OrderedKey::of(&k) {
            Ok(ok) => ok,
            Err(name) => {
                bad = Some(first_type(bad, name));
                continue;
            }
        };
        if let Some(b) = &bound {
            if ok <= *b {
                continue;
            }
        }
        if best.as_ref().is_none_or(|(bk, _, _)| ok < *bk) {
            best = Some((ok, k, v));
        }
    }
    if let Some(name) = bad {
        return Ok(Err(unorderable(name)));
    }
    Ok(Ok(best.map(|(_, k, v)| (k, v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_ints_floats_strings_false_true() {
        let mut keys = [
            OrderedKey::Bool(true),
            OrderedKey::Str(b"b".to_vec()),
            OrderedKey::Float(0.5),
            OrderedKey::Int(10),
            OrderedKey::Bool(false),
            OrderedKey::Str(b"a".to_vec()),
            OrderedKey::Float(-2.5),
            OrderedKey::Int(-3),
        ];
        keys.sort();
        let shown: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
        assert_eq!(
            shown,
            vec![
                "Int(-3)",
                "Int(10)",
                "Float(-2.5)",
                "Float(0.5)",
                "Str([97])",
                "Str([98])",
                "Bool(false)",
                "Bool(true)"
            ]
        );
    }
}
