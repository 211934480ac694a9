//! `Computation`: a process's state, advanced one slot at a time (SPEC
//! §6.4), as a plain struct without actix. The worker gives it a mailbox;
//! tests drive it directly.
//!
//! Starting state for a target slot S, in order of preference: the live
//! (in-memory) state if its `at-slot` ≤ S; else the nearest snapshot ≤ S,
//! restored through the execution device's `normalize`; else `init`. When
//! the live state is already past S, the nearest snapshot ≤ S is restored
//! into a separate copy and replayed to S, leaving the live state
//! untouched. Then, while `at-slot` < S: `next` from the scheduler device,
//! the execution device on the assignment, the state stored (with a
//! snapshot every `snapshot_every` slots and at slot 0).

use std::sync::Arc;

use hb_device::{Context, HashpathMode, Outcome, ResolveError};
use hb_message::{Id, Message, Value};
use hb_scheduler::{Clock, Scheduler, SchedulerError};
use hb_store::{ProcessCache, StateRecord};

use crate::error::{ComputeError, Phase};
use crate::run_as::{request_for, run_as, Kind, PROCESS_DEVICE};

/// The private key marking execution requests of a replay on a copy
/// (scripts never see private keys).
pub const REPLAY: &str = "priv-replay";

/// Keys a message's `path` may not name: they run as `compute`, so a
/// message cannot trigger internal keys (SPEC §6.4).
const INTERNAL_KEYS: [&str; 3] = ["init", "snapshot", "normalize"];

/// The last failure of a process's computation, for `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    /// The slot that failed.
    pub slot: i64,
    /// Where.
    pub phase: String,
    /// The error code.
    pub code: String,
    /// What happened.
    pub detail: String,
}

/// What the computation of one process needs from the node.
#[derive(Clone)]
pub struct ComputeEnv {
    /// The resolution context: a registry with the process's devices, and
    /// the scheduler in its extensions (for `scheduler@1.0`'s `next`).
    pub ctx: Context,
    /// The scheduler, for the definition and the current slot.
    pub scheduler: Scheduler,
    /// Where states are cached.
    pub cache: ProcessCache,
    /// Wall-clock time (`computed-at`).
    pub clock: Arc<dyn Clock>,
    /// `process_cache_frequency`: a snapshot every this many slots (and at
    /// slot 0); 0 means only at slot 0.
    pub snapshot_every: u64,
}

impl std::fmt::Debug for ComputeEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeEnv")
            .field("snapshot_every", &self.snapshot_every)
            .finish_non_exhaustive()
    }
}

/// One process's computation.
#[derive(Debug)]
pub struct Computation {
    pid: Id,
    env: ComputeEnv,
    /// Whether the slots being run are a replay on a copy (execution
    /// requests then carry [`REPLAY`], so devices that keep hidden state
    /// per process, as `lua@5.3a`'s VM, use a separate one).
    replaying: bool,
    live: Option<Message>,
    snapshot_slot: Option<u64>,
    last_error: Option<LastError>,
    /// Where slots computed and snapshot failures are counted, if anywhere.
    metrics: Option<Arc<crate::worker::ProcessMetrics>>,
}

/// A computed state and when it was computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Computed {
    /// The slot it reflects.
    pub slot: u64,
    /// The state.
    pub state: Message,
    /// When it was computed (ms since the Unix epoch, the scheduler's clock).
    pub computed_at_ms: u64,
}

impl Computed {
    /// A stored state as answered: without its `snapshot`, which is the
    /// execution device's restore data, not part of the state.
    pub(crate) fn from_record(r: StateRecord) -> Computed {
        let mut state = r.state;
        state.remove("snapshot");
        Computed {
            slot: r.slot,
            state,
            computed_at_ms: r.computed_at_ms,
        }
    }
}

impl Computation {
    /// A computation of `pid` with nothing in memory yet.
    pub fn new(pid: Id, env: ComputeEnv) -> Computation {
        Computation {
            pid,
            env,
            replaying: false,
            live: None,
            snapshot_slot: None,
            last_error: None,
            metrics: None,
        }
    }

