//! docs/operations.md, "Finding a stalled process": a process whose
//! message at slot 2 fails stops computing there while its schedule grows.
//! Its status shows `scheduled-slot` ahead of `computed-slot` and a
//! `last-error` naming slot 2; `/metrics` shows the same as
//! `hb_process_lag_slots` and `hb_process_last_error_slot` for its pid,
//! while a healthy process beside it has lag 0 and no error series.

mod http_support;
use http_support as common;

use common::*;
use hb_message::Message;

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[actix_rt::test]
async fn status_and_metrics_show_the_stalled_slot_and_the_lag() -> anyhow::Result<()> {
    let node = start_sled();
    let stalled = register(&node, "stalled").await;
    let healthy = register(&node, "healthy").await;
    send(&node, &stalled, 1).await;
    let fail = Message::new()
        .with("target", stalled.as_str())?
        .with("fail", "error")?
        .commit(&client(), None)?;
    assert_eq!(
        post(&node, "/~scheduler@1.0/schedule", &fail).await.status,
        200
    );
    send(&node, &stalled, 1).await;
    send(&node, &stalled, 1).await;
    send(&node, &healthy, 1).await;
    send(&node, &healthy, 1).await;

    // Clients asking for the latest state see the failure at slot 2.
    let now = get(&node, &format!("/{stalled}~process@1.0/now")).await;
    now.assert_error(500, "compute-failed");
    assert_eq!(now.json["attempted-slot"], 2, "{}", now.json);
    assert_eq!(
        get(&node, &format!("/{healthy}~process@1.0/now"))
            .await
            .status,
        200
    );

    let status = get(&node, &format!("/{stalled}~process@1.0/status")).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json["scheduled-slot"], 4, "{}", status.json);
    assert_eq!(status.json["computed-slot"], 1, "{}", status.json);
    assert_eq!(status.json["last-error"]["slot"], 2, "{}", status.json);
    assert_eq!(
        status.json["last-error"]["code"], "compute-failed",
        "{}",
        status.json
    );
    assert!(
        status.json["last-error"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("slot 2") && d.contains("asked test-device@1.0 to fail")),
        "{}",
        status.json
    );
    let ok = get(&node, &format!("/{healthy}~process@1.0/status")).await;
    assert_eq!(
        ok.json["scheduled-slot"], ok.json["computed-slot"],
        "{}",
        ok.json
    );
    assert!(ok.json.get("last-error").is_none(), "{}", ok.json);

    let mut res = awc::Client::new()
        .get(format!("{}/metrics", node.url()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let metrics = String::from_utf8(res.body().await?.to_vec())?;
    let lag = |pid: &str| sample(&metrics, &format!(r#"hb_process_lag_slots{{pid="{pid}"}}"#));
    let error_slot = |pid: &str| {
        sample(
            &metrics,
            &format!(r#"hb_process_last_error_slot{{pid="{pid}"}}"#),
        )
    };
    assert_eq!(lag(&stalled), Some(3.0), "{metrics}");
    assert_eq!(error_slot(&stalled), Some(2.0), "{metrics}");
    assert_eq!(lag(&healthy), Some(0.0), "{metrics}");
    assert_eq!(error_slot(&healthy), None, "{metrics}");
    node.shutdown().await;
    Ok(())
}
