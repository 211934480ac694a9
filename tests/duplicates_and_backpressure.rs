//! SPEC §5.5 (de-duplication by signed ID, idempotent internal calls) and
//! §5.2/§5.4 (bounded queues answer `Busy`; every call has a deadline).

use hb_message::ErrorCode;
use hb_scheduler::{DedupPolicy, ScheduleRequest, SchedulerConfig, SchedulerError};
use std::time::Duration;

use hb_testkit::{wait_until, Harness};

#[actix_rt::test]
async fn without_dedup_a_repeat_gets_a_new_slot() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(1);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let m = Harness::message(&client, &pid, 1);
    assert_eq!(h.schedule(m.clone()).await?.slot, 1);
    assert_eq!(h.schedule(m).await?.slot, 2);
    Ok(())
}

#[actix_rt::test]
async fn signed_id_dedup_names_the_original_slot() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        dedup: DedupPolicy::SignedId,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(2);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let m = Harness::message(&client, &pid, 1);
    let first = h.schedule(m.clone()).await?;
    // Concurrent repeats (in flight together) and a later one.
    let (a, b) = futures::join!(h.schedule(m.clone()), h.schedule(m.clone()));
    for r in [a, b, h.schedule(m.clone()).await] {
        match r {
            Err(SchedulerError::Duplicate {
                original_slot,
                original_assignment,
                ..
            }) => {
                assert_eq!(original_slot, first.slot);
                assert_eq!(original_assignment, first.id.to_human());
            }
            other => panic!("expected a duplicate, got {other:?}"),
        }
    }
    let err = h.schedule(m).await.expect_err("duplicate");
    assert_eq!((err.code(), err.status()), ("duplicate-message", 409));
    assert!(err.to_string().contains("slot 1"), "{err}");
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(1));
    Ok(())
}

#[actix_rt::test]
async fn a_process_can_turn_dedup_on_for_itself() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(3);
    let def = hb_message::Message::new()
        .with("type", "Process")?
        .with("scheduler", h.key.address())?
        .with("scheduler-dedup", "signed-id")?
        .commit(&client, None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    let m = Harness::message(&client, &pid, 1);
    h.schedule(m.clone()).await?;
    assert!(matches!(
        h.schedule(m).await,
        Err(SchedulerError::Duplicate { .. })
    ));
    Ok(())
}

#[actix_rt::test]
async fn idempotent_calls_get_the_original_assignment_whatever_the_policy() -> anyhow::Result<()> {
    let mut h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(4);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let m = Harness::message(&client, &pid, 1);
    let req = || ScheduleRequest {
        message: m.clone(),
        idempotent: true,
        ..ScheduleRequest::default()
    };
    let first = h.scheduler.schedule(req()).await?;
    let again = h.scheduler.schedule(req()).await?;
    assert_eq!(again.id, first.id);
    // Also after a restart of the whole graph (found in the stored index).
    h.restart().await;
    let after = h.scheduler.schedule(req()).await?;
    assert_eq!(after.id, first.id);
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(1));
    Ok(())
}

#[actix_rt::test]
async fn a_saturated_server_answers_busy_at_once() -> anyhow::Result<()> {
    let (h, store) = Harness::start_faulty(SchedulerConfig {
        server_capacity: 2,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(5);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let server = h.scheduler.find(pid).await?.expect("a live server");
    store.gate.close();
    // Two calls fill the server: their writes wait at the flush gate.
    let held: Vec<_> = (1..=2)
        .map(|n| {
            let scheduler = h.scheduler.clone();
            let message = Harness::message(&client, &pid, n);
            actix_rt::spawn(async move {
                scheduler
                    .schedule(ScheduleRequest {
                        message,
                        ..ScheduleRequest::default()
                    })
                    .await
            })
        })
        .collect();
    wait_until(
        "both calls are held by the server",
        Duration::from_secs(10),
        || server.inflight() == 2,
    )
    .await;
    let err = h
        .schedule(Harness::message(&client, &pid, 3))
        .await
        .expect_err("busy");
    assert!(matches!(err, SchedulerError::Busy { .. }), "{err:?}");
    assert_eq!((err.code(), err.status()), ("busy", 503));
    store.gate.open();
    let mut slots = Vec::new();
    for call in held {
        slots.push(call.await??.slot);
    }
    slots.sort();
    assert_eq!(slots, vec![1, 2]);
    assert_eq!(
        h.schedule(Harness::message(&client, &pid, 3)).await?.slot,
        3
    );
    Ok(())
}

#[actix_rt::test]
async fn a_call_past_its_deadline_times_out_and_may_still_be_assigned() -> anyhow::Result<()> {
    let (h, store) = Harness::start_faulty(SchedulerConfig {
        schedule_timeout_ms: 200,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(6);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    store.gate.close();
    let err = h
        .schedule(Harness::message(&client, &pid, 1))
        .await
        .expect_err("deadline");
    assert!(matches!(err, SchedulerError::Timeout { .. }), "{err:?}");
    assert_eq!((err.code(), err.status()), ("schedule-timeout", 504));
    store.gate.open();
    // A timeout does not prove the message unassigned: it is at slot 1.
    let a = h.schedule(Harness::message(&client, &pid, 2)).await?;
    assert_eq!(a.slot, 2);
    let schedule = h.schedule_of(pid).await?;
    assert_eq!(
        schedule[1].get_message("body").and_then(|b| b.get_int("n")),
        Some(1)
    );
    Ok(())
}

/// A message whose `commitments` is an empty map: it signs nothing.
fn with_empty_commitments(pid: &hb_message::Id, n: i64) -> hb_message::Message {
    let mut m = hb_message::Message::new()
        .with("target", pid.to_human())
        .and_then(|m| m.with("n", n))
        .expect("literal keys are valid");
    m.insert("commitments", hb_message::Message::new())
        .expect("an empty commitments map is a valid value");
    m
}

#[actix_rt::test]
async fn empty_commitments_are_unsigned_so_never_deduplicated() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        dedup: DedupPolicy::SignedId,
        ..SchedulerConfig::default()
    });
    let (pid, _) = h.spawn_process(&Harness::client(1), 0).await?;
    let first = h.schedule(with_empty_commitments(&pid, 1)).await?;
    let again = h.schedule(with_empty_commitments(&pid, 1)).await?;
    assert_eq!(
        (first.slot, again.slot),
        (1, 2),
        "unsigned repeats get new slots"
    );
    Ok(())
}

#[actix_rt::test]
async fn empty_commitments_are_refused_where_signatures_are_required() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        require_signed: true,
        ..SchedulerConfig::default()
    });
    let (pid, _) = h.spawn_process(&Harness::client(1), 0).await?;
    let err = h
        .schedule(with_empty_commitments(&pid, 1))
        .await
        .expect_err("unsigned");
    assert_eq!((err.code(), err.status()), ("unsigned-message", 400));
    Ok(())
}
