//! SPEC §5.2 "Panics" and DESIGN's supervision: a server whose handler
//! panics answers that caller with a typed `Internal` error, stops, is
//! restarted by its supervisor, reloads from the store, and loses nothing
//! acknowledged. Other processes are unaffected. The panic is injected at
//! each fault point of a request, and what happens to its slot is checked:
//! reused when it never reached group commit, kept when it did; every
//! chain verifies either way.

use hb_message::{ErrorCode, Id, Message};
use hb_scheduler::{verify_chain, ExpectedSigner, FaultPoint, SchedulerConfig, SchedulerError};
use hb_testkit::Harness;

fn config(point: FaultPoint) -> SchedulerConfig {
    SchedulerConfig {
        fault_panic_key: Some("explode".into()),
        fault_panic_point: point,
        ..SchedulerConfig::default()
    }
}

fn bomb(pid: &Id) -> Message {
    Message::new()
        .with("target", pid.to_human())
        .and_then(|m| m.with("explode", true))
        .and_then(|m| m.commit(&Harness::client(1), None))
        .expect("literal keys are valid")
}

/// Schedules slots 1..=3, then a message that panics at `point`; returns
/// the harness, the pid, the other process, and the panicking call's error.
async fn panic_at(point: FaultPoint) -> anyhow::Result<(Harness, Id, Id, SchedulerError)> {
    let h = Harness::start(config(point));
    let client = Harness::client(1);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let (other, _) = h.spawn_process(&client, 1).await?;
    for n in 1..=3 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
    }
    h.expect_restarts(1);
    let err = h
        .schedule(bomb(&pid))
        .await
        .expect_err("the panicking call fails");
    Ok((h, pid, other, err))
}

async fn assert_intact(h: &Harness, pid: Id, slots: usize, other: Id) -> anyhow::Result<()> {
    let schedule = h.schedule_of(pid).await?;
    assert_eq!(schedule.len(), slots);
    verify_chain(pid, ExpectedSigner::FromDefinition, &schedule)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    // Another process never noticed.
    let client = Harness::client(1);
    assert_eq!(
        h.schedule(Harness::message(&client, &other, 1)).await?.slot,
        1
    );
    Ok(())
}

#[actix_rt::test]
async fn a_panic_before_assigning_is_answered_and_the_slot_is_not_used() -> anyhow::Result<()> {
    let (h, pid, other, err) = panic_at(FaultPoint::BeforeAssign).await?;
    assert!(matches!(err, SchedulerError::Internal { .. }), "{err:?}");
    assert_eq!(err.status(), 500);
    let next = h
        .schedule(Harness::message(&Harness::client(1), &pid, 4))
        .await?;
    assert_eq!(next.slot, 4);
    assert_eq!(h.restarts(), 1);
    assert_intact(&h, pid, 5, other).await
}

#[actix_rt::test]
async fn a_panic_after_the_sequencer_advanced_but_before_the_write_reuses_the_slot(
) -> anyhow::Result<()> {
    // The sequencer gave the bomb slot 4 and signed it, but the batch never
    // reached group commit: the restarted server reloads slot 3 as the
    // head and gives slot 4 to the next message.
    let (h, pid, other, err) = panic_at(FaultPoint::AfterAssign).await?;
    assert!(matches!(err, SchedulerError::Internal { .. }), "{err:?}");
    let next = h
        .schedule(Harness::message(&Harness::client(1), &pid, 4))
        .await?;
    assert_eq!(next.slot, 4, "the unwritten slot is reused");
    let schedule = h.schedule_of(pid).await?;
    assert!(
        schedule[4].get_path("body/explode").is_none(),
        "the bomb is not stored"
    );
    assert_intact(&h, pid, 5, other).await
}

#[actix_rt::test]
async fn a_panic_after_the_write_was_handed_to_group_commit_keeps_the_slot() -> anyhow::Result<()> {
    // The batch was submitted before the panic: the restart waits for it,
    // reloads slot 4 (the bomb) as the head, and the next message gets 5.
    let (h, pid, other, err) = panic_at(FaultPoint::AfterSubmit).await?;
    assert!(matches!(err, SchedulerError::Internal { .. }), "{err:?}");
    let next = h
        .schedule(Harness::message(&Harness::client(1), &pid, 4))
        .await?;
    assert_eq!(next.slot, 5, "the submitted slot is kept");
    let schedule = h.schedule_of(pid).await?;
    assert!(
        schedule[4].get_path("body/explode").is_some(),
        "the bomb is stored"
    );
    assert_intact(&h, pid, 6, other).await
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
    h.expect_restarts(1);
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
