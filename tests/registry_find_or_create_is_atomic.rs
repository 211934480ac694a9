//! SPEC §5.1: at most one scheduler server per process; `find_or_create`
//! is atomic; `find` never creates; dead servers are replaced on lookup.

use futures::future::join_all;
use hb_message::Id;
use hb_scheduler::{SchedulerConfig, SchedulerError, SchedulingMode};
use hb_tests::harness::Harness;

#[actix_rt::test]
async fn a_hundred_concurrent_callers_get_one_server() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let pid = Id::hash(b"a brand-new process");
    assert!(h.scheduler.find(pid).await?.is_none(), "find never creates");
    let handles = join_all((0..100).map(|_| h.scheduler.find_or_create(pid))).await;
    let handles: Vec<_> = handles.into_iter().collect::<Result<_, _>>()?;
    let first = &handles[0];
    assert!(
        handles.iter().all(|s| s.same_server(first)),
        "every caller shares one server"
    );
    assert_eq!(
        h.scheduler.processes().await?,
        vec![pid],
        "one live server is listed"
    );
    assert!(h
        .scheduler
        .find(pid)
        .await?
        .is_some_and(|s| s.same_server(first)));
    Ok(())
}

#[actix_rt::test]
async fn concurrent_registrations_of_many_processes_each_get_one_server() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let pids: Vec<Id> = (0..20u8).map(|i| Id::hash(&[i])).collect();
    let calls = pids.iter().flat_map(|p| (0..10).map(move |_| *p));
    let handles = join_all(calls.map(|p| h.scheduler.find_or_create(p))).await;
    let handles: Vec<_> = handles.into_iter().collect::<Result<_, _>>()?;
    for pid in &pids {
        let mine: Vec<_> = handles.iter().filter(|s| s.pid() == *pid).collect();
        assert_eq!(mine.len(), 10);
        assert!(mine.iter().all(|s| s.same_server(mine[0])));
    }
    let mut expected = pids.clone();
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
    let pid = Id::hash(b"p");
    let err = h.scheduler.find_or_create(pid).await.err();
    assert!(
        matches!(err, Some(SchedulerError::SchedulingDisabled)),
        "{err:?}"
    );
    assert!(
        h.scheduler.find(pid).await?.is_none(),
        "a failed start registers nothing"
    );
    assert!(h.scheduler.processes().await?.is_empty());
    Ok(())
}
