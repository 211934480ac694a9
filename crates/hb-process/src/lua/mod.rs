//! # The Lua engine of `lua@5.3a` (SPEC §6.10), as a plain library
//!
//! [`LuaProcess`] is one process's Lua VM, kept between slots: it runs the
//! script at [`init`](LuaProcess::init), handles one key per slot with
//! [`handle`](LuaProcess::handle) (a global function named after the key,
//! else for `compute` the built-in aos-style `Handlers` dispatcher), and
//! persists its whole heap with [`snapshot`](LuaProcess::snapshot) /
//! [`restore`](LuaProcess::restore).
//!
//! This module owns: the sandbox (only `string`, `table`, `math` without
//! `random`, `utf8` and `coroutine`; no `os`, `io`, `debug`, `package`,
//! `require`, `dofile`, `loadfile`, `collectgarbage`, `string.dump`, nor
//! binary chunks in `load`); the deterministic order of `pairs`/`next`;
//! `tostring` without addresses; message tables with case-insensitive
//! keys; unspoofable `from`; `ao.id`, `Send`, `print`; the instruction and
//! memory limits, which end a call with `results/error` instead of an
//! `Err`; the conversion between messages and Lua values; and the
//! whole-heap snapshot ([`heap`]).
//!
//! It does not own (left for the device wiring, which wraps this engine):
//! the `lua@5.3a` device itself, which translates the keys `init`, the
//! assignment's path, `snapshot` and `normalize` into these calls and
//! places the Lua state message within the process state; the worker,
//! which keeps one [`LuaProcess`] per process; counting failed snapshots;
//! and `process/script-id` (reading the script from the store: TODO, the
//! engine takes the script text).
//!
//! The device wiring must not pass `init`, `snapshot` or `normalize` to
//! [`handle`](LuaProcess::handle): those map to [`init`](LuaProcess::init),
//! [`snapshot`](LuaProcess::snapshot) and [`restore`](LuaProcess::restore)
//! (or [`restore_without_heap`](LuaProcess::restore_without_heap) for a v1
//! snapshot). `handle` takes and returns the Lua state table as a message;
//! where that message lives inside the process state is the device's
//! choice. A failed snapshot is a typed error for the device to log and
//! count (SPEC §6.6), never a failed slot.
//!
//! Known limits, documented rather than hidden:
//!
//! - `#t` on a table with holes ("any border") may differ after a restore,
//!   because a restored table is rebuilt with a fresh internal layout;
//! - the memory limit counts live and not-yet-collected bytes, so a process
//!   close to it may hit it at a different slot after a restore;
//! - C library functions (`string.rep`, pattern matching) count as one
//!   instruction each, so a pathological pattern is bounded by memory, not
//!   by the instruction limit; the count advances in steps of
//!   [`HOOK_INTERVAL`];
//! - `tostring` and `print` write NaN as `nan`, but `..` and
//!   `string.format` use the C library's spelling;
//! - every coroutine (suspended, dead or never started), tables or
//!   functions used as table keys, and metatables with `__gc`/`__mode`
//!   (which `setmetatable` refuses anyway) make a snapshot fail;
//! - the output of `print` during init is discarded.

mod convert;
mod error;
pub mod heap;
mod order;
mod sandbox;

use hb_message::{Message, Value};
use mlua::{Function, MultiValue, Table, Value as LuaValue};

pub use convert::{MAX_DEPTH, MAX_VALUES};
pub use error::LuaError;
pub use sandbox::HOOK_INTERVAL;

use convert::{lua_to_message, message_to_lua, value_to_lua, ConvertError};
use sandbox::{LimitHit, Vm, MEMERR};

/// The name of the device this engine serves.
pub const DEVICE: &str = "lua@5.3a";

