//! The `scheduler@1.0` device (SPEC §5.6): `schedule`, `slot`, `status`,
//! `next`, `location`, `init` and `checkpoint`, over the [`Scheduler`] that
//! the node puts in the resolution context's extensions.

use std::sync::Arc;

use async_trait::async_trait;
use hb_device::{Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{Id, IdSelector, Key, Message, Value};

use crate::admission::ScheduleRequest;
use crate::cursor::Cursor;
use crate::definition::{is_process, scheduler_of};
use crate::error::{Check, SchedulerError};
use crate::formats::{to_aos2, to_bundle, Aos2Options};
use crate::hash_chain;
use crate::location;
use crate::scheduler::Scheduler;
use crate::target::{resolve_target, Target, TargetSources};

/// The device's name.
pub const NAME: &str = "scheduler@1.0";

/// The `scheduler@1.0` device.
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedulerDevice;

const EXPORTS: [&str; 7] = [
    "location",
    "status",
    "next",
    "schedule",
    "slot",
    "init",
    "checkpoint",
];

fn fail(key: &Key, e: SchedulerError) -> ResolveError {
    ResolveError::Device {
        device: NAME.to_string(),
        key: key.as_str().to_string(),
        source: Arc::new(e),
    }
}

#[async_trait]
impl Device for SchedulerDevice {
    fn name(&self) -> &str {
        NAME
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(EXPORTS)
            .exports(EXPORTS)
            .excludes(["set", "keys"])
            .never_declines()
    }

    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        let scheduler = ctx
            .extension::<Scheduler>()
            .ok_or_else(|| fail(key, SchedulerError::NotRunning))?;
        let posting = method(request) == "POST";
        let result = match key.as_str() {
            "schedule" | "init" if posting => post_schedule(&scheduler, &base, request).await,
            "schedule" | "init" => get_schedule(&scheduler, &base, request).await,
            "slot" => slot(&scheduler, &base, request).await,
            "status" => status(&scheduler).await,
            "next" => next(&scheduler, base).await,
            "location" if posting => location::post(&scheduler, request).await.map(Outcome::Ok),
            "location" => location::get(&scheduler, request).await.map(Outcome::Ok),
            "checkpoint" => Ok(Outcome::Ok(base)),
            _ => {
                return Err(ResolveError::NotFound {
                    key: key.as_str().to_string(),
                })
            }
        };
        result.map_err(|e| fail(key, e))
    }
}

/// The request's `method`, upper-cased; `GET` by default.
fn method(request: &Message) -> String {
    request
        .get_text("method")
        .map_or_else(|| "GET".to_string(), str::to_ascii_uppercase)
}

/// id(base.process, all) when called through `process@1.0`, and id(base,
/// all) when the base is itself a process.
fn base_targets(base: &Message) -> Result<(Option<Id>, Option<Id>), SchedulerError> {
    let base_process = match base.get_message("process") {
        Some(p) => Some(p.id_all()?),
        None => None,
    };
    let base_is_process = if is_process(base) {
        Some(base.id_all()?)
    } else {
        None
    };
    Ok((base_process, base_is_process))
}

async fn post_schedule(
    scheduler: &Scheduler,
    base: &Message,
    request: &Message,
) -> Result<Outcome, SchedulerError> {
    let message = match request.get("body") {
        Some(Value::Message(m)) => m.clone(),
        Some(_) => {
            return Err(SchedulerError::invalid(
                Check::MalformedBody,
                "`body` must be a message",
            ))
        }
        None => request_as_message(request)?,
    };
    let (base_process, base_is_process) = base_targets(base)?;
    let request_target = match request.get("target") {
        None => None,
        Some(Value::Text(t)) => Some(t.clone()),
        Some(_) => {
            return Err(SchedulerError::invalid(
                Check::InvalidTarget,
                "`target` must be text",
            ))
        }
    };
    let assignment = scheduler
        .schedule(ScheduleRequest {
            message,
            request_target,
            base_process,
            base_is_process,
            idempotent: false,
        })
        .await?;
    Ok(Outcome::Ok(assignment.message.clone()))
}

