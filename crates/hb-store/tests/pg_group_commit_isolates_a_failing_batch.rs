//! Group commit on PostgreSQL (SPEC §11.1): many callers' batches in one
//! transaction, each acknowledged with its own outcome after the commit;
//! a batch whose precondition fails fails alone, the others commit.

use std::sync::Arc;

use hb_store::pg_testing::TempDatabase;
use hb_store::{Batch, GroupCommit, PgOptions, PgStore, Store, StoreError};

#[test]
fn group_commit_on_postgres_fails_only_the_batches_whose_preconditions_fail() {
    let database = TempDatabase::create();
    let store: Arc<dyn Store> =
        Arc::new(PgStore::open(database.url(), &PgOptions::default()).unwrap());
    store.put(b"lease", b"mine").unwrap();
    let writer = GroupCommit::start(store.clone()).unwrap();

    // Hold the lease row from another session, so that the writer's first
    // group waits on it and every later submission queues behind it: the
    // 50 batches then go to at most two groups.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (holder, connection) = runtime
        .block_on(tokio_postgres::connect(
            database.url(),
            tokio_postgres::NoTls,
        ))
        .unwrap();
    runtime.spawn(connection);
    runtime
        .block_on(
            holder.batch_execute("BEGIN; SELECT 1 FROM kv WHERE key = 'lease'::bytea FOR UPDATE"),
        )
        .unwrap();

    let batch = |i: u32| {
        let mut b = Batch::new();
        b.put_new(format!("slot/{i:03}").into_bytes(), vec![1]);
        match i % 10 {
            // A stale fence, a missing predecessor, a taken key.
            3 => b.require_eq(b"lease".to_vec(), b"theirs".to_vec()),
            6 => b.require(b"never-written".to_vec()),
            9 => b.put_new(b"lease".to_vec(), b"x".to_vec()),
            _ => b.require_eq(b"lease".to_vec(), b"mine".to_vec()),
        }
        b
    };
    let acks: Vec<_> = (0..50).map(|i| writer.submit(batch(i))).collect();
    runtime.block_on(holder.batch_execute("COMMIT")).unwrap();
    let outcomes: Vec<Result<(), StoreError>> =
        acks.into_iter().map(futures::executor::block_on).collect();

    for (i, outcome) in outcomes.iter().enumerate() {
        let stored = store.get(format!("slot/{i:03}").as_bytes()).unwrap();
        match i % 10 {
            3 => assert!(
                matches!(outcome, Err(StoreError::PreconditionFailed { .. })),
                "{i}: {outcome:?}"
            ),
            6 => assert!(
                matches!(outcome, Err(StoreError::Missing { .. })),
                "{i}: {outcome:?}"
            ),
            9 => assert!(
                matches!(outcome, Err(StoreError::KeyExists { .. })),
                "{i}: {outcome:?}"
            ),
            _ => assert!(outcome.is_ok(), "{i}: {outcome:?}"),
        }
        assert_eq!(stored.is_some(), outcome.is_ok(), "slot {i}");
    }
    assert_eq!(store.get(b"lease").unwrap(), Some(b"mine".to_vec()));
    let stats = writer.stats();
    assert_eq!((stats.committed, stats.failed), (35, 15));
    assert!(stats.flushes <= 2, "{stats:?}");
}