/// Per-process limits (SPEC §6.10 "Results").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LuaLimits {
    /// VM instructions per call (`lua_max_instructions`, default 10^8),
    /// counted in steps of [`HOOK_INTERVAL`].
    pub max_instructions: u64,
    /// Bytes of Lua heap per process, plus what one call holds in output
    /// and outbox (`lua_max_memory_bytes`, default 256 MiB).
    pub max_memory_bytes: usize,
}

impl Default for LuaLimits {
    fn default() -> Self {
        LuaLimits {
            max_instructions: 100_000_000,
            max_memory_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The outcome of one handled key: the new Lua state message and the
/// slot's `results` (`{output, outbox, error?}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The Lua state table, as a message.
    pub state: Message,
    /// `{output, outbox}` plus `error: {code, message}` when the call
    /// ended early.
    pub results: Message,
}

/// Why a call ended early: `lua-error`, `lua-instruction-limit` or
/// `lua-memory-limit`, with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaOutcome {
    /// The code.
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

impl LuaOutcome {
    fn error(message: impl Into<String>) -> Self {
        LuaOutcome {
            code: "lua-error",
            message: message.into(),
        }
    }

    fn limit(hit: LimitHit) -> Self {
        match hit {
            LimitHit::Instructions => LuaOutcome {
                code: "lua-instruction-limit",
                message: "instruction limit exceeded".to_string(),
            },
            LimitHit::Memory => LuaOutcome {
                code: "lua-memory-limit",
                message: "memory limit exceeded".to_string(),
            },
        }
    }
}

/// One process's Lua VM, kept between slots.
pub struct LuaProcess {
    vm: Vm,
    state: Table,
    last_state: Message,
}

impl std::fmt::Debug for LuaProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaProcess")
            .field("state", &self.last_state)
            .finish_non_exhaustive()
    }
}

/// The process definition: `m/process` when present, else `m` itself.
fn definition(m: &Message) -> &Message {
    m.get_message("process").unwrap_or(m)
}

/// The script of a process: `process/script`, else `process/data` as text.
pub fn script_of(process: &Message) -> Result<&str, LuaError> {
    let def = definition(process);
    def.get_text("script")
        .or_else(|| def.get_text("data"))
        .ok_or(LuaError::NoScript)
}

fn memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => memory_error(cause),
        mlua::Error::WithContext { cause, .. } => memory_error(cause),
        _ => false,
    }
}

