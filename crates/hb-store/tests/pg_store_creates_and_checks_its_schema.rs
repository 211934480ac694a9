//! `PgStore::open` creates the table and the format marker once, also when
//! several nodes start at once, and refuses a database it cannot read
//! without changing it.

use std::sync::Barrier;

use hb_store::pg_testing::TempDatabase;
use hb_store::{Direction, PgOptions, PgStore, Store, StoreError, FORMAT_KEY, FORMAT_VERSION};

fn open(database: &TempDatabase) -> Result<PgStore, StoreError> {
    PgStore::open(database.url(), &PgOptions::default())
}

#[test]
fn nodes_opening_a_fresh_database_at_once_all_open_it() {
    let database = TempDatabase::create();
    let nodes = 4;
    let barrier = Barrier::new(nodes);
    let stores: Vec<PgStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..nodes)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    open(&database)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("every node opens"))
            .collect()
    });
    let everything = stores[0]
        .range(b"", None, Direction::Forward, usize::MAX)
        .unwrap();
    assert_eq!(
        everything,
        vec![(FORMAT_KEY.to_vec(), FORMAT_VERSION.to_vec())]
    );
    // Reopening changes nothing.
    drop(stores);
    let store = open(&database).unwrap();
    store.put(b"k", b"v").unwrap();
    drop(store);
    let store = open(&database).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
}

/// Every entry, read through a fresh store.
fn rows(database: &TempDatabase) -> Vec<(Vec<u8>, Vec<u8>)> {
    let store = open(database).unwrap();
    store
        .range(b"", None, Direction::Forward, usize::MAX)
        .unwrap()
}

#[test]
fn a_newer_format_is_refused_and_left_unchanged() {
    let database = TempDatabase::create();
    drop(open(&database).unwrap());
    database
        .execute("UPDATE kv SET value = 'hb-store/99' WHERE key = 'meta/format'; INSERT INTO kv VALUES ('x', 'y')")
        .unwrap();
    match open(&database) {
        Err(StoreError::NewerFormat {
            found: 99,
            supported: hb_store::FORMAT,
            path,
        }) => assert!(path.to_string_lossy().ends_with(database.name())),
        other => panic!("{other:?}"),
    }
    // Unchanged: read back with the marker restored by SQL.
    database
        .execute("UPDATE kv SET value = 'hb-store/2' WHERE key = 'meta/format'")
        .unwrap();
    assert_eq!(
        rows(&database),
        vec![
            (FORMAT_KEY.to_vec(), FORMAT_VERSION.to_vec()),
            (b"x".to_vec(), b"y".to_vec())
        ]
    );
}

#[test]
fn an_unknown_marker_or_data_without_a_marker_is_corrupt() {
    let database = TempDatabase::create();
    drop(open(&database).unwrap());
    database
        .execute("UPDATE kv SET value = 'something else' WHERE key = 'meta/format'")
        .unwrap();
    assert!(matches!(
        open(&database),
        Err(StoreError::CorruptStore { .. })
    ));
    database
        .execute("DELETE FROM kv; INSERT INTO kv VALUES ('sched/x', 'y')")
        .unwrap();
    match open(&database) {
        Err(StoreError::CorruptStore { detail, .. }) => {
            assert!(detail.contains("no format marker"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_foreign_kv_table_is_corrupt_not_a_panic() {
    let database = TempDatabase::create();
    database
        .execute("CREATE TABLE kv (k text PRIMARY KEY, v text)")
        .unwrap();
    match open(&database) {
        Err(StoreError::CorruptStore { detail, .. }) => {
            assert!(detail.contains("not an hb store"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_format_1_database_is_marked_2() {
    let database = TempDatabase::create();
    drop(open(&database).unwrap());
    database
        .execute("UPDATE kv SET value = 'hb-store/1' WHERE key = 'meta/format'")
        .unwrap();
    let store = open(&database).unwrap();
    assert_eq!(
        store.get(FORMAT_KEY).unwrap(),
        Some(FORMAT_VERSION.to_vec())
    );
}
