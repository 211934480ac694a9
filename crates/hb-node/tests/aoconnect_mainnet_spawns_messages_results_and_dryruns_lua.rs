//! aoconnect 0.0.98, unmodified from npm, in `mainnet` mode with `URL` = a
//! node on 127.0.0.1 (SPEC §10.6): it spawns the Lua counter of
//! `tests/aoconnect/counter.lua` (an `execution-device: lua@5.3a` tag
//! replacing aoconnect's `genesis-wasm@1.0`, the script as the item's
//! data) through `POST /push`, sends it three `Inc` messages through
//! `POST /{pid}~process@1.0/push`, reads `result` by slot and by message
//! ID, dry-runs `Get`, `Inc` and `Get` again, and reads `results`. Once with
//! aoconnect's own RSA signer (type-1 items), once with an ed25519 signer
//! (type 2). The node runs on sled in a temporary directory.
//!
//! The node's view is checked independently of the mainnet surface: the
//! scheduler's current slot, and the counter in the computed state.
//!
//! `tests/aoconnect/mainnet.mjs` is the client; these tests skip, saying
//! why, only where `node` or its installed packages are missing.

mod aoconnect_support;
mod http_support;

use aoconnect_support::gateway::Gateway;
use aoconnect_support::{item_id, requests_to, run, skip, text};
use serde_json::Value;

const INCS: i64 = 3;

#[actix_rt::test]
async fn mainnet_mode_with_an_rsa_signer_runs_a_lua_process() {
    mainnet_flow("rsa", 1).await;
}

#[actix_rt::test]
async fn mainnet_mode_with_an_ed25519_signer_runs_a_lua_process() {
    mainnet_flow("ed25519", 2).await;
}

async fn mainnet_flow(signer: &str, signature_type: u64) {
    if skip() {
        return;
    }
    let node = http_support::start_sled();
    // Mainnet mode should need no gateway; one listens so that a look-up
    // would be seen rather than leave the machine.
    let gateway = Gateway::start(None);

    let report = run(
        "mainnet.mjs",
        vec![
            ("HB_URL", node.url()),
            ("HB_GATEWAY_URL", gateway.url().to_string()),
            ("HB_AO_SIGNER", signer.to_string()),
        ],
    )
    .await;

    assert_eq!(report["signature_type"].as_u64(), Some(signature_type));
    let address = text(&report, "/address");
    let to_node = requests_to(&report, "node");
    for r in to_node.iter().filter(|r| r["method"] == "POST") {
        assert_eq!(r["item"]["signature_type"].as_u64(), Some(signature_type));
    }

    // aoconnect took the node's address, as text, for the process's
    // Scheduler and Authority tags.
    let info = to_node
        .first()
        .unwrap_or_else(|| panic!("no request in {report}"));
    assert_eq!(info["path"], "/~meta@1.0/info/address");
    assert_eq!(
        info["answer"].as_str(),
        Some(node.scheduler().address().to_string().as_str()),
        "the bare address"
    );

    // The spawn: the process ID aoconnect read (header `process`) is the
    // ID of the item it posted to /push.
    let pid = text(&report, "/process");
    let spawn = to_node
        .iter()
        .find(|r| r["path"] == "/push")
        .unwrap_or_else(|| panic!("no POST /push in {report}"));
    assert_eq!(item_id(spawn), Some(pid), "the process ID is the item ID");

    // The messages: slots 1..=3 in order, each an item posted to the
    // process's push route.
    let slots: Vec<i64> = report["slots"]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    assert_eq!(slots, (1..=INCS).collect::<Vec<_>>(), "{report}");
    let pushed: Vec<&str> = to_node
        .iter()
        .filter(|r| r["path"] == format!("/{pid}~process@1.0/push").as_str())
        .filter_map(|r| item_id(r))
        .collect();
    assert_eq!(pushed.len(), INCS as usize, "{report}");

    // Results: by slot (after the third Inc), by the first message's ID
    // (after the first), and the latest. Each Inc prints the count and
    // sends it back to the sender.
    let output = |pointer: &str| text(&report, pointer).to_string();
    assert_eq!(output("/result_by_slot/Output"), "count=3\n");
    assert_eq!(output("/result_by_message/Output"), "count=1\n");
    let sent_back = &report["result_by_slot"]["Messages"];
    assert_eq!(
        sent_back.as_array().map(Vec::len),
        Some(1),
        "one message sent back: {sent_back}"
    );
    assert_eq!(sent_back[0]["Target"].as_str(), Some(address));
    assert_eq!(sent_back[0]["Data"].as_str(), Some("3"));
    let action = sent_back[0]["Tags"].as_array().and_then(|tags| {
        tags.iter().find(|t| {
            t["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("action"))
        })
    });
    assert_eq!(
        action.and_then(|t| t["value"].as_str()),
        Some("Count"),
        "{sent_back}"
    );
    assert_eq!(text(&report, "/results/cursor"), INCS.to_string());
    assert_eq!(output("/results/node/Output"), "count=3\n");

    // Dry-runs: Get sees 3; Inc computes 4 on a copy; Get still sees 3.
    assert_eq!(output("/dryrun_get/Output"), "count=3\n");
    assert_eq!(output("/dryrun_inc/Output"), "count=4\n");
    assert_eq!(output("/dryrun_get_after/Output"), "count=3\n");

    // The node agrees, by its own API: results and dry-runs scheduled
    // nothing, and the counter is 3.
    assert_eq!(http_support::current(&node, pid).await, Some(INCS));
    let count = http_support::get(
        &*node,
        &format!("/{pid}~process@1.0/compute/state/count?slot={INCS}"),
    )
    .await;
    assert_eq!(count.json, serde_json::json!(INCS), "{}", count.json);

    // Nothing went to a gateway or off loopback.
    assert!(gateway.received().is_empty(), "{:?}", gateway.received());
    let refused = requests_to(&report, "refused");
    assert!(refused.is_empty(), "{refused:?}");
    gateway.stop().await;
    node.shutdown().await;
}
