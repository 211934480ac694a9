//! SPEC §7.2–7.4 against a real HTTP server on 127.0.0.1 (a random port),
//! with a real HTTP client: registering and scheduling through
//! `/~scheduler@1.0/schedule`, computing through `/<pid>~process@1.0/…`
//! (with a sub-path and the `x-ao-slot` header), `status` with
//! `cache-control: no-store`, and JSON errors with the right 4xx for
//! malformed input, which changes nothing.

use std::sync::Arc;

use hb_message::json::to_json;
use hb_message::{Message, NodeKey};
use hb_node::{Node, NodeBuilder, NodeConfig};

fn start() -> Node {
    let store = Arc::new(hb_store::MemoryStore::new());
    NodeBuilder::new(store, NodeKey::from_seed(&[1; 32]))
        .config(NodeConfig {
            port: 0,
            max_body_bytes: 64 * 1024,
            // The processes below run on test-device@1.0.
            enable_test_devices: true,
            ..NodeConfig::default()
        })
        .start()
        .expect("the node starts")
}

fn client() -> NodeKey {
    NodeKey::from_seed(&[2; 32])
}

async fn post(node: &Node, path: &str, m: &Message) -> (u16, serde_json::Value) {
    let mut res = awc::Client::new()
        .post(format!("{}{path}", node.url()))
        .send_json(&to_json(m))
        .await
        .expect("the node answers");
    let status = res.status().as_u16();
    let body = res.json::<serde_json::Value>().await.expect("a JSON body");
    (status, body)
}

async fn get(node: &Node, path: &str) -> (u16, serde_json::Value, awc::http::header::HeaderMap) {
    let mut res = awc::Client::new()
        .get(format!("{}{path}", node.url()))
        .send()
        .await
        .expect("the node answers");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json::<serde_json::Value>().await.expect("a JSON body");
    (status, body, headers)
}

#[actix_rt::test]
async fn a_process_is_registered_scheduled_and_computed_over_http() -> anyhow::Result<()> {
    let node = start();
    let (status, health, _) = get(&node, "/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", node.scheduler().address())?
        .with("execution-device", "test-device@1.0")?
        .commit(&client(), None)?;
    let pid = def.id_all()?.to_human();
    let (status, a0) = post(&node, "/~scheduler@1.0/schedule", &def).await;
    assert_eq!(status, 200, "{a0}");
    assert_eq!(a0["slot"].as_i64(), Some(0));
    let m = Message::new()
        .with("target", pid.as_str())?
        .with("add", 5)?
        .commit(&client(), None)?;
    let (status, a1) = post(&node, "/~scheduler@1.0/schedule", &m).await;
    assert_eq!((status, a1["slot"].as_i64()), (200, Some(1)), "{a1}");

    let (status, state, headers) = get(&node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["sum"].as_i64(), Some(5));
    assert_eq!(
        headers.get("x-ao-slot").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // A sub-path reads into the computed state.
    let (status, sum, _) = get(&node, &format!("/{pid}~process@1.0/compute/sum?slot=1")).await;
    assert_eq!((status, sum.as_i64()), (200, Some(5)));
    let (status, st, headers) = get(&node, &format!("/{pid}~process@1.0/status")).await;
    assert_eq!(
        (status, st["computed-slot"].as_i64()),
        (200, Some(1)),
        "{st}"
    );
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let (status, slot, _) = get(&node, &format!("/~scheduler@1.0/slot?target={pid}")).await;
    assert_eq!((status, slot["current"].as_i64()), (200, Some(1)), "{slot}");
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn malformed_requests_get_json_4xx_errors_and_change_nothing() -> anyhow::Result<()> {
    let node = start();
    let def = Message::new()
        .with("type", "Process")?
        .with("scheduler", node.scheduler().address())?
        .with("execution-device", "test-device@1.0")?
        .commit(&client(), None)?;
    let pid = def.id_all()?;
    post(&node, "/~scheduler@1.0/schedule", &def).await;
    let url = |path: &str| format!("{}{path}", node.url());
    let send_raw = |path: String, body: Vec<u8>, content_type: &'static str| async move {
        let mut res = awc::Client::new()
            .post(path)
            .insert_header(("content-type", content_type))
            .send_body(body)
            .await
            .expect("the node answers");
        let status = res.status().as_u16();
        let body = res.json::<serde_json::Value>().await.expect("a JSON error");
        (status, body)
    };
    let cases: Vec<(String, Vec<u8>, &'static str, u16, &str)> = vec![
        (
            url("/~scheduler@1.0/schedule"),
            b"{not json".to_vec(),
            "application/json",
            400,
            "malformed-body",
        ),
        (
            url("/~scheduler@1.0/schedule"),
            br#"{"a": 1, "A": 2}"#.to_vec(),
            "application/json",
            400,
            "duplicate-key",
        ),
        (
            url("/~scheduler@1.0/schedule"),
            b"{}".to_vec(),
            "text/plain",
            415,
            "unsupported-media-type",
        ),
        (
            url("/~scheduler@1.0/schedule"),
            vec![b' '; 70 * 1024],
            "application/json",
            413,
            "body-too-large",
        ),
        (
            url("/~scheduler@1.0/schedule"),
            br#"{"target": "nope"}"#.to_vec(),
            "application/json",
            400,
            "invalid-target",
        ),
    ];
    for (path, body, ct, status, code) in cases {
        let (got, json) = send_raw(path, body, ct).await;
        assert_eq!(
            (got, json["error"].as_str()),
            (status, Some(code)),
            "{json}"
        );
        assert_eq!(json["status"].as_u64(), Some(u64::from(status)));
        assert!(
            json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{json}"
        );
    }
    let (status, json, _) = get(&node, &format!("/{pid}~process@1.0/compute?slot=x1")).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("invalid-slot")),
        "{json}"
    );
    let unknown = hb_message::Id::hash(b"nobody").to_human();
    let (status, json, _) = get(&node, &format!("/{unknown}~process@1.0/compute?slot=0")).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("unknown-process")),
        "{json}"
    );
    let (status, json, _) = get(&node, &format!("/{pid}~process@1.0/compute?slot=9")).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("slot-not-available")),
        "{json}"
    );
    // Nothing was scheduled by the refused requests.
    assert_eq!(
        node.scheduler().current(pid).await?.map(|c| c.slot),
        Some(0)
    );
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn meta_info_tells_the_address_and_settings_but_never_the_key() -> anyhow::Result<()> {
    let node = start();
    let (status, info, _) = get(&node, "/~meta@1.0/info").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["address"].as_str(), Some(node.scheduler().address()));
    assert_eq!(info["scheduling-mode"].as_str(), Some("local_confirmation"));
    let text = info.to_string();
    assert!(!text.contains("key\""), "no key material: {text}");
    // The address alone is bare text (aoconnect's mainnet mode pastes it
    // into tags), not a JSON string.
    let mut res = awc::Client::new()
        .get(format!("{}/~meta@1.0/info/address", node.url()))
        .send()
        .await
        .expect("the node answers");
    let body = res.body().await.expect("a body");
    assert_eq!(
        (res.status().as_u16(), body.as_ref()),
        (200, node.scheduler().address().as_bytes())
    );
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain")
    );
    let (status, err) = post(&node, "/~meta@1.0/info", &Message::new()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (405, Some("method-not-allowed"))
    );
    node.shutdown().await;
    Ok(())
}
