//! `ProcessRegistry`: finds or creates the one worker of each process
//! (SPEC §6.7). Creation is atomic because the registry handles one
//! message at a time and starting a worker reads nothing (it computes
//! lazily); dead workers are replaced on the next lookup.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hb_message::Id;

use crate::computation::{Computation, ComputeEnv};
use crate::worker::{ProcessWorker, Shared, WorkerHandle};

/// Look a worker up without creating one.
pub(crate) struct Find(pub Id);

impl actix::Message for Find {
    type Result = Option<WorkerHandle>;
}

/// Look a worker up, starting it if needed.
pub(crate) struct FindOrCreate(pub Id);

impl actix::Message for FindOrCreate {
    type Result = WorkerHandle;
}

/// Every live worker, for shutdown.
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
    ) -> ProcessRegistry {
        let owned: Vec<Arbiter> = (0..arbiters.max(1)).map(|_| Arbiter::new()).collect();
        ProcessRegistry {
            env,
            mailbox: mailbox.max(1),
            timeout,
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

impl Actor for ProcessRegistry {
    type Context = Context<Self>;
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
            return MessageResult(h);
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        pid.hash(&mut hasher);
        let arbiter = &self.arbiters[(hasher.finish() as usize) % self.arbiters.len()];
        let shared = Arc::new(Shared::default());
        shared
            .at_slot
            .store(-1, std::sync::atomic::Ordering::Release);
        let env = self.env.clone();
        let mailbox = self.mailbox;
        let worker_shared = Arc::clone(&shared);
        let addr = ProcessWorker::start_in_arbiter(arbiter, move |ctx| {
            ctx.set_mailbox_capacity(mailbox);
            ProcessWorker::new(Computation::new(pid, env), worker_shared)
        });
        let handle = WorkerHandle::new(pid, addr, shared, self.timeout);
        self.workers.insert(pid, handle.clone());
        MessageResult(handle)
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
