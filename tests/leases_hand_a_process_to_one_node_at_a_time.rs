//! SPEC §11.2 and issue 14 point 2: two schedulers (two node ids, one
//! shared scheduler key) on ONE store, first a sled store shared in-process,
//! then PostgreSQL (two `PgStore`s on one database). Node A sequences
//! process P; B is refused (`NotOwner`, naming A) while A holds P's lease;
//! A renews it from its keeper thread for as long as its clock runs, and a
//! refused renewal stops A's server at once. When A
//! pauses (its clock stands still: no renewals, and by its own clock its
//! lease never expires), B's clock passes the lease, B takes it (epoch 2)
//! and continues P's chain from A's head. A's late writes, staged while it
//! still believed it held the lease, fail the fence: their callers get
//! `Unavailable` and nothing of them lands. Each node has its own manual
//! clock, so the pause is a clock that does not move, not a sleep.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use hb_message::{ErrorCode, Id, Message};
use hb_scheduler::{
    verify_chain, ExpectedSigner, NoopUploader, SchedulerBuilder, SchedulerConfig, SchedulerError,
};
use hb_store::pg_testing::TempDatabase;
use hb_store::{LeaseRecord, MemoryStore, PgOptions, PgStore, Store};
use hb_testkit::{wait_until, Harness, CLOCK_START_MS};

/// The lease time of both nodes (on their manual clocks; the keeper looks
/// every sixth of it in real time, so every 100 ms).
const TTL: u64 = 600;

fn node(store: Arc<dyn Store>, id: &str) -> Harness {
    let dir = tempfile::tempdir().expect("a temporary directory");
    Harness::on_store(
        dir,
        store,
        SchedulerConfig {
            node_id: Some(id.into()),
            lease_ttl_ms: TTL,
            ..SchedulerConfig::default()
        },
        Arc::new(NoopUploader),
    )
}

fn shared_sled() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn Store> =
        Arc::new(hb_store::SledStore::open(dir.path()).expect("a fresh sled store opens"));
    (dir, store)
}

fn postgres(database: &TempDatabase) -> Arc<dyn Store> {
    Arc::new(PgStore::open(database.url(), &PgOptions::default()).expect("PgStore opens"))
}

fn is_not_owner(e: &SchedulerError, who: &str, in_epoch: u64) -> bool {
    matches!(e, SchedulerError::NotOwner { owner, epoch, .. } if owner == who && *epoch == in_epoch)
}

/// The `n` of every scheduled message after slot 0, in slot order.
fn numbers(schedule: &[Message]) -> Vec<i64> {
    schedule[1..]
        .iter()
        .map(|a| {
            a.get_message("body")
                .and_then(|b| b.get_int("n"))
                .expect("every message carries its n")
        })
        .collect()
}

