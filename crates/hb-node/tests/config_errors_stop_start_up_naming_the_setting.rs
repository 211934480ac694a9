//! SPEC §7.1: an invalid configuration stops `hb serve` before anything
//! starts, with exit code 2 and one line on stderr naming the setting: an
//! unknown key in the file, an `HB_*` variable that names no setting, a
//! value of the wrong type or spelling or out of range (from the file, a
//! variable or a flag), an unreadable or invalid file, a corrupt key, a
//! data dir that cannot be created. No data dir is created.

mod config_support;

use std::path::Path;

use config_support::hb;

/// One way to get the configuration wrong.
struct Case {
    what: &'static str,
    file: Option<&'static str>,
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    setting: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "an unknown key in the file",
        file: Some("port = 0\nporrt = 1\n"),
        env: &[],
        args: &[],
        setting: "porrt",
    },
    Case {
        what: "a setting SPEC names that hb serve does not take yet",
        file: Some("register_location_on_start = true\n"),
        env: &[],
        args: &[],
        setting: "register_location_on_start",
    },
    Case {
        what: "an HB_ variable that names no setting",
        file: None,
        env: &[("HB_PROT", "0")],
        args: &[],
        setting: "HB_PROT",
    },
    Case {
        what: "an unknown scheduling mode",
        file: None,
        env: &[],
        args: &["--scheduling-mode", "eager"],
        setting: "scheduling_mode",
    },
    Case {
        what: "a bad host address",
        file: None,
        env: &[("HB_HOST", "localhost:80")],
        args: &[],
        setting: "host",
    },
    Case {
        what: "a port that is not a number",
        file: None,
        env: &[],
        args: &["--port", "http"],
        setting: "port",
    },
    Case {
        what: "a port of the wrong TOML type",
        file: Some("port = \"8734\"\n"),
        env: &[],
        args: &[],
        setting: "port",
    },
    Case {
        what: "process_cache_frequency 0",
        file: Some("process_cache_frequency = 0\n"),
        env: &[],
        args: &[],
        setting: "process_cache_frequency",
    },
    Case {
        what: "test_device_panics without enable_test_devices",
        file: None,
        env: &[("HB_TEST_DEVICE_PANICS", "true")],
        args: &[],
        setting: "test_device_panics",
    },
    Case {
        what: "a file that is not TOML",
        file: Some("port = 0\nhost = = \"x\"\n"),
        env: &[],
        args: &[],
        setting: "config",
    },
];

/// Runs `hb serve` in `dir` (data dir `dir/data`) and checks the refusal.
fn assert_refused(dir: &Path, what: &str, args: &[String], env: &[(&str, &str)], setting: &str) {
    let out = hb()
        .current_dir(dir)
        .args(["serve", "--data-dir"])
        .arg(dir.join("data"))
        .args(args)
        // Were the node to start anyway, on any free port.
        .env("HB_PORT", "0")
        .envs(env.iter().copied())
        .output()
        .expect("hb runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("hb: setting `{setting}`: ")),
        "{what}: names {setting}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{what}: nothing started");
    assert!(!dir.join("data").exists(), "{what}: no data dir created");
    assert!(!dir.join("hb-data").exists(), "{what}: no default data dir");
}

#[test]
fn each_invalid_setting_exits_2_naming_it_and_creates_nothing() {
    for case in CASES {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut args: Vec<String> = case.args.iter().map(|a| a.to_string()).collect();
        if let Some(text) = case.file {
            let file = dir.path().join("hb.toml");
            std::fs::write(&file, text).expect("written");
            args.push("--config".into());
            args.push(file.to_string_lossy().into_owned());
        }
        assert_refused(dir.path(), case.what, &args, case.env, case.setting);
    }
}

#[test]
fn an_unreadable_config_file_exits_2() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let missing = dir.path().join("missing.toml");
    let args = vec![
        "--config".to_string(),
        missing.to_string_lossy().into_owned(),
    ];
    assert_refused(dir.path(), "a missing file", &args, &[], "config");
}

#[test]
fn a_corrupt_key_file_exits_2_naming_key_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let key = dir.path().join("node.key");
    std::fs::write(&key, "not a key\n").expect("written");
    let args = vec!["--key-file".to_string(), key.to_string_lossy().into_owned()];
    assert_refused(dir.path(), "a corrupt key", &args, &[], "key_file");
}

#[test]
fn a_data_dir_that_cannot_be_created_exits_2_naming_data_dir() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "in the way").expect("written");
    let out = hb()
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(file.join("data"))
        .output()
        .expect("hb runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("hb: setting `data_dir`: "), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing started");
}
