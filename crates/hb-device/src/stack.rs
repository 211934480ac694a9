//! `stack@1.0`: runs a request through a stack of devices (SPEC §4.4).
//!
//! A stack message has `device: stack@1.0` and `device-stack`, a message
//! keyed `"1"`, `"2"`, … (or a list) of device names. In `Fold` mode (the
//! default) the message passes through each device in turn; in `Map` mode
//! each device answers on its own copy and the results are collected. The
//! path `transform/D/k` runs `k` on device `D` alone.

use std::ops::ControlFlow;

use async_trait::async_trait;
use futures::future::BoxFuture;
use hb_message::{Key, Message, Value};

use crate::config::ErrorStrategy;
use crate::context::Context;
use crate::device::{Device, DeviceInfo, Outcome};
use crate::error::ResolveError;
use crate::keys;
use crate::resolve::{Failure, PreparedRequest};

/// The device's name.
pub const NAME: &str = "stack@1.0";

/// The stack's devices, by position (`"1"`, `"2"`, …) or name.
pub const DEVICE_STACK: &str = keys::names::DEVICE_STACK;
/// When present, the only keys the stack runs; others are field reads.
pub const STACK_KEYS: &str = keys::names::STACK_KEYS;
/// The running device's position in the stack, as text.
pub const DEVICE_KEY: &str = keys::names::DEVICE_KEY;
/// The pass counter, from 1.
pub const PASS: &str = keys::names::PASS;
/// Where the running device reads request keys.
pub const INPUT_PREFIX: &str = keys::names::INPUT_PREFIX;
/// Where the running device writes base keys.
pub const OUTPUT_PREFIX: &str = keys::names::OUTPUT_PREFIX;
/// Per-device input prefixes, keyed like `device-stack`.
pub const INPUT_PREFIXES: &str = keys::names::INPUT_PREFIXES;
/// Per-device output prefixes, keyed like `device-stack`.
pub const OUTPUT_PREFIXES: &str = keys::names::OUTPUT_PREFIXES;
/// The device replaced by the latest transform.
pub const PREVIOUS_DEVICE: &str = keys::names::PREVIOUS_DEVICE;
/// The input prefix replaced by the latest transform.
pub const PREVIOUS_INPUT_PREFIX: &str = keys::names::PREVIOUS_INPUT_PREFIX;
/// The output prefix replaced by the latest transform.
pub const PREVIOUS_OUTPUT_PREFIX: &str = keys::names::PREVIOUS_OUTPUT_PREFIX;
/// The request (or base) key choosing `Fold` or `Map`.
pub const MODE: &str = keys::names::MODE;
/// The key that starts a `transform/D/k` path.
pub const TRANSFORM: &str = "transform";

/// Marks, inside `priv`, a message produced by the `transform` key: the next
/// key names the device to swap in.
const TRANSFORMER: &str = "stack-transformer";

/// How a stack runs its devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Pass the message through each device in turn.
    Fold,
    /// Run each device on its own copy; collect the results.
    Map,
}

/// `stack@1.0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StackDevice;

#[async_trait]
impl Device for StackDevice {
    fn name(&self) -> &str {
        NAME
    }

