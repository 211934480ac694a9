//! `message@1.0`: the device of plain messages and the fallback of every
//! other device (SPEC §4.3).
//!
//! Reserved keys: `id`, `commitments`, `committers`, `keys`, `path`, `set`,
//! `set_path`, `remove`, `verify`, `commit`, `committed`. Every other key is a
//! field read (`get`). The operations are hb-message's pure ones; this module
//! reads their parameters from the request.
//!
//! **Unset in requests.** `Update::Unset` is not a value, so a `set` request
//! carries the keys to remove as a private list, `priv/unset` (runtime data,
//! never on the wire). [`set_request`] builds such requests from updates and
//! [`set_updates`] reads them back.

use std::borrow::Cow;

use async_trait::async_trait;
use hb_message::hashpath::hashpath_of_value;
use hb_message::{
    CommitmentDevice, IdSelector, Key, Message, MessageError, SetMode, Update, Value, COMMITMENTS,
};

use crate::context::Context;
use crate::device::{Device, DeviceInfo, Outcome};
use crate::error::ResolveError;

/// The device's name.
pub const NAME: &str = "message@1.0";

/// The keys `message@1.0` implements as functions; every other key is `get`.
pub const RESERVED: [&str; 11] = [
    "id",
    "commitments",
    "committers",
    "keys",
    "path",
    "set",
    "set_path",
    "remove",
    "verify",
    "commit",
    "committed",
];

/// The request key choosing `set`'s merge (`explicit` for a shallow one).
pub const SET_MODE: &str = "set-mode";

/// The list, inside a request's `priv`, of keys a `set` request removes.
pub const UNSET: &str = "unset";

/// `message@1.0` as a [`Device`]. The engine calls it by reference instead
/// (no copy of the base), so this impl serves `resolve_as` and callers that
/// hold the device directly.
#[derive(Clone, Copy, Debug, Default)]
pub struct MessageDevice;

#[async_trait]
impl Device for MessageDevice {
    fn name(&self) -> &str {
        NAME
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(RESERVED).with_default()
    }

    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        dispatch(key, &base, request, ctx)
    }
}

/// Resolves `key` on a message base.
pub(crate) fn dispatch(
    key: &Key,
    base: &Message,
    request: &Message,
    ctx: &Context,
) -> Result<Outcome, ResolveError> {
    match key.as_str() {
        "keys" => Ok(Outcome::Raw(Value::List(
            base.keys().map(|k| Value::from(k.as_str())).collect(),
        ))),
        "path" => get(key, base),
        "commitments" => match base.get(COMMITMENTS) {
            Some(v) => Ok(Outcome::from_value(v.clone())),
            None => Err(ResolveError::not_found(key)),
        },
        "set" => set(base, request).map(Outcome::Ok),
        "set_path" => set_path(base, request).map(Outcome::Ok),
        "remove" => remove(base, request).map(Outcome::Ok),
        "id" => {
            let view = selected(base, request, "id")?;
            Ok(Outcome::Raw(Value::Text(view.id_all()?.to_human())))
        }
        "committers" => Ok(Outcome::Raw(Value::List(
            base.committers()?.into_iter().map(Value::from).collect(),
        ))),
        "commit" => commit(base, request, ctx).map(Outcome::Ok),
        "verify" => {
            let target = target(base, request, "verify")?;
            let view = selected(target, request, "verify")?;
            Ok(Outcome::Raw(Value::Bool(
                view.verify(&IdSelector::All)?.is_valid(),
            )))
        }
        "committed" => {
            let target = target(base, request, "committed")?;
            let view = selected(target, request, "committed")?;
            Ok(Outcome::Raw(Value::List(
                view.committed(&IdSelector::All)?
                    .into_iter()
                    .map(|k| Value::from(k.as_str()))
                    .collect(),
            )))
        }
        _ => get(key, base),
    }
}

/// Resolves `key` on a list base, which behaves as a message keyed `"1"`,
/// `"2"`, … (SPEC §2.2). `keys` lists those keys in order; `id` is the
/// list's HashPath.
pub(crate) fn dispatch_list(
    key: &Key,
    list: &Value,
    request: &Message,
    ctx: &Context,
) -> Result<Outcome, ResolveError> {
    let items = list.as_list().unwrap_or_default();
    match key.as_str() {
        "keys" => Ok(Outcome::Raw(Value::List(
            (1..=items.len() as u64)
                .map(|i| Value::from(i.to_string()))
                .collect(),
        ))),
        "id" => Ok(Outcome::Raw(Value::Text(hashpath_of_value(list)))),
        k => {
            if let Some(i) = hb_message::list_index(k) {
                return items
                    .get(i)
                    .map(|v| Outcome::from_value(v.clone()))
                    .ok_or_else(|| ResolveError::not_found(k));
            }
            let as_message: Message = items
                .iter()
                .enumerate()
                .map(|(i, v)| (Key::from_index(i as u64 + 1), v.clone()))
                .collect();
            dispatch(key, &as_message, request, ctx)
        }
    }
}

