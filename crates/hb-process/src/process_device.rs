//! `process@1.0` (SPEC §6.3–6.5.2) through the resolution engine: `compute`
//! (with `slot`, else as `now`), `now` (with `max-age` and `min-slot`),
//! `status`, and `schedule` / `slot` run as the process's scheduler device.
//! The device finds the [`Processes`](crate::Processes) handle in the
//! context's extensions.
//!
//! `dry-run` evaluates the request's `body` (or the request) on a copy of
//! the latest state; `push` runs as the process's push device (default
//! [`PushDevice`], `push@1.0`: given `slot` or a `body` it first schedules,
//! it pushes that slot's outbox, SPEC §6.12); `snapshot` runs the execution
//! device's `snapshot` on the base.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use hb_device::{Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{Id, Key, Message, Value};

use crate::error::ComputeError;
use crate::processes::{Freshness, Inner, Processes};
use crate::run_as::{run_as, Kind, PROCESS_DEVICE};

/// The handle as the device finds it: weak, so the context that holds it
/// does not keep the process layer alive.
#[derive(Clone)]
pub(crate) struct ProcessesRef(pub(crate) Weak<Inner>);

/// `process@1.0`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessDevice;

/// `push@1.0` (SPEC §6.12), the default push device: with a `slot`, or a
/// `body` it first schedules on the process, it pushes that slot's outbox
/// through [`Processes::push`]; `max-depth` bounds the recursion.
#[derive(Debug, Default, Clone, Copy)]
pub struct PushDevice;

#[async_trait]
impl Device for PushDevice {
    fn name(&self) -> &str {
        "push@1.0"
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["push"])
            .exports(["push"])
            .never_declines()
    }

    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if key.as_str() != "push" {
            return Err(ResolveError::NotFound {
                key: key.as_str().to_string(),
            });
        }
        let fail = |e: ComputeError| ResolveError::device("push@1.0", key.as_str(), e);
        let processes = ctx
            .extension::<ProcessesRef>()
            .and_then(|r| r.0.upgrade())
            .map(|inner| Processes { inner })
            .ok_or_else(|| fail(ComputeError::NotRunning))?;
        let pid = process_id(&base).map_err(fail)?;
        let slot = match (uint_param(request, "slot"), request.get_message("body")) {
            (Err(e), _) => return Err(fail(e)),
            (Ok(Some(slot)), _) => slot,
            // The body is first scheduled on this process.
            (Ok(None), Some(body)) => processes
                .schedule_on(pid, body.clone())
                .await
                .map_err(fail)?,
            (Ok(None), None) => {
                return Err(fail(ComputeError::MissingSlot {
                    detail: "push needs a `slot` or a `body`".into(),
                }))
            }
        };
        let max_depth = uint_param(request, "max-depth").map_err(fail)?;
        processes
            .push(pid, slot, max_depth)
            .await
            .map(Outcome::Ok)
            .map_err(fail)
    }
}

const EXPORTS: [&str; 8] = [
    "compute", "now", "status", "schedule", "slot", "dry-run", "push", "snapshot",
];

fn fail(key: &Key, e: ComputeError) -> ResolveError {
    ResolveError::device(PROCESS_DEVICE, key.as_str(), e)
}

#[async_trait]
impl Device for ProcessDevice {
    fn name(&self) -> &str {
        PROCESS_DEVICE
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(EXPORTS)
            .exports(EXPORTS)
            .never_declines()
    }

    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if matches!(key.as_str(), "schedule" | "slot") {
            return run_as(ctx, Kind::Scheduler, base, request).await;
        }
        if key.as_str() == "push" {
            // Run as the process's push device (`push-device`, default
            // `push@1.0`; SPEC §6.3).
            return run_as(ctx, Kind::Push, base, request).await;
        }
        if key.as_str() == "snapshot" {
            // The execution device's snapshot of this state, in Map mode,
            // with HashPaths off (SPEC §6.3).
            let ctx = ctx.with_hashpath(hb_device::HashpathMode::Ignore);
            let request = Message::new()
                .with("path", "snapshot")?
                .with("mode", "Map")?;
            return run_as(&ctx, Kind::Execution, base, &request).await;
        }
        let processes = ctx
            .extension::<ProcessesRef>()
            .and_then(|r| r.0.upgrade())
            .map(|inner| Processes { inner })
            .ok_or_else(|| fail(key, ComputeError::NotRunning))?;
        let pid = process_id(&base).map_err(|e| fail(key, e))?;
        let answer = match key.as_str() {
            "compute" => match uint_param(request, "slot").map_err(|e| fail(key, e))? {
                Some(slot) => processes.compute(pid, slot).await,
                None => {
                    processes
                        .now(pid, hints(request).map_err(|e| fail(key, e))?)
                        .await
                }
            },
            "now" => {
                processes
                    .now(pid, hints(request).map_err(|e| fail(key, e))?)
                    .await
            }
            "status" => {
                return processes
                    .status(pid)
                    .await
                    .map(Outcome::Ok)
                    .map_err(|e| fail(key, e))
            }
            "dry-run" => {
                let message = match request.get("body") {
                    Some(Value::Message(m)) => m.clone(),
                    _ => {
                        let mut m = request.clone();
                        for routing in ["path", "method", "slot", "max-age", "min-slot"] {
                            m.remove(routing);
                        }
                        m
                    }
                };
                let hints = hints(request).map_err(|e| fail(key, e))?;
                return processes
                    .dry_run(pid, message, hints)
                    .await
                    .map(Outcome::Ok)
                    .map_err(|e| fail(key, e));
            }
            _ => {
                return Err(ResolveError::NotFound {
                    key: key.as_str().to_string(),
                })
            }
        };
        let computed = answer.map_err(|e| fail(key, e))?;
        Ok(Outcome::Ok(with_computed_at(computed)?))
    }
}

