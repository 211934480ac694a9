//! SPEC §7.4–7.5: `/metrics` in the Prometheus text format, scraped after
//! real traffic and parsed: requests by bounded route label and status,
//! schedule/compute/flush latency histograms, slots assigned and computed,
//! live servers and workers, restarts by reason, snapshot failures, store
//! size, and per-process lag and last error slot for live workers. A
//! handler that panics answers 500 `internal`, is counted, and the server
//! keeps serving (the panicking route exists only with the `test-support`
//! feature).

mod http_support;
use http_support as common;

use std::collections::HashMap;

use common::*;
use hb_message::Message;

/// `series{labels}` → value, for every sample line.
fn parse(text: &str) -> HashMap<String, f64> {
    assert!(text.trim_end().ends_with("# EOF"), "a complete exposition");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().expect("a number");
            (series.to_string(), value)
        })
        .collect()
}

async fn scrape(node: &hb_node::Node) -> (HashMap<String, f64>, String) {
    let mut res = awc::Client::new()
        .get(format!("{}/metrics", node.url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = res.body().await.expect("a body");
    let text = String::from_utf8(body.to_vec()).expect("text");
    (parse(&text), text)
}

fn at_least(m: &HashMap<String, f64>, series: &str, min: f64) {
    let v = m.get(series).copied();
    assert!(
        v.is_some_and(|v| v >= min),
        "{series} = {v:?}, expected ≥ {min}"
    );
}

#[actix_rt::test]
async fn metrics_move_with_traffic_and_stay_bounded() -> anyhow::Result<()> {
    let node = start_sled();
    let (before, _) = scrape(&node).await;
    assert_eq!(before.get("hb_slots_assigned_total"), Some(&0.0));
    let pid = register(&node, "a").await;
    send(&node, &pid, 5).await;
    let a = get(&node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
    assert_eq!(a.status, 200);
    // Slot 2 scheduled but not computed; slot 3 fails.
    send(&node, &pid, 1).await;
    let fail = Message::new()
        .with("target", pid.as_str())?
        .with("fail", "error")?
        .commit(&client(), None)?;
    post(&node, "/~scheduler@1.0/schedule", &fail).await;
    get(&node, &format!("/{pid}~process@1.0/compute?slot=3"))
        .await
        .assert_error(500, "compute-failed");
    get(&node, "/~nope@1.0/x").await;

    let (m, text) = scrape(&node).await;
    at_least(
        &m,
        "hb_http_requests_total{route=\"/~scheduler@1.0/schedule\",method=\"POST\",status=\"200\"}",
        4.0,
    );
    at_least(
        &m,
        "hb_http_requests_total{route=\"/<pid>~process@1.0/compute\",method=\"GET\",status=\"200\"}",
        1.0,
    );
    at_least(
        &m,
        "hb_http_requests_total{route=\"/<pid>~process@1.0/compute\",method=\"GET\",status=\"500\"}",
        1.0,
    );
    at_least(
        &m,
        "hb_http_requests_total{route=\"/~other/other\",method=\"GET\",status=\"400\"}",
        1.0,
    );
    for line in text
        .lines()
        .filter(|l| l.starts_with("hb_http_requests_total"))
    {
        assert!(
            !line.contains(&pid),
            "no process ID in a route label: {line}"
        );
    }
    at_least(&m, "hb_schedule_duration_seconds_count", 4.0);
    at_least(&m, "hb_compute_duration_seconds_count", 2.0);
    at_least(&m, "hb_store_flush_duration_seconds_count", 1.0);
    at_least(&m, "hb_slots_assigned_total", 4.0);
    at_least(&m, "hb_slots_computed_total", 3.0);
    at_least(&m, "hb_scheduler_servers", 1.0);
    at_least(&m, "hb_process_workers", 1.0);
    at_least(&m, "hb_store_size_bytes", 1.0);
    for reason in [
        "{actor=\"scheduler-server\",reason=\"panic\"}",
        "{actor=\"scheduler-server\",reason=\"write-failure\"}",
        "{actor=\"process-worker\",reason=\"device-panic\"}",
    ] {
        at_least(&m, &format!("hb_actor_restarts_total{reason}"), 0.0);
    }
    at_least(&m, "hb_snapshot_failures_total", 0.0);
    // The live worker reached slot 2 and failed at slot 3, the scheduled one.
    assert_eq!(
        m.get(&format!("hb_process_lag_slots{{pid=\"{pid}\"}}")),
        Some(&1.0),
        "{text}"
    );
    assert_eq!(
        m.get(&format!("hb_process_last_error_slot{{pid=\"{pid}\"}}")),
        Some(&3.0),
        "{text}"
    );
    at_least(&m, "hb_http_requests_in_flight", 0.0);
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() -> anyhow::Result<()> {
    let node = start();
    for _ in 0..3 {
        get(&node, "/~hb-test@1.0/panic")
            .await
            .assert_error(500, "internal");
        let health = get(&node, "/healthz").await;
        assert_eq!(
            (health.status, health.json["status"].as_str()),
            (200, Some("ok"))
        );
    }
    let pid = register(&node, "still-serving").await;
    assert_eq!(send(&node, &pid, 1).await, 1);
    let (m, _) = scrape(&node).await;
    assert_eq!(m.get("hb_http_panics_total"), Some(&3.0));
    at_least(
        &m,
        "hb_http_requests_total{route=\"/~other/panic\",method=\"GET\",status=\"500\"}",
        3.0,
    );
    node.shutdown().await;
    Ok(())
}
