//! Test-support devices (feature `test-devices`): the examples of SPEC §4.4
//! and a few more for failure paths. Not for production registries.
//!
//! | device | key | does |
//! |---|---|---|
//! | `mark@test` | `mark` | appends its `device-key` to the list `trail` |
//! | `halt@test` | `mark` | appends `"h"`, returns Skip |
//! | `loop@test` | `mark` | appends `"p<pass>"`, returns Pass while `pass < 2` |
//! | `empty@test` | – | exports nothing |
//! | `seven@test` | `mark` | returns `Raw(7)` |
//! | `lift@test` | `lift` | copies request `v` under the input prefix to base `v` under the output prefix |
//! | `fail@test` | `mark` | fails with a device error |
//! | `panic@test` | `mark` | panics |
//! | `recurse@test` | `recurse` | resolves `recurse` on itself again, forever (depth tests) |

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use hb_message::{Key, Message, NodeKey, SetMode, Update, Value};

use crate::context::Context;
use crate::device::{Device, DeviceInfo, Outcome};
use crate::error::ResolveError;
use crate::registry::DeviceRegistry;
use crate::stack::{self, DEVICE_KEY, PASS};

/// Appends `entry` to the list `trail` (created if absent).
fn append_trail(base: &mut Message, entry: String) -> Result<(), ResolveError> {
    match base.get_mut("trail") {
        Some(Value::List(trail)) => trail.push(Value::Text(entry)),
        _ => {
            base.insert("trail", Value::List(vec![Value::Text(entry)]))?;
        }
    }
    Ok(())
}

/// `mark@test`: `mark` appends its `device-key` to `trail`.
#[derive(Debug, Default)]
pub struct MarkDevice;

#[async_trait]
impl Device for MarkDevice {
    fn name(&self) -> &str {
        "mark@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"]).never_declines()
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "mark" => {
                let entry = base.get_text(DEVICE_KEY).unwrap_or("?").to_string();
                append_trail(&mut base, entry)?;
                Ok(Outcome::Ok(base))
            }
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

/// `halt@test`: `mark` appends `"h"` and returns Skip.
#[derive(Debug, Default)]
pub struct HaltDevice;

#[async_trait]
impl Device for HaltDevice {
    fn name(&self) -> &str {
        "halt@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"]).never_declines()
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "mark" => {
                append_trail(&mut base, "h".into())?;
                Ok(Outcome::Skip(base))
            }
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

/// `loop@test`: `mark` appends `"p<pass>"` and returns Pass while `pass < 2`.
#[derive(Debug, Default)]
pub struct LoopDevice;

#[async_trait]
impl Device for LoopDevice {
    fn name(&self) -> &str {
        "loop@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"]).never_declines()
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "mark" => {
                let pass = base.get_int(PASS).unwrap_or(1);
                append_trail(&mut base, format!("p{pass}"))?;
                Ok(if pass < 2 {
                    Outcome::Pass(base)
                } else {
                    Outcome::Ok(base)
                })
            }
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

/// `empty@test`: exports nothing, so every key goes to `message@1.0`.
#[derive(Debug, Default)]
pub struct EmptyDevice;

#[async_trait]
impl Device for EmptyDevice {
    fn name(&self) -> &str {
        "empty@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"]).exports(Vec::<&str>::new())
    }
    async fn call(
        &self,
        key: &Key,
        _base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        // Never called: nothing is exported.
        Err(ResolveError::not_found(key))
    }
}

/// `seven@test`: `mark` returns `Raw(7)`.
#[derive(Debug, Default)]
pub struct SevenDevice;

#[async_trait]
impl Device for SevenDevice {
    fn name(&self) -> &str {
        "seven@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"]).never_declines()
    }
    async fn call(
        &self,
        key: &Key,
        _base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "mark" => Ok(Outcome::Raw(Value::Int(7))),
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

/// `lift@test`: `lift` copies request `v` under the input prefix to base `v`
/// under the output prefix.
#[derive(Debug, Default)]
pub struct LiftDevice;

#[async_trait]
impl Device for LiftDevice {
    fn name(&self) -> &str {
        "lift@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["lift"]).never_declines()
    }
    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if key.as_str() != "lift" {
            return Err(ResolveError::not_found(key));
        }
        let from = stack::prefixed(stack::input_prefix(&base), "v");
        let to = stack::prefixed(stack::output_prefix(&base), "v");
        let value = request.get_path(&from).cloned().ok_or_else(|| {
            ResolveError::invalid_input("lift", format!("the request has no {from:?}"))
        })?;
        let to = Key::new(&to).map_err(|e| ResolveError::invalid_input("lift", e.to_string()))?;
        Ok(Outcome::Ok(
            base.set(&[(to, Update::Value(value))], SetMode::DeepMerge),
        ))
    }
}

