//! The sandboxed VM (SPEC §6.10 "Sandbox and determinism"): which
//! libraries scripts see, the host functions, the instruction and memory
//! limits, and the table of permanents that snapshots name instead of
//! serialising.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use hb_message::Message;
use mlua::{
    ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table,
    Value as LuaValue, VmState,
};
use parking_lot::Mutex;

use super::convert::{lua_to_message, ConvertError};
use super::error::LuaError;
use super::order::{next_entry, sorted_entries};
use super::LuaLimits;

const PRELUDE: &str = include_str!("prelude.lua");

/// The prelude compiled by the first VM built, with its debug information
/// (error messages keep their lines): later VMs load it instead of parsing
/// the source again, which was a third of building a VM.
static PRELUDE_CODE: OnceLock<Vec<u8>> = OnceLock::new();

/// How many VM instructions pass between two calls of the counting hook.
/// The count is exact at this granularity, and the same on every run.
pub const HOOK_INTERVAL: u32 = 1000;

/// What Lua says on memory exhaustion. An error whose text contains it is
/// reported as `lua-memory-limit` (a script raising such text itself only
/// changes its own error code).
pub(crate) const MEMERR: &str = "not enough memory";

/// Which limit a call hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    Instructions,
    Memory,
}

/// What one call into Lua collects on the host side.
#[derive(Debug, Default)]
pub(crate) struct HostState {
    pub(crate) output: Vec<u8>,
    pub(crate) outbox: Vec<Message>,
    /// Bytes held by the host for this call (output and outbox estimate),
    /// counted against the memory limit.
    pub(crate) host_bytes: usize,
    pub(crate) instructions: u64,
    pub(crate) max_instructions: u64,
    pub(crate) max_memory: usize,
    pub(crate) limit: Option<LimitHit>,
}

impl HostState {
    /// Starts a new call.
    pub(crate) fn reset(&mut self) {
        self.output.clear();
        self.outbox.clear();
        self.host_bytes = 0;
        self.instructions = 0;
        self.limit = None;
    }
}

/// Host-only functions of the debug library, kept before the sandbox
/// closes. Scripts never see them.
pub(crate) struct DebugFns {
    pub(crate) getupvalue: Function,
    pub(crate) setupvalue: Function,
    pub(crate) upvalueid: Function,
    pub(crate) upvaluejoin: Function,
    pub(crate) getmetatable: Function,
}

/// The permanents: every table and function present in a fresh sandboxed
/// VM before any script runs, named by the path where it was first found.
/// Every fresh VM builds the same names for the same objects.
pub(crate) struct Permanents {
    pub(crate) by_name: HashMap<String, LuaValue>,
    pub(crate) by_ptr: HashMap<usize, String>,
}

/// A sandboxed VM with its host state.
pub(crate) struct Vm {
    pub(crate) lua: Lua,
    pub(crate) host: Arc<Mutex<HostState>>,
    pub(crate) run: Function,
    pub(crate) evaluate: Function,
    pub(crate) message_mt: Table,
    pub(crate) string_mt: Table,
    pub(crate) debug: DebugFns,
    pub(crate) perms: Permanents,
}

fn host_lock(host: &Arc<Mutex<HostState>>) -> mlua::Result<parking_lot::MutexGuard<'_, HostState>> {
    // The engine never holds the lock across a call into Lua, so it is free
    // whenever Lua calls back; a failure here is reported, never a panic.
    host.try_lock()
        .ok_or_else(|| mlua::Error::RuntimeError("host state busy".to_string()))
}

/// A rough size of a message, for the memory budget.
fn estimate(m: &Message) -> usize {
    fn value(v: &hb_message::Value) -> usize {
        use hb_message::Value as V;
        16 + match v {
            V::Bytes(b) => b.len(),
            V::Text(s) => s.len(),
            V::List(items) => items.iter().map(value).sum(),
            V::Message(m) => estimate(m),
            _ => 8,
        }
    }
    m.iter().map(|(k, v)| k.as_str().len() + value(v)).sum()
}

/// Charges `bytes` held by the host against the memory limit. `false`
/// means the limit is hit (and recorded).
fn charge(lua: &Lua, host: &mut HostState, bytes: usize) -> bool {
    host.host_bytes = host.host_bytes.saturating_add(bytes);
    if host.host_bytes.saturating_add(lua.used_memory()) > host.max_memory {
        host.limit = Some(LimitHit::Memory);
        return false;
    }
    true
}

fn fail(lua: &Lua, msg: impl AsRef<[u8]>) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        LuaValue::Boolean(false),
        LuaValue::String(lua.create_string(msg)?),
    ]))
}

