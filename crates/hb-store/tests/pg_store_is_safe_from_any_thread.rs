//! `PgStore` is blocking like every `Store`, and hb calls it from plain
//! threads and from actix/tokio runtime threads alike (a blocking driver
//! that starts a runtime of its own panics there). Every call, and
//! dropping the store, must work on a runtime thread.

use std::sync::Arc;

use hb_store::pg_testing::TempDatabase;
use hb_store::{Batch, Direction, GroupCommit, PgOptions, PgStore, Store};

/// Every kind of call, from the calling thread.
fn exercise(store: &dyn Store) {
    store.put(b"k", b"v").unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    let mut b = Batch::new();
    b.put_new(b"n".to_vec(), b"1".to_vec());
    b.require_eq(b"k".to_vec(), b"v".to_vec());
    store.apply(b).unwrap();
    assert_eq!(store.apply_group(vec![Batch::new(), Batch::new()]).len(), 2);
    assert!(store
        .compare_and_swap(b"k", Some(b"v"), Some(b"w"))
        .unwrap());
    let keys: Vec<Vec<u8>> = store
        .range(b"k", None, Direction::Forward, 10)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        vec![b"k".to_vec(), b"meta/format".to_vec(), b"n".to_vec()]
    );
    assert_eq!(
        store.last_with_prefix(b"n").unwrap(),
        Some((b"n".to_vec(), b"1".to_vec()))
    );
    store.delete(b"k").unwrap();
    store.flush().unwrap();
}

#[actix_rt::test]
async fn every_call_works_on_an_actix_runtime_thread() {
    let database = TempDatabase::create();
    // Opened, used and dropped on the actix thread.
    let store = PgStore::open(database.url(), &PgOptions::default()).unwrap();
    exercise(&store);
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_works_on_a_tokio_worker_thread() {
    let database = TempDatabase::create();
    let store = PgStore::open(database.url(), &PgOptions::default()).unwrap();
    exercise(&store);
    // And from a task on another worker, through group commit's writer.
    let store: Arc<dyn Store> = Arc::new(store);
    let writer = GroupCommit::start(store.clone()).unwrap();
    let mut b = Batch::new();
    b.put_new(b"from-task".to_vec(), b"1".to_vec());
    tokio::spawn(writer.submit(b)).await.unwrap().unwrap();
    assert_eq!(store.get(b"from-task").unwrap(), Some(b"1".to_vec()));
    drop(writer);
    drop(store);
}
