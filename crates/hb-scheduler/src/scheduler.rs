//! `Scheduler`: the public face of scheduling, used by the `scheduler@1.0`
//! device, the HTTP API and embedders. Runs SPEC §5.6.2's checks in order,
//! then hands the message to the process's server.

use std::sync::Arc;

use actix::prelude::*;
use hb_message::{Id, Message, Verification};
use hb_store::LocationCache;
use tracing::Instrument;

use crate::assignment::Assignment;
use crate::config::{DedupPolicy, SchedulingMode};
use crate::deps::SchedulerDeps;
use crate::error::SchedulerError;
use crate::formats::SchedulePage;
use crate::registry::{Find, FindOrCreate, LiveProcesses, SchedulerRegistry, ServerMap, Shutdown};
use crate::schedule_store;
use crate::server::{CurrentSlot, Schedule, ServerHandle};
use crate::target::{is_process, resolve_target, Target, TargetSources};
use crate::verify_pool::VerifyPool;

/// One scheduling request, after the body was decoded (check 1).
#[derive(Clone, Default)]
pub struct ScheduleRequest {
    /// The message to schedule.
    pub message: Message,
    /// The request's `target`, if any.
    pub request_target: Option<String>,
    /// id(base.process, all), when called through `process@1.0`.
    pub base_process: Option<Id>,
    /// id(base, all), when the base is itself a process.
    pub base_is_process: Option<Id>,
    /// Internal idempotent call (push): a repeat returns the original.
    pub idempotent: bool,
    /// Whether a device name is known, for `validate_process_devices`
    /// (the device layer passes its registry's lookup).
    pub known_device: Option<DeviceCheck>,
}

/// A predicate saying whether a device name is registered.
pub type DeviceCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl std::fmt::Debug for ScheduleRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduleRequest")
            .field("message", &self.message)
            .field("request_target", &self.request_target)
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

/// Handle to the scheduler actors. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    deps: SchedulerDeps,
    registry: Addr<SchedulerRegistry>,
    /// The registry's live servers, read directly on the hot path.
    servers: ServerMap,
    verifier: VerifyPool,
}

impl Scheduler {
    /// Starts the registry (and its arbiters) and the verification pool.
    /// Must be called inside a running actix system.
    pub fn start(deps: SchedulerDeps) -> Scheduler {
        let threads = deps.config.arbiters.max(1);
        let servers = ServerMap::default();
        let registry = SchedulerRegistry::with_map(deps.clone(), Arc::clone(&servers)).start();
        Scheduler {
            deps,
            registry,
            servers,
            verifier: VerifyPool::start(threads),
        }
    }

    /// The shared dependencies.
    pub fn deps(&self) -> &SchedulerDeps {
        &self.deps
    }

    /// The node's address (the scheduler's identity).
    pub fn address(&self) -> &str {
        self.deps.key.address()
    }

    /// Schedules a message: registers a process or assigns a message to its
    /// target, with SPEC §5.6.2's checks 2–10 in order.
    pub async fn schedule(&self, req: ScheduleRequest) -> Result<Arc<Assignment>, SchedulerError> {
        let span = tracing::info_span!(
            "schedule",
            pid = tracing::field::Empty,
            slot = tracing::field::Empty
        );
        // `instrument`, not `enter`: the call awaits, and an entered guard
        // held across awaits would attach other tasks' events to this span.
        self.schedule_in(req, &span).instrument(span.clone()).await
    }

