//! SPEC §6.10 through the whole process layer: a Lua process registered on
//! the scheduler, computed by its worker with aos-style `Handlers`,
//! restored by a fresh process layer from a whole-heap snapshot without
//! re-running the script (a handler added at run time survives), and
//! dry-run on a copy of its VM that leaves the live VM untouched.

use hb_message::{Id, Message, Value};
use hb_process::{Freshness, ProcessBuilder, ProcessConfig};
use hb_testkit::Harness;

const COUNTER: &str = r#"
function init(process) return { count = 0 } end
Handlers.add("inc", { action = "Inc" }, function(msg, state)
  state.count = state.count + 1
  print("count " .. state.count)
end)
Handlers.add("learn", { action = "Learn" }, function(msg, state)
  -- A handler added while running: only a whole-heap snapshot keeps it.
  Handlers.add("double", { action = "Double" }, function(m, s)
    s.count = s.count * 2
  end)
end)
"#;

fn harness() -> Harness {
    Harness::start(hb_scheduler::SchedulerConfig {
        validate_process_devices: false,
        ..Default::default()
    })
}

async fn register(h: &Harness) -> anyhow::Result<Id> {
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "lua@5.3a")?
        .with("script", COUNTER)?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    Ok(pid)
}

async fn send(h: &Harness, pid: &Id, action: &str) -> anyhow::Result<u64> {
    let m = Message::new()
        .with("target", pid.to_human())?
        .with("action", action)?
        .commit(&Harness::client(1), None)?;
    Ok(h.schedule(m).await?.slot)
}

fn count(state: &Message) -> Option<i64> {
    state
        .get_path("state/count")
        .and_then(Value::to_int_lenient)
}

#[actix_rt::test]
async fn a_lua_counter_survives_a_cold_restart_from_its_heap_and_dry_runs_touch_nothing(
) -> anyhow::Result<()> {
    let h = harness();
    let pid = register(&h).await?;
    send(&h, &pid, "Inc").await?;
    send(&h, &pid, "Learn").await?;
    send(&h, &pid, "Inc").await?;
    let first = ProcessBuilder::new(h.scheduler.clone())
        .config(ProcessConfig {
            snapshot_every: 1_000,
            ..ProcessConfig::default()
        })
        .start()?;
    let at3 = first.compute(pid, 3).await?.state;
    assert_eq!(count(&at3), Some(2));
    assert_eq!(
        at3.get_path("results/output").and_then(Value::as_text),
        Some("count 2\n")
    );
    // Shutdown attaches a snapshot of the live VM's whole heap at slot 3.
    first.shutdown().await;
    let stored = hb_store::ProcessCache::new(h.store.clone())
        .read_slot(&pid, 3)?
        .expect("stored");
    assert!(
        stored.state.get_path("snapshot/heap").is_some(),
        "a heap snapshot"
    );

    // A fresh layer (no VM in memory) resumes from it: the handler added at
    // run time is still there without re-running the script.
    send(&h, &pid, "Double").await?;
    let second = ProcessBuilder::new(h.scheduler.clone())
        .config(ProcessConfig {
            snapshot_every: 1_000,
            ..ProcessConfig::default()
        })
        .start()?;
    let at4 = second.compute(pid, 4).await?.state;
    assert_eq!(
        count(&at4),
        Some(4),
        "Double ran: the runtime handler survived"
    );

    // A dry-run sees the latest state on a copy of the VM…
    let probe = Message::new().with("action", "Inc")?;
    let dry = second.dry_run(pid, probe, Freshness::default()).await?;
    assert_eq!(
        dry.get_path("results/output").and_then(Value::as_text),
        Some("count 5\n")
    );
    // …and the live VM never saw it.
    send(&h, &pid, "Inc").await?;
    let at5 = second.compute(pid, 5).await?.state;
    assert_eq!(count(&at5), Some(5));
    second.shutdown().await;
    Ok(())
}