/// The request itself is the message: drop the routing keys `path` and
/// `method` unless a commitment covers them.
fn request_as_message(request: &Message) -> Result<Message, SchedulerError> {
    let committed = if request.is_signed() {
        request.committed(&IdSelector::All)?
    } else {
        Vec::new()
    };
    let mut m = request.clone();
    for routing in ["path", "method"] {
        if !committed.iter().any(|k| k.as_str() == routing) {
            m.remove(routing);
        }
    }
    Ok(m)
}

/// The process a read is about: the request's `target`, else the base.
fn read_target(
    scheduler: &Scheduler,
    base: &Message,
    request: &Message,
) -> Result<Id, SchedulerError> {
    let (base_process, base_is_process) = base_targets(base)?;
    let request_target = match request.get("target") {
        None => None,
        Some(Value::Text(t)) => Some(t.as_str()),
        Some(_) => {
            return Err(SchedulerError::invalid(
                Check::InvalidTarget,
                "`target` must be text",
            ))
        }
    };
    match resolve_target(&TargetSources {
        message: None,
        request_target,
        base_process,
        base_is_process,
        follow_hints: scheduler.config().follow_hints,
    })? {
        Target::Process(pid) => Ok(pid),
        Target::Hint { pid, url } => Err(SchedulerError::Redirect { pid, url }),
    }
}

/// An optional integer parameter (integer, or digit-only text).
fn int_param(request: &Message, key: &str) -> Result<Option<i64>, SchedulerError> {
    match request.get(key) {
        None => Ok(None),
        Some(v) => v.to_int_lenient().map(Some).ok_or_else(|| {
            SchedulerError::invalid(Check::InvalidRange, format!("`{key}` must be an integer"))
        }),
    }
}

/// `accept: application/json`: the native bundle as JSON text.
fn wants_json(request: &Message) -> bool {
    request.get_text("accept").is_some_and(|a| {
        percent_decode(a)
            .trim()
            .eq_ignore_ascii_case("application/json")
    })
}

fn wants_aos2(request: &Message) -> bool {
    request.get_text("accept").is_some_and(|a| {
        percent_decode(a)
            .trim()
            .eq_ignore_ascii_case("application/aos-2")
    })
}

/// Decodes `%XX` escapes (others are kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn get_schedule(
    scheduler: &Scheduler,
    base: &Message,
    request: &Message,
) -> Result<Outcome, SchedulerError> {
    let pid = read_target(scheduler, base, request)?;
    let from = int_param(request, "from")?;
    let to = int_param(request, "to")?;
    if wants_json(request) {
        // The bundle as JSON text, written from the stored records: a
        // caller that answers JSON (the HTTP API) skips decoding every
        // assignment only to encode it again.
        let json = scheduler.read_schedule_json(pid, from, to).await?;
        let text = String::from_utf8(json).map_err(|e| SchedulerError::Task {
            detail: format!("schedule JSON is not UTF-8: {e}"),
        })?;
        let m = Message::new()
            .with("content-type", "application/json")?
            .with("body", text)?;
        return Ok(Outcome::Ok(m));
    }
    let page = scheduler.read_schedule(pid, from, to).await?;
    if wants_aos2(request) {
        let legacy = scheduler.config().aos2_legacy_aliases;
        let json = to_aos2(
            &page,
            Aos2Options {
                legacy_aliases: legacy,
            },
        );
        // aos-2 keys are case-sensitive, so it travels as JSON text.
        let m = Message::new()
            .with("content-type", "application/json")?
            .with("body", json.to_string())?;
        return Ok(Outcome::Ok(m));
    }
    Ok(Outcome::Ok(to_bundle(&page)?))
}

