//! The `Device` trait: named code that gives meaning to a message's keys
//! (SPEC §4.1).

use async_trait::async_trait;
use hb_message::{Key, Message, Value};

use crate::context::Context;
use crate::error::ResolveError;

/// What a device says about the keys it handles.
///
/// The engine reads it to decide, for each key, whether the device or
/// `message@1.0` answers (SPEC §4.2 "Key → function"): a key is *exported* if
/// `exports` is `None` or contains it, and `excludes` does not. Then:
///
/// 1. `handler` and exported → the device is called (it handles every key);
/// 2. the key is in `functions` and exported → the device is called;
/// 3. `default` and exported → the device is called;
/// 4. otherwise `message@1.0` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The keys the device may answer; `None` means every key.
    pub exports: Option<Vec<Key>>,
    /// Keys the device never answers (they go to `message@1.0`).
    pub excludes: Vec<Key>,
    /// Whether the device has a catch-all handler for every exported key.
    pub handler: bool,
    /// Whether the device has a default function for keys that are not
    /// among its `functions`.
    pub default: bool,
    /// The keys the device implements as named functions.
    pub functions: Vec<Key>,
    /// Whether a call may answer `NotFound` for a key routed to the device
    /// (default `true`). A stack skips a device that answers `NotFound` and
    /// goes on with the message as it was, so it keeps a copy of the message
    /// while such a device runs. A device that always answers the keys
    /// routed to it may say `false` to spare that copy; if it answers
    /// `NotFound` anyway, the stack has no copy and applies its error
    /// strategy instead of skipping.
    pub may_decline: bool,
}

impl Default for DeviceInfo {
    /// Every key exported, nothing excluded, no handler, no default, no
    /// functions, and `may_decline`.
    fn default() -> DeviceInfo {
        DeviceInfo {
            exports: None,
            excludes: Vec::new(),
            handler: false,
            default: false,
            functions: Vec::new(),
            may_decline: true,
        }
    }
}

impl DeviceInfo {
    /// A device that implements exactly these named functions; every other
    /// key goes to `message@1.0`.
    pub fn with_functions<I, S>(functions: I) -> DeviceInfo
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        DeviceInfo {
            functions: keys(functions),
            ..DeviceInfo::default()
        }
    }

    /// A device with a catch-all handler.
    pub fn handler() -> DeviceInfo {
        DeviceInfo {
            handler: true,
            ..DeviceInfo::default()
        }
    }

    /// Builder: restricts the exported keys.
    pub fn exports<I, S>(mut self, exports: I) -> DeviceInfo
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.exports = Some(keys(exports));
        self
    }

    /// Builder: excludes keys.
    pub fn excludes<I, S>(mut self, excludes: I) -> DeviceInfo
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.excludes = keys(excludes);
        self
    }

    /// Builder: the device always answers the keys routed to it, never
    /// `NotFound` (see [`may_decline`](DeviceInfo::may_decline)).
    pub fn never_declines(mut self) -> DeviceInfo {
        self.may_decline = false;
        self
    }

    /// Builder: adds a default function.
    pub fn with_default(mut self) -> DeviceInfo {
        self.default = true;
        self
    }

    /// Whether `key` is exported: `exports` is absent or lists it, and
    /// `excludes` does not.
    pub fn is_exported(&self, key: &str) -> bool {
        self.exports
            .as_ref()
            .is_none_or(|e| e.iter().any(|k| k.as_str() == key))
            && !self.excludes.iter().any(|k| k.as_str() == key)
    }

    /// Which rule of SPEC §4.2 picks the function for `key`.
    pub fn route(&self, key: &str) -> Route {
        if !self.is_exported(key) {
            return Route::MessageDevice;
        }
        if self.handler {
            Route::Handler
        } else if self.functions.iter().any(|k| k.as_str() == key) {
            Route::Function
        } else if self.default {
            Route::Default
        } else {
            Route::MessageDevice
        }
    }
}

/// Normalises key names given to the builders; names that are not valid keys
/// can never be looked up and are dropped.
fn keys<I, S>(names: I) -> Vec<Key>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    names
        .into_iter()
        .filter_map(|n| Key::new(n.as_ref()).ok())
        .collect()
}

/// The function that answers a key (SPEC §4.2 rules 1–4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Rule 1: the device's catch-all handler.
    Handler,
    /// Rule 2: the device's function of that name.
    Function,
    /// Rule 3: the device's default function.
    Default,
    /// Rule 4: `message@1.0`.
    MessageDevice,
}

impl Route {
    /// Whether the device itself is called (rules 1–3).
    pub fn calls_device(self) -> bool {
        self != Route::MessageDevice
    }
}

/// What a device call produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A message; in a chain it becomes the next base, and the engine sets
    /// its `priv/hashpath`.
    Ok(Message),
    /// A raw value (a field read, a list of keys, an ID…).
    Raw(Value),
    /// Stop the enclosing stack's pass here, with this message.
    Skip(Message),
    /// Restart the enclosing stack from its first device, with this message.
    Pass(Message),
}

impl Outcome {
    /// `Ok` for a message value, `Raw` for anything else: how a field read
    /// answers.
    pub fn from_value(v: Value) -> Outcome {
        match v {
            Value::Message(m) => Outcome::Ok(m),
            other => Outcome::Raw(other),
        }
    }

