//! `ProcessBuilder` and the `Processes` handle: the process layer as an
//! embedder starts it, on a running [`Scheduler`].

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hb_device::{Context, DeviceRegistry};
use hb_message::{Id, Message, Value};
use hb_scheduler::{Clock, Scheduler, SchedulerDevice};
use hb_store::{ProcessCache, RequiredPath};

use crate::computation::{ComputeEnv, Computed};
use crate::error::ComputeError;
use crate::registry::{All, Find, FindOrCreate, ProcessRegistry, Stop};
use crate::test_device::TestDevice;
use crate::worker::ProcessMetrics;

/// The process layer's settings (SPEC §6.6, §6.7).
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// `process_cache_frequency`: a snapshot every this many slots (and at
    /// slot 0); 0 means only at slot 0.
    pub snapshot_every: u64,
    /// `compute_timeout_ms`: how long one waiter waits.
    pub compute_timeout_ms: u64,
    /// Requests one worker's mailbox holds before callers get `Busy`.
    pub worker_capacity: usize,
    /// Threads the workers are spread over.
    pub arbiters: usize,
    /// `test_device_panics`: `test-device@1.0` panics on `fail: "panic"`.
    pub test_device_panics: bool,
    /// `process_worker_max_idle_ms`: a worker without requests this long
    /// stores a snapshot and stops (0: never).
    pub worker_max_idle_ms: u64,
    /// `push_max_depth`: how deep a push recurses into its targets' slots.
    pub push_max_depth: u64,
    /// `process_max_live_workers`: the most workers alive at once (0: no
    /// bound). A new worker past it retires the least recently used
    /// worker with nothing to do (which stores its snapshot first); when
    /// every worker is busy, the caller gets `Busy`.
    pub max_live_workers: usize,
    /// `lua_max_instructions` and `lua_max_memory_bytes` of `lua@5.3a`.
    pub lua_limits: crate::lua::LuaLimits,
}

impl Default for ProcessConfig {
    fn default() -> ProcessConfig {
        ProcessConfig {
            snapshot_every: 1,
            compute_timeout_ms: 60_000,
            worker_capacity: 1024,
            arbiters: std::thread::available_parallelism().map_or(2, |n| n.get()),
            test_device_panics: false,
            worker_max_idle_ms: 300_000,
            push_max_depth: 4,
            max_live_workers: 4096,
            lua_limits: crate::lua::LuaLimits::default(),
        }
    }
}

/// Freshness hints of `now` (SPEC §6.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Accept a state computed at most this many ms ago.
    pub max_age_ms: Option<u64>,
    /// Accept only a state at this slot or later.
    pub min_slot: Option<u64>,
}

/// Builds the process layer on a running scheduler.
pub struct ProcessBuilder {
    scheduler: Scheduler,
    config: ProcessConfig,
    devices: DeviceRegistry,
    clock: Option<Arc<dyn Clock>>,
    test_devices: bool,
}

impl std::fmt::Debug for ProcessBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessBuilder")
            .field("config", &self.config)
            .field("test_devices", &self.test_devices)
            .finish_non_exhaustive()
    }
}

/// The system clock, read through the scheduler's for one time base.
struct SchedulerClock(Scheduler);

impl Clock for SchedulerClock {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
}

impl ProcessBuilder {
    /// A builder on `scheduler` (its store and node key are the layer's),
    /// with SPEC's settings and the built-in devices (`message@1.0`,
    /// `stack@1.0`, `scheduler@1.0`, `test-device@1.0`, `process@1.0`,
    /// `push@1.0`, `patch@1.0`, `lua@5.3a`). `test-device@1.0` is
    /// registered unless [`test_devices`](Self::test_devices) turns it off.
    pub fn new(scheduler: Scheduler) -> ProcessBuilder {
        ProcessBuilder {
            scheduler,
            config: ProcessConfig::default(),
            devices: DeviceRegistry::new(),
            clock: None,
            test_devices: true,
        }
    }

