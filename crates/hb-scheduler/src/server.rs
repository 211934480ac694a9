//! `SchedulerServer`: the actor that sequences one process (SPEC §5.2, §5.4).
//!
//! A thin shell around [`Sequencer`]: it gives the sequencer a mailbox, signs
//! what it drafts, hands the write to group commit and answers according to
//! the scheduling mode. Writes are submitted in slot order and pipelined: the
//! server assigns the next slot while earlier ones are still being flushed.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hb_message::{Id, Message};
use hb_store::Batch;
use tokio::sync::oneshot;

use crate::assignment::Assignment;
use crate::config::{DedupPolicy, SchedulingMode};
use crate::deps::SchedulerDeps;
use crate::error::SchedulerError;
use crate::schedule_store;
use crate::sequencer::Sequencer;

/// Schedule one message on this server's process.
#[derive(Debug)]
pub struct Schedule {
    /// The message, already restricted to its committed keys and verified.
    pub body: Message,
    /// Whether it carries commitments (only signed messages are de-duplicated).
    pub signed: bool,
    /// Internal idempotent call (push): a repeat returns the original
    /// assignment as a success, whatever the dedup policy.
    pub idempotent: bool,
}

impl actix::Message for Schedule {
    type Result = Result<Scheduled, SchedulerError>;
}

/// A server's answer to [`Schedule`]: the signed assignment, and (in the
/// confirmation modes) the signal that it is durable. The signal is awaited
/// by the caller, outside the actor, so the server goes on assigning while
/// earlier slots are flushed, and stopping it never loses an answer.
pub struct Scheduled {
    /// The signed assignment.
    pub assignment: Arc<Assignment>,
    /// Resolves once the assignment is durable (and, in
    /// `remote_confirmation`, once the upload was attempted). `None` for an
    /// idempotent repeat of a stored message.
    pub durable: Option<oneshot::Receiver<Result<(), SchedulerError>>>,
    /// Whether the caller is answered before durability (aggressive mode);
    /// the write still counts against the server's capacity until durable.
    pub answer_now: bool,
}

/// Sent by a write's watcher when group commit acknowledged it.
struct Written {
    generation: u64,
    body_id: Option<Id>,
    slot: u64,
    error: Option<String>,
}

impl actix::Message for Written {
    type Result = ();
}

/// Ask for the last assigned slot and chain link.
#[derive(Debug, Clone, Copy)]
pub struct Current;

/// The answer to [`Current`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentSlot {
    /// The last assigned slot, −1 if none.
    pub slot: i64,
    /// The raw chain link after it (empty if none).
    pub chain: Vec<u8>,
}

impl actix::Message for Current {
    type Result = CurrentSlot;
}

/// Fault injection for tests: the handler panics, as a bug would.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct InjectPanic;

impl actix::Message for InjectPanic {
    type Result = Result<(), SchedulerError>;
}

/// The actor owning one process's schedule.
pub struct SchedulerServer {
    pid: Id,
    deps: SchedulerDeps,
    /// `None` only while reloading after a restart.
    sequencer: Option<Sequencer>,
    dedup: DedupPolicy,
    /// Dedup entries of assignments submitted but not yet confirmed applied.
    inflight: HashMap<Id, Arc<Assignment>>,
    /// Bumped on every restart, so that acknowledgements of writes made
    /// before it are recognised as stale.
    generation: u64,
}

impl SchedulerServer {
    /// A server resuming `sequencer` (loaded from the store by the registry).
    pub fn new(deps: SchedulerDeps, sequencer: Sequencer, dedup: DedupPolicy) -> SchedulerServer {
        SchedulerServer {
            pid: sequencer.pid(),
            deps,
            sequencer: Some(sequencer),
            dedup,
            inflight: HashMap::new(),
            generation: 0,
        }
    }

    fn pid_text(&self) -> String {
        self.pid.to_human()
    }

    /// Everything up to the write: dedup, slot, chain, signature, batch.
    fn prepare(&mut self, req: Schedule) -> Result<Prepared, SchedulerError> {
        if let Some(key) = &self.deps.config.fault_panic_key {
            if req.body.get(key).is_some() {
                panic!("fault injection: message carries {key:?}");
            }
        }
        let body_id = req.body.id_all()?;
        if req.signed && (req.idempotent || self.dedup == DedupPolicy::SignedId) {
            if let Some(original) = self.find_original(&body_id)? {
                if req.idempotent {
                    return Ok(Prepared::Existing(original));
                }
                return Err(SchedulerError::Duplicate {
                    pid: self.pid_text(),
                    message_id: body_id.to_human(),
                    original_slot: original.slot,
                    original_assignment: original.id.to_human(),
                });
            }
        }
        let sequencer = self
            .sequencer
            .as_mut()
            .ok_or_else(|| SchedulerError::Unavailable {
                pid: self.pid.to_human(),
            })?;
        let tip = self.deps.tip.current();
        let draft = sequencer.assign(req.body, tip, now_ms())?;
        let assignment = Arc::new(draft.sign(&self.deps.key)?);
        let mut batch = Batch::new();
        schedule_store::stage(&mut batch, &assignment, req.signed)?;
        if req.signed {
            self.inflight.insert(body_id, Arc::clone(&assignment));
        }
        Ok(Prepared::New(assignment, batch))
    }

