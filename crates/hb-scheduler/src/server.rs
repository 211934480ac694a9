//! `SchedulerServer`: the actor that sequences one process (SPEC §5.2, §5.4).
//!
//! A thin shell around [`ServerCore`]: it gives the core a mailbox, fetches
//! the one fact the core may ask for (a dedup original, read off the
//! arbiter on the blocking pool while the mailbox waits, so order holds),
//! hands batches to group commit and answers according to the scheduling
//! mode. Writes are submitted in slot order and pipelined: the server
//! assigns the next slot while earlier ones are being flushed.
//!
//! A request's capacity slot ([`Permit`]) travels with it and is released
//! when its write is acknowledged, not when its caller stops waiting, so a
//! stuck disk meets `Busy` instead of a growing queue.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hb_message::{Id, Message};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::assignment::Assignment;
use crate::config::{DedupPolicy, SchedulingMode};
use crate::deps::SchedulerDeps;
use crate::error::SchedulerError;
use crate::lease_keeper::LeaseCell;
use crate::schedule_store;
use crate::sequencer::Sequencer;
use crate::server_core::{CurrentSlot, Decision, Request, ServerCore};

/// What a server and its handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The last assigned slot, published after each assignment (−1: none).
    pub current: AtomicI64,
    /// Calls holding a capacity slot (each until its write is acknowledged).
    pub inflight: AtomicUsize,
    /// When the server last took a request, on the scheduler's clock.
    pub last_request_ms: AtomicI64,
    /// Set (under this lock) when the registry retired the server for
    /// idleness; a server takes it to decide and submit, so no write lands
    /// after a successor loaded the schedule.
    pub retired: Mutex<bool>,
    /// The process's lease, when the node holds leases (SPEC §11.2). Once
    /// it is lost the server answers `Unavailable` and is replaced on the
    /// next lookup.
    pub lease: Option<Arc<LeaseCell>>,
}

impl Shared {
    pub(crate) fn new(current: i64, now_ms: i64, lease: Option<Arc<LeaseCell>>) -> Arc<Shared> {
        Arc::new(Shared {
            current: AtomicI64::new(current),
            inflight: AtomicUsize::new(0),
            last_request_ms: AtomicI64::new(now_ms),
            retired: Mutex::new(false),
            lease,
        })
    }

    /// Whether the server's lease is lost (never, without leases).
    pub(crate) fn lease_lost(&self) -> bool {
        self.lease.as_ref().is_some_and(|l| l.is_lost())
    }
}

