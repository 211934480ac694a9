//! `ProcessWorker`: the one actor that computes a process on this node
//! (SPEC §6.7). A thin shell around [`Computation`]: it keeps waiters keyed
//! by integer slot, runs the computation toward the highest slot asked for
//! while it goes on taking requests, and answers every waiter of slot k as
//! soon as k completes, so concurrent requests for one slot share one
//! computation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hb_message::Id;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::computation::{Computation, Computed, LastError};
use crate::error::ComputeError;

type Reply = oneshot::Sender<Result<Computed, ComputeError>>;

/// What a worker and its handles share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The slot the live state is at (−1: none).
    pub at_slot: AtomicI64,
    /// Whether a computation is running.
    pub running: AtomicBool,
    /// Requests sent and not yet answered.
    pub inflight: AtomicUsize,
    /// The last failure, for `status`.
    pub last_error: Mutex<Option<LastError>>,
    /// Slots somebody waits for (a running computation copies only these).
    pub waited: Mutex<std::collections::BTreeSet<u64>>,
    /// When the worker last took a request (the layer's clock).
    pub last_request_ms: AtomicI64,
    /// Set (under this lock) when the registry retired the worker; a
    /// handle takes it to send, so nothing reaches a retired worker.
    pub retired: Mutex<bool>,
}

/// Counters of the process layer, for metrics and tests.
#[derive(Debug, Default)]
pub struct ProcessMetrics {
    /// Workers started.
    pub started: AtomicU64,
    /// Workers retired after `worker_max_idle_ms` without requests.
    pub retired: AtomicU64,
    /// Retired workers that stored their snapshot and ended.
    pub ended: AtomicU64,
    /// Workers retired early, though not idle for `worker_max_idle_ms`, to
    /// make room under `max_live_workers` (counted in `retired` too).
    pub evicted: AtomicU64,
    /// Slots computed (run through the execution device and stored),
    /// replays on a copy included.
    pub computed: AtomicU64,
    /// Snapshots that failed (the state was stored without one).
    pub snapshot_failures: AtomicU64,
    /// Live states discarded after a device panic: the worker restarts
    /// from the latest snapshot.
    pub restarts: AtomicU64,
}

/// Whether a worker may stop for idleness: no computation running, no
/// request waiting, and none for `max_idle_ms` (0: never).
pub fn is_idle(
    now_ms: i64,
    last_request_ms: i64,
    running: bool,
    inflight: usize,
    max_idle_ms: u64,
) -> bool {
    let max_idle = i64::try_from(max_idle_ms).unwrap_or(i64::MAX);
    max_idle > 0 && !running && inflight == 0 && now_ms.saturating_sub(last_request_ms) >= max_idle
}

/// Compute the state at a slot.
pub(crate) struct Compute {
    pub slot: u64,
    pub reply: Reply,
}

impl actix::Message for Compute {
    type Result = ();
}

/// A slot finished on the live state (sent by the running computation).
struct SlotDone(Computed);

impl actix::Message for SlotDone {
    type Result = ();
}

/// Store the live state with a snapshot, then stop (idle retirement).
pub(crate) struct Retire;

impl actix::Message for Retire {
    type Result = ();
}

/// Store the live state with a snapshot (before an idle stop or shutdown).
pub(crate) struct Snapshot;

impl actix::Message for Snapshot {
    type Result = ();
}

/// The worker actor.
pub struct ProcessWorker {
    pid: Id,
    clock: Arc<dyn hb_scheduler::Clock>,
    metrics: Arc<ProcessMetrics>,
    /// `None` while a run holds it.
    computation: Option<Computation>,
    waiters: BTreeMap<u64, Vec<Reply>>,
    shared: Arc<Shared>,
}

impl ProcessWorker {
    pub(crate) fn new(
        computation: Computation,
        shared: Arc<Shared>,
        clock: Arc<dyn hb_scheduler::Clock>,
        metrics: Arc<ProcessMetrics>,
    ) -> ProcessWorker {
        ProcessWorker {
            pid: computation.pid(),
            clock,
            metrics,
            computation: Some(computation),
            waiters: BTreeMap::new(),
            shared,
        }
    }

