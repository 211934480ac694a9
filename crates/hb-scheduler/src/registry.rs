//! `SchedulerRegistry`: finds or creates the one server of each process
//! (SPEC §5.1).
//!
//! An ordinary actor holding `pid → server`. Creation is atomic because the
//! registry handles one message at a time: the first caller for a new
//! process starts loading its head from the store (off the registry's
//! thread), later callers for the same process wait for that one load, and
//! all receive the same server. Dead servers are replaced on the next lookup.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hb_message::Id;
use parking_lot::RwLock;
use tokio::sync::oneshot;

use crate::config::{DedupPolicy, SchedulingMode};
use crate::deps::SchedulerDeps;
use crate::error::SchedulerError;
use crate::schedule_store;
use crate::server::{SchedulerServer, ServerHandle};

/// Look a server up without creating one.
pub struct Find(pub Id);

impl actix::Message for Find {
    type Result = Option<ServerHandle>;
}

/// Look a server up, starting it if needed.
pub struct FindOrCreate {
    /// The process.
    pub pid: Id,
    /// The process's own dedup policy (definition key `scheduler-dedup`),
    /// which takes precedence over the node's.
    pub dedup: Option<DedupPolicy>,
}

impl actix::Message for FindOrCreate {
    type Result = Result<ServerHandle, SchedulerError>;
}

/// The processes with a live server, sorted.
pub struct LiveProcesses;

impl actix::Message for LiveProcesses {
    type Result = Vec<Id>;
}

/// Stop every server and the registry; resolves once their threads ended.
pub struct Shutdown;

impl actix::Message for Shutdown {
    type Result = ();
}

type Waiters = Vec<oneshot::Sender<Result<ServerHandle, SchedulerError>>>;

/// The live servers, readable without a round trip through the registry
/// actor; only the registry writes it, so creation stays atomic.
pub type ServerMap = Arc<RwLock<HashMap<Id, ServerHandle>>>;

/// The registry actor.
pub struct SchedulerRegistry {
    deps: SchedulerDeps,
    servers: ServerMap,
    starting: HashMap<Id, Waiters>,
    arbiters: Vec<ArbiterHandle>,
    /// The arbiters this registry started (stopped by [`Shutdown`]).
    owned: Vec<Arbiter>,
}

impl SchedulerRegistry {
    /// A registry spreading servers over `deps.config.arbiters` new arbiters.
    pub fn new(deps: SchedulerDeps) -> SchedulerRegistry {
        SchedulerRegistry::with_map(deps, ServerMap::default())
    }

    /// A registry publishing its servers in `servers` (shared with readers).
    pub fn with_map(deps: SchedulerDeps, servers: ServerMap) -> SchedulerRegistry {
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

impl Actor for SchedulerRegistry {
    type Context = Context<Self>;
}

impl Handler<Shutdown> for SchedulerRegistry {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.servers.write().clear();
        self.starting.clear();
        for arbiter in self.owned.drain(..) {
            arbiter.stop();
            // Joining ends the servers (and their store handles) before the
            // caller goes on, e.g. to reopen the store.
            if arbiter.join().is_err() {
                tracing::error!("a scheduler arbiter panicked while stopping");
            }
        }
        self.arbiters.clear();
        ctx.stop();
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
            .filter(|(_, h)| h.is_alive())
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
        if self.deps.config.mode == SchedulingMode::Disabled {
            return Box::pin(async { Err(SchedulerError::SchedulingDisabled) });
        }
        let (tx, rx) = oneshot::channel();
        let first = !self.starting.contains_key(&pid);
        self.starting.entry(pid).or_default().push(tx);
        if first {
            let store = Arc::clone(&self.deps.store);
            let load = async move {
                tokio::task::spawn_blocking(move || schedule_store::load(store, pid))
                    .await
                    .map_err(|e| SchedulerError::Internal {
                        pid: pid.to_human(),
                        detail: format!("load task failed: {e}"),
                    })?
            };
            let requested = req.dedup;
            ctx.spawn(load.into_actor(self).map(move |loaded, act, _| {
                let result = loaded.and_then(|loaded| {
                    let arbiter = act.arbiter_for(&pid).ok_or(SchedulerError::Unavailable {
                        pid: pid.to_human(),
                    })?;
                    let seq = loaded.sequencer;
                    let dedup = requested.or(loaded.dedup).unwrap_or(act.deps.config.dedup);
                    let deps = act.deps.clone();
                    let capacity = deps.config.server_capacity;
                    let timeout = Duration::from_millis(deps.config.schedule_timeout_ms);
                    let addr = Supervisor::start_in_arbiter(&arbiter, move |_| {
                        SchedulerServer::new(deps, seq, dedup)
                    });
                    let handle = ServerHandle::new(pid, addr, capacity, timeout);
                    act.servers.write().insert(pid, handle.clone());
                    Ok(handle)
                });
                for waiter in act.starting.remove(&pid).unwrap_or_default() {
                    let answer = match &result {
                        Ok(h) => Ok(h.clone()),
                        Err(e) => Err(clone_error(e, &pid)),
                    };
                    // A waiter that gave up no longer listens; that is fine.
                    let _ = waiter.send(answer);
                }
            }));
        }
        let pid_text = pid.to_human();
        Box::pin(async move {
            rx.await
                .map_err(|_| SchedulerError::Unavailable { pid: pid_text })?
        })
    }
}

/// Start errors go to every waiter; they are rebuilt since errors holding
/// store errors are not `Clone`.
fn clone_error(e: &SchedulerError, pid: &Id) -> SchedulerError {
    match e {
        SchedulerError::CorruptSchedule { pid, slot, detail } => SchedulerError::CorruptSchedule {
            pid: pid.clone(),
            slot: *slot,
            detail: detail.clone(),
        },
        SchedulerError::SchedulingDisabled => SchedulerError::SchedulingDisabled,
        other => SchedulerError::Internal {
            pid: pid.to_human(),
            detail: other.to_string(),
        },
    }
}