    /// Whether `test-device@1.0` is registered (default true, for tests and
    /// embedders; the node passes its `enable_test_devices`, default false).
    pub fn test_devices(mut self, enabled: bool) -> ProcessBuilder {
        self.test_devices = enabled;
        self
    }

    /// The settings.
    pub fn config(mut self, config: ProcessConfig) -> ProcessBuilder {
        self.config = config;
        self
    }

    /// Registers an execution device (or any device processes name).
    pub fn device(
        mut self,
        device: Arc<dyn hb_device::Device>,
    ) -> Result<ProcessBuilder, ComputeError> {
        self.devices
            .register(device)
            .map_err(|e| ComputeError::InvalidSlot {
                detail: format!("cannot register the device: {e}"),
            })?;
        Ok(self)
    }

    /// The clock for `computed-at` (default: the scheduler's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> ProcessBuilder {
        self.clock = Some(clock);
        self
    }

    /// Starts the registry and its arbiters. Inside a running actix system.
    pub fn start(mut self) -> Result<Processes, ComputeError> {
        for device in [
            Arc::new(SchedulerDevice) as Arc<dyn hb_device::Device>,
            Arc::new(TestDevice::new(self.config.test_device_panics)),
            Arc::new(crate::process_device::ProcessDevice),
            Arc::new(crate::process_device::PushDevice),
            Arc::new(crate::patch::PatchDevice::new()),
            Arc::new(crate::lua_device::LuaDevice::new(self.config.lua_limits)),
        ] {
            if device.name() == crate::test_device::NAME && !self.test_devices {
                continue;
            }
            if !self.devices.contains(device.name()) {
                self.devices
                    .register(device)
                    .map_err(|e| ComputeError::InvalidSlot {
                        detail: format!("cannot register a built-in device: {e}"),
                    })?;
            }
        }
        let scheduler = self.scheduler;
        let ctx = Context::builder(scheduler.key().clone())
            .store(Arc::clone(scheduler.store()))
            .registry(self.devices)
            .build();
        ctx.insert_extension(Arc::new(scheduler.clone()));
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(SchedulerClock(scheduler.clone())));
        let env = ComputeEnv {
            ctx: ctx.clone(),
            scheduler: scheduler.clone(),
            cache: ProcessCache::new(Arc::clone(scheduler.store())),
            clock,
            snapshot_every: self.config.snapshot_every,
        };
        let metrics = Arc::new(ProcessMetrics::default());
        let registry = ProcessRegistry::new(
            env.clone(),
            self.config.arbiters,
            self.config.worker_capacity,
            Duration::from_millis(self.config.compute_timeout_ms),
            self.config.worker_max_idle_ms,
            Arc::clone(&metrics),
        )
        .max_workers(self.config.max_live_workers)
        .start();
        let processes = Processes {
            inner: Arc::new(Inner {
                env,
                registry,
                metrics,
                pushing: parking_lot::Mutex::new(std::collections::HashMap::new()),
                push_max_depth: self.config.push_max_depth,
                stopped: tokio::sync::OnceCell::new(),
            }),
        };
        crate::process_device::install(&processes);
        Ok(processes)
    }
}

/// Handle to the process layer. Cheap to clone.
#[derive(Clone)]
pub struct Processes {
    pub(crate) inner: Arc<Inner>,
}

/// One async lock per `(pid, slot)` being pushed.
type PushLocks = std::collections::HashMap<(Id, u64), Arc<tokio::sync::Mutex<()>>>;

pub(crate) struct Inner {
    env: ComputeEnv,
    registry: Addr<ProcessRegistry>,
    metrics: Arc<ProcessMetrics>,
    /// One lock per `(pid, slot)` being pushed: pushes of one slot are
    /// serialised (SPEC §6.12).
    pushing: parking_lot::Mutex<PushLocks>,
    push_max_depth: u64,
    stopped: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for Processes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processes").finish_non_exhaustive()
    }
}

impl Processes {
    /// The layer's counters (workers started, retired, ended).
    pub fn metrics(&self) -> &Arc<ProcessMetrics> {
        &self.inner.metrics
    }