impl LuaProcess {
    /// Creates the VM, runs the script and sets the state table to
    /// `init(process)` when the script defines `init`, else `{}`.
    ///
    /// `process` is the process definition, or a state holding it at
    /// `process`. Returns the engine and the state table as a message.
    pub fn init(process: &Message, limits: LuaLimits) -> Result<(LuaProcess, Message), LuaError> {
        let script = script_of(process)?;
        let vm = Vm::new(&limits)?;
        let chunk = vm
            .lua
            .load(script)
            .set_name("=script")
            .set_mode(mlua::ChunkMode::Text)
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => LuaError::Load(message),
                other => LuaError::Load(other.to_string()),
            })?;
        vm.begin_call()?;
        let (ok, rest) = call(&vm, &chunk, MultiValue::new());
        if let Some(out) = classify(&vm, ok, &rest) {
            return Err(LuaError::Init {
                code: out.code,
                message: out.message,
            });
        }
        let init_fn = vm.lua.globals().raw_get::<LuaValue>("init")?;
        let state = match init_fn {
            LuaValue::Function(f) => {
                vm.begin_call()?;
                let arg = message_to_lua(&vm.lua, definition(process), &vm.message_mt)?;
                let (ok, rest) = call(&vm, &f, MultiValue::from_vec(vec![LuaValue::Table(arg)]));
                if let Some(out) = classify(&vm, ok, &rest) {
                    return Err(LuaError::Init {
                        code: out.code,
                        message: out.message,
                    });
                }
                match rest.into_iter().next() {
                    Some(LuaValue::Table(t)) => t,
                    None | Some(LuaValue::Nil) => vm.lua.create_table()?,
                    Some(other) => {
                        return Err(LuaError::Init {
                            code: "lua-error",
                            message: format!(
                                "init must return a table or nil, not {}",
                                other.type_name()
                            ),
                        })
                    }
                }
            }
            _ => vm.lua.create_table()?,
        };
        let msg =
            lua_to_message(&LuaValue::Table(state.clone()), "the state").map_err(|e| match e {
                ConvertError::User(m) => LuaError::Init {
                    code: "lua-error",
                    message: m,
                },
                ConvertError::Vm(e) if memory_error(&e) => LuaError::Init {
                    code: "lua-memory-limit",
                    message: "memory limit exceeded".to_string(),
                },
                ConvertError::Vm(e) => LuaError::Vm(e.to_string()),
            })?;
        Ok((
            LuaProcess {
                vm,
                state,
                last_state: msg.clone(),
            },
            msg,
        ))
    }

    /// Handles key `key` with the Lua state `state` and the assignment
    /// (the message at `assignment/body`).
    ///
    /// Calls the global function `key(state, assignment)` if the script
    /// defines one; else, for `compute`, the `Handlers` dispatcher with the
    /// body; else answers `None` (not-found). A Lua error or a limit ends
    /// the call early: the result then carries `results/error`, keeps the
    /// output so far and in-place changes to the state table, and drops the
    /// outbox.
    ///
    /// `process_id` becomes `ao.id`; `node_address` decides whether the
    /// body's `from` is its `from-process` (a pushed message) or its first
    /// committer.
    pub fn handle(
        &mut self,
        key: &str,
        state: &Message,
        assignment: &Message,
        process_id: &str,
        node_address: &str,
    ) -> Result<Option<Handled>, LuaError> {
        let globals = self.vm.lua.globals();
        let target = match globals.raw_get::<LuaValue>(key)? {
            LuaValue::Function(f) => Some(f),
            _ if key == "compute" => None,
            _ => return Ok(None),
        };
        self.vm.begin_call()?;
        let (assignment_table, body_table) =
            match self.prepare(state, assignment, process_id, node_address) {
                Ok(tables) => tables,
                Err(e) => {
                    // The slot's own input does not fit (memory, nesting):
                    // the slot completes with an error, the state unchanged.
                    let outcome = if memory_error(&e) {
                        LuaOutcome::limit(LimitHit::Memory)
                    } else {
                        LuaOutcome::error(format!("cannot convert the assignment: {e}"))
                    };
                    let results = self.results(Some(outcome))?;
                    return Ok(Some(Handled {
                        state: self.last_state.clone(),
                        results,
                    }));
                }
            };
        let (f, args) = match &target {
            Some(f) => (
                f.clone(),
                vec![
                    LuaValue::Table(self.state.clone()),
                    LuaValue::Table(assignment_table),
                ],
            ),
            None => (
                self.vm.evaluate.clone(),
                vec![
                    LuaValue::Table(body_table),
                    LuaValue::Table(self.state.clone()),
                ],
            ),
        };
        let (ok, rest) = call(&self.vm, &f, MultiValue::from_vec(args));
        let mut outcome = classify(&self.vm, ok, &rest);
        if outcome.is_none() && target.is_some() {
            match rest.into_iter().next() {
                Some(LuaValue::Table(t)) => self.state = t,
                None | Some(LuaValue::Nil) => {}
                Some(other) => {
                    outcome = Some(LuaOutcome::error(format!(
                        "{key} must return a table or nil, not {}",
                        other.type_name()
                    )))
                }
            }
        }
        let new_state = match lua_to_message(&LuaValue::Table(self.state.clone()), "the state") {
            Ok(m) => m,
            Err(e) => {
                if outcome.is_none() {
                    outcome = Some(match e {
                        ConvertError::User(m) => LuaOutcome::error(m),
                        ConvertError::Vm(e) if memory_error(&e) => {
                            LuaOutcome::limit(LimitHit::Memory)
                        }
                        ConvertError::Vm(e) => return Err(LuaError::Vm(e.to_string())),
                    });
                }
                self.last_state.clone()
            }
        };
        self.last_state = new_state.clone();
        let results = self.results(outcome)?;
        Ok(Some(Handled {
            state: new_state,
            results,
        }))
    }

    /// Installs `state` if it is not the one the engine last produced, sets
    /// `ao.id`, and builds the assignment table and its body (with `from`).
    fn prepare(
        &mut self,
        state: &Message,
        assignment: &Message,
        process_id: &str,
        node_address: &str,
    ) -> mlua::Result<(Table, Table)> {
        let globals = self.vm.lua.globals();
        if state != &self.last_state {
            self.state = message_to_lua(&self.vm.lua, state, &self.vm.message_mt)?;
            self.last_state = state.clone();
        }
        if let LuaValue::Table(ao) = globals.raw_get::<LuaValue>("ao")? {
            ao.raw_set("id", process_id)?;
        }
        let assignment_table = message_to_lua(&self.vm.lua, assignment, &self.vm.message_mt)?;
        let body_table = match assignment_table.raw_get::<LuaValue>("body")? {
            LuaValue::Table(t) => t,
            _ => {
                let t = self.vm.lua.create_table()?;
                t.set_metatable(Some(self.vm.message_mt.clone()))?;
                t
            }
        };
        let from = from_of(assignment, node_address);
        let from = match from {
            Some(v) => value_to_lua(&self.vm.lua, &v, &self.vm.message_mt, 0)?,
            None => LuaValue::Nil,
        };
        body_table.raw_set("from", from)?;

        Ok((assignment_table, body_table))
    }

    fn results(&self, outcome: Option<LuaOutcome>) -> Result<Message, LuaError> {
        let mut host = self
            .vm
            .host
            .try_lock()
            .ok_or_else(|| LuaError::Vm("host state busy".to_string()))?;
        let output = std::mem::take(&mut host.output);
        let outbox = std::mem::take(&mut host.outbox);
        drop(host);
        let output = match String::from_utf8(output) {
            Ok(s) => Value::Text(s),
            Err(e) => Value::Bytes(e.into_bytes()),
        };
        let mut results = Message::new();
        let conv = |e: hb_message::MessageError| LuaError::Vm(e.to_string());
        results.insert("output", output).map_err(conv)?;
        match outcome {
            None => {
                results
                    .insert(
                        "outbox",
                        Value::List(outbox.into_iter().map(Value::Message).collect()),
                    )
                    .map_err(conv)?;
            }
            Some(out) => {
                results
                    .insert("outbox", Value::List(Vec::new()))
                    .map_err(conv)?;
                let err = Message::new()
                    .with("code", out.code)
                    .and_then(|m| m.with("message", out.message))
                    .map_err(conv)?;
                results.insert("error", err).map_err(conv)?;
            }
        }
        Ok(results)
    }

    /// The current Lua state message (the last one produced or installed).
    pub fn state(&self) -> &Message {
        &self.last_state
    }

    /// Serialises the whole heap: `{state, heap: bytes}`. Fails with
    /// [`LuaError::Unpersistable`] on a value that cannot be persisted.
    pub fn snapshot(&self) -> Result<Message, LuaError> {
        let heap = heap::snapshot(&self.vm, &self.state)?;
        let conv = |e: hb_message::MessageError| LuaError::Vm(e.to_string());
        Message::new()
            .with("state", self.last_state.clone())
            .and_then(|m| m.with("heap", Value::Bytes(heap)))
            .map_err(conv)
    }

    /// Rebuilds a process from a snapshot's `heap` in a fresh sandboxed VM,
    /// without running the script. `state` is the snapshot's state message.
    pub fn restore(
        heap: &[u8],
        state: &Message,
        limits: LuaLimits,
    ) -> Result<LuaProcess, LuaError> {
        let vm = Vm::new(&limits)?;
        let table = heap::restore(&vm, heap)?;
        Ok(LuaProcess {
            vm,
            state: table,
            last_state: state.clone(),
        })
    }

    /// Restores a v1 snapshot (no heap): runs the script, then installs the
    /// state table.
    pub fn restore_without_heap(
        process: &Message,
        state: &Message,
        limits: LuaLimits,
    ) -> Result<LuaProcess, LuaError> {
        let (mut p, _) = LuaProcess::init(process, limits)?;
        p.state = message_to_lua(&p.vm.lua, state, &p.vm.message_mt)?;
        p.last_state = state.clone();
        Ok(p)
    }
}

