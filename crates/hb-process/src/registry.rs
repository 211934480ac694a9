//! `ProcessRegistry`: finds or creates the one worker of each process
//! (SPEC §6.7). Creation is atomic because the registry handles one
//! message at a time and starting a worker reads nothing (it computes
//! lazily); dead workers are replaced on the next lookup.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hb_message::Id;

use crate::computation::{Computation, ComputeEnv};
use crate::worker::{is_idle, ProcessMetrics, ProcessWorker, Shared, WorkerHandle};

/// Look a worker up without creating one.
pub(crate) struct Find(pub Id);

impl actix::Message for Find {
    type Result = Option<WorkerHandle>;
}

/// Look a worker up, starting it if needed.
pub(crate) struct FindOrCreate(pub Id);

impl actix::Message for FindOrCreate {
    type Result = Result<WorkerHandle, Refused>;
}

/// Why no worker was found or created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The registry stopped.
    Stopped,
    /// `max_live_workers` workers are alive and none can retire now.
    Full,
}

/// What eviction needs to know of one worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Activity {
    /// When it last got a request (ms).
    pub last_request_ms: i64,
    /// A computation is running.
    pub running: bool,
    /// Requests waiting for it.
    pub inflight: usize,
}

impl Activity {
    fn of(s: &Shared) -> Activity {
        Activity {
            last_request_ms: s.last_request_ms.load(Ordering::Acquire),
            running: s.running.load(Ordering::Acquire),
            inflight: s.inflight.load(Ordering::Acquire),
        }
    }

    /// Nothing running and nothing waiting: it may retire now.
    fn at_rest(self) -> bool {
        !self.running && self.inflight == 0
    }
}

/// The worker to retire to make room: the least recently used of those at
/// rest (ties: the smallest process ID), if any.
pub(crate) fn eviction_victim(workers: impl Iterator<Item = (Id, Activity)>) -> Option<Id> {
    workers
        .filter(|(_, a)| a.at_rest())
        .min_by_key(|(pid, a)| (a.last_request_ms, *pid))
        .map(|(pid, _)| pid)
}

/// Every live worker (for shutdown and metrics).
pub(crate) struct All;

impl actix::Message for All {
    type Result = Vec<WorkerHandle>;
}

/// Forget every worker and hand back the arbiters.
pub(crate) struct Stop;

impl actix::Message for Stop {
    type Result = Vec<Arbiter>;
}

/// The registry actor.
pub(crate) struct ProcessRegistry {
    env: ComputeEnv,
    mailbox: usize,
    timeout: Duration,
    max_idle_ms: u64,
    /// The most live workers (0: no bound).
    max_workers: usize,
    metrics: Arc<ProcessMetrics>,
    workers: HashMap<Id, WorkerHandle>,
    arbiters: Vec<ArbiterHandle>,
    owned: Vec<Arbiter>,
}

impl ProcessRegistry {
    pub(crate) fn new(
        env: ComputeEnv,
        arbiters: usize,
        mailbox: usize,
        timeout: Duration,
        max_idle_ms: u64,
        metrics: Arc<ProcessMetrics>,
    ) -> ProcessRegistry {
        let owned: Vec<Arbiter> = (0..arbiters.max(1)).map(|_| Arbiter::new()).collect();
        ProcessRegistry {
            env,
            mailbox: mailbox.max(1),
            timeout,
            max_idle_ms,
            max_workers: 0,
            metrics,
            workers: HashMap::new(),
            arbiters: owned.iter().map(Arbiter::handle).collect(),
            owned,
        }
    }

    /// At most `max` workers alive at once (0: no bound).
    pub(crate) fn max_workers(mut self, max: usize) -> ProcessRegistry {
        self.max_workers = max;
        self
    }

    fn live(&mut self, pid: &Id) -> Option<WorkerHandle> {
        match self.workers.get(pid) {
            Some(h) if h.is_alive() => Some(h.clone()),
            Some(_) => {
                tracing::warn!(%pid, "process worker found dead; it will be replaced");
                self.workers.remove(pid);
                None
            }
            None => None,
        }
    }
}

impl ProcessRegistry {
    /// Retires every idle worker (see [`is_idle`]), under its retirement
    /// lock so no request is sent to it afterwards; the worker stores a
    /// snapshot of its live state and stops.
    fn sweep(&mut self) {
        let now = self.env.clock.now_ms();
        let max_idle = self.max_idle_ms;
        let idle = |s: &Shared| {
            is_idle(
                now,
                s.last_request_ms.load(Ordering::Acquire),
                s.running.load(Ordering::Acquire),
                s.inflight.load(Ordering::Acquire),
                max_idle,
            )
        };
        let candidates: Vec<Id> = self
            .workers
            .iter()
            .filter(|(_, h)| idle(h.shared()))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in candidates {
            if self.retire(pid, idle) {
                tracing::debug!(%pid, "idle process worker retired");
            }
        }
    }