fn host_functions(lua: &Lua, host: &Arc<Mutex<HostState>>) -> mlua::Result<Table> {
    let t = lua.create_table()?;

    let h = host.clone();
    t.raw_set(
        "limit_hit",
        lua.create_function(move |_, ()| Ok(host_lock(&h)?.limit.is_some()))?,
    )?;

    t.raw_set(
        "sorted_keys",
        lua.create_function(|lua, v: LuaValue| {
            let LuaValue::Table(t) = v else {
                return fail(
                    lua,
                    format!(
                        "bad argument #1 to 'pairs' (table expected, got {})",
                        v.type_name()
                    ),
                );
            };
            match sorted_entries(&t)? {
                Err(msg) => fail(lua, msg),
                Ok(entries) => {
                    let keys = lua.create_table_with_capacity(entries.len(), 0)?;
                    for (i, (_, k, _)) in entries.into_iter().enumerate() {
                        keys.raw_set(i + 1, k)?;
                    }
                    Ok(MultiValue::from_vec(vec![
                        LuaValue::Boolean(true),
                        LuaValue::Table(keys),
                    ]))
                }
            }
        })?,
    )?;

    t.raw_set(
        "next",
        lua.create_function(|lua, (v, k): (LuaValue, LuaValue)| {
            let LuaValue::Table(t) = v else {
                return fail(
                    lua,
                    format!(
                        "bad argument #1 to 'next' (table expected, got {})",
                        v.type_name()
                    ),
                );
            };
            match next_entry(&t, &k)? {
                Err(msg) => fail(lua, msg),
                Ok(None) => Ok(MultiValue::from_vec(vec![
                    LuaValue::Boolean(true),
                    LuaValue::Nil,
                ])),
                Ok(Some((k, v))) => Ok(MultiValue::from_vec(vec![LuaValue::Boolean(true), k, v])),
            }
        })?,
    )?;

    let h = host.clone();
    t.raw_set(
        "emit",
        lua.create_function(move |lua, s: mlua::String| {
            let mut host = host_lock(&h)?;
            let bytes = s.as_bytes();
            if !charge(lua, &mut host, bytes.len() + 1) {
                return fail(lua, MEMERR);
            }
            host.output.extend_from_slice(&bytes);
            host.output.push(b'\n');
            Ok(MultiValue::from_vec(vec![LuaValue::Boolean(true)]))
        })?,
    )?;

    let h = host.clone();
    t.raw_set(
        "send",
        lua.create_function(move |lua, v: LuaValue| {
            let m = match lua_to_message(&v, "a sent message") {
                Ok(m) => m,
                Err(ConvertError::User(msg)) => return fail(lua, format!("Send: {msg}")),
                Err(ConvertError::Vm(e)) => {
                    if matches!(e, mlua::Error::MemoryError(_)) {
                        host_lock(&h)?.limit = Some(LimitHit::Memory);
                    }
                    return Err(e);
                }
            };
            let mut host = host_lock(&h)?;
            if !charge(lua, &mut host, estimate(&m)) {
                return fail(lua, MEMERR);
            }
            host.outbox.push(m);
            Ok(MultiValue::from_vec(vec![LuaValue::Boolean(true)]))
        })?,
    )?;
    Ok(t)
}

/// One permanent as the first VM found it: its name and how to reach it
/// from a root or from an earlier permanent. Every fresh VM has the same
/// layout, so later VMs follow these steps instead of walking and sorting
/// every table again.
struct Found {
    name: String,
    step: Step,
}

/// How a permanent is reached.
enum Step {
    /// The `n`th root given to [`Permanents::find`].
    Root(usize),
    /// `raw_get(key)` on the table of the permanent at `parent`.
    Key { parent: usize, key: Vec<u8> },
    /// The metatable of the table of the permanent at `parent`.
    Metatable { parent: usize },
}

/// The layout of the permanents, found by the first VM built.
static LAYOUT: OnceLock<Vec<Found>> = OnceLock::new();

impl Permanents {
    /// The permanents of a fresh VM whose roots are `roots` (name, table),
    /// in this order: along the recorded layout when there is one, else by
    /// walking the tables (and recording the layout).
    fn find(roots: &[(&str, Table)]) -> mlua::Result<Permanents> {
        if let Some(layout) = LAYOUT.get() {
            if let Some(perms) = Permanents::follow(layout, roots)? {
                return Ok(perms);
            }
            // A VM that differs from the first one: walk it (correct,
            // only slower).
        }
        let (perms, layout) = Permanents::walk(roots)?;
        let _ = LAYOUT.set(layout);
        Ok(perms)
    }

