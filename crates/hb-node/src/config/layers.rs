//! The layering of settings (SPEC §7.1): defaults, overridden by the TOML
//! file, overridden by `HB_*` variables, overridden by flags; then the
//! whole is validated. A pure function of its three inputs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::settings::{Raw, Setting, SETTINGS};
use super::{ConfigError, NodeConfig};

/// The prefix of the environment variables that name settings. Every
/// variable with it must name one, except the [`CLIENT_VARIABLES`].
pub const ENV_PREFIX: &str = "HB_";

/// `HB_*` variables read by the client subcommands, not by `hb serve`
/// (`HB_NODE`: the node a client talks to), so a shell that sets them can
/// still start a node.
pub const CLIENT_VARIABLES: [&str; 1] = ["HB_NODE"];

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone, Copy)]
enum Origin {
    File,
    Env(&'static str),
    Flag(&'static str),
}

impl Origin {
    fn describe(self) -> String {
        match self {
            Origin::File => "set in the configuration file".into(),
            Origin::Env(var) => format!("set by {var}"),
            Origin::Flag(flag) => format!("set by {flag}"),
        }
    }
}

/// Applies one value and records where it came from.
fn apply(
    config: &mut NodeConfig,
    origins: &mut BTreeMap<&'static str, Origin>,
    setting: &'static Setting,
    raw: Raw<'_>,
    origin: Origin,
) -> Result<(), ConfigError> {
    setting.set(config, raw).map_err(|reason| {
        ConfigError::new(setting.name, format!("{reason} ({})", origin.describe()))
    })?;
    origins.insert(setting.name, origin);
    Ok(())
}

/// The file's top-level table; a syntax error names `config` and the line.
fn parse_file(text: &str) -> Result<toml::Table, ConfigError> {
    toml::from_str::<toml::Table>(text).map_err(|e| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        let message = e.message().trim().replace('\n', " ");
        let reason = match line {
            Some(line) => {
                format!("the configuration file is not valid TOML (line {line}): {message}")
            }
            None => format!("the configuration file is not valid TOML: {message}"),
        };
        ConfigError::new("config", reason)
    })
}

/// See [`NodeConfig::load`].
pub(super) fn load(
    file: Option<&str>,
    env: &BTreeMap<String, String>,
    flags: &BTreeMap<String, String>,
) -> Result<NodeConfig, ConfigError> {
    let mut config = NodeConfig::default();
    let mut origins = BTreeMap::new();
    if let Some(text) = file {
        for (key, value) in &parse_file(text)? {
            let setting = Setting::named(key).ok_or_else(|| {
                ConfigError::new(
                    key.as_str(),
                    "is not a setting (an unknown key in the configuration file; \
                     docs/configuration.md lists the settings)",
                )
            })?;
            apply(
                &mut config,
                &mut origins,
                setting,
                Raw::Toml(value),
                Origin::File,
            )?;
        }
    }
    for (var, value) in env
        .iter()
        .filter(|(var, _)| var.starts_with(ENV_PREFIX) && !CLIENT_VARIABLES.contains(&var.as_str()))
    {
        let setting = Setting::for_env(var).ok_or_else(|| {
            ConfigError::new(
                var.as_str(),
                "names no setting (every HB_* variable must; \
                 docs/configuration.md lists them)",
            )
        })?;
        apply(
            &mut config,
            &mut origins,
            setting,
            Raw::Text(value),
            Origin::Env(setting.env),
        )?;
    }
    for (name, value) in flags {
        let setting = Setting::named(name)
            .ok_or_else(|| ConfigError::new(name.as_str(), "is not a setting (a flag)"))?;
        apply(
            &mut config,
            &mut origins,
            setting,
            Raw::Text(value),
            Origin::Flag(setting.flag),
        )?;
    }
    config.validate().map_err(|mut e| {
        if let Some(origin) = origins.get(e.setting.as_str()) {
            e.reason = format!("{} ({})", e.reason, origin.describe());
        }
        e
    })?;
    Ok(config)
}

/// See [`NodeConfig::to_toml`].
pub(super) fn to_toml(config: &NodeConfig) -> String {
    let mut out = String::from(
        "# The effective settings of hb serve \
         (defaults < configuration file < HB_* variables < flags).\n",
    );
    for setting in SETTINGS {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{} = {}", setting.name, setting.value(config));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hb_scheduler::SchedulingMode;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn none() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn flags_override_variables_override_the_file_override_defaults() {
        let file = "port = 1001\nhost = \"10.0.0.1\"\ndata_dir = \"/from/file\"\n";
        let env = map(&[("HB_PORT", "1002"), ("HB_HOST", "10.0.0.2")]);
        let flags = map(&[("port", "1003")]);
        let c = NodeConfig::load(Some(file), &env, &flags).expect("valid");
        assert_eq!(c.port, 1003, "the flag wins");
        assert_eq!(
            c.host.to_string(),
            "10.0.0.2",
            "the variable beats the file"
        );
        assert_eq!(
            c.data_dir,
            PathBuf::from("/from/file"),
            "the file beats the default"
        );
        assert_eq!(c.max_json_depth, 64, "the default stays");
        let c = NodeConfig::load(Some(file), &env, &none()).expect("valid");
        assert_eq!(c.port, 1002);
        let c = NodeConfig::load(Some(file), &none(), &none()).expect("valid");
        assert_eq!(c.port, 1001);
        let c = NodeConfig::load(None, &none(), &none()).expect("valid");
        assert_eq!(c, NodeConfig::default());
    }

    #[test]
    fn every_layer_reaches_every_kind_of_value() {
        let file = "require_signed = true\nscheduling_mode = \"aggressive\"\nprocess_cache_frequency = 5\n";
        let env = map(&[
            ("HB_ENABLE_TEST_DEVICES", "true"),
            ("HB_SCHEDULER_DEDUP", "signed-id"),
            ("HB_ARBITERS", "3"),
        ]);
        let flags = map(&[("test_device_panics", "true"), ("key_file", "/k")]);
        let c = NodeConfig::load(Some(file), &env, &flags).expect("valid");
        assert!(c.require_signed && c.enable_test_devices && c.test_device_panics);
        assert_eq!(c.scheduling_mode, SchedulingMode::Aggressive);
        assert_eq!(c.scheduler_dedup, hb_scheduler::DedupPolicy::SignedId);
        assert_eq!((c.process_cache_frequency, c.arbiters), (5, Some(3)));
        assert_eq!(c.key_path(), PathBuf::from("/k"));
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused_by_name() {
        let err = NodeConfig::load(Some("port = 1\nporrt = 2\n"), &none(), &none()).unwrap_err();
        assert_eq!(err.setting, "porrt", "{err}");
        let err = NodeConfig::load(
            Some("[scheduler]\nmode = \"aggressive\"\n"),
            &none(),
            &none(),
        )
        .unwrap_err();
        assert_eq!(err.setting, "scheduler", "tables are not settings: {err}");
    }

    #[test]
    fn an_unknown_hb_variable_is_refused_by_name_and_others_are_ignored() {
        let env = map(&[("HB_NODE", "http://127.0.0.1:1"), ("HOME", "/root")]);
        assert!(
            NodeConfig::load(None, &env, &none()).is_ok(),
            "a client's variable does not stop a node"
        );
        let env = map(&[("HB_PROT", "1"), ("HOME", "/root"), ("RUST_LOG", "debug")]);
        let err = NodeConfig::load(None, &env, &none()).unwrap_err();
        assert_eq!(err.setting, "HB_PROT", "{err}");
        let env = map(&[("HOME", "/root"), ("HBX", "1"), ("RUST_LOG", "debug")]);
        assert_eq!(
            NodeConfig::load(None, &env, &none()),
            Ok(NodeConfig::default())
        );
    }

    #[test]
    fn invalid_toml_names_the_file_and_the_line() {
        let err = NodeConfig::load(Some("port = 1\nhost = \n"), &none(), &none()).unwrap_err();
        assert_eq!(err.setting, "config");
        assert!(err.reason.contains("line 2"), "{err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }

    #[test]
    fn a_refused_value_names_its_setting_and_where_it_was_set() {
        let cases = [
            (
                NodeConfig::load(Some("process_cache_frequency = 0"), &none(), &none()),
                "process_cache_frequency",
                "configuration file",
            ),
            (
                NodeConfig::load(None, &map(&[("HB_PROCESS_CACHE_FREQUENCY", "0")]), &none()),
                "process_cache_frequency",
                "HB_PROCESS_CACHE_FREQUENCY",
            ),
            (
                NodeConfig::load(None, &none(), &map(&[("process_cache_frequency", "0")])),
                "process_cache_frequency",
                "--process-cache-frequency",
            ),
            (
                NodeConfig::load(Some("port = \"8080\""), &none(), &none()),
                "port",
                "configuration file",
            ),
            (
                NodeConfig::load(None, &map(&[("HB_PORT", "http")]), &none()),
                "port",
                "HB_PORT",
            ),
            (
                NodeConfig::load(None, &none(), &map(&[("host", "localhost")])),
                "host",
                "--host",
            ),
            (
                NodeConfig::load(None, &map(&[("HB_SCHEDULING_MODE", "eager")]), &none()),
                "scheduling_mode",
                "local_confirmation",
            ),
            (
                NodeConfig::load(Some("test_device_panics = true"), &none(), &none()),
                "test_device_panics",
                "enable_test_devices",
            ),
        ];
        for (result, setting, mentioned) in cases {
            let err = result.unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
            assert!(err.to_string().contains(mentioned), "{err}");
        }
    }

    #[test]
    fn a_file_value_overridden_later_is_still_checked() {
        let env = map(&[("HB_PORT", "80")]);
        let err = NodeConfig::load(Some("port = \"x\""), &env, &none()).unwrap_err();
        assert_eq!(err.setting, "port");
    }

    #[test]
    fn the_printed_settings_load_back_to_the_same_settings() {
        let env = map(&[
            ("HB_PORT", "0"),
            ("HB_HOST", "::"),
            ("HB_SCHEDULING_MODE", "disabled"),
            ("HB_LUA_MAX_MEMORY_BYTES", "1048576"),
            ("HB_SCHEDULER_LOCATION_URL", "https://hb.example"),
        ]);
        let c = NodeConfig::load(None, &env, &none()).expect("valid");
        let printed = c.to_toml();
        assert_eq!(
            printed.lines().filter(|l| !l.starts_with('#')).count(),
            SETTINGS.len()
        );
        let again = NodeConfig::load(Some(&printed), &none(), &none()).expect("loads back");
        assert_eq!(again.to_toml(), printed);
        assert_eq!(again.scheduling_mode, SchedulingMode::Disabled);
        assert_eq!(again.location_url(), "https://hb.example");
        assert_eq!(again.key_path(), c.key_path());
    }
}
