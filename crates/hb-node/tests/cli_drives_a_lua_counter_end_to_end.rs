//! SPEC §7.6 with the real `hb` binary against a real node (`hb serve` on a
//! temporary data dir): `keygen`, `spawn` of the Lua counter, three `send
//! -t Action=Inc`, `slot`, `compute` and `now` with sub-paths, `dry-run`,
//! `status`, `schedule` in both formats, and `verify-chain` over HTTP and
//! then on the stopped node's data dir. Text by default; every `--json`
//! output parses as JSON.

mod cli_support;

use cli_support::{counter_lua, hb, hb_in, Serve};

#[test]
fn a_lua_counter_is_spawned_driven_read_and_verified_through_hb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let data_dir = work.join("hb-data");
    let node = Serve::start(&data_dir);
    let url = node.url.clone();
    let lua = counter_lua();
    let lua = lua.to_str().expect("a UTF-8 path");
    let at = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--node", url.as_str()]);
        hb(work, &all)
    };

    // keygen writes ./hb-client.key, private, and prints its address.
    let address = hb(work, &["keygen"]).ok().to_string();
    assert!(hb_message::is_id_shaped(&address), "{address}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.join("hb-client.key"))
            .expect("the key file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the client key is private");
    }
    assert_eq!(hb(work, &["keygen"]).ok(), address, "the same key again");
    let keygen = hb(work, &["keygen", "--json"]).json();
    assert_eq!(keygen["address"], address.as_str());

    // spawn prints the process ID; send prints each slot.
    let pid = at(&["spawn", "--lua", lua]).ok().to_string();
    assert!(hb_message::is_id_shaped(&pid), "{pid}");
    for expected in 1..=3 {
        let slot = at(&["send", &pid, "-t", "Action=Inc"]);
        assert_eq!(slot.ok(), expected.to_string());
    }
    assert_eq!(at(&["slot", &pid]).ok(), "3");

    // compute at a slot, and now, with sub-paths into the state.
    assert_eq!(
        at(&["compute", &pid, "--slot", "3", "state/count"]).ok(),
        "3"
    );
    assert_eq!(
        at(&["compute", &pid, "--slot", "1", "state/count"]).ok(),
        "1"
    );
    assert_eq!(at(&["now", &pid, "state/count"]).ok(), "3");
    let state = at(&["compute", &pid, "--slot", "2", "--json"]).json();
    assert_eq!(state["state"]["count"], 2);
    assert_eq!(state["at-slot"], 2);
    let now = at(&["now", &pid, "--json"]).json();
    assert_eq!(now["at-slot"], 3);

    // dry-run prints the output of `Get` and schedules nothing.
    assert_eq!(at(&["dry-run", &pid, "-t", "Action=Get"]).ok(), "3");
    let dry = at(&["dry-run", &pid, "-t", "Action=Get", "--json"]).json();
    assert_eq!(dry["results"]["output"], "3\n");
    assert_eq!(dry["at-slot"], 3);
    assert_eq!(at(&["slot", &pid]).ok(), "3", "a dry-run schedules nothing");

    // status: of the process, and of the node.
    let status = at(&["status", &pid]);
    assert!(status.ok().contains("scheduled-slot  3"), "{status:?}");
    let status = at(&["status", &pid, "--json"]).json();
    assert_eq!(
        (&status["process"], &status["scheduled-slot"]),
        (&serde_json::json!(pid), &serde_json::json!(3))
    );
    let node_status = at(&["status"]);
    assert!(node_status.ok().contains(&pid), "{node_status:?}");
    assert!(node_status.ok().contains(&node.address), "{node_status:?}");
    let node_status = at(&["status", "--json"]).json();
    assert_eq!(node_status["processes"], serde_json::json!([pid]));
    let slot = at(&["slot", &pid, "--json"]).json();
    assert_eq!(slot["current"], 3);

    // The schedule: one line per slot, or the node's formats as JSON.
    let text = at(&["schedule", &pid]);
    let lines: Vec<&str> = text.ok().lines().collect();
    assert_eq!(lines.len(), 4, "{text:?}");
    assert!(lines[0].contains("type=Process"), "{text:?}");
    assert!(
        lines[1..].iter().all(|l| l.contains("action=Inc")),
        "{text:?}"
    );
    let native = at(&["schedule", &pid, "--json"]).json();
    assert_eq!(native["process"], pid.as_str());
    let assignments = native["assignments"].as_object().expect("assignments");
    assert_eq!(assignments.len(), 4);
    assert_eq!(assignments["3"]["body"]["action"], "Inc");
    let aos2 = at(&[
        "schedule", &pid, "--format", "aos-2", "--from", "1", "--json",
    ])
    .json();
    let edges = aos2["edges"].as_array().expect("edges");
    let cursors: Vec<_> = edges.iter().map(|e| e["cursor"].clone()).collect();
    assert_eq!(cursors, [1, 2, 3].map(|c| serde_json::json!(c)));
    let tags = &edges[0]["node"]["message"]["Tags"];
    assert!(
        tags.as_array()
            .expect("tags")
            .contains(&serde_json::json!({"name": "Action", "value": "Inc"})),
        "{tags}"
    );
    assert_eq!(aos2["page_info"]["has_next_page"], false);
    let aos2_text = at(&["schedule", &pid, "--format", "aos-2", "--to", "1"]);
    assert_eq!(aos2_text.ok().lines().count(), 2, "{aos2_text:?}");

    // send --data from stdin, as JSON; the data travels in the message.
    let mut args = vec!["send", &pid, "-t", "Action=Inc", "--data", "-", "--json"];
    args.extend(["--node", url.as_str()]);
    let sent = hb_in(work, &args, b"hello\n").json();
    assert_eq!(sent["slot"], 4);
    assert_eq!(sent["assignment"]["body"]["data"], "hello\n");
    assert_eq!(sent["process"], pid.as_str());
    assert_eq!(at(&["now", &pid, "state/count"]).ok(), "4");

    // verify-chain over HTTP, then on the stopped node's store.
    let verified = at(&["verify-chain", &pid]);
    assert!(
        verified
            .ok()
            .starts_with(&format!("ok: process {pid}: 5 slots verified")),
        "{verified:?}"
    );
    assert!(verified.ok().ends_with(&node.address), "{verified:?}");
    let verified = at(&["verify-chain", &pid, "--json"]).json();
    assert_eq!(
        (&verified["valid"], &verified["slots"], &verified["signer"]),
        (
            &serde_json::json!(true),
            &serde_json::json!(5),
            &serde_json::json!(node.address)
        )
    );
    let node_address = node.address.clone();
    assert_eq!(node.stop(), 0, "SIGTERM stops the node cleanly");
    let data_dir = data_dir.to_str().expect("a UTF-8 path");
    let stored = hb(work, &["verify-chain", &pid, "--data-dir", data_dir]);
    assert!(stored.ok().contains("5 slots verified"), "{stored:?}");
    let stored = hb(
        work,
        &["verify-chain", &pid, "--data-dir", data_dir, "--json"],
    )
    .json();
    assert_eq!(stored["signer"], node_address.as_str());
}

