//! Every route of SPEC §7.3 through the real server on 127.0.0.1 with a
//! real HTTP client, each with its success and its error cases, and the
//! headers of §7.2 (`x-ao-slot`, `x-ao-computed-at`, `cache-control:
//! no-store`), aos-2 by `accept` header, navigation into results, the
//! `/<pid>/<key>` form with the stored message's device, and the inline
//! form `seg&k=v`.

mod http_support;
use http_support as common;

use common::*;
use hb_message::{Message, NodeKey};

#[actix_rt::test]
async fn schedule_through_the_scheduler_and_through_the_process() -> anyhow::Result<()> {
    let node = start();
    let pid = register(&node, "a").await;
    // POST /~scheduler@1.0/schedule
    let a = post(&node, "/~scheduler@1.0/schedule", &adding(&pid, 5)).await;
    assert_eq!(
        (a.status, a.json["slot"].as_i64()),
        (200, Some(1)),
        "{}",
        a.json
    );
    assert_eq!(a.json["process"].as_str(), Some(pid.as_str()));
    assert!(a.json["commitments"].is_object(), "signed: {}", a.json);
    // POST /<pid>~process@1.0/schedule: the target comes from the path.
    let m = Message::new().with("add", 2)?.commit(&client(), None)?;
    let a = post(&node, &format!("/{pid}~process@1.0/schedule"), &m).await;
    assert_eq!(
        (a.status, a.json["slot"].as_i64()),
        (200, Some(2)),
        "{}",
        a.json
    );

    // Errors: no target, an unknown process, a forged signature, another
    // target than the path's.
    post(
        &node,
        "/~scheduler@1.0/schedule",
        &Message::new().with("add", 1)?,
    )
    .await
    .assert_error(400, "missing-target");
    let nobody = hb_message::Id::hash(b"nobody").to_human();
    post(&node, "/~scheduler@1.0/schedule", &adding(&nobody, 1))
        .await
        .assert_error(404, "unknown-process");
    let forged = adding(&pid, 1).with("add", 1000)?;
    post(&node, "/~scheduler@1.0/schedule", &forged)
        .await
        .assert_error(400, "invalid-signature");
    let other = register(&node, "b").await;
    post(
        &node,
        &format!("/{pid}~process@1.0/schedule"),
        &adding(&other, 1),
    )
    .await
    .assert_error(400, "target-mismatch");
    post(
        &node,
        &format!("/{pid}~process@1.0/schedule?target={other}"),
        &m,
    )
    .await
    .assert_error(400, "target-mismatch");
    post(&node, &format!("/{nobody}~process@1.0/schedule"), &m)
        .await
        .assert_error(404, "unknown-process");
    assert_eq!(current(&node, &other).await, Some(0));
    assert_eq!(
        current(&node, &pid).await,
        Some(2),
        "refusals change nothing"
    );
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn push_delivers_an_outbox_and_names_what_is_missing() -> anyhow::Result<()> {
    let node = start();
    let sender = register(&node, "sender").await;
    let receiver = register(&node, "receiver").await;
    let outbox = hb_message::Value::List(vec![hb_message::Value::Message(
        Message::new()
            .with("target", receiver.as_str())?
            .with("add", 3)?,
    )]);
    let m = Message::new()
        .with("target", sender.as_str())?
        .with("outbox", outbox)?
        .commit(&client(), None)?;
    post(&node, "/~scheduler@1.0/schedule", &m).await;
    let a = post_empty(&node, &format!("/{sender}~process@1.0/push?slot=1")).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let pushed = &a.json["pushed"][0];
    assert_eq!(pushed["status"].as_str(), Some("delivered"), "{}", a.json);
    assert_eq!(pushed["target"].as_str(), Some(receiver.as_str()));
    assert_eq!(current(&node, &receiver).await, Some(1));
    // Pushing again schedules nothing twice.
    let again = post_empty(&node, &format!("/{sender}~process@1.0/push?slot=1")).await;
    assert_eq!(again.json["pushed"], a.json["pushed"]);
    assert_eq!(current(&node, &receiver).await, Some(1));
    // With a body, push first schedules it on the process.
    let body = Message::new().with("add", 1)?.commit(&client(), None)?;
    let a = post(&node, &format!("/{sender}~process@1.0/push"), &body).await;
    assert_eq!(
        (a.status, a.json["slot"].as_i64()),
        (200, Some(2)),
        "{}",
        a.json
    );

    post_empty(&node, &format!("/{sender}~process@1.0/push"))
        .await
        .assert_error(400, "missing-slot");
    post_empty(
        &node,
        &format!("/{sender}~process@1.0/push?slot=1&max-depth=99"),
    )
    .await
    .assert_error(400, "invalid-slot");
    post_empty(&node, &format!("/{sender}~process@1.0/push?slot=7"))
        .await
        .assert_error(404, "slot-not-available");
    assert_eq!(
        current(&node, &sender).await,
        Some(2),
        "refusals change nothing"
    );
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn get_schedule_as_a_bundle_as_aos2_and_by_navigation() -> anyhow::Result<()> {
    let node = start();
    let pid = register(&node, "a").await;
    send(&node, &pid, 5).await;
    send(&node, &pid, 6).await;
    // GET /~scheduler@1.0/schedule?target=&from=&to=
    let a = get(&node, &format!("/~scheduler@1.0/schedule?target={pid}")).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["type"].as_str(), Some("schedule"));
    assert_eq!(a.json["assignments"].as_object().map(|m| m.len()), Some(3));
    let a = get(
        &node,
        &format!("/~scheduler@1.0/schedule?target={pid}&from=1&to=1"),
    )
    .await;
    let slots: Vec<&String> = a.json["assignments"].as_object().unwrap().keys().collect();
    assert_eq!(slots, vec!["1"], "{}", a.json);
    // aos-2 by the accept header, answered as its JSON.
    let a = get_with(
        &node,
        &format!("/~scheduler@1.0/schedule?target={pid}"),
        &[("accept", "application/aos-2")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.json["page_info"]["process"].as_str(), Some(pid.as_str()));
    assert_eq!(
        a.json["edges"].as_array().map(Vec::len),
        Some(3),
        "{}",
        a.json
    );
    assert_eq!(a.json["edges"][1]["cursor"].as_i64(), Some(1));
    // GET /<pid>~process@1.0/schedule/assignments/<slot>/…
    let a = get(
        &node,
        &format!("/{pid}~process@1.0/schedule/assignments/2/body/add"),
    )
    .await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(6)), "{}", a.json);
    let a = get(&node, &format!("/{pid}~process@1.0/schedule?from=2")).await;
    assert_eq!(
        a.json["assignments"]["2"]["slot"].as_i64(),
        Some(2),
        "{}",
        a.json
    );

    get(
        &node,
        &format!("/~scheduler@1.0/schedule?target={pid}&from=x"),
    )
    .await
    .assert_error(400, "invalid-range");
    get(&node, "/~scheduler@1.0/schedule")
        .await
        .assert_error(400, "missing-target");
    let nobody = hb_message::Id::hash(b"nobody").to_human();
    get(&node, &format!("/~scheduler@1.0/schedule?target={nobody}"))
        .await
        .assert_error(404, "unknown-process");
    get(
        &node,
        &format!("/{pid}~process@1.0/schedule/assignments/9/body"),
    )
    .await
    .assert_error(404, "not-found");
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn slot_and_scheduler_status_are_never_cached() -> anyhow::Result<()> {
    let node = start();
    let pid = register(&node, "a").await;
    send(&node, &pid, 5).await;
    let a = get(&node, &format!("/~scheduler@1.0/slot?target={pid}")).await;
    assert_eq!(
        (a.status, a.json["current"].as_i64()),
        (200, Some(1)),
        "{}",
        a.json
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let a = get(&node, &format!("/{pid}~process@1.0/slot")).await;
    assert_eq!(
        (a.status, a.json["current"].as_i64()),
        (200, Some(1)),
        "{}",
        a.json
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let a = get(&node, &format!("/{pid}~process@1.0/slot/current")).await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(1)), "{}", a.json);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    // The inline form: `slot&target=<pid>`.
    let a = get(&node, &format!("/~scheduler@1.0/slot&target={pid}/current")).await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(1)), "{}", a.json);

    let nobody = hb_message::Id::hash(b"nobody").to_human();
    get(&node, &format!("/~scheduler@1.0/slot?target={nobody}"))
        .await
        .assert_error(404, "unknown-process");
    get(&node, "/~scheduler@1.0/slot?target=nope")
        .await
        .assert_error(400, "invalid-target");

    // GET /~scheduler@1.0/status
    let a = get(&node, "/~scheduler@1.0/status").await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["address"].as_str(), Some(node.scheduler().address()));
    assert!(a.json["processes"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p.as_str() == Some(pid.as_str()))));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    get(&node, "/~scheduler@1.0/status/nothing-here")
        .await
        .assert_error(404, "not-found");
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn locations_are_registered_read_and_refused_when_stale() -> anyhow::Result<()> {
    let node = start();
    let node_key = NodeKey::from_seed(&NODE_SEED);
    // Self-registration: a body signed by the node key.
    let body = Message::new()
        .with("url", "http://127.0.0.1:1")?
        .commit(&node_key, None)?;
    let a = post(&node, "/~scheduler@1.0/location", &body).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["type"].as_str(), Some("scheduler-location"));
    assert_eq!(a.json["nonce"].as_i64(), Some(0));
    let a = get(&node, "/~scheduler@1.0/location").await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["body"]["url"].as_str(), Some("http://127.0.0.1:1"));
    // Another signer's record is stored under its address.
    let theirs = Message::new()
        .with("type", "scheduler-location")?
        .with("url", "http://127.0.0.1:2")?
        .with("nonce", 3)?
        .commit(&client(), None)?;
    assert_eq!(
        post(&node, "/~scheduler@1.0/location", &theirs)
            .await
            .status,
        200
    );
    let a = get(
        &node,
        &format!("/~scheduler@1.0/location?address={}", client().address()),
    )
    .await;
    assert_eq!(a.json["body"]["nonce"].as_i64(), Some(3), "{}", a.json);

    // A nonce not above the stored one, an unsigned record, an unknown
    // address.
    let stale = Message::new()
        .with("url", "http://127.0.0.1:9")?
        .with("nonce", 0)?
        .commit(&node_key, None)?;
    post(&node, "/~scheduler@1.0/location", &stale)
        .await
        .assert_error(400, "stale-nonce");
    post(
        &node,
        "/~scheduler@1.0/location",
        &Message::new().with("url", "http://x")?,
    )
    .await
    .assert_error(400, "invalid-location");
    let nobody = hb_message::Id::hash(b"nobody").to_human();
    get(&node, &format!("/~scheduler@1.0/location?address={nobody}"))
        .await
        .assert_error(404, "location-not-found");
    let a = get(&node, "/~scheduler@1.0/location").await;
    assert_eq!(
        a.json["body"]["url"].as_str(),
        Some("http://127.0.0.1:1"),
        "refusals change nothing"
    );
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn compute_and_now_say_which_slot_and_when() -> anyhow::Result<()> {
    let node = start();
    let pid = register(&node, "a").await;
    send(&node, &pid, 5).await;
    send(&node, &pid, 7).await;
    let slot_and_time = |a: &Answer| {
        let computed_at = a.header("x-ao-computed-at").map(str::to_string);
        assert!(
            computed_at
                .as_deref()
                .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())),
            "x-ao-computed-at in ms: {computed_at:?}"
        );
        a.header("x-ao-slot").map(str::to_string)
    };
    let a = get(&node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
    assert_eq!(
        (a.status, a.json["sum"].as_i64()),
        (200, Some(5)),
        "{}",
        a.json
    );
    assert_eq!(slot_and_time(&a).as_deref(), Some("1"));
    let a = get(&node, &format!("/{pid}~process@1.0/compute/sum?slot=2")).await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(12)), "{}", a.json);
    assert_eq!(slot_and_time(&a).as_deref(), Some("2"));
    let a = get(
        &node,
        &format!("/{pid}~process@1.0/compute/results/slot?slot=1"),
    )
    .await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(1)), "{}", a.json);
    // Freshness hints, with and without a slot.
    let a = get(
        &node,
        &format!("/{pid}~process@1.0/compute?min-slot=2&max-age=600000"),
    )
    .await;
    assert_eq!(
        (a.status, a.json["at-slot"].as_i64()),
        (200, Some(2)),
        "{}",
        a.json
    );
    // now and its sub-paths: never cached.
    let a = get(&node, &format!("/{pid}~process@1.0/now")).await;
    assert_eq!(
        (a.status, a.json["sum"].as_i64()),
        (200, Some(12)),
        "{}",
        a.json
    );
    assert_eq!(slot_and_time(&a).as_deref(), Some("2"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    // Slot 0 (the definition) counts too.
    let a = get(&node, &format!("/{pid}~process@1.0/now/count")).await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(3)), "{}", a.json);
    assert_eq!(slot_and_time(&a).as_deref(), Some("2"));
    assert_eq!(a.header("cache-control"), Some("no-store"));

    get(&node, &format!("/{pid}~process@1.0/compute?slot=x1"))
        .await
        .assert_error(400, "invalid-slot");
    get(&node, &format!("/{pid}~process@1.0/compute?max-age=soon"))
        .await
        .assert_error(400, "invalid-slot");
    get(&node, &format!("/{pid}~process@1.0/compute?slot=9"))
        .await
        .assert_error(404, "slot-not-available");
    get(&node, &format!("/{pid}~process@1.0/now?min-slot=9"))
        .await
        .assert_error(404, "slot-not-available");
    get(&node, &format!("/{pid}~process@1.0/compute/missing?slot=1"))
        .await
        .assert_error(404, "not-found");
    let nobody = hb_message::Id::hash(b"nobody").to_human();
    get(&node, &format!("/{nobody}~process@1.0/compute?slot=0"))
        .await
        .assert_error(404, "unknown-process");
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn dry_run_answers_results_and_changes_nothing() -> anyhow::Result<()> {
    let node = start();
    let pid = register(&node, "a").await;
    send(&node, &pid, 5).await;
    let before = get(&node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
    let probe = Message::new().with("add", 100)?.commit(&client(), None)?;
    let a = post(&node, &format!("/{pid}~process@1.0/dry-run"), &probe).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["at-slot"].as_i64(), Some(1));
    assert_eq!(a.json["results"]["sum"].as_i64(), Some(105), "{}", a.json);
    assert_eq!(current(&node, &pid).await, Some(1), "nothing scheduled");
    let after = get(&node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
    assert_eq!(before.json, after.json, "the state is unchanged");

    let forged = probe.with("add", 1)?;
    post(&node, &format!("/{pid}~process@1.0/dry-run"), &forged)
        .await
        .assert_error(400, "invalid-signature");
    let nobody = hb_message::Id::hash(b"nobody").to_human();
    post(
        &node,
        &format!("/{nobody}~process@1.0/dry-run"),
        &Message::new(),
    )
    .await
    .assert_error(404, "unknown-process");
    assert_eq!(current(&node, &pid).await, Some(1));
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn process_status_explains_without_computing() -> anyhow::Result<()> {
    let node = start();
    let pid = register(&node, "a").await;
    send(&node, &pid, 5).await;
    let a = get(&node, &format!("/{pid}~process@1.0/status")).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["scheduled-slot"].as_i64(), Some(1));
    assert_eq!(
        a.json["computed-slot"].as_i64(),
        Some(-1),
        "nothing computed"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let nobody = hb_message::Id::hash(b"nobody").to_human();
    get(&node, &format!("/{nobody}~process@1.0/status"))
        .await
        .assert_error(404, "unknown-process");
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn a_stored_message_answers_with_its_own_device() -> anyhow::Result<()> {
    let node = start();
    let pid = register(&node, "a").await;
    send(&node, &pid, 5).await;
    // `/<pid>/<key>`: the definition's own device, process@1.0.
    let a = get(&node, &format!("/{pid}/compute/sum?slot=1")).await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(5)), "{}", a.json);
    assert_eq!(a.header("x-ao-slot"), Some("1"));
    let a = get(&node, &format!("/{pid}/slot/current")).await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(1)), "{}", a.json);
    // Inline fields: `compute&slot=1`.
    let a = get(&node, &format!("/{pid}/compute&slot=1/sum")).await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(5)), "{}", a.json);
    // `/<pid>` alone is the legacy SU's schedule page (SPEC §10.4), the
    // process first; `~message@1.0` reads the definition's fields.
    let a = get(&node, &format!("/{pid}")).await;
    assert_eq!(
        a.json["edges"][0]["node"]["message"]["id"],
        pid.to_string(),
        "{}",
        a.json
    );
    let a = get(&node, &format!("/{pid}~message@1.0/execution-device")).await;
    assert_eq!(a.json.as_str(), Some("test-device@1.0"), "{}", a.json);

    let nobody = hb_message::Id::hash(b"nobody").to_human();
    get(&node, &format!("/{nobody}/slot"))
        .await
        .assert_error(404, "not-found");
    get(&node, "/not-an-id/slot")
        .await
        .assert_error(404, "not-found");
    get(&node, "/~nope@1.0/x")
        .await
        .assert_error(400, "unknown-device");
    let a = awc::Client::new()
        .delete(format!("{}/{pid}/slot", node.url()))
        .send()
        .await
        .expect("answers")
        .json::<serde_json::Value>()
        .await?;
    assert_eq!(a["error"].as_str(), Some("method-not-allowed"), "{a}");
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn unavailable_answers_say_when_to_retry() -> anyhow::Result<()> {
    let node = start_with(
        |b| {
            b.config(hb_node::NodeConfig {
                scheduling_mode: hb_scheduler::SchedulingMode::Disabled,
                ..config()
            })
        },
        false,
    );
    let def = definition(&node, "a");
    let a = post(&node, "/~scheduler@1.0/schedule", &def).await;
    a.assert_error(503, "scheduling-disabled");
    assert!(a.header("retry-after").is_some(), "503 carries retry-after");
    // Reads still work.
    let a = get(&node, "/~scheduler@1.0/status").await;
    assert_eq!(a.status, 200, "{}", a.json);
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn a_status_field_is_the_http_status_and_a_location_its_header() -> anyhow::Result<()> {
    let node = start();
    let def = hb_message::Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", node.scheduler().address())?
        .with("execution-device", "test-device@1.0")?
        .with(
            "accepted",
            Message::new().with("status", 202)?.with("note", "queued")?,
        )?
        .with(
            "moved",
            Message::new()
                .with("status", 307)?
                .with("location", "http://127.0.0.1:1/elsewhere")?,
        )?
        .commit(&client(), None)?;
    let pid = def.id_all()?.to_human();
    assert_eq!(
        post(&node, "/~scheduler@1.0/schedule", &def).await.status,
        200
    );
    let a = get(&node, &format!("/{pid}~message@1.0/accepted")).await;
    assert_eq!(
        (a.status, a.json["note"].as_str()),
        (202, Some("queued")),
        "{}",
        a.json
    );
    let res = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(format!("{}/{pid}~message@1.0/moved", node.url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 307);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("http://127.0.0.1:1/elsewhere")
    );
    node.shutdown().await;
    Ok(())
}