    /// `handler` = the router; `excludes = [set, keys]`.
    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler().excludes(["set", "keys"])
    }

    /// With `stack-keys`, `exports = stack-keys`.
    fn info_for(&self, base: &Message) -> Option<DeviceInfo> {
        let names: Vec<&str> = match base.get_key(&keys::STACK_KEYS)? {
            Value::List(items) => items.iter().filter_map(Value::as_text).collect(),
            Value::Message(m) => m.iter().filter_map(|(_, v)| v.as_text()).collect(),
            Value::Text(t) => vec![t.as_str()],
            _ => Vec::new(),
        };
        Some(self.info().exports(names))
    }

    /// Written out rather than through `async_trait`: the routing runs
    /// before the future is made, and the fold's future is the boxed one
    /// itself, so no extra poll frame sits in every nesting level of a
    /// stack inside a stack.
    fn call<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        key: &'life1 Key,
        base: Message,
        request: &'life2 Message,
        ctx: &'life3 Context,
    ) -> BoxFuture<'async_trait, Result<Outcome, ResolveError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        match route(key, base, request) {
            Ok(Routed::Done(m)) => Box::pin(std::future::ready(Ok(Outcome::Ok(m)))),
            Ok(Routed::Fold(base)) => Box::pin(fold(base, request, ctx)),
            Ok(Routed::Map(base)) => Box::pin(map(base, request, ctx)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// What a call on a stack does.
enum Routed {
    /// Answered at once (the `transform` key and the device it names).
    Done(Message),
    /// Run the fold.
    Fold(Message),
    /// Run the map.
    Map(Message),
}

/// Everything of a stack call before its devices run.
fn route(key: &Key, base: Message, request: &Message) -> Result<Routed, ResolveError> {
    if is_transformer(&base) {
        let mut m = base;
        clear_transformer(&mut m);
        let remembered = Remembered::of(&m);
        transform(&mut m, key.as_str(), &remembered)?;
        return Ok(Routed::Done(m));
    }
    if key.as_str() == TRANSFORM {
        let mut m = base;
        mark_transformer(&mut m);
        return Ok(Routed::Done(m));
    }
    if !matches!(
        base.get_key(&keys::DEVICE_STACK),
        Some(Value::Message(_) | Value::List(_))
    ) {
        return Err(ResolveError::invalid_input(
            key,
            "a stack needs `device-stack`: a message or list of device names",
        ));
    }
    Ok(match mode(&base, request)? {
        Mode::Fold => Routed::Fold(base),
        Mode::Map => Routed::Map(base),
    })
}

/// The mode: the request's `mode`, else the base's, else `Fold`.
/// Case-sensitive.
pub fn mode(base: &Message, request: &Message) -> Result<Mode, ResolveError> {
    match request
        .get_key(&keys::MODE)
        .or_else(|| base.get_key(&keys::MODE))
    {
        None => Ok(Mode::Fold),
        Some(Value::Text(m)) if m == "Fold" => Ok(Mode::Fold),
        Some(Value::Text(m)) if m == "Map" => Ok(Mode::Map),
        Some(other) => Err(ResolveError::invalid_input(
            MODE,
            format!("a stack's mode is \"Fold\" or \"Map\", not {other:?}"),
        )),
    }
}

/// `key` under `prefix`: as is for an absent or empty prefix, else
/// `prefix/key` (a trailing `/` on the prefix is ignored).
pub fn prefixed(prefix: Option<&str>, key: &str) -> String {
    match prefix.map(|p| p.trim_end_matches('/')) {
        None | Some("") => key.to_string(),
        Some(p) => format!("{p}/{key}"),
    }
}

/// The running device's input prefix, if it has one.
pub fn input_prefix(base: &Message) -> Option<&str> {
    base.get_key(&keys::INPUT_PREFIX).and_then(Value::as_text)
}

/// The running device's output prefix, if it has one.
pub fn output_prefix(base: &Message) -> Option<&str> {
    base.get_key(&keys::OUTPUT_PREFIX).and_then(Value::as_text)
}

/// The stack-level values a fold remembers and restores.
struct Remembered {
    device: Option<Value>,
    pass: Option<Value>,
    input_prefix: Option<Value>,
    output_prefix: Option<Value>,
}

impl Remembered {
    fn of(m: &Message) -> Remembered {
        Remembered {
            device: m.get_key(&keys::DEVICE).cloned(),
            pass: m.get_key(&keys::PASS).cloned(),
            input_prefix: m.get_key(&keys::INPUT_PREFIX).cloned(),
            output_prefix: m.get_key(&keys::OUTPUT_PREFIX).cloned(),
        }
    }
}

/// The entry `key` of a stack-shaped field (`device-stack`,
/// `input-prefixes`…), a message or a list read as one.
fn entry<'a>(m: &'a Message, field: &Key, key: &str) -> Option<&'a Value> {
    match m.get_key(field)? {
        Value::Message(entries) => entries.get(key),
        Value::List(items) => hb_message::list_index(key).and_then(|i| items.get(i)),
        _ => None,
    }
}