/// `get`: a private or missing key is not-found; otherwise the value.
fn get(key: &Key, base: &Message) -> Result<Outcome, ResolveError> {
    if key.is_private() {
        return Err(ResolveError::not_found(key));
    }
    base.get(key.as_str())
        .map(|v| Outcome::from_value(v.clone()))
        .ok_or_else(|| ResolveError::not_found(key))
}

/// Whether a request key is ignored by `set` (reserved, or `set-mode`),
/// judged by its first `/` segment.
fn ignored_by_set(key: &Key) -> bool {
    let head = key
        .as_str()
        .split('/')
        .find(|s| !s.is_empty())
        .unwrap_or("");
    head == SET_MODE || RESERVED.contains(&head) || key.is_private()
}

/// The updates a `set` request asks for: its non-reserved keys as values and
/// its `priv/unset` list as removals.
pub fn set_updates(request: &Message) -> Result<Vec<(Key, Update)>, ResolveError> {
    let mut updates: Vec<(Key, Update)> = request
        .iter()
        .filter(|(k, _)| !ignored_by_set(k))
        .map(|(k, v)| (k.clone(), Update::Value(v.clone())))
        .collect();
    let unset = request
        .get_private(hb_message::hashpath::PRIV)
        .and_then(Value::as_message)
        .and_then(|p| p.get(UNSET));
    match unset {
        None => {}
        Some(Value::List(keys)) => {
            for k in keys {
                let text = k.as_text().ok_or_else(|| {
                    ResolveError::invalid_input("set", "priv/unset holds a non-text key")
                })?;
                let key = Key::new(text)
                    .map_err(|e| ResolveError::invalid_input("set", e.to_string()))?;
                if !ignored_by_set(&key) {
                    updates.push((key, Update::Unset));
                }
            }
        }
        Some(_) => {
            return Err(ResolveError::invalid_input(
                "set",
                "priv/unset must be a list of keys",
            ))
        }
    }
    Ok(updates)
}

/// A `set` request for `updates` (values as keys, removals in
/// `priv/unset`), with `set-mode: explicit` for [`SetMode::Explicit`].
pub fn set_request(updates: &[(Key, Update)], mode: SetMode) -> Message {
    let mut request = Message::new();
    let mut unset = Vec::new();
    for (k, u) in updates {
        match u {
            Update::Value(v) => {
                request.insert_key(k.clone(), v.clone());
            }
            Update::Unset => unset.push(Value::from(k.as_str())),
        }
    }
    request.insert_key(crate::path::path_key(), "set");
    if mode == SetMode::Explicit {
        request.insert_key(key(SET_MODE), "explicit");
    }
    if !unset.is_empty() {
        let mut private = Message::new();
        private.insert_key(key(UNSET), Value::List(unset));
        request.insert_key(key(hb_message::hashpath::PRIV), private);
    }
    request
}

/// A `set_path` request setting `path` to `value`.
pub fn set_path_request(value: Value) -> Message {
    let mut request = Message::new();
    request.insert_key(crate::path::path_key(), "set_path");
    request.insert_key(key("value"), value);
    request
}

/// A `remove` request for `keys`.
pub fn remove_request(keys: &[Key]) -> Message {
    let mut request = Message::new();
    request.insert_key(crate::path::path_key(), "remove");
    request.insert_key(
        key("items"),
        Value::List(keys.iter().map(|k| Value::from(k.as_str())).collect()),
    );
    request
}

/// A key from a literal known to be valid.
fn key(literal: &str) -> Key {
    // Only called with short literal names that are valid keys.
    Key::new(literal).expect("literal key names are valid")
}

/// `set` (SPEC §4.3): reserved keys and `set-mode` ignored, Unset removes,
/// deep merge unless `set-mode: explicit`, `priv` preserved, commitments
/// dropped only when a committed key changes.
fn set(base: &Message, request: &Message) -> Result<Message, ResolveError> {
    let mode = match request.get(SET_MODE) {
        None => SetMode::DeepMerge,
        Some(Value::Text(m)) if m == "explicit" => SetMode::Explicit,
        Some(Value::Text(m)) if m == "deep" => SetMode::DeepMerge,
        Some(other) => {
            return Err(ResolveError::invalid_input(
                "set",
                format!("set-mode must be \"deep\" or \"explicit\", not {other:?}"),
            ))
        }
    };
    let updates = set_updates(request)?;
    Ok(base.set(&updates, mode))
}

