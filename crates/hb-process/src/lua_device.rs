//! `lua@5.3a` as an execution device (SPEC §6.8, §6.10): the wiring of the
//! [`lua`](crate::lua) engine into process states.
//!
//! - One VM per process, kept between slots in the device (keyed by
//!   process ID), together with the slot it reflects.
//! - The Lua state table lives at the process state's `state` key (read it
//!   as `compute/state/<key>`); each slot's `results` at `results`.
//! - `init` creates the VM from `process/script` and runs the script;
//!   `snapshot` is the engine's `{state, heap}`; `normalize` rebuilds the
//!   VM from the stored `snapshot` (or `snapshot/<device-key>` inside a
//!   stack) without re-running the script.
//! - Any other key is the assignment's path: the engine's global function
//!   of that name, else for `compute` the aos-style `Handlers`.
//! - A dry-run (an assignment marked `dry-run`) runs on a copy of the VM
//!   made through a snapshot and dropped afterwards, so the live VM never
//!   sees it.
//! - Lua runs on the blocking pool, never on an arbiter thread.
//!
//! - The script is `process/script`, else `process/data` as text, else the
//!   text `body` of the stored message `process/script-id` names (read
//!   from the message cache).
//!
//! - A replay of a past slot on a copy (requests marked
//!   [`REPLAY`](crate::computation::REPLAY)) restores and runs a VM of its
//!   own, so the live VM is untouched. A VM out of step with the state it
//!   is given is refused (`lua-out-of-step`), never used.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use hb_device::{Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{ErrorCode, Id, Key, Message, Value};
use parking_lot::Mutex;

use crate::lua::{LuaError, LuaLimits, LuaProcess, DEVICE};

impl ErrorCode for LuaError {
    fn code(&self) -> &'static str {
        LuaError::code(self)
    }

    fn status(&self) -> u16 {
        500
    }
}

/// Why the device could not run a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LuaDeviceError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] LuaError),
    /// No VM for this process: it was never initialised or restored here.
    #[error("no Lua VM for process {0}: init or normalize first")]
    NoVm(String),
    /// The VM reflects another slot than the state it was given.
    #[error("the Lua VM of process {pid} is at slot {vm}, the state at slot {state}")]
    OutOfStep {
        /// The process.
        pid: String,
        /// The VM's slot.
        vm: i64,
        /// The state's slot.
        state: i64,
    },
    /// `process/script-id` names no stored message with a text `body`.
    #[error("script-id {0}: no stored message with a text `body`")]
    ScriptNotFound(String),
    /// The snapshot to restore is missing or malformed.
    #[error("no Lua snapshot to restore: {0}")]
    NoSnapshot(&'static str),
    /// The blocking task running Lua failed.
    #[error("the Lua task failed: {0}")]
    Task(String),
}

impl ErrorCode for LuaDeviceError {
    fn code(&self) -> &'static str {
        match self {
            LuaDeviceError::Engine(e) => LuaError::code(e),
            LuaDeviceError::NoVm(_) => "lua-no-vm",
            LuaDeviceError::OutOfStep { .. } => "lua-out-of-step",
            LuaDeviceError::NoSnapshot(_) => "lua-no-snapshot",
            LuaDeviceError::ScriptNotFound(_) => "lua-no-script",
            LuaDeviceError::Task(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        500
    }
}

struct Held {
    vm: LuaProcess,
    at_slot: i64,
    /// The live VM's heap at `at_slot`, kept for dry-runs: every dry-run
    /// of one slot starts from the same heap, so it is serialised once
    /// per slot, not once per dry-run.
    dry_run_heap: Option<(i64, Arc<Vec<u8>>)>,
}

/// `lua@5.3a`.
#[derive(Default)]
pub struct LuaDevice {
    limits: LuaLimits,
    vms: Mutex<HashMap<Id, Arc<Mutex<Held>>>>,
    /// VMs of replays on a copy (requests marked
    /// [`REPLAY`](crate::computation::REPLAY)), kept apart from the live ones.
    replays: Mutex<HashMap<Id, Arc<Mutex<Held>>>>,
}

impl std::fmt::Debug for LuaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaDevice")
            .field("limits", &self.limits)
            .field("vms", &self.vms.lock().len())
            .finish()
    }
}

