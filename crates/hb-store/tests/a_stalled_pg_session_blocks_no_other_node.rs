//! A node paused (or cut off) in the middle of a transaction holds its row
//! locks. Another node's write to such a row — taking over the paused
//! node's lease, say (SPEC §11.2) — must neither wait for it forever nor
//! need it to wake: it fails fast with `Unavailable` while the lock is
//! held (`lock_timeout`), and succeeds once the server has ended the idle
//! session (`idle_in_transaction_session_timeout`).

use std::time::{Duration, Instant};

use hb_store::pg_testing::TempDatabase;
use hb_store::{PgOptions, PgStore, Store, StoreError};

#[test]
fn a_row_locked_by_a_stalled_transaction_fails_fast_then_is_released() {
    let database = TempDatabase::create();
    let options = PgOptions {
        lock_timeout: Duration::from_millis(200),
        idle_in_transaction_timeout: Duration::from_millis(700),
        ..PgOptions::default()
    };
    let store = PgStore::open(database.url(), &options).expect("open postgres");
    let key = b"lease/stalled".to_vec();
    store.put(&key, b"old").expect("seeded");

    // The "paused node": a session of the same store settings (the URL
    // carries them for this raw client too) that locks the row and then
    // sends nothing.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let url = database.url().to_string();
    let stalled = runtime.block_on(async {
        let mut config: tokio_postgres::Config = url.parse().expect("a URL");
        config.options(format!(
            "-c idle_in_transaction_session_timeout={}",
            options.idle_in_transaction_timeout.as_millis()
        ));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("a raw session");
        let connection = tokio::spawn(connection);
        client.batch_execute("BEGIN").await.expect("begin");
        client
            .query("SELECT value FROM kv WHERE key = $1 FOR UPDATE", &[&key])
            .await
            .expect("the row is locked");
        (client, connection)
    });

    // While it is held: a typed error, in about the lock timeout.
    let started = Instant::now();
    let held = store.compare_and_swap(&key, Some(b"old"), Some(b"new"));
    assert!(
        matches!(held, Err(StoreError::Unavailable { .. })),
        "a held row lock is Unavailable, not a wait: {held:?}"
    );
    println!(
        "refused after {:?} (lock_timeout 200 ms)",
        started.elapsed()
    );

    // The server ends the idle session; the write then goes through. (A
    // bounded retry: a liveness bound, not a timing assertion.)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.compare_and_swap(&key, Some(b"old"), Some(b"new")) {
            Ok(true) => break,
            Ok(false) => panic!("the value changed under us"),
            Err(StoreError::Unavailable { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("the stalled session was never ended: {e:?}"),
        }
    }
    assert_eq!(store.get(&key).expect("read"), Some(b"new".to_vec()));
    drop(stalled);
}
