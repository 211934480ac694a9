//! The message: an immutable-by-convention map from keys to values (SPEC §2.1–2.3).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use crate::error::MessageError;
use crate::key::{normalise_for_lookup, Key};
use crate::value::Value;

/// The key under which commitments live.
pub const COMMITMENTS: &str = "commitments";

/// A message: a map from normalised keys to values.
///
/// Private keys (`priv…`) are held for the runtime but hidden: [`get`],
/// [`keys`] and [`iter`] skip them, and no encoding ever writes them. Use
/// [`get_private`] and [`set_private`] for runtime data such as
/// `priv/hashpath`.
///
/// Entries are kept in canonical order (unsigned bytes of the key), so
/// iteration order is the encoding order.
///
/// [`get`]: Message::get
/// [`keys`]: Message::keys
/// [`iter`]: Message::iter
/// [`get_private`]: Message::get_private
/// [`set_private`]: Message::set_private
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    entries: BTreeMap<Key, Value>,
}

impl Message {
    /// An empty message.
    pub fn new() -> Message {
        Message::default()
    }

    /// Builds a message from pairs, normalising keys and rejecting pairs
    /// whose keys normalise alike ([`MessageError::DuplicateKey`]).
    pub fn from_pairs<K, V, I>(pairs: I) -> Result<Message, MessageError>
    where
        K: AsRef<str>,
        V: Into<Value>,
        I: IntoIterator<Item = (K, V)>,
    {
        let mut m = Message::new();
        for (k, v) in pairs {
            m.insert_new(k.as_ref(), v)?;
        }
        Ok(m)
    }

    /// Builder form of [`insert`](Message::insert).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Result<Message, MessageError> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// Inserts or replaces `key`, returning the previous value.
    pub fn insert(
        &mut self,
        key: &str,
        value: impl Into<Value>,
    ) -> Result<Option<Value>, MessageError> {
        Ok(self.entries.insert(Key::new(key)?, value.into()))
    }

    /// Inserts under an already normalised key.
    pub fn insert_key(&mut self, key: Key, value: impl Into<Value>) -> Option<Value> {
        self.entries.insert(key, value.into())
    }

    /// Inserts `key`, failing with [`MessageError::DuplicateKey`] if a key that
    /// normalises alike is present. Decoders use this.
    pub fn insert_new(&mut self, key: &str, value: impl Into<Value>) -> Result<(), MessageError> {
        let key = Key::new(key)?;
        if self.entries.contains_key(&key) {
            return Err(MessageError::DuplicateKey(key.as_str().to_string()));
        }
        self.entries.insert(key, value.into());
        Ok(())
    }

    /// [`insert_new`](Message::insert_new) for an already normalised key.
    pub(crate) fn insert_new_key(&mut self, key: Key, value: Value) -> Result<(), MessageError> {
        match self.entries.entry(key) {
            Entry::Occupied(e) => Err(MessageError::DuplicateKey(e.key().as_str().to_string())),
            Entry::Vacant(e) => {
                e.insert(value);
                Ok(())
            }
        }
    }