impl LuaDevice {
    /// The device with these per-process limits.
    pub fn new(limits: LuaLimits) -> LuaDevice {
        LuaDevice {
            limits,
            vms: Mutex::new(HashMap::new()),
            replays: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self, replay: bool) -> &Mutex<HashMap<Id, Arc<Mutex<Held>>>> {
        if replay {
            &self.replays
        } else {
            &self.vms
        }
    }

    fn held(&self, pid: &Id, replay: bool) -> Option<Arc<Mutex<Held>>> {
        self.map(replay).lock().get(pid).cloned()
    }

    fn install(&self, pid: Id, vm: LuaProcess, at_slot: i64, replay: bool) {
        self.map(replay).lock().insert(
            pid,
            Arc::new(Mutex::new(Held {
                vm,
                at_slot,
                dry_run_heap: None,
            })),
        );
    }

    /// Forgets the VMs of `pid` (its worker stopped).
    pub fn forget(&self, pid: &Id) {
        self.vms.lock().remove(pid);
        self.replays.lock().remove(pid);
    }
}

fn fail(key: &Key, e: impl Into<LuaDeviceError>) -> ResolveError {
    ResolveError::device(DEVICE, key.as_str(), e.into())
}

/// The live VM's heap for a dry-run at its current slot: serialised on
/// the first dry-run of the slot, then reused.
fn dry_run_heap(held: &mut Held) -> Result<Arc<Vec<u8>>, LuaDeviceError> {
    if let Some((at, heap)) = &held.dry_run_heap {
        if *at == held.at_slot {
            return Ok(Arc::clone(heap));
        }
    }
    let snap = held.vm.snapshot()?;
    let heap = Arc::new(match snap.get("heap") {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    });
    held.dry_run_heap = Some((held.at_slot, Arc::clone(&heap)));
    Ok(heap)
}

/// Runs Lua on the blocking pool.
async fn blocking<T: Send + 'static>(
    key: &Key,
    f: impl FnOnce() -> Result<T, LuaDeviceError> + Send + 'static,
) -> Result<T, ResolveError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| fail(key, LuaDeviceError::Task(e.to_string())))?
        .map_err(|e| fail(key, e))
}

fn process_of(base: &Message) -> Result<(Id, Message), hb_message::MessageError> {
    let def = base
        .get_message("process")
        .cloned()
        .unwrap_or_else(|| base.clone());
    Ok((def.id_all()?, def))
}

/// The stored snapshot for this device: `snapshot` itself when it holds
/// `heap` or `state`, else the entry inside it that does (a stack's Map
/// mode keys entries by position).
fn snapshot_of(base: &Message) -> Option<Message> {
    let snap = base.get_message("snapshot")?;
    if snap.get("heap").is_some() || snap.get("state").is_some() {
        return Some(snap.clone());
    }
    snap.iter()
        .filter_map(|(_, v)| v.as_message())
        .find(|m| m.get("heap").is_some() || m.get("state").is_some())
        .cloned()
}

/// The script named by `process/script-id`: the `body` (text) of that
/// stored message. `None` when the definition names no `script-id`.
async fn script_from_store(
    ctx: &Context,
    definition: &Message,
) -> Result<Option<String>, LuaDeviceError> {
    let Some(text) = definition.get_text("script-id") else {
        return Ok(None);
    };
    let id = Id::parse(text).map_err(|_| LuaDeviceError::ScriptNotFound(text.to_string()))?;
    let store = ctx
        .store()
        .cloned()
        .ok_or_else(|| LuaDeviceError::ScriptNotFound(text.to_string()))?;
    let read = tokio::task::spawn_blocking(move || hb_store::MessageCache::new(store).read(&id))
        .await
        .map_err(|e| LuaDeviceError::Task(e.to_string()))?
        .map_err(|e| LuaDeviceError::Task(e.to_string()))?;
    read.and_then(|m| m.get_text("body").map(str::to_string))
        .map(Some)
        .ok_or_else(|| LuaDeviceError::ScriptNotFound(text.to_string()))
}