    /// Walks tables from each root, breadth first, keys in the sort order,
    /// naming every table and function by the path where it is first
    /// found.
    fn walk(roots: &[(&str, Table)]) -> mlua::Result<(Permanents, Vec<Found>)> {
        let mut perms = Permanents {
            by_name: HashMap::new(),
            by_ptr: HashMap::new(),
        };
        let mut layout = Vec::new();
        for (i, (root_name, root)) in roots.iter().enumerate() {
            let mut queue = std::collections::VecDeque::new();
            queue.push_back((
                root_name.to_string(),
                LuaValue::Table(root.clone()),
                Step::Root(i),
            ));
            while let Some((name, v, step)) = queue.pop_front() {
                let ptr = match &v {
                    LuaValue::Table(t) => t.to_pointer() as usize,
                    LuaValue::Function(f) => f.to_pointer() as usize,
                    _ => continue,
                };
                if perms.by_ptr.contains_key(&ptr) {
                    continue;
                }
                let at = layout.len();
                perms.by_ptr.insert(ptr, name.clone());
                perms.by_name.insert(name.clone(), v.clone());
                layout.push(Found {
                    name: name.clone(),
                    step,
                });
                if let LuaValue::Table(t) = &v {
                    if let Some(mt) = t.metatable() {
                        queue.push_back((
                            format!("{name}#mt"),
                            LuaValue::Table(mt),
                            Step::Metatable { parent: at },
                        ));
                    }
                    // Fresh VMs hold string keys only in these tables;
                    // other keys are skipped (their values stay unnamed).
                    let entries = match sorted_entries(t)? {
                        Ok(e) => e,
                        Err(_) => continue,
                    };
                    for (k, _, val) in entries {
                        if let super::order::OrderedKey::Str(s) = k {
                            let key = String::from_utf8_lossy(&s).into_owned();
                            queue.push_back((
                                format!("{name}.{key}"),
                                val,
                                Step::Key { parent: at, key: s },
                            ));
                        }
                    }
                }
            }
        }
        Ok((perms, layout))
    }

    /// The permanents along `layout`, or `None` if this VM does not have
    /// that layout (a step finds no table or function, or an object
    /// twice).
    fn follow(layout: &[Found], roots: &[(&str, Table)]) -> mlua::Result<Option<Permanents>> {
        let mut values: Vec<LuaValue> = Vec::with_capacity(layout.len());
        let mut perms = Permanents {
            by_name: HashMap::with_capacity(layout.len()),
            by_ptr: HashMap::with_capacity(layout.len()),
        };
        let table_at = |values: &[LuaValue], i: usize| match values.get(i) {
            Some(LuaValue::Table(t)) => Some(t.clone()),
            _ => None,
        };
        for found in layout {
            let v = match &found.step {
                Step::Root(i) => match roots.get(*i) {
                    Some((_, t)) => LuaValue::Table(t.clone()),
                    None => return Ok(None),
                },
                Step::Key { parent, key } => match table_at(&values, *parent) {
                    Some(t) => t.raw_get::<LuaValue>(mlua::BString::from(key.as_slice()))?,
                    None => return Ok(None),
                },
                Step::Metatable { parent } => {
                    match table_at(&values, *parent).and_then(|t| t.metatable()) {
                        Some(mt) => LuaValue::Table(mt),
                        None => return Ok(None),
                    }
                }
            };
            let ptr = match &v {
                LuaValue::Table(t) => t.to_pointer() as usize,
                LuaValue::Function(f) => f.to_pointer() as usize,
                _ => return Ok(None),
            };
            if perms.by_ptr.insert(ptr, found.name.clone()).is_some() {
                return Ok(None);
            }
            perms.by_name.insert(found.name.clone(), v.clone());
            values.push(v);
        }
        Ok(Some(perms))
    }
}

/// Installs the counting hook. Installing it again restarts Lua's own
/// countdown, so each call counts from zero.
fn install_hook(lua: &Lua, host: &Arc<Mutex<HostState>>) -> mlua::Result<()> {
    let h = host.clone();
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_INTERVAL),
        move |_, _| {
            let mut host = host_lock(&h)?;
            host.instructions = host.instructions.saturating_add(u64::from(HOOK_INTERVAL));
            if host.instructions > host.max_instructions
                || host.limit == Some(LimitHit::Instructions)
            {
                host.limit = Some(LimitHit::Instructions);
                return Err(mlua::Error::RuntimeError(
                    "instruction limit exceeded".to_string(),
                ));
            }
            Ok(VmState::Continue)
        },
    )
}