/// A capacity slot of one server, released on drop.
pub(crate) struct Permit(Arc<Shared>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Schedule one message on this server's process. Sent with `do_send`:
/// the answer comes back through `answer`, from the server itself (errors,
/// repeats, aggressive mode) or straight from the group-commit writer once
/// the write is durable, so the caller is woken once and no task sits
/// between the writer and the caller.
pub(crate) struct Schedule {
    body: Message,
    signed: bool,
    idempotent: bool,
    deadline: Instant,
    permit: Permit,
    /// Taken by whoever answers.
    answer: Option<Answer>,
}

impl actix::Message for Schedule {
    type Result = ();
}

/// What a schedule call is answered.
type Outcome = Result<Arc<Assignment>, SchedulerError>;

/// The caller's answer. Dropped unanswered (a mailbox closed with the
/// request in it), the caller sees `Unavailable`.
type Answer = oneshot::Sender<Outcome>;

/// Sent by the writer (through a callback) when group commit acknowledged
/// a write.
struct Written {
    generation: u64,
    body_id: Option<Id>,
    slot: u64,
    error: Option<String>,
    /// The write failed its lease fence: another node took the lease.
    fenced: bool,
}

impl actix::Message for Written {
    type Result = ();
}

/// What happens when a write is acknowledged: the server learns of it
/// (`Written`), the capacity slot is freed, and the caller (unless already
/// answered) gets the assignment or the write's error.
struct Acknowledge {
    server: Addr<SchedulerServer>,
    generation: u64,
    signed_body: Option<Id>,
    assignment: Arc<Assignment>,
    permit: Permit,
    answer: Option<Answer>,
    lease: Option<Arc<LeaseCell>>,
}

impl Acknowledge {
    fn done(self, written: Result<(), hb_store::StoreError>) {
        let Acknowledge {
            server,
            generation,
            signed_body,
            assignment,
            permit,
            answer,
            lease,
        } = self;
        // Only the lease fence is a `RequireEq` in an assignment batch.
        let fenced = matches!(
            written,
            Err(hb_store::StoreError::PreconditionFailed { .. })
        );
        if fenced {
            // At once, on the writer's thread: the server's next request
            // (and every queued one) is refused before it is assigned.
            if let Some(lease) = &lease {
                lease.lose("an assignment batch failed its lease fence");
            }
        }
        server.do_send(Written {
            generation,
            body_id: signed_body,
            slot: assignment.slot,
            error: written.as_ref().err().map(ToString::to_string),
            fenced,
        });
        drop(permit);
        if let Some(answer) = answer {
            let outcome = match written {
                Ok(()) => Ok(assignment),
                Err(_) if fenced => Err(SchedulerError::Unavailable {
                    pid: assignment.pid.to_human(),
                }),
                Err(e) => Err(SchedulerError::from(e)),
            };
            // A caller that stopped waiting no longer listens; that is fine.
            let _ = answer.send(outcome);
        }
    }
}

/// Ask for the last assigned slot and chain link.
struct Current;

impl actix::Message for Current {
    type Result = CurrentSlot;
}

/// Fault injection for tests: the handler panics, as a bug would.
#[cfg(feature = "test-support")]
struct InjectPanic;

#[cfg(feature = "test-support")]
impl actix::Message for InjectPanic {
    type Result = Result<(), SchedulerError>;
}

/// The actor owning one process's schedule.
pub struct SchedulerServer {
    core: ServerCore,
    deps: SchedulerDeps,
    shared: Arc<Shared>,
    /// The lease was lost and the core let go of the schedule.
    fenced_off: bool,
}

impl SchedulerServer {
    pub(crate) fn new(
        deps: SchedulerDeps,
        sequencer: Sequencer,
        dedup: DedupPolicy,
        shared: Arc<Shared>,
    ) -> SchedulerServer {
        SchedulerServer {
            core: ServerCore::new(sequencer, dedup),
            deps,
            shared,
            fenced_off: false,
        }
    }

    fn pid_text(&self) -> String {
        self.core.pid().to_human()
    }

    /// Decides and submits one request (under the retirement lock), and
    /// arranges its answer.
    fn run(
        &mut self,
        mut req: Schedule,
        stored_original: Option<Assignment>,
        ctx: &mut Context<Self>,
    ) {
        let mut answer = req.answer.take();
        let outcome = self.decide_and_submit(req, stored_original, &mut answer, ctx);
        if let (Some(answer), Some(outcome)) = (answer, outcome) {
            // A caller that stopped waiting no longer listens; that is fine.
            let _ = answer.send(outcome);
        }
    }

    /// Decides one request. Gives its outcome when it is answered now; takes
    /// `answer` when the writer's acknowledgement answers it instead.
    fn decide_and_submit(
        &mut self,
        req: Schedule,
        stored_original: Option<Assignment>,
        answer: &mut Option<Answer>,
        ctx: &mut Context<Self>,
    ) -> Option<Outcome> {
        let shared = Arc::clone(&self.shared);
        let retired = shared.retired.lock();
        if *retired {
            // The facade retries through the registry, which starts a
            // successor from the store.
            return Some(Err(SchedulerError::Unavailable {
                pid: self.pid_text(),
            }));
        }
        let now_ms = self.deps.clock.now_ms();
        self.shared
            .last_request_ms
            .fetch_max(now_ms, Ordering::AcqRel);
        if Instant::now() >= req.deadline {
            // Nobody waits for this answer: do not assign a slot for it.
            return Some(Err(self.timed_out()));
        }
        // With leases: the fence is taken, and the batch carrying it
        // submitted, under the lease's order lock, so a renewal cannot
        // slip between them (see `lease_keeper`).
        let order = shared.lease.as_ref().map(|lease| lease.order());
        let fence = match &shared.lease {
            None => None,
            Some(lease) => match lease.fence(now_ms) {
                Some(fence) => Some(fence),
                None => {
                    drop(order);
                    drop(retired);
                    self.let_go("the lease is lost or expired");
                    return Some(Err(SchedulerError::Unavailable {
                        pid: self.pid_text(),
                    }));
                }
            },
        };
        let Schedule {
            body,
            signed,
            idempotent,
            permit,
            ..
        } = req;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.fault_point(&body, crate::config::FaultPoint::BeforeAssign);
            let decided = self.core.decide(Request {
                body: body.clone(),
                signed,
                idempotent,
                stored_original,
                tip: self.deps.tip.cached(),
                now_ms,
                key: &self.deps.key,
                fence,
            });
            if matches!(decided, Ok(Decision::New(..))) {
                self.fault_point(&body, crate::config::FaultPoint::AfterAssign);
            }
            decided
        }));
        let (assignment, batch) = match outcome {
            Err(panic) => {
                let detail = panic_text(&panic);
                drop(order);
                drop(retired);
                // The answer is sent before the stop takes effect.
                self.deps.metrics.panics.fetch_add(1, Ordering::Relaxed);
                self.fail(ctx, "handler panicked");
                return Some(Err(SchedulerError::Internal {
                    pid: self.pid_text(),
                    detail,
                }));
            }
            Ok(Err(e)) => return Some(Err(e)),
            Ok(Ok(Decision::Existing(assignment))) => return Some(Ok(assignment)),
            Ok(Ok(Decision::New(a, batch))) => (a, batch),
        };
        self.shared
            .current
            .store(assignment.slot as i64, Ordering::Release);
        self.deps.metrics.assigned.fetch_add(1, Ordering::Relaxed);
        let mode = self.deps.config.mode;
        let acknowledge = Acknowledge {
            server: ctx.address(),
            generation: self.core.generation(),
            signed_body: signed.then_some(assignment.body_id),
            assignment: Arc::clone(&assignment),
            permit,
            lease: shared.lease.clone(),
            // Aggressive mode answers below, before durability; so does
            // an injected fault right after the hand-over (tests).
            answer: if mode != SchedulingMode::Aggressive
                && !self.fault_armed(&body, crate::config::FaultPoint::AfterSubmit)
            {
                answer.take()
            } else {
                None
            },
        };
        if mode == SchedulingMode::RemoteConfirmation {
            // The upload is async: a task on this arbiter waits for the
            // write, uploads, then answers. It outlives a stop of this
            // server, so no caller loses its answer.
            let ack = self.deps.writer.submit(batch);
            let uploader = Arc::clone(&self.deps.uploader);
            actix::spawn(async move {
                let written = ack.await;
                if written.is_ok() {
                    // The uploader's result is logged and counted, not checked.
                    if let Err(e) = uploader.upload(&acknowledge.assignment).await {
                        tracing::warn!(slot = acknowledge.assignment.slot, error = %e, "upload failed");
                    }
                }
                acknowledge.done(written);
            });
        } else {
            // The writer thread runs the acknowledgement itself: it tells
            // this server, frees the capacity slot and answers the caller.
            self.deps
                .writer
                .submit_then(batch, move |written| acknowledge.done(written));
        }
        drop(order);
        drop(retired);
        let submitted = catch_unwind(AssertUnwindSafe(|| {
            self.fault_point(&body, crate::config::FaultPoint::AfterSubmit);
        }));
        if let Err(panic) = submitted {
            let detail = panic_text(&panic);
            self.deps.metrics.panics.fetch_add(1, Ordering::Relaxed);
            self.fail(ctx, "handler panicked after submitting");
            return Some(Err(SchedulerError::Internal {
                pid: self.pid_text(),
                detail,
            }));
        }
        (mode == SchedulingMode::Aggressive).then_some(Ok(assignment))
    }

    #[cfg(feature = "test-support")]
    fn fault_point(&self, body: &Message, point: crate::config::FaultPoint) {
        if self.fault_armed(body, point) {
            panic!("fault injection at {point:?}: message carries a fault key");
        }
    }

    #[cfg(not(feature = "test-support"))]
    fn fault_point(&self, _: &Message, _: crate::config::FaultPoint) {}

    /// Whether `fault_point(body, point)` will panic.
    #[cfg(feature = "test-support")]
    fn fault_armed(&self, body: &Message, point: crate::config::FaultPoint) -> bool {
        self.deps.config.fault_panic_point == point
            && (self.deps.config.fault_panic_key.as_ref())
                .is_some_and(|key| body.get(key).is_some())
    }

    #[cfg(not(feature = "test-support"))]
    fn fault_armed(&self, _: &Message, _: crate::config::FaultPoint) -> bool {
        false
    }

    fn timed_out(&self) -> SchedulerError {
        SchedulerError::Timeout {
            pid: self.pid_text(),
            after_ms: self.deps.config.schedule_timeout_ms,
        }
    }

    /// The lease is lost: stop sequencing at once, without a restart. The
    /// core forgets the schedule (so every queued request is answered
    /// `Unavailable`), acknowledgements of earlier writes are ignored,
    /// and the registry replaces the server on the next lookup, which
    /// takes the lease anew.
    fn let_go(&mut self, why: &str) {
        if let Some(lease) = &self.shared.lease {
            lease.lose(why);
        }
        if !self.fenced_off {
            self.fenced_off = true;
            tracing::warn!(pid = %self.core.pid(), why, "scheduler server stops: its lease is lost");
            self.core.restart();
        }
    }

    fn fail(&mut self, ctx: &mut Context<Self>, why: &str) {
        tracing::error!(pid = %self.core.pid(), why, "scheduler server stops; its supervisor restarts it from the store");
        self.core.restart();
        ctx.stop();
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

impl Actor for SchedulerServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.deps.config.server_capacity.max(1));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if *self.shared.retired.lock() {
            self.deps.metrics.ended.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Supervised for SchedulerServer {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.deps.metrics.restarts.fetch_add(1, Ordering::Relaxed);
        self.core.restart();
        if self.shared.lease_lost() {
            // Not this node's schedule any more: stay unloaded, refusing.
            self.fenced_off = true;
            return;
        }
        let pid = self.core.pid();
        let deps = self.deps.clone();
        // Wait for every write already handed to group commit, then reload
        // the head from the store, off this thread. `wait` holds the mailbox
        // meanwhile, so no request sees a half-loaded server.
        let reload = async move {
            // An empty batch is acknowledged after every earlier one; its
            // own outcome does not matter, only that the queue drained.
            let _ = deps.writer.submit(hb_store::Batch::new()).await;
            let store = Arc::clone(&deps.store);
            tokio::task::spawn_blocking(move || schedule_store::load(store, pid))
                .await
                .map_err(|e| SchedulerError::Task {
                    detail: format!("reload of {pid} failed: {e}"),
                })?
        };
        ctx.wait(reload.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(loaded) => {
                let seq = loaded.sequencer;
                tracing::info!(pid = %act.core.pid(), slot = seq.current(), "scheduler server reloaded from the store");
                act.shared.current.store(seq.current(), Ordering::Release);
                act.core.reloaded(seq);
            }
            Err(e) => {
                tracing::error!(pid = %act.core.pid(), error = %e, "scheduler server could not reload");
                ctx.stop();
            }
        }));
    }
}