    /// The original assignment of a message, from this server's in-flight
    /// writes or the store's dedup index.
    fn find_original(&self, body_id: &Id) -> Result<Option<Arc<Assignment>>, SchedulerError> {
        if let Some(a) = self.inflight.get(body_id) {
            return Ok(Some(Arc::clone(a)));
        }
        // A point read of the dedup index; made only when dedup applies.
        Ok(
            schedule_store::find_original(Arc::clone(&self.deps.store), &self.pid, body_id)?
                .map(Arc::new),
        )
    }

    fn fail(&mut self, ctx: &mut Context<Self>, why: &str) {
        tracing::error!(pid = %self.pid, why, "scheduler server stops; its supervisor restarts it from the store");
        self.sequencer = None;
        ctx.stop();
    }
}

enum Prepared {
    Existing(Arc<Assignment>),
    New(Arc<Assignment>, Batch),
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Actor for SchedulerServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.deps.config.server_capacity.max(1));
    }
}

impl Supervised for SchedulerServer {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.deps.metrics.restarts.fetch_add(1, Ordering::Relaxed);
        self.sequencer = None;
        self.inflight.clear();
        self.generation += 1;
        let pid = self.pid;
        let deps = self.deps.clone();
        // Wait for every write already handed to group commit, then reload
        // the head from the store, off this thread. `wait` holds the mailbox
        // meanwhile, so no request sees a half-loaded server.
        let reload = async move {
            // An empty batch is acknowledged after every earlier one; its
            // own outcome does not matter, only that the queue drained.
            let _ = deps.writer.submit(Batch::new()).await;
            let store = Arc::clone(&deps.store);
            tokio::task::spawn_blocking(move || schedule_store::load(store, pid))
                .await
                .map_err(|e| SchedulerError::Internal {
                    pid: pid.to_human(),
                    detail: format!("reload task failed: {e}"),
                })?
        };
        ctx.wait(reload.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(loaded) => {
                let seq = loaded.sequencer;
                tracing::info!(pid = %act.pid, slot = seq.current(), "scheduler server reloaded from the store");
                act.sequencer = Some(seq);
            }
            Err(e) => {
                tracing::error!(pid = %act.pid, error = %e, "scheduler server could not reload");
                ctx.stop();
            }
        }));
    }
}

impl Handler<Schedule> for SchedulerServer {
    type Result = Result<Scheduled, SchedulerError>;

    fn handle(&mut self, req: Schedule, ctx: &mut Context<Self>) -> Self::Result {
        let span = tracing::debug_span!("schedule", pid = %self.pid);
        let _enter = span.enter();
        let (assignment, batch) = match catch_unwind(AssertUnwindSafe(|| self.prepare(req))) {
            Err(panic) => {
                let detail = panic_text(&panic);
                // The answer below is sent before the stop takes effect.
                self.fail(ctx, "handler panicked");
                return Err(SchedulerError::Internal {
                    pid: self.pid_text(),
                    detail,
                });
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Prepared::Existing(assignment))) => {
                return Ok(Scheduled {
                    assignment,
                    durable: None,
                    answer_now: true,
                })
            }
            Ok(Ok(Prepared::New(a, batch))) => (a, batch),
        };
        self.deps.metrics.assigned.fetch_add(1, Ordering::Relaxed);
        let ack = self.deps.writer.submit(batch);
        let mode = self.deps.config.mode;
        let uploader = Arc::clone(&self.deps.uploader);
        let server = ctx.address();
        let generation = self.generation;
        let signed_id = self
            .inflight
            .contains_key(&assignment.body_id)
            .then_some(assignment.body_id);
        let (tx, rx) = oneshot::channel();
        let watched = Arc::clone(&assignment);
        // A detached watcher, not an actor future: it outlives a stop of
        // this server, so no caller loses its answer.
        actix::spawn(async move {
            let written = ack.await;
            if written.is_ok() && mode == SchedulingMode::RemoteConfirmation {
                // The uploader's result is logged and counted, not checked.
                if let Err(e) = uploader.upload(&watched).await {
                    tracing::warn!(slot = watched.slot, error = %e, "upload failed");
                }
            }
            server.do_send(Written {
                generation,
                body_id: signed_id,
                slot: watched.slot,
                error: written.as_ref().err().map(ToString::to_string),
            });
            // A caller that gave up (deadline) no longer listens.
            let _ = tx.send(written.map_err(SchedulerError::from));
        });
        Ok(Scheduled {
            assignment,
            durable: Some(rx),
            answer_now: mode == SchedulingMode::Aggressive,
        })
    }
}

impl Handler<Written> for SchedulerServer {
    type Result = ();

