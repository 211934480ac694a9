//! SPEC §5.4: each scheduling mode answers at its documented moment, a
//! failed write never leaves a slot assigned on top of a missing one, and
//! unknown modes are rejected when configuration loads.

use hb_message::ErrorCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hb_scheduler::{
    Assignment, ScheduleRequest, SchedulerConfig, SchedulerError, SchedulingMode, Uploader,
};
use hb_store::SchedulerCache;
use hb_testkit::{wait_until, Harness};

fn config(mode: SchedulingMode) -> SchedulerConfig {
    SchedulerConfig {
        mode,
        ..SchedulerConfig::default()
    }
}

#[actix_rt::test]
async fn local_confirmation_answers_only_once_the_assignment_is_durable() -> anyhow::Result<()> {
    let (h, store) = Harness::start_faulty(config(SchedulingMode::LocalConfirmation));
    let client = Harness::client(1);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let flushed_before = h.writer.stats().flushes;
    store.gate.close();
    let scheduler = h.scheduler.clone();
    let message = Harness::message(&client, &pid, 1);
    let call = actix_rt::spawn(async move {
        scheduler
            .schedule(ScheduleRequest {
                message,
                ..ScheduleRequest::default()
            })
            .await
    });
    // The assignment is signed and handed to group commit…
    let writer = h.writer.clone();
    let submitted_before = writer.stats().submitted;
    wait_until(
        "the write reaches group commit",
        Duration::from_secs(10),
        || writer.stats().submitted > submitted_before,
    )
    .await;
    // …but while its flush is held, the caller has no answer.
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(1));
    assert!(!call.is_finished());
    assert_eq!(h.writer.stats().flushes, flushed_before);
    store.gate.open();
    let a = call.await??;
    assert_eq!(a.slot, 1);
    assert!(h.writer.stats().flushes > flushed_before);
    let stored = SchedulerCache::new(h.store.clone()).read(&pid, 1)?;
    assert_eq!(stored.map(|r| r.assignment), Some(a.message.clone()));
    Ok(())
}

#[actix_rt::test]
async fn aggressive_mode_answers_before_the_flush_and_writes_in_slot_order() -> anyhow::Result<()> {
    let (h, store) = Harness::start_faulty(config(SchedulingMode::Aggressive));
    let client = Harness::client(2);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    store.gate.close();
    // Answered although nothing can be flushed.
    for n in 1..=5 {
        let a = h.schedule(Harness::message(&client, &pid, n)).await?;
        assert_eq!(a.slot, n as u64);
    }
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(5));
    store.gate.open();
    // The writes land, in order, without gaps.
    let cache = SchedulerCache::new(h.store.clone());
    wait_until("every write lands", Duration::from_secs(10), || {
        cache.latest(&pid).ok().flatten().map(|head| head.slot) == Some(5)
    })
    .await;
    let schedule = h.schedule_of(pid).await?;
    hb_scheduler::verify_chain(pid, hb_scheduler::ExpectedSigner::FromDefinition, &schedule)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(schedule.len(), 6);
    Ok(())
}

#[actix_rt::test]
async fn a_failed_write_is_a_store_error_and_the_slot_is_reused() -> anyhow::Result<()> {
    let (h, store) = Harness::start_faulty(config(SchedulingMode::LocalConfirmation));
    let client = Harness::client(3);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    h.schedule(Harness::message(&client, &pid, 1)).await?;
    store.fail_writes(true);
    h.expect_restarts(1); // a failed write stops the server on purpose
    let err = h
        .schedule(Harness::message(&client, &pid, 2))
        .await
        .expect_err("write fails");
    assert!(matches!(err, SchedulerError::Store(_)), "{err:?}");
    assert_eq!(err.code(), "store-error");
    store.fail_writes(false);
    // The server restarted from the store: slot 2 was never stored, so the
    // next message gets it.
    let a = h.schedule(Harness::message(&client, &pid, 3)).await?;
    assert_eq!(a.slot, 2);
    let schedule = h.schedule_of(pid).await?;
    hb_scheduler::verify_chain(pid, hb_scheduler::ExpectedSigner::FromDefinition, &schedule)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(h.restarts(), 1);
    Ok(())
}

#[derive(Default)]
struct CountingUploader(AtomicU64);

impl Uploader for CountingUploader {
    fn upload<'a>(&'a self, _: &'a Assignment) -> BoxFuture<'a, Result<(), String>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err("the remote is down (its result is not checked)".to_string()) })
    }
}

#[actix_rt::test]
async fn remote_confirmation_answers_after_the_upload_attempt() -> anyhow::Result<()> {
    let uploader = Arc::new(CountingUploader::default());
    let h =
        Harness::start_with_uploader(config(SchedulingMode::RemoteConfirmation), uploader.clone());
    let client = Harness::client(4);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    assert_eq!(uploader.0.load(Ordering::SeqCst), 1);
    for n in 1..=3 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
        assert_eq!(uploader.0.load(Ordering::SeqCst), n as u64 + 1);
    }
    Ok(())
}

#[actix_rt::test]
async fn disabled_mode_refuses_to_schedule_but_reads_work() -> anyhow::Result<()> {
    let mut h = Harness::start(config(SchedulingMode::LocalConfirmation));
    let client = Harness::client(5);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    h.restart_with(config(SchedulingMode::Disabled)).await;
    let err = h
        .schedule(Harness::message(&client, &pid, 1))
        .await
        .expect_err("disabled");
    assert!(matches!(err, SchedulerError::SchedulingDisabled), "{err:?}");
    assert_eq!(err.status(), 503);
    assert_eq!(h.schedule_of(pid).await?.len(), 1);
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(0));
    Ok(())
}

#[test]
fn unknown_modes_are_rejected_when_configuration_loads() {
    let err = "eventually"
        .parse::<SchedulingMode>()
        .expect_err("unknown mode");
    for allowed in SchedulingMode::ALLOWED {
        assert!(err.to_string().contains(allowed), "{err}");
    }
}

#[actix_rt::test]
async fn aggressive_mode_bounds_the_writes_not_yet_durable() -> anyhow::Result<()> {
    let (h, store) = Harness::start_faulty(SchedulerConfig {
        server_capacity: 2,
        ..config(SchedulingMode::Aggressive)
    });
    let client = Harness::client(6);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let server = h.scheduler.find(pid).await?.expect("a live server");
    // The registration's own write may still hold a slot: let it land.
    wait_until(
        "the registration is durable",
        Duration::from_secs(10),
        || server.inflight() == 0,
    )
    .await;
    store.gate.close();
    // Answered at once, but both writes still hold the server's capacity…
    assert_eq!(
        h.schedule(Harness::message(&client, &pid, 1)).await?.slot,
        1
    );
    assert_eq!(
        h.schedule(Harness::message(&client, &pid, 2)).await?.slot,
        2
    );
    let err = h
        .schedule(Harness::message(&client, &pid, 3))
        .await
        .expect_err("busy");
    assert!(matches!(err, SchedulerError::Busy { .. }), "{err:?}");
    // …until they are durable.
    store.gate.open();
    wait_until("the writes are durable", Duration::from_secs(10), || {
        server.inflight() == 0
    })
    .await;
    assert_eq!(
        h.schedule(Harness::message(&client, &pid, 3)).await?.slot,
        3
    );
    Ok(())
}