/// Where a `compute` or `now` answer carries when its state was computed
/// (ms since the Unix epoch), under `priv`: runtime data, never part of the
/// state's ID, never serialised. Read it with [`computed_at`].
pub const COMPUTED_AT: &str = "computed-at";

/// The state of `computed`, with `priv/computed-at` set.
fn with_computed_at(computed: crate::Computed) -> Result<Message, ResolveError> {
    let mut state = computed.state;
    let mut private = state
        .get_private("priv")
        .and_then(Value::as_message)
        .cloned()
        .unwrap_or_default();
    private.insert(
        COMPUTED_AT,
        i64::try_from(computed.computed_at_ms).unwrap_or(i64::MAX),
    )?;
    state.set_private("priv", private)?;
    Ok(state)
}

/// When the state answered by `process@1.0`'s `compute` or `now` was
/// computed (ms since the Unix epoch), if `answer` is such a state.
pub fn computed_at(answer: &Message) -> Option<u64> {
    answer
        .get_private("priv")
        .and_then(Value::as_message)
        .and_then(|p| p.get_int(COMPUTED_AT))
        .and_then(|ms| u64::try_from(ms).ok())
}

/// id(base.process, all), else id(base, all) for a definition.
fn process_id(base: &Message) -> Result<Id, ComputeError> {
    match base.get_message("process") {
        Some(p) => Ok(p.id_all()?),
        None => Ok(base.id_all()?),
    }
}

/// A non-negative integer or digit-only text parameter (`invalid-slot`
/// otherwise).
fn uint_param(request: &Message, key: &str) -> Result<Option<u64>, ComputeError> {
    let invalid = |detail: String| ComputeError::InvalidSlot { detail };
    match request.get(key) {
        None => Ok(None),
        Some(Value::Int(n)) => u64::try_from(*n)
            .map(Some)
            .map_err(|_| invalid(format!("`{key}` must be ≥ 0, got {n}"))),
        Some(Value::Text(t)) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t
            .parse()
            .map(Some)
            .map_err(|_| invalid(format!("`{key}` {t:?} is too large"))),
        Some(other) => Err(invalid(format!(
            "`{key}` must be a non-negative integer or digit-only text, got {other:?}"
        ))),
    }
}

fn hints(request: &Message) -> Result<Freshness, ComputeError> {
    Ok(Freshness {
        max_age_ms: uint_param(request, "max-age")?,
        min_slot: uint_param(request, "min-slot")?,
    })
}

/// Installs the device's view of `processes` in its context.
pub(crate) fn install(processes: &Processes) {
    processes
        .context()
        .insert_extension(Arc::new(ProcessesRef(Arc::downgrade(&processes.inner))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, ErrorCode};

    #[test]
    fn slots_are_non_negative_integers_or_digit_text() {
        assert_eq!(uint_param(&msg! { "slot" => 5 }, "slot").unwrap(), Some(5));
        assert_eq!(
            uint_param(&msg! { "slot" => "5" }, "slot").unwrap(),
            Some(5)
        );
        assert_eq!(uint_param(&msg! {}, "slot").unwrap(), None);
        for bad in [
            msg! { "slot" => -1 },
            msg! { "slot" => "5a" },
            msg! { "slot" => "" },
            msg! { "slot" => true },
            msg! { "slot" => "99999999999999999999999" },
        ] {
            let err = uint_param(&bad, "slot").unwrap_err();
            assert_eq!((err.code(), err.status()), ("invalid-slot", 400), "{bad:?}");
        }
    }
}
