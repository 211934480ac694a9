//! SPEC §6.4 through `Computation` on a real scheduler (hb-testkit):
//! the schedule folds through `test-device@1.0` from init, states are
//! cached per slot with snapshots, a restored snapshot continues to the
//! same state as an uninterrupted run, a slot beyond the schedule is
//! `SlotNotAvailable`, and a failing slot halts the process there with its
//! phase and slot.

use std::sync::Arc;

use hb_device::{Context, DeviceRegistry};
use hb_message::{ErrorCode, Id, Message, Value};
use hb_process::test_device::TestDevice;
use hb_process::{Computation, ComputeEnv, ComputeError, Phase};
use hb_scheduler::SchedulerDevice;
use hb_store::{MemoryStore, ProcessCache, Store};
use hb_testkit::Harness;

fn env(h: &Harness, cache_store: Arc<dyn Store>, snapshot_every: u64) -> ComputeEnv {
    let mut registry = DeviceRegistry::new();
    registry
        .register(Arc::new(SchedulerDevice))
        .expect("scheduler@1.0 registers");
    registry
        .register(Arc::new(TestDevice::new(false)))
        .expect("test-device@1.0 registers");
    let ctx = Context::builder(h.key.clone())
        .store(Arc::clone(&h.store))
        .registry(registry)
        .build();
    ctx.insert_extension(Arc::new(h.scheduler.clone()));
    ComputeEnv {
        ctx,
        scheduler: h.scheduler.clone(),
        cache: ProcessCache::new(cache_store),
        clock: Arc::new(h.clock.clone()),
        snapshot_every,
    }
}

fn add(pid: &Id, n: i64, extra: Option<(&str, &str)>) -> Message {
    let mut m = Message::new()
        .with("target", pid.to_human())
        .and_then(|m| m.with("add", n))
        .expect("literal keys");
    if let Some((k, v)) = extra {
        m.insert(k, v).expect("literal key");
    }
    m.commit(&Harness::client(1), None).expect("commit")
}

/// A state's ID without its `snapshot` (which only stored copies carry).
fn state_id(state: &Message) -> Id {
    let mut s = state.clone();
    s.remove("snapshot");
    s.id_all().expect("an ID")
}

async fn registered(h: &Harness, adds: &[i64]) -> anyhow::Result<Id> {
    let (pid, _) = h.spawn_process(&Harness::client(1), 0).await?;
    for n in adds {
        h.schedule(add(&pid, *n, None)).await?;
    }
    Ok(pid)
}

#[actix_rt::test]
async fn the_schedule_folds_from_init_and_every_slot_is_cached() -> anyhow::Result<()> {
    let h = Harness::start(Default::default());
    let pid = registered(&h, &[5, 7, -2]).await?;
    let mut c = Computation::new(pid, env(&h, Arc::clone(&h.store), 2));
    let mut seen_slots = Vec::new();
    let done = c
        .compute_to(3, &mut |slot, _, _| seen_slots.push(slot))
        .await?;
    assert_eq!(seen_slots, [0, 1, 2, 3]);
    assert_eq!(done.slot, 3);
    let state = &done.state;
    assert_eq!(
        (state.get_int("count"), state.get_int("sum")),
        (Some(4), Some(10))
    );
    assert_eq!(state.get_int("at-slot"), Some(3));
    assert_eq!(state.get_text("device"), Some("process@1.0"));
    assert_eq!(state.get("initialized"), Some(&Value::Bool(true)));
    assert_eq!(
        state.get_message("process").map(|p| p.id_all().ok()),
        Some(Some(pid))
    );
    // Every slot is cached; the stored copies carry a snapshot at 0 and
    // every 2 slots, and answers never show it.
    let stored = ProcessCache::new(Arc::clone(&h.store));
    for slot in 0..=3u64 {
        let cached = c.cached(slot).await?.expect("cached");
        assert_eq!(cached.state.get_int("at-slot"), Some(slot as i64));
        assert!(cached.state.get("snapshot").is_none());
        let record = stored.read_slot(&pid, slot)?.expect("stored");
        assert_eq!(
            record.state.get("snapshot").is_some(),
            slot % 2 == 0,
            "slot {slot}"
        );
    }
    assert_eq!(c.snapshot_slot(), Some(2));
    Ok(())
}

#[actix_rt::test]
async fn a_cold_start_from_a_snapshot_reaches_the_same_state_as_an_uninterrupted_run(
) -> anyhow::Result<()> {
    let h = Harness::start(Default::default());
    let pid = registered(&h, &[1, 2, 3, 4, 5, 6]).await?;
    // Uninterrupted, in a cache of its own.
    let mut straight = Computation::new(pid, env(&h, Arc::new(MemoryStore::new()), 0));
    let expected = straight.compute_to(6, &mut |_, _, _| {}).await?;
    // Another cache: compute to 3 (snapshot there), drop the computation,
    // and let a new one continue from that snapshot.
    let restarted_cache: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut first = Computation::new(pid, env(&h, Arc::clone(&restarted_cache), 3));
    first.compute_to(3, &mut |_, _, _| {}).await?;
    drop(first);
    let mut cold = Computation::new(pid, env(&h, restarted_cache, 3));
    let mut run = Vec::new();
    let got = cold.compute_to(6, &mut |slot, _, _| run.push(slot)).await?;
    assert_eq!(
        run,
        [4, 5, 6],
        "continued from the snapshot at 3, not from init"
    );
    assert_eq!(state_id(&got.state), state_id(&expected.state));
    Ok(())
}

#[actix_rt::test]
async fn a_slot_beyond_the_schedule_is_not_available_and_nothing_runs() -> anyhow::Result<()> {
    let h = Harness::start(Default::default());
    let pid = registered(&h, &[1]).await?;
    let mut c = Computation::new(pid, env(&h, Arc::clone(&h.store), 1));
    let err = c.compute_to(9, &mut |_, _, _| {}).await.unwrap_err();
    assert!(
        matches!(
            err,
            ComputeError::SlotNotAvailable {
                requested: 9,
                latest: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!((err.code(), err.status()), ("slot-not-available", 404));
    assert!(c.live().is_none(), "nothing was computed");
    let unknown = Computation::new(Id::hash(b"nobody"), env(&h, Arc::clone(&h.store), 1))
        .compute_to(0, &mut |_, _, _| {})
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), "unknown-process");
    Ok(())
}

#[actix_rt::test]
async fn a_failing_slot_halts_the_process_there_with_its_phase() -> anyhow::Result<()> {
    let h = Harness::start(Default::default());
    let pid = registered(&h, &[1, 2]).await?;
    h.schedule(add(&pid, 3, Some(("fail", "error")))).await?;
    h.schedule(add(&pid, 4, None)).await?;
    let mut c = Computation::new(pid, env(&h, Arc::clone(&h.store), 1));
    let err = c.compute_to(4, &mut |_, _, _| {}).await.unwrap_err();
    assert_eq!(err.phase(), Some((Phase::Compute, 3)), "{err}");
    assert_eq!((err.code(), err.status()), ("compute-failed", 500));
    assert_eq!(
        c.at_slot(),
        Some(2),
        "the state did not advance past the failure"
    );
    let last = c.last_error().expect("the failure is remembered");
    assert_eq!((last.slot, last.phase.as_str()), (3, "compute"));
    // Asking again fails the same way; slots before it are served.
    assert!(c.compute_to(4, &mut |_, _, _| {}).await.is_err());
    assert_eq!(c.compute_to(2, &mut |_, _, _| {}).await?.slot, 2);
    Ok(())
}