async fn hand_over(store_a: Arc<dyn Store>, store_b: Arc<dyn Store>) -> anyhow::Result<()> {
    let a = node(store_a, "node-a");
    let b = node(Arc::clone(&store_b), "node-b");
    let client = Harness::client(1);
    let msg = |pid: &Id, n: i64| Harness::message(&client, pid, n);

    let (pid, zero) = a.spawn_process(&client, 0).await?;
    assert_eq!(zero.slot, 0);
    for n in 1..=3 {
        assert_eq!(a.schedule(msg(&pid, n)).await?.slot, n as u64);
    }
    let lease = LeaseRecord {
        owner: "node-a".into(),
        epoch: 1,
        until_ms: CLOCK_START_MS + TTL as i64,
    };
    assert_eq!(b.scheduler.lease(pid).await?, Some(lease));

    // B is refused while A holds the lease, and told who holds it.
    let refused = b.schedule(msg(&pid, 4)).await.unwrap_err();
    assert!(is_not_owner(&refused, "node-a", 1), "{refused:?}");
    assert_eq!((refused.code(), refused.status()), ("not-owner", 503));

    // A pauses: its clock stands still. B's clock runs a lease further,
    // where A's lease has expired: B takes it and continues A's chain.
    b.clock.advance(TTL as i64);
    assert_eq!(b.schedule(msg(&pid, 4)).await?.slot, 4);
    let lease = b.scheduler.lease(pid).await?.expect("a lease is stored");
    assert_eq!((lease.owner.as_str(), lease.epoch), ("node-b", 2));

    // A wakes, still believing it holds the lease (by its clock it has
    // not expired), and writes: the first batch reaches A's live server,
    // is staged with A's lease bytes and fails the fence; callers queued
    // behind it are refused, later ones find B's lease.
    let late = join_all((100..106).map(|n| a.schedule(msg(&pid, n)))).await;
    let mut unavailable = 0;
    for outcome in &late {
        match outcome {
            Err(e @ SchedulerError::Unavailable { .. }) => {
                assert_eq!((e.code(), e.status()), ("unavailable", 503));
                unavailable += 1;
            }
            Err(e) if is_not_owner(e, "node-b", 2) => {}
            other => panic!("a late write of A must not be assigned: {other:?}"),
        }
    }
    assert!(unavailable >= 1, "{late:?}");
    assert_eq!(a.metrics.leases_lost.load(Ordering::Relaxed), 1);
    // From now on A names the new owner.
    let refused = a.schedule(msg(&pid, 106)).await.unwrap_err();
    assert!(is_not_owner(&refused, "node-b", 2), "{refused:?}");

    for n in 5..=7 {
        assert_eq!(b.schedule(msg(&pid, n)).await?.slot, n as u64);
    }
    // One chain, gapless from slot 0, signed by the shared key; nothing of
    // A's late writes in it.
    let schedule = b.schedule_of(pid).await?;
    assert_eq!(schedule.len(), 8);
    let report = verify_chain(pid, ExpectedSigner::FromDefinition, &schedule)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(report.slots, 8);
    assert_eq!(numbers(&schedule), (1..=7).collect::<Vec<_>>());
    // A's node reads the same schedule from the shared store.
    assert_eq!(a.schedule_of(pid).await?, schedule);
    assert_eq!(a.metrics.leases_taken.load(Ordering::Relaxed), 1);
    assert_eq!(b.metrics.leases_taken.load(Ordering::Relaxed), 1);

    a.scheduler.shutdown().await;
    b.scheduler.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn on_a_shared_sled_store_the_next_owner_continues_the_chain_and_a_paused_owner_is_fenced_off(
) -> anyhow::Result<()> {
    let (_dir, store) = shared_sled();
    hand_over(Arc::clone(&store), store).await
}

#[actix_rt::test]
async fn on_postgres_the_next_owner_continues_the_chain_and_a_paused_owner_is_fenced_off(
) -> anyhow::Result<()> {
    let database = TempDatabase::create();
    hand_over(postgres(&database), postgres(&database)).await
}

#[actix_rt::test]
async fn a_renewed_lease_outlives_its_first_term_and_keeps_the_other_node_out() -> anyhow::Result<()>
{
    let (_dir, store) = shared_sled();
    let a = node(Arc::clone(&store), "node-a");
    let b = node(Arc::clone(&store), "node-b");
    let client = Harness::client(1);
    let (pid, _) = a.spawn_process(&client, 0).await?;
    // Four half-leases on both clocks: two full lease terms.
    for step in 1..=4i64 {
        a.clock.advance(TTL as i64 / 2);
        b.clock.advance(TTL as i64 / 2);
        // Due (a third of the lease has passed): A's keeper renews it to
        // now + TTL, through group commit.
        let renewed_until = a.scheduler.now_ms() + TTL as i64;
        wait_until(
            "A's keeper renewed the lease",
            Duration::from_secs(20),
            || {
                LeaseRecord::read(store.as_ref(), &pid)
                    .ok()
                    .flatten()
                    .is_some_and(|(l, _)| l.until_ms == renewed_until)
            },
        )
        .await;
        let refused = b.schedule(Harness::message(&client, &pid, step)).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| is_not_owner(e, "node-a", 1)),
            "{refused:?}"
        );
        // A's batches carry the renewed bytes and land.
        let slot = a
            .schedule(Harness::message(&client, &pid, step))
            .await?
            .slot;
        assert_eq!(slot, step as u64);
    }
    let lease = a.scheduler.lease(pid).await?.expect("stored");
    assert_eq!((lease.owner.as_str(), lease.epoch), ("node-a", 1));
    assert_eq!(a.metrics.leases_lost.load(Ordering::Relaxed), 0);
    a.scheduler.shutdown().await;
    b.scheduler.shutdown().await;
    // Shutdown releases nothing: the lease is left to run out.
    assert_eq!(
        LeaseRecord::read(store.as_ref(), &pid)?.map(|(l, _)| l),
        Some(lease)
    );
    Ok(())
}

#[actix_rt::test]
async fn a_failed_renewal_stops_the_owners_server_before_any_request() -> anyhow::Result<()> {
    let (_dir, store) = shared_sled();
    let a = node(Arc::clone(&store), "node-a");
    let b = node(Arc::clone(&store), "node-b");
    let client = Harness::client(1);
    let (pid, _) = a.spawn_process(&client, 0).await?;
    assert!(a.scheduler.find(pid).await?.is_some());
    // B, a lease ahead, takes P over; A, behind, then tries to renew.
    b.clock.advance(TTL as i64);
    assert_eq!(
        b.schedule(Harness::message(&client, &pid, 1)).await?.slot,
        1
    );
    a.clock.advance(TTL as i64 / 3);
    wait_until(
        "A's keeper found its renewal refused",
        Duration::from_secs(20),
        || a.metrics.leases_lost.load(Ordering::Relaxed) == 1,
    )
    .await;
    // A's server is gone without any request reaching it.
    assert!(a.scheduler.find(pid).await?.is_none());
    let refused = a.schedule(Harness::message(&client, &pid, 2)).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| is_not_owner(e, "node-b", 2)),
        "{refused:?}"
    );
    assert_eq!(numbers(&b.schedule_of(pid).await?), vec![1]);
    a.scheduler.shutdown().await;
    b.scheduler.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn without_a_node_id_no_lease_is_taken_or_written() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    assert_eq!(h.scheduler.node_id(), None);
    let client = Harness::client(1);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    h.schedule(Harness::message(&client, &pid, 1)).await?;
    assert_eq!(h.scheduler.lease(pid).await?, None);
    assert_eq!(h.metrics.leases_taken.load(Ordering::Relaxed), 0);
    h.scheduler.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn unusable_lease_settings_start_nothing() {
    for (node_id, ttl) in [("", 5_000), ("node-a", 2)] {
        let config = SchedulerConfig {
            node_id: Some(node_id.into()),
            lease_ttl_ms: ttl,
            ..SchedulerConfig::default()
        };
        let started = SchedulerBuilder::new(Arc::new(MemoryStore::new()), Harness::client(9))
            .config(config)
            .start();
        let err = started.expect_err("refused");
        assert_eq!(err.code(), "invalid-value", "{err}");
    }
}