    /// Looks `key` up after normalising it. Private and missing keys give
    /// `None`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let k = normalise_for_lookup(key)?;
        if crate::key::is_private_text(&k) {
            return None;
        }
        self.entries.get(k.as_ref())
    }

    /// Looks up an already normalised key, skipping normalisation (hot
    /// paths that hold [`Key`]s). Private and missing keys give `None`.
    pub fn get_key(&self, key: &Key) -> Option<&Value> {
        if key.is_private() {
            return None;
        }
        self.entries.get(key)
    }

    /// Mutable access to a non-private value by an already normalised key
    /// (the [`get_key`](Message::get_key) of [`get_mut`](Message::get_mut)).
    pub fn get_key_mut(&mut self, key: &Key) -> Option<&mut Value> {
        if key.is_private() {
            return None;
        }
        self.entries.get_mut(key)
    }

    /// Looks up an already normalised key, private ones included (the
    /// [`get_key`](Message::get_key) of [`get_private`](Message::get_private)).
    pub fn get_private_key(&self, key: &Key) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Mutable access by an already normalised key, private ones included
    /// (runtime data such as `priv/hashpath`, updated in place).
    pub fn get_private_key_mut(&mut self, key: &Key) -> Option<&mut Value> {
        self.entries.get_mut(key)
    }

    /// Removes an already normalised key (private keys too), returning its
    /// value (the [`get_key`](Message::get_key) of
    /// [`remove`](Message::remove)).
    pub fn remove_key(&mut self, key: &Key) -> Option<Value> {
        self.entries.remove(key)
    }

    /// Looks up a key including private ones (runtime access only).
    pub fn get_private(&self, key: &str) -> Option<&Value> {
        let k = normalise_for_lookup(key)?;
        self.entries.get(k.as_ref())
    }

    /// Sets a key including private ones (runtime data such as `priv`).
    pub fn set_private(
        &mut self,
        key: &str,
        value: impl Into<Value>,
    ) -> Result<Option<Value>, MessageError> {
        self.insert(key, value)
    }

    /// Text at `key`, if it is text.
    pub fn get_text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_text)
    }

    /// Integer at `key`, if it is an integer.
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_int)
    }

    /// Nested message at `key`, if it is one.
    pub fn get_message(&self, key: &str) -> Option<&Message> {
        self.get(key).and_then(Value::as_message)
    }

    /// Removes `key` (private keys too), returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let k = normalise_for_lookup(key)?;
        self.entries.remove(k.as_ref())
    }

    /// Whether a non-private `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The non-private keys, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &Key> + '_ {
        self.entries.keys().filter(|k| !k.is_private())
    }

    /// The non-private entries, ascending by key.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> + '_ {
        self.entries.iter().filter(|(k, _)| !k.is_private())
    }

    /// Every entry, private ones included (runtime use only).
    pub fn iter_all(&self) -> impl Iterator<Item = (&Key, &Value)> + '_ {
        self.entries.iter()
    }

    /// Mutable access to a non-private value.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let k = normalise_for_lookup(key)?;
        if crate::key::is_private_text(&k) {
            return None;
        }
        self.entries.get_mut(k.as_ref())
    }

    /// Number of non-private keys.
    pub fn len(&self) -> usize {
        self.keys().count()
    }

    /// Whether the message has no non-private keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nesting depth: an empty message is 1, each nested list or message adds one.
    pub fn depth(&self) -> usize {
        1 + self.iter().map(|(_, v)| v.depth()).max().unwrap_or(0)
    }

    /// Whether [`depth`](Message::depth) is at most `limit`, found without
    /// recursing deeper than `limit` levels (safe on any message).
    pub fn depth_within(&self, limit: usize) -> bool {
        fn value_within(v: &Value, levels: usize) -> bool {
            match v {
                Value::List(l) => levels > 0 && l.iter().all(|i| value_within(i, levels - 1)),
                Value::Message(m) => m.depth_within(levels),
                _ => true,
            }
        }
        limit > 0 && self.iter().all(|(_, v)| value_within(v, limit - 1))
    }

    /// A copy with every private key removed, at every depth.
    pub fn without_private(&self) -> Message {
        fn strip(v: &Value) -> Value {
            match v {
                Value::Message(m) => Value::Message(m.without_private()),
                Value::List(l) => Value::List(l.iter().map(strip).collect()),
                other => other.clone(),
            }
        }
        Message {
            entries: self.iter().map(|(k, v)| (k.clone(), strip(v))).collect(),
        }
    }

    /// The commitments map, if the message holds at least one commitment.
    /// `None` when `commitments` is absent, is an empty message (which
    /// means unsigned, SPEC §2.6) or is not a message at all; use
    /// [`is_signed`](Message::is_signed) to decide whether a message is
    /// signed.
    pub fn commitments(&self) -> Option<&Message> {
        self.get_message(COMMITMENTS).filter(|m| !m.is_empty())
    }

    /// Whether the message is signed: its top-level `commitments` holds at
    /// least one commitment. An absent or empty `commitments` map means
    /// unsigned. A `commitments` value that is not a message claims
    /// signatures it cannot hold: it counts as signed, so that a caller
    /// gating on this never skips the verification (or
    /// [`with_only_committed`](Message::with_only_committed)) that rejects it.
    pub fn is_signed(&self) -> bool {
        match self.get(COMMITMENTS) {
            None => false,
            Some(Value::Message(m)) => !m.is_empty(),
            Some(_) => true,
        }
    }

    /// Reads a `/`-separated path (`a/b/1`). Lists are addressed as
    /// messages keyed `"1"`, `"2"`, …. Private segments give `None`.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let first = segments.next()?;
        let mut current = self.get(first)?;
        for seg in segments {
            current = child(current, seg)?;
        }
        Some(current)
    }

    /// Whether [`get_path`](Message::get_path) finds a value.
    pub fn has_path(&self, path: &str) -> bool {
        self.get_path(path).is_some()
    }
}

/// Steps from `value` into `segment`: a message key, or a 1-based list index.
pub(crate) fn child<'a>(value: &'a Value, segment: &str) -> Option<&'a Value> {
    match value {
        Value::Message(m) => m.get(segment),
        Value::List(l) => list_index(segment).and_then(|i| l.get(i)),
        _ => None,
    }
}

/// Parses a 1-based list key (`"1"` → 0). Leading zeros are not list keys.
pub fn list_index(segment: &str) -> Option<usize> {
    if segment.starts_with('0') || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse::<usize>().ok()?.checked_sub(1)
}

impl FromIterator<(Key, Value)> for Message {
    fn from_iter<I: IntoIterator<Item = (Key, Value)>>(iter: I) -> Message {
        Message {
            entries: iter.into_iter().collect(),
        }
    }
}

