//! SPEC §7.4's typed extras of JSON errors, taken from the library error's
//! own `ErrorCode::extras` (no downcasts): a failed computation names its
//! `phase` and `attempted-slot`, a duplicate its `original-slot`.

mod http_support;
use http_support as common;

use hb_message::Message;
use hb_scheduler::DedupPolicy;

#[actix_rt::test]
async fn a_failed_computation_names_its_phase_and_attempted_slot() -> anyhow::Result<()> {
    let t = common::start();
    let pid = common::register(&t.node, "extras").await;
    common::send(&t.node, &pid, 1).await;
    let fail = Message::new()
        .with("target", pid.as_str())?
        .with("fail", "error")?
        .commit(&common::client(), None)?;
    let a = common::post(&t.node, "/~scheduler@1.0/schedule", &fail).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let failed = common::get(&t.node, &format!("/{pid}~process@1.0/compute?slot=2")).await;
    failed.assert_error(500, "compute-failed");
    assert_eq!(failed.json["phase"], "compute", "{}", failed.json);
    assert_eq!(failed.json["attempted-slot"], 2, "{}", failed.json);
    // A slot before the failure still computes, without extras.
    let ok = common::get(&t.node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    t.node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn a_duplicate_names_the_slot_it_already_holds() -> anyhow::Result<()> {
    let t = common::start_with(
        |b| {
            b.config(hb_node::NodeConfig {
                scheduler_dedup: DedupPolicy::SignedId,
                ..common::config()
            })
        },
        false,
    );
    let pid = common::register(&t.node, "dedup").await;
    let m = common::adding(&pid, 5);
    let first = common::post(&t.node, "/~scheduler@1.0/schedule", &m).await;
    assert_eq!(first.status, 200, "{}", first.json);
    let again = common::post(&t.node, "/~scheduler@1.0/schedule", &m).await;
    again.assert_error(409, "duplicate-message");
    assert_eq!(again.json["original-slot"], 1, "{}", again.json);
    // Errors without extras have only the three fields.
    let missing = common::get(&t.node, "/~scheduler@1.0/slot").await;
    assert_eq!(missing.status / 100, 4, "{}", missing.json);
    let fields = missing.json.as_object().map(|o| o.len());
    assert_eq!(fields, Some(3), "{}", missing.json);
    t.node.shutdown().await;
    Ok(())
}
