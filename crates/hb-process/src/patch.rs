//! `patch@1.0` (SPEC §6.11): lets a process write its own state through
//! outbox messages.
//!
//! It sits in a stack after the execution device, for example
//! `device-stack: ["lua@5.3a", "patch@1.0"]`, so that a script's
//! `Send({device = "patch@1.0", balances = {alice = 5}})` makes the state
//! hold `balances/alice = 5` once the slot is computed.
//!
//! - `init`, `snapshot` and `normalize` are not-found (SPEC §6.8 keys the
//!   device has no part in), so a stack skips the device for them
//!   (SPEC §4.4).
//! - Any other key (the assignment's path) scans the list at `patch-from`
//!   (a path in the base, default `results/outbox`) in order. An entry is a
//!   **patch** when its `method` is the text `PATCH` or its `device` is the
//!   text `patch@1.0`, both ASCII case-insensitive; the name is compared,
//!   never resolved ([`is_patch`]). Each patch is stripped of `method`,
//!   `device`, `target`, `path` and `commitments`, and the rest is
//!   deep-merged (nested messages merge, anything else replaces, as
//!   [`hb_message::deep_merge`]) into the state at `patch-to` (a path in
//!   the base, default the root). Patches apply in outbox order, so a later
//!   patch wins. Every patch is removed from the list; the other entries
//!   keep their order.
//! - **Protected keys** ([`PROTECTED_KEYS`], and every key ending in
//!   `-device`; see [`is_protected`]) are never written by a patch.
//! - A refused key, an entry that is not a message, and a bad setting are
//!   recorded as `{index, key?, reason}` in the list `results/patch-errors`
//!   ([`Reason`]); they never fail the slot. The rest of a patch that names
//!   a protected key is still applied.
//!
//! # Decisions where SPEC §6.11 is silent
//!
//! - **Protected keys are top-level state keys.** With `patch-to` at the
//!   root, a patch's top-level key is refused when it is protected. With
//!   `patch-to` elsewhere, the patch writes inside the message at that
//!   path, so its own keys are never state keys: it is refused key by key
//!   only when the first segment of `patch-to` is protected (a process
//!   configured with `patch-to: "results"` can never have its `results`
//!   overwritten). A refused key is reported with its path from the state's
//!   root (`results/balances`). Nested keys of a patch (`balances/device`)
//!   are never protected: they are not state keys.
//! - **Settings come from the base only.** `patch-from` and `patch-to` are
//!   read from the state (where a process definition puts them, SPEC §6.1),
//!   never from the request: the request is the assignment, and a scheduled
//!   message must not redirect patching. (HyperBEAM also reads the
//!   request, and accepts `from`/`to` and `base:`/`req:` prefixes; hb does
//!   not.) A setting is text, a `/`-separated path whose empty segments are
//!   dropped; private or invalid segments, more than
//!   [`MAX_PATH_SEGMENTS`] segments, a non-text value, or an empty
//!   `patch-from` are reported once with `index: 0` and `key` naming the
//!   setting, and the slot's list is left as it was.
//! - **The list.** `patch-from` must name a list (SPEC §6.8's outbox). An
//!   absent value or an empty message (how a script's empty table arrives,
//!   SPEC §6.10) means there is nothing to patch. Any other value is left
//!   as it is and reported once (`index: 0`, `key: "patch-from"`). A
//!   `patch-from` path may step into lists by 1-based position (SPEC §2.2).
//! - **Indices** are 1-based positions in the list as the execution device
//!   left it (`results/outbox/3` has `index: 3`), before patches are
//!   removed. Entries that are not messages are reported and stay in the
//!   list (they are not patches).
//! - **`method` and `device` are compared only as text**: bytes `PATCH` is
//!   not a patch (bytes and text are distinct, SPEC §2.1).
//! - **`patch-to` intermediates.** A `patch-to` segment that is absent, or
//!   holds something other than a message, becomes an empty message (the
//!   deep merge replaces non-messages). `patch-to` does not step into lists.
//! - **Keys are literal.** A patch key containing `/` is one key, not a path
//!   (as [`hb_message::deep_merge`]); it cannot reach inside a protected
//!   key. Private keys of a patch are never written (SPEC §2.3).
//! - **Prefixes.** `input-prefix` and `output-prefix` (SPEC §4.4) do not
//!   apply: `patch-from` and `patch-to` say where to read and write.
//! - **Commitments of the state.** Process states carry none at the top
//!   level (their definition's are under `process`). If a state does, they
//!   are dropped when a patch changes a key they cover, as `set` does
//!   (SPEC §4.3 rule 5).
//! - **Errors list.** `results/patch-errors` is appended to if it is a list
//!   and replaced if it is something else; `results` is created if absent.
//!   If `results` is present but not a message the errors cannot be
//!   recorded: they are logged (warn) and dropped.
//! - **Stack bookkeeping.** A patch at the root may write keys a stack
//!   manages while the device runs (`device-key`, `pass`,
//!   `previous-output-prefix`…); the stack's restore step (SPEC §4.4 step 3)
//!   overwrites them, so they do not survive the slot. `patch-from` and
//!   `patch-to` are not protected: a script may move its own patching.

