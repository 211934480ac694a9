//! A slot is assigned before its write lands: in aggressive mode the caller
//! is answered at once, and in local_confirmation the current slot moves
//! while the write waits for its group commit. A computation asked for such
//! a slot (as `now` asks for the current one) waits for the write instead
//! of failing as `slot-not-available`.

use std::time::Duration;

use hb_process::ProcessBuilder;
use hb_scheduler::{SchedulerConfig, SchedulingMode};
use hb_testkit::Harness;

#[actix_rt::test]
async fn a_compute_of_an_assigned_slot_waits_for_its_write_to_land() -> anyhow::Result<()> {
    let (h, store) = Harness::start_faulty(SchedulerConfig {
        mode: SchedulingMode::Aggressive,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(4);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let layer = ProcessBuilder::new(h.scheduler.clone()).start()?;
    layer.compute(pid, 0).await?;
    // Held flushes keep the later writes queued behind the first: slots
    // 2–4 are assigned (the callers have their answers) but not stored.
    store.gate.close();
    for n in 1..=4 {
        let a = h.schedule(Harness::message(&client, &pid, n)).await?;
        assert_eq!(a.slot, n as u64);
    }
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(4));
    let computing = {
        let layer = layer.clone();
        actix_rt::spawn(async move { layer.compute(pid, 4).await })
    };
    // Give the computation time to reach the missing slot. Not a timing
    // assertion: it cannot finish while the writes are held, whatever the
    // pause; before this behaviour it failed at once.
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !computing.is_finished(),
        "the compute must wait for the held writes, not fail"
    );
    store.gate.open();
    let computed = computing.await??;
    assert_eq!(computed.slot, 4);
    layer.shutdown().await;
    Ok(())
}