    /// The outcome as a value: the message or the raw value.
    pub fn into_value(self) -> Value {
        match self {
            Outcome::Ok(m) | Outcome::Skip(m) | Outcome::Pass(m) => Value::Message(m),
            Outcome::Raw(v) => v,
        }
    }

    /// The message of an `Ok` outcome.
    pub fn ok_message(self) -> Option<Message> {
        match self {
            Outcome::Ok(m) => Some(m),
            _ => None,
        }
    }

    /// The outcome's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok(_) => "ok",
            Outcome::Raw(_) => "raw",
            Outcome::Skip(_) => "skip",
            Outcome::Pass(_) => "pass",
        }
    }
}

/// A device: a name, an info record, and an async call.
///
/// Devices are shared as `Arc<dyn Device>` and registered in a
/// [`DeviceRegistry`](crate::DeviceRegistry). The engine calls
/// [`call`](Device::call) only for keys that the rules of [`DeviceInfo`]
/// assign to the device; every other key goes to `message@1.0`.
///
/// Write the call as a `match` on the key; answer
/// [`ResolveError::NotFound`] for keys the device does not have (a stack then
/// skips the device). Blocking work (disk, long computations) belongs on a
/// blocking thread (`tokio::task::spawn_blocking`), never inline.
///
/// See `docs/devices.md` for a complete example.
#[async_trait]
pub trait Device: Send + Sync + 'static {
    /// The device's name, `name@version` (for example `counter@1.0`).
    fn name(&self) -> &str;

    /// The device's info. Read once, when the device is registered.
    fn info(&self) -> DeviceInfo;

    /// An info that depends on the base (as `stack@1.0`'s `stack-keys`), or
    /// `None` to use [`info`](Device::info). Called on every resolution, so
    /// it should answer `None` quickly in the common case.
    fn info_for(&self, base: &Message) -> Option<DeviceInfo> {
        let _ = base;
        None
    }

    /// Resolves `key` on `base` for `request` (whose `path` is `key`).
    ///
    /// The base is handed over: modify it and return it in
    /// [`Outcome::Ok`] without cloning. Nested resolutions go through
    /// `ctx` ([`Context::resolve`]), which counts their depth.
    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError>;
}

/// Checks a device name: `name@version`, each part non-empty and made of
/// ASCII letters, digits, `-`, `_` and `.`, 128 bytes at most.
pub fn validate_device_name(name: &str) -> Result<(), ResolveError> {
    let invalid = |reason| ResolveError::InvalidDeviceName {
        name: crate::error::truncate(name),
        reason,
    };
    if name.len() > 128 {
        return Err(invalid("device names are at most 128 bytes"));
    }
    let Some((base, version)) = name.split_once('@') else {
        return Err(invalid("device names have the form name@version"));
    };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !part_ok(base) {
        return Err(invalid(
            "the name before '@' must be non-empty ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    if !part_ok(version) {
        return Err(invalid(
            "the version after '@' must be non-empty ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_to_function_rule_order() {
        let handler = DeviceInfo {
            handler: true,
            default: true,
            functions: keys(["f"]),
            ..DeviceInfo::default()
        };
        assert_eq!(handler.route("f"), Route::Handler);
        assert_eq!(handler.route("other"), Route::Handler);

        let functions = DeviceInfo::with_functions(["f"]).with_default();
        assert_eq!(functions.route("f"), Route::Function);
        assert_eq!(functions.route("other"), Route::Default);

        let plain = DeviceInfo::with_functions(["f"]);
        assert_eq!(plain.route("other"), Route::MessageDevice);
    }

    #[test]
    fn unexported_and_excluded_keys_go_to_message_device() {
        let info = DeviceInfo::handler().exports(["a", "b"]).excludes(["b"]);
        assert_eq!(info.route("a"), Route::Handler);
        assert_eq!(info.route("b"), Route::MessageDevice);
        assert_eq!(info.route("c"), Route::MessageDevice);
        let empty = DeviceInfo::with_functions(["a"]).exports(Vec::<&str>::new());
        assert_eq!(empty.route("a"), Route::MessageDevice);
        assert!(!Route::MessageDevice.calls_device());
        assert!(Route::Default.calls_device());
    }

    #[test]
    fn device_names_are_name_at_version() {
        for ok in ["message@1.0", "lua@5.3a", "test-device@1.0", "A_b.c@v2"] {
            assert!(validate_device_name(ok).is_ok(), "{ok}");
        }
        let long = format!("{}@1.0", "a".repeat(130));
        for bad in [
            "", "message", "@1.0", "message@", "a@b@c", "a b@1.0", "a/b@1.0", &long,
        ] {
            assert!(
                matches!(
                    validate_device_name(bad),
                    Err(ResolveError::InvalidDeviceName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn outcome_from_value_maps_messages_to_ok() {
        assert_eq!(
            Outcome::from_value(Value::Message(Message::new())),
            Outcome::Ok(Message::new())
        );
        assert_eq!(
            Outcome::from_value(Value::Int(1)),
            Outcome::Raw(Value::Int(1))
        );
        assert_eq!(Outcome::Skip(Message::new()).kind(), "skip");
    }
}
