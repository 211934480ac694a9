//! SPEC §6.4–6.7 through the `Processes` handle on a real scheduler
//! (hb-testkit): one worker per process shares computation between
//! concurrent requests (each slot computed once), `now` computes to the
//! scheduler's current slot and honours freshness hints, a waiter's
//! deadline answers `Timeout` while the computation goes on, a device
//! panic fails its slot each time without a restart loop, and `status`
//! explains a halted process without computing anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;
use hb_device::{Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{ErrorCode, Id, Key, Message};
use hb_process::test_device::TestDevice;
use hb_process::{ComputeError, Freshness, ProcessBuilder, ProcessConfig, Processes};
use hb_scheduler::SchedulerConfig;
use hb_testkit::Harness;

/// `test-device@1.0` under another name, counting the slots it computes.
struct Counting {
    inner: TestDevice,
    slots: Arc<AtomicU64>,
}

#[async_trait]
impl Device for Counting {
    fn name(&self) -> &str {
        "counting@1.0"
    }
    fn info(&self) -> DeviceInfo {
        self.inner.info()
    }
    async fn call(
        &self,
        key: &Key,
        base: Message,
        request: &Message,
        ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if !["init", "snapshot", "normalize"].contains(&key.as_str()) {
            self.slots.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.call(key, base, request, ctx).await
    }
}

fn harness() -> Harness {
    Harness::start(SchedulerConfig {
        // The counting device is known to the process layer only.
        validate_process_devices: false,
        ..SchedulerConfig::default()
    })
}

fn start(h: &Harness, config: ProcessConfig) -> (Processes, Arc<AtomicU64>) {
    let slots = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: TestDevice::new(config.test_device_panics),
        slots: Arc::clone(&slots),
    };
    let processes = ProcessBuilder::new(h.scheduler.clone())
        .config(config)
        .device(Arc::new(counting))
        .expect("counting@1.0 registers")
        .start()
        .expect("the process layer starts");
    (processes, slots)
}

async fn register(h: &Harness, device: &str) -> anyhow::Result<Id> {
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", device)?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    Ok(pid)
}

async fn send(h: &Harness, pid: &Id, pairs: &[(&str, hb_message::Value)]) -> anyhow::Result<u64> {
    let mut m = Message::new().with("target", pid.to_human())?;
    for (k, v) in pairs {
        m.insert(k, v.clone())?;
    }
    Ok(h.schedule(m.commit(&Harness::client(1), None)?).await?.slot)
}

#[actix_rt::test]
async fn a_hundred_concurrent_requests_for_one_slot_compute_each_slot_once() -> anyhow::Result<()> {
    let h = harness();
    let (p, slots) = start(&h, ProcessConfig::default());
    let pid = register(&h, "counting@1.0").await?;
    for n in 1..=20 {
        send(&h, &pid, &[("add", n.into())]).await?;
    }
    let answers = join_all((0..100).map(|_| p.compute(pid, 20))).await;
    let states: Vec<_> = answers.into_iter().collect::<Result<_, _>>()?;
    let first = states[0].state.id_all()?;
    assert!(states.iter().all(|s| s.state.id_all().ok() == Some(first)));
    assert_eq!(states[0].state.get_int("sum"), Some(210));
    assert_eq!(slots.load(Ordering::SeqCst), 21, "slots 0..=20, each once");
    assert_eq!(p.metrics().started.load(Ordering::SeqCst), 1, "one worker");
    // Earlier slots are cache hits now: nothing runs again.
    assert_eq!(p.compute(pid, 7).await?.state.get_int("at-slot"), Some(7));
    assert_eq!(slots.load(Ordering::SeqCst), 21);
    p.shutdown().await;
    // After shutdown, a slot that needs a worker is refused, not hung.
    send(&h, &pid, &[("add", 1.into())]).await?;
    let err = p.compute(pid, 21).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("unavailable", 503), "{err}");
    Ok(())
}