impl Handler<Schedule> for SchedulerServer {
    type Result = ();

    fn handle(&mut self, req: Schedule, ctx: &mut Context<Self>) {
        let span = tracing::debug_span!("server_schedule", pid = %self.core.pid());
        let _enter = span.enter();
        let lookup = match req.body.id_all() {
            Ok(id) => self.core.lookup_needed(&id, req.signed, req.idempotent),
            Err(e) => {
                if let Some(answer) = req.answer {
                    let _ = answer.send(Err(e.into()));
                }
                return;
            }
        };
        let Some(body_id) = lookup else {
            return self.run(req, None, ctx);
        };
        // Dedup applies: read the original off the arbiter, holding the
        // mailbox (`wait`) so no later request overtakes this one.
        let store = Arc::clone(&self.deps.store);
        let pid = self.core.pid();
        let read = async move {
            tokio::task::spawn_blocking(move || {
                schedule_store::find_original(store, &pid, &body_id)
            })
            .await
            .map_err(|e| SchedulerError::Task {
                detail: format!("dedup read failed: {e}"),
            })?
        };
        ctx.wait(
            read.into_actor(self)
                .map(move |found, act, ctx| match found {
                    Ok(original) => act.run(req, original, ctx),
                    Err(e) => {
                        if let Some(answer) = req.answer {
                            let _ = answer.send(Err(e));
                        }
                    }
                }),
        );
    }
}

