//! `hb serve --print-config` (SPEC §7.1): the effective settings as TOML,
//! with flags over `HB_*` variables over the `--config` file over the
//! defaults; it starts and creates nothing, never shows key material, and
//! its output loads back as a configuration file. Every setting is taken
//! as a variable and as a flag.

mod config_support;

use std::path::Path;
use std::process::Output;

use config_support::hb;
use hb_node::config::ValueKind;
use hb_node::SETTINGS;

fn stdout(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse(printed: &str) -> toml::Table {
    toml::from_str(printed).expect("--print-config prints TOML")
}

/// `hb serve --print-config` in `dir` with these arguments.
fn print_config(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = hb()
        .current_dir(dir)
        .arg("serve")
        .args(args)
        .arg("--print-config")
        .envs(env.iter().copied())
        .output()
        .expect("hb runs");
    stdout(&out)
}

#[test]
fn flags_override_variables_override_the_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("hb.toml");
    std::fs::write(
        &file,
        "port = 1001\nhost = \"10.0.0.1\"\nmax_json_depth = 10\nrequire_signed = true\n\
         data_dir = \"never-created\"\n",
    )
    .expect("written");
    let file = file.to_string_lossy().into_owned();
    let env = [("HB_PORT", "1002"), ("HB_HOST", "10.0.0.2")];

    let only_file = parse(&print_config(dir.path(), &["--config", &file], &[]));
    assert_eq!(only_file["port"].as_integer(), Some(1001));
    assert_eq!(only_file["host"].as_str(), Some("10.0.0.1"));

    let file_and_env = parse(&print_config(dir.path(), &["--config", &file], &env));
    assert_eq!(file_and_env["port"].as_integer(), Some(1002));
    assert_eq!(file_and_env["host"].as_str(), Some("10.0.0.2"));

    let all = parse(&print_config(
        dir.path(),
        &[
            "--config",
            &file,
            "--port=1003",
            "--require-signed",
            "false",
        ],
        &env,
    ));
    assert_eq!(all["port"].as_integer(), Some(1003), "the flag wins");
    assert_eq!(all["host"].as_str(), Some("10.0.0.2"), "the variable stays");
    assert_eq!(
        all["max_json_depth"].as_integer(),
        Some(10),
        "the file stays"
    );
    assert_eq!(all["require_signed"].as_bool(), Some(false));
    assert_eq!(
        all["max_body_bytes"].as_integer(),
        Some(10_485_760),
        "a default"
    );
    assert_eq!(all["enable_test_devices"].as_bool(), Some(false));
    assert!(
        !dir.path().join("never-created").exists(),
        "--print-config creates no data dir"
    );
}

#[test]
fn the_printed_settings_hold_no_key_and_load_back() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let key_file = dir.path().join("node.key");
    hb_message::NodeKey::load_or_create(&key_file).expect("a key");
    let key_text = std::fs::read_to_string(&key_file).expect("the key file");
    let seed = key_text.lines().nth(1).expect("the seed line").trim();
    let key_arg = key_file.to_string_lossy().into_owned();
    let printed = print_config(
        dir.path(),
        &["--key-file", &key_arg, "--scheduling-mode", "aggressive"],
        &[("HB_ENABLE_TEST_DEVICES", "true")],
    );
    assert!(!printed.contains(seed), "no key material");
    assert_eq!(parse(&printed)["key_file"].as_str(), Some(key_arg.as_str()));
    assert!(!printed.contains("listening on"), "nothing started");

    let copy = dir.path().join("printed.toml");
    std::fs::write(&copy, &printed).expect("written");
    let again = print_config(dir.path(), &["--config", &copy.to_string_lossy()], &[]);
    assert_eq!(again, printed);
}

#[test]
fn every_setting_is_taken_as_a_variable_and_as_a_flag() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Values other than the defaults, valid together.
    let value = |name: &str, kind: ValueKind| -> String {
        match (name, kind) {
            ("host", _) => "10.1.2.3".into(),
            ("data_dir", _) => "other-data".into(),
            ("key_file", _) => "other.key".into(),
            ("scheduling_mode", _) => "remote_confirmation".into(),
            ("chain_tip", _) => "local".into(),
            ("scheduler_dedup", _) => "signed-id".into(),
            ("scheduler_location_url", _) => "https://hb.example".into(),
            ("max_json_depth", _) => "7".into(),
            // A cluster's settings, valid together (SPEC §11.4).
            ("store", _) => "postgres".into(),
            ("postgres_url", _) => "postgres://hb@db.example:5432/hb".into(),
            ("scheduler_key_file", _) => "scheduler.key".into(),
            ("node_id", _) => "node-3".into(),
            ("advertised_url", _) => "http://10.1.2.3:3".into(),
            ("lease_ttl_ms", _) => "1234".into(),
            ("cluster_routing", _) => "redirect".into(),
            (_, ValueKind::Boolean) => {
                let default = SETTINGS.iter().find(|s| s.name == name).map(|s| s.default);
                if default == Some("true") {
                    "false"
                } else {
                    "true"
                }
                .into()
            }
            (_, _) => "3".into(),
        }
    };
    let values: Vec<(&str, &str, &str, String)> = SETTINGS
        .iter()
        .map(|s| (s.name, s.env, s.flag, value(s.name, s.kind)))
        .collect();
    let defaults = parse(&print_config(dir.path(), &[], &[]));
    let env: Vec<(&str, &str)> = values.iter().map(|(_, e, _, v)| (*e, v.as_str())).collect();
    let from_env = print_config(dir.path(), &[], &env);
    let mut flags = Vec::new();
    for (_, _, flag, v) in &values {
        flags.push(*flag);
        flags.push(v.as_str());
    }
    let from_flags = print_config(dir.path(), &flags, &[]);
    assert_eq!(from_env, from_flags);
    let set = parse(&from_env);
    for (name, _, _, v) in &values {
        let shown = match &set[*name] {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(&shown, v, "{name} was taken");
        if *name != "chain_tip" {
            // (`local` is the only chain-tip source.)
            assert_ne!(
                set[*name], defaults[*name],
                "{name} differs from its default"
            );
        }
    }

    let help = hb().args(["serve", "--help"]).output().expect("hb runs");
    let help = stdout(&help);
    for s in SETTINGS {
        assert!(help.contains(s.flag), "--help shows {}", s.flag);
        assert!(help.contains(s.env), "--help names {}", s.env);
    }
}