/// The device name at `device-stack/key`, if that entry exists.
fn device_at(m: &Message, key: &str) -> Result<Option<String>, ResolveError> {
    match entry(m, &keys::DEVICE_STACK, key) {
        None => Ok(None),
        Some(Value::Text(name)) => Ok(Some(name.clone())),
        Some(other) => Err(ResolveError::InvalidDeviceName {
            name: format!("<{}>", other.type_name()),
            reason: "device-stack entries must be device names (text)",
        }),
    }
}

/// Swaps in `device-stack/key` (SPEC §4.4 "Transform"): sets `device`,
/// `device-key` and the prefixes (per-device entry, else the stack-level
/// value), recording the replaced values as `previous-*`.
fn transform(m: &mut Message, key: &str, stack: &Remembered) -> Result<String, ResolveError> {
    transform_key(m, key.to_string(), stack)
}

/// [`transform`] taking the stack key as owned text, which becomes the
/// `device-key` value without another copy.
fn transform_key(m: &mut Message, key: String, stack: &Remembered) -> Result<String, ResolveError> {
    let device = device_at(m, &key)?.ok_or_else(|| ResolveError::not_found(&key))?;
    let input = entry(m, &keys::INPUT_PREFIXES, &key)
        .cloned()
        .or_else(|| stack.input_prefix.clone());
    let output = entry(m, &keys::OUTPUT_PREFIXES, &key)
        .cloned()
        .or_else(|| stack.output_prefix.clone());
    let mut fields = Fields::of(m);
    let previous_device = fields.set(&keys::DEVICE, Some(Value::from(device.as_str())));
    let previous_input = fields.set(&keys::INPUT_PREFIX, input);
    let previous_output = fields.set(&keys::OUTPUT_PREFIX, output);
    fields.set(&keys::DEVICE_KEY, Some(Value::Text(key)));
    fields.set(&keys::PREVIOUS_DEVICE, previous_device);
    fields.set(&keys::PREVIOUS_INPUT_PREFIX, previous_input);
    fields.set(&keys::PREVIOUS_OUTPUT_PREFIX, previous_output);
    fields.finish();
    Ok(device)
}

/// Step 3 of a fold: the stack-level device, prefixes and pass back; the
/// per-device keys removed.
fn restore(m: &mut Message, stack: Remembered) {
    let mut fields = Fields::of(m);
    fields.set(&keys::DEVICE, stack.device);
    fields.set(&keys::INPUT_PREFIX, stack.input_prefix);
    fields.set(&keys::OUTPUT_PREFIX, stack.output_prefix);
    fields.set(&keys::PASS, stack.pass);
    fields.set(&keys::DEVICE_KEY, None);
    fields.set(&keys::PREVIOUS_DEVICE, None);
    fields.set(&keys::PREVIOUS_INPUT_PREFIX, None);
    fields.set(&keys::PREVIOUS_OUTPUT_PREFIX, None);
    fields.finish();
}

/// In-place updates of a stack message's own fields, with `set`'s rule for
/// commitments: they are dropped (at [`finish`](Fields::finish)) only if a
/// committed key changed. Present fields are replaced without allocating a
/// key.
struct Fields<'m> {
    m: &'m mut Message,
    /// The committed keys when the message has commitments; `Some(None)`
    /// when they are unreadable (then every key counts as covered).
    covered: Option<Option<Vec<String>>>,
    drop_commitments: bool,
}