/// `set_path`: request `{value: V}` sets `path` = V.
fn set_path(base: &Message, request: &Message) -> Result<Message, ResolveError> {
    let value = request
        .get("value")
        .ok_or_else(|| ResolveError::invalid_input("set_path", "the request has no `value`"))?;
    let mut out = base.clone();
    out.insert_key(crate::path::path_key(), value.clone());
    Ok(out)
}

/// `remove`: request `item: K` or `items: [K…]`. Commitments are kept.
fn remove(base: &Message, request: &Message) -> Result<Message, ResolveError> {
    let names: Vec<&Value> = match (request.get("item"), request.get("items")) {
        (Some(item), _) => vec![item],
        (None, Some(Value::List(items))) => items.iter().collect(),
        (None, Some(Value::Message(items))) => items.iter().map(|(_, v)| v).collect(),
        _ => {
            return Err(ResolveError::invalid_input(
                "remove",
                "the request needs `item` or a list `items`",
            ))
        }
    };
    let mut keys = Vec::with_capacity(names.len());
    for name in names {
        let key = match name {
            Value::Text(t) => Key::new(t),
            Value::Int(i) if *i >= 0 => Ok(Key::from_index(*i as u64)),
            other => {
                return Err(ResolveError::invalid_input(
                    "remove",
                    format!("a key to remove must be text, not {}", other.type_name()),
                ))
            }
        }
        .map_err(|e| ResolveError::invalid_input("remove", e.to_string()))?;
        if !key.is_private() {
            keys.push(key);
        }
    }
    Ok(base.without_keys(&keys))
}

/// The message `commit`, `verify` and `committed` act on: the request key
/// named by `target`, or the base for `"self"` (the default).
fn target<'a>(
    base: &'a Message,
    request: &'a Message,
    key: &str,
) -> Result<&'a Message, ResolveError> {
    match request.get("target") {
        None => Ok(base),
        Some(Value::Text(t)) if t == "self" => Ok(base),
        Some(Value::Text(t)) => match request.get(t) {
            Some(Value::Message(m)) => Ok(m),
            Some(other) => Err(ResolveError::invalid_input(
                key,
                format!("target {t:?} is a {}, not a message", other.type_name()),
            )),
            None => Err(ResolveError::invalid_input(
                key,
                format!("target {t:?} is not a key of the request"),
            )),
        },
        Some(other) => Err(ResolveError::invalid_input(
            key,
            format!("`target` must be text, not {}", other.type_name()),
        )),
    }
}

