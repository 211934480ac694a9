//! `hb_node::client::Client` against a real node on 127.0.0.1: each route's
//! answer parsed (a state and the `x-ao-slot` it reflects, a sub-path's
//! bare value, aos-2 pages), and a refusal kept as the node's own
//! `{status, error, detail}` in `ClientError::Node`.

mod cli_support;

use std::sync::Arc;

use hb_message::{Message, NodeKey, Value};
use hb_node::client::{Client, ClientError, SlotRange};
use hb_node::{NodeBuilder, NodeConfig};

#[actix_rt::test]
async fn answers_are_parsed_and_refusals_keep_the_nodes_code() -> anyhow::Result<()> {
    let node = NodeBuilder::new(
        Arc::new(hb_store::MemoryStore::new()),
        NodeKey::from_seed(&[1; 32]),
    )
    .config(NodeConfig {
        port: 0,
        ..NodeConfig::default()
    })
    .start()?;
    let client = Client::new(&format!("{}/", node.url()))?;
    assert_eq!(client.url(), node.url());
    assert_eq!(client.address().await?, node.scheduler().address());
    assert_eq!(
        client.info().await?.get_text("address"),
        Some(node.scheduler().address())
    );

    let key = NodeKey::from_seed(&[2; 32]);
    let definition = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", node.scheduler().address())?
        .with("execution-device", "lua@5.3a")?
        .with(
            "script",
            std::fs::read_to_string(cli_support::counter_lua())?,
        )?
        .commit(&key, None)?;
    let pid = definition.id_all()?;
    client.schedule(&definition).await?;
    for _ in 0..2 {
        let inc = Message::new()
            .with("target", pid.to_human())?
            .with("action", "Inc")?;
        client.schedule(&inc).await?;
    }
    assert_eq!(client.current_slot(&pid).await?, 2);

    let state = client.compute(&pid, 1, "").await?;
    assert_eq!(state.slot, Some(1));
    let count = state
        .value
        .as_message()
        .and_then(|m| m.get_path("state/count"))
        .cloned();
    assert_eq!(count, Some(Value::Int(1)));
    let now = client.now(&pid, "state/count").await?;
    // (The node sets `x-ao-slot` on whole states only so far, not on a
    // sub-path's bare value, so `now.slot` is not checked here.)
    assert_eq!(now.value, Value::Int(2));
    let get = Message::new().with("action", "Get")?;
    let dry = client.dry_run(&pid, &get).await?;
    assert_eq!(dry.get_path("results/output"), Some(&Value::from("2\n")));
    let status = client.process_status(&pid).await?;
    assert_eq!(status.get_int("scheduled-slot"), Some(2));
    let node_status = client.scheduler_status().await?;
    assert_eq!(
        node_status.get("processes"),
        Some(&Value::List(vec![Value::from(pid.to_human())]))
    );
    let range = SlotRange {
        from: Some(1),
        to: None,
    };
    let aos2 = client.schedule_page_aos2(&pid, range).await?;
    assert_eq!((aos2.edges().len(), aos2.last_cursor), (2, Some(2)));
    assert!(!aos2.has_next_page);
    let native = client.schedule_page(&pid, range).await?;
    assert_eq!(
        native.assignments.keys().copied().collect::<Vec<_>>(),
        [1, 2]
    );

    // Refusals: the node's code, status and detail.
    let unknown = hb_message::Id::hash(b"nobody");
    match client.slot(&unknown).await {
        Err(ClientError::Node {
            status,
            code,
            detail,
        }) => {
            assert_eq!((status, code.as_str()), (404, "unknown-process"));
            assert!(
                detail.contains("POST the process message first"),
                "{detail}"
            );
        }
        other => panic!("expected unknown-process, got {other:?}"),
    }
    let beyond = client.compute(&pid, 9, "").await.err();
    assert_eq!(
        beyond.as_ref().map(|e| (e.code(), e.status())),
        Some(("slot-not-available", Some(404)))
    );
    node.shutdown().await;

    // A node that is gone.
    let gone = client.scheduler_status().await.err();
    assert_eq!(gone.as_ref().map(ClientError::code), Some("unreachable"));
    Ok(())
}
