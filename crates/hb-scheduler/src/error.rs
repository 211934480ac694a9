//! The scheduler's error type and its mapping to HTTP statuses (SPEC §5.7, §7.4).

use std::fmt;

use hb_message::{ErrorCode, MessageError};
use hb_store::StoreError;
use thiserror::Error;

/// The validation checks of SPEC §5.6.2 and the scheduler device's other
/// input checks. Each is a stable kebab-case code (the HTTP `error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// The body does not decode (check 1).
    MalformedBody,
    /// A value is not acceptable where it appears (check 1).
    InvalidValue,
    /// Two keys normalise alike (check 1).
    DuplicateKey,
    /// The body exceeds the size limit (check 1; 413).
    BodyTooLarge,
    /// The body's media type is not accepted (415).
    UnsupportedMediaType,
    /// No target could be found (check 2).
    MissingTarget,
    /// A target is not an ID (check 2).
    InvalidTarget,
    /// Two target sources disagree (check 2).
    TargetMismatch,
    /// `with_only_committed` failed (check 3).
    InvalidCommitments,
    /// `require_signed` and no commitment (check 4).
    UnsignedMessage,
    /// A commitment does not verify (check 5).
    InvalidSignature,
    /// A `Process` names no scheduler (check 6).
    MissingScheduler,
    /// A `Process` names a device this node lacks (`validate_process_devices`).
    UnknownDevice,
    /// `from` or `to` of GET schedule is not an integer.
    InvalidRange,
    /// `at-slot` is not a usable slot.
    InvalidSlot,
    /// A location record is missing, unsigned or does not verify.
    InvalidLocation,
    /// An address asked about is not a 43-character base64url address.
    InvalidAddress,
}

