//! Throwaway PostgreSQL databases for tests (feature `test-support`).
//!
//! Each [`TempDatabase`] is a database of its own, `hb_test_<pid>_<n>_<r>`,
//! created on the server that `HB_TEST_POSTGRES_URL` names (default
//! [`DEFAULT_URL`]) and dropped (with `FORCE`, so open connections do not
//! keep it) when the value is dropped, also when the test fails. Runs
//! never see each other's data.
//!
//! Every call works from any thread, tokio runtime threads included: the
//! admin connection runs on a thread of its own.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::NoTls;

/// The variable naming the server tests use (a `postgres://` URL of a
/// user that may create databases; its database is only connected to).
pub const URL_VAR: &str = "HB_TEST_POSTGRES_URL";

/// The server when [`URL_VAR`] is unset: the local one, trust
/// authentication.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for as long as this value.
#[derive(Debug)]
pub struct TempDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TempDatabase {
    /// Creates a fresh, empty database.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses (a test helper: the
    /// message names the URL and [`URL_VAR`]).
    pub fn create() -> TempDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin_url = std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_string());
        let name = format!(
            "hb_test_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            random_u32()
        );
        let url = match with_database(&admin_url, &name) {
            Ok(url) => url,
            Err(e) => panic!("{URL_VAR}={admin_url:?}: {e}"),
        };
        if let Err(e) = run_sql(&admin_url, &format!("CREATE DATABASE \"{name}\"")) {
            panic!(
                "cannot create a test database on the PostgreSQL server at {admin_url} \
                 (set {URL_VAR} to another server): {e}"
            );
        }
        TempDatabase {
            admin_url,
            name,
            url,
        }
    }

    /// The URL of this database, for [`crate::PgStore::open`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` (one or more statements) in this database.
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        run_sql(&self.url, sql)
    }

    /// Drops the database now, closing every connection to it (a test of
    /// what a store does when its database goes away).
    pub fn drop_now(&self) -> Result<(), String> {
        run_sql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        )
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.drop_now() {
            // Not a panic: this may run while a failed test unwinds.
            eprintln!("cannot drop test database {}: {e}", self.name);
        }
    }
}

/// `url` with its database replaced by `name` (URL form only).
fn with_database(url: &str, name: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or("expected a postgres:// URL")?;
    let scheme = &url[..url.len() - rest.len()];
    let (before_query, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    Ok(format!("{scheme}{authority}/{name}{query}"))
}

/// A random number from the standard library's per-process hash seed.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32
}

/// Runs `sql` on a connection of its own to `url`.
fn run_sql(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    on_own_thread(async move {
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let connection = tokio::spawn(connection);
        let result = client
            .batch_execute(&sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => format!("{sql}: {}", db.message()),
                None => format!("{sql}: {e}"),
            });
        drop(client);
        let _ = connection.await;
        result
    })
}

/// Runs `work` to completion on a new thread with a runtime of its own.
fn on_own_thread<T: Send + 'static>(
    work: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?
            .block_on(work)
    })
    .join()
    .unwrap_or_else(|_| Err("the admin thread panicked".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            (
                "postgresql://u:p@h/db?sslmode=disable",
                "postgresql://u:p@h/x?sslmode=disable",
            ),
            ("postgres://h:1", "postgres://h:1/x"),
            (
                "postgres://h?application_name=a",
                "postgres://h/x?application_name=a",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(with_database(url, "x").as_deref(), Ok(want), "{url}");
        }
        assert!(with_database("host=localhost", "x").is_err());
    }
}