    fn answer(&mut self, done: &Computed) {
        let slot_i = i64::try_from(done.slot).unwrap_or(i64::MAX);
        self.shared.at_slot.fetch_max(slot_i, Ordering::AcqRel);
        self.shared.waited.lock().remove(&done.slot);
        if let Some(waiters) = self.waiters.remove(&done.slot) {
            for w in waiters {
                // A waiter past its deadline no longer listens.
                let _ = w.send(Ok(done.clone()));
            }
        }
    }

    /// Starts a run toward the highest slot asked for, unless one runs.
    fn run(&mut self, ctx: &mut Context<Self>) {
        let Some(target) = self.waiters.keys().next_back().copied() else {
            return;
        };
        let Some(mut computation) = self.computation.take() else {
            return; // a run is in flight; it picks the new target up after
        };
        self.shared.running.store(true, Ordering::Release);
        let me = ctx.address();
        let shared = Arc::clone(&self.shared);
        let span = tracing::debug_span!("compute", pid = %self.pid, target);
        let fut = async move {
            let mut on_slot = |slot: u64, state: &hb_message::Message, computed_at_ms: u64| {
                if shared.waited.lock().contains(&slot) {
                    me.do_send(SlotDone(Computed {
                        slot,
                        state: state.without_private(),
                        computed_at_ms,
                    }));
                } else {
                    shared
                        .at_slot
                        .fetch_max(i64::try_from(slot).unwrap_or(i64::MAX), Ordering::AcqRel);
                }
            };
            let result = computation.compute_to(target, &mut on_slot).await;
            (computation, target, result)
        }
        .instrument(span);
        ctx.spawn(
            fut.into_actor(self)
                .map(|(mut computation, target, result), act, ctx| {
                    act.shared.running.store(false, Ordering::Release);
                    *act.shared.last_error.lock() = computation.last_error().cloned();
                    match result {
                        Ok(done) => {
                            // A cache hit or a replayed copy answers its waiters here;
                            // live slots were answered as they completed.
                            act.answer(&done);
                        }
                        Err(e) => {
                            if matches!(e, ComputeError::DevicePanicked { .. }) {
                                // The live state is suspect: start again from the
                                // latest snapshot next time.
                                computation.discard();
                                act.metrics.restarts.fetch_add(1, Ordering::Relaxed);
                            }
                            // Every waiter up to the target failed with it; waiters
                            // beyond were added meanwhile and get a run of their own.
                            let failed: Vec<u64> =
                                act.waiters.range(..=target).map(|(s, _)| *s).collect();
                            for slot in failed {
                                for w in act.waiters.remove(&slot).unwrap_or_default() {
                                    let _ = w.send(Err(e.clone()));
                                }
                            }
                        }
                    }
                    act.computation = Some(computation);
                    act.run(ctx);
                }),
        );
    }
}

impl Actor for ProcessWorker {
    type Context = Context<Self>;
}

impl Handler<Compute> for ProcessWorker {
    type Result = ();

    fn handle(&mut self, req: Compute, ctx: &mut Context<Self>) {
        self.shared
            .last_request_ms
            .fetch_max(self.clock.now_ms(), Ordering::AcqRel);
        self.shared.waited.lock().insert(req.slot);
        self.waiters.entry(req.slot).or_default().push(req.reply);
        self.run(ctx);
    }
}

impl Handler<SlotDone> for ProcessWorker {
    type Result = ();

    fn handle(&mut self, SlotDone(done): SlotDone, _: &mut Context<Self>) {
        self.answer(&done);
    }
}

impl Handler<Snapshot> for ProcessWorker {
    type Result = ResponseActFuture<ProcessWorker, ()>;

    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> Self::Result {
        let Some(mut computation) = self.computation.take() else {
            return Box::pin(actix::fut::ready(()));
        };
        let pid = self.pid;
        Box::pin(
            async move {
                if let Err(e) = computation.snapshot_live().await {
                    tracing::warn!(%pid, error = %e, "could not snapshot the live state");
                }
                computation
            }
            .into_actor(self)
            .map(|computation, act, _| act.computation = Some(computation)),
        )
    }
}