impl<'m> Fields<'m> {
    fn of(m: &'m mut Message) -> Fields<'m> {
        let covered = if m.get_key(&keys::COMMITMENTS).is_some() {
            Some(covered_keys(m))
        } else {
            None
        };
        Fields {
            m,
            covered,
            drop_commitments: false,
        }
    }

    /// Sets (`Some`) or removes (`None`) the non-private field `key`,
    /// returning the value it replaced.
    fn set(&mut self, key: &Key, value: Option<Value>) -> Option<Value> {
        let old = match value {
            Some(v) => match self.m.get_key_mut(key) {
                Some(current) => Some(std::mem::replace(current, v)),
                None => {
                    self.m.insert_key(key.clone(), v);
                    None
                }
            },
            None => self.m.remove_key(key),
        };
        let watched = self.covered.as_ref().is_some_and(|c| {
            c.as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k == key.as_str()))
        });
        if watched && old.as_ref() != self.m.get_key(key) {
            self.drop_commitments = true;
        }
        old
    }

    /// Drops the commitments if a committed key changed.
    fn finish(self) {
        if self.drop_commitments {
            self.m.remove_key(&keys::COMMITMENTS);
        }
    }
}

/// The union of every commitment's committed keys; `None` when unreadable
/// (then every key counts as covered).
fn covered_keys(m: &Message) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    for (_, c) in m.commitments()?.iter() {
        for k in c.as_message()?.get("committed")?.as_list()? {
            keys.push(k.as_text()?.to_ascii_lowercase());
        }
    }
    Some(keys)
}

/// Wraps a device's failure per the error strategy; fatal errors pass
/// unchanged.
fn strategy_error(ctx: &Context, index: u64, device: String, e: ResolveError) -> ResolveError {
    if e.is_fatal() {
        return e;
    }
    let source = Box::new(e);
    match ctx.config().error_strategy {
        ErrorStrategy::Throw => ResolveError::StackDeviceFailed {
            index,
            device,
            source,
        },
        ErrorStrategy::Stop => ResolveError::StackCallFailed {
            index,
            device,
            source,
        },
    }
}

/// `Fold` (SPEC §4.4).
///
/// Its poll frame is part of every nesting level of a stack inside a
/// stack, so the work around the await lives in [`Folding`]'s plain
/// methods.
async fn fold(base: Message, request: &Message, ctx: &Context) -> Result<Outcome, ResolveError> {
    // Every device resolves this same request: its path and HashPath part
    // are worked out once.
    let request = PreparedRequest::new(request);
    let (mut folding, mut msg) = Folding::start(base);
    loop {
        let device = match folding.next_device(&mut msg)? {
            Some(device) => device,
            None => break,
        };
        let result = ctx.resolve_keeping(msg, &request).await;
        msg = match folding.after(ctx, device, result) {
            ControlFlow::Continue(m) => m,
            ControlFlow::Break(Ok(m)) => {
                msg = m;
                break;
            }
            ControlFlow::Break(Err(done)) => return done,
        };
    }
    Ok(folding.finish(msg))
}

/// A fold in progress: the remembered stack-level values, the position and
/// the pass.
struct Folding {
    stack: Remembered,
    /// The position of the next device, from 1.
    n: u64,
    /// The pass being made, from 1. The stack's own count: a device that
    /// rewrites `pass` cannot reset it and escape the cap.
    pass: u64,
}

impl Folding {
    /// Step 1: remember the stack-level values and set `pass = 1`.
    fn start(base: Message) -> (Folding, Message) {
        let stack = Remembered::of(&base);
        let mut msg = base;
        set_pass(&mut msg, 1);
        (
            Folding {
                stack,
                n: 1,
                pass: 1,
            },
            msg,
        )
    }