    /// Retires the worker of `pid` if `may` still holds under its
    /// retirement lock (so no request is sent to it afterwards); it stores
    /// a snapshot of its live state and stops.
    fn retire(&mut self, pid: Id, may: impl Fn(&Shared) -> bool) -> bool {
        let Some(handle) = self.workers.get(&pid).cloned() else {
            return false;
        };
        let shared = Arc::clone(handle.shared());
        let mut retired = shared.retired.lock();
        if !may(&shared) {
            return false;
        }
        *retired = true;
        drop(retired);
        self.workers.remove(&pid);
        self.metrics.retired.fetch_add(1, Ordering::Relaxed);
        handle.retire();
        true
    }

    /// Below `max_workers`, or made so by retiring the least recently
    /// used workers at rest; `false` when every worker is busy.
    fn make_room(&mut self) -> bool {
        while self.max_workers > 0 && self.workers.len() >= self.max_workers {
            let victim = eviction_victim(
                self.workers
                    .iter()
                    .map(|(pid, h)| (*pid, Activity::of(h.shared()))),
            );
            let Some(pid) = victim else {
                return false;
            };
            if self.retire(pid, |s| Activity::of(s).at_rest()) {
                self.metrics.evicted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%pid, "process worker retired to make room (max_live_workers)");
            } else if let Some(h) = self.workers.get(&pid) {
                // Busy again since it was chosen: mark it used so the next
                // round picks another.
                h.shared()
                    .last_request_ms
                    .store(self.env.clock.now_ms(), Ordering::Release);
            }
        }
        true
    }
}

impl Actor for ProcessRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.max_idle_ms > 0 {
            // A few sweeps per idle period, at most one a second.
            let tick = Duration::from_millis((self.max_idle_ms / 4).clamp(1, 1_000));
            ctx.run_interval(tick, |act, _| act.sweep());
        }
    }
}

impl Handler<Find> for ProcessRegistry {
    type Result = Option<WorkerHandle>;

    fn handle(&mut self, Find(pid): Find, _: &mut Context<Self>) -> Self::Result {
        self.live(&pid)
    }
}

impl Handler<All> for ProcessRegistry {
    type Result = MessageResult<All>;

    fn handle(&mut self, _: All, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.workers
                .values()
                .filter(|h| h.is_alive())
                .cloned()
                .collect(),
        )
    }
}

impl Handler<FindOrCreate> for ProcessRegistry {
    type Result = MessageResult<FindOrCreate>;

    fn handle(&mut self, FindOrCreate(pid): FindOrCreate, _: &mut Context<Self>) -> Self::Result {
        if let Some(h) = self.live(&pid) {
            return MessageResult(Ok(h));
        }
        if self.arbiters.is_empty() {
            return MessageResult(Err(Refused::Stopped));
        }
        if !self.make_room() {
            return MessageResult(Err(Refused::Full));
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        pid.hash(&mut hasher);
        let arbiter = &self.arbiters[(hasher.finish() as usize) % self.arbiters.len()];
        let shared = Arc::new(Shared::default());
        shared.at_slot.store(-1, Ordering::Release);
        shared
            .last_request_ms
            .store(self.env.clock.now_ms(), Ordering::Release);
        let env = self.env.clone();
        let mailbox = self.mailbox;
        let worker_shared = Arc::clone(&shared);
        let metrics = Arc::clone(&self.metrics);
        let addr = ProcessWorker::start_in_arbiter(arbiter, move |ctx| {
            ctx.set_mailbox_capacity(mailbox);
            let clock = Arc::clone(&env.clock);
            let computation = Computation::new(pid, env).with_metrics(Arc::clone(&metrics));
            ProcessWorker::new(computation, worker_shared, clock, metrics)
        });
        self.metrics.started.fetch_add(1, Ordering::Relaxed);
        let handle = WorkerHandle::new(pid, addr, shared, self.timeout, self.mailbox);
        self.workers.insert(pid, handle.clone());
        MessageResult(Ok(handle))
    }
}

impl Handler<Stop> for ProcessRegistry {
    type Result = MessageResult<Stop>;

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.workers.clear();
        self.arbiters.clear();
        ctx.stop();
        MessageResult(std::mem::take(&mut self.owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last_request_ms: i64, running: bool, inflight: usize) -> Activity {
        Activity {
            last_request_ms,
            running,
            inflight,
        }
    }

    #[test]
    fn the_victim_is_the_least_recently_used_worker_at_rest() {
        let (a, b, c) = (Id::hash(b"a"), Id::hash(b"b"), Id::hash(b"c"));
        let workers = [
            (a, at(5, false, 0)),
            (b, at(1, true, 0)),
            (c, at(3, false, 0)),
        ];
        assert_eq!(eviction_victim(workers.into_iter()), Some(c));
        let workers = [(a, at(5, false, 1)), (b, at(1, true, 0))];
        assert_eq!(eviction_victim(workers.into_iter()), None, "all busy");
        let workers = [(a, at(2, false, 0)), (b, at(2, false, 0))];
        assert_eq!(eviction_victim(workers.into_iter()), Some(a.min(b)));
        assert_eq!(eviction_victim(std::iter::empty()), None);
    }
}
