//! `stack@1.0`: runs a request through a stack of devices (SPEC §4.4).
//!
//! A stack message has `device: stack@1.0` and `device-stack`, a message
//! keyed `"1"`, `"2"`, … (or a list) of device names. In `Fold` mode (the
//! default) the message passes through each device in turn; in `Map` mode
//! each device answers on its own copy and the results are collected. The
//! path `transform/D/k` runs `k` on device `D` alone.

use async_trait::async_trait;
use hb_message::{Key, Message, Value, COMMITMENTS};

use crate::config::ErrorStrategy;
use crate::context::Context;
use crate::device::{Device, DeviceInfo, Outcome};
use crate::error::ResolveError;
use crate::resolve::DEVICE;

/// The device's name.
pub const NAME: &str = "stack@1.0";

/// The stack's devices, by position (`"1"`, `"2"`, …) or name.
pub const DEVICE_STACK: &str = "device-stack";
/// When present, the only keys the stack runs; others are field reads.
pub const STACK_KEYS: &str = "stack-keys";
/// The running device's position in the stack, as text.
pub const DEVICE_KEY: &str = "device-key";
/// The pass counter, from 1.
pub const PASS: &str = "pass";
/// Where the running device reads request keys.
pub const INPUT_PREFIX: &str = "input-prefix";
/// Where the running device writes base keys.
pub const OUTPUT_PREFIX: &str = "output-prefix";
/// Per-device input prefixes, keyed like `device-stack`.
pub const INPUT_PREFIXES: &str = "input-prefixes";
/// Per-device output prefixes, keyed like `device-stack`.
pub const OUTPUT_PREFIXES: &str = "output-prefixes";
/// The device replaced by the latest transform.
pub const PREVIOUS_DEVICE: &str = "previous-device";
/// The input prefix replaced by the latest transform.
pub const PREVIOUS_INPUT_PREFIX: &str = "previous-input-prefix";
/// The output prefix replaced by the latest transform.
pub const PREVIOUS_OUTPUT_PREFIX: &str = "previous-output-prefix";
/// The request (or base) key choosing `Fold` or `Map`.
pub const MODE: &str = "mode";
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
        let keys = base.get(STACK_KEYS)?;
        let names: Vec<&str> = match keys {
            Value::List(items) => items.iter().filter_map(Value::as_text).collect(),
            Value::Message(m) => m.iter().filter_map(|(_, v)| v.as_text()).collect(),
            Value::Text(t) => vec![t.as_str()],
            _ => Vec::new(),
        };
        Some(self.info().exports(names))
    }

    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if is_transformer(&base) {
            let mut m = base;
            clear_transformer(&mut m);
            let remembered = Remembered::of(&m);
            transform(&mut m, key.as_str(), &remembered)?;
            return Ok(Outcome::Ok(m));
        }
        if key.as_str() == TRANSFORM {
            let mut m = base;
            mark_transformer(&mut m);
            return Ok(Outcome::Ok(m));
        }
        if !matches!(
            base.get(DEVICE_STACK),
            Some(Value::Message(_) | Value::List(_))
        ) {
            return Err(ResolveError::invalid_input(
                key,
                "a stack needs `device-stack`: a message or list of device names",
            ));
        }
        match mode(&base, request)? {
            Mode::Fold => fold(base, request, ctx).await,
            Mode::Map => map(base, request, ctx).await,
        }
    }
}

/// The mode: the request's `mode`, else the base's, else `Fold`.
/// Case-sensitive.
pub fn mode(base: &Message, request: &Message) -> Result<Mode, ResolveError> {
    match request.get(MODE).or_else(|| base.get(MODE)) {
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
    base.get_text(INPUT_PREFIX)
}

/// The running device's output prefix, if it has one.
pub fn output_prefix(base: &Message) -> Option<&str> {
    base.get_text(OUTPUT_PREFIX)
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
            device: m.get(DEVICE).cloned(),
            pass: m.get(PASS).cloned(),
            input_prefix: m.get(INPUT_PREFIX).cloned(),
            output_prefix: m.get(OUTPUT_PREFIX).cloned(),
        }
    }
}

/// The entry `key` of a stack-shaped field (`device-stack`,
/// `input-prefixes`…), a message or a list read as one.
fn entry<'a>(m: &'a Message, field: &str, key: &str) -> Option<&'a Value> {
    match m.get(field)? {
        Value::Message(entries) => entries.get(key),
        Value::List(items) => hb_message::list_index(key).and_then(|i| items.get(i)),
        _ => None,
    }
}