use async_trait::async_trait;
use hb_device::{Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{list_index, Key, Message, MessageError, Value, COMMITMENTS};

/// The device's name.
pub const NAME: &str = "patch@1.0";

/// The base key naming where the patches are read from.
pub const PATCH_FROM: &str = "patch-from";

/// The base key naming where the patches are written to.
pub const PATCH_TO: &str = "patch-to";

/// `patch-from` when the base has none: the outbox.
pub const DEFAULT_PATCH_FROM: &str = "results/outbox";

/// The list, under `results`, of what could not be patched.
pub const PATCH_ERRORS: &str = "patch-errors";

/// The keys removed from a patch before it is merged.
pub const STRIPPED_KEYS: [&str; 5] = ["method", "device", "target", "path", COMMITMENTS];

/// The state keys a patch can never overwrite, besides any key ending in
/// [`PROTECTED_SUFFIX`].
pub const PROTECTED_KEYS: [&str; 10] = [
    "process",
    "initialized",
    "at-slot",
    "results",
    "device",
    "device-stack",
    "type",
    "snapshot",
    "input-prefix",
    "output-prefixes",
];

/// Every state key ending in this is protected (`execution-device`,
/// `scheduler-device`, …).
pub const PROTECTED_SUFFIX: &str = "-device";

/// The most segments a `patch-from` or `patch-to` path may have (the
/// message nesting limit of SPEC §2.1).
pub const MAX_PATH_SEGMENTS: usize = 64;

/// The keys [`apply_patches`] leaves to a stack: a stack skips the device
/// for them.
const NOT_FOUND_KEYS: [&str; 3] = ["init", "snapshot", "normalize"];

/// Why something was not patched: the `reason` of a `results/patch-errors`
/// record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A patch names a protected key (`key` says which, from the root).
    ProtectedKey,
    /// A list entry is not a message.
    NotAMessage,
    /// `patch-from` is not text naming a path (`index: 0`).
    InvalidPatchFrom,
    /// `patch-to` is not text naming a path (`index: 0`).
    InvalidPatchTo,
    /// `patch-from` names something other than a list (`index: 0`).
    PatchFromNotAList,
}

impl Reason {
    /// The reason as recorded: stable kebab-case text.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ProtectedKey => "protected-key",
            Reason::NotAMessage => "not-a-message",
            Reason::InvalidPatchFrom => "invalid-patch-from",
            Reason::InvalidPatchTo => "invalid-patch-to",
            Reason::PatchFromNotAList => "patch-from-not-a-list",
        }
    }
}

/// `patch@1.0`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PatchDevice;

impl PatchDevice {
    /// The device.
    pub fn new() -> PatchDevice {
        PatchDevice
    }
}

#[async_trait]
impl Device for PatchDevice {
    fn name(&self) -> &str {
        NAME
    }

    /// A handler for every key; it declines `init`, `snapshot` and
    /// `normalize`.
    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler()
    }

    async fn call(
        &self,
        key: &Key,
        base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if NOT_FOUND_KEYS.contains(&key.as_str()) {
            return Err(ResolveError::not_found(key.as_str()));
        }
        Ok(Outcome::Ok(apply_patches(base)?))
    }
}

/// Whether `key` is protected: one of [`PROTECTED_KEYS`] or ending in
/// [`PROTECTED_SUFFIX`], compared ASCII case-insensitively (ID-shaped keys
/// keep their case, SPEC §2.2).
pub fn is_protected(key: &str) -> bool {
    PROTECTED_KEYS.iter().any(|p| p.eq_ignore_ascii_case(key))
        || (key.len() >= PROTECTED_SUFFIX.len()
            && key
                .get(key.len() - PROTECTED_SUFFIX.len()..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(PROTECTED_SUFFIX)))
}

