//! DESIGN "Idle actors stop" and issue 8 item 13: after
//! `scheduler_max_idle_ms` without requests a scheduler server deregisters
//! and its actor ends, so memory follows activity, not the number of
//! processes ever seen; the next request starts it again from the store
//! (one reverse seek) and the schedule goes on gapless, its chain intact.
//! Idleness is measured on the harness's manual clock.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::join_all;
use hb_message::Id;
use hb_scheduler::{verify_chain, ExpectedSigner, SchedulerConfig};
use hb_testkit::{wait_until, Harness};

const PROCESSES: usize = 40;

#[actix_rt::test]
async fn idle_servers_retire_their_actors_end_and_they_resume_their_chains() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        max_idle_ms: 1_000,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(1);
    let spawned = join_all((0..PROCESSES as i64).map(|n| h.spawn_process(&client, n))).await;
    let pids: Vec<Id> = spawned
        .into_iter()
        .map(|r| r.map(|(pid, _)| pid))
        .collect::<Result<_, _>>()?;
    for pid in &pids {
        h.schedule(Harness::message(&client, pid, 1)).await?;
    }
    let metrics = &h.metrics;
    assert_eq!(metrics.started.load(Ordering::Relaxed), PROCESSES as u64);
    // Not idle yet: nothing retires while the clock stands still.
    h.clock.advance(999);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(metrics.retired.load(Ordering::Relaxed), 0);

    h.clock.advance(1);
    wait_until(
        "every idle server retired and its actor ended",
        Duration::from_secs(20),
        || metrics.ended.load(Ordering::Relaxed) == PROCESSES as u64,
    )
    .await;
    assert_eq!(metrics.retired.load(Ordering::Relaxed), PROCESSES as u64);
    for pid in &pids {
        assert!(
            h.scheduler.find(*pid).await?.is_none(),
            "{pid} has no live server"
        );
    }
    // Still registered processes: listed from the store.
    let mut listed = h.scheduler.processes().await?;
    let mut expected = pids.clone();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);

    // The next request starts each again from the store, at the next slot.
    for pid in &pids {
        let a = h.schedule(Harness::message(&client, pid, 2)).await?;
        assert_eq!(a.slot, 2, "{pid}");
    }
    assert_eq!(
        metrics.started.load(Ordering::Relaxed),
        2 * PROCESSES as u64
    );
    for pid in &pids {
        let schedule = h.schedule_of(*pid).await?;
        assert_eq!(schedule.len(), 3);
        verify_chain(*pid, ExpectedSigner::FromDefinition, &schedule)
            .map_err(|f| anyhow::anyhow!("{pid}: {f}"))?;
    }
    Ok(())
}

#[actix_rt::test]
async fn a_server_with_a_request_in_flight_is_not_retired() -> anyhow::Result<()> {
    // The flush gate holds a write: the server is past its idle time on
    // the clock but has a pending write, so it stays.
    let (h, faulty) = Harness::start_faulty(SchedulerConfig {
        max_idle_ms: 1_000,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(2);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    faulty.gate.close();
    let pending = {
        let h = &h;
        let m = Harness::message(&client, &pid, 1);
        async move { h.schedule(m).await }
    };
    let (answer, ()) = futures::join!(pending, async {
        wait_until("the write is queued", Duration::from_secs(10), || {
            h.writer.stats().submitted > h.writer.stats().committed
        })
        .await;
        h.clock.advance(10_000);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            h.metrics.retired.load(Ordering::Relaxed),
            0,
            "a write is pending"
        );
        faulty.gate.open();
    });
    assert_eq!(answer?.slot, 1);
    Ok(())
}
