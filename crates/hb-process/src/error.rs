//! The process layer's error type (SPEC §6.13) and its HTTP mapping.

use std::fmt;

use hb_device::ResolveError;
use hb_message::{ErrorCode, MessageError};
use hb_scheduler::SchedulerError;
use hb_store::StoreError;
use thiserror::Error;

/// Where in the computation of a slot a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Reading the definition, or running the execution device's `init`.
    Init,
    /// Restoring a snapshot through `normalize`.
    Normalize,
    /// Fetching the next assignment (`next`).
    GetSchedule,
    /// Running the execution device on an assignment.
    Compute,
}

impl Phase {
    /// The phase as SPEC names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Init => "init",
            Phase::Normalize => "normalize",
            Phase::GetSchedule => "get-schedule",
            Phase::Compute => "compute",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything computing a process can fail with. Each variant locates the
/// problem (process, slot, phase). `Clone`, so one failure answers every
/// waiter of a slot.
#[derive(Clone, Debug, Error)]
pub enum ComputeError {
    /// A slot could not be computed (the process halts there).
    #[error("computing slot {attempted_slot} of process {pid} failed in phase {phase}: {source}")]
    Compute {
        /// The process.
        pid: String,
        /// Where it failed.
        phase: Phase,
        /// The slot being computed (−1 for init).
        attempted_slot: i64,
        /// The device's error.
        source: ResolveError,
    },
    /// The slot is beyond the scheduler's current slot.
    #[error("Requested slot {requested} not yet available in schedule (latest: {latest})")]
    SlotNotAvailable {
        /// The slot asked for.
        requested: u64,
        /// The scheduler's current slot (−1: none).
        latest: i64,
    },
    /// The process has no schedule on this node.
    #[error("unknown process {pid}")]
    UnknownProcess {
        /// The process.
        pid: String,
    },
    /// A `slot`, `min-slot` or `max-age` parameter is not usable.
    #[error("invalid-slot: {detail}")]
    InvalidSlot {
        /// What is wrong.
        detail: String,
    },
    /// A request that needs a slot (`push`) names none.
    #[error("missing-slot: {detail}")]
    MissingSlot {
        /// What was expected.
        detail: String,
    },
    /// The waiter's deadline (`compute_timeout_ms`) passed; the computation
    /// goes on and is cached.
    #[error("computing process {pid} timed out at slot {at_slot}")]
    Timeout {
        /// The process.
        pid: String,
        /// The slot the worker had reached.
        at_slot: i64,
    },
    /// The worker's mailbox is full.
    #[error("the worker of process {pid} is busy; retry later")]
    Busy {
        /// The process.
        pid: String,
    },
    /// An execution device panicked computing this slot.
    #[error("an execution device panicked at slot {slot} of process {pid}")]
    DevicePanicked {
        /// The process.
        pid: String,
        /// The slot.
        slot: i64,
    },
    /// The worker stopped before answering, twice.
    #[error("the worker of process {pid} stopped")]
    WorkerStopped {
        /// The process.
        pid: String,
    },
    /// The process names an execution device this node does not run (a
    /// WASM device such as `genesis-wasm@1.0`, SPEC §10.5): it is
    /// registered and scheduled, never computed.
    #[error(
        "process {pid} runs on execution device {device:?}, which this node does not run \
         (it is scheduled, not computed)"
    )]
    UnsupportedExecutionDevice {
        /// The process.
        pid: String,
        /// The device it names.
        device: String,
    },
    /// The process layer was shut down.
    #[error("the process layer is not running")]
    NotRunning,
    /// A message-model error.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A storage error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A scheduler error (reading the schedule).
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

/// A blocking store task that could not run to completion.
pub(crate) fn task_failed(e: impl fmt::Display) -> ComputeError {
    ComputeError::Store(StoreError::Io {
        path: Default::default(),
        detail: format!("store task failed: {e}"),
    })
}

impl ComputeError {
    /// The phase and slot of a `Compute` failure.
    pub fn phase(&self) -> Option<(Phase, i64)> {
        match self {
            ComputeError::Compute {
                phase,
                attempted_slot,
                ..
            } => Some((*phase, *attempted_slot)),
            _ => None,
        }
    }
}

impl ErrorCode for ComputeError {
    fn code(&self) -> &'static str {
        match self {
            ComputeError::Compute { .. } => "compute-failed",
            ComputeError::SlotNotAvailable { .. } => "slot-not-available",
            ComputeError::UnknownProcess { .. } => "unknown-process",
            ComputeError::InvalidSlot { .. } => "invalid-slot",
            ComputeError::MissingSlot { .. } => "missing-slot",
            ComputeError::Timeout { .. } => "compute-timeout",
            ComputeError::Busy { .. } => "busy",
            ComputeError::DevicePanicked { .. } => "device-panic",
            ComputeError::UnsupportedExecutionDevice { .. } => "unsupported-execution-device",
            ComputeError::WorkerStopped { .. } | ComputeError::NotRunning => "unavailable",
            ComputeError::Message(e) => e.code(),
            ComputeError::Store(e) => e.code(),
            ComputeError::Scheduler(e) => e.code(),
        }
    }

    fn extras(&self) -> Vec<(&'static str, hb_message::Value)> {
        use hb_message::Value;
        match self {
            ComputeError::Compute {
                phase,
                attempted_slot,
                ..
            } => vec![
                ("phase", Value::from(phase.as_str())),
                ("attempted-slot", Value::Int(*attempted_slot)),
            ],
            ComputeError::Scheduler(e) => e.extras(),
            _ => Vec::new(),
        }
    }

    fn status(&self) -> u16 {
        match self {
            ComputeError::Compute { .. } | ComputeError::DevicePanicked { .. } => 500,
            ComputeError::SlotNotAvailable { .. } | ComputeError::UnknownProcess { .. } => 404,
            ComputeError::InvalidSlot { .. } | ComputeError::MissingSlot { .. } => 400,
            ComputeError::Timeout { .. } => 504,
            ComputeError::UnsupportedExecutionDevice { .. } => 501,
            ComputeError::Busy { .. }
            | ComputeError::WorkerStopped { .. }
            | ComputeError::NotRunning => 503,
            ComputeError::Message(e) => e.status(),
            ComputeError::Store(e) => e.status(),
            ComputeError::Scheduler(e) => e.status(),
        }
    }
}