/// The error of `fail@test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFailure;

impl fmt::Display for TestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fail@test fails on purpose")
    }
}

impl std::error::Error for TestFailure {}

impl hb_message::ErrorCode for TestFailure {
    fn code(&self) -> &'static str {
        "test-failure"
    }

    fn status(&self) -> u16 {
        500
    }
}

/// `fail@test`: `mark` fails with a device error ([`TestFailure`]).
#[derive(Debug, Default)]
pub struct FailDevice;

#[async_trait]
impl Device for FailDevice {
    fn name(&self) -> &str {
        "fail@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"]).never_declines()
    }
    async fn call(
        &self,
        key: &Key,
        _base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "mark" => Err(ResolveError::device(self.name(), key, TestFailure)),
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

/// `panic@test`: `mark` panics.
#[derive(Debug, Default)]
pub struct PanicDevice;

#[async_trait]
impl Device for PanicDevice {
    fn name(&self) -> &str {
        "panic@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"]).never_declines()
    }
    async fn call(
        &self,
        key: &Key,
        _base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "mark" => panic!("panic@test panics on purpose"),
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

/// `recurse@test`: `recurse` resolves the same request on its base again,
/// so only the depth limit ends it.
#[derive(Debug, Default)]
pub struct RecurseDevice;

#[async_trait]
impl Device for RecurseDevice {
    fn name(&self) -> &str {
        "recurse@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["recurse"])
    }
    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "recurse" => ctx.resolve(base, request).await,
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

/// Every test device, as `Arc<dyn Device>`.
pub fn test_devices() -> Vec<Arc<dyn Device>> {
    vec![
        Arc::new(MarkDevice),
        Arc::new(HaltDevice),
        Arc::new(LoopDevice),
        Arc::new(EmptyDevice),
        Arc::new(SevenDevice),
        Arc::new(LiftDevice),
        Arc::new(FailDevice),
        Arc::new(PanicDevice),
        Arc::new(RecurseDevice),
    ]
}

/// Registers every test device.
pub fn register_test_devices(registry: &mut DeviceRegistry) -> Result<(), ResolveError> {
    for d in test_devices() {
        registry.register(d)?;
    }
    Ok(())
}

/// `message@1.0`, `stack@1.0` and the test devices.
pub fn test_registry() -> DeviceRegistry {
    let mut r = DeviceRegistry::new();
    // The test devices have valid, distinct names not among the built-ins.
    register_test_devices(&mut r).expect("test devices register");
    r
}

/// The fixed node key of tests (seed `[7; 32]`).
pub fn test_node_key() -> NodeKey {
    NodeKey::from_seed(&[7; 32])
}

/// A context with [`test_registry`], [`test_node_key`], no store and the
/// default configuration.
pub fn test_context() -> Context {
    Context::new(test_registry(), test_node_key())
}

/// A stack message: `device: stack@1.0`, `device-stack` keyed `"1"`, `"2"`,
/// … from `devices` (short names get `@test`), and an empty `trail`.
pub fn stack_of(devices: &[&str]) -> Message {
    let mut entries = Message::new();
    for (i, d) in devices.iter().enumerate() {
        let name = if d.contains('@') {
            (*d).to_string()
        } else {
            format!("{d}@test")
        };
        entries.insert_key(Key::from_index(i as u64 + 1), name);
    }
    let mut m = Message::new();
    // Literal keys are valid.
    m.insert("device", stack::NAME).expect("valid key");
    m.insert(stack::DEVICE_STACK, entries).expect("valid key");
    m.insert("trail", Value::List(Vec::new()))
        .expect("valid key");
    m
}

/// The `trail` of a message as texts.
pub fn trail(m: &Message) -> Vec<String> {
    m.get("trail")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .map(|v| v.as_text().unwrap_or("<non-text>").to_string())
        .collect()
}
