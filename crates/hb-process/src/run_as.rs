//! Device swapping (SPEC §6.2): a process state is resolved as its
//! scheduler, execution or push device for one call, and comes back as
//! `process@1.0`.

use hb_device::{Context, Outcome, ResolveError};
use hb_message::{Message, Value};

/// `process@1.0`'s name.
pub const PROCESS_DEVICE: &str = "process@1.0";

/// Which of a process's devices a call runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `scheduler-device` (default `scheduler@1.0`).
    Scheduler,
    /// `execution-device` (default `lua@5.3a`).
    Execution,
    /// `push-device` (default `push@1.0`).
    Push,
}

impl Kind {
    /// The state key naming this kind's device.
    pub fn device_key(self) -> &'static str {
        match self {
            Kind::Scheduler => "scheduler-device",
            Kind::Execution => "execution-device",
            Kind::Push => "push-device",
        }
    }

    /// The device used when the state names none.
    pub fn default_device(self) -> &'static str {
        match self {
            Kind::Scheduler => "scheduler@1.0",
            Kind::Execution => "lua@5.3a",
            Kind::Push => "push@1.0",
        }
    }

    fn output_prefixes_key(self) -> &'static str {
        match self {
            Kind::Scheduler => "scheduler-output-prefixes",
            Kind::Execution => "execution-output-prefixes",
            Kind::Push => "push-output-prefixes",
        }
    }
}

/// The device `state` runs as for `kind`.
pub fn device_for(state: &Message, kind: Kind) -> String {
    state
        .get_text(kind.device_key())
        .unwrap_or(kind.default_device())
        .to_string()
}

/// Resolves `request` on `state` as its `kind` device (SPEC §6.2): the
/// device is swapped in, `input-prefix` defaults to `process`,
/// `output-prefixes` comes from `<kind>-output-prefixes`, and a message
/// result that still names the swapped-in device gets the original device
/// back. Any other result (`next`'s `{body, state}`, a raw value) is
/// returned unchanged.
pub async fn run_as(
    ctx: &Context,
    kind: Kind,
    mut state: Message,
    request: &Message,
) -> Result<Outcome, ResolveError> {
    let original = state.get("device").cloned();
    let device = device_for(&state, kind);
    state.insert("device", device.as_str())?;
    if state.get("input-prefix").is_none() {
        state.insert("input-prefix", "process")?;
    }
    if let Some(prefixes) = state.get(kind.output_prefixes_key()).cloned() {
        state.insert("output-prefixes", prefixes)?;
    }
    match ctx.resolve(state, request).await? {
        Outcome::Ok(mut m) if m.get_text("device") == Some(device.as_str()) => {
            match original {
                Some(v) => {
                    m.insert("device", v)?;
                }
                None => {
                    m.remove("device");
                }
            }
            Ok(Outcome::Ok(m))
        }
        other => Ok(other),
    }
}

/// Execution devices of the ao ecosystem that a node accepts in a process
/// definition without running them (SPEC §10.5): WASM devices. A process
/// naming one registers and is scheduled; computing it is
/// [`UnsupportedExecutionDevice`](crate::ComputeError::UnsupportedExecutionDevice).
pub const UNSUPPORTED_EXECUTION_DEVICES: [&str; 3] = ["genesis-wasm@1.0", "wasm64@1.0", "wasi@1.0"];

/// The first device that computing `definition` would run and that `has`
/// does not know: its execution device (default `lua@5.3a`), and for a
/// `stack@1.0` execution device every entry of its `device-stack`. `None`
/// when all are there.
pub fn missing_execution_device(
    definition: &Message,
    has: impl Fn(&str) -> bool,
) -> Option<String> {
    let execution = device_for(definition, Kind::Execution);
    let mut names = vec![execution.clone()];
    if execution.eq_ignore_ascii_case("stack@1.0") {
        match definition.get("device-stack") {
            Some(Value::List(l)) => {
                names.extend(l.iter().filter_map(Value::as_text).map(String::from))
            }
            Some(Value::Message(m)) => {
                names.extend(m.iter().filter_map(|(_, v)| v.as_text()).map(String::from))
            }
            _ => {}
        }
    }
    names.into_iter().find(|n| !has(n))
}

/// A request for `key` (its `path`), with nothing else.
pub fn request_for(key: &str) -> Result<Message, hb_message::MessageError> {
    Message::new().with("path", Value::from(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(name: &str) -> bool {
        ["lua@5.3a", "stack@1.0", "patch@1.0"].contains(&name)
    }

    #[test]
    fn the_execution_device_defaults_to_lua_and_is_found() {
        let lua = Message::new().with("type", "Process").unwrap();
        assert_eq!(missing_execution_device(&lua, has), None);
    }

    #[test]
    fn an_execution_device_the_node_lacks_is_named() {
        let wasm = Message::new()
            .with("execution-device", "genesis-wasm@1.0")
            .unwrap();
        assert_eq!(
            missing_execution_device(&wasm, has).as_deref(),
            Some("genesis-wasm@1.0")
        );
    }

    #[test]
    fn a_stack_is_checked_entry_by_entry() {
        let stack = |entries: Vec<Value>| {
            Message::new()
                .with("execution-device", "stack@1.0")
                .unwrap()
                .with("device-stack", Value::List(entries))
                .unwrap()
        };
        let fine = stack(vec!["lua@5.3a".into(), "patch@1.0".into()]);
        assert_eq!(missing_execution_device(&fine, has), None);
        let wasm = stack(vec!["wasm64@1.0".into(), "patch@1.0".into()]);
        assert_eq!(
            missing_execution_device(&wasm, has).as_deref(),
            Some("wasm64@1.0")
        );
    }
}
