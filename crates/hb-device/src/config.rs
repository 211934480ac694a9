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

/// The default bound on the thread stack that nested resolutions use below
/// the outermost one: 1.5 MiB of a default (2 MiB) thread, leaving 512 KiB
/// to the caller and to the innermost device's own work. Unoptimised builds
/// take about 5.5 KiB per nesting level (optimised ones about 2 KiB), so
/// `DEFAULT_MAX_DEPTH` levels fit in it.
pub const DEFAULT_MAX_STACK_BYTES: usize = 3 << 19;

/// The default cap on the passes of a stack fold (SPEC §4.4, node setting
/// `stack_max_passes`).
pub const DEFAULT_STACK_MAX_PASSES: u64 = 64;

/// Settings carried by the [`Context`](crate::Context).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The stack error strategy (default `Throw`).
    pub error_strategy: ErrorStrategy,
    /// How deep resolutions may nest (default 256); beyond it,
    /// `DepthExceeded`.
    pub max_depth: usize,
    /// How many bytes of thread stack nested resolutions may use below the
    /// outermost one (default [`DEFAULT_MAX_STACK_BYTES`]); beyond it,
    /// `DepthExceeded` at the depth reached, even below `max_depth`. Keep it
    /// well under the stack size of the threads that resolve.
    pub max_stack_bytes: usize,
    /// How many passes a stack fold may make (default
    /// [`DEFAULT_STACK_MAX_PASSES`]): a `Pass` outcome that would start pass
    /// `stack_max_passes + 1` fails with `StackPassLimit` instead.
    pub stack_max_passes: u64,
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
            max_stack_bytes: DEFAULT_MAX_STACK_BYTES,
            stack_max_passes: DEFAULT_STACK_MAX_PASSES,
            hashpath: HashpathMode::Update,
            enable_test_devices: false,
            test_device_panics: false,
        }
    }
}
