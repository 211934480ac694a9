//! Issue 9's Lua examples through the process layer. The token ledger
//! (examples/lua/ledger.lua and wallet.lua) across
//! several Lua processes: wallets ask the ledger to transfer through push,
//! the ledger notifies both wallets through push. Over many random
//! transfers, some of whose pushes are cut short (a future dropped midway,
//! as a crash would) and pushed again, the total supply is conserved, every
//! transfer is recorded once, and every notice arrives exactly once. The
//! counter counts; the ping-pong pair answers each other through push.

use std::time::Duration;

use hb_message::{Id, Message, Value};
use hb_process::{Freshness, ProcessBuilder, ProcessConfig, Processes};
use hb_testkit::Harness;

const LEDGER: &str = include_str!("../examples/lua/ledger.lua");
const WALLET: &str = include_str!("../examples/lua/wallet.lua");
const WALLETS: usize = 3;
const EACH: i64 = 100;
const TRANSFERS: u64 = 24;

async fn spawn(h: &Harness, script: &str, extra: &[(&str, Value)]) -> anyhow::Result<Id> {
    let mut def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "lua@5.3a")?
        .with("script", script)?;
    for (k, v) in extra {
        def.insert(k, v.clone())?;
    }
    let def = def.commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    Ok(pid)
}

fn int(state: &Message, path: &str) -> i64 {
    state
        .get_path(path)
        .and_then(Value::to_int_lenient)
        .unwrap_or(0)
}

async fn latest(p: &Processes, pid: Id) -> anyhow::Result<Message> {
    Ok(p.now(pid, Freshness::default()).await?.state)
}

#[actix_rt::test]
async fn random_transfers_with_interrupted_pushes_conserve_supply_and_notify_once(
) -> anyhow::Result<()> {
    let h = Harness::start(hb_scheduler::SchedulerConfig {
        validate_process_devices: false,
        ..Default::default()
    });
    let p = ProcessBuilder::new(h.scheduler.clone())
        .config(ProcessConfig::default())
        .start()?;
    let mut wallets = Vec::new();
    for n in 0..WALLETS {
        wallets.push(spawn(&h, WALLET, &[("nonce", Value::Int(n as i64))]).await?);
    }
    let holders = Value::List(wallets.iter().map(|w| Value::from(w.to_human())).collect());
    let ledger = spawn(
        &h,
        LEDGER,
        &[("holders", holders), ("each", Value::Int(EACH))],
    )
    .await?;

    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for i in 0..TRANSFERS {
        let from = next(WALLETS as u64) as usize;
        let to = (from + 1 + next(WALLETS as u64 - 1) as usize) % WALLETS;
        let quantity = 1 + next(60);
        let ask = Message::new()
            .with("target", wallets[from].to_human())?
            .with("action", "Send-Transfer")?
            .with("ledger", ledger.to_human())?
            .with("recipient", wallets[to].to_human())?
            .with("quantity", quantity.to_string())?
            .commit(&Harness::client(2), None)?;
        let slot = h.schedule(ask).await?.slot;
        if i % 3 == 0 {
            // Cut the push short, as a crash would, then push again.
            let cut = Duration::from_micros(next(3_000));
            let _ = tokio::time::timeout(cut, p.push(wallets[from], slot, None)).await;
        }
        p.push(wallets[from], slot, None).await?;
    }

    let ledger_state = latest(&p, ledger).await?;
    let supply: i64 = wallets
        .iter()
        .map(|w| int(&ledger_state, &format!("state/balances/{}", w.to_human())))
        .sum();
    assert_eq!(supply, EACH * WALLETS as i64, "total supply conserved");
    let transfers = int(&ledger_state, "state/transfers");
    assert!(transfers > 0, "some transfers succeeded");
    let (mut credits, mut debits) = (0, 0);
    for w in &wallets {
        let s = latest(&p, *w).await?;
        credits += int(&s, "state/credits");
        debits += int(&s, "state/debits");
    }
    eprintln!("ledger: {transfers} of {TRANSFERS} transfers succeeded; {credits} credits, {debits} debits");
    assert_eq!(
        (credits, debits),
        (transfers, transfers),
        "each notice arrived once"
    );
    // Nothing was delivered twice: the ledger's schedule holds its
    // definition and one Transfer per request.
    let ledger_slots = h.scheduler.current(ledger).await?.map(|c| c.slot);
    assert_eq!(ledger_slots, Some(TRANSFERS as i64));
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn the_counter_example_counts() -> anyhow::Result<()> {
    let h = Harness::start(hb_scheduler::SchedulerConfig {
        validate_process_devices: false,
        ..Default::default()
    });
    let p = ProcessBuilder::new(h.scheduler.clone()).start()?;
    let pid = spawn(&h, include_str!("../examples/lua/counter.lua"), &[]).await?;
    for action in ["Inc", "Inc", "Inc", "Get"] {
        let m = Message::new()
            .with("target", pid.to_human())?
            .with("action", action)?
            .commit(&Harness::client(1), None)?;
        h.schedule(m).await?;
    }
    let state = latest(&p, pid).await?;
    assert_eq!(int(&state, "state/count"), 3);
    assert_eq!(
        state.get_path("results/output").and_then(Value::as_text),
        Some("3\n")
    );
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn the_ping_pong_pair_answers_through_push() -> anyhow::Result<()> {
    let h = Harness::start(hb_scheduler::SchedulerConfig {
        validate_process_devices: false,
        ..Default::default()
    });
    let p = ProcessBuilder::new(h.scheduler.clone()).start()?;
    let script = include_str!("../examples/lua/pingpong.lua");
    let a = spawn(&h, script, &[("nonce", Value::Int(1))]).await?;
    let b = spawn(&h, script, &[("nonce", Value::Int(2))]).await?;
    for round in 0..3 {
        let start = Message::new()
            .with("target", a.to_human())?
            .with("action", "Start")?
            .with("peer", b.to_human())?
            .with("round", round)?
            .commit(&Harness::client(2), None)?;
        let slot = h.schedule(start).await?.slot;
        // A's Ping reaches B (depth 1), B's Pong reaches A (depth 2).
        p.push(a, slot, None).await?;
    }
    let (sa, sb) = (latest(&p, a).await?, latest(&p, b).await?);
    assert_eq!((int(&sa, "state/pongs"), int(&sb, "state/pings")), (3, 3));
    assert_eq!((int(&sa, "state/pings"), int(&sb, "state/pongs")), (0, 0));
    p.shutdown().await;
    Ok(())
}