/// `body.from`: `from-process` when the body is committed by the node, else
/// the first committer, else, for a dry-run of an unsigned body, the sender
/// the node vouched for (`dry-run-from`, set only by
/// `Processes::dry_run_from` from a verified request), else nothing.
fn from_of(assignment: &Message, node_address: &str) -> Option<Value> {
    let body = assignment.get_message("body")?;
    let committers = body.committers().ok()?;
    if committers.iter().any(|c| c == node_address) {
        return body.get("from-process").cloned();
    }
    match committers.into_iter().next() {
        Some(first) => Some(Value::Text(first)),
        None if assignment.get("dry-run") == Some(&Value::Bool(true)) => {
            assignment.get("dry-run-from").cloned()
        }
        None => None,
    }
}

/// Calls `f` through the prelude's protected runner: `(true, results)` or
/// `(false, [error text])`. A failure outside the runner (memory) is
/// folded into the same shape.
fn call(vm: &Vm, f: &Function, args: MultiValue) -> (bool, Vec<LuaValue>) {
    let mut all = vec![LuaValue::Function(f.clone())];
    all.extend(args);
    match vm.run.call::<MultiValue>(MultiValue::from_vec(all)) {
        Ok(values) => {
            let mut values = values.into_vec();
            if values.is_empty() {
                return (false, Vec::new());
            }
            let ok = matches!(values.remove(0), LuaValue::Boolean(true));
            (ok, values)
        }
        Err(e) => {
            if memory_error(&e) {
                if let Some(mut host) = vm.host.try_lock() {
                    host.limit.get_or_insert(LimitHit::Memory);
                }
            }
            (false, Vec::new())
        }
    }
}