/// The device name at `device-stack/key`, if that entry exists.
fn device_at(m: &Message, key: &str) -> Result<Option<String>, ResolveError> {
    match entry(m, DEVICE_STACK, key) {
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
    let device = device_at(m, key)?.ok_or_else(|| ResolveError::not_found(key))?;
    let input = entry(m, INPUT_PREFIXES, key)
        .cloned()
        .or_else(|| stack.input_prefix.clone());
    let output = entry(m, OUTPUT_PREFIXES, key)
        .cloned()
        .or_else(|| stack.output_prefix.clone());
    let [previous_device, previous_input, previous_output, _] = set_fields(
        m,
        [
            (DEVICE, Some(Value::from(device.as_str()))),
            (INPUT_PREFIX, input),
            (OUTPUT_PREFIX, output),
            (DEVICE_KEY, Some(Value::from(key))),
        ],
    )?;
    set_fields(
        m,
        [
            (PREVIOUS_DEVICE, previous_device),
            (PREVIOUS_INPUT_PREFIX, previous_input),
            (PREVIOUS_OUTPUT_PREFIX, previous_output),
        ],
    )?;
    Ok(device)
}

/// Step 3 of a fold: the stack-level device, prefixes and pass back; the
/// per-device keys removed.
fn restore(m: &mut Message, stack: Remembered) -> Result<(), ResolveError> {
    set_fields(
        m,
        [
            (DEVICE, stack.device),
            (INPUT_PREFIX, stack.input_prefix),
            (OUTPUT_PREFIX, stack.output_prefix),
            (PASS, stack.pass),
            (DEVICE_KEY, None),
            (PREVIOUS_DEVICE, None),
            (PREVIOUS_INPUT_PREFIX, None),
            (PREVIOUS_OUTPUT_PREFIX, None),
        ],
    )?;
    Ok(())
}

/// Sets (`Some`) or removes (`None`) fields in place, returning the values
/// they replaced, with `set`'s rule for commitments: they are dropped only
/// if a committed key changes. Present fields are replaced without
/// allocating a key.
fn set_fields<const N: usize>(
    m: &mut Message,
    fields: [(&str, Option<Value>); N],
) -> Result<[Option<Value>; N], ResolveError> {
    let covered = if m.get(COMMITMENTS).is_some() {
        Some(covered_keys(m))
    } else {
        None
    };
    let mut drop_commitments = false;
    let mut replaced: [Option<Value>; N] = std::array::from_fn(|_| None);
    for (slot, (name, value)) in replaced.iter_mut().zip(fields) {
        let old = match value {
            Some(v) => match m.get_mut(name) {
                Some(current) => Some(std::mem::replace(current, v)),
                None => {
                    m.insert(name, v)?;
                    None
                }
            },
            None => m.remove(name),
        };
        let watched = covered
            .as_ref()
            .is_some_and(|c| c.as_ref().is_none_or(|keys| keys.iter().any(|k| k == name)));
        if watched && old.as_ref() != m.get(name) {
            drop_commitments = true;
        }
        *slot = old;
    }
    if drop_commitments {
        m.remove(COMMITMENTS);
    }
    Ok(replaced)
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
async fn fold(base: Message, request: &Message, ctx: &Context) -> Result<Outcome, ResolveError> {
    let stack = Remembered::of(&base);
    let mut msg = base;
    set_fields(&mut msg, [(PASS, Some(Value::Int(1)))])?;
    let mut n: u64 = 1;
    loop {
        let index = n.to_string();
        let device = match transform(&mut msg, &index, &stack) {
            Ok(device) => device,
            // No device at this position: the fold is complete.
            Err(ResolveError::NotFound { .. }) => break,
            Err(e) => return Err(e),
        };
        tracing::trace!(index = n, device = device.as_str(), "stack step");
        match ctx.resolve_keeping(msg, request).await {
            Ok(Outcome::Ok(m)) => {
                msg = m;
                n += 1;
            }
            Ok(raw @ Outcome::Raw(_)) => return Ok(raw),
            Ok(Outcome::Skip(m)) => {
                msg = m;
                break;
            }
            Ok(Outcome::Pass(m)) => {
                msg = m;
                let pass = msg.get(PASS).and_then(Value::as_int).unwrap_or(1);
                set_fields(&mut msg, [(PASS, Some(Value::Int(pass.saturating_add(1))))])?;
                n = 1;
            }
            Err(failure) => match (failure.error, failure.base) {
                // The device lacks the key: skip it.
                (ResolveError::NotFound { .. }, Some(kept)) => {
                    msg = kept;
                    n += 1;
                }
                (e, _) => return Err(strategy_error(ctx, n, device, e)),
            },
        }
    }
    restore(&mut msg, stack)?;
    Ok(Outcome::Ok(msg))
}

/// `Map` (SPEC §4.4): each device on its own copy; results by device key;
/// failures dropped.
async fn map(base: Message, request: &Message, ctx: &Context) -> Result<Outcome, ResolveError> {
    let stack = Remembered::of(&base);
    let keys: Vec<String> = match base.get(DEVICE_STACK) {
        Some(Value::Message(entries)) => entries
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| !matches!(k.as_str(), "path" | "hashpath"))
            .collect(),
        Some(Value::List(items)) => (1..=items.len()).map(|i| i.to_string()).collect(),
        _ => Vec::new(),
    };
    let mut results = Message::new();
    for key in keys {
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
    m.get_private(hb_message::hashpath::PRIV)
        .and_then(Value::as_message)
        .is_some_and(|p| p.get(TRANSFORMER).is_some())
}

fn mark_transformer(m: &mut Message) {
    let mut private = m
        .get_private(hb_message::hashpath::PRIV)
        .and_then(Value::as_message)
        .cloned()
        .unwrap_or_default();
    // The literal is a valid key.
    private.insert_key(Key::new(TRANSFORMER).expect("valid key"), true);
    m.insert_key(
        Key::new(hb_message::hashpath::PRIV).expect("valid key"),
        private,
    );
}

fn clear_transformer(m: &mut Message) {
    if let Some(Value::Message(mut private)) = m.remove(hb_message::hashpath::PRIV) {
        private.remove(TRANSFORMER);
        if private.iter_all().next().is_some() {
            m.insert_key(
                Key::new(hb_message::hashpath::PRIV).expect("valid key"),
                private,
            );
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
        set_fields(
            &mut same,
            [
                ("device", Some(Value::from("stack@1.0"))),
                ("y", Some(Value::Int(2))),
            ],
        )
        .unwrap();
        assert!(same.commitments().is_some());
        let mut changed = signed.clone();
        set_fields(&mut changed, [("device", Some(Value::from("other@1.0")))]).unwrap();
        assert!(changed.commitments().is_none());
    }
}
