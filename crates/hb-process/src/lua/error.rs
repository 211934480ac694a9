//! The typed failures of the Lua engine.

use thiserror::Error;

/// A failure of the Lua engine that stops it from producing a state.
///
/// Failures caused by a message (a Lua error, a limit) are not errors: they
/// are recorded in the slot's `results/error` (see [`super::LuaOutcome`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LuaError {
    /// The process defines no script (`process/script`, or `process/data` as
    /// text).
    #[error("the process defines no Lua script")]
    NoScript,
    /// The script does not compile.
    #[error("the Lua script does not load: {0}")]
    Load(String),
    /// Running the script, or its `init(process)`, failed.
    #[error("the Lua script failed at init ({code}): {message}")]
    Init {
        /// `lua-error`, `lua-instruction-limit` or `lua-memory-limit`.
        code: &'static str,
        /// What Lua said.
        message: String,
    },
    /// A state or message could not be converted between Lua and hb.
    #[error("Lua conversion failed: {0}")]
    Conversion(String),
    /// A value in the heap cannot be persisted (a coroutine, a userdata, a
    /// C function outside the permanents, an unorderable key, a weak or
    /// finalised table).
    #[error("the Lua heap cannot be persisted: {0}")]
    Unpersistable(String),
    /// Snapshot bytes could not be decoded or rebuilt.
    #[error("the Lua heap snapshot is malformed: {0}")]
    BadSnapshot(String),
    /// The VM itself failed (an allocation in the host, a broken invariant).
    #[error("Lua VM failure: {0}")]
    Vm(String),
}

impl LuaError {
    /// A stable, kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            LuaError::NoScript => "lua-no-script",
            LuaError::Load(_) => "lua-load-error",
            LuaError::Init { code, .. } => code,
            LuaError::Conversion(_) => "lua-conversion-error",
            LuaError::Unpersistable(_) => "lua-unpersistable",
            LuaError::BadSnapshot(_) => "lua-bad-snapshot",
            LuaError::Vm(_) => "lua-vm-error",
        }
    }
}

impl From<mlua::Error> for LuaError {
    fn from(e: mlua::Error) -> LuaError {
        LuaError::Vm(e.to_string())
    }
}
