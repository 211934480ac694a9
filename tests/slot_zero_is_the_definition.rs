//! SPEC §5.2: slot 0 is the process definition. A server whose schedule is
//! empty accepts only the `Process` whose ID is its pid, whatever started
//! it, and a live server never makes a process "registered". Each test is
//! one path that, before this rule, gave an ordinary message slot 0.

use hb_message::Message;
use hb_scheduler::{SchedulerConfig, SchedulingMode};
use hb_testkit::Harness;

#[actix_rt::test]
async fn a_message_to_a_process_never_defined_is_unknown_and_starts_nothing() -> anyhow::Result<()>
{
    let h = Harness::start(SchedulerConfig::default());
    let def = h.process_definition(&Harness::client(1), 0);
    let pid = def.id_all()?;
    let err = h
        .schedule(Harness::message(&Harness::client(1), &pid, 1))
        .await
        .unwrap_err();
    assert_eq!(hb_message::ErrorCode::code(&err), "unknown-process");
    assert!(h.scheduler.find(pid).await?.is_none());
    assert!(h.scheduler.processes().await?.is_empty());
    // The definition then takes slot 0, and the message slot 1.
    assert_eq!(h.schedule(def).await?.slot, 0);
    let one = h
        .schedule(Harness::message(&Harness::client(1), &pid, 1))
        .await?;
    assert_eq!(one.slot, 1);
    Ok(())
}

#[actix_rt::test]
async fn after_the_definitions_write_failed_the_restarted_server_refuses_messages(
) -> anyhow::Result<()> {
    let (h, faulty) = Harness::start_faulty(SchedulerConfig::default());
    let def = h.process_definition(&Harness::client(1), 0);
    let pid = def.id_all()?;
    faulty.fail_writes(true);
    h.expect_restarts(1); // the failed write stops the server on purpose
    let err = h.schedule(def.clone()).await.unwrap_err();
    assert_eq!(hb_message::ErrorCode::code(&err), "store-error", "{err}");
    faulty.fail_writes(false);
    hb_testkit::wait_until(
        "the server restarted",
        std::time::Duration::from_secs(10),
        || h.restarts() == 1,
    )
    .await;
    // The server is alive with an empty schedule: that is not a process.
    let err = h
        .schedule(Harness::message(&Harness::client(1), &pid, 1))
        .await
        .unwrap_err();
    assert_eq!(
        hb_message::ErrorCode::code(&err),
        "unknown-process",
        "{err}"
    );
    assert!(h.scheduler.processes().await?.is_empty(), "not listed");
    assert!(h.schedule_of(pid).await.is_err(), "no schedule to read");
    // Re-posting the definition registers it at slot 0.
    assert_eq!(h.schedule(def).await?.slot, 0);
    assert_eq!(h.scheduler.processes().await?, vec![pid]);
    Ok(())
}

#[actix_rt::test]
async fn another_processes_definition_is_not_slot_zero() -> anyhow::Result<()> {
    // A Process message aimed at a pid (its `target`) is still a
    // definition of its own ID, so it registers itself, never the target.
    let h = Harness::start(SchedulerConfig::default());
    let (pid, _) = h.spawn_process(&Harness::client(1), 0).await?;
    let other = h.process_definition(&Harness::client(2), 7);
    let other = Message::clone(&other);
    let a = h.schedule(other.clone()).await?;
    assert_eq!(a.pid, other.id_all()?);
    assert_eq!(a.slot, 0);
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(0));
    Ok(())
}

#[actix_rt::test]
async fn in_aggressive_mode_a_message_may_follow_a_definition_not_yet_written() -> anyhow::Result<()>
{
    // The live server knows slot 0 before it is durable: a message right
    // behind the definition is accepted as slot 1, and the store keeps
    // them in order (slot 1 requires slot 0).
    let h = Harness::start(SchedulerConfig {
        mode: SchedulingMode::Aggressive,
        ..SchedulerConfig::default()
    });
    let def = h.process_definition(&Harness::client(1), 0);
    let pid = def.id_all()?;
    assert_eq!(h.schedule(def).await?.slot, 0);
    let one = h
        .schedule(Harness::message(&Harness::client(1), &pid, 1))
        .await?;
    assert_eq!(one.slot, 1);
    // Shutdown returns once every write handed to group commit is durable.
    h.scheduler.shutdown().await;
    let stored = hb_store::SchedulerCache::new(h.store.clone()).range(&pid, 0, 10)?;
    let slots: Vec<u64> = stored.iter().map(|r| r.slot).collect();
    assert_eq!(slots, [0, 1]);
    Ok(())
}
