//! SPEC §5.2–5.3: slots start at 0 and increase without gaps or duplicates,
//! and every schedule's hash chain and signatures verify from slot 0 —
//! for 1,000 processes scheduled concurrently from many tasks.

use std::collections::HashSet;

use futures::future::join_all;
use hb_message::IdSelector;
use hb_scheduler::{verify_chain, ExpectedSigner, SchedulerConfig};
use hb_testkit::Harness;

#[actix_rt::test]
async fn a_registered_process_gets_slot_zero_and_messages_follow() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(1);
    let (pid, genesis) = h.spawn_process(&client, 0).await?;
    assert_eq!(genesis.slot, 0);
    assert_eq!(genesis.pid, pid);
    // The definition is in the message cache, found by the process ID.
    let cached = hb_store::MessageCache::new(h.store.clone()).read(&pid)?;
    assert_eq!(cached.as_ref(), genesis.body());
    for n in 1..=5 {
        let a = h.schedule(Harness::message(&client, &pid, n)).await?;
        assert_eq!(a.slot, n as u64);
        assert!(a.message.verify(&IdSelector::All)?.is_valid());
        assert_eq!(a.message.committers()?, vec![h.key.address().to_string()]);
    }
    let schedule = h.schedule_of(pid).await?;
    assert_eq!(schedule.len(), 6);
    verify_chain(pid, ExpectedSigner::FromDefinition, &schedule)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    Ok(())
}

#[actix_rt::test]
async fn a_thousand_processes_scheduled_concurrently_stay_gapless() -> anyhow::Result<()> {
    const PROCESSES: usize = 1_000;
    const MESSAGES: i64 = 5;
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(2);
    let spawned = join_all((0..PROCESSES).map(|i| h.spawn_process(&client, i as i64))).await;
    let pids: Vec<_> = spawned
        .into_iter()
        .map(|r| r.map(|(pid, _)| pid))
        .collect::<Result<_, _>>()?;
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), PROCESSES);

    // Many concurrent tasks, each sending to every process in turn, so
    // messages for one process arrive interleaved from different tasks.
    let tasks = (0..MESSAGES).map(|n| {
        let h = &h;
        let client = &client;
        let pids = &pids;
        async move {
            let sends = pids
                .iter()
                .map(|pid| h.schedule(Harness::message(client, pid, n)));
            join_all(sends).await
        }
    });
    for results in join_all(tasks).await {
        for r in results {
            r?;
        }
    }

    for pid in &pids {
        let schedule = h.schedule_of(*pid).await?;
        assert_eq!(schedule.len() as i64, MESSAGES + 1, "process {pid}");
        let report = verify_chain(*pid, ExpectedSigner::FromDefinition, &schedule)
            .map_err(|f| anyhow::anyhow!("{pid}: {f}"))?;
        assert_eq!(report.slots as i64, MESSAGES + 1);
        let ns: HashSet<i64> = schedule[1..]
            .iter()
            .filter_map(|a| a.get_message("body").and_then(|b| b.get_int("n")))
            .collect();
        assert_eq!(
            ns,
            (0..MESSAGES).collect(),
            "every message exactly once on {pid}"
        );
    }
    assert_eq!(h.scheduler.processes().await?.len(), PROCESSES);
    Ok(())
}
