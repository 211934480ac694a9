//! SPEC §7.2 (shutdown): `Node::shutdown` stops accepting, lets requests in
//! flight finish or fails them with 503 `unavailable`, and only then stops
//! the process layer and the scheduler (the store flushed). Requests are
//! in flight on connections the node accepted while it shuts down: every
//! one gets an answer, a success or a JSON `unavailable`, and every
//! acknowledged assignment is in the store afterwards.

mod http_support;
use http_support as common;

use std::time::Duration;

use common::*;
use hb_message::json::to_json;
use hb_message::{Id, Message};

/// A client whose connection the node has already accepted.
async fn connected(node: &hb_node::Node) -> awc::Client {
    let client = awc::Client::new();
    let mut res = client
        .get(format!("{}/healthz", node.url()))
        .send()
        .await
        .expect("the node answers");
    assert_eq!(res.status().as_u16(), 200);
    // Read to the end, so the connection goes back to the client's pool.
    res.body().await.expect("a body");
    client
}

async fn answer(
    res: Result<
        awc::ClientResponse<
            impl futures::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
        >,
        awc::error::SendRequestError,
    >,
) -> (u16, serde_json::Value) {
    let mut res = res.expect("every accepted request gets an answer");
    let status = res.status().as_u16();
    if status == 503 {
        assert!(
            res.headers().contains_key("retry-after"),
            "503 carries retry-after"
        );
    }
    let json = res
        .json::<serde_json::Value>()
        .await
        .expect("a JSON answer");
    (status, json)
}

#[actix_rt::test]
async fn requests_in_flight_during_shutdown_are_answered_and_kept() -> anyhow::Result<()> {
    let node = start_with(|b| b.shutdown_grace(Duration::from_secs(1)), true);
    let pid = register(&node, "a").await;
    // Slot 1 takes 10 s to compute: its requests outlive the grace period.
    let slow = Message::new()
        .with("target", pid.as_str())?
        .with("delay-ms", 10_000)?
        .commit(&client(), None)?;
    post(&node, "/~scheduler@1.0/schedule", &slow).await;

    let mut slow_clients = Vec::new();
    for _ in 0..2 {
        slow_clients.push(connected(&node).await);
    }
    let mut schedule_clients = Vec::new();
    for _ in 0..16 {
        schedule_clients.push(connected(&node).await);
    }
    let url = node.url();
    let computes: Vec<_> = slow_clients
        .into_iter()
        .map(|c| {
            let url = format!("{url}/{pid}~process@1.0/compute?slot=1");
            actix_rt::spawn(async move { answer(c.get(url).send().await).await })
        })
        .collect();
    // Both computations are in flight before shutdown starts.
    let mut waited = 0;
    while node.requests_in_flight() < 2 {
        waited += 1;
        assert!(waited < 3_000, "the compute requests never arrived");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let schedules: Vec<_> = schedule_clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let url = format!("{url}/~scheduler@1.0/schedule");
            let body = to_json(&adding(&pid, i as i64));
            actix_rt::spawn(async move { answer(c.post(url).send_json(&body).await).await })
        })
        .collect();
    node.shutdown().await;

    for compute in computes {
        let (status, json) = compute.await?;
        assert_eq!(
            (status, json["error"].as_str()),
            (503, Some("unavailable")),
            "{json}"
        );
    }
    let cache = hb_store::SchedulerCache::new(node.store.clone());
    let pid_id = Id::parse(&pid)?;
    let (mut acknowledged, mut refused) = (0, 0);
    for schedule in schedules {
        let (status, json) = schedule.await?;
        match status {
            200 => {
                acknowledged += 1;
                let slot = json["slot"].as_u64().expect("an assignment's slot");
                let stored = cache
                    .read(&pid_id, slot)?
                    .expect("an acknowledged assignment is stored");
                assert_eq!(
                    stored.assignment.get_text("hash-chain"),
                    json["hash-chain"].as_str(),
                    "the stored assignment is the acknowledged one"
                );
            }
            503 => {
                refused += 1;
                assert_eq!(json["error"].as_str(), Some("unavailable"), "{json}");
            }
            other => panic!("neither a success nor unavailable: {other} {json}"),
        }
    }
    assert_eq!(acknowledged + refused, 16);
    // A second shutdown is harmless.
    node.shutdown().await;
    Ok(())
}
