//! Configuration of resolution: the node settings devices and the engine read.

/// What a stack does when one of its devices fails (SPEC §4.4, node setting
/// `error_strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorStrategy {
    /// Fail with the fatal `StackDeviceFailed`, which enclosing stacks
    /// propagate unchanged.
    #[default]
    Throw,
    /// Return the ordinary error `StackCallFailed`.
    Stop,
}

/// Whether the engine records HashPaths (SPEC §4.2 "HashPath").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashpathMode {
    /// Set `priv/hashpath` on every `Ok(Message)` outcome.
    #[default]
    Update,
    /// Leave results as the device returned them (internal calls, field
    /// reads through other devices).
    Ignore,
}

/// The default nesting limit of resolutions.
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// Settings carried by the [`Context`](crate::Context).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The stack error strategy (default `Throw`).
    pub error_strategy: ErrorStrategy,
    /// How deep resolutions may nest (default 256); beyond it,
    /// `DepthExceeded`.
    pub max_depth: usize,
    /// Whether HashPaths are recorded (default `Update`).
    pub hashpath: HashpathMode,
    /// Whether the node registers `test-device@1.0` (default false).
    pub enable_test_devices: bool,
    /// Whether test devices may panic on request (default false).
    pub test_device_panics: bool,
}

impl Default for DeviceConfig {
    fn default() -> DeviceConfig {
        DeviceConfig {
            error_strategy: ErrorStrategy::Throw,
            max_depth: DEFAULT_MAX_DEPTH,
            hashpath: HashpathMode::Update,
            enable_test_devices: false,
            test_device_panics: false,
        }
    }
}