#[test]
fn two_spawns_of_one_script_are_two_processes_and_sends_are_distinct_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let node = Serve::start(&work.join("hb-data"));
    let lua = counter_lua();
    let lua = lua.to_str().expect("a UTF-8 path");
    let spawn = ["spawn", "--lua", lua, "--node", node.url.as_str()];
    let a = hb(work, &spawn).ok().to_string();
    let b = hb(work, &spawn).ok().to_string();
    assert_ne!(a, b);
    let send = |pid: &str| {
        hb(
            work,
            &[
                "send",
                pid,
                "-t",
                "Action=Inc",
                "--json",
                "--node",
                &node.url,
            ],
        )
        .json()
    };
    let (one, two) = (send(&a), send(&a));
    assert_ne!(
        one["message"], two["message"],
        "each send has its own anchor"
    );
    // A tag may fix the anchor (and so the message ID).
    let fixed = |pid: &str| {
        hb(
            work,
            &[
                "send",
                pid,
                "-t",
                "Action=Inc",
                "-t",
                "anchor=one",
                "--json",
                "--node",
                &node.url,
            ],
        )
        .json()
    };
    assert_eq!(fixed(&b)["message"], fixed(&b)["message"]);
    // Another execution device (no script needed), and extra tags on the
    // definition.
    let other = hb(
        work,
        &[
            "spawn",
            "--execution-device",
            "stack@1.0",
            "-t",
            "Name=plain",
            "--json",
            "--node",
            &node.url,
        ],
    )
    .json();
    let body = &other["assignment"]["body"];
    assert_eq!(body["execution-device"], "stack@1.0");
    assert_eq!(body["name"], "plain");
    assert_eq!(other["slot"], 0);
}
