//! SPEC §5.1: at most one scheduler server per process, started atomically
//! however many callers race for it; `find` never creates; a disabled node
//! starts none. Proven through the public API: concurrent registrations and
//! messages, and the registry's own count of started servers.

use std::sync::atomic::Ordering;

use futures::future::join_all;
use hb_message::Id;
use hb_scheduler::{SchedulerConfig, SchedulerError, SchedulingMode};
use hb_testkit::Harness;

#[actix_rt::test]
async fn a_hundred_concurrent_registrations_start_one_server_and_get_distinct_slots(
) -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let def = h.process_definition(&Harness::client(1), 0);
    let pid = def.id_all()?;
    assert!(h.scheduler.find(pid).await?.is_none(), "find never creates");
    // Re-posting a definition gives it a new slot (no dedup by default),
    // so 100 racing registrations need one server handing out 0..=99.
    let answers = join_all((0..100).map(|_| h.schedule(def.clone()))).await;
    let mut slots: Vec<u64> = answers
        .into_iter()
        .map(|a| a.map(|a| a.slot))
        .collect::<Result<_, _>>()?;
    slots.sort_unstable();
    assert_eq!(slots, (0..100).collect::<Vec<u64>>());
    assert_eq!(
        h.metrics.started.load(Ordering::Relaxed),
        1,
        "one server started"
    );
    assert_eq!(h.scheduler.processes().await?, vec![pid]);
    Ok(())
}

#[actix_rt::test]
async fn concurrent_registrations_of_many_processes_each_start_one_server() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(2);
    let defs: Vec<_> = (0..20).map(|n| h.process_definition(&client, n)).collect();
    let calls = defs.iter().flat_map(|d| (0..10).map(move |_| d.clone()));
    let answers = join_all(calls.map(|d| h.schedule(d))).await;
    let answers: Vec<_> = answers.into_iter().collect::<Result<_, _>>()?;
    for def in &defs {
        let pid = def.id_all()?;
        let mut mine: Vec<u64> = answers
            .iter()
            .filter(|a| a.pid == pid)
            .map(|a| a.slot)
            .collect();
        mine.sort_unstable();
        assert_eq!(mine, (0..10).collect::<Vec<u64>>(), "{pid}");
    }
    assert_eq!(h.metrics.started.load(Ordering::Relaxed), 20);
    let mut expected: Vec<Id> = defs.iter().map(|d| d.id_all()).collect::<Result<_, _>>()?;
    expected.sort();
    assert_eq!(h.scheduler.processes().await?, expected);
    Ok(())
}

#[actix_rt::test]
async fn a_disabled_node_starts_no_server_but_still_reads() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        mode: SchedulingMode::Disabled,
        ..SchedulerConfig::default()
    });
    let def = h.process_definition(&Harness::client(1), 0);
    let pid = def.id_all()?;
    let err = h.schedule(def).await.err();
    assert!(
        matches!(err, Some(SchedulerError::SchedulingDisabled)),
        "{err:?}"
    );
    assert!(
        h.scheduler.find(pid).await?.is_none(),
        "nothing was started"
    );
    assert_eq!(h.metrics.started.load(Ordering::Relaxed), 0);
    assert!(h.scheduler.processes().await?.is_empty());
    assert!(
        h.scheduler.read_schedule(pid, None, None).await.is_err(),
        "unknown"
    );
    Ok(())
}