impl Handler<Written> for SchedulerServer {
    type Result = ();

    fn handle(&mut self, w: Written, ctx: &mut Context<Self>) {
        if let Err(why) = self.core.written(w.generation, w.body_id, w.slot, w.error) {
            self.deps
                .metrics
                .write_failures
                .fetch_add(1, Ordering::Relaxed);
            if w.fenced {
                // Another node took the lease: stop, do not reload.
                self.let_go(&why);
            } else {
                // Never assign on top of a slot that is not stored.
                self.fail(ctx, &why);
            }
        }
    }
}

impl Handler<Current> for SchedulerServer {
    type Result = MessageResult<Current>;

    fn handle(&mut self, _: Current, _: &mut Context<Self>) -> Self::Result {
        let now_ms = self.deps.clock.now_ms();
        self.shared
            .last_request_ms
            .fetch_max(now_ms, Ordering::AcqRel);
        MessageResult(self.core.current())
    }
}

#[cfg(feature = "test-support")]
impl Handler<InjectPanic> for SchedulerServer {
    type Result = Result<(), SchedulerError>;

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) -> Self::Result {
        let outcome = catch_unwind(AssertUnwindSafe(|| -> () { panic!("injected panic") }));
        let detail = outcome.err().map(|p| panic_text(&p)).unwrap_or_default();
        self.deps.metrics.panics.fetch_add(1, Ordering::Relaxed);
        self.fail(ctx, "handler panicked");
        Err(SchedulerError::Internal {
            pid: self.pid_text(),
            detail,
        })
    }
}

