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

/// A request for `key` (its `path`), with nothing else.
pub fn request_for(key: &str) -> Result<Message, hb_message::MessageError> {
    Message::new().with("path", Value::from(key))
}
