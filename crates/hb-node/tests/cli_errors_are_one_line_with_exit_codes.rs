//! SPEC §7.6: every `hb` error is one line on stderr (`hb: <code>:
//! <detail>`) and nothing on stdout; bad usage exits 2 (checked before any
//! request: these runs name a node that is not there), a failure exits 1
//! with the node's own error code.

mod cli_support;

use cli_support::{counter_lua, hb, Serve};

/// A node URL where nothing listens.
const NOWHERE: &str = "http://127.0.0.1:1";

#[test]
fn bad_usage_exits_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let pid = hb_message::Id::hash(b"p").to_human();
    let lua = counter_lua();
    let lua = lua.to_str().expect("a UTF-8 path");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["send", &pid, "-t", "Inc"], "hb: usage: "),
        (vec!["send", &pid, "-t", "=x"], "hb: usage: "),
        (vec!["send", "not-a-pid", "-t", "a=b"], "hb: usage: "),
        (
            vec!["send", &pid, "-t", "a=1", "-t", "A=2"],
            "hb: invalid-tag: ",
        ),
        (vec!["send", &pid, "-t", "target=x"], "hb: invalid-tag: "),
        (
            vec!["send", &pid, "--data", "/no/such/file"],
            "hb: unreadable-file: ",
        ),
        (
            vec!["spawn", "--lua", "/no/such/file.lua"],
            "hb: unreadable-file: ",
        ),
        (vec!["spawn"], "hb: missing-script: "),
        (vec!["compute", &pid], "hb: usage: "),
        (vec!["compute", &pid, "--slot", "x"], "hb: usage: "),
        (vec!["schedule", &pid, "--format", "xml"], "hb: usage: "),
        (
            vec!["verify-chain", &pid, "--scheduler", "short"],
            "hb: usage: ",
        ),
        (
            vec!["verify-chain", &pid, "--data-dir", "/no/such/dir"],
            "hb: unreadable-file: ",
        ),
        (vec!["no-such-command"], "hb: usage: "),
    ];
    for (args, prefix) in cases {
        let mut all = args.clone();
        if args[0] != "no-such-command" && !args.contains(&"--data-dir") {
            all.extend(["--node", NOWHERE]);
        }
        hb(work, &all).fails(2, prefix);
    }
    // A malformed URL and a malformed key file are bad usage too.
    hb(work, &["slot", &pid, "--node", "ftp://x"]).fails(2, "hb: invalid-url: ");
    std::fs::write(work.join("bad.key"), "not a key\n").expect("write");
    hb(
        work,
        &[
            "send",
            &pid,
            "-t",
            "a=b",
            "--key-file",
            "bad.key",
            "--node",
            NOWHERE,
        ],
    )
    .fails(2, "hb: invalid-key-file: ");
    hb(work, &["keygen", "--key-file", "bad.key"]).fails(2, "hb: invalid-key-file: ");
    // A spawn that fails before the request leaves no process behind it.
    hb(
        work,
        &["spawn", "--lua", lua, "-t", "type=x", "--node", NOWHERE],
    )
    .fails(2, "hb: invalid-tag: ");
}

#[test]
fn failures_exit_1_with_the_nodes_error_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let data_dir = work.join("hb-data");
    let node = Serve::start(&data_dir);
    let url = node.url.as_str();
    let unknown = hb_message::Id::hash(b"nobody").to_human();

    hb(work, &["slot", &unknown, "--node", NOWHERE]).fails(1, "hb: unreachable: ");
    // base64url IDs may begin with `-`: still a process ID, not a flag.
    let dashed = format!("-{}", &unknown[1..]);
    hb(work, &["slot", &dashed, "--json", "--node", NOWHERE]).fails(1, "hb: unreachable: ");
    hb(work, &["slot", &unknown, "--node", url]).fails(1, "hb: unknown-process: ");
    hb(work, &["status", &unknown, "--node", url]).fails(1, "hb: unknown-process: ");
    hb(work, &["send", &unknown, "-t", "a=b", "--node", url]).fails(1, "hb: unknown-process: ");
    hb(work, &["verify-chain", &unknown, "--node", url]).fails(1, "hb: unknown-process: ");

    let lua = counter_lua();
    let pid = hb(
        work,
        &[
            "spawn",
            "--lua",
            lua.to_str().expect("UTF-8"),
            "--node",
            url,
        ],
    )
    .ok()
    .to_string();
    hb(work, &["compute", &pid, "--slot", "9", "--node", url]).fails(1, "hb: slot-not-available: ");
    hb(
        work,
        &[
            "spawn",
            "--lua",
            lua.to_str().expect("UTF-8"),
            "--execution-device",
            "nope@9",
            "--node",
            url,
        ],
    )
    .fails(1, "hb: unknown-device: ");
    // The store of a running node is locked: a failure, not bad usage.
    hb(
        work,
        &[
            "verify-chain",
            &pid,
            "--data-dir",
            data_dir.to_str().expect("UTF-8"),
        ],
    )
    .fails(1, "hb: store-error: ");
    assert_eq!(node.stop(), 0);
    hb(
        work,
        &[
            "verify-chain",
            &unknown,
            "--data-dir",
            data_dir.to_str().expect("UTF-8"),
        ],
    )
    .fails(1, "hb: unknown-process: ");
}