    /// The workers alive now (one per process with recent requests; idle
    /// ones retire), for metrics.
    pub async fn live_workers(&self) -> Vec<crate::worker::WorkerHandle> {
        self.inner.registry.send(All).await.unwrap_or_default()
    }

    /// The resolution context processes are computed in.
    pub fn context(&self) -> &Context {
        &self.inner.env.ctx
    }

    /// The state of `pid` at `slot` (SPEC §6.4): from the cache without
    /// queueing behind the worker, else computed by the process's worker.
    pub async fn compute(&self, pid: Id, slot: u64) -> Result<Computed, ComputeError> {
        use tracing::Instrument;
        let span = tracing::info_span!("compute", %pid, slot);
        async {
            if let Some(hit) = self.cached(pid, slot).await? {
                return Ok(hit);
            }
            self.check_runnable(pid).await?;
            let worker = self.worker(pid).await?;
            match worker.compute(slot).await {
                // A worker that vanished is replaced once; one that vanishes
                // again was evicted under the live-worker bound by other
                // processes' load: that is overload, answered as such.
                Err(ComputeError::WorkerStopped { .. }) => {
                    match self.worker(pid).await?.compute(slot).await {
                        Err(ComputeError::WorkerStopped { .. }) => Err(ComputeError::Busy {
                            pid: pid.to_human(),
                        }),
                        other => other,
                    }
                }
                other => other,
            }
        }
        .instrument(span)
        .await
    }

    /// The latest state of `pid` (SPEC §6.5): the latest cached state when
    /// it satisfies `hints`, else the state at the scheduler's current slot.
    pub async fn now(&self, pid: Id, hints: Freshness) -> Result<Computed, ComputeError> {
        let current = self.scheduled(pid).await?;
        if let Some(min) = hints.min_slot {
            if i64::try_from(min).map_or(true, |m| m > current) {
                return Err(ComputeError::SlotNotAvailable {
                    requested: min,
                    latest: current,
                });
            }
        }
        if hints != Freshness::default() {
            if let Some(candidate) = self.latest_cached(pid).await? {
                let now = u64::try_from(self.inner.env.clock.now_ms()).unwrap_or(0);
                let fresh = hints
                    .max_age_ms
                    .is_none_or(|max| now.saturating_sub(candidate.computed_at_ms) <= max);
                let late_enough = hints.min_slot.is_none_or(|min| candidate.slot >= min);
                if fresh && late_enough {
                    return Ok(candidate);
                }
            }
        }
        let target = u64::try_from(current).map_err(|_| ComputeError::SlotNotAvailable {
            requested: 0,
            latest: current,
        })?;
        self.compute(pid, target).await
    }

    /// Evaluates `message` as if it were assigned the slot after the
    /// starting state (SPEC §6.5.1): the latest state satisfying `hints`,
    /// else the state at the scheduler's current slot. It runs on a copy:
    /// nothing is scheduled, stored or cached, and the worker's state is
    /// untouched. Answers `{results, at-slot}`; outbox entries are returned,
    /// never pushed. Runs on the caller's task, beside the worker.
    pub async fn dry_run(
        &self,
        pid: Id,
        message: Message,
        hints: Freshness,
    ) -> Result<Message, ComputeError> {
        self.dry_run_from(pid, message, None, hints).await
    }