impl IntoIterator for Message {
    type Item = (Key, Value);
    type IntoIter = std::collections::btree_map::IntoIter<Key, Value>;
    /// Every entry, private ones included.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// Builds a [`Message`] from `key => value` pairs, panicking on a bad key.
/// For tests and examples with literal keys only.
#[macro_export]
macro_rules! msg {
    () => { $crate::Message::new() };
    ($($k:expr => $v:expr),+ $(,)?) => {{
        let mut m = $crate::Message::new();
        $( m.insert_new($k, $v).expect("literal keys in msg! are valid and distinct"); )+
        m
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        let m = Message::from_pairs([("Name", "x")]).unwrap();
        assert_eq!(m.get("NAME"), Some(&Value::from("x")));
        assert_eq!(m.keys().next().unwrap().as_str(), "name");
    }

    #[test]
    fn get_key_skips_normalisation_but_not_privacy() {
        let mut m = msg! { "Name" => "x" };
        m.set_private("priv", 1).unwrap();
        assert_eq!(
            m.get_key(&Key::new("NAME").unwrap()),
            Some(&Value::from("x"))
        );
        assert_eq!(m.get_key(&Key::new("priv").unwrap()), None);
        assert_eq!(m.get_key(&Key::new("other").unwrap()), None);
    }

    #[test]
    fn key_accessors_match_their_str_forms() {
        let mut m = msg! { "Name" => "x", "n" => 1 };
        m.set_private("priv", msg! { "hashpath" => "h" }).unwrap();
        let name = Key::new("name").unwrap();
        let private = Key::new("priv").unwrap();
        // Non-private access hides `priv`; the private forms reach it.
        assert!(m.get_key_mut(&private).is_none());
        assert_eq!(m.get_private_key(&private), m.get_private("priv"));
        *m.get_key_mut(&name).unwrap() = Value::from("y");
        assert_eq!(m.get("NAME"), Some(&Value::from("y")));
        if let Some(Value::Message(p)) = m.get_private_key_mut(&private) {
            p.insert("hashpath", "h2").unwrap();
        }
        assert_eq!(
            m.get_private("priv").and_then(Value::as_message),
            Some(&msg! { "hashpath" => "h2" })
        );
        assert_eq!(
            m.remove_key(&private),
            Some(Value::from(msg! { "hashpath" => "h2" }))
        );
        assert_eq!(m.remove_key(&private), None);
        assert_eq!(m.remove_key(&name), Some(Value::from("y")));
        assert_eq!(m, msg! { "n" => 1 });
    }

    #[test]
    fn colliding_keys_are_rejected() {
        assert_eq!(
            Message::from_pairs([("a", 1), ("A", 2)]),
            Err(MessageError::DuplicateKey("a".into()))
        );
    }

    #[test]
    fn private_keys_are_hidden() {
        let mut m = msg! { "a" => 1 };
        m.set_private("priv", msg! { "hashpath" => "x" }).unwrap();
        m.set_private("Private-X", 2).unwrap();
        assert_eq!(m.get("priv"), None);
        assert_eq!(m.get("private-x"), None);
        assert!(m.get_private("priv").is_some());
        assert_eq!(m.keys().map(Key::as_str).collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(m.len(), 1);
        assert_eq!(m.without_private(), msg! { "a" => 1 });
    }

    #[test]
    fn an_id_shaped_key_starting_with_priv_is_an_ordinary_key() {
        let id = format!("priv{}", "Ab-_0".repeat(8).get(..39).unwrap());
        let mut m = msg! { "a" => 1 };
        m.insert(&id, 2).unwrap();
        assert_eq!(m.get(&id), Some(&Value::from(2)));
        assert!(m.get_mut(&id).is_some());
        assert_eq!(m.len(), 2);
        assert_eq!(m.without_private(), m);
    }

    #[test]
    fn paths_address_lists_from_one() {
        let m = msg! {
            "results" => msg! { "outbox" => Value::List(vec![Value::from("a"), Value::from("b")]) }
        };
        assert_eq!(m.get_path("results/outbox/1"), Some(&Value::from("a")));
        assert_eq!(m.get_path("Results/Outbox/2"), Some(&Value::from("b")));
        assert_eq!(m.get_path("results/outbox/0"), None);
        assert_eq!(m.get_path("results/outbox/3"), None);
        assert_eq!(m.get_path("results/outbox/01"), None);
    }

    #[test]
    fn depth_counts_levels() {
        assert_eq!(Message::new().depth(), 1);
        let m = msg! { "a" => msg! { "b" => Value::List(vec![]) } };
        assert_eq!(m.depth(), 3);
    }

    #[test]
    fn depth_within_agrees_with_depth() {
        let list = msg! { "a" => msg! { "b" => Value::List(vec![Value::List(vec![])]) } };
        let nested = msg! { "x" => 1, "a" => msg! { "b" => msg! { "c" => true } } };
        for m in [Message::new(), list, nested] {
            for limit in 0..6 {
                assert_eq!(m.depth_within(limit), m.depth() <= limit, "{m:?} {limit}");
            }
        }
    }
}