/// The outcome of one attempt to schedule on a server.
pub(crate) enum Attempt {
    /// The server was retired for idleness: the message comes back, to be
    /// sent to its successor.
    Retired(Message),
    /// The server's answer.
    Done(Result<Arc<Assignment>, SchedulerError>),
}

/// The address of a running server, with backpressure and deadlines.
#[derive(Clone)]
pub struct ServerHandle {
    pid: Id,
    addr: Addr<SchedulerServer>,
    shared: Arc<Shared>,
    capacity: usize,
    timeout: Duration,
}

impl ServerHandle {
    pub(crate) fn new(
        pid: Id,
        addr: Addr<SchedulerServer>,
        shared: Arc<Shared>,
        capacity: usize,
        timeout: Duration,
    ) -> ServerHandle {
        ServerHandle {
            pid,
            addr,
            shared,
            capacity: capacity.max(1),
            timeout,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The process.
    pub fn pid(&self) -> Id {
        self.pid
    }

    /// Whether both handles reach the same server (and supervisor).
    pub fn same_server(&self, other: &ServerHandle) -> bool {
        self.addr == other.addr
    }

    /// Whether the actor (or its supervisor) is alive, not retired, and
    /// (with leases) still holds its process's lease.
    pub fn is_alive(&self) -> bool {
        self.addr.connected() && !self.shared.lease_lost() && !*self.shared.retired.lock()
    }

    /// Whether the registry retired this server for idleness.
    pub(crate) fn is_retired(&self) -> bool {
        *self.shared.retired.lock()
    }

    /// Requests holding a capacity slot right now (including writes not yet
    /// acknowledged).
    pub fn inflight(&self) -> usize {
        self.shared.inflight.load(Ordering::Acquire)
    }

    /// The last assigned slot as last published by the server (−1: none).
    pub fn published_slot(&self) -> i64 {
        self.shared.current.load(Ordering::Acquire)
    }

    /// Schedules an admitted message: `Busy` at once when the server is
    /// saturated, `Timeout` at `deadline`, `Unavailable` if the server died,
    /// and the message back if the server was retired for idleness.
    pub(crate) async fn schedule(
        &self,
        body: Message,
        signed: bool,
        idempotent: bool,
        deadline: Instant,
    ) -> Attempt {
        if self.shared.inflight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.shared.inflight.fetch_sub(1, Ordering::AcqRel);
            return Attempt::Done(Err(SchedulerError::Busy {
                pid: self.pid.to_human(),
            }));
        }
        let permit = Permit(Arc::clone(&self.shared));
        // Checked after taking the slot: the registry retires a server only
        // while no slot is taken, under the same lock (see the registry's sweep).
        if self.is_retired() {
            return Attempt::Retired(body);
        }
        let (answer, answered) = oneshot::channel();
        let msg = Schedule {
            body,
            signed,
            idempotent,
            deadline,
            permit,
            answer: Some(answer),
        };
        // The permits bound the requests in the mailbox, so no mailbox
        // limit is needed on top. A closed mailbox drops the request, and
        // with it the answer: the caller sees `Unavailable` below.
        self.addr.do_send(msg);
        Attempt::Done(match tokio::time::timeout_at(deadline, answered).await {
            Err(_) => Err(self.timed_out()),
            // Every path answers; a dropped answer means the server's
            // arbiter stopped with the request in its mailbox.
            Ok(Err(_)) => Err(SchedulerError::Unavailable {
                pid: self.pid.to_human(),
            }),
            Ok(Ok(outcome)) => outcome,
        })
    }

    fn timed_out(&self) -> SchedulerError {
        SchedulerError::Timeout {
            pid: self.pid.to_human(),
            after_ms: self.timeout.as_millis().try_into().unwrap_or(u64::MAX),
        }
    }

    /// The last assigned slot and chain link.
    pub async fn current(&self) -> Result<CurrentSlot, SchedulerError> {
        self.call(Current).await
    }

    /// Makes the server's handler panic (tests of supervision).
    #[cfg(feature = "test-support")]
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