    /// Transforms `msg` for device `n`: its name, or `None` when the stack
    /// has no device there (the fold is complete).
    fn next_device(&self, msg: &mut Message) -> Result<Option<String>, ResolveError> {
        match transform_key(msg, self.n.to_string(), &self.stack) {
            Ok(device) => {
                tracing::trace!(index = self.n, device = device.as_str(), "stack step");
                Ok(Some(device))
            }
            Err(ResolveError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Acts on device `n`'s outcome: the message to go on with, the message
    /// to restore and answer (`Break(Ok)`), or the stack's answer
    /// (`Break(Err)`).
    fn after(
        &mut self,
        ctx: &Context,
        device: String,
        result: Result<Outcome, Failure>,
    ) -> ControlFlow<Result<Message, Result<Outcome, ResolveError>>, Message> {
        match result {
            Ok(Outcome::Ok(m)) => {
                self.n += 1;
                ControlFlow::Continue(m)
            }
            Ok(raw @ Outcome::Raw(_)) => ControlFlow::Break(Err(Ok(raw))),
            Ok(Outcome::Skip(m)) => ControlFlow::Break(Ok(m)),
            Ok(Outcome::Pass(mut m)) => {
                if self.pass >= ctx.config().stack_max_passes {
                    tracing::warn!(passes = self.pass, device, "stack pass limit reached");
                    return ControlFlow::Break(Err(Err(ResolveError::StackPassLimit {
                        passes: self.pass,
                    })));
                }
                self.pass += 1;
                set_pass(&mut m, i64::try_from(self.pass).unwrap_or(i64::MAX));
                self.n = 1;
                ControlFlow::Continue(m)
            }
            Err(failure) => match (failure.error, failure.base) {
                // The device lacks the key: skip it.
                (ResolveError::NotFound { .. }, Some(kept)) => {
                    self.n += 1;
                    ControlFlow::Continue(kept)
                }
                (e, _) => ControlFlow::Break(Err(Err(strategy_error(ctx, self.n, device, e)))),
            },
        }
    }

    /// Step 3: restore the stack-level values.
    fn finish(self, mut msg: Message) -> Outcome {
        restore(&mut msg, self.stack);
        Outcome::Ok(msg)
    }
}

/// Sets `pass` (a plain function, so that nothing of it is kept in the
/// fold's future).
fn set_pass(m: &mut Message, pass: i64) {
    let mut fields = Fields::of(m);
    fields.set(&keys::PASS, Some(Value::Int(pass)));
    fields.finish();
}

/// `Map` (SPEC §4.4): each device on its own copy; results by device key;
/// failures dropped.
async fn map(base: Message, request: &Message, ctx: &Context) -> Result<Outcome, ResolveError> {
    let stack = Remembered::of(&base);
    let entries: Vec<String> = match base.get_key(&keys::DEVICE_STACK) {
        Some(Value::Message(entries)) => entries
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| !matches!(k.as_str(), "path" | "hashpath"))
            .collect(),
        Some(Value::List(items)) => (1..=items.len()).map(|i| i.to_string()).collect(),
        _ => Vec::new(),
    };
    let mut results = Message::new();
    for key in entries {
        let mut copy = base.clone();
        let device = match transform(&mut copy, &key, &stack) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(key = key.as_str(), error = %e, "map: transform failed");
                continue;
            }
        };
        match ctx.resolve(copy, request).await {
            Ok(Outcome::Ok(m)) => {
                results.insert(&key, m)?;
            }
            Ok(Outcome::Raw(v)) => {
                results.insert(&key, v)?;
            }
            Ok(other) => {
                tracing::debug!(
                    key = key.as_str(),
                    device,
                    outcome = other.kind(),
                    "map: dropped"
                );
            }
            Err(e) => {
                tracing::debug!(key = key.as_str(), device, error = %e, "map: dropped");
            }
        }
    }
    Ok(Outcome::Ok(results))
}

/// Whether `m` came from the `transform` key.
fn is_transformer(m: &Message) -> bool {
    m.get_private_key(&keys::PRIV)
        .and_then(Value::as_message)
        .is_some_and(|p| p.get(TRANSFORMER).is_some())
}