async fn slot(
    scheduler: &Scheduler,
    base: &Message,
    request: &Message,
) -> Result<Outcome, SchedulerError> {
    let pid = read_target(scheduler, base, request)?;
    let current = scheduler
        .current(pid)
        .await?
        .ok_or_else(|| SchedulerError::UnknownProcess {
            pid: pid.to_human(),
        })?;
    let tip = scheduler.tip().current();
    let m = Message::new()
        .with("process", pid.to_human())?
        .with("current", current.slot)?
        .with("timestamp", scheduler.now_ms())?
        .with("block-height", tip.height)?
        .with("block-hash", tip.hash.to_human())?
        .with("cache-control", "no-store")?
        .with("wallet-address", scheduler.address())?;
    Ok(Outcome::Ok(m))
}

async fn status(scheduler: &Scheduler) -> Result<Outcome, SchedulerError> {
    let processes: Vec<Value> = scheduler
        .processes()
        .await?
        .iter()
        .map(|p| Value::from(p.to_human()))
        .collect();
    let m = Message::new()
        .with("address", scheduler.address())?
        .with("processes", Value::List(processes))?
        .with("cache-control", "no-store")?;
    Ok(Outcome::Ok(m))
}

/// The private key under `priv` where `next` keeps its look-ahead.
const PRIVATE: &str = NAME;

async fn next(scheduler: &Scheduler, mut base: Message) -> Result<Outcome, SchedulerError> {
    let definition = base.get_message("process").cloned();
    let pid = match &definition {
        Some(p) => p.id_all()?,
        None => base.id_all()?,
    };
    let at = match base.get("at-slot") {
        None => -1,
        Some(v) => v.to_int_lenient().ok_or_else(|| {
            SchedulerError::invalid(Check::InvalidSlot, "`at-slot` must be an integer")
        })?,
    };
    let mut private = base
        .get_private("priv")
        .and_then(Value::as_message)
        .cloned()
        .unwrap_or_default();
    let mut cursor = Cursor::from_state(pid, at, private.get_message(PRIVATE))?;
    let wanted = cursor.wanted()?;

    // 1. The look-ahead, 2. the store (prefetching what follows).
    let assignment = match cursor.take_ahead() {
        Some(a) => a,
        None => {
            let to = i64::try_from(cursor.prefetch_to()?).unwrap_or(i64::MAX);
            // An assigned slot whose write has not landed yet is waited
            // for: the caller saw it assigned (`now` computes to the
            // current slot), so it must not fail as not yet scheduled.
            let page = scheduler.read_assigned(pid, wanted, to).await?.assignments;
            let mut page = page.into_iter().map(|(_, m)| m);
            let Some(first) = page.next() else {
                // read_assigned answers at least one slot or an error.
                return Err(SchedulerError::SlotNotAvailable {
                    requested: wanted,
                    latest: -1,
                });
            };
            cursor.refill(page);
            first
        }
    };
    // The previous link, when the state's memo does not hold it.
    if !cursor.knows_link() {
        if let Some(previous) = wanted.checked_sub(1) {
            let link = scheduler
                .assignment(pid, previous)
                .await?
                .and_then(|m| m.get_text("hash-chain").and_then(hash_chain::from_text));
            cursor.set_link(link);
        }
    }
    // Under `paranoid_verify`, the signer is the scheduler the definition
    // names (this node when the definition is not at hand).
    let signer = scheduler.config().paranoid_verify.then(|| {
        definition
            .as_ref()
            .and_then(|d| scheduler_of(d).ok())
            .map_or_else(|| scheduler.address().to_string(), |r| r.address)
    });
    cursor.advance(&assignment, signer)?;

    private.insert(PRIVATE, cursor.to_memo()?)?;
    base.set_private("priv", private)?;
    let mut reply = Message::new().with("body", assignment)?;
    // The state travels beside the assignment, with its private look-ahead.
    reply.insert_key(Key::new("state")?, base);
    Ok(Outcome::Ok(reply))
}
