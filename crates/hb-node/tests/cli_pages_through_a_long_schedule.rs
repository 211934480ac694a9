//! SPEC §5.6.3 and §7.6: a schedule longer than the node's page
//! (`schedule_page_max` 10 here) is read whole by `hb schedule` in both
//! formats and by `hb verify-chain` over HTTP, page after page. Progress
//! goes to stderr only when asked (`--progress`) on a stderr that is no
//! terminal. The node runs in-process; the messages are scheduled through
//! `hb_node::client::Client`.

mod cli_support;

use std::sync::Arc;

use hb_message::{Message, NodeKey};
use hb_node::client::{Client, SlotRange};
use hb_node::{Node, NodeBuilder, NodeConfig};
use hb_scheduler::SchedulerConfig;

const PAGE: u64 = 10;
/// Slots 0 (the definition) to 25: three pages.
const MESSAGES: i64 = 25;

fn start() -> Node {
    NodeBuilder::new(
        Arc::new(hb_store::MemoryStore::new()),
        NodeKey::from_seed(&[1; 32]),
    )
    .config(NodeConfig {
        port: 0,
        ..NodeConfig::default()
    })
    .scheduler_config(SchedulerConfig {
        schedule_page_max: PAGE,
        ..SchedulerConfig::default()
    })
    .start()
    .expect("the node starts")
}

/// Runs `hb` off the actix thread, which the node's actors need.
async fn hb(args: Vec<String>) -> cli_support::Run {
    actix_rt::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_support::hb(dir.path(), &args)
    })
    .await
    .expect("the run completes")
}

fn args(list: &[&str], url: &str) -> Vec<String> {
    let mut all: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    all.extend(["--node".to_string(), url.to_string()]);
    all
}

#[actix_rt::test]
async fn a_schedule_of_three_pages_is_read_and_verified_whole() -> anyhow::Result<()> {
    let node = start();
    let url = node.url();
    let client = Client::new(&url)?;
    let key = NodeKey::from_seed(&[2; 32]);
    let definition = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", client.address().await?)?
        .with("execution-device", "lua@5.3a")?
        .with(
            "script",
            std::fs::read_to_string(cli_support::counter_lua())?,
        )?
        .commit(&key, None)?;
    let pid = definition.id_all()?;
    assert_eq!(client.schedule(&definition).await?.get_int("slot"), Some(0));
    for n in 1..=MESSAGES {
        let m = Message::new()
            .with("target", pid.to_human())?
            .with("action", "Inc")?
            .with("n", n)?
            .commit(&key, None)?;
        assert_eq!(client.schedule(&m).await?.get_int("slot"), Some(n));
    }
    // The node caps each page, and says so.
    let first = client.schedule_page(&pid, SlotRange::default()).await?;
    assert_eq!(first.assignments.len() as u64, PAGE + 1);
    assert!(first.continues);
    let pid = pid.to_human();
    let total = MESSAGES as usize + 1;

    let text = hb(args(&["schedule", &pid], &url)).await;
    assert_eq!(text.ok().lines().count(), total, "{text:?}");
    assert!(text.stderr.is_empty(), "no progress unless asked: {text:?}");
    let native = hb(args(&["schedule", &pid, "--json"], &url)).await.json();
    let assignments = native["assignments"].as_object().expect("assignments");
    assert_eq!(assignments.len(), total);
    assert_eq!(assignments["25"]["body"]["n"], 25);
    assert_eq!(native["continues"], false);
    let aos2 = hb(args(
        &["schedule", &pid, "--format", "aos-2", "--json"],
        &url,
    ))
    .await
    .json();
    let cursors: Vec<u64> = aos2["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["cursor"].as_u64())
        .collect();
    assert_eq!(cursors, (0..total as u64).collect::<Vec<_>>());
    // A range across a page boundary.
    let range = hb(args(
        &["schedule", &pid, "--from", "5", "--to", "17", "--json"],
        &url,
    ))
    .await
    .json();
    let mut slots: Vec<u64> = range["assignments"]
        .as_object()
        .expect("assignments")
        .keys()
        .filter_map(|k| k.parse().ok())
        .collect();
    slots.sort_unstable();
    assert_eq!(slots, (5..=17).collect::<Vec<_>>());

    // Progress on request: one line per page on a non-terminal stderr.
    let shown = hb(args(&["schedule", &pid, "--progress"], &url)).await;
    assert_eq!(shown.code, 0);
    assert!(
        shown.stderr.contains("hb: schedule: 26/26 slots"),
        "{shown:?}"
    );
    assert_eq!(shown.stderr.lines().count(), 3, "{shown:?}");

    let verified = hb(args(&["verify-chain", &pid, "--progress"], &url)).await;
    assert!(verified.ok().contains("26 slots verified"), "{verified:?}");
    assert!(
        verified.stderr.contains("hb: verify-chain: 26/26 slots"),
        "{verified:?}"
    );
    node.shutdown().await;
    Ok(())
}
