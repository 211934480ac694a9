//! What the `hb bench` tests share: reading a `--record` file and checking
//! every recorded event against a running node.

#![allow(dead_code)] // each test file uses its own part

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hb_message::Id;
use hb_node::client::{Client, SlotRange};

/// SIGTERM to a running `hb bench` (it stops and reports); its exit
/// status and what it printed on stdout.
pub fn terminate(mut bench: std::process::Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &bench.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let mut out = String::new();
    bench
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("the report");
    let status = bench.wait().expect("hb bench exits");
    (status, out)
}

/// The events of a record file.
#[derive(Debug, Default)]
pub struct Records {
    /// Spawned processes.
    pub spawned: Vec<String>,
    /// (pid, slot, message ID) of each acknowledged schedule.
    pub scheduled: Vec<(String, u64, String)>,
    /// (pid, slot, state ID) of each answered compute.
    pub computed: Vec<(String, u64, String)>,
}

/// Reads `path`'s JSON lines.
pub fn records(path: &Path) -> Records {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut r = Records::default();
    for line in text.lines() {
        let j: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"));
        let text = |k: &str| {
            j[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {j}"))
                .to_string()
        };
        let slot = || j["slot"].as_u64().unwrap_or_else(|| panic!("slot in {j}"));
        match j["event"].as_str() {
            Some("spawned") => r.spawned.push(text("pid")),
            Some("scheduled") => r.scheduled.push((text("pid"), slot(), text("message"))),
            Some("computed") => r.computed.push((text("pid"), slot(), text("state"))),
            _ => panic!("an unknown event: {j}"),
        }
    }
    r
}

/// Every slot of `pid`'s schedule → id(body, all).
pub async fn schedule_bodies(client: &Client, pid: &Id) -> BTreeMap<u64, String> {
    let mut bodies = BTreeMap::new();
    let mut from = 0;
    loop {
        let page = client
            .schedule_page(
                pid,
                SlotRange {
                    from: Some(from),
                    to: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("the schedule of {pid}: {e}"));
        for (slot, a) in &page.assignments {
            let body = a
                .get("body")
                .and_then(|b| b.as_message())
                .unwrap_or_else(|| panic!("slot {slot} of {pid} has a body"));
            let id = body.id_all().expect("a body has an ID").to_human();
            bodies.insert(*slot, id);
        }
        match page.assignments.keys().next_back() {
            Some(last) if page.continues => from = last + 1,
            _ => return bodies,
        }
    }
}

/// What [`check_records`] checked.
#[derive(Debug, Default)]
pub struct Checked {
    /// Scheduled events found at their slot with their message.
    pub scheduled: usize,
    /// Distinct (pid, slot, state) computed events recomputed identically.
    pub computed: usize,
}

/// Asserts every `scheduled` event is in its process's schedule at its
/// slot with the same message, and every `computed` state recomputes to
/// the same ID at the same slot.
pub async fn check_records(url: &str, r: &Records) -> Checked {
    let client = Client::new(url).expect("a node URL");
    let mut bodies: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for (pid, _, _) in &r.scheduled {
        if !bodies.contains_key(pid) {
            let id = Id::parse(pid).expect("a process ID");
            bodies.insert(pid.clone(), schedule_bodies(&client, &id).await);
        }
    }
    let mut checked = Checked::default();
    for (pid, slot, message) in &r.scheduled {
        assert_eq!(
            bodies[pid].get(slot),
            Some(message),
            "acknowledged message {message} is at slot {slot} of {pid}"
        );
        checked.scheduled += 1;
    }
    let distinct: BTreeSet<&(String, u64, String)> = r.computed.iter().collect();
    for (pid, slot, state) in distinct {
        let id = Id::parse(pid).expect("a process ID");
        let answer = client
            .compute(&id, *slot, "")
            .await
            .unwrap_or_else(|e| panic!("compute {pid} at {slot}: {e}"));
        let again = answer
            .value
            .as_message()
            .and_then(|m| m.id_all().ok())
            .map(|i| i.to_human());
        assert_eq!(
            again.as_ref(),
            Some(state),
            "the state of {pid} at slot {slot} recomputes identically"
        );
        assert_eq!(
            answer.slot,
            Some(*slot as i64),
            "{pid} answered at slot {slot}"
        );
        checked.computed += 1;
    }
    checked
}