impl Handler<Retire> for ProcessWorker {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        // The registry retired it with nothing running or waiting, and no
        // request can reach it any more: snapshot, then stop.
        let Some(mut computation) = self.computation.take() else {
            ctx.stop();
            return;
        };
        let pid = self.pid;
        let metrics = Arc::clone(&self.metrics);
        ctx.wait(
            async move {
                if let Err(e) = computation.snapshot_live().await {
                    tracing::warn!(%pid, error = %e, "could not snapshot the live state before stopping");
                }
                computation
            }
            .into_actor(self)
            .map(move |computation, act, ctx| {
                act.computation = Some(computation);
                metrics.ended.fetch_add(1, Ordering::Relaxed);
                ctx.stop();
            }),
        );
    }
}

/// The address of a running worker, with backpressure and deadlines.
#[derive(Clone)]
pub struct WorkerHandle {
    pid: Id,
    addr: Addr<ProcessWorker>,
    shared: Arc<Shared>,
    timeout: Duration,
    /// Requests the worker may hold before callers get `Busy` (counted
    /// here: actix gives every address clone a slot beyond the mailbox's
    /// capacity, so the mailbox alone does not bound them).
    capacity: usize,
}

impl WorkerHandle {
    pub(crate) fn new(
        pid: Id,
        addr: Addr<ProcessWorker>,
        shared: Arc<Shared>,
        timeout: Duration,
        capacity: usize,
    ) -> WorkerHandle {
        WorkerHandle {
            pid,
            addr,
            shared,
            timeout,
            capacity: capacity.max(1),
        }
    }

    /// The process.
    pub fn pid(&self) -> Id {
        self.pid
    }

    /// Whether the worker is alive.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }

    /// Whether a computation is running.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire)
    }

    /// The highest slot this worker has computed on its live state (−1:
    /// none yet).
    pub fn at_slot(&self) -> i64 {
        self.shared.at_slot.load(Ordering::Acquire)
    }

    /// The last failure of this worker's computation.
    pub fn last_error(&self) -> Option<LastError> {
        self.shared.last_error.lock().clone()
    }

    /// The state at `slot`: `Busy` when the mailbox is full, `Timeout`
    /// after `compute_timeout_ms` (the computation goes on),
    /// `WorkerStopped` if the worker vanished.
    pub async fn compute(&self, slot: u64) -> Result<Computed, ComputeError> {
        let (reply, answer) = oneshot::channel();
        {
            // Under the retirement lock: the registry retires a worker only
            // while no request is in flight, so none is sent to a retired one.
            let retired = self.shared.retired.lock();
            if *retired {
                return Err(ComputeError::WorkerStopped {
                    pid: self.pid.to_human(),
                });
            }
            let busy = || ComputeError::Busy {
                pid: self.pid.to_human(),
            };
            if self.shared.inflight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
                self.shared.inflight.fetch_sub(1, Ordering::AcqRel);
                return Err(busy());
            }
            match self.addr.try_send(Compute { slot, reply }) {
                Ok(()) => {}
                Err(SendError::Full(_)) => {
                    self.shared.inflight.fetch_sub(1, Ordering::AcqRel);
                    return Err(busy());
                }
                Err(SendError::Closed(_)) => {
                    self.shared.inflight.fetch_sub(1, Ordering::AcqRel);
                    return Err(ComputeError::WorkerStopped {
                        pid: self.pid.to_human(),
                    });
                }
            }
        }
        let outcome = tokio::time::timeout(self.timeout, answer).await;
        self.shared.inflight.fetch_sub(1, Ordering::AcqRel);
        match outcome {
            Err(_) => Err(ComputeError::Timeout {
                pid: self.pid.to_human(),
                at_slot: self.shared.at_slot.load(Ordering::Acquire),
            }),
            Ok(Err(_)) => Err(ComputeError::WorkerStopped {
                pid: self.pid.to_human(),
            }),
            Ok(Ok(result)) => result,
        }
    }

    /// Stores the live state with a snapshot.
    pub(crate) async fn snapshot(&self) {
        let _ = self.addr.send(Snapshot).await;
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn retire(&self) {
        self.addr.do_send(Retire);
    }
}
