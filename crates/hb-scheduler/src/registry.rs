//! `SchedulerRegistry`: finds or creates the one server of each process
//! (SPEC §5.1), and retires idle ones.
//!
//! An ordinary actor holding `pid → server`. Creation is atomic because the
//! registry handles one message at a time: the first caller for a process
//! starts loading its head from the store (off the registry's thread,
//! after group commit drained, so a retired predecessor's last writes are
//! seen), later callers for the same process wait for that one load, and
//! all receive the same server. Dead servers are replaced on the next
//! lookup. Idle servers are retired by one sweep over the map, not by a
//! timer per server (a timer costs more than an idle server otherwise
//! does). Only the crate talks to it: the public face is
//! [`Scheduler`](crate::Scheduler).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hb_message::Id;
use parking_lot::RwLock;
use tokio::sync::oneshot;

use crate::config::DedupPolicy;
use crate::deps::SchedulerDeps;
use crate::error::SchedulerError;
use crate::schedule_store;
use crate::server::{SchedulerServer, ServerHandle, Shared};
use crate::server_core::is_idle;

/// Look a server up without creating one.
pub(crate) struct Find(pub Id);

impl actix::Message for Find {
    type Result = Option<ServerHandle>;
}

/// Look a server up, starting it if needed. Only sent for admitted
/// requests; the server itself refuses anything but the definition while
/// its schedule is empty.
pub(crate) struct FindOrCreate {
    pub pid: Id,
    /// The process's own dedup policy (definition key `scheduler-dedup`),
    /// which takes precedence over the node's.
    pub dedup: Option<DedupPolicy>,
}

impl actix::Message for FindOrCreate {
    type Result = Result<ServerHandle, SchedulerError>;
}

/// The processes whose live server has assigned slot 0, sorted.
pub(crate) struct LiveProcesses;

impl actix::Message for LiveProcesses {
    type Result = Vec<Id>;
}

/// Forget every server and hand back the arbiters, for the caller to stop
/// and join off any arbiter thread.
pub(crate) struct Stop;

impl actix::Message for Stop {
    type Result = Vec<Arbiter>;
}

type Waiters = Vec<oneshot::Sender<Result<ServerHandle, SchedulerError>>>;

/// The live servers, readable without a round trip through the registry
/// actor; only the registry writes it, so creation stays atomic.
pub(crate) type ServerMap = Arc<RwLock<HashMap<Id, ServerHandle>>>;

/// The registry actor.
pub(crate) struct SchedulerRegistry {
    deps: SchedulerDeps,
    servers: ServerMap,
    starting: HashMap<Id, Waiters>,
    arbiters: Vec<ArbiterHandle>,
    /// The arbiters this registry started (handed back by [`Stop`]).
    owned: Vec<Arbiter>,
}

impl SchedulerRegistry {
    /// A registry publishing its servers in `servers`, spreading them over
    /// `deps.config.arbiters` new arbiters.
    pub(crate) fn new(deps: SchedulerDeps, servers: ServerMap) -> SchedulerRegistry {
        let owned: Vec<Arbiter> = (0..deps.config.arbiters.max(1))
            .map(|_| Arbiter::new())
            .collect();
        let arbiters = owned.iter().map(Arbiter::handle).collect();
        SchedulerRegistry {
            deps,
            servers,
            starting: HashMap::new(),
            arbiters,
            owned,
        }
    }

    fn arbiter_for(&self, pid: &Id) -> Option<ArbiterHandle> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        pid.hash(&mut h);
        let n = self.arbiters.len();
        (n > 0).then(|| self.arbiters[(h.finish() as usize) % n].clone())
    }

    fn live(&mut self, pid: &Id) -> Option<ServerHandle> {
        let found = self.servers.read().get(pid).cloned();
        match found {
            Some(h) if h.is_alive() => Some(h),
            Some(_) => {
                tracing::warn!(%pid, "scheduler server found dead; it will be replaced");
                self.servers.write().remove(pid);
                None
            }
            None => None,
        }
    }
}

impl SchedulerRegistry {
    /// Retires every server idle by [`is_idle`]: under the server's
    /// retirement lock, so a caller that took a capacity slot meanwhile
    /// keeps it, and the server (which decides under the same lock) never
    /// writes after a successor loaded its schedule. A retired server's
    /// actor ends when its last address is dropped.
    fn sweep(&mut self) {
        let max_idle = self.deps.config.max_idle_ms;
        let now = self.deps.clock.now_ms();
        let idle = |shared: &Shared| {
            is_idle(
                now,
                shared.last_request_ms.load(Ordering::Acquire),
                shared.inflight.load(Ordering::Acquire),
                max_idle,
            )
        };
        let candidates: Vec<Id> = self
            .servers
            .read()
            .iter()
            .filter(|(_, h)| idle(h.shared()))
            .map(|(pid, _)| *pid)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let mut servers = self.servers.write();
        for pid in candidates {
            let Some(handle) = servers.get(&pid) else {
                continue;
            };
            let shared = Arc::clone(handle.shared());
            let mut retired = shared.retired.lock();
            if !idle(&shared) {
                continue; // a caller came meanwhile
            }
            *retired = true;
            drop(retired);
            servers.remove(&pid);
            if let Some(leases) = &self.deps.leases {
                // Not renewed any more: the lease runs out on its own.
                leases.forget(&pid);
            }
            self.deps.metrics.retired.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%pid, "idle scheduler server retired");
        }
    }
}