fn mark_transformer(m: &mut Message) {
    let mut private = m
        .get_private_key(&keys::PRIV)
        .and_then(Value::as_message)
        .cloned()
        .unwrap_or_default();
    // The literal is a valid key.
    private.insert_key(Key::new(TRANSFORMER).expect("valid key"), true);
    m.insert_key(keys::PRIV.clone(), private);
}

fn clear_transformer(m: &mut Message) {
    if let Some(Value::Message(mut private)) = m.remove_key(&keys::PRIV) {
        private.remove(TRANSFORMER);
        if private.iter_all().next().is_some() {
            m.insert_key(keys::PRIV.clone(), private);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, NodeKey};

    #[test]
    fn prefixes_join_with_a_slash_ignoring_a_trailing_one() {
        assert_eq!(prefixed(None, "v"), "v");
        assert_eq!(prefixed(Some(""), "v"), "v");
        assert_eq!(prefixed(Some("a"), "v"), "a/v");
        assert_eq!(prefixed(Some("a/"), "v"), "a/v");
        assert_eq!(prefixed(Some("a/b"), "v"), "a/b/v");
    }

    #[test]
    fn mode_prefers_the_request_then_the_base_and_is_case_sensitive() {
        let base = msg! { "mode" => "Map" };
        assert_eq!(mode(&base, &Message::new()).unwrap(), Mode::Map);
        assert_eq!(mode(&base, &msg! { "mode" => "Fold" }).unwrap(), Mode::Fold);
        assert_eq!(mode(&Message::new(), &Message::new()).unwrap(), Mode::Fold);
        assert!(matches!(
            mode(&Message::new(), &msg! { "mode" => "fold" }),
            Err(ResolveError::InvalidInput { .. })
        ));
    }

    #[test]
    fn transform_records_previous_values_and_passes_stack_prefixes_through() {
        let mut m = msg! {
            "device" => "stack@1.0",
            "device-stack" => msg! { "1" => "a@1.0", "2" => "b@1.0" },
            "input-prefixes" => msg! { "1" => "in1" },
            "output-prefix" => "out"
        };
        let stack = Remembered::of(&m);
        assert_eq!(transform(&mut m, "1", &stack).unwrap(), "a@1.0");
        assert_eq!(m.get_text("device"), Some("a@1.0"));
        assert_eq!(m.get_text("device-key"), Some("1"));
        assert_eq!(m.get_text("input-prefix"), Some("in1"));
        assert_eq!(m.get_text("output-prefix"), Some("out"));
        assert_eq!(m.get_text("previous-device"), Some("stack@1.0"));
        assert_eq!(m.get("previous-input-prefix"), None);
        transform(&mut m, "2", &stack).unwrap();
        // No entry for device 2: the stack-level value (absent), not device 1's.
        assert_eq!(m.get("input-prefix"), None);
        assert_eq!(m.get_text("previous-input-prefix"), Some("in1"));
        assert_eq!(m.get_text("previous-device"), Some("a@1.0"));
        assert!(matches!(
            transform(&mut m, "3", &stack),
            Err(ResolveError::NotFound { .. })
        ));
    }

    #[test]
    fn set_fields_drops_commitments_only_when_a_committed_key_changes() {
        let key = NodeKey::from_seed(&[3; 32]);
        let signed = msg! { "device" => "stack@1.0", "x" => 1 }
            .commit(&key, Some(&[Key::new("device").unwrap()]))
            .unwrap();
        let mut same = signed.clone();
        let mut fields = Fields::of(&mut same);
        fields.set(&keys::DEVICE, Some(Value::from("stack@1.0")));
        fields.set(&Key::new("y").unwrap(), Some(Value::Int(2)));
        fields.finish();
        assert!(same.commitments().is_some());
        let mut changed = signed.clone();
        let mut fields = Fields::of(&mut changed);
        fields.set(&keys::DEVICE, Some(Value::from("other@1.0")));
        fields.finish();
        assert!(changed.commitments().is_none());
    }
}