#[actix_rt::test]
async fn now_computes_to_the_current_slot_and_freshness_hints_accept_a_cached_state(
) -> anyhow::Result<()> {
    let h = harness();
    let (p, _) = start(&h, ProcessConfig::default());
    let pid = register(&h, "counting@1.0").await?;
    send(&h, &pid, &[("add", 2.into())]).await?;
    let now = p.now(pid, Freshness::default()).await?;
    assert_eq!((now.slot, now.state.get_int("sum")), (1, Some(2)));
    send(&h, &pid, &[("add", 3.into())]).await?;
    // A hint the cached slot 1 satisfies: answered without computing slot 2.
    let hinted = p
        .now(
            pid,
            Freshness {
                max_age_ms: Some(60_000),
                min_slot: Some(1),
            },
        )
        .await?;
    assert_eq!(hinted.slot, 1);
    // One it does not: computed to the scheduler's current slot.
    let fresh = p
        .now(
            pid,
            Freshness {
                max_age_ms: None,
                min_slot: Some(2),
            },
        )
        .await?;
    assert_eq!((fresh.slot, fresh.state.get_int("sum")), (2, Some(5)));
    // A state older than max-age is not accepted (the harness clock moves).
    send(&h, &pid, &[("add", 4.into())]).await?;
    h.clock.advance(10_000);
    let aged = p
        .now(
            pid,
            Freshness {
                max_age_ms: Some(5_000),
                min_slot: None,
            },
        )
        .await?;
    assert_eq!(aged.slot, 3);
    let err = p
        .now(
            pid,
            Freshness {
                max_age_ms: None,
                min_slot: Some(9),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "slot-not-available");
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn a_deadline_answers_timeout_and_the_computation_goes_on() -> anyhow::Result<()> {
    let h = harness();
    let (p, _) = start(
        &h,
        ProcessConfig {
            compute_timeout_ms: 100,
            ..ProcessConfig::default()
        },
    );
    let pid = register(&h, "counting@1.0").await?;
    send(&h, &pid, &[("add", 1.into()), ("delay-ms", 600.into())]).await?;
    let err = p.compute(pid, 1).await.unwrap_err();
    assert!(matches!(err, ComputeError::Timeout { .. }), "{err:?}");
    assert_eq!((err.code(), err.status()), ("compute-timeout", 504));
    // The computation went on and was cached.
    hb_testkit::wait_until(
        "slot 1 is computed",
        std::time::Duration::from_secs(20),
        || {
            hb_store::ProcessCache::new(h.store.clone())
                .read_slot(&pid, 1)
                .ok()
                .flatten()
                .is_some()
        },
    )
    .await;
    assert_eq!(p.compute(pid, 1).await?.state.get_int("sum"), Some(1));
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn a_device_panic_fails_its_slot_each_time_without_a_restart_loop_and_spares_other_processes(
) -> anyhow::Result<()> {
    let h = harness();
    let (p, slots) = start(
        &h,
        ProcessConfig {
            test_device_panics: true,
            ..ProcessConfig::default()
        },
    );
    let pid = register(&h, "counting@1.0").await?;
    send(&h, &pid, &[("add", 1.into())]).await?;
    send(&h, &pid, &[("fail", "panic".into())]).await?;
    // Another process, computed on the same node meanwhile.
    let other = h.spawn_process(&Harness::client(4), 7).await?.0;
    send(&h, &other, &[("add", 9.into())]).await?;
    for _ in 0..3 {
        let err = p.compute(pid, 2).await.unwrap_err();
        assert!(
            matches!(err, ComputeError::DevicePanicked { slot: 2, .. }),
            "{err:?}"
        );
        assert_eq!(err.status(), 500);
    }
    // Each request tried slot 2 once: no loop.
    assert_eq!(slots.load(Ordering::SeqCst), 2 + 3);
    assert_eq!(p.compute(pid, 1).await?.state.get_int("sum"), Some(1));
    // The other process never noticed.
    assert_eq!(p.compute(other, 1).await?.state.get_int("sum"), Some(9));
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn status_explains_a_halted_process_without_computing() -> anyhow::Result<()> {
    let h = harness();
    let (p, slots) = start(&h, ProcessConfig::default());
    let pid = register(&h, "counting@1.0").await?;
    send(&h, &pid, &[("add", 1.into())]).await?;
    send(&h, &pid, &[("add", 2.into())]).await?;
    send(&h, &pid, &[("fail", "error".into())]).await?;
    send(&h, &pid, &[("add", 3.into())]).await?;
    let before = p.status(pid).await?;
    assert_eq!(before.get_text("worker"), Some("stopped"));
    assert_eq!(before.get_int("computed-slot"), Some(-1));
    assert_eq!(slots.load(Ordering::SeqCst), 0, "status computes nothing");
    let err = p.compute(pid, 4).await.unwrap_err();
    assert_eq!(err.phase(), Some((hb_process::Phase::Compute, 3)), "{err}");
    let status = p.status(pid).await?;
    assert_eq!(status.get_int("scheduled-slot"), Some(4));
    assert_eq!(status.get_int("computed-slot"), Some(2));
    assert_eq!(status.get_int("snapshot-slot"), Some(2));
    assert_eq!(status.get_text("worker"), Some("idle"));
    let last = status
        .get_message("last-error")
        .expect("the halt is explained");
    assert_eq!(last.get_int("slot"), Some(3));
    assert_eq!(last.get_text("phase"), Some("compute"));
    assert_eq!(last.get_text("code"), Some("compute-failed"));
    assert_eq!(status.get_text("cache-control"), Some("no-store"));
    p.shutdown().await;
    Ok(())
}

async fn resolve(
    p: &Processes,
    base: &Message,
    pairs: &[(&str, hb_message::Value)],
) -> Result<Message, ResolveError> {
    let mut req = Message::new();
    for (k, v) in pairs {
        req.insert(k, v.clone()).expect("valid key");
    }
    match p.context().resolve(base.clone(), &req).await? {
        Outcome::Ok(m) => Ok(m),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[actix_rt::test]
async fn process_device_keys_compute_now_status_and_slot_through_resolution() -> anyhow::Result<()>
{
    let h = harness();
    let (p, _) = start(&h, ProcessConfig::default());
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "counting@1.0")?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def.clone()).await?;
    send(&h, &pid, &[("add", 5.into())]).await?;
    send(&h, &pid, &[("add", 6.into())]).await?;
    let at1 = resolve(
        &p,
        &def,
        &[("path", "compute".into()), ("slot", "1".into())],
    )
    .await?;
    assert_eq!(
        (at1.get_int("at-slot"), at1.get_int("sum")),
        (Some(1), Some(5))
    );
    let now = resolve(&p, &def, &[("path", "now".into())]).await?;
    assert_eq!(
        (now.get_int("at-slot"), now.get_int("sum")),
        (Some(2), Some(11))
    );
    // `compute` without a slot behaves as `now`.
    let latest = resolve(&p, &def, &[("path", "compute".into())]).await?;
    assert_eq!(latest.get_int("at-slot"), Some(2));
    let status = resolve(&p, &def, &[("path", "status".into())]).await?;
    assert_eq!(status.get_int("computed-slot"), Some(2));
    let slot = resolve(&p, &def, &[("path", "slot".into())]).await?;
    assert_eq!(slot.get_int("current"), Some(2));
    // `snapshot` is the execution device's, on the state given as base.
    let snap = resolve(&p, &now, &[("path", "snapshot".into())]).await?;
    assert_eq!(
        (snap.get_int("count"), snap.get_int("sum")),
        (Some(3), Some(11))
    );
    // A state works as the base too (its `process` names the process).
    let again = resolve(&p, &now, &[("path", "compute".into()), ("slot", 1.into())]).await?;
    assert_eq!(again.get_int("sum"), Some(5));
    for (slot, code, status) in [
        (hb_message::Value::from("1a"), "invalid-slot", 400),
        (hb_message::Value::Int(-1), "invalid-slot", 400),
        (hb_message::Value::Int(99), "slot-not-available", 404),
    ] {
        let err = resolve(&p, &def, &[("path", "compute".into()), ("slot", slot)])
            .await
            .unwrap_err();
        assert_eq!((err.code(), err.status()), (code, status), "{err}");
    }
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn an_idle_worker_stops_with_a_snapshot_and_a_cold_worker_resumes_to_the_same_state(
) -> anyhow::Result<()> {
    let h = harness();
    let slots = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: TestDevice::new(false),
        slots: Arc::clone(&slots),
    };
    let p = ProcessBuilder::new(h.scheduler.clone())
        .config(ProcessConfig {
            // Snapshots only at slot 0 while running: the idle stop adds one.
            snapshot_every: 1_000,
            worker_max_idle_ms: 1_000,
            ..ProcessConfig::default()
        })
        .clock(Arc::new(h.clock.clone()))
        .device(Arc::new(counting))
        .expect("registers")
        .start()?;
    let pid = register(&h, "counting@1.0").await?;
    for n in 1..=10 {
        send(&h, &pid, &[("add", n.into())]).await?;
    }
    p.compute(pid, 5).await?;
    let cache = hb_store::ProcessCache::new(h.store.clone());
    assert!(cache
        .read_slot(&pid, 5)?
        .expect("stored")
        .state
        .get("snapshot")
        .is_none());
    h.clock.advance(1_000);
    hb_testkit::wait_until(
        "the idle worker stored its snapshot and ended",
        std::time::Duration::from_secs(20),
        || p.metrics().ended.load(Ordering::SeqCst) == 1,
    )
    .await;
    assert_eq!(p.metrics().retired.load(Ordering::SeqCst), 1);
    assert!(cache
        .read_slot(&pid, 5)?
        .expect("stored")
        .state
        .get("snapshot")
        .is_some());
    assert_eq!(p.status(pid).await?.get_text("worker"), Some("stopped"));
    // A new worker resumes from the snapshot at 5, not from init.
    let resumed = p.compute(pid, 10).await?;
    assert_eq!(p.metrics().started.load(Ordering::SeqCst), 2);
    assert_eq!(
        slots.load(Ordering::SeqCst),
        6 + 5,
        "slots 0..=5, then 6..=10"
    );
    // The same state as a computation that never stopped.
    let straight_cache: Arc<dyn hb_store::Store> = Arc::new(hb_store::MemoryStore::new());
    let mut straight = hb_process::Computation::new(
        pid,
        hb_process::ComputeEnv {
            cache: hb_store::ProcessCache::new(straight_cache),
            snapshot_every: 0,
            ..p_env(&p, &h)
        },
    );
    let expected = straight.compute_to(10, &mut |_, _, _| {}).await?;
    assert_eq!(
        hb_store::state_id_of(&resumed.state)?,
        hb_store::state_id_of(&expected.state)?
    );
    p.shutdown().await;
    Ok(())
}

/// The computation environment of `p`, for a straight run beside it.
fn p_env(p: &Processes, h: &Harness) -> hb_process::ComputeEnv {
    hb_process::ComputeEnv {
        ctx: p.context().clone(),
        scheduler: h.scheduler.clone(),
        cache: hb_store::ProcessCache::new(h.store.clone()),
        clock: Arc::new(h.clock.clone()),
        snapshot_every: 1,
    }
}

#[actix_rt::test]
async fn dry_runs_interleaved_with_real_slots_change_nothing() -> anyhow::Result<()> {
    let h = harness();
    let (p, _) = start(&h, ProcessConfig::default());
    let pid = register(&h, "counting@1.0").await?;
    send(&h, &pid, &[("add", 1.into())]).await?;
    send(&h, &pid, &[("add", 2.into())]).await?;
    p.compute(pid, 1).await?;
    // Dry-runs on the latest state, through the handle and the device.
    let probe = Message::new().with("add", 100)?;
    let dry = p.dry_run(pid, probe.clone(), Freshness::default()).await?;
    assert_eq!(
        dry.get_int("at-slot"),
        Some(2),
        "ran on the state at the current slot"
    );
    assert_eq!(
        dry.get_message("results").and_then(|r| r.get_int("sum")),
        Some(103)
    );
    let def_base = Message::new().with("device", "process@1.0")?.with(
        "process",
        h.scheduler
            .assignment(pid, 0)
            .await?
            .and_then(|a| a.get_message("body").cloned())
            .expect("definition"),
    )?;
    let via_device = resolve(
        &p,
        &def_base,
        &[("path", "dry-run".into()), ("body", probe.clone().into())],
    )
    .await?;
    assert_eq!(
        via_device
            .get_message("results")
            .and_then(|r| r.get_int("sum")),
        Some(103)
    );
    // Nothing was scheduled, stored or changed.
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(2));
    send(&h, &pid, &[("add", 3.into())]).await?;
    let real = p.compute(pid, 3).await?;
    assert_eq!(real.state.get_int("sum"), Some(6));
    let mut straight = hb_process::Computation::new(
        pid,
        hb_process::ComputeEnv {
            cache: hb_store::ProcessCache::new(Arc::new(hb_store::MemoryStore::new())),
            ..p_env(&p, &h)
        },
    );
    let expected = straight.compute_to(3, &mut |_, _, _| {}).await?;
    assert_eq!(
        hb_store::state_id_of(&real.state)?,
        hb_store::state_id_of(&expected.state)?,
        "the next real slot's state is the same with and without dry-runs"
    );
    p.shutdown().await;
    Ok(())
}

/// A device that blocks its thread while computing (for the mailbox test
/// only: real devices never block an arbiter).
struct Blocking;

#[async_trait]
impl Device for Blocking {
    fn name(&self) -> &str {
        "blocking@1.0"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler().never_declines()
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        if key.as_str() == "compute" {
            std::thread::sleep(std::time::Duration::from_millis(400));
            base.insert("results", Message::new())?;
        }
        Ok(Outcome::Ok(base))
    }
}

#[actix_rt::test]
async fn a_full_worker_mailbox_answers_busy_at_once() -> anyhow::Result<()> {
    let h = harness();
    let p = ProcessBuilder::new(h.scheduler.clone())
        .config(ProcessConfig {
            worker_capacity: 1,
            arbiters: 1,
            ..ProcessConfig::default()
        })
        .device(Arc::new(Blocking))?
        .start()?;
    let pid = register(&h, "blocking@1.0").await?;
    // Slot 0 blocks the worker's thread for a while; requests pile up.
    let first = tokio::spawn({
        let p = p.clone();
        async move { p.compute(pid, 0).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let more = join_all((0..4).map(|_| p.compute(pid, 0))).await;
    let busy = more
        .iter()
        .filter(|r| matches!(r, Err(ComputeError::Busy { .. })))
        .count();
    assert!(busy > 0, "a mailbox of 1 overflowed: {more:?}");
    for r in more.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!((r.code(), r.status()), ("busy", 503), "{r}");
    }
    assert!(first.await?.is_ok(), "the first request was served");
    p.shutdown().await;
    Ok(())
}