/// `commit`: signs the target with the node key, with the request's
/// `commitment-device` (`ed25519@1.0` by default, or `ans104@1.0`).
fn commit(base: &Message, request: &Message, ctx: &Context) -> Result<Message, ResolveError> {
    let target = target(base, request, "commit")?;
    let device = match request.get("commitment-device") {
        None => CommitmentDevice::Ed25519,
        Some(Value::Text(d)) => CommitmentDevice::from_name(d)?,
        Some(other) => {
            return Err(MessageError::UnsupportedCommitmentDevice(format!(
                "<{}>",
                other.type_name()
            ))
            .into())
        }
    };
    let committed = match request.get("committed") {
        None => None,
        Some(Value::List(items)) => Some(
            items
                .iter()
                .map(|v| match v {
                    Value::Text(t) => Key::new(t)
                        .map_err(|e| ResolveError::invalid_input("commit", e.to_string())),
                    other => Err(ResolveError::invalid_input(
                        "commit",
                        format!(
                            "`committed` entries must be text, not {}",
                            other.type_name()
                        ),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => {
            return Err(ResolveError::invalid_input(
                "commit",
                format!("`committed` must be a list, not {}", other.type_name()),
            ))
        }
    };
    Ok(target.commit_with(device, ctx.node_key(), committed.as_deref())?)
}

/// Text or a list of texts, as a list; `"all"` and `"none"` stay words.
enum Choice {
    All,
    None,
    Listed(Vec<String>),
}

fn choice(request: &Message, name: &str, key: &str) -> Result<Option<Choice>, ResolveError> {
    Ok(match request.get(name) {
        None => None,
        Some(Value::Text(t)) if t == "all" => Some(Choice::All),
        Some(Value::Text(t)) if t == "none" => Some(Choice::None),
        Some(Value::Text(t)) => Some(Choice::Listed(vec![t.clone()])),
        Some(Value::List(items)) => Some(Choice::Listed(
            items
                .iter()
                .map(|v| {
                    v.as_text().map(str::to_string).ok_or_else(|| {
                        ResolveError::invalid_input(key, format!("`{name}` entries must be text"))
                    })
                })
                .collect::<Result<_, _>>()?,
        )),
        Some(other) => {
            return Err(ResolveError::invalid_input(
                key,
                format!(
                    "`{name}` must be \"all\", \"none\" or a list, not {}",
                    other.type_name()
                ),
            ))
        }
    })
}

/// The message restricted to the commitments the request selects: by
/// `committers` (`"all"`, `"none"` or addresses) and/or `commitments`
/// (`"all"`, `"none"` or commitment IDs; IDs the message lacks are ignored).
/// Without either, every commitment. A listed committer without a
/// commitment gives `RequestedCommittersNotFound`.
fn selected<'a>(
    m: &'a Message,
    request: &Message,
    key: &str,
) -> Result<Cow<'a, Message>, ResolveError> {
    let by_committer = choice(request, "committers", key)?;
    let by_id = choice(request, COMMITMENTS, key)?;
    if by_committer.is_none() && by_id.is_none() {
        return Ok(Cow::Borrowed(m));
    }
    let commitments = match m.get(COMMITMENTS) {
        None => return Ok(Cow::Borrowed(m)),
        Some(Value::Message(c)) => c,
        Some(_) => {
            return Err(MessageError::InvalidCommitment {
                id: "-".into(),
                reason: "`commitments` is not a message".into(),
            }
            .into())
        }
    };
    let committer_of = |body: &Value| {
        body.as_message()
            .and_then(|b| b.get_text("committer"))
            .map(str::to_string)
    };
    let mut keep: Vec<&Key> = Vec::new();
    match &by_committer {
        Some(Choice::All) => keep.extend(commitments.keys()),
        Some(Choice::Listed(addresses)) => {
            let missing: Vec<String> = addresses
                .iter()
                .filter(|a| {
                    !commitments
                        .iter()
                        .any(|(_, body)| committer_of(body).as_deref() == Some(a.as_str()))
                })
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(MessageError::RequestedCommittersNotFound(missing).into());
            }
            keep.extend(commitments.iter().filter_map(|(id, body)| {
                committer_of(body)
                    .is_some_and(|c| addresses.contains(&c))
                    .then_some(id)
            }));
        }
        Some(Choice::None) | None => {}
    }
    match &by_id {
        Some(Choice::All) => keep.extend(commitments.keys()),
        Some(Choice::Listed(ids)) => keep.extend(
            commitments
                .keys()
                .filter(|id| ids.iter().any(|i| i == id.as_str())),
        ),
        Some(Choice::None) | None => {}
    }
    let chosen: Message = commitments
        .iter()
        .filter(|(id, _)| keep.contains(id))
        .map(|(id, body)| (id.clone(), body.clone()))
        .collect();
    let mut view = m.clone();
    if chosen.is_empty() {
        view.remove(COMMITMENTS);
    } else {
        view.insert_key(key_commitments(), chosen);
    }
    Ok(Cow::Owned(view))
}

fn key_commitments() -> Key {
    key(COMMITMENTS)
}

/// The sum of commitment IDs (exposed for tests of `id` selection).
#[cfg(test)]
fn sum_of(ids: &[&str]) -> String {
    use hb_message::Id;
    let parsed: Vec<Id> = ids.iter().map(|i| Id::parse(i).unwrap()).collect();
    Id::sum(&parsed).to_human()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, NodeKey};

    #[test]
    fn set_request_round_trips_values_and_unsets() {
        let updates = vec![
            (Key::new("a").unwrap(), Update::Value(Value::Int(1))),
            (Key::new("b/c").unwrap(), Update::Unset),
        ];
        let request = set_request(&updates, SetMode::Explicit);
        assert_eq!(request.get_text("path"), Some("set"));
        assert_eq!(request.get_text(SET_MODE), Some("explicit"));
        let mut back = set_updates(&request).unwrap();
        back.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back, updates);
    }

    #[test]
    fn selected_commitments_by_id_sum_their_ids() {
        let a = NodeKey::from_seed(&[1; 32]);
        let b = NodeKey::from_seed(&[2; 32]);
        let m = msg! { "x" => 1 }
            .commit(&a, None)
            .unwrap()
            .commit(&b, None)
            .unwrap();
        let ids: Vec<String> = m
            .commitments()
            .unwrap()
            .keys()
            .map(|k| k.as_str().to_string())
            .collect();
        let request = msg! { "commitments" => Value::List(vec![ids[0].as_str().into()]) };
        let view = selected(&m, &request, "id").unwrap();
        assert_eq!(view.id_all().unwrap().to_human(), ids[0]);
        let both = msg! { "commitments" => "all" };
        assert_eq!(
            selected(&m, &both, "id")
                .unwrap()
                .id_all()
                .unwrap()
                .to_human(),
            sum_of(&[&ids[0], &ids[1]])
        );
        let unknown = msg! { "commitments" => Value::List(vec!["nope".into()]) };
        assert_eq!(
            selected(&m, &unknown, "id").unwrap().id_all().unwrap(),
            m.unsigned_id()
        );
    }
}
