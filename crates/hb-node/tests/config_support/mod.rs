//! Shared by the tests that run the real `hb serve` binary with settings (configuration tests).

use std::process::Command;

/// `hb` without the caller's `HB_*` variables (each must name a setting,
/// so a stray one in the test's environment would fail start-up).
pub fn hb() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hb"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HB_") {
            command.env_remove(name);
        }
    }
    command
}