impl Vm {
    /// A fresh sandboxed VM with the given limits.
    pub(crate) fn new(limits: &LuaLimits) -> Result<Vm, LuaError> {
        let libs = StdLib::COROUTINE
            | StdLib::TABLE
            | StdLib::STRING
            | StdLib::UTF8
            | StdLib::MATH
            | StdLib::DEBUG;
        // SAFETY: `unsafe_new_with` is unsafe because it allows the debug
        // library (and C modules, but the package library is not loaded).
        // The debug library is only used by the host: it is removed from
        // the globals below, before any script runs, and its functions are
        // kept in Rust only.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        let host = Arc::new(Mutex::new(HostState {
            max_instructions: limits.max_instructions,
            max_memory: limits.max_memory_bytes,
            ..HostState::default()
        }));
        let vm = Self::build(lua, host)
            .map_err(|e| LuaError::Vm(format!("building the sandbox: {e}")))?;
        vm.lua
            .set_memory_limit(limits.max_memory_bytes)
            .map_err(|e| LuaError::Vm(format!("setting the memory limit: {e}")))?;
        Ok(vm)
    }

    fn build(lua: Lua, host: Arc<Mutex<HostState>>) -> mlua::Result<Vm> {
        let g = lua.globals();
        let debug: Table = g.raw_get("debug")?;
        let debug_fns = DebugFns {
            getupvalue: debug.raw_get("getupvalue")?,
            setupvalue: debug.raw_get("setupvalue")?,
            upvalueid: debug.raw_get("upvalueid")?,
            upvaluejoin: debug.raw_get("upvaluejoin")?,
            getmetatable: debug.raw_get("getmetatable")?,
        };
        let host_fns = host_functions(&lua, &host)?;
        let prelude = match PRELUDE_CODE.get() {
            Some(code) => lua
                .load(code.as_slice())
                .set_name("=hb-prelude")
                .set_mode(ChunkMode::Binary)
                .into_function()?,
            None => {
                let f = lua
                    .load(PRELUDE)
                    .set_name("=hb-prelude")
                    .set_mode(ChunkMode::Text)
                    .into_function()?;
                let _ = PRELUDE_CODE.set(f.dump(false));
                f
            }
        };
        let hb: Table = prelude.call(host_fns.clone())?;
        hb.raw_set("host", host_fns)?;

        // Close the sandbox.
        for name in [
            "debug",
            "collectgarbage",
            "dofile",
            "loadfile",
            "require",
            "os",
            "io",
            "package",
        ] {
            g.raw_set(name, LuaValue::Nil)?;
        }
        let math: Table = g.raw_get("math")?;
        math.raw_set("random", LuaValue::Nil)?;
        math.raw_set("randomseed", LuaValue::Nil)?;
        let string: Table = g.raw_get("string")?;
        string.raw_set("dump", LuaValue::Nil)?;

        let debug_table = lua.create_table()?;
        for (name, f) in [
            ("getupvalue", &debug_fns.getupvalue),
            ("setupvalue", &debug_fns.setupvalue),
            ("upvalueid", &debug_fns.upvalueid),
            ("upvaluejoin", &debug_fns.upvaluejoin),
            ("getmetatable", &debug_fns.getmetatable),
        ] {
            debug_table.raw_set(name, f.clone())?;
        }
        let perms = Permanents::find(&[
            ("_G", g.clone()),
            ("hb", hb.clone()),
            ("debug", debug_table),
        ])?;

        install_hook(&lua, &host)?;

        Ok(Vm {
            run: hb.raw_get("run")?,
            evaluate: hb.raw_get("evaluate")?,
            message_mt: hb.raw_get("message_mt")?,
            string_mt: hb.raw_get("string_mt")?,
            debug: debug_fns,
            perms,
            lua,
            host,
        })
    }

    /// Starts a call: clears the host state and restarts the instruction
    /// count (re-setting the hook resets Lua's own countdown, so the count
    /// does not depend on what ran before this call).
    pub(crate) fn begin_call(&self) -> Result<(), LuaError> {
        let mut host = self
            .host
            .try_lock()
            .ok_or_else(|| LuaError::Vm("host state busy".to_string()))?;
        host.reset();
        drop(host);
        install_hook(&self.lua, &self.host).map_err(LuaError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_built_along_the_recorded_layout_names_what_a_walk_names() -> mlua::Result<()> {
        // The first VM of the test binary records the layout (or an earlier
        // test did); this one follows it.
        let _first = Vm::new(&LuaLimits::default()).map_err(mlua::Error::external)?;
        let vm = Vm::new(&LuaLimits::default()).map_err(mlua::Error::external)?;
        assert!(LAYOUT.get().is_some(), "the first VM records the layout");
        let walked = Permanents::walk(&[("_G", vm.lua.globals())])?.0;
        // Every permanent reachable from `_G` has the name a walk gives it.
        for (name, value) in &walked.by_name {
            let ptr = match value {
                LuaValue::Table(t) => t.to_pointer() as usize,
                LuaValue::Function(f) => f.to_pointer() as usize,
                _ => continue,
            };
            assert_eq!(vm.perms.by_ptr.get(&ptr), Some(name), "{name}");
        }
        for name in ["_G.string.format", "_G.table.insert", "_G.Handlers"] {
            assert!(walked.by_name.contains_key(name), "{name} is a permanent");
        }
        Ok(())
    }
}
