//! Pure message operations behind `message@1.0` (SPEC §2.8, §4.3).

use crate::json::Update;
use crate::key::Key;
use crate::message::{Message, COMMITMENTS};
use crate::value::Value;

/// How `set` combines a new value with an existing one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetMode {
    /// Nested messages merge recursively; anything else replaces.
    #[default]
    DeepMerge,
    /// Every value replaces (`set-mode: explicit`).
    Explicit,
}

/// Deep merge: nested messages merge recursively, anything else replaces.
pub fn deep_merge(base: &Message, update: &Message) -> Message {
    let mut out = base.clone();
    for (k, v) in update.iter() {
        let merged = match (out.get(k.as_str()), v) {
            (Some(Value::Message(old)), Value::Message(new)) => {
                Value::Message(deep_merge(old, new))
            }
            _ => v.clone(),
        };
        out.insert_key(k.clone(), merged);
    }
    out
}

impl Message {
    /// Applies updates (SPEC §4.3 `set`, rules 2–5). Keys with `/` address
    /// nested messages (`a/b`); intermediate levels are created as needed.
    /// Private data is preserved: an update whose path has a private
    /// segment (`priv`, `a/priv-x`) is ignored. Commitments are dropped only
    /// if a key covered by one of them changes or is removed.
    pub fn set(&self, updates: &[(Key, Update)], mode: SetMode) -> Message {
        let mut out = self.clone();
        for (key, update) in updates {
            let segments: Vec<&str> = key.as_str().split('/').filter(|s| !s.is_empty()).collect();
            let private = segments
                .iter()
                .any(|s| Key::new(s).is_ok_and(|k| k.is_private()));
            if segments.is_empty() || private {
                continue;
            }
            set_at(&mut out, &segments, update, mode);
        }
        if self.is_signed() {
            let covered = self.covered_keys();
            let changed = updates.iter().any(|(key, _)| {
                let top = key
                    .as_str()
                    .split('/')
                    .find(|s| !s.is_empty())
                    .unwrap_or("");
                let covered = covered
                    .as_ref()
                    .is_none_or(|c| c.iter().any(|k| k.as_str() == top));
                covered && self.get(top) != out.get(top)
            });
            if changed {
                out.remove(COMMITMENTS);
            }
        }
        out
    }

    /// Removes `keys` (top-level). Commitments are left as they are, so
    /// removing a committed key makes `verify` false.
    pub fn without_keys(&self, keys: &[Key]) -> Message {
        let mut out = self.clone();
        for k in keys {
            out.remove(k.as_str());
        }
        out
    }

    /// The union of every commitment's committed keys; `None` when the
    /// commitments cannot be read (then every key counts as covered).
    fn covered_keys(&self) -> Option<Vec<Key>> {
        let commitments = self.commitments()?;
        let mut all = Vec::new();
        for (_, c) in commitments.iter() {
            for k in c.as_message()?.get("committed")?.as_list()? {
                all.push(Key::new(k.as_text()?).ok()?);
            }
        }
        Some(all)
    }
}

fn set_at(m: &mut Message, segments: &[&str], update: &Update, mode: SetMode) {
    let Ok(key) = Key::new(segments[0]) else {
        return;
    };
    if segments.len() == 1 {
        match update {
            Update::Unset => {
                m.remove(key.as_str());
            }
            Update::Value(v) => {
                let merged = match (mode, m.get(key.as_str()), v) {
                    (SetMode::DeepMerge, Some(Value::Message(old)), Value::Message(new)) => {
                        Value::Message(deep_merge(old, new))
                    }
                    _ => v.clone(),
                };
                m.insert_key(key, merged);
            }
        }
        return;
    }
    match m.get_mut(key.as_str()) {
        Some(Value::Message(inner)) => set_at(inner, &segments[1..], update, mode),
        _ if *update == Update::Unset => {} // nothing to remove below a non-message
        _ => {
            let mut inner = Message::new();
            set_at(&mut inner, &segments[1..], update, mode);
            m.insert_key(key, inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{msg, NodeKey};

    fn k(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    #[test]
    fn set_deep_merges_messages() {
        let base = msg! { "a" => msg! { "x" => 1, "y" => 2 }, "b" => 1 };
        let out = base.set(
            &[(k("a"), Update::Value(msg! { "y" => 3, "z" => 4 }.into()))],
            SetMode::DeepMerge,
        );
        assert_eq!(
            out.get_message("a").unwrap(),
            &msg! { "x" => 1, "y" => 3, "z" => 4 }
        );
        let explicit = base.set(
            &[(k("a"), Update::Value(msg! { "y" => 3 }.into()))],
            SetMode::Explicit,
        );
        assert_eq!(explicit.get_message("a").unwrap(), &msg! { "y" => 3 });
    }

    #[test]
    fn unset_removes_and_nested_unset_keeps_the_parent() {
        let base = msg! { "a" => msg! { "b" => 1 }, "c" => 2 };
        let out = base.set(
            &[(k("c"), Update::Unset), (k("a/b"), Update::Unset)],
            SetMode::DeepMerge,
        );
        assert_eq!(out, msg! { "a" => Message::new() });
    }

    #[test]
    fn deep_paths_create_intermediate_levels() {
        let out = Message::new().set(
            &[(k("a/b/c"), Update::Value(Value::Int(1)))],
            SetMode::DeepMerge,
        );
        assert_eq!(out.get_path("a/b/c"), Some(&Value::Int(1)));
    }

    #[test]
    fn private_data_is_preserved() {
        let mut base = msg! { "a" => 1 };
        base.set_private("priv", msg! { "hashpath" => "h" })
            .unwrap();
        let out = base.set(
            &[(k("a"), Update::Value(Value::Int(2)))],
            SetMode::DeepMerge,
        );
        assert!(out.get_private("priv").is_some());
    }

    #[test]
    fn updates_to_private_paths_are_ignored() {
        let mut base = msg! { "a" => msg! { "b" => 1 } };
        base.set_private("priv", msg! { "hashpath" => "h" })
            .unwrap();
        let out = base.set(
            &[
                (
                    k("priv"),
                    Update::Value(msg! { "hashpath" => "forged" }.into()),
                ),
                (k("priv/hashpath"), Update::Unset),
                (k("a/private"), Update::Value(Value::Int(1))),
                (k("c"), Update::Value(Value::Int(2))),
            ],
            SetMode::DeepMerge,
        );
        assert_eq!(out.get_private("priv"), base.get_private("priv"));
        assert_eq!(out.get_message("a"), base.get_message("a"));
        assert_eq!(out.get_int("c"), Some(2));
    }

    #[test]
    fn commitments_drop_only_when_a_committed_key_changes() {
        let key = NodeKey::from_seed(&[7; 32]);
        let signed = msg! { "a" => 1 }.commit(&key, None).unwrap();
        let added = signed.set(
            &[(k("b"), Update::Value(Value::Int(2)))],
            SetMode::DeepMerge,
        );
        assert!(added.commitments().is_some());
        let same = signed.set(
            &[(k("a"), Update::Value(Value::Int(1)))],
            SetMode::DeepMerge,
        );
        assert!(same.commitments().is_some());
        let changed = signed.set(
            &[(k("a"), Update::Value(Value::Int(5)))],
            SetMode::DeepMerge,
        );
        assert!(changed.commitments().is_none());
        let removed = signed.set(&[(k("a"), Update::Unset)], SetMode::DeepMerge);
        assert!(removed.commitments().is_none());
    }
}
