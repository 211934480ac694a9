//! `test-device@1.0` (SPEC §6.9): an execution device whose whole state is
//! in plain keys, for tests and benchmarks of the process layer.
//!
//! - `init` sets `count: 0`, `sum: 0`, `seen: []`.
//! - Any other key (the assignment's path) with assignment A and body B:
//!   `count += 1`, A's slot appended to `seen`, `sum += B.add` when that is
//!   an integer (overflow is a device error), and `results = {slot, count,
//!   sum, output: "ok"}` plus `outbox` = `B.outbox` when that is a list.
//!   `B.fail = "error"` is a device error; `B.fail = "panic"` panics when
//!   the device was made with panics allowed, else acts as `"error"`.
//!   `B.delay-ms` (at most 10 000) sleeps before answering.
//! - `snapshot` → `{count, sum, seen}`; `normalize` copies them back.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use hb_device::{Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{ErrorCode, Key, Message, Value};

/// The device's name.
pub const NAME: &str = "test-device@1.0";

/// The longest `delay-ms` honoured.
pub const MAX_DELAY_MS: i64 = 10_000;

/// `test-device@1.0`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestDevice {
    panics: bool,
}

impl TestDevice {
    /// The device; with `panics` (SPEC's `test_device_panics`), a body
    /// with `fail: "panic"` panics instead of failing.
    pub fn new(panics: bool) -> TestDevice {
        TestDevice { panics }
    }
}

/// A failure of `test-device@1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestDeviceError {
    /// The body asked for it (`fail: "error"`).
    Requested {
        /// The slot.
        slot: i64,
    },
    /// `sum + add` does not fit an i64.
    Overflow {
        /// The slot.
        slot: i64,
    },
    /// The state lacks a counter `init` sets (`count`, `sum` or `seen`).
    NotInitialised(&'static str),
}

impl fmt::Display for TestDeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestDeviceError::Requested { slot } => {
                write!(
                    f,
                    "the message at slot {slot} asked test-device@1.0 to fail"
                )
            }
            TestDeviceError::Overflow { slot } => {
                write!(f, "`sum` overflows at slot {slot}")
            }
            TestDeviceError::NotInitialised(key) => {
                write!(
                    f,
                    "the state has no `{key}`: test-device@1.0 was not initialised"
                )
            }
        }
    }
}

impl std::error::Error for TestDeviceError {}

impl ErrorCode for TestDeviceError {
    fn code(&self) -> &'static str {
        "test-device-failed"
    }

    fn status(&self) -> u16 {
        500
    }
}

fn fail(key: &Key, e: TestDeviceError) -> ResolveError {
    ResolveError::device(NAME, key.as_str(), e)
}

#[async_trait]
impl Device for TestDevice {
    fn name(&self) -> &str {
        NAME
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler().never_declines()
    }

    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "init" => {
                base.insert("count", 0)?;
                base.insert("sum", 0)?;
                base.insert("seen", Value::List(Vec::new()))?;
                Ok(Outcome::Ok(base))
            }
            "snapshot" => {
                let mut snap = Message::new();
                for k in ["count", "sum", "seen"] {
                    if let Some(v) = base.get(k) {
                        snap.insert(k, v.clone())?;
                    }
                }
                Ok(Outcome::Ok(snap))
            }
            "normalize" => {
                // Inside a stack the snapshot sits at `snapshot/<device-key>`;
                // alone, at `snapshot`. Either holds the three counters.
                let snap = base
                    .get_message("snapshot")
                    .map(|s| {
                        if s.get("count").is_some() {
                            s.clone()
                        } else {
                            s.iter()
                                .filter_map(|(_, v)| v.as_message())
                                .find(|m| m.get("count").is_some())
                                .cloned()
                                .unwrap_or_default()
                        }
                    })
                    .unwrap_or_default();
                for k in ["count", "sum", "seen"] {
                    if let Some(v) = snap.get(k) {
                        base.insert(k, v.clone())?;
                    }
                }
                Ok(Outcome::Ok(base))
            }
            _ => self.apply(key, base, request).await,
        }
    }
}