/// Whether `entry` is a patch: its `method` is the text `PATCH` or its
/// `device` the text `patch@1.0`, ASCII case-insensitive. Names are
/// compared, never resolved.
pub fn is_patch(entry: &Message) -> bool {
    entry
        .get_text("method")
        .is_some_and(|m| m.eq_ignore_ascii_case("PATCH"))
        || entry
            .get_text("device")
            .is_some_and(|d| d.eq_ignore_ascii_case(NAME))
}

/// Applies the patches at `patch-from` to `state` (what the device does for
/// every key but `init`, `snapshot` and `normalize`; see the module doc).
///
/// Refused keys, non-message entries and bad settings go to
/// `results/patch-errors`, never to `Err`. The error is a
/// [`MessageError`] only if a record cannot be built, which the fixed keys
/// it uses rule out.
pub fn apply_patches(mut state: Message) -> Result<Message, MessageError> {
    let mut errors = Vec::new();
    let from = match setting(&state, PATCH_FROM, DEFAULT_PATCH_FROM) {
        Some(path) if !path.is_empty() => path,
        _ => {
            errors.push(record(0, Some(PATCH_FROM), Reason::InvalidPatchFrom)?);
            record_errors(&mut state, errors)?;
            return Ok(state);
        }
    };
    let Some(to) = setting(&state, PATCH_TO, "") else {
        errors.push(record(0, Some(PATCH_TO), Reason::InvalidPatchTo)?);
        record_errors(&mut state, errors)?;
        return Ok(state);
    };

    let patches = match value_at_mut(&mut state, &from) {
        None => Vec::new(),
        Some(Value::Message(m)) if m.is_empty() => Vec::new(),
        Some(Value::List(items)) => take_patches(items, &mut errors)?,
        Some(_) => {
            errors.push(record(0, Some(PATCH_FROM), Reason::PatchFromNotAList)?);
            Vec::new()
        }
    };

    // With `patch-to` below the root, only its first segment is a state key.
    let target_protected = to.first().is_some_and(|k| is_protected(k.as_str()));
    let mut commitments = StateCommitments::of(&state);
    for (index, mut patch) in patches {
        for k in STRIPPED_KEYS {
            patch.remove(k);
        }
        let mut allowed = Message::new();
        // `into_iter` yields private keys too; a patch never writes them.
        for (k, v) in patch.into_iter().filter(|(k, _)| !k.is_private()) {
            let refused = if to.is_empty() {
                is_protected(k.as_str())
            } else {
                target_protected
            };
            if refused {
                let path = root_path(&to, &k);
                errors.push(record(index, Some(&path), Reason::ProtectedKey)?);
            } else {
                allowed.insert_key(k, v);
            }
        }
        if !allowed.is_empty() {
            merge_at(&mut state, &to, allowed, &mut commitments);
        }
    }
    commitments.finish(&mut state);
    record_errors(&mut state, errors)?;
    Ok(state)
}

/// The path at base key `name` (its `default` when absent), as keys; `None`
/// when it is not text or not a valid path.
fn setting(state: &Message, name: &str, default: &str) -> Option<Vec<Key>> {
    let raw = match state.get(name) {
        None => default,
        Some(Value::Text(t)) => t.as_str(),
        Some(_) => return None,
    };
    let mut keys = Vec::new();
    for segment in raw.split('/').filter(|s| !s.is_empty()) {
        let key = Key::new(segment).ok().filter(|k| !k.is_private())?;
        if keys.len() == MAX_PATH_SEGMENTS {
            return None;
        }
        keys.push(key);
    }
    Some(keys)
}

