//! SPEC §5.2 "Panics" and DESIGN's supervision: a server whose handler
//! panics answers that caller with a typed `Internal` error, stops, is
//! restarted by its supervisor, reloads from the store, and loses nothing
//! acknowledged. Other processes are unaffected.

use hb_message::Message;
use hb_scheduler::{verify_chain, SchedulerConfig, SchedulerError};
use hb_tests::harness::Harness;

#[actix_rt::test]
async fn a_panic_mid_stream_is_answered_and_the_server_comes_back() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        fault_panic_key: Some("explode".into()),
        ..SchedulerConfig::default()
    });
    let client = Harness::client(1);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let (other, _) = h.spawn_process(&client, 1).await?;
    for n in 1..=3 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
    }

    // A message whose handling panics (after the sequencer advanced).
    let bomb = Message::new()
        .with("target", pid.to_human())?
        .with("explode", true)?
        .commit(&client, None)?;
    let err = h
        .schedule(bomb)
        .await
        .expect_err("the panicking call fails");
    assert!(matches!(err, SchedulerError::Internal { .. }), "{err:?}");
    assert_eq!(err.status(), 500);

    // The next call is served by the restarted server, at the next slot:
    // the panicked slot was never acknowledged, so it is reused.
    let next = h.schedule(Harness::message(&client, &pid, 4)).await?;
    assert_eq!(next.slot, 4);
    assert_eq!(h.restarts(), 1);

    let schedule = h.schedule_of(pid).await?;
    assert_eq!(schedule.len(), 5);
    verify_chain(pid, &schedule).map_err(|f| anyhow::anyhow!("{f}"))?;
    // Another process never noticed.
    assert_eq!(
        h.schedule(Harness::message(&client, &other, 1)).await?.slot,
        1
    );
    Ok(())
}

#[actix_rt::test]
async fn an_injected_panic_restarts_the_same_server_address() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(2);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let before = h.scheduler.find(pid).await?.expect("a live server");
    for n in 1..=10 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
    }
    let err = h
        .scheduler
        .inject_panic(pid)
        .await
        .expect_err("the panic is reported");
    assert!(matches!(err, SchedulerError::Internal { .. }), "{err:?}");
    // The supervisor restarted it: same address, state reloaded.
    let current = h.scheduler.current(pid).await?.expect("a schedule");
    assert_eq!(current.slot, 10);
    let after = h.scheduler.find(pid).await?.expect("still live");
    assert!(after.same_server(&before));
    assert_eq!(
        h.schedule(Harness::message(&client, &pid, 11)).await?.slot,
        11
    );
    assert_eq!(h.restarts(), 1);
    Ok(())
}