impl TestDevice {
    async fn apply(
        &self,
        key: &Key,
        mut base: Message,
        assignment: &Message,
    ) -> Result<Outcome, ResolveError> {
        let slot = assignment.get_int("slot").unwrap_or(-1);
        let body = assignment.get_message("body").cloned().unwrap_or_default();
        match body.get_text("fail") {
            Some("panic") if self.panics => panic!("test-device@1.0 panics at slot {slot}"),
            Some("panic") | Some("error") => {
                return Err(fail(key, TestDeviceError::Requested { slot }))
            }
            _ => {}
        }
        if let Some(ms) = body.get_int("delay-ms") {
            let ms = u64::try_from(ms.clamp(0, MAX_DELAY_MS)).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let count = base
            .get_int("count")
            .ok_or_else(|| fail(key, TestDeviceError::NotInitialised("count")))?;
        let mut sum = base
            .get_int("sum")
            .ok_or_else(|| fail(key, TestDeviceError::NotInitialised("sum")))?;
        let mut seen = base
            .get("seen")
            .and_then(Value::as_list)
            .map(<[Value]>::to_vec)
            .ok_or_else(|| fail(key, TestDeviceError::NotInitialised("seen")))?;
        if let Some(add) = body.get_int("add") {
            sum = sum
                .checked_add(add)
                .ok_or_else(|| fail(key, TestDeviceError::Overflow { slot }))?;
        }
        let count = count.saturating_add(1);
        seen.push(Value::Int(slot));
        base.insert("count", count)?;
        base.insert("sum", sum)?;
        base.insert("seen", Value::List(seen))?;
        let mut results = Message::new()
            .with("slot", slot)?
            .with("count", count)?
            .with("sum", sum)?
            .with("output", "ok")?;
        if let Some(Value::List(outbox)) = body.get("outbox") {
            results.insert("outbox", Value::List(outbox.clone()))?;
        }
        base.insert("results", results)?;
        Ok(Outcome::Ok(base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_device::DeviceRegistry;
    use hb_message::{msg, NodeKey};
    use std::sync::Arc;

    fn ctx(panics: bool) -> Context {
        let mut registry = DeviceRegistry::new();
        registry
            .register(Arc::new(TestDevice::new(panics)))
            .expect("registered once");
        Context::new(registry, NodeKey::from_seed(&[1; 32]))
    }

    async fn call(
        ctx: &Context,
        key: &str,
        base: Message,
        req: Message,
    ) -> Result<Message, ResolveError> {
        let mut req = req;
        req.insert("path", key).expect("path");
        match ctx.resolve(base, &req).await? {
            Outcome::Ok(m) => Ok(m),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn assignment(slot: i64, body: Message) -> Message {
        msg! { "slot" => slot, "body" => body }
    }

    #[actix_rt::test]
    async fn counts_sums_and_records_each_slot() {
        let ctx = ctx(false);
        let base = msg! { "device" => NAME };
        let s = call(&ctx, "init", base, msg! {}).await.unwrap();
        let s = call(&ctx, "compute", s, assignment(1, msg! { "add" => 5 }))
            .await
            .unwrap();
        let s = call(
            &ctx,
            "compute",
            s,
            assignment(
                2,
                msg! { "add" => -2, "outbox" => vec![Value::from(msg! { "target" => "x" })] },
            ),
        )
        .await
        .unwrap();
        assert_eq!((s.get_int("count"), s.get_int("sum")), (Some(2), Some(3)));
        assert_eq!(
            s.get("seen"),
            Some(&Value::List(vec![Value::Int(1), Value::Int(2)]))
        );
        let r = s.get_message("results").unwrap();
        assert_eq!(
            (r.get_int("slot"), r.get_text("output")),
            (Some(2), Some("ok"))
        );
        assert_eq!(
            r.get("outbox").and_then(Value::as_list).map(<[Value]>::len),
            Some(1)
        );
    }

    #[actix_rt::test]
    async fn a_snapshot_normalizes_back_to_the_same_counters() {
        let ctx = ctx(false);
        let s = call(&ctx, "init", msg! { "device" => NAME }, msg! {})
            .await
            .unwrap();
        let s = call(&ctx, "compute", s, assignment(1, msg! { "add" => 7 }))
            .await
            .unwrap();
        let snap = call(&ctx, "snapshot", s.clone(), msg! {}).await.unwrap();
        let fresh = msg! { "device" => NAME, "snapshot" => snap };
        let back = call(&ctx, "normalize", fresh, msg! {}).await.unwrap();
        for k in ["count", "sum", "seen"] {
            assert_eq!(back.get(k), s.get(k), "{k}");
        }
    }

    #[actix_rt::test]
    async fn failures_are_device_errors_and_panics_only_when_allowed() {
        let s = call(&ctx(false), "init", msg! { "device" => NAME }, msg! {})
            .await
            .unwrap();
        for (panics, fail) in [(false, "error"), (false, "panic"), (true, "error")] {
            let err = call(
                &ctx(panics),
                "compute",
                s.clone(),
                assignment(1, msg! { "fail" => fail }),
            )
            .await
            .unwrap_err();
            assert_eq!(err.code(), "test-device-failed", "{panics} {fail}: {err}");
        }
        let err = call(
            &ctx(true),
            "compute",
            s.clone(),
            assignment(1, msg! { "fail" => "panic" }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "device-panic", "{err}");
        let mut big = s;
        big.insert("sum", i64::MAX).unwrap();
        let err = call(
            &ctx(false),
            "compute",
            big,
            assignment(1, msg! { "add" => 1 }),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("overflow"), "{err}");
    }
}