    /// Counts the slots this computation runs and its failed snapshots in
    /// `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::worker::ProcessMetrics>) -> Computation {
        self.metrics = Some(metrics);
        self
    }

    fn count(
        &self,
        counter: impl Fn(&crate::worker::ProcessMetrics) -> &std::sync::atomic::AtomicU64,
    ) {
        if let Some(m) = &self.metrics {
            counter(m).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The process.
    pub fn pid(&self) -> Id {
        self.pid
    }

    /// The live state's `at-slot` (−1 after init; `None` with nothing in
    /// memory).
    pub fn at_slot(&self) -> Option<i64> {
        self.live.as_ref().and_then(|s| s.get_int("at-slot"))
    }

    /// The live state.
    pub fn live(&self) -> Option<&Message> {
        self.live.as_ref()
    }

    /// The slot of the last snapshot this computation stored.
    pub fn snapshot_slot(&self) -> Option<u64> {
        self.snapshot_slot
    }

    /// The last failure, if the process is halted or failed last time.
    pub fn last_error(&self) -> Option<&LastError> {
        self.last_error.as_ref()
    }

    /// Forgets the live state (after a device panic: the next computation
    /// starts again from the latest snapshot).
    pub fn discard(&mut self) {
        self.live = None;
    }

    /// The cached state of `slot`, if any.
    pub async fn cached(&self, slot: u64) -> Result<Option<Computed>, ComputeError> {
        let cache = self.env.cache.clone();
        let pid = self.pid;
        blocking(move || cache.read_slot(&pid, slot))
            .await
            .map(|r| r.map(Computed::from_record))
    }

    /// Computes the state at `target`, calling `on_slot(slot, state,
    /// computed_at_ms)` with each slot completed on the live state (so
    /// waiters can be answered as soon as their slot is done). The state
    /// answered has no private keys.
    pub async fn compute_to(
        &mut self,
        target: u64,
        on_slot: &mut (dyn FnMut(u64, &Message, u64) + Send),
    ) -> Result<Computed, ComputeError> {
        let result = self.compute_to_inner(target, on_slot).await;
        if let Err(e) = &result {
            self.note_error(e);
        }
        result
    }

    async fn compute_to_inner(
        &mut self,
        target: u64,
        on_slot: &mut (dyn FnMut(u64, &Message, u64) + Send),
    ) -> Result<Computed, ComputeError> {
        let latest = self.scheduled_slot().await?;
        if i64::try_from(target).map_or(true, |t| t > latest) {
            return Err(ComputeError::SlotNotAvailable {
                requested: target,
                latest,
            });
        }
        if let Some(hit) = self.cached(target).await? {
            return Ok(hit);
        }
        let target_i = i64::try_from(target).unwrap_or(i64::MAX);
        match self.at_slot() {
            Some(at) if at <= target_i => {}
            Some(_) => {
                // The live state is past `target`: replay a copy.
                self.replaying = true;
                let replayed = async {
                    let mut copy = self.start_from_snapshot_or_init(target).await?;
                    self.advance(&mut copy, target, &mut |_, _, _| {}).await
                }
                .await;
                self.replaying = false;
                return replayed;
            }
            None => {
                let start = self.start_from_snapshot_or_init(target).await?;
                self.live = Some(start);
            }
        }
        let mut live = self.live.take().unwrap_or_default();
        let outcome = self.advance(&mut live, target, on_slot).await;
        self.live = Some(live);
        outcome
    }

    /// Runs slots on `state` until its `at-slot` is `target`.
    async fn advance(
        &mut self,
        state: &mut Message,
        target: u64,
        on_slot: &mut (dyn FnMut(u64, &Message, u64) + Send),
    ) -> Result<Computed, ComputeError> {
        let target_i = i64::try_from(target).unwrap_or(i64::MAX);
        let mut last = None;
        while state.get_int("at-slot").unwrap_or(-1) < target_i {
            let next = self.step(std::mem::take(state)).await;
            match next {
                Ok((slot, s, computed_at_ms)) => {
                    *state = s;
                    // Borrowed: a caller copies a slot's state only if
                    // somebody waits for it.
                    on_slot(slot, state, computed_at_ms);
                    last = Some((slot, computed_at_ms));
                }
                Err((e, back)) => {
                    *state = match back {
                        Some(back) => back,
                        // Consumed by the failed step: the last stored
                        // state is the same one (every slot is stored).
                        None => self.reload(at_before(&e)).await,
                    };
                    return Err(e);
                }
            }
        }
        let (slot, computed_at_ms) =
            last.unwrap_or_else(|| (target, u64::try_from(self.env.clock.now_ms()).unwrap_or(0)));
        Ok(Computed {
            slot,
            state: state.without_private(),
            computed_at_ms,
        })
    }

    /// Marks an execution request of a replay.
    fn mark(&self, mut request: Message) -> Result<Message, hb_message::MessageError> {
        if self.replaying {
            request.set_private(REPLAY, true)?;
        }
        Ok(request)
    }

    /// The stored state of `slot` (−1, or unreadable: an empty message, so
    /// the next computation starts from a snapshot or init).
    async fn reload(&self, slot: i64) -> Message {
        let Ok(slot) = u64::try_from(slot) else {
            return Message::new();
        };
        match self.cached(slot).await {
            Ok(Some(c)) => c.state,
            _ => Message::new(),
        }
    }

    /// The scheduler's current slot (−1: none yet). An unknown process is
    /// `UnknownProcess`.
    pub async fn scheduled_slot(&self) -> Result<i64, ComputeError> {
        match self.env.scheduler.current(self.pid).await? {
            Some(c) => Ok(c.slot),
            None => Err(ComputeError::UnknownProcess {
                pid: self.pid.to_human(),
            }),
        }
    }

    /// The nearest snapshot ≤ `target`, restored; else a fresh init.
    async fn start_from_snapshot_or_init(&mut self, target: u64) -> Result<Message, ComputeError> {
        let cache = self.env.cache.clone();
        let pid = self.pid;
        let snap = blocking(move || cache.nearest_snapshot(&pid, target)).await?;
        match snap {
            Some(record) => self.restore(record).await,
            None => self.init().await,
        }
    }

    /// Rebuilds a stored state through `normalize` (HashPath ignored), then
    /// removes its `snapshot`.
    async fn restore(&self, record: StateRecord) -> Result<Message, ComputeError> {
        let slot = i64::try_from(record.slot).unwrap_or(i64::MAX);
        let ctx = self.env.ctx.with_hashpath(HashpathMode::Ignore);
        let request = self.mark(request_for("normalize")?)?;
        let restored = run_as(&ctx, Kind::Execution, record.state, &request)
            .await
            .and_then(|o| expect_message(o, "normalize"))
            .map_err(|source| self.failed(Phase::Normalize, slot, source))?;
        let mut state = restored;
        state.remove("snapshot");
        state.insert("at-slot", slot)?;
        state.insert("device", PROCESS_DEVICE)?;
        Ok(state)
    }

    /// The state before slot 0: the definition's committed keys, `process`,
    /// the execution device's `init`, `initialized: true`, `at-slot: −1`.
    async fn init(&self) -> Result<Message, ComputeError> {
        let definition = self
            .env
            .scheduler
            .assignment(self.pid, 0)
            .await?
            .and_then(|a| a.get_message("body").cloned())
            .ok_or_else(|| ComputeError::UnknownProcess {
                pid: self.pid.to_human(),
            })?;
        let committed = definition.with_only_committed()?;
        let mut state = committed.clone();
        state.remove(hb_message::COMMITMENTS);
        state.insert("process", committed)?;
        let request = self.mark(request_for("init")?)?;
        let mut state = run_as(&self.env.ctx, Kind::Execution, state, &request)
            .await
            .and_then(|o| expect_message(o, "init"))
            .map_err(|source| self.failed(Phase::Init, -1, source))?;
        state.insert("initialized", true)?;
        state.insert("at-slot", -1)?;
        state.insert("device", PROCESS_DEVICE)?;
        Ok(state)
    }

    /// One slot: `next`, the execution device, the store. On failure the
    /// state comes back when it was not consumed.
    async fn step(
        &mut self,
        state: Message,
    ) -> Result<(u64, Message, u64), (ComputeError, Option<Message>)> {
        let at = state.get_int("at-slot").unwrap_or(-1);
        let attempted = at.saturating_add(1);
        let next_req = match request_for("next") {
            Ok(r) => r,
            Err(e) => return Err((e.into(), Some(state))),
        };
        // The state is handed over (no copy per slot); on a failure the
        // caller reloads the last stored state.
        let next = run_as(&self.env.ctx, Kind::Scheduler, state, &next_req)
            .await
            .and_then(|o| expect_message(o, "next"));
        let mut next = match next {
            Ok(m) => m,
            Err(source) => return Err((self.failed(Phase::GetSchedule, attempted, source), None)),
        };
        let (Some(Value::Message(assignment)), Some(Value::Message(mut state))) =
            (next.remove("body"), next.remove("state"))
        else {
            let source = ResolveError::invalid_input("next", "next answers {body, state}");
            return Err((self.failed(Phase::GetSchedule, attempted, source), None));
        };
        let slot = match assignment
            .get_int("slot")
            .and_then(|s| u64::try_from(s).ok())
        {
            Some(s) => s,
            None => {
                let source = ResolveError::invalid_input("next", "the assignment has no slot");
                return Err((self.failed(Phase::GetSchedule, attempted, source), None));
            }
        };
        state.remove("results");
        let key = assignment
            .get_text("path")
            .filter(|p| !INTERNAL_KEYS.contains(p))
            .unwrap_or("compute")
            .to_string();
        let mut request = assignment;
        if let Err(e) = request.insert("path", key.as_str()) {
            return Err((e.into(), None));
        }
        let request = match self.mark(request) {
            Ok(r) => r,
            Err(e) => return Err((e.into(), None)),
        };
        let computed = run_as(&self.env.ctx, Kind::Execution, state, &request)
            .await
            .and_then(|o| expect_message(o, &key));
        let mut state = match computed {
            Ok(s) => s,
            Err(source) => {
                let e = if is_panic(&source) {
                    ComputeError::DevicePanicked {
                        pid: self.pid.to_human(),
                        slot: attempted,
                    }
                } else {
                    self.failed(Phase::Compute, attempted, source)
                };
                return Err((e, None));
            }
        };
        let stored = (|| -> Result<(), ComputeError> {
            state.insert("at-slot", i64::try_from(slot).unwrap_or(i64::MAX))?;
            state.insert("device", PROCESS_DEVICE)?;
            Ok(())
        })();
        if let Err(e) = stored {
            return Err((e, None));
        }
        match self.store(slot, &state).await {
            Ok(at) => {
                self.count(|m| &m.computed);
                self.last_error = None;
                Ok((slot, state, at))
            }
            Err(e) => Err((e, None)),
        }
    }

    /// Stores `state` as `slot`'s, with a snapshot at slot 0 and every
    /// `snapshot_every` slots. A failed snapshot is logged and the state
    /// stored without one. Returns `computed-at`.
    async fn store(&mut self, slot: u64, state: &Message) -> Result<u64, ComputeError> {
        let every = self.env.snapshot_every;
        let with_snapshot = slot == 0 || (every > 0 && slot.is_multiple_of(every));
        // The stored copy leaves out private keys (the scheduler's
        // look-ahead travels there): they are never stored anyway.
        let mut stored = state.without_private();
        if with_snapshot {
            match self.snapshot_of(state).await {
                Ok(snap) => {
                    stored.insert("snapshot", snap)?;
                }
                Err(e) => {
                    self.count(|m| &m.snapshot_failures);
                    tracing::warn!(pid = %self.pid, slot, error = %e, "snapshot failed; storing the state without one");
                }
            }
        }
        let at = u64::try_from(self.env.clock.now_ms()).unwrap_or(0);
        let has_snapshot = stored.get("snapshot").is_some();
        let cache = self.env.cache.clone();
        let pid = self.pid;
        // Encoded here, so only bytes move to the blocking pool.
        let mut batch = hb_store::Batch::new();
        hb_store::ProcessCache::stage_write(&mut batch, &pid, slot, &stored, at)?;
        drop(stored);
        blocking(move || cache.apply_write(&pid, slot, batch)).await?;
        if has_snapshot {
            self.snapshot_slot = Some(self.snapshot_slot.map_or(slot, |s| s.max(slot)));
        }
        Ok(at)
    }

    /// Adds a snapshot to the live state's stored slot (for an idle stop
    /// or shutdown), if that slot has none yet, so the next worker restarts
    /// from it instead of replaying.
    pub async fn snapshot_live(&mut self) -> Result<(), ComputeError> {
        let Some(state) = self.live.clone() else {
            return Ok(());
        };
        let Some(slot) = state.get_int("at-slot").and_then(|s| u64::try_from(s).ok()) else {
            return Ok(());
        };
        if self.snapshot_slot == Some(slot) {
            return Ok(());
        }
        let snapshot = self.snapshot_of(&state).await.map_err(|source| {
            self.count(|m| &m.snapshot_failures);
            self.failed(
                Phase::Compute,
                i64::try_from(slot).unwrap_or(i64::MAX),
                source,
            )
        })?;
        let state_id = hb_store::state_id_of(&state)?;
        let cache = self.env.cache.clone();
        let pid = self.pid;
        if blocking(move || cache.attach_snapshot(&pid, slot, &state_id, snapshot)).await? {
            self.snapshot_slot = Some(slot);
        }
        Ok(())
    }

    /// The execution device's `snapshot` of `state` (Map mode, HashPath
    /// ignored).
    async fn snapshot_of(&self, state: &Message) -> Result<Message, ResolveError> {
        let ctx = self.env.ctx.with_hashpath(HashpathMode::Ignore);
        let request = request_for("snapshot")?.with("mode", "Map")?;
        // Without private keys: a snapshot is of the public state.
        run_as(&ctx, Kind::Execution, state.without_private(), &request)
            .await
            .and_then(|o| expect_message(o, "snapshot"))
    }

    fn failed(&self, phase: Phase, attempted_slot: i64, source: ResolveError) -> ComputeError {
        // A scheduler error keeps its own meaning (an unknown process, a
        // slot not yet scheduled) instead of a generic failure.
        if let Some(SchedulerError::SlotNotAvailable { requested, latest }) = source
            .device_source()
            .and_then(|s| s.downcast_ref::<SchedulerError>())
        {
            return ComputeError::SlotNotAvailable {
                requested: *requested,
                latest: *latest,
            };
        }
        ComputeError::Compute {
            pid: self.pid.to_human(),
            phase,
            attempted_slot,
            source,
        }
    }

    fn note_error(&mut self, e: &ComputeError) {
        use hb_message::ErrorCode;
        let (phase, slot) = match e {
            ComputeError::Compute {
                phase,
                attempted_slot,
                ..
            } => (phase.as_str(), *attempted_slot),
            ComputeError::DevicePanicked { slot, .. } => ("compute", *slot),
            _ => return,
        };
        self.last_error = Some(LastError {
            slot,
            phase: phase.to_string(),
            code: e.code().to_string(),
            detail: e.to_string(),
        });
    }
}

/// The slot before the one a failure was computing.
fn at_before(e: &ComputeError) -> i64 {
    match e {
        ComputeError::Compute { attempted_slot, .. }
        | ComputeError::DevicePanicked {
            slot: attempted_slot,
            ..
        } => attempted_slot.saturating_sub(1),
        _ => -1,
    }
}

fn is_panic(e: &ResolveError) -> bool {
    matches!(e.root(), ResolveError::Panicked { .. })
}

fn expect_message(outcome: Outcome, key: &str) -> Result<Message, ResolveError> {
    match outcome {
        Outcome::Ok(m) => Ok(m),
        other => Err(ResolveError::invalid_input(
            key,
            format!("expected a message, the device answered {}", other.kind()),
        )),
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, hb_store::StoreError> + Send + 'static,
) -> Result<T, ComputeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(crate::error::task_failed)?
        .map_err(ComputeError::from)
}