    /// [`dry_run`](Self::dry_run), with the sender of an unsigned `message`
    /// stated by the caller: `sender` becomes the `from` an execution
    /// device sees (Lua's `msg.From`) when `message` has no committer. For
    /// callers that verified the sender another way, such as the mainnet
    /// surface, whose dry-run tags travel unsigned in the path of a request
    /// signed by the sender. A signed `message` keeps its first committer.
    pub async fn dry_run_from(
        &self,
        pid: Id,
        message: Message,
        sender: Option<String>,
        hints: Freshness,
    ) -> Result<Message, ComputeError> {
        if message.is_signed() {
            // `from` is the first committer: a forged commitment is refused,
            // as scheduling would refuse it.
            if let hb_message::Verification::Invalid {
                commitment,
                reason,
                detail,
            } = message.verify(&hb_message::IdSelector::All)?
            {
                return Err(ComputeError::Scheduler(
                    hb_scheduler::SchedulerError::invalid(
                        hb_scheduler::Check::InvalidSignature,
                        format!(
                            "commitment {commitment} failed ({}): {detail}",
                            reason.code()
                        ),
                    ),
                ));
            }
        }
        let start = self.now(pid, hints).await?;
        let at = i64::try_from(start.slot).unwrap_or(i64::MAX);
        let slot = at.saturating_add(1);
        let body = message.with_only_committed()?;
        let key = body
            .get_text("path")
            .filter(|p| !["init", "snapshot", "normalize"].contains(p))
            .unwrap_or("compute")
            .to_string();
        let mut assignment = Message::new()
            .with("path", key.as_str())?
            .with("process", pid.to_human())?
            .with("slot", slot)?
            .with("dry-run", true)?
            .with("body", body)?;
        if let Some(sender) = sender {
            assignment.insert("dry-run-from", sender)?;
        }
        let mut state = start.state;
        state.remove("results");
        let ran = crate::run_as::run_as(
            &self.inner.env.ctx,
            crate::run_as::Kind::Execution,
            state,
            &assignment,
        )
        .await
        .map_err(|source| ComputeError::Compute {
            pid: pid.to_human(),
            phase: crate::error::Phase::Compute,
            attempted_slot: slot,
            source,
        })?;
        // A device whose live state moved on since `now` may have started
        // from a later slot, and says so in `at-slot`.
        let (results, at) = match ran {
            hb_device::Outcome::Ok(m) => (
                m.get("results")
                    .cloned()
                    .unwrap_or(Value::Message(Message::new())),
                m.get_int("at-slot").filter(|s| *s > at).unwrap_or(at),
            ),
            other => {
                return Err(ComputeError::Compute {
                    pid: pid.to_human(),
                    phase: crate::error::Phase::Compute,
                    attempted_slot: slot,
                    source: hb_device::ResolveError::invalid_input(
                        key,
                        format!("expected a message, the device answered {}", other.kind()),
                    ),
                })
            }
        };
        Ok(Message::new()
            .with("results", results)?
            .with("at-slot", at)?)
    }

    /// Pushes the outbox of `(pid, slot)` (SPEC §6.12): each entry with a
    /// target scheduled on this node is signed by the node (deterministic,
    /// so its ID is too), scheduled on its target idempotently, recorded
    /// durably, and pushed on recursively while `depth + 1 < max_depth`;
    /// entries without a target, or whose target is not scheduled here, are
    /// recorded as skipped with the reason. Pushing a slot again schedules
    /// nothing twice. Answers `{process, slot, depth, pushed: [...]}`.
    pub async fn push(
        &self,
        pid: Id,
        slot: u64,
        max_depth: Option<u64>,
    ) -> Result<Message, ComputeError> {
        let max = self.inner.push_max_depth;
        let max_depth = match max_depth {
            Some(d) if d > max => {
                return Err(ComputeError::InvalidSlot {
                    detail: format!("max-depth {d} exceeds push_max_depth {max}"),
                })
            }
            Some(d) => d,
            None => max,
        };
        self.push_at(pid, slot, 0, max_depth).await
    }

    /// Schedules `body` on `pid` (with every check of SPEC §5.6.2) and
    /// returns its slot.
    pub(crate) async fn schedule_on(&self, pid: Id, body: Message) -> Result<u64, ComputeError> {
        let assignment = self
            .inner
            .env
            .scheduler
            .schedule(hb_scheduler::ScheduleRequest {
                message: body,
                request_target: Some(pid.to_human()),
                ..Default::default()
            })
            .await?;
        Ok(assignment.slot)
    }

