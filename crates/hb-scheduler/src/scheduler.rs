//! `Scheduler`: the public face of scheduling, used by the `scheduler@1.0`
//! device, the HTTP API and embedders. It drives the pure
//! [`Admission`](crate::admission::Admission) through SPEC §5.6.2's checks,
//! fetching what it asks for (signature verdicts from the bounded
//! [`VerifyPool`], schedules and locations from the store on the blocking
//! pool), then hands the message to the process's server. One deadline,
//! taken when the call starts, covers verification, queueing and the write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use hb_message::{Id, Message, NodeKey};
use hb_store::{LeaseRecord, LocationCache, Store};
use parking_lot::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use crate::admission::{Admission, AdmissionPolicy, Need, ScheduleRequest, Step};
use crate::assignment::Assignment;
use crate::chain_tip::CachedChainTip;
use crate::config::{DedupPolicy, SchedulerConfig};
use crate::definition_cache::DefinitionCache;
use crate::deps::{SchedulerDeps, SchedulerMetrics};
use crate::error::SchedulerError;
use crate::formats::{self, SchedulePage};
use crate::registry::{Find, FindOrCreate, LiveProcesses, SchedulerRegistry, ServerMap, Stop};
use crate::schedule_store;
use crate::server::{Attempt, ServerHandle};
use crate::server_core::CurrentSlot;
use crate::verify_pool::{PoolError, VerifyPool};

