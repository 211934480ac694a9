//! SPEC §5.1–5.2: restarting the whole actor graph on the same store
//! resumes every process exactly where it was (slot and hash chain), with
//! no replay: servers start lazily from one reverse seek each.

use hb_scheduler::{verify_chain, SchedulerConfig};
use hb_testkit::Harness;

#[actix_rt::test]
async fn every_process_resumes_at_its_next_slot_and_chain() -> anyhow::Result<()> {
    let mut h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(3);
    let mut pids = Vec::new();
    for i in 0..20 {
        let (pid, _) = h.spawn_process(&client, i).await?;
        for n in 0..i {
            h.schedule(Harness::message(&client, &pid, n)).await?;
        }
        pids.push((pid, i as u64));
    }

    h.restart().await;
    assert_eq!(
        h.scheduler.processes().await?.len(),
        20,
        "stored schedules are listed"
    );
    for (pid, last) in &pids {
        assert!(
            h.scheduler.find(*pid).await?.is_none(),
            "no server starts before it is needed"
        );
        let current = h.scheduler.current(*pid).await?.expect("a stored schedule");
        assert_eq!(current.slot as u64, *last);
        let a = h.schedule(Harness::message(&client, pid, 1_000)).await?;
        assert_eq!(a.slot, last + 1);
        let schedule = h.schedule_of(*pid).await?;
        verify_chain(
            *pid,
            hb_scheduler::ExpectedSigner::FromDefinition,
            &schedule,
        )
        .map_err(|f| anyhow::anyhow!("{pid}: {f}"))?;
    }
    Ok(())
}
