//! Devices that only the tests of this crate use: they report what the
//! engine handed them.
#![allow(dead_code)]

use std::sync::Arc;

use hb_device::test_support::{test_node_key, test_registry};
use hb_device::{async_trait, Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{Key, Message, Value};

/// `probe@test`: a catch-all handler. For every key it appends
/// `"<key>:<request path>"` to the list `seen` and records what the context
/// carried (`depth`, `node`, `hashpath-ignored`).
pub struct ProbeDevice;

#[async_trait]
impl Device for ProbeDevice {
    fn name(&self) -> &str {
        "probe@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler()
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        let path = request.get_text("path").unwrap_or("<none>").to_string();
        let entry = Value::from(format!("{}:{path}", key.as_str()));
        match base.get_mut("seen") {
            Some(Value::List(l)) => l.push(entry),
            _ => {
                base.insert("seen", Value::List(vec![entry]))?;
            }
        }
        base.insert("depth", ctx.depth() as i64)?;
        base.insert("node", ctx.node_key().address())?;
        base.insert(
            "hashpath-ignored",
            ctx.config().hashpath == hb_device::HashpathMode::Ignore,
        )?;
        Ok(Outcome::Ok(base))
    }
}

/// A device whose info is given, answering every call with
/// `Raw("<name>:<key>")`, so tests see who answered.
pub struct RuleDevice {
    pub name: &'static str,
    pub info: DeviceInfo,
}

#[async_trait]
impl Device for RuleDevice {
    fn name(&self) -> &str {
        self.name
    }
    fn info(&self) -> DeviceInfo {
        self.info.clone()
    }
    async fn call(
        &self,
        key: &Key,
        _base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        Ok(Outcome::Raw(Value::from(format!(
            "{}:{}",
            self.name,
            key.as_str()
        ))))
    }
}

/// The test registry plus `devices`.
pub fn context_with(devices: Vec<Arc<dyn Device>>) -> Context {
    let mut registry = test_registry();
    for d in devices {
        registry.register(d).expect("test device registers");
    }
    Context::new(registry, test_node_key())
}

/// The test registry plus `probe@test`.
pub fn probe_context() -> Context {
    context_with(vec![Arc::new(ProbeDevice)])
}

/// The `seen` list of a probe result, as texts.
pub fn seen(m: &Message) -> Vec<String> {
    m.get("seen")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_text().map(str::to_string))
        .collect()
}

/// `capture@test`: `mark` appends to the list `captured` a message of the
/// stack bookkeeping fields it sees (`device`, `device-key`, `pass`, the
/// prefixes and the `previous-*` values).
pub struct CaptureDevice;

#[async_trait]
impl Device for CaptureDevice {
    fn name(&self) -> &str {
        "capture@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"])
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if key.as_str() != "mark" {
            return Err(ResolveError::not_found(key));
        }
        let mut seen = Message::new();
        for field in [
            "device",
            "device-key",
            "pass",
            "input-prefix",
            "output-prefix",
            "previous-device",
            "previous-input-prefix",
            "previous-output-prefix",
        ] {
            if let Some(v) = base.get(field) {
                seen.insert(field, v.clone())?;
            }
        }
        match base.get_mut("captured") {
            Some(Value::List(l)) => l.push(Value::Message(seen)),
            _ => {
                base.insert("captured", Value::List(vec![Value::Message(seen)]))?;
            }
        }
        Ok(Outcome::Ok(base))
    }
}

/// `absent@test`: a handler that answers not-found for every key, from the
/// device itself (not through message@1.0).
pub struct AbsentDevice;

#[async_trait]
impl Device for AbsentDevice {
    fn name(&self) -> &str {
        "absent@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler()
    }
    async fn call(
        &self,
        key: &Key,
        _base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        Err(ResolveError::not_found(key))
    }
}

/// `nested@test`: runs the request through an inner stack whose devices are
/// the base's `inner-stack`, and returns the inner result's `trail` on the
/// base. Errors of the inner stack are returned as they are.
pub struct NestedStackDevice;

#[async_trait]
impl Device for NestedStackDevice {
    fn name(&self) -> &str {
        "nested@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"])
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        let mut inner = Message::new();
        inner.insert("device", "stack@1.0")?;
        inner.insert(
            "device-stack",
            base.get("inner-stack")
                .cloned()
                .unwrap_or(Value::List(vec![])),
        )?;
        inner.insert(
            "trail",
            base.get("trail").cloned().unwrap_or(Value::List(vec![])),
        )?;
        let out = ctx.resolve(inner, request).await?;
        let Outcome::Ok(m) = out else {
            return Err(ResolveError::not_found(key));
        };
        if let Some(t) = m.get("trail") {
            base.insert("trail", t.clone())?;
        }
        Ok(Outcome::Ok(base))
    }
}

/// `hashpaths@test`: `mark` appends the HashPath its base arrived with (its
/// `priv/hashpath`, or `"none"`) to the list `hashpaths`, so that tests see
/// the HashPath of every step of a fold.
pub struct HashpathRecorder;

#[async_trait]
impl Device for HashpathRecorder {
    fn name(&self) -> &str {
        "hashpaths@test"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["mark"])
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if key.as_str() != "mark" {
            return Err(ResolveError::not_found(key));
        }
        let arrived = base
            .get_private("priv")
            .and_then(Value::as_message)
            .and_then(|p| p.get_text("hashpath"))
            .unwrap_or("none")
            .to_string();
        match base.get_mut("hashpaths") {
            Some(Value::List(l)) => l.push(Value::from(arrived)),
            _ => {
                base.insert("hashpaths", Value::List(vec![Value::from(arrived)]))?;
            }
        }
        Ok(Outcome::Ok(base))
    }
}

/// The test registry plus the stack helpers above.
pub fn stack_context() -> Context {
    context_with(vec![
        Arc::new(CaptureDevice),
        Arc::new(AbsentDevice),
        Arc::new(NestedStackDevice),
        Arc::new(HashpathRecorder),
    ])
}

/// The `captured` list of a capture result.
pub fn captured(m: &Message) -> Vec<Message> {
    m.get("captured")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_message().cloned())
        .collect()
}

/// The stack size of Rust's test threads and of `std::thread::spawn`.
pub const DEFAULT_THREAD_STACK: usize = 2 << 20;

/// Runs `f` on a current-thread runtime in a thread with exactly the
/// default 2 MiB stack, whatever `RUST_MIN_STACK` says: the depth limit
/// must end deep nesting before such a thread's stack does.
pub fn on_default_stack<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    std::thread::Builder::new()
        .stack_size(DEFAULT_THREAD_STACK)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            rt.block_on(f())
        })
        .expect("thread")
        .join()
        .expect("no panic")
}
