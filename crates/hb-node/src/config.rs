//! Node settings (SPEC §7.1): defaults and validation. This first version
//! takes them from command-line flags only; TOML files and `HB_*`
//! environment variables are not read yet.

use std::net::IpAddr;
use std::path::PathBuf;

use hb_scheduler::SchedulingMode;

/// A setting that does not validate; start-up stops with exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}`: {reason}")]
pub struct ConfigError {
    /// The setting's name.
    pub setting: &'static str,
    /// Why it is refused.
    pub reason: String,
}

/// The node's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// `host`: the address the HTTP server binds.
    pub host: IpAddr,
    /// `port` (0: any free port).
    pub port: u16,
    /// `data_dir`: where the sled store lives.
    pub data_dir: PathBuf,
    /// `key_file` (default `<data_dir>/node.key`, created with mode 0600).
    pub key_file: Option<PathBuf>,
    /// `scheduling_mode`.
    pub scheduling_mode: SchedulingMode,
    /// `max_body_bytes`: larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `max_json_depth`: deeper JSON bodies get 400.
    pub max_json_depth: usize,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8734,
            data_dir: PathBuf::from("./hb-data"),
            key_file: None,
            scheduling_mode: SchedulingMode::LocalConfirmation,
            max_body_bytes: 10 * 1024 * 1024,
            max_json_depth: 64,
        }
    }
}

impl NodeConfig {
    /// The key file: `key_file`, else `<data_dir>/node.key`.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("node.key"))
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes == 0 {
            return Err(ConfigError {
                setting: "max_body_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if !(1..=hb_message::json::JSON_MAX_DEPTH).contains(&self.max_json_depth) {
            return Err(ConfigError {
                setting: "max_json_depth",
                reason: format!("must be between 1 and {}", hb_message::json::JSON_MAX_DEPTH),
            });
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError {
                setting: "data_dir",
                reason: "must name a directory".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_specs_and_validate() {
        let c = NodeConfig::default();
        assert_eq!(
            (c.host.to_string(), c.port),
            ("127.0.0.1".to_string(), 8734)
        );
        assert_eq!(c.key_path(), PathBuf::from("./hb-data/node.key"));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn invalid_values_name_their_setting() {
        let c = NodeConfig {
            max_json_depth: 0,
            ..NodeConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().setting, "max_json_depth");
        let c = NodeConfig {
            max_body_bytes: 0,
            ..NodeConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().setting, "max_body_bytes");
    }
}