/// The early end of a call, if any: a limit recorded by the host, else a
/// Lua error (an error text containing `not enough memory`, as Lua and its
/// auxiliary library report allocation failures, means the memory limit).
fn classify(vm: &Vm, ok: bool, rest: &[LuaValue]) -> Option<LuaOutcome> {
    let hit = vm.host.try_lock().and_then(|h| h.limit);
    if let Some(hit) = hit {
        return Some(LuaOutcome::limit(hit));
    }
    if ok {
        return None;
    }
    let text = match rest.first() {
        Some(LuaValue::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        _ => "unknown error".to_string(),
    };
    if text.contains(MEMERR) {
        return Some(LuaOutcome::limit(LimitHit::Memory));
    }
    Some(LuaOutcome::error(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_can_move_between_threads() {
        // The device wiring runs Lua off the actor's thread
        // (spawn_blocking): the engine must be Send.
        fn assert_send<T: Send>() {}
        assert_send::<LuaProcess>();
    }

    #[test]
    fn a_too_deep_assignment_is_a_slot_error_not_a_halt() {
        let (mut p, s) = LuaProcess::init(
            &Message::new().with("script", "x = 1").unwrap(),
            LuaLimits::default(),
        )
        .unwrap();
        let mut deep = Message::new();
        for _ in 0..(MAX_DEPTH + 5) {
            deep = Message::new().with("d", deep).unwrap();
        }
        let a = Message::new().with("body", deep).unwrap();
        let h = p.handle("compute", &s, &a, "pid", "node").unwrap().unwrap();
        assert_eq!(
            h.results.get_path("error/code").and_then(|v| v.as_text()),
            Some("lua-error")
        );
        assert_eq!(h.state, s);
    }
}