    async fn schedule_in(
        &self,
        req: ScheduleRequest,
        span: &tracing::Span,
    ) -> Result<Arc<Assignment>, SchedulerError> {
        // 2. Target.
        let target = resolve_target(&TargetSources {
            message: Some(&req.message),
            request_target: req.request_target.as_deref(),
            base_process: req.base_process,
            base_is_process: req.base_is_process,
        })?;
        let pid = match target {
            Target::Process(pid) => pid,
            Target::Hint { url, pid } => return Err(SchedulerError::Redirect { pid, url }),
        };
        span.record("pid", tracing::field::display(pid));
        // 3. Only what is committed is scheduled.
        let body = req
            .message
            .with_only_committed()
            .map_err(|e| SchedulerError::invalid("invalid-commitments", e.to_string()))?;
        let signed = body.commitments().is_some();
        // 4. Signed-only nodes.
        if self.deps.config.require_signed && !signed {
            return Err(SchedulerError::invalid(
                "unsigned-message",
                "this node schedules signed messages only",
            ));
        }
        // 5. Signatures, checked in batches off the sequencing path.
        let body = Arc::new(body);
        if self.deps.config.verify_assignments && signed {
            let verdict = self.verifier.verify(Arc::clone(&body)).await.map_err(|e| {
                SchedulerError::Internal {
                    pid: pid.to_human(),
                    detail: e.to_string(),
                }
            })?;
            if let Verification::Invalid {
                commitment,
                reason,
                detail,
            } = verdict
            {
                return Err(SchedulerError::invalid(
                    "invalid-signature",
                    format!(
                        "commitment {commitment} failed ({}): {detail}",
                        reason.code()
                    ),
                ));
            }
        }
        // 6. Locate.
        let dedup = if is_process(&body) {
            let dedup = self.locate_process(&body)?;
            if let (true, Some(known)) =
                (self.deps.config.validate_process_devices, &req.known_device)
            {
                check_process_devices(&body, known.as_ref())?;
            }
            dedup
        } else {
            if self.find(pid).await?.is_none() && !self.has_schedule(pid).await? {
                return Err(SchedulerError::UnknownProcess {
                    pid: pid.to_human(),
                });
            }
            None
        };
        // 7. Mode.
        if self.deps.config.mode == SchedulingMode::Disabled {
            return Err(SchedulerError::SchedulingDisabled);
        }
        // 8–10. Capacity, dedup and assignment happen at the server.
        let server = self.find_or_create_with(pid, dedup).await?;
        let body = Arc::try_unwrap(body).unwrap_or_else(|shared| (*shared).clone());
        let assignment = server
            .schedule(Schedule {
                body,
                signed,
                idempotent: req.idempotent,
            })
            .await
            .inspect_err(|e| {
                if matches!(e, SchedulerError::Busy { .. }) {
                    self.deps
                        .metrics
                        .busy
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })?;
        span.record("slot", assignment.slot);
        Ok(assignment)
    }

    /// Check 6 for a `Process`: it must name its scheduler, and that must be
    /// this node. Returns the process's own dedup policy, if it sets one.
    fn locate_process(&self, process: &Message) -> Result<Option<DedupPolicy>, SchedulerError> {
        let named = process
            .get_text("scheduler")
            .or_else(|| process.get_text("scheduler-location"))
            .ok_or_else(|| {
                SchedulerError::invalid(
                    "missing-scheduler",
                    "a Process must name its scheduler in `scheduler` or `scheduler-location`",
                )
            })?;
        if named != self.address() {
            return Err(match self.location_url(named) {
                Some(url) => SchedulerError::Redirect {
                    pid: process.id_all().map(|i| i.to_human()).unwrap_or_default(),
                    url,
                },
                None => SchedulerError::RemoteScheduler {
                    address: named.to_string(),
                },
            });
        }
        process_dedup(process)
    }

    /// The URL of a fresh (within its time-to-live) location record of
    /// `address`, for routing.
    fn location_url(&self, address: &str) -> Option<String> {
        let stored = LocationCache::new(Arc::clone(&self.deps.store))
            .get(address)
            .ok()??;
        let ttl = stored.record.get_int("time-to-live").unwrap_or(i64::MAX);
        let age = crate::server::now_ms().saturating_sub(stored.stored_at_ms as i64);
        if age > ttl {
            return None;
        }
        stored.record.get_text("url").map(str::to_string)
    }

    /// The live server of `pid` from the shared map, without a round trip
    /// through the registry actor.
    fn find_live(&self, pid: &Id) -> Option<ServerHandle> {
        self.servers
            .read()
            .get(pid)
            .filter(|h| h.is_alive())
            .cloned()
    }

    /// The live server of `pid`, if any (never creates one).
    pub async fn find(&self, pid: Id) -> Result<Option<ServerHandle>, SchedulerError> {
        if let Some(h) = self.find_live(&pid) {
            return Ok(Some(h));
        }
        self.registry
            .send(Find(pid))
            .await
            .map_err(|_| registry_gone(&pid))
    }

    /// The server of `pid`, started if needed (atomically: one per process).
    pub async fn find_or_create(&self, pid: Id) -> Result<ServerHandle, SchedulerError> {
        self.find_or_create_with(pid, None).await
    }

    async fn find_or_create_with(
        &self,
        pid: Id,
        dedup: Option<DedupPolicy>,
    ) -> Result<ServerHandle, SchedulerError> {
        if let Some(h) = self.find_live(&pid) {
            return Ok(h);
        }
        self.registry
            .send(FindOrCreate { pid, dedup })
            .await
            .map_err(|_| registry_gone(&pid))?
    }

    /// Whether `pid` has a stored schedule.
    pub async fn has_schedule(&self, pid: Id) -> Result<bool, SchedulerError> {
        self.blocking(move |store| schedule_store::latest(store, &pid).map(|l| l.is_some()))
            .await
    }

    /// Every process with a stored schedule or a live server, sorted.
    pub async fn processes(&self) -> Result<Vec<Id>, SchedulerError> {
        let live = self
            .registry
            .send(LiveProcesses)
            .await
            .map_err(|_| registry_gone(&Id([0; 32])))?;
        let mut stored = self.blocking(schedule_store::processes).await?;
        stored.extend(live);
        stored.sort();
        stored.dedup();
        Ok(stored)
    }

    /// The last assigned slot of `pid`: from its live server (which knows
    /// slots not yet written in aggressive mode), else from the store.
    pub async fn current(&self, pid: Id) -> Result<Option<CurrentSlot>, SchedulerError> {
        if let Some(server) = self.find(pid).await? {
            let current = server.current().await?;
            if current.slot >= 0 {
                return Ok(Some(current));
            }
        }
        let latest = self
            .blocking(move |store| schedule_store::latest(store, &pid))
            .await?;
        Ok(latest.map(|(slot, chain)| CurrentSlot {
            slot: slot as i64,
            chain,
        }))
    }

    /// One stored assignment.
    pub async fn assignment(&self, pid: Id, slot: u64) -> Result<Option<Message>, SchedulerError> {
        self.blocking(move |store| schedule_store::read(store, &pid, slot))
            .await
    }

    /// A page of `pid`'s schedule (SPEC §5.6.3): `from` defaults to 0
    /// (negative → 0), `to` to the latest slot; the span is capped at
    /// `schedule_page_max`, and the page stops at the first missing slot.
    /// `continues` is true iff the last slot returned is below `to` (as
    /// asked for or defaulted, before the cap), so clients page on with
    /// `from = last + 1`.
    pub async fn read_schedule(
        &self,
        pid: Id,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<SchedulePage, SchedulerError> {
        let current = self
            .current(pid)
            .await?
            .ok_or_else(|| SchedulerError::UnknownProcess {
                pid: pid.to_human(),
            })?;
        let from = from.unwrap_or(0).max(0) as u64;
        let to = to.unwrap_or(current.slot);
        let page_max = self.deps.config.schedule_page_max;
        let mut assignments = Vec::new();
        if to >= 0 && (to as u64) >= from {
            let capped = (to as u64).min(from.saturating_add(page_max));
            assignments = self
                .blocking(move |store| schedule_store::range(store, &pid, from, capped))
                .await?;
        }
        // More follows when the page ends below the `to` asked for (or
        // defaulted): because of the page cap, or because of a gap.
        let continues = assignments.last().is_some_and(|(s, _)| (*s as i64) < to);
        Ok(SchedulePage {
            pid,
            assignments,
            continues,
            tip: self.deps.tip.current(),
            timestamp: crate::server::now_ms(),
        })
    }

    /// Runs a store read on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, SchedulerError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn hb_store::Store>) -> Result<T, SchedulerError> + Send + 'static,
    {
        let store = Arc::clone(&self.deps.store);
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| SchedulerError::Internal {
                pid: String::new(),
                detail: format!("store task failed: {e}"),
            })?
    }

    /// Stops every scheduler actor and waits for their threads to end.
    /// Writes already handed to group commit still complete.
    pub async fn shutdown(&self) {
        // An error means the registry is already gone, which is the goal.
        let _ = self.registry.send(Shutdown).await;
    }

    /// Fault injection for tests: makes `pid`'s server panic.
    #[doc(hidden)]
    pub async fn inject_panic(&self, pid: Id) -> Result<(), SchedulerError> {
        match self.find(pid).await? {
            Some(server) => server.inject_panic().await,
            None => Err(SchedulerError::UnknownProcess {
                pid: pid.to_human(),
            }),
        }
    }
}

/// Refuses a process whose `execution-device`, `scheduler-device`,
/// `push-device` or `device-stack` entries name unknown devices.
fn check_process_devices(
    process: &Message,
    known: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<(), SchedulerError> {
    let mut names: Vec<&str> = ["execution-device", "scheduler-device", "push-device"]
        .iter()
        .filter_map(|k| process.get_text(k))
        .collect();
    match process.get("device-stack") {
        Some(hb_message::Value::List(l)) => names.extend(l.iter().filter_map(|v| v.as_text())),
        Some(hb_message::Value::Message(m)) => {
            names.extend(m.iter().filter_map(|(_, v)| v.as_text()))
        }
        _ => {}
    }
    match names.into_iter().find(|n| !known(n)) {
        Some(unknown) => Err(SchedulerError::invalid(
            "unknown-device",
            format!("the process names device {unknown:?}, which this node does not have"),
        )),
        None => Ok(()),
    }
}

/// A process definition's own `scheduler-dedup`, if it sets one.
pub fn process_dedup(process: &Message) -> Result<Option<DedupPolicy>, SchedulerError> {
    match process.get("scheduler-dedup") {
        None => Ok(None),
        Some(v) => {
            let text = v.as_text().ok_or_else(|| {
                SchedulerError::invalid("invalid-value", "`scheduler-dedup` must be text")
            })?;
            text.parse()
                .map(Some)
                .map_err(|e: crate::config::UnknownSetting| {
                    SchedulerError::invalid("invalid-value", e.to_string())
                })
        }
    }
}

fn registry_gone(pid: &Id) -> SchedulerError {
    SchedulerError::Unavailable {
        pid: pid.to_human(),
    }
}