/// How often the chain tip is refreshed off the sequencing path.
const TIP_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Handle to the scheduler actors, made by
/// [`SchedulerBuilder`](crate::SchedulerBuilder). Cheap to clone; every
/// clone reaches the same actors, and [`shutdown`](Scheduler::shutdown)
/// through any of them stops all.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    deps: SchedulerDeps,
    registry: Addr<SchedulerRegistry>,
    /// The registry's live servers, read directly on the hot path.
    servers: ServerMap,
    verifier: VerifyPool,
    policy: AdmissionPolicy,
    /// Durable slot-0 assignments, read by every request to a process.
    definitions: DefinitionCache,
    /// Whether shutdown closes the writer (the builder started it).
    owns_writer: bool,
    closing: AtomicBool,
    tip_refresher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The lease keeper's thread, when the node holds leases.
    keeper: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopped: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Starts the registry (and its arbiters), the verification pool and the
    /// chain-tip refresher. Inside a running actix system.
    pub(crate) fn start(
        deps: SchedulerDeps,
        owns_writer: bool,
        known_device: Option<crate::admission::DeviceCheck>,
    ) -> Result<Scheduler, SchedulerError> {
        let keeper = match &deps.leases {
            Some(leases) => Some(
                leases
                    .start_keeper(Arc::clone(&deps.writer), Arc::clone(&deps.clock))
                    .map_err(|e| SchedulerError::Task {
                        detail: format!("cannot start the lease keeper: {e}"),
                    })?,
            ),
            None => None,
        };
        let threads = deps.config.arbiters.max(1);
        let servers = ServerMap::default();
        let registry = SchedulerRegistry::new(deps.clone(), Arc::clone(&servers)).start();
        let verifier = VerifyPool::start(threads, deps.config.verify_queue_capacity);
        let tip = Arc::clone(&deps.tip);
        let refresher = actix::spawn(async move {
            let mut every = tokio::time::interval(TIP_REFRESH);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let tip = Arc::clone(&tip);
                // A source may block (a gateway): ask it on the blocking pool.
                let _ = tokio::task::spawn_blocking(move || tip.refresh()).await;
            }
        });
        let policy = AdmissionPolicy {
            config: Arc::clone(&deps.config),
            node_address: deps.key.address().to_string(),
            known_device,
        };
        Ok(Scheduler {
            inner: Arc::new(Inner {
                deps,
                registry,
                servers,
                verifier,
                policy,
                definitions: DefinitionCache::default(),
                owns_writer,
                closing: AtomicBool::new(false),
                tip_refresher: Mutex::new(Some(refresher)),
                keeper: Mutex::new(keeper),
                stopped: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The node's address (the scheduler's identity).
    pub fn address(&self) -> &str {
        self.inner.deps.key.address()
    }

    /// The settings in force.
    pub fn config(&self) -> &SchedulerConfig {
        &self.inner.deps.config
    }

    /// The counters (assigned, restarts, busy, retired…).
    pub fn metrics(&self) -> &Arc<SchedulerMetrics> {
        &self.inner.deps.metrics
    }

    /// The store the scheduler reads and writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.deps.store
    }

    /// The node key that signs assignments.
    pub fn key(&self) -> &NodeKey {
        &self.inner.deps.key
    }

    /// The chain-tip source, with its cache.
    pub fn tip(&self) -> &CachedChainTip {
        &self.inner.deps.tip
    }

    /// This node's id in a cluster (`node_id`), when it holds leases.
    pub fn node_id(&self) -> Option<&str> {
        self.inner.deps.config.node_id.as_deref()
    }

    /// The lease of `pid` as stored (SPEC §11.2), whichever node holds it.
    pub async fn lease(&self, pid: Id) -> Result<Option<LeaseRecord>, SchedulerError> {
        self.blocking(move |store| {
            Ok(LeaseRecord::read(store.as_ref(), &pid)?.map(|(record, _)| record))
        })
        .await
    }

    /// Wall-clock milliseconds, from the scheduler's clock.
    pub fn now_ms(&self) -> i64 {
        self.inner.deps.clock.now_ms()
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
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(SchedulerError::NotRunning);
        }
        let deadline = Instant::now()
            + std::time::Duration::from_millis(self.inner.deps.config.schedule_timeout_ms);
        let mut admission = Admission::begin(&self.inner.policy, req)?;
        let pid = admission.pid();
        span.record("pid", tracing::field::display(pid));
        // The live server found by check 6, kept for the call itself: one
        // lookup of the server map per message.
        let mut live: Option<ServerHandle> = None;
        let admitted = loop {
            match admission.step()? {
                Step::Admitted(a) => break a,
                Step::Need(Need::Verification(message)) => {
                    let verdict =
                        tokio::time::timeout_at(deadline, self.inner.verifier.verify(message))
                            .await
                            .map_err(|_| self.timeout(&pid))?
                            .map_err(|e| match e {
                                PoolError::Full => {
                                    self.count_busy();
                                    SchedulerError::Busy {
                                        pid: pid.to_human(),
                                    }
                                }
                                PoolError::Stopped => SchedulerError::NotRunning,
                            })?;
                    admission.verified(verdict);
                }
                Step::Need(Need::Location(address)) => {
                    admission.located(self.location_url(&address).await?);
                }
                Step::Need(Need::Schedule(pid)) => {
                    live = self.find_live(&pid).filter(|h| h.published_slot() >= 0);
                    let known = match live {
                        Some(_) => true,
                        None => self.has_schedule(pid).await?,
                    };
                    admission.known(known);
                }
            }
        };
        // 8–10. Capacity, dedup and assignment happen at the server. A
        // server retired for idleness between lookup and call hands the
        // message back, and a successor is started from the store.
        let mut body = admitted.body;
        for _ in 0..3 {
            let server = match live.take().filter(|h| h.pid() == pid) {
                Some(server) => server,
                None => self.find_or_create_with(pid, admitted.dedup).await?,
            };
            match server
                .schedule(body, admitted.signed, admitted.idempotent, deadline)
                .await
            {
                Attempt::Retired(back) => body = back,
                Attempt::Done(Err(e)) => {
                    if matches!(e, SchedulerError::Busy { .. }) {
                        self.count_busy();
                    }
                    return Err(e);
                }
                Attempt::Done(Ok(assignment)) => {
                    span.record("slot", assignment.slot);
                    return Ok(assignment);
                }
            }
        }
        Err(SchedulerError::Unavailable {
            pid: pid.to_human(),
        })
    }

    fn count_busy(&self) {
        self.inner.deps.metrics.busy.fetch_add(1, Ordering::Relaxed);
    }

    fn timeout(&self, pid: &Id) -> SchedulerError {
        SchedulerError::Timeout {
            pid: pid.to_human(),
            after_ms: self.inner.deps.config.schedule_timeout_ms,
        }
    }

    /// The URL of a fresh (within its time-to-live, counted from storage by
    /// the scheduler's clock) location record of `address`, for routing.
    pub async fn location_url(&self, address: &str) -> Result<Option<String>, SchedulerError> {
        let cache = LocationCache::new(Arc::clone(&self.inner.deps.store));
        let lookup = address.to_string();
        let stored = self.blocking(move |_| Ok(cache.get(&lookup)?)).await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let ttl = stored.record.get_int("time-to-live").unwrap_or(i64::MAX);
        let stored_at = i64::try_from(stored.stored_at_ms).unwrap_or(i64::MAX);
        let age = self.now_ms().saturating_sub(stored_at);
        if age > ttl {
            return Ok(None);
        }
        Ok(stored.record.get_text("url").map(str::to_string))
    }

    /// The live server of `pid` from the shared map, without a round trip
    /// through the registry actor.
    fn find_live(&self, pid: &Id) -> Option<ServerHandle> {
        self.inner
            .servers
            .read()
            .get(pid)
            .filter(|h| h.is_alive())
            .cloned()
    }

    /// How many scheduler servers are alive now (one per process with
    /// recent activity; idle ones retire).
    pub fn live_servers(&self) -> usize {
        self.inner
            .servers
            .read()
            .values()
            .filter(|h| h.is_alive())
            .count()
    }

    /// The processes whose scheduler server is alive now, sorted (for
    /// the node's dashboard).
    pub fn live_server_processes(&self) -> Vec<Id> {
        let mut pids: Vec<Id> = self
            .inner
            .servers
            .read()
            .iter()
            .filter(|(_, h)| h.is_alive())
            .map(|(pid, _)| *pid)
            .collect();
        pids.sort();
        pids
    }

    /// The live server of `pid`, if any (never creates one).
    pub async fn find(&self, pid: Id) -> Result<Option<ServerHandle>, SchedulerError> {
        if let Some(h) = self.find_live(&pid) {
            return Ok(Some(h));
        }
        self.inner
            .registry
            .send(Find(pid))
            .await
            .map_err(|_| SchedulerError::NotRunning)
    }

    async fn find_or_create_with(
        &self,
        pid: Id,
        dedup: Option<DedupPolicy>,
    ) -> Result<ServerHandle, SchedulerError> {
        if let Some(h) = self.find_live(&pid) {
            return Ok(h);
        }
        self.inner
            .registry
            .send(FindOrCreate { pid, dedup })
            .await
            .map_err(|_| SchedulerError::NotRunning)?
    }

    /// Whether `pid` has a stored schedule.
    pub async fn has_schedule(&self, pid: Id) -> Result<bool, SchedulerError> {
        self.blocking(move |store| schedule_store::latest(store, &pid).map(|l| l.is_some()))
            .await
    }

    /// Every process with a stored definition, or a live server that
    /// assigned it (aggressive mode, before the write), sorted.
    pub async fn processes(&self) -> Result<Vec<Id>, SchedulerError> {
        let live = self
            .inner
            .registry
            .send(LiveProcesses)
            .await
            .map_err(|_| SchedulerError::NotRunning)?;
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
            // Slots are stored as u64 but assigned from an i64 counter.
            slot: i64::try_from(slot).unwrap_or(i64::MAX),
            chain,
        }))
    }

    /// One stored assignment.
    pub async fn assignment(&self, pid: Id, slot: u64) -> Result<Option<Message>, SchedulerError> {
        if slot == 0 {
            if let Some(definition) = self.inner.definitions.get(&pid) {
                return Ok(Some((*definition).clone()));
            }
        }
        let read = self
            .blocking(move |store| schedule_store::read(store, &pid, slot))
            .await?;
        if let (0, Some(stored)) = (slot, &read) {
            // Read from the store, so durable, and slot 0 never changes.
            self.inner.definitions.insert(pid, Arc::new(stored.clone()));
        }
        Ok(read)
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
        let span = self.page_span(pid, from, to).await?;
        let mut assignments = Vec::new();
        if let Some((from, capped)) = span.slots {
            assignments = self
                .blocking(move |store| schedule_store::range(store, &pid, from, capped))
                .await?;
        }
        let continues = span.continues(assignments.last().map(|(s, _)| *s));
        Ok(SchedulePage {
            pid,
            assignments,
            continues,
            tip: self.inner.deps.tip.current(),
            timestamp: self.now_ms(),
        })
    }

    /// The page [`Scheduler::read_schedule`] reads, as the JSON text of its
    /// native bundle (`json::to_json(&formats::to_bundle(&page))`), written
    /// from the stored records without decoding their messages
    /// ([`formats::bundle_json`]): how the HTTP API answers a schedule page.
    pub async fn read_schedule_json(
        &self,
        pid: Id,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<u8>, SchedulerError> {
        let span = self.page_span(pid, from, to).await?;
        let tip = self.inner.deps.tip.current();
        let timestamp = self.now_ms();
        self.blocking(move |store| {
            let stored = match span.slots {
                Some((from, capped)) => schedule_store::range_stored(store, &pid, from, capped)?,
                None => Vec::new(),
            };
            let continues = span.continues(stored.last().map(|a| a.slot));
            formats::bundle_json(&pid, &stored, continues, &tip, timestamp)
                .map_err(|e| schedule_store::located(&pid, e))
        })
        .await
    }

    /// The slots a page of `pid`'s schedule covers (SPEC §5.6.3).
    async fn page_span(
        &self,
        pid: Id,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<PageSpan, SchedulerError> {
        let current = self
            .current(pid)
            .await?
            .ok_or_else(|| SchedulerError::UnknownProcess {
                pid: pid.to_human(),
            })?;
        let from = u64::try_from(from.unwrap_or(0).max(0)).unwrap_or(0);
        let to = to.unwrap_or(current.slot);
        let page_max = self.inner.deps.config.schedule_page_max;
        let slots = u64::try_from(to)
            .ok()
            .filter(|to_slot| *to_slot >= from)
            .map(|to_slot| (from, to_slot.min(from.saturating_add(page_max))));
        Ok(PageSpan { slots, to })
    }

    /// A page of `pid`'s schedule from `from` (at least one slot), for a
    /// computation. A slot is assigned before its write lands (it waits in
    /// the group commit's queue), so a slot at or below the current one
    /// that the store does not hold yet is waited for, re-reading with a
    /// growing pause, up to `schedule_timeout_ms`. Err `SlotNotAvailable`
    /// when `from` is not assigned, or still not written at the deadline.
    pub async fn read_assigned(
        &self,
        pid: Id,
        from: u64,
        to: i64,
    ) -> Result<SchedulePage, SchedulerError> {
        let from_i = i64::try_from(from).unwrap_or(i64::MAX);
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_millis(self.inner.deps.config.schedule_timeout_ms);
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let page = match self.read_schedule(pid, Some(from_i), Some(to)).await {
                Ok(page) => Some(page),
                Err(SchedulerError::UnknownProcess { .. }) => None,
                Err(e) => return Err(e),
            };
            if let Some(page) = page {
                if !page.assignments.is_empty() {
                    return Ok(page);
                }
            }
            let latest = self.current(pid).await?.map_or(-1, |c| c.slot);
            let assigned = from_i <= latest;
            if !assigned || tokio::time::Instant::now() + pause > deadline {
                return Err(SchedulerError::SlotNotAvailable {
                    requested: from,
                    latest,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
        }
    }

    /// Runs a store read on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, SchedulerError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn Store>) -> Result<T, SchedulerError> + Send + 'static,
    {
        let store = Arc::clone(&self.inner.deps.store);
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| SchedulerError::Task {
                detail: e.to_string(),
            })?
    }

    /// Stops the scheduler: new calls get `NotRunning`; every write already
    /// handed to group commit becomes durable and its caller is answered;
    /// then the servers' arbiters and the verification threads end, and the
    /// writer is closed if the builder started it. Returns once nothing is
    /// pending. Safe to call more than once, from any clone.
    pub async fn shutdown(&self) {
        let inner = Arc::clone(&self.inner);
        inner
            .stopped
            .get_or_init(|| async {
                inner.closing.store(true, Ordering::Release);
                if let Some(refresher) = inner.tip_refresher.lock().take() {
                    refresher.abort();
                }
                // Leases are not released: they run out.
                if let Some(leases) = &inner.deps.leases {
                    leases.stop();
                }
                let keeper = inner.keeper.lock().take();
                // Everything submitted so far is acknowledged before this
                // empty batch: callers and watchers get their answers.
                let _ = inner.deps.writer.submit(hb_store::Batch::new()).await;
                let arbiters = inner.registry.send(Stop).await.unwrap_or_default();
                let writer = Arc::clone(&inner.deps.writer);
                let verifier = inner.verifier.clone();
                let owns_writer = inner.owns_writer;
                let joined = tokio::task::spawn_blocking(move || {
                    if let Some(keeper) = keeper {
                        if keeper.join().is_err() {
                            tracing::error!("the lease keeper panicked");
                        }
                    }
                    for arbiter in arbiters {
                        arbiter.stop();
                        if arbiter.join().is_err() {
                            tracing::error!("a scheduler arbiter panicked while stopping");
                        }
                    }
                    verifier.close();
                    if owns_writer {
                        writer.close();
                    }
                })
                .await;
                if let Err(e) = joined {
                    tracing::error!(error = %e, "scheduler shutdown task failed");
                }
            })
            .await;
    }

    /// Fault injection for tests: makes `pid`'s server panic.
    #[cfg(feature = "test-support")]
    pub async fn inject_panic(&self, pid: Id) -> Result<(), SchedulerError> {
        match self.find(pid).await? {
            Some(server) => server.inject_panic().await,
            None => Err(SchedulerError::UnknownProcess {
                pid: pid.to_human(),
            }),
        }
    }
}

/// The slots of a schedule page: `from..=capped` (`None` when `to` is
/// below `from`), and the `to` asked for or defaulted, before the cap.
#[derive(Clone, Copy, Debug)]
struct PageSpan {
    slots: Option<(u64, u64)>,
    to: i64,
}

impl PageSpan {
    /// Whether more follows the page whose last slot is `last`: it ends
    /// below the `to` asked for (or defaulted), because of the page cap or
    /// because of a gap.
    fn continues(&self, last: Option<u64>) -> bool {
        last.is_some_and(|s| i64::try_from(s).is_ok_and(|s| s < self.to))
    }
}
