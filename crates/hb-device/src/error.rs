//! The one error type of resolution (SPEC §4.5).

use std::error::Error as StdError;
use std::sync::Arc;

use hb_message::{ErrorCode, MessageError};
use thiserror::Error;

/// What a device's own error must be: an error with an HTTP code and
/// status ([`ErrorCode`]), so a failure inside a device reaches the client
/// with its own code without anyone downcasting. Implemented for every
/// such type.
pub trait DeviceError: StdError + ErrorCode + Send + Sync + 'static {}

impl<T: StdError + ErrorCode + Send + Sync + 'static> DeviceError for T {}

/// A device's own failure, shared so that one error can answer many waiters.
pub type DeviceFailure = Arc<dyn DeviceError>;

/// Everything that can go wrong while resolving a request on a message.
///
/// Each variant names the device, key or position that locates the problem.
/// `Clone` so that one failure can be handed to every caller waiting on it.
#[derive(Debug, Clone, Error)]
pub enum ResolveError {
    /// The key has no value and no device function (HyperBEAM's
    /// `{error, not_found}`). Stacks skip devices that answer this.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key, normalised.
        key: String,
    },
    /// The request's `path` is missing, empty, or holds an invalid segment.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given (truncated), or a description of its type.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A device name is not of the form `name@version`.
    #[error("invalid device name {name:?}: {reason}")]
    InvalidDeviceName {
        /// The name as given (truncated), or a description of its type.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// No device of that name is registered.
    #[error("unknown device {name:?}; known devices: {}", .known.join(", "))]
    UnknownDevice {
        /// The name exactly as requested.
        name: String,
        /// Every registered device name, sorted.
        known: Vec<String>,
    },
    /// A second device was registered under a name already taken.
    #[error("a device named {name:?} is already registered")]
    DuplicateDevice {
        /// The name, normalised.
        name: String,
    },
    /// Resolutions nested deeper than the configured limit, or deep enough
    /// to spend the stack budget (`DeviceConfig::max_stack_bytes`).
    #[error("resolution nested deeper than {limit} levels")]
    DepthExceeded {
        /// The limit in force: `DeviceConfig::max_depth`, or the depth
        /// reached when the stack budget ran out.
        limit: usize,
    },
    /// A device panicked; the panic was caught at the device call.
    #[error("device {device} panicked while resolving key {key:?}")]
    Panicked {
        /// The device that panicked.
        device: String,
        /// The key it was resolving.
        key: String,
    },
    /// The base or request given to a key is not acceptable (a missing
    /// parameter, a value of the wrong type, an unknown mode…).
    #[error("invalid input for key {key:?}: {reason}")]
    InvalidInput {
        /// The key being resolved.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A shortcut expected a kind of outcome that the device did not give.
    #[error("device {device} answered key {key:?} with {got}, expected {expected}")]
    UnexpectedOutcome {
        /// The device.
        device: String,
        /// The key.
        key: String,
        /// What the caller needed.
        expected: &'static str,
        /// What the device gave.
        got: &'static str,
    },
    /// A device failed in its own terms.
    #[error("device {device} failed on key {key:?}: {source}")]
    Device {
        /// The device.
        device: String,
        /// The key.
        key: String,
        /// The device's error.
        #[source]
        source: DeviceFailure,
    },
    /// A device of a stack failed under error strategy `throw`. Fatal:
    /// enclosing stacks propagate it unchanged.
    #[error("stack device {index} ({device}) failed: {source}")]
    StackDeviceFailed {
        /// The position of the device in `device-stack` (1-based).
        index: u64,
        /// Its name.
        device: String,
        /// Its error.
        #[source]
        source: Box<ResolveError>,
    },
    /// A device of a stack failed under error strategy `stop`. An ordinary
    /// error: an enclosing stack applies its own strategy to it.
    #[error("stack call failed at device {index} ({device}): {source}")]
    StackCallFailed {
        /// The position of the device in `device-stack` (1-based).
        index: u64,
        /// Its name.
        device: String,
        /// Its error.
        #[source]
        source: Box<ResolveError>,
    },
    /// A stack fold's devices asked for more passes than the node setting
    /// `stack_max_passes` allows (SPEC §4.4), so a device that always
    /// passes cannot loop forever.
    #[error("stack fold stopped after {passes} passes (the limit): a device keeps asking for another pass")]
    StackPassLimit {
        /// The passes made, the limit in force.
        passes: u64,
    },
    /// A message operation failed.
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl ResolveError {
    /// `NotFound` for `key`.
    pub fn not_found(key: impl AsRef<str>) -> ResolveError {
        ResolveError::NotFound {
            key: key.as_ref().to_string(),
        }
    }

    /// `InvalidInput` for `key`.
    pub fn invalid_input(key: impl AsRef<str>, reason: impl Into<String>) -> ResolveError {
        ResolveError::InvalidInput {
            key: key.as_ref().to_string(),
            reason: reason.into(),
        }
    }

    /// Wraps a device's own error.
    pub fn device<E>(device: impl Into<String>, key: impl AsRef<str>, source: E) -> ResolveError
    where
        E: DeviceError,
    {
        ResolveError::Device {
            device: device.into(),
            key: key.as_ref().to_string(),
            source: Arc::new(source),
        }
    }

    /// The error's stable kebab-case code, as the HTTP layer reports it
    /// (SPEC §7.4). The stack wrappers (`StackDeviceFailed`,
    /// `StackCallFailed`) report the code of the error they wrap, found with
    /// [`root`](ResolveError::root): they say where it happened, not what.
    /// A device's own error (`Device`) reports its own code (every device
    /// error implements [`ErrorCode`]).
    pub fn code(&self) -> &'static str {
        match self.root() {
            ResolveError::NotFound { .. } => "not-found",
            ResolveError::InvalidPath { .. } => "invalid-path",
            ResolveError::InvalidDeviceName { .. } => "invalid-device-name",
            ResolveError::UnknownDevice { .. } => "unknown-device",
            ResolveError::DuplicateDevice { .. } => "duplicate-device",
            ResolveError::DepthExceeded { .. } => "depth-exceeded",
            ResolveError::Panicked { .. } => "device-panic",
            ResolveError::InvalidInput { .. } => "invalid-value",
            ResolveError::UnexpectedOutcome { .. } => "unexpected-outcome",
            ResolveError::Device { source, .. } => source.code(),
            ResolveError::StackPassLimit { .. } => "stack-pass-limit",
            ResolveError::Message(e) => e.code(),
            // `root` looks through every wrapper.
            ResolveError::StackDeviceFailed { .. } | ResolveError::StackCallFailed { .. } => {
                "stack-device-failed"
            }
        }
    }

    /// The HTTP status of the error (SPEC §7.4): 4xx for what the request
    /// or its messages got wrong, 500 for failures of devices and of the
    /// node. The stack wrappers report the status of the error they wrap.
    pub fn status(&self) -> u16 {
        match self.root() {
            ResolveError::NotFound { .. } => 404,
            ResolveError::InvalidPath { .. }
            | ResolveError::InvalidDeviceName { .. }
            | ResolveError::UnknownDevice { .. }
            | ResolveError::InvalidInput { .. } => 400,
            ResolveError::Message(e) => e.status(),
            ResolveError::Device { source, .. } => source.status(),
            ResolveError::DuplicateDevice { .. }
            | ResolveError::DepthExceeded { .. }
            | ResolveError::Panicked { .. }
            | ResolveError::UnexpectedOutcome { .. }
            | ResolveError::StackPassLimit { .. }
            | ResolveError::StackDeviceFailed { .. }
            | ResolveError::StackCallFailed { .. } => 500,
        }
    }

    /// The error a device returned, for `Device` (looking through the
    /// stack wrappers), to downcast to the device's own type.
    pub fn device_source(&self) -> Option<&(dyn StdError + 'static)> {
        match self.root() {
            ResolveError::Device { source, .. } => {
                Some(source.as_ref() as &(dyn StdError + 'static))
            }
            _ => None,
        }
    }

    /// Whether this is `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ResolveError::NotFound { .. })
    }

    /// Whether enclosing stacks must propagate this error unchanged
    /// (`StackDeviceFailed`, from error strategy `throw`).
    pub fn is_fatal(&self) -> bool {
        matches!(self, ResolveError::StackDeviceFailed { .. })
    }

    /// The innermost error, looking through the stack wrappers.
    pub fn root(&self) -> &ResolveError {
        let mut e = self;
        while let ResolveError::StackDeviceFailed { source, .. }
        | ResolveError::StackCallFailed { source, .. } = e
        {
            e = source;
        }
        e
    }

    /// The device and key of a caught panic, looking through stack wrappers.
    /// Workers use this to tell a panicking device from an ordinary error.
    pub fn panicked(&self) -> Option<(&str, &str)> {
        match self.root() {
            ResolveError::Panicked { device, key } => Some((device, key)),
            _ => None,
        }
    }
}

/// Shortens untrusted input before it is quoted in an error message.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl ErrorCode for ResolveError {
    fn code(&self) -> &'static str {
        ResolveError::code(self)
    }

    fn status(&self) -> u16 {
        ResolveError::status(self)
    }

    /// The failing device's own extras (a compute failure's phase and slot).
    fn extras(&self) -> Vec<(&'static str, hb_message::Value)> {
        match self.root() {
            ResolveError::Device { source, .. } => source.extras(),
            ResolveError::Message(e) => e.extras(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
#[derive(Debug, Error)]
#[error("I'm a teapot")]
struct Teapot;

#[cfg(test)]
impl ErrorCode for Teapot {
    fn code(&self) -> &'static str {
        "teapot"
    }

    fn status(&self) -> u16 {
        418
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_lists_the_known_ones() {
        let e = ResolveError::UnknownDevice {
            name: "Foo@1.0".into(),
            known: vec!["message@1.0".into(), "stack@1.0".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown device \"Foo@1.0\"; known devices: message@1.0, stack@1.0"
        );
    }

    #[test]
    fn root_and_panicked_look_through_stack_wrappers() {
        let inner = ResolveError::Panicked {
            device: "panic@test".into(),
            key: "mark".into(),
        };
        let wrapped = ResolveError::StackCallFailed {
            index: 2,
            device: "panic@test".into(),
            source: Box::new(ResolveError::StackDeviceFailed {
                index: 1,
                device: "stack@1.0".into(),
                source: Box::new(inner.clone()),
            }),
        };
        assert!(matches!(wrapped.root(), ResolveError::Panicked { .. }));
        assert_eq!(wrapped.panicked(), Some(("panic@test", "mark")));
        assert!(!wrapped.is_fatal());
        assert_eq!(ResolveError::not_found("x").panicked(), None);
    }

    #[test]
    fn codes_and_statuses_are_stable() {
        let cases: Vec<(ResolveError, &str, u16)> = vec![
            (ResolveError::not_found("x"), "not-found", 404),
            (
                ResolveError::InvalidPath {
                    path: String::new(),
                    reason: "empty".into(),
                },
                "invalid-path",
                400,
            ),
            (
                ResolveError::InvalidDeviceName {
                    name: "x".into(),
                    reason: "r",
                },
                "invalid-device-name",
                400,
            ),
            (
                ResolveError::UnknownDevice {
                    name: "x@1".into(),
                    known: vec![],
                },
                "unknown-device",
                400,
            ),
            (
                ResolveError::DuplicateDevice { name: "x@1".into() },
                "duplicate-device",
                500,
            ),
            (
                ResolveError::DepthExceeded { limit: 3 },
                "depth-exceeded",
                500,
            ),
            (
                ResolveError::Panicked {
                    device: "d@1".into(),
                    key: "k".into(),
                },
                "device-panic",
                500,
            ),
            (ResolveError::invalid_input("k", "r"), "invalid-value", 400),
            (
                ResolveError::UnexpectedOutcome {
                    device: "d@1".into(),
                    key: "k".into(),
                    expected: "ok",
                    got: "raw",
                },
                "unexpected-outcome",
                500,
            ),
            (
                // A device's own error reports its own code and status.
                ResolveError::device("d@1", "k", Teapot),
                "teapot",
                418,
            ),
            (
                ResolveError::StackPassLimit { passes: 64 },
                "stack-pass-limit",
                500,
            ),
            (
                MessageError::DuplicateKey("a".into()).into(),
                "duplicate-key",
                400,
            ),
            (
                MessageError::InvalidJson("x".into()).into(),
                "malformed-body",
                400,
            ),
            (
                MessageError::RequestedCommittersNotFound(vec![]).into(),
                "requested-committers-not-found",
                400,
            ),
            (MessageError::Codec("x".into()).into(), "internal", 500),
        ];
        for (e, code, status) in cases {
            assert_eq!(ResolveError::code(&e), ErrorCode::code(&e));
            assert_eq!(e.code(), code, "{e:?}");
            assert_eq!(e.status(), status, "{e:?}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{code} is kebab-case"
            );
        }
    }

    #[test]
    fn stack_wrappers_report_the_wrapped_code_and_status() {
        let wrapped = ResolveError::StackDeviceFailed {
            index: 1,
            device: "stack@1.0".into(),
            source: Box::new(ResolveError::StackCallFailed {
                index: 2,
                device: "x@1.0".into(),
                source: Box::new(ResolveError::not_found("k")),
            }),
        };
        assert_eq!(wrapped.code(), "not-found");
        assert_eq!(wrapped.status(), 404);
        let panicked = ResolveError::StackCallFailed {
            index: 1,
            device: "panic@test".into(),
            source: Box::new(ResolveError::Panicked {
                device: "panic@test".into(),
                key: "mark".into(),
            }),
        };
        assert_eq!(panicked.code(), "device-panic");
        assert_eq!(panicked.status(), 500);
    }

    #[test]
    fn long_input_is_truncated() {
        assert_eq!(truncate("abc"), "abc");
        let long = "é".repeat(100);
        let t = truncate(&long);
        assert!(t.len() < 70 && t.ends_with('…'));
    }
}