/// The value at `path` (non-empty), stepping into messages by key and into
/// lists by 1-based position.
fn value_at_mut<'a>(m: &'a mut Message, path: &[Key]) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    let mut v = m.get_key_mut(first)?;
    for seg in rest {
        v = match v {
            Value::Message(inner) => inner.get_key_mut(seg)?,
            Value::List(items) => items.get_mut(list_index(seg.as_str())?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Removes the patches from `items`, keeping the other entries in order;
/// returns the patches with their 1-based positions, and reports entries
/// that are not messages.
fn take_patches(
    items: &mut Vec<Value>,
    errors: &mut Vec<Message>,
) -> Result<Vec<(usize, Message)>, MessageError> {
    let mut patches = Vec::new();
    let mut kept = Vec::with_capacity(items.len());
    for (i, item) in std::mem::take(items).into_iter().enumerate() {
        let index = i + 1;
        match item {
            Value::Message(m) if is_patch(&m) => patches.push((index, m)),
            Value::Message(m) => kept.push(Value::Message(m)),
            other => {
                errors.push(record(index, None, Reason::NotAMessage)?);
                kept.push(other);
            }
        }
    }
    *items = kept;
    Ok(patches)
}

/// `key` as a path from the state's root, below `to`.
fn root_path(to: &[Key], key: &Key) -> String {
    let mut path = String::new();
    for seg in to {
        path.push_str(seg.as_str());
        path.push('/');
    }
    path.push_str(key.as_str());
    path
}

/// Deep-merges `patch` into the message at `to` (the root when empty),
/// creating or replacing non-message intermediates.
fn merge_at(state: &mut Message, to: &[Key], patch: Message, commitments: &mut StateCommitments) {
    let Some((first, rest)) = to.split_first() else {
        for (k, v) in patch {
            commitments.write(state, k, v);
        }
        return;
    };
    // Everything below the first segment is one value of the state.
    let mut nested = patch;
    for seg in rest.iter().rev() {
        let mut outer = Message::new();
        outer.insert_key(seg.clone(), nested);
        nested = outer;
    }
    commitments.write(state, first.clone(), Value::Message(nested));
}

/// Deep merge in place: nested messages merge recursively, anything else
/// replaces (the semantics of [`hb_message::deep_merge`], without copying
/// the state for every patch).
fn merge_value(slot: &mut Value, new: Value) {
    match (slot, new) {
        (Value::Message(old), Value::Message(new)) => {
            // As `deep_merge`, which iterates the update's visible keys.
            for (k, v) in new.into_iter().filter(|(k, _)| !k.is_private()) {
                match old.get_key_mut(&k) {
                    Some(existing) => merge_value(existing, v),
                    None => {
                        old.insert_key(k, v);
                    }
                }
            }
        }
        (slot, new) => *slot = new,
    }
}

/// The state's top-level commitments while patches are written: dropped at
/// the end if a patch changed a key they cover (SPEC §4.3 rule 5).
struct StateCommitments {
    /// The covered keys when the state is signed; `Some(None)` when the
    /// commitments cannot be read (then every key counts as covered).
    covered: Option<Option<Vec<Key>>>,
    drop: bool,
}

impl StateCommitments {
    fn of(state: &Message) -> StateCommitments {
        let covered = state.is_signed().then(|| covered_keys(state));
        StateCommitments {
            covered,
            drop: false,
        }
    }

    /// Deep-merges `value` into top-level key `key` of `state`.
    fn write(&mut self, state: &mut Message, key: Key, value: Value) {
        let watched = match &self.covered {
            Some(Some(keys)) => keys.contains(&key),
            Some(None) => true,
            None => false,
        };
        let before = if watched && !self.drop {
            Some(state.get_key(&key).cloned())
        } else {
            None
        };
        match state.get_key_mut(&key) {
            Some(existing) => merge_value(existing, value),
            None => {
                state.insert_key(key.clone(), value);
            }
        }
        if let Some(before) = before {
            self.drop |= before.as_ref() != state.get_key(&key);
        }
    }

    fn finish(self, state: &mut Message) {
        if self.drop {
            state.remove(COMMITMENTS);
        }
    }
}

/// The union of the keys the state's commitments cover; `None` when they
/// cannot be read.
fn covered_keys(state: &Message) -> Option<Vec<Key>> {
    let mut keys = Vec::new();
    for (_, c) in state.get_message(COMMITMENTS)?.iter() {
        for k in c.as_message()?.get("committed")?.as_list()? {
            keys.push(Key::new(k.as_text()?).ok()?);
        }
    }
    Some(keys)
}

/// A `results/patch-errors` record.
fn record(index: usize, key: Option<&str>, reason: Reason) -> Result<Message, MessageError> {
    let mut r = Message::new();
    r.insert("index", i64::try_from(index).unwrap_or(i64::MAX))?;
    if let Some(key) = key {
        r.insert("key", key)?;
    }
    r.insert("reason", reason.as_str())?;
    Ok(r)
}

/// Appends `errors` to `results/patch-errors`.
fn record_errors(state: &mut Message, errors: Vec<Message>) -> Result<(), MessageError> {
    if errors.is_empty() {
        return Ok(());
    }
    let errors = errors.into_iter().map(Value::Message);
    match state.get_mut("results") {
        Some(Value::Message(results)) => match results.get_mut(PATCH_ERRORS) {
            Some(Value::List(list)) => list.extend(errors),
            _ => {
                results.insert(PATCH_ERRORS, Value::List(errors.collect()))?;
            }
        },
        None => {
            let mut results = Message::new();
            results.insert(PATCH_ERRORS, Value::List(errors.collect()))?;
            state.insert("results", results)?;
        }
        Some(other) => {
            tracing::warn!(
                results = other.type_name(),
                dropped = errors.len(),
                "patch@1.0: `results` is not a message; patch errors not recorded"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_device::DeviceRegistry;
    use hb_message::{deep_merge, msg, NodeKey};
    use std::sync::Arc;

    fn list(items: Vec<Value>) -> Value {
        Value::List(items)
    }

    fn state_with_outbox(outbox: Vec<Value>) -> Message {
        msg! { "results" => msg! { "outbox" => list(outbox) } }
    }

    fn errors(state: &Message) -> Vec<Message> {
        state
            .get_path("results/patch-errors")
            .and_then(Value::as_list)
            .unwrap_or_default()
            .iter()
            .map(|v| v.as_message().cloned().expect("records are messages"))
            .collect()
    }

    fn outbox(state: &Message) -> Vec<Value> {
        state
            .get_path("results/outbox")
            .and_then(Value::as_list)
            .map(<[Value]>::to_vec)
            .expect("an outbox list")
    }

    #[test]
    fn patches_are_recognised_by_method_or_device_case_insensitively() {
        for yes in [
            msg! { "method" => "PATCH" },
            msg! { "method" => "patch" },
            msg! { "method" => "Patch" },
            msg! { "device" => "patch@1.0" },
            msg! { "device" => "PATCH@1.0" },
            msg! { "Device" => "Patch@1.0" },
            msg! { "method" => "GET", "device" => "patch@1.0" },
        ] {
            assert!(is_patch(&yes), "{yes:?}");
        }
        for no in [
            msg! {},
            msg! { "method" => "GET" },
            msg! { "method" => "PATCHES" },
            msg! { "method" => " PATCH" },
            msg! { "device" => "patch@1.1" },
            msg! { "device" => "patch" },
            msg! { "method" => Value::Bytes(b"PATCH".to_vec()) },
            msg! { "target" => "patch@1.0", "action" => "PATCH" },
        ] {
            assert!(!is_patch(&no), "{no:?}");
        }
    }

    #[test]
    fn protected_keys_are_the_listed_ones_and_any_device_suffix() {
        for k in PROTECTED_KEYS {
            assert!(is_protected(k), "{k}");
        }
        for k in [
            "execution-device",
            "scheduler-device",
            "push-device",
            "previous-device",
            "x-DEVICE",
            "-device",
        ] {
            assert!(is_protected(k), "{k}");
        }
        for k in [
            "balances",
            "devices",
            "device-key",
            "devicex",
            "my-devices",
            "results2",
            "slot",
            "evice",
        ] {
            assert!(!is_protected(k), "{k}");
        }
    }

    #[test]
    fn a_patch_is_stripped_merged_at_the_root_and_removed() {
        let patch = msg! {
            "device" => "patch@1.0",
            "method" => "PATCH",
            "target" => "someone",
            "path" => "compute",
            "commitments" => msg! { "x" => msg! { "committed" => list(vec![]) } },
            "balances" => msg! { "alice" => 5 },
        };
        let out = apply_patches(state_with_outbox(vec![patch.into()])).unwrap();
        assert_eq!(out.get_path("balances/alice"), Some(&Value::Int(5)));
        for stripped in STRIPPED_KEYS {
            assert_eq!(out.get(stripped), None, "{stripped}");
        }
        assert_eq!(outbox(&out), Vec::<Value>::new());
        assert!(errors(&out).is_empty());
    }

    #[test]
    fn other_entries_keep_their_order_and_non_messages_are_reported() {
        let entries = vec![
            msg! { "target" => "a" }.into(),
            msg! { "method" => "patch", "x" => 1 }.into(),
            Value::Int(7),
            msg! { "device" => "Patch@1.0", "y" => 2 }.into(),
            msg! { "target" => "b", "method" => "POST" }.into(),
            Value::from("text"),
            msg! { "device" => "unknown@9.9", "z" => 3 }.into(),
        ];
        let out = apply_patches(state_with_outbox(entries)).unwrap();
        assert_eq!(
            outbox(&out),
            vec![
                msg! { "target" => "a" }.into(),
                Value::Int(7),
                msg! { "target" => "b", "method" => "POST" }.into(),
                Value::from("text"),
                msg! { "device" => "unknown@9.9", "z" => 3 }.into(),
            ]
        );
        assert_eq!(
            (out.get_int("x"), out.get_int("y"), out.get("z")),
            (Some(1), Some(2), None)
        );
        assert_eq!(
            errors(&out),
            vec![
                msg! { "index" => 3, "reason" => "not-a-message" },
                msg! { "index" => 6, "reason" => "not-a-message" },
            ]
        );
    }

    #[test]
    fn protected_keys_are_reported_and_left_alone_while_the_rest_applies() {
        let mut state = state_with_outbox(Vec::new());
        let mut patch = msg! { "method" => "PATCH", "free" => 1 };
        for k in PROTECTED_KEYS
            .iter()
            .chain(&["execution-device", "custom-device"])
        {
            if *k != "results" {
                state.insert(k, "original").unwrap();
            }
            patch.insert(k, "forged").unwrap();
        }
        state
            .insert(
                "results",
                msg! { "outbox" => list(vec![Value::Int(0), patch.into()]) },
            )
            .unwrap();
        let out = apply_patches(state).unwrap();
        assert_eq!(out.get_int("free"), Some(1));
        let mut expected = Vec::new();
        for k in PROTECTED_KEYS
            .iter()
            .chain(&["execution-device", "custom-device"])
        {
            if *k == "results" {
                assert!(out.get_message("results").is_some());
            } else {
                assert_eq!(out.get_text(k), Some("original"), "{k}");
            }
            // `device` is stripped from every patch before it is checked.
            if *k != "device" {
                expected.push(msg! { "index" => 2, "key" => *k, "reason" => "protected-key" });
            }
        }
        expected.sort_by(|a, b| a.get_text("key").cmp(&b.get_text("key")));
        let mut got = errors(&out);
        assert_eq!(
            got.remove(0),
            msg! { "index" => 1, "reason" => "not-a-message" }
        );
        assert_eq!(got, expected);
        assert_eq!(outbox(&out), vec![Value::Int(0)]);
    }

    #[test]
    fn patch_from_and_patch_to_are_read_from_the_state() {
        let state = msg! {
            "patch-from" => "/inbox/queue",
            "patch-to" => "ledger/accounts/",
            "inbox" => msg! { "queue" => list(vec![
                msg! { "method" => "PATCH", "alice" => 5 }.into(),
                msg! { "keep" => true }.into(),
            ]) },
            "ledger" => msg! { "accounts" => msg! { "bob" => 1 }, "name" => "l" },
            "results" => msg! { "outbox" => list(vec![
                msg! { "method" => "PATCH", "results-patch" => 1 }.into(),
            ]) },
        };
        let out = apply_patches(state).unwrap();
        assert_eq!(
            out.get_path("ledger"),
            Some(&Value::from(msg! {
                "accounts" => msg! { "alice" => 5, "bob" => 1 },
                "name" => "l",
            }))
        );
        assert_eq!(out.get("alice"), None);
        assert_eq!(
            out.get_path("inbox/queue"),
            Some(&list(vec![msg! { "keep" => true }.into()]))
        );
        // The default source is not read when `patch-from` names another.
        assert_eq!(outbox(&out).len(), 1);
        assert_eq!(out.get("results-patch"), None);
    }

    #[test]
    fn patch_to_below_a_protected_key_refuses_every_key() {
        let state = msg! {
            "patch-to" => "process/config",
            "process" => msg! { "config" => msg! { "a" => 1 } },
            "results" => msg! { "outbox" => list(vec![
                msg! { "method" => "PATCH", "a" => 2, "b" => 3 }.into(),
            ]) },
        };
        let out = apply_patches(state).unwrap();
        assert_eq!(out.get_path("process/config/a"), Some(&Value::Int(1)));
        assert_eq!(out.get_path("process/config/b"), None);
        assert_eq!(
            errors(&out),
            vec![
                msg! { "index" => 1, "key" => "process/config/a", "reason" => "protected-key" },
                msg! { "index" => 1, "key" => "process/config/b", "reason" => "protected-key" },
            ]
        );
        // The patch is consumed even though nothing of it was written.
        assert!(outbox(&out).is_empty());
    }

    #[test]
    fn below_the_root_the_patch_keys_themselves_are_not_state_keys() {
        let state = msg! {
            "patch-to" => "app",
            "results" => msg! { "outbox" => list(vec![
                msg! { "method" => "PATCH", "results" => 1, "at-slot" => 2 }.into(),
            ]) },
        };
        let out = apply_patches(state).unwrap();
        assert_eq!(
            out.get_path("app"),
            Some(&Value::from(msg! { "results" => 1, "at-slot" => 2 }))
        );
        assert!(errors(&out).is_empty());
    }

    #[test]
    fn deep_merge_semantics_and_later_patches_win() {
        let base = msg! {
            "balances" => msg! { "alice" => 1, "bob" => 2, "meta" => msg! { "a" => 1 } },
            "name" => "x",
            "items" => list(vec![Value::Int(1), Value::Int(2)]),
            "cfg" => msg! { "a" => 1 },
        };
        let p1 = msg! {
            "balances" => msg! { "alice" => 5, "meta" => msg! { "b" => 2 }, "carol" => msg! { "c" => 3 } },
            "name" => msg! { "first" => "y" },
            "items" => list(vec![Value::Int(3)]),
            "cfg" => 7,
        };
        let p2 = msg! { "balances" => msg! { "alice" => 6 } };
        let mut state = base.clone();
        let mut entries = Vec::new();
        for p in [&p1, &p2] {
            let mut patch = p.clone();
            patch.insert("method", "PATCH").unwrap();
            entries.push(Value::from(patch));
        }
        state
            .insert("results", msg! { "outbox" => list(entries) })
            .unwrap();
        let out = apply_patches(state).unwrap();
        let mut expected = deep_merge(&deep_merge(&base, &p1), &p2);
        expected
            .insert("results", msg! { "outbox" => list(vec![]) })
            .unwrap();
        assert_eq!(out, expected);
        assert_eq!(out.get_path("balances/alice"), Some(&Value::Int(6)));
        assert_eq!(out.get_path("balances/bob"), Some(&Value::Int(2)));
        assert_eq!(
            out.get_path("balances/meta"),
            Some(&Value::from(msg! { "a" => 1, "b" => 2 }))
        );
        assert_eq!(out.get_int("cfg"), Some(7));
        assert_eq!(out.get("items"), Some(&list(vec![Value::Int(3)])));
    }

    #[test]
    fn nothing_to_patch_leaves_the_state_as_it_was() {
        for state in [
            msg! { "a" => 1 },
            msg! { "results" => msg! { "output" => "ok" } },
            msg! { "results" => msg! { "outbox" => Message::new() } },
            state_with_outbox(vec![msg! { "target" => "t" }.into()]),
        ] {
            assert_eq!(apply_patches(state.clone()).unwrap(), state);
        }
    }

    #[test]
    fn bad_settings_are_reported_with_index_zero_and_patch_nothing() {
        let patch = || list(vec![msg! { "method" => "PATCH", "a" => 1 }.into()]);
        let cases = [
            (
                msg! { "patch-from" => 5 },
                "patch-from",
                "invalid-patch-from",
            ),
            (
                msg! { "patch-from" => "/" },
                "patch-from",
                "invalid-patch-from",
            ),
            (
                msg! { "patch-from" => "results/priv" },
                "patch-from",
                "invalid-patch-from",
            ),
            (
                msg! { "patch-to" => "a/privacy" },
                "patch-to",
                "invalid-patch-to",
            ),
            (
                msg! { "patch-to" => "x/@y" },
                "patch-to",
                "invalid-patch-to",
            ),
            (
                msg! { "patch-to" => "a/".repeat(MAX_PATH_SEGMENTS + 1) },
                "patch-to",
                "invalid-patch-to",
            ),
            (
                msg! { "patch-to" => list(vec![]) },
                "patch-to",
                "invalid-patch-to",
            ),
            (
                msg! { "patch-from" => "results/output" },
                "patch-from",
                "patch-from-not-a-list",
            ),
        ];
        for (mut state, key, reason) in cases {
            state
                .insert("results", msg! { "outbox" => patch(), "output" => "ok" })
                .unwrap();
            let out = apply_patches(state.clone()).unwrap();
            assert_eq!(out.get("a"), None, "{key} {reason}");
            assert_eq!(out.get_path("results/outbox"), Some(&patch()));
            assert_eq!(
                errors(&out),
                vec![msg! { "index" => 0, "key" => key, "reason" => reason }],
                "{state:?}"
            );
        }
        // Exactly the limit is accepted.
        let deep = "a/".repeat(MAX_PATH_SEGMENTS);
        let out = apply_patches(msg! {
            "patch-to" => deep.as_str(),
            "results" => msg! { "outbox" => patch() },
        })
        .unwrap();
        assert!(errors(&out).is_empty());
        assert!(out.get(&format!("{deep}a")).is_none());
        assert_eq!(out.get_path(&format!("{deep}a")), Some(&Value::Int(1)));
    }

    #[test]
    fn errors_append_to_an_existing_list_and_create_results_when_absent() {
        let mut state = state_with_outbox(vec![Value::Int(1)]);
        state
            .get_mut("results")
            .and_then(|r| match r {
                Value::Message(m) => Some(m),
                _ => None,
            })
            .unwrap()
            .insert("patch-errors", list(vec![Value::from("earlier")]))
            .unwrap();
        let out = apply_patches(state).unwrap();
        assert_eq!(
            out.get_path("results/patch-errors"),
            Some(&list(vec![
                Value::from("earlier"),
                msg! { "index" => 1, "reason" => "not-a-message" }.into(),
            ]))
        );
        let out = apply_patches(msg! { "patch-from" => 1 }).unwrap();
        assert_eq!(errors(&out).len(), 1);
        // `results` that is not a message cannot hold errors; nothing panics.
        let state = msg! { "patch-from" => 1, "results" => 3 };
        assert_eq!(apply_patches(state.clone()).unwrap(), state);
    }

    #[test]
    fn patch_from_steps_into_lists_by_position() {
        let state = msg! {
            "patch-from" => "batches/2",
            "batches" => list(vec![
                list(vec![msg! { "method" => "PATCH", "a" => 1 }.into()]),
                list(vec![msg! { "method" => "PATCH", "b" => 2 }.into()]),
            ]),
        };
        let out = apply_patches(state).unwrap();
        assert_eq!((out.get("a"), out.get_int("b")), (None, Some(2)));
        assert_eq!(out.get_path("batches/2"), Some(&list(vec![])));
    }

    #[test]
    fn private_keys_of_a_patch_are_never_written() {
        let mut patch = msg! { "method" => "PATCH", "a" => 1 };
        patch.set_private("priv", msg! { "x" => 1 }).unwrap();
        let mut state = state_with_outbox(vec![patch.into()]);
        state
            .set_private("priv", msg! { "hashpath" => "h" })
            .unwrap();
        let out = apply_patches(state).unwrap();
        assert_eq!(out.get_int("a"), Some(1));
        assert_eq!(
            out.get_private("priv"),
            Some(&Value::from(msg! { "hashpath" => "h" }))
        );
    }

    #[test]
    fn state_commitments_are_dropped_only_when_a_covered_key_changes() {
        let key = NodeKey::from_seed(&[7; 32]);
        let signed = msg! { "balances" => msg! { "alice" => 1 }, "note" => "n" }
            .commit(&key, Some(&[Key::new("balances").unwrap()]))
            .unwrap();
        let run = |patch: Message| {
            let mut state = signed.clone();
            let mut patch = patch;
            patch.insert("method", "PATCH").unwrap();
            state
                .insert("results", msg! { "outbox" => list(vec![patch.into()]) })
                .unwrap();
            apply_patches(state).unwrap()
        };
        assert!(run(msg! { "note" => "changed" }).is_signed());
        assert!(run(msg! { "balances" => msg! { "alice" => 1 } }).is_signed());
        assert!(!run(msg! { "balances" => msg! { "alice" => 2 } }).is_signed());
    }

    fn ctx() -> Context {
        let mut registry = DeviceRegistry::new();
        registry
            .register(Arc::new(PatchDevice::new()))
            .expect("registered once");
        Context::new(registry, NodeKey::from_seed(&[1; 32]))
    }

    #[actix_rt::test]
    async fn init_snapshot_and_normalize_are_not_found_and_other_keys_patch() {
        let mut base = state_with_outbox(vec![msg! { "method" => "PATCH", "a" => 1 }.into()]);
        base.insert("device", NAME).unwrap();
        for key in ["init", "snapshot", "normalize", "INIT"] {
            let err = ctx()
                .resolve(base.clone(), &msg! { "path" => key })
                .await
                .unwrap_err();
            assert!(err.is_not_found(), "{key}: {err}");
        }
        for key in ["compute", "anything"] {
            let out = ctx()
                .resolve(base.clone(), &msg! { "path" => key })
                .await
                .unwrap()
                .ok_message()
                .expect("a message");
            assert_eq!(out.get_int("a"), Some(1), "{key}");
        }
    }
}
