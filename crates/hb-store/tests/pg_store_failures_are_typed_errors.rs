//! What `PgStore` answers when the database is not there, goes away, or
//! refuses a statement: typed errors, never a panic, and a failing batch
//! fails alone.

use hb_store::pg_testing::TempDatabase;
use hb_store::{Batch, PgOptions, PgStore, Store, StoreError};
use rand::RngCore;

fn put(key: &[u8], value: &[u8]) -> Batch {
    let mut b = Batch::new();
    b.put(key.to_vec(), value.to_vec());
    b
}

#[test]
fn a_dropped_database_fails_every_batch_of_a_group_as_unavailable() {
    let database = TempDatabase::create();
    let store = PgStore::open(database.url(), &PgOptions::default()).unwrap();
    store.put(b"before", b"1").unwrap();
    database.drop_now().unwrap();
    let outcomes = store.apply_group(vec![put(b"a", b"1"), put(b"b", b"2"), Batch::new()]);
    assert_eq!(outcomes.len(), 3);
    for outcome in outcomes {
        assert!(
            matches!(outcome, Err(StoreError::Unavailable { .. })),
            "{outcome:?}"
        );
    }
    assert!(matches!(
        store.get(b"before"),
        Err(StoreError::Unavailable { .. })
    ));
    assert!(matches!(
        store.apply(put(b"c", b"3")),
        Err(StoreError::Unavailable { .. })
    ));
}

#[test]
fn an_unreachable_server_or_a_bad_url_is_a_typed_error_at_open() {
    // Port 1 on the loopback: nothing listens there.
    let options = PgOptions {
        connect_timeout: std::time::Duration::from_secs(2),
        ..PgOptions::default()
    };
    match PgStore::open("postgres://postgres@127.0.0.1:1/postgres", &options) {
        Err(StoreError::Unavailable { store, .. }) => {
            assert_eq!(store, "postgres://postgres@127.0.0.1:1/postgres")
        }
        other => panic!("{other:?}"),
    }
    for bad in [
        "postgres://h:notaport/db",
        "host=h port=x",
        "postgres://h/db?bogus=1",
    ] {
        assert!(
            matches!(
                PgStore::open(bad, &options),
                Err(StoreError::InvalidUrl { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn the_password_is_never_in_the_location() {
    let database = TempDatabase::create();
    // Trust authentication ignores the password; the location must not show it.
    let url = database
        .url()
        .replacen("postgres@", "postgres:secret-word@", 1);
    let store = PgStore::open(&url, &PgOptions::default()).unwrap();
    assert!(
        !store.location().contains("secret-word"),
        "{}",
        store.location()
    );
    assert!(store.location().ends_with(database.name()));
}

#[test]
fn a_statement_error_fails_only_its_own_batch_of_a_group() {
    // A key past the primary-key index's row limit (~2.7 KB): PostgreSQL
    // refuses the statement. Random bytes, so compression cannot shrink it.
    let database = TempDatabase::create();
    let store = PgStore::open(database.url(), &PgOptions::default()).unwrap();
    let mut huge = vec![0u8; 10_000];
    rand::thread_rng().fill_bytes(&mut huge);
    let mut first = Batch::new();
    first.put_new(b"a".to_vec(), b"1".to_vec());
    let mut needs_first = Batch::new();
    needs_first.require(b"a".to_vec());
    needs_first.put(b"c".to_vec(), b"3".to_vec());
    let outcomes = store.apply_group(vec![first, put(&huge, b"2"), needs_first]);
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(
        matches!(outcomes[1], Err(StoreError::Io { .. })),
        "{outcomes:?}"
    );
    assert!(outcomes[2].is_ok(), "{outcomes:?}");
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get(b"c").unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.get(&huge).unwrap(), None);
    // Alone, the same batch is the same error; the store goes on working.
    assert!(matches!(
        store.apply(put(&huge, b"2")),
        Err(StoreError::Io { .. })
    ));
    store.put(b"d", b"4").unwrap();
}

#[test]
fn backup_is_unsupported_and_flush_returns() {
    let database = TempDatabase::create();
    let store = PgStore::open(database.url(), &PgOptions::default()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    assert!(matches!(
        store.backup(&dest.path().join("copy")),
        Err(StoreError::Unsupported {
            backend: "postgres",
            ..
        })
    ));
    assert!(!dest.path().join("copy").exists());
    store.flush().unwrap();
}