impl Check {
    /// The kebab-case code.
    pub fn code(self) -> &'static str {
        match self {
            Check::MalformedBody => "malformed-body",
            Check::InvalidValue => "invalid-value",
            Check::DuplicateKey => "duplicate-key",
            Check::BodyTooLarge => "body-too-large",
            Check::UnsupportedMediaType => "unsupported-media-type",
            Check::MissingTarget => "missing-target",
            Check::InvalidTarget => "invalid-target",
            Check::TargetMismatch => "target-mismatch",
            Check::InvalidCommitments => "invalid-commitments",
            Check::UnsignedMessage => "unsigned-message",
            Check::InvalidSignature => "invalid-signature",
            Check::MissingScheduler => "missing-scheduler",
            Check::UnknownDevice => "unknown-device",
            Check::InvalidRange => "invalid-range",
            Check::InvalidSlot => "invalid-slot",
            Check::InvalidLocation => "invalid-location",
            Check::InvalidAddress => "invalid-address",
        }
    }

    /// The HTTP status: 413 and 415 for the size and media-type checks,
    /// 400 for the rest.
    pub fn status(self) -> u16 {
        match self {
            Check::BodyTooLarge => 413,
            Check::UnsupportedMediaType => 415,
            _ => 400,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Everything scheduling can fail with. Each variant locates the problem
/// (process, slot, check) so a client or operator can act on it. `Clone`,
/// so one failure (a failed server start, say) reaches every waiter intact.
#[derive(Clone, Debug, Error)]
pub enum SchedulerError {
    /// Input failed a validation check of SPEC §5.6.2.
    #[error("{check}: {detail}")]
    Invalid {
        /// The check that failed (also the HTTP error code).
        check: Check,
        /// A sentence naming the field, commitment or slot.
        detail: String,
    },
    /// The target process has no schedule on this node.
    #[error("unknown process {pid}: POST the process message first")]
    UnknownProcess {
        /// The process ID.
        pid: String,
    },
    /// The node's scheduling mode is `disabled`.
    #[error("scheduling is disabled on this node")]
    SchedulingDisabled,
    /// The process's server is saturated; retry later.
    #[error("scheduler for process {pid} is busy; retry later")]
    Busy {
        /// The process ID.
        pid: String,
    },
    /// A signed message was scheduled before (dedup policy `signed-id`).
    #[error("message {message_id} is already scheduled at slot {original_slot} of process {pid}")]
    Duplicate {
        /// The process ID.
        pid: String,
        /// id(message, all).
        message_id: String,
        /// The slot it holds.
        original_slot: u64,
        /// The ID of the original assignment.
        original_assignment: String,
    },
    /// The call did not complete within its deadline. It may still have
    /// been assigned: check with GET schedule.
    #[error("scheduling on process {pid} timed out after {after_ms} ms")]
    Timeout {
        /// The process ID.
        pid: String,
        /// The deadline that passed.
        after_ms: u64,
    },
    /// The process's server stopped before answering.
    #[error("scheduler for process {pid} is unavailable")]
    Unavailable {
        /// The process ID.
        pid: String,
    },
    /// Another node holds the process's unexpired lease (SPEC §11.2): it
    /// sequences the process, not this node. Retry at that node, or here
    /// once the lease expires.
    #[error("process {pid} is sequenced by node {owner} (lease epoch {epoch}); not by this node")]
    NotOwner {
        /// The process ID.
        pid: String,
        /// The node holding the lease.
        owner: String,
        /// The lease's fencing epoch.
        epoch: u64,
    },
    /// A handler panicked (the server restarts from the store), or an
    /// assignment broke an invariant of what is stored (it is not).
    #[error("internal error in the scheduler of process {pid}: {detail}")]
    Internal {
        /// The process ID.
        pid: String,
        /// What happened.
        detail: String,
    },
    /// The scheduler was shut down (or its registry stopped).
    #[error("the scheduler is not running")]
    NotRunning,
    /// A blocking store task could not run to completion.
    #[error("a scheduler store task failed: {detail}")]
    Task {
        /// What happened.
        detail: String,
    },
    /// The stored schedule cannot be resumed.
    #[error("schedule of process {pid} is corrupt at slot {slot}: {detail}")]
    CorruptSchedule {
        /// The process ID.
        pid: String,
        /// The slot whose record is unusable.
        slot: u64,
        /// What is wrong.
        detail: String,
    },
    /// A slot that is not (yet) in the schedule was asked for.
    #[error("Requested slot {requested} not yet available in schedule (latest: {latest})")]
    SlotNotAvailable {
        /// The slot asked for.
        requested: u64,
        /// The latest assigned slot (-1 if none).
        latest: i64,
    },
    /// An assignment's hash chain does not follow from the previous one.
    #[error("hash chain mismatch at slot {slot} of process {pid}")]
    HashChainMismatch {
        /// The process ID.
        pid: String,
        /// The first slot whose chain is wrong.
        slot: u64,
    },
    /// An assignment sits at the wrong slot.
    #[error("schedule of process {pid} is inconsistent: expected slot {expected}, found {found}")]
    ScheduleInconsistent {
        /// The process ID.
        pid: String,
        /// The slot asked for.
        expected: u64,
        /// The slot the assignment carries.
        found: i64,
    },
    /// The target carries a `?hint=` URL: the request belongs there.
    #[error("Redirecting to scheduler: {url}")]
    Redirect {
        /// The process ID part of the target.
        pid: String,
        /// The hinted URL.
        url: String,
    },
    /// The process names another node's address as its scheduler and no
    /// location is known for it.
    #[error("scheduler location unknown for address {address}")]
    RemoteScheduler {
        /// The scheduler address the process names.
        address: String,
    },
    /// A location record's nonce is not above the stored one.
    #[error("Known nonce higher than requested nonce.")]
    StaleNonce {
        /// The nonce asked for.
        requested: i64,
        /// The stored nonce.
        existing: i64,
    },
    /// No location record for an address.
    #[error("No location found for address: {address}")]
    LocationNotFound {
        /// The address asked for.
        address: String,
    },
    /// A message-model error (decoding, IDs, commitments).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A storage error.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SchedulerError {
    /// A validation failure.
    pub fn invalid(check: Check, detail: impl Into<String>) -> SchedulerError {
        SchedulerError::Invalid {
            check,
            detail: detail.into(),
        }
    }

    /// The check that failed, for `Invalid`.
    pub fn check(&self) -> Option<Check> {
        match self {
            SchedulerError::Invalid { check, .. } => Some(*check),
            _ => None,
        }
    }
}

impl ErrorCode for SchedulerError {
    fn code(&self) -> &'static str {
        match self {
            SchedulerError::Invalid { check, .. } => check.code(),
            SchedulerError::UnknownProcess { .. } => "unknown-process",
            SchedulerError::SchedulingDisabled => "scheduling-disabled",
            SchedulerError::Busy { .. } => "busy",
            SchedulerError::Duplicate { .. } => "duplicate-message",
            SchedulerError::Timeout { .. } => "schedule-timeout",
            SchedulerError::Unavailable { .. } => "unavailable",
            SchedulerError::NotOwner { .. } => "not-owner",
            SchedulerError::Internal { .. } => "internal",
            SchedulerError::CorruptSchedule { .. } => "schedule-inconsistent",
            SchedulerError::SlotNotAvailable { .. } => "slot-not-available",
            SchedulerError::HashChainMismatch { .. } => "hash-chain-mismatch",
            SchedulerError::ScheduleInconsistent { .. } => "schedule-inconsistent",
            SchedulerError::LocationNotFound { .. } => "location-not-found",
            SchedulerError::StaleNonce { .. } => "stale-nonce",
            SchedulerError::Redirect { .. } => "redirect",
            SchedulerError::RemoteScheduler { .. } => "scheduler-location-unknown",
            SchedulerError::NotRunning => "unavailable",
            SchedulerError::Task { .. } => "internal",
            SchedulerError::Message(e) => e.code(),
            SchedulerError::Store(e) => e.code(),
        }
    }

    fn extras(&self) -> Vec<(&'static str, hb_message::Value)> {
        use hb_message::Value;
        match self {
            SchedulerError::Duplicate { original_slot, .. } => i64::try_from(*original_slot)
                .map(|slot| vec![("original-slot", Value::Int(slot))])
                .unwrap_or_default(),
            SchedulerError::StaleNonce { requested, .. } => {
                vec![("requested-nonce", Value::Int(*requested))]
            }
            SchedulerError::Redirect { url, .. } => vec![("location", Value::from(url.as_str()))],
            SchedulerError::NotOwner { owner, epoch, .. } => {
                let mut extras = vec![("owner", Value::from(owner.as_str()))];
                if let Ok(epoch) = i64::try_from(*epoch) {
                    extras.push(("lease-epoch", Value::Int(epoch)));
                }
                extras
            }
            _ => Vec::new(),
        }
    }

    fn status(&self) -> u16 {
        match self {
            SchedulerError::Invalid { check, .. } => check.status(),
            SchedulerError::UnknownProcess { .. }
            | SchedulerError::SlotNotAvailable { .. }
            | SchedulerError::LocationNotFound { .. }
            | SchedulerError::RemoteScheduler { .. } => 404,
            SchedulerError::Redirect { .. } => 307,
            SchedulerError::Duplicate { .. } => 409,
            SchedulerError::SchedulingDisabled
            | SchedulerError::Busy { .. }
            | SchedulerError::Unavailable { .. }
            | SchedulerError::NotOwner { .. }
            | SchedulerError::NotRunning => 503,
            SchedulerError::Timeout { .. } => 504,
            SchedulerError::Message(e) => e.status(),
            SchedulerError::Store(e) => e.status(),
            SchedulerError::StaleNonce { .. } => 400,
            SchedulerError::Internal { .. }
            | SchedulerError::Task { .. }
            | SchedulerError::CorruptSchedule { .. }
            | SchedulerError::HashChainMismatch { .. }
            | SchedulerError::ScheduleInconsistent { .. } => 500,
        }
    }
}
