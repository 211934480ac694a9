//! Each bound a request can meet answers 503 `busy` with `retry-after` at
//! once, and changes nothing: the node-wide `max_requests_in_flight`
//! (here 1, with one compute held by a slow slot) and a process worker's
//! mailbox (`process_worker_mailbox_capacity` 1, with its worker busy on a
//! slow slot), and `process_max_live_workers` (here 1, with the one
//! worker busy on a slow slot, a compute of another process). Once the
//! held request is answered, the same request is served.

mod http_support;

use std::sync::atomic::Ordering;

use hb_message::Message;
use hb_node::NodeConfig;
use http_support::{adding, client, get, post, register, send, start_with, Answer};

/// A signed message to `pid` whose computation sleeps `ms`.
fn slow(pid: &str, ms: i64) -> Message {
    Message::new()
        .with("target", pid)
        .and_then(|m| m.with("delay-ms", ms))
        .and_then(|m| m.commit(&client(), None))
        .expect("a message")
}

fn assert_busy(a: &Answer) {
    a.assert_error(503, "busy");
    assert_eq!(a.header("retry-after"), Some("1"), "{}", a.json);
}

#[actix_rt::test]
async fn past_max_requests_in_flight_a_request_is_busy_with_retry_after() {
    let node = start_with(
        |b| {
            b.config(NodeConfig {
                max_requests_in_flight: 1,
                ..http_support::config()
            })
        },
        false,
    );
    let pid = register(&node, "held").await;
    let a = post(&node, "/~scheduler@1.0/schedule", &slow(&pid, 5_000)).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let url = node.url();
    let held_pid = pid.clone();
    let held = actix_rt::spawn(async move {
        awc::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .finish()
            .get(format!("{url}/{held_pid}~process@1.0/compute?slot=1"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    });
    // Wait until the compute is the one request in flight (it sleeps in
    // the device), then every other request is refused.
    while node.requests_in_flight() != 1 {
        assert!(!held.is_finished(), "the compute was answered too soon");
        actix_rt::task::yield_now().await;
    }
    let refused = get(&node, "/healthz").await;
    assert_busy(&refused);
    assert!(refused.json["detail"]
        .as_str()
        .is_some_and(|d| d.contains("max_requests_in_flight")));
    let before = node.scheduler().metrics().assigned.load(Ordering::SeqCst);
    let refused = post(&node, "/~scheduler@1.0/schedule", &adding(&pid, 1)).await;
    assert_busy(&refused);
    assert_eq!(
        node.scheduler().metrics().assigned.load(Ordering::SeqCst),
        before,
        "a busy schedule request assigns nothing"
    );
    assert_eq!(held.await.expect("the task"), Ok(200));
    assert_eq!(get(&node, "/healthz").await.status, 200);
}

#[actix_rt::test]
async fn a_full_worker_mailbox_answers_busy_with_retry_after() {
    let node = start_with(
        |b| {
            b.config(NodeConfig {
                process_worker_mailbox_capacity: 1,
                ..http_support::config()
            })
        },
        false,
    );
    let pid = register(&node, "full").await;
    let a = post(&node, "/~scheduler@1.0/schedule", &slow(&pid, 5_000)).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(send(&node, &pid, 1).await, 2);
    let url = node.url();
    let held_pid = pid.clone();
    let held = actix_rt::spawn(async move {
        awc::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .finish()
            .get(format!("{url}/{held_pid}~process@1.0/compute?slot=1"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    });
    // Wait until the worker runs the slow slot: its one mailbox place is
    // taken, so a compute of the next slot is refused.
    loop {
        let status = get(&node, &format!("/{pid}~process@1.0/status")).await;
        if status.json["worker"] == "running" {
            break;
        }
        assert!(!held.is_finished(), "the compute was answered too soon");
    }
    let refused = get(&node, &format!("/{pid}~process@1.0/compute?slot=2")).await;
    assert_busy(&refused);
    assert!(refused.json["detail"]
        .as_str()
        .is_some_and(|d| d.contains("worker")));
    assert_eq!(held.await.expect("the task"), Ok(200));
    let served = get(&node, &format!("/{pid}~process@1.0/compute?slot=2")).await;
    assert_eq!(served.status, 200, "{}", served.json);
}

#[actix_rt::test]
async fn past_process_max_live_workers_with_every_worker_busy_a_compute_is_busy() {
    let node = start_with(
        |b| {
            b.config(NodeConfig {
                process_max_live_workers: 1,
                ..http_support::config()
            })
        },
        false,
    );
    let pid = register(&node, "the-one").await;
    let other = register(&node, "another").await;
    let a = post(&node, "/~scheduler@1.0/schedule", &slow(&pid, 5_000)).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let url = node.url();
    let held_pid = pid.clone();
    let held = actix_rt::spawn(async move {
        awc::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .finish()
            .get(format!("{url}/{held_pid}~process@1.0/compute?slot=1"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    });
    loop {
        let status = get(&node, &format!("/{pid}~process@1.0/status")).await;
        if status.json["worker"] == "running" {
            break;
        }
        assert!(!held.is_finished(), "the compute was answered too soon");
    }
    let refused = get(&node, &format!("/{other}~process@1.0/compute?slot=0")).await;
    assert_busy(&refused);
    assert_eq!(held.await.expect("the task"), Ok(200));
    let served = get(&node, &format!("/{other}~process@1.0/compute?slot=0")).await;
    assert_eq!(served.status, 200, "{}", served.json);
}