#[async_trait]
impl Device for LuaDevice {
    fn name(&self) -> &str {
        DEVICE
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler()
    }

    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        let (pid, mut definition) = process_of(&base)?;
        let limits = self.limits;
        let replay = request.get_private(crate::computation::REPLAY) == Some(&Value::Bool(true));
        if matches!(key.as_str(), "init" | "normalize") && definition.get("script").is_none() {
            if let Some(script) = script_from_store(ctx, &definition)
                .await
                .map_err(|e| fail(key, e))?
            {
                definition.insert("script", script)?;
            }
        }
        match key.as_str() {
            "init" => {
                let (vm, state) =
                    blocking(key, move || Ok(LuaProcess::init(&definition, limits)?)).await?;
                self.install(pid, vm, -1, replay);
                base.insert("state", state)?;
                Ok(Outcome::Ok(base))
            }
            "snapshot" => {
                let held = self
                    .held(&pid, replay)
                    .ok_or_else(|| fail(key, LuaDeviceError::NoVm(pid.to_human())))?;
                let snap = blocking(key, move || Ok(held.lock().vm.snapshot()?)).await?;
                Ok(Outcome::Ok(snap))
            }
            "normalize" => {
                let snap = snapshot_of(&base).ok_or_else(|| {
                    fail(
                        key,
                        LuaDeviceError::NoSnapshot("no `snapshot` in the state"),
                    )
                })?;
                let state = snap.get_message("state").cloned().unwrap_or_default();
                let at_slot = base.get_int("at-slot").unwrap_or(-1);
                let heap = match snap.get("heap") {
                    Some(Value::Bytes(b)) => Some(b.clone()),
                    Some(_) => {
                        return Err(fail(key, LuaDeviceError::NoSnapshot("`heap` is not bytes")))
                    }
                    None => None,
                };
                let restored_state = state.clone();
                let vm = blocking(key, move || {
                    Ok(match heap {
                        Some(heap) => LuaProcess::restore(&heap, &restored_state, limits)?,
                        // A v1 snapshot: run the script, install the state.
                        None => {
                            LuaProcess::restore_without_heap(&definition, &restored_state, limits)?
                        }
                    })
                })
                .await?;
                self.install(pid, vm, at_slot, replay);
                base.insert("state", state)?;
                Ok(Outcome::Ok(base))
            }
            _ => {
                let dry_run = request.get("dry-run") == Some(&Value::Bool(true));
                let held = self
                    .held(&pid, replay)
                    .ok_or_else(|| fail(key, LuaDeviceError::NoVm(pid.to_human())))?;
                let at_slot = base.get_int("at-slot").unwrap_or(-1);
                let state = base.get_message("state").cloned().unwrap_or_default();
                let assignment = request.clone();
                let name = key.as_str().to_string();
                let node = ctx.node_key().address().to_string();
                let pid_text = pid.to_human();
                let slot = request.get_int("slot");
                let handled = blocking(key, move || {
                    let mut held = held.lock();
                    if held.at_slot != at_slot {
                        return Err(LuaDeviceError::OutOfStep {
                            pid: pid_text,
                            vm: held.at_slot,
                            state: at_slot,
                        });
                    }
                    if dry_run {
                        let heap = dry_run_heap(&mut held)?;
                        // The copy is built and run without the live VM's
                        // lock: dry-runs of one process run in parallel,
                        // and the live computation does not wait for them.
                        drop(held);
                        let mut copy = LuaProcess::restore(&heap, &state, limits)?;
                        return Ok(copy.handle(&name, &state, &assignment, &pid_text, &node)?);
                    }
                    // The live VM changes (even a failing handler may have
                    // changed its heap): the kept heap is stale.
                    held.dry_run_heap = None;
                    let handled = held
                        .vm
                        .handle(&name, &state, &assignment, &pid_text, &node)?;
                    if handled.is_some() {
                        held.at_slot = slot.unwrap_or(at_slot.saturating_add(1));
                    }
                    Ok(handled)
                })
                .await?;
                let Some(handled) = handled else {
                    return Err(ResolveError::NotFound {
                        key: key.as_str().to_string(),
                    });
                };
                base.insert("state", handled.state)?;
                base.insert("results", handled.results)?;
                Ok(Outcome::Ok(base))
            }
        }
    }
}