const KEEPER: &str = r#"
local counter = 0
local function bump() counter = counter + 1 return counter end
local function peek() return counter end
seen = {}
function init(process) return { log = {} } end
Handlers.add("step", { action = "Step" }, function(msg, state)
  local n = bump()
  seen[#seen + 1] = n
  state.log[#state.log + 1] = peek()
  if n == 2 then
    Handlers.add("late", { action = "Step" }, function(m, s)
      s.late = (s.late or 0) + peek() + #seen
    end)
  end
  print("step " .. n .. " seen " .. #seen)
end)
"#;

/// Registers the keeper script and schedules `slots` Steps; identical
/// inputs on two harnesses give identical schedules (seeded keys, manual
/// clock, local chain tip).
async fn keeper(h: &Harness, slots: usize) -> anyhow::Result<Id> {
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "lua@5.3a")?
        .with("script", KEEPER)?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    for _ in 0..slots {
        send(h, &pid, "Step").await?;
    }
    Ok(pid)
}

#[actix_rt::test]
async fn restored_at_every_slot_a_lua_process_matches_one_that_never_stopped() -> anyhow::Result<()>
{
    const SLOTS: u64 = 8;
    let straight_h = harness();
    let restarted_h = harness();
    let pid = keeper(&straight_h, SLOTS as usize).await?;
    assert_eq!(
        keeper(&restarted_h, SLOTS as usize).await?,
        pid,
        "the same process"
    );
    let straight = ProcessBuilder::new(straight_h.scheduler.clone()).start()?;
    for slot in 1..=SLOTS {
        let expected = straight.compute(pid, slot).await?.state;
        // A fresh process layer (no VM in memory) for every slot: it
        // restores the previous slot's snapshot and computes one slot.
        let layer = ProcessBuilder::new(restarted_h.scheduler.clone()).start()?;
        let got = layer.compute(pid, slot).await?.state;
        layer.shutdown().await;
        assert_eq!(
            got.get_path("results/output"),
            expected.get_path("results/output"),
            "slot {slot}"
        );
        assert_eq!(
            hb_store::state_id_of(&got)?,
            hb_store::state_id_of(&expected)?,
            "slot {slot}: the same state"
        );
    }
    let last = straight.compute(pid, SLOTS).await?.state;
    assert!(
        last.get_path("state/late").is_some(),
        "the late handler ran"
    );
    straight.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn runaway_lua_errors_its_slot_only_and_the_process_goes_on() -> anyhow::Result<()> {
    const RUNAWAY: &str = r#"
    function init(process) return { n = 0 } end
    Handlers.add("spin", { action = "Spin" }, function(msg, state)
      state.n = state.n + 1
      print("before")
      while true do end
    end)
    Handlers.add("hog", { action = "Hog" }, function(msg, state)
      local t = {}
      for i = 1, 1e9 do t[i] = string.rep("x", 1024) end
    end)
    Handlers.add("deep", { action = "Deep" }, function(msg, state)
      local function f(n) return f(n + 1) + 1 end
      return f(0)
    end)
    Handlers.add("inc", { action = "Inc" }, function(msg, state)
      state.n = state.n + 1
      print("n " .. state.n)
    end)
    "#;
    let h = harness();
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "lua@5.3a")?
        .with("script", RUNAWAY)?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    let p = ProcessBuilder::new(h.scheduler.clone())
        .config(ProcessConfig {
            lua_limits: hb_process::lua::LuaLimits {
                max_instructions: 2_000_000,
                max_memory_bytes: 16 * 1024 * 1024,
            },
            ..ProcessConfig::default()
        })
        .start()?;
    // Deep recursion ends on Lua's stack limit or, first, on the memory
    // limit its stack growth reaches: either way its own slot's error.
    for (action, codes) in [
        ("Spin", &["lua-instruction-limit"][..]),
        ("Hog", &["lua-memory-limit"][..]),
        ("Deep", &["lua-error", "lua-memory-limit"][..]),
    ] {
        let slot = send(&h, &pid, action).await?;
        let state = p.compute(pid, slot).await?.state;
        let got = state
            .get_path("results/error/code")
            .and_then(Value::as_text);
        assert!(got.is_some_and(|g| codes.contains(&g)), "{action}: {got:?}");
    }
    // The spin's in-place change and output are kept (aos semantics), and
    // later slots run normally.
    let slot = send(&h, &pid, "Inc").await?;
    let state = p.compute(pid, slot).await?.state;
    assert_eq!(count_of(&state, "n"), Some(2));
    assert_eq!(
        state.get_path("results/output").and_then(Value::as_text),
        Some("n 2\n")
    );
    assert!(state.get_path("results/error").is_none());
    p.shutdown().await;
    Ok(())
}

fn count_of(state: &Message, key: &str) -> Option<i64> {
    state
        .get_path(&format!("state/{key}"))
        .and_then(Value::to_int_lenient)
}

#[actix_rt::test]
async fn a_script_can_come_from_a_stored_message_named_by_script_id() -> anyhow::Result<()> {
    let h = harness();
    let source = Message::new().with("body", COUNTER)?;
    hb_store::MessageCache::new(h.store.clone()).write(&source)?;
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "lua@5.3a")?
        .with("script-id", source.id_all()?.to_human())?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    send(&h, &pid, "Inc").await?;
    let p = ProcessBuilder::new(h.scheduler.clone()).start()?;
    assert_eq!(count(&p.compute(pid, 1).await?.state), Some(1));
    // A script-id naming nothing stored halts the process at init.
    let missing = Message::new()
        .with("type", "Process")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "lua@5.3a")?
        .with("script-id", Id::hash(b"nothing").to_human())?
        .commit(&Harness::client(1), None)?;
    let missing_pid = missing.id_all()?;
    h.schedule(missing).await?;
    let err = p.compute(missing_pid, 0).await.unwrap_err();
    assert_eq!(
        err.phase().map(|(ph, _)| ph),
        Some(hb_process::Phase::Init),
        "{err}"
    );
    assert!(err.to_string().contains("script-id"), "{err}");
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn a_replay_of_a_lost_past_slot_runs_on_its_own_vm_and_the_live_one_goes_on(
) -> anyhow::Result<()> {
    let h = harness();
    let pid = register(&h).await?;
    for _ in 0..6 {
        send(&h, &pid, "Inc").await?;
    }
    let layer = ProcessBuilder::new(h.scheduler.clone()).start()?;
    let cache_store: std::sync::Arc<dyn hb_store::Store> =
        std::sync::Arc::new(hb_store::MemoryStore::new());
    let mut c = hb_process::Computation::new(
        pid,
        hb_process::ComputeEnv {
            ctx: layer.context().clone(),
            scheduler: h.scheduler.clone(),
            cache: hb_store::ProcessCache::new(cache_store.clone()),
            clock: std::sync::Arc::new(h.clock.clone()),
            snapshot_every: 2,
        },
    );
    c.compute_to(5, &mut |_, _, _| {}).await?;
    let original = hb_store::ProcessCache::new(cache_store.clone())
        .read_slot(&pid, 3)?
        .expect("slot 3 stored");
    // Lose slot 3 from the cache: computing it again replays a copy from
    // the snapshot at 2, while the live state stays at 5.
    cache_store.delete(&hb_store::keys::proc_slot(&pid, 3))?;
    let replayed = c.compute_to(3, &mut |_, _, _| {}).await?;
    assert_eq!(count(&replayed.state), Some(3));
    assert_eq!(
        hb_store::state_id_of(&replayed.state)?,
        hb_store::state_id_of(&original.state)?,
        "the replay reaches the same state"
    );
    assert_eq!(c.at_slot(), Some(5), "the live state was untouched");
    // The live VM was untouched too: slot 6 follows slot 5.
    let six = c.compute_to(6, &mut |_, _, _| {}).await?;
    assert_eq!(count(&six.state), Some(6));
    layer.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn dry_runs_of_one_slot_each_start_from_that_slot_and_follow_the_live_vm(
) -> anyhow::Result<()> {
    let h = harness();
    let pid = keeper(&h, 2).await?;
    let layer = ProcessBuilder::new(h.scheduler.clone()).start()?;
    layer.compute(pid, 2).await?;
    let step = || Message::new().with("action", "Step");
    let output = |m: &Message| {
        m.get_path("results/output")
            .and_then(Value::as_text)
            .map(str::to_string)
    };
    // Several dry-runs of slot 2, one after another and at once: each runs
    // on its own copy of slot 2's heap, so none sees another's bump.
    let first = layer.dry_run(pid, step()?, Freshness::default()).await?;
    assert_eq!(output(&first).as_deref(), Some("step 3 seen 3\n"));
    let again = layer.dry_run(pid, step()?, Freshness::default()).await?;
    assert_eq!(output(&again), output(&first));
    let together = futures::future::join_all(
        (0..8).map(|_| layer.dry_run(pid, step().expect("a static message"), Freshness::default())),
    )
    .await;
    for dry in together {
        assert_eq!(output(&dry?), output(&first));
    }
    // The live VM moves on: the next dry-run starts from slot 3's heap.
    h.schedule(
        Message::new()
            .with("target", pid.to_human())?
            .with("action", "Step")?
            .commit(&Harness::client(1), None)?,
    )
    .await?;
    layer.compute(pid, 3).await?;
    let later = layer.dry_run(pid, step()?, Freshness::default()).await?;
    assert_eq!(output(&later).as_deref(), Some("step 4 seen 4\n"));
    layer.shutdown().await;
    Ok(())
}
