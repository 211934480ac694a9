//! aoconnect 0.0.98, unmodified from npm, in `legacy` mode with `MU_URL` =
//! a node on 127.0.0.1 (SPEC §10.6): it spawns a process and sends it three
//! messages (raw ANS-104 items posted to `POST /`), then reads the schedule
//! back through its own SU readers (`getMessages`: `GET /{pid}`;
//! `getMessageById`: `GET /{id}?process-id=`; `getLastSlot`), after
//! locating the scheduler through the loopback stand-in gateway. Once with
//! aoconnect's own RSA signer (type-1 items), once with an ed25519 signer
//! (type 2). The node runs on sled in a temporary directory.
//!
//! The node's view is checked independently of the legacy API: the
//! scheduler's current slot of the process.
//!
//! `tests/aoconnect/legacy.mjs` is the client; these tests skip, saying
//! why, only where `node` or its installed packages are missing.

mod aoconnect_support;
mod http_support;

use aoconnect_support::gateway::{Gateway, Lookup};
use aoconnect_support::{item_id, requests_to, run, skip, text};
use serde_json::Value;

/// The module the process names (the stand-in knows its tags).
const MODULE: &str = "hb-aoconnect-legacy-test-module-0000000000";
const MESSAGES: usize = 3;

#[actix_rt::test]
async fn legacy_mode_with_an_rsa_signer_spawns_messages_and_reads_the_schedule() {
    legacy_flow("rsa", 1).await;
}

#[actix_rt::test]
async fn legacy_mode_with_an_ed25519_signer_spawns_messages_and_reads_the_schedule() {
    legacy_flow("ed25519", 2).await;
}

async fn legacy_flow(signer: &str, signature_type: u64) {
    if skip() {
        return;
    }
    let node = http_support::start_sled();
    let address = node.scheduler().address().to_string();
    let gateway = Gateway::start(Some(node.url()));
    gateway.add_module(MODULE, "module-owner");
    gateway.add_scheduler(&address, &node.url());

    let report = run(
        "legacy.mjs",
        vec![
            ("HB_URL", node.url()),
            ("HB_GATEWAY_URL", gateway.url().to_string()),
            ("HB_AO_MODULE", MODULE.to_string()),
            ("HB_AO_SIGNER", signer.to_string()),
        ],
    )
    .await;

    // What aoconnect sent: the process, then the messages, as raw items of
    // the signer's type posted to the node's root.
    assert_eq!(report["signature_type"].as_u64(), Some(signature_type));
    assert_eq!(text(&report, "/scheduler"), address, "GET / names the node");
    let posted: Vec<&Value> = requests_to(&report, "node")
        .into_iter()
        .filter(|r| r["method"] == "POST")
        .collect();
    assert_eq!(posted.len(), 1 + MESSAGES, "{report}");
    for r in &posted {
        assert_eq!(r["path"], "/", "{r}");
        assert_eq!(r["item"]["signature_type"].as_u64(), Some(signature_type));
    }
    let pid = text(&report, "/process");
    assert_eq!(
        item_id(posted[0]),
        Some(pid),
        "the process ID is the item ID"
    );
    let messages: Vec<&str> = report["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let sent: Vec<&str> = posted[1..].iter().filter_map(|r| item_id(r)).collect();
    assert_eq!(messages, sent, "message IDs are the items' IDs");

    // The schedule as aoconnect read it: the process at nonce 0, then every
    // message exactly once, in the order sent, at nonces 1..=3, on one page.
    let schedule = &report["schedule"];
    assert_eq!(schedule["has_next_page"], false, "{schedule}");
    let edges = schedule["edges"].as_array().cloned().unwrap_or_default();
    let listed: Vec<(&str, &str)> = edges
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap_or("?"),
                e["nonce"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let mut expected = vec![(pid, "0".to_string())];
    for (i, m) in messages.iter().enumerate() {
        expected.push((*m, (i + 1).to_string()));
    }
    let expected: Vec<(&str, &str)> = expected.iter().map(|(m, n)| (*m, n.as_str())).collect();
    assert_eq!(listed, expected, "{schedule}");
    assert_eq!(edges[0]["type"], "Process");
    for e in &edges {
        assert_eq!(e["process"].as_str(), Some(pid), "{e}");
    }
    let cursors: Vec<u64> = edges
        .iter()
        .map(|e| {
            e["cursor"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursors (timestamps) strictly increase: {cursors:?}"
    );
    let last = messages[MESSAGES - 1];
    assert_eq!(text(&report, "/by_id/message"), last);
    assert_eq!(text(&report, "/by_id/nonce"), MESSAGES.to_string());
    assert_eq!(text(&report, "/last_slot"), MESSAGES.to_string());

    // The node agrees, by its own API.
    let current = http_support::current(&node, pid).await;
    assert_eq!(current, Some(MESSAGES as i64));

    // The look-ups: the module's tags (spawn), the process's tags and its
    // scheduler's location (locating the SU, once: aoconnect caches it);
    // the only request off loopback was aoconnect's su-router probe, which
    // the script refused without sending.
    let lookups: Vec<Lookup> = gateway
        .received()
        .into_iter()
        .map(|r| r.lookup.unwrap_or_else(|e| panic!("refused look-up: {e}")))
        .collect();
    assert_eq!(
        lookups,
        [
            Lookup::ByIds {
                ids: vec![MODULE.to_string()],
                filters: vec![]
            },
            Lookup::ByIds {
                ids: vec![pid.to_string()],
                filters: vec![aoconnect_support::gateway::TagFilter {
                    name: "Data-Protocol".into(),
                    values: vec!["ao".into()]
                }]
            },
            Lookup::SchedulerLocation { owner: address },
        ]
    );
    let refused = requests_to(&report, "refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://su-router.ao-testnet.xyz")),
        "{refused:?}"
    );
    gateway.stop().await;
    node.shutdown().await;
}