    fn push_at(
        &self,
        pid: Id,
        slot: u64,
        depth: u64,
        max_depth: u64,
    ) -> futures::future::BoxFuture<'_, Result<Message, ComputeError>> {
        Box::pin(async move {
            let lock = Arc::clone(self.inner.pushing.lock().entry((pid, slot)).or_default());
            let _serialised = lock.lock().await;
            let computed = self.compute(pid, slot).await?;
            let outbox: Vec<Value> = computed
                .state
                .get_path("results/outbox")
                .and_then(Value::as_list)
                .map(<[Value]>::to_vec)
                .unwrap_or_default();
            let records = hb_store::PushCache::new(Arc::clone(self.inner.env.scheduler.store()));
            let mut pushed = Vec::new();
            for (i, entry) in outbox.into_iter().enumerate() {
                let index = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
                let record = self
                    .push_entry(pid, slot, index, entry, depth, max_depth)
                    .await?;
                let store_record = record.clone();
                let records = records.clone();
                tokio::task::spawn_blocking(move || records.put(&pid, slot, index, &store_record))
                    .await
                    .map_err(crate::error::task_failed)??;
                pushed.push(Value::Message(record));
            }
            self.inner.pushing.lock().remove(&(pid, slot));
            Ok(Message::new()
                .with("process", pid.to_human())?
                .with("slot", i64::try_from(slot).unwrap_or(i64::MAX))?
                .with("depth", i64::try_from(depth).unwrap_or(i64::MAX))?
                .with("pushed", Value::List(pushed))?)
        })
    }

    /// One outbox entry: its record (`{index, status, target?, slot?,
    /// message?, reason?, pushed?}`).
    async fn push_entry(
        &self,
        pid: Id,
        slot: u64,
        index: u64,
        entry: Value,
        depth: u64,
        max_depth: u64,
    ) -> Result<Message, ComputeError> {
        let index_i = i64::try_from(index).unwrap_or(i64::MAX);
        let skipped = |reason: &str| -> Result<Message, ComputeError> {
            Ok(Message::new()
                .with("index", index_i)?
                .with("status", "skipped")?
                .with("reason", reason)?)
        };
        let Value::Message(entry) = entry else {
            return skipped("not-a-message");
        };
        let Some(target_text) = entry.get_text("target").map(str::to_string) else {
            return skipped("no-target");
        };
        let Ok(target) = Id::parse(&target_text) else {
            return skipped("invalid-target");
        };
        if !self.inner.env.scheduler.has_schedule(target).await? {
            return skipped("remote-target");
        }
        let mut message = entry;
        message.remove(hb_message::COMMITMENTS);
        message.insert("from-process", pid.to_human())?;
        message.insert("from-slot", i64::try_from(slot).unwrap_or(i64::MAX))?;
        message.insert("outbox-index", index_i)?;
        let message = message.commit(self.inner.env.scheduler.key(), None)?;
        let message_id = message.id_all()?;
        let assignment = self
            .inner
            .env
            .scheduler
            .schedule(hb_scheduler::ScheduleRequest {
                message,
                idempotent: true,
                ..Default::default()
            })
            .await?;
        let mut record = Message::new()
            .with("index", index_i)?
            .with("status", "delivered")?
            .with("target", target.to_human())?
            .with("slot", i64::try_from(assignment.slot).unwrap_or(i64::MAX))?
            .with("message", message_id.to_human())?;
        if depth.saturating_add(1) < max_depth {
            let nested = self
                .push_at(target, assignment.slot, depth.saturating_add(1), max_depth)
                .await?;
            record.insert("pushed", nested)?;
        }
        Ok(record)
    }

    /// What a process's computation looks like now (SPEC §6.5.2), without
    /// computing anything: `{process, scheduled-slot, computed-slot,
    /// snapshot-slot, worker, last-error?, cache-control: no-store}`.
    pub async fn status(&self, pid: Id) -> Result<Message, ComputeError> {
        let scheduled = self.scheduled(pid).await?;
        let computed = self.latest_cached(pid).await?.map_or(-1, |c| c.slot as i64);
        let cache = self.inner.env.cache.clone();
        let snapshot = tokio::task::spawn_blocking(move || cache.nearest_snapshot(&pid, u64::MAX))
            .await
            .map_err(crate::error::task_failed)??
            .map_or(-1, |r| i64::try_from(r.slot).unwrap_or(i64::MAX));
        let worker = self
            .inner
            .registry
            .send(Find(pid))
            .await
            .map_err(|_| ComputeError::NotRunning)?;
        let mut m = Message::new()
            .with("process", pid.to_human())?
            .with("scheduled-slot", scheduled)?
            .with("computed-slot", computed)?
            .with("snapshot-slot", snapshot)?
            .with(
                "worker",
                match &worker {
                    Some(w) if w.is_running() => "running",
                    Some(_) => "idle",
                    None => "stopped",
                },
            )?
            .with("cache-control", "no-store")?;
        if let Some(e) = worker.and_then(|w| w.last_error()) {
            let err = Message::new()
                .with("slot", e.slot)?
                .with("phase", e.phase)?
                .with("code", e.code)?
                .with("detail", e.detail)?;
            m.insert("last-error", Value::Message(err))?;
        }
        Ok(m)
    }

    /// Snapshots every worker's live state, stops the workers and their
    /// arbiters. Does not stop the scheduler (its owner does). Safe to call
    /// more than once.
    pub async fn shutdown(&self) {
        let inner = Arc::clone(&self.inner);
        inner
            .stopped
            .get_or_init(|| async {
                let workers = inner.registry.send(All).await.unwrap_or_default();
                futures::future::join_all(workers.iter().map(|w| w.snapshot())).await;
                let arbiters = inner.registry.send(Stop).await.unwrap_or_default();
                let joined = tokio::task::spawn_blocking(move || {
                    for a in arbiters {
                        a.stop();
                        if a.join().is_err() {
                            tracing::error!("a process arbiter panicked while stopping");
                        }
                    }
                })
                .await;
                if let Err(e) = joined {
                    tracing::error!(error = %e, "process shutdown task failed");
                }
            })
            .await;
    }

    async fn worker(&self, pid: Id) -> Result<crate::worker::WorkerHandle, ComputeError> {
        self.inner
            .registry
            .send(FindOrCreate(pid))
            .await
            .map_err(|_| ComputeError::NotRunning)?
            .map_err(|refused| match refused {
                crate::registry::Refused::Stopped => ComputeError::NotRunning,
                crate::registry::Refused::Full => ComputeError::Busy {
                    pid: pid.to_human(),
                },
            })
    }

    /// Refuses, before any worker starts, a process whose execution
    /// device this node does not have (SPEC §10.5: 501
    /// `unsupported-execution-device`), so nothing about it changes. A
    /// process without a definition here is left to the worker, which
    /// reports it as it always has.
    async fn check_runnable(&self, pid: Id) -> Result<(), ComputeError> {
        let definition = self.inner.env.scheduler.assignment(pid, 0).await?;
        let Some(definition) = definition.as_ref().and_then(|a| a.get_message("body")) else {
            return Ok(());
        };
        let registry = self.inner.env.ctx.registry();
        match crate::run_as::missing_execution_device(definition, |d| registry.contains(d)) {
            Some(device) => Err(ComputeError::UnsupportedExecutionDevice {
                pid: pid.to_human(),
                device,
            }),
            None => Ok(()),
        }
    }

    async fn scheduled(&self, pid: Id) -> Result<i64, ComputeError> {
        match self.inner.env.scheduler.current(pid).await? {
            Some(c) => Ok(c.slot),
            None => Err(ComputeError::UnknownProcess {
                pid: pid.to_human(),
            }),
        }
    }

    async fn cached(&self, pid: Id, slot: u64) -> Result<Option<Computed>, ComputeError> {
        let cache = self.inner.env.cache.clone();
        let record = tokio::task::spawn_blocking(move || cache.read_slot(&pid, slot))
            .await
            .map_err(crate::error::task_failed)??;
        Ok(record.map(Computed::from_record))
    }

    async fn latest_cached(&self, pid: Id) -> Result<Option<Computed>, ComputeError> {
        let cache = self.inner.env.cache.clone();
        let record =
            tokio::task::spawn_blocking(move || cache.latest(&pid, &RequiredPath::any(), None))
                .await
                .map_err(crate::error::task_failed)??;
        Ok(record.map(Computed::from_record))
    }
}
