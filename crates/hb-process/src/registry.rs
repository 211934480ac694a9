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
    /// `None` once the registry stopped.
    type Result = Option<WorkerHandle>;
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
            metrics,
            workers: HashMap::new(),
            arbiters: owned.iter().map(Arbiter::handle).collect(),
            owned,
        }
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
            let Some(handle) = self.workers.get(&pid).cloned() else {
                continue;
            };
            let shared = Arc::clone(handle.shared());
            let mut retired = shared.retired.lock();
            if !idle(&shared) {
                continue;
            }
            *retired = true;
            drop(retired);
            self.workers.remove(&pid);
            self.metrics.retired.fetch_add(1, Ordering::Relaxed);
            handle.retire();
            tracing::debug!(%pid, "idle process worker retired");
        }
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
            return MessageResult(Some(h));
        }
        if self.arbiters.is_empty() {
            return MessageResult(None); // stopped
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
        MessageResult(Some(handle))
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