impl Actor for SchedulerRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let max_idle = self.deps.config.max_idle_ms;
        if max_idle > 0 {
            // A few sweeps per idle period, at most one a second.
            let tick = Duration::from_millis((max_idle / 4).clamp(1, 1_000));
            ctx.run_interval(tick, |act, _| act.sweep());
        }
    }
}

impl Handler<Stop> for SchedulerRegistry {
    type Result = MessageResult<Stop>;

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.servers.write().clear();
        // Waiters of loads in progress learn that the scheduler stopped.
        for (_, waiters) in self.starting.drain() {
            for w in waiters {
                let _ = w.send(Err(SchedulerError::NotRunning));
            }
        }
        self.arbiters.clear();
        ctx.stop();
        MessageResult(std::mem::take(&mut self.owned))
    }
}

impl Handler<Find> for SchedulerRegistry {
    type Result = Option<ServerHandle>;

    fn handle(&mut self, Find(pid): Find, _: &mut Context<Self>) -> Self::Result {
        self.live(&pid)
    }
}

impl Handler<LiveProcesses> for SchedulerRegistry {
    type Result = MessageResult<LiveProcesses>;

    fn handle(&mut self, _: LiveProcesses, _: &mut Context<Self>) -> Self::Result {
        let mut pids: Vec<Id> = self
            .servers
            .read()
            .iter()
            // A live server is not a registered process: only one that
            // assigned slot 0 (its definition) counts.
            .filter(|(_, h)| h.is_alive() && h.published_slot() >= 0)
            .map(|(p, _)| *p)
            .collect();
        pids.sort();
        MessageResult(pids)
    }
}

impl Handler<FindOrCreate> for SchedulerRegistry {
    type Result = ResponseFuture<Result<ServerHandle, SchedulerError>>;

    fn handle(&mut self, req: FindOrCreate, ctx: &mut Context<Self>) -> Self::Result {
        let pid = req.pid;
        if let Some(h) = self.live(&pid) {
            return Box::pin(async move { Ok(h) });
        }
        let (tx, rx) = oneshot::channel();
        let first = !self.starting.contains_key(&pid);
        self.starting.entry(pid).or_default().push(tx);
        if first {
            let store = Arc::clone(&self.deps.store);
            let writer = Arc::clone(&self.deps.writer);
            let leases = self.deps.leases.clone();
            let clock = Arc::clone(&self.deps.clock);
            let load = async move {
                // Writes a retired predecessor handed to group commit are
                // acknowledged before this empty batch: load after them.
                let _ = writer.submit(hb_store::Batch::new()).await;
                tokio::task::spawn_blocking(move || -> Result<_, SchedulerError> {
                    // With leases, the lease first (SPEC §11.2): only its
                    // holder may load the head and sequence.
                    let lease = match &leases {
                        Some(leases) => Some(leases.take(store.as_ref(), pid, clock.as_ref())?),
                        None => None,
                    };
                    Ok((schedule_store::load(store, pid)?, lease))
                })
                .await
                .map_err(|e| SchedulerError::Task {
                    detail: format!("load of {pid} failed: {e}"),
                })?
            };
            let requested = req.dedup;
            ctx.spawn(load.into_actor(self).map(move |loaded, act, _| {
                let result = loaded.and_then(|(loaded, lease)| {
                    let arbiter = act.arbiter_for(&pid).ok_or(SchedulerError::NotRunning)?;
                    let seq = loaded.sequencer;
                    let dedup = requested.or(loaded.dedup).unwrap_or(act.deps.config.dedup);
                    let deps = act.deps.clone();
                    let capacity = deps.config.server_capacity;
                    let timeout = Duration::from_millis(deps.config.schedule_timeout_ms);
                    if let (Some(leases), Some(lease)) = (&deps.leases, &lease) {
                        leases.hold(Arc::clone(lease));
                    }
                    let shared = Shared::new(seq.current(), deps.clock.now_ms(), lease);
                    let server_shared = Arc::clone(&shared);
                    let addr = Supervisor::start_in_arbiter(&arbiter, move |_| {
                        SchedulerServer::new(deps, seq, dedup, server_shared)
                    });
                    let handle = ServerHandle::new(pid, addr, shared, capacity, timeout);
                    act.servers.write().insert(pid, handle.clone());
                    act.deps.metrics.started.fetch_add(1, Ordering::Relaxed);
                    Ok(handle)
                });
                for waiter in act.starting.remove(&pid).unwrap_or_default() {
                    // A waiter that gave up no longer listens; that is fine.
                    let _ = waiter.send(result.clone());
                }
            }));
        }
        Box::pin(async move {
            rx.await.map_err(|_| SchedulerError::Unavailable {
                pid: pid.to_human(),
            })?
        })
    }
}