    fn handle(&mut self, w: Written, ctx: &mut Context<Self>) {
        if w.generation != self.generation {
            return; // a write from before the last restart
        }
        if let Some(id) = w.body_id {
            self.inflight.remove(&id);
        }
        if let Some(error) = w.error {
            self.deps
                .metrics
                .write_failures
                .fetch_add(1, Ordering::Relaxed);
            // Never assign on top of a slot that is not stored.
            self.fail(ctx, &format!("write of slot {} failed: {error}", w.slot));
        }
    }
}

impl Handler<Current> for SchedulerServer {
    type Result = MessageResult<Current>;

    fn handle(&mut self, _: Current, _: &mut Context<Self>) -> Self::Result {
        MessageResult(match &self.sequencer {
            Some(s) => CurrentSlot {
                slot: s.current(),
                chain: s.chain().to_vec(),
            },
            None => CurrentSlot {
                slot: -1,
                chain: Vec::new(),
            },
        })
    }
}

impl Handler<InjectPanic> for SchedulerServer {
    type Result = Result<(), SchedulerError>;

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) -> Self::Result {
        let outcome = catch_unwind(AssertUnwindSafe(|| -> () { panic!("injected panic") }));
        let detail = outcome.err().map(|p| panic_text(&p)).unwrap_or_default();
        self.fail(ctx, "handler panicked");
        Err(SchedulerError::Internal {
            pid: self.pid_text(),
            detail,
        })
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// The address of a running server, with backpressure and deadlines.
#[derive(Clone)]
pub struct ServerHandle {
    pid: Id,
    addr: Addr<SchedulerServer>,
    inflight: Arc<AtomicUsize>,
    capacity: usize,
    timeout: Duration,
}

/// Decrements the in-flight count however the call ends.
struct InflightGuard(Arc<AtomicUsize>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ServerHandle {
    /// Wraps an address.
    pub fn new(
        pid: Id,
        addr: Addr<SchedulerServer>,
        capacity: usize,
        timeout: Duration,
    ) -> ServerHandle {
        ServerHandle {
            pid,
            addr,
            inflight: Arc::new(AtomicUsize::new(0)),
            capacity: capacity.max(1),
            timeout,
        }
    }

    /// The process.
    pub fn pid(&self) -> Id {
        self.pid
    }

    /// Whether both handles reach the same server (and supervisor).
    pub fn same_server(&self, other: &ServerHandle) -> bool {
        self.addr == other.addr
    }

    /// Whether the actor (or its supervisor) is still alive.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }

    /// Requests held by the server right now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    /// Schedules `req`: `Busy` at once when the server is saturated,
    /// `Timeout` after the deadline, `Unavailable` if the server died.
    pub async fn schedule(&self, req: Schedule) -> Result<Arc<Assignment>, SchedulerError> {
        if self.inflight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            return Err(SchedulerError::Busy {
                pid: self.pid.to_human(),
            });
        }
        let guard = InflightGuard(Arc::clone(&self.inflight));
        let deadline = tokio::time::Instant::now() + self.timeout;
        let scheduled = self.call(req).await??;
        let Some(durable) = scheduled.durable else {
            return Ok(scheduled.assignment);
        };
        if scheduled.answer_now {
            // Aggressive mode: answer now, but keep the capacity slot until
            // the write is durable, so a sustained overload meets `Busy`
            // instead of an unbounded backlog of unwritten assignments.
            tokio::spawn(async move {
                let _held = guard;
                let _ = durable.await;
            });
            return Ok(scheduled.assignment);
        }
        let _guard = guard;
        match tokio::time::timeout_at(deadline, durable).await {
            Err(_) => Err(self.timed_out()),
            // The watcher always answers; a dropped sender means its arbiter stopped.
            Ok(Err(_)) => Err(SchedulerError::Unavailable {
                pid: self.pid.to_human(),
            }),
            Ok(Ok(written)) => written.map(|()| scheduled.assignment),
        }
    }

    fn timed_out(&self) -> SchedulerError {
        SchedulerError::Timeout {
            pid: self.pid.to_human(),
            after_ms: self.timeout.as_millis() as u64,
        }
    }

    /// The last assigned slot and chain link.
    pub async fn current(&self) -> Result<CurrentSlot, SchedulerError> {
        self.call(Current).await
    }

    /// Makes the server's handler panic (tests of supervision).
    #[doc(hidden)]
    pub async fn inject_panic(&self) -> Result<(), SchedulerError> {
        self.call(InjectPanic).await?
    }

    async fn call<M>(&self, msg: M) -> Result<M::Result, SchedulerError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        SchedulerServer: Handler<M>,
    {
        match tokio::time::timeout(self.timeout, self.addr.send(msg)).await {
            Err(_) => Err(self.timed_out()),
            Ok(Err(_)) => Err(SchedulerError::Unavailable {
                pid: self.pid.to_human(),
            }),
            Ok(Ok(r)) => Ok(r),
        }
    }
}
