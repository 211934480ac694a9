//! `PgStore`: the PostgreSQL backend (SPEC §11.1), for several nodes that
//! share one database.
//!
//! **Schema.** One table, `kv (key bytea PRIMARY KEY, value bytea NOT
//! NULL)`, holding exactly what a sled store holds, format marker
//! ([`crate::FORMAT_KEY`]) included. `bytea` compares bytewise (unsigned,
//! a prefix first), as sled does, so every range scan and "latest" read is
//! a bounded scan of the primary-key index: `WHERE key >= $start AND key <
//! $end ORDER BY key [DESC] LIMIT $n`.
//!
//! **Threads.** [`Store`] is blocking and is called from plain threads and
//! from tokio/actix threads alike. `PgStore` owns a small tokio runtime
//! (two threads named `hb-pg`) that drives tokio-postgres and its
//! deadpool pool; a call hands its work to that runtime and waits for the
//! answer on a std channel. No call starts or blocks on a runtime of the
//! caller's, so every call is safe from any thread (a blocking driver
//! such as the sync `postgres` crate panics on a runtime thread).
//!
//! **Batches and groups.** A group ([`Store::apply_group`]; a single
//! [`Store::apply`] is a group of one) is one `READ COMMITTED`
//! transaction:
//!
//! 1. `SELECT … FOR UPDATE` of every key a conditional operation names
//!    (`PutNew`, `PutIfAbsent`, `Require`, `RequireEq`), in key order: the
//!    rows that exist are locked until the commit, so no other writer can
//!    change or remove them in between. Exclusive, not `FOR SHARE`: a
//!    group may write a key it checked (`RequireEq` then `Put`, a lease
//!    renewed in a batch), and two groups upgrading shared locks on one row
//!    deadlock, where exclusive locks taken in key order queue;
//! 2. the group is resolved against those rows exactly as sled and the
//!    in-memory store resolve it (each batch against its own earlier
//!    operations, the group's accepted batches, then the database): a
//!    batch whose precondition fails fails alone, with its own error;
//! 3. the accepted writes, reduced to the last write per key: keys that a
//!    conditional operation found absent are *claimed* with `INSERT … ON
//!    CONFLICT DO NOTHING RETURNING key` (an absent key has no row to
//!    lock); every other key is upserted or deleted;
//! 4. if a claim found its key taken (another writer inserted it since step
//!    1), the transaction is rolled back and the whole group is tried again
//!    from step 1, which now sees that row; so are deadlocks and
//!    serialization failures, up to [`PgOptions::max_attempts`] tries;
//! 5. `COMMIT` with `synchronous_commit = on`: the commit is the group's
//!    durability, and each batch's outcome is reported only after it.
//!
//! Row locks plus claims were chosen over `SERIALIZABLE`: they give each
//! batch the contract's atomicity (every fact a successful batch relied on
//! holds at the commit: present rows are locked, absent ones are claimed),
//! while `SERIALIZABLE`'s predicate locks are kept per index page, so two
//! nodes sequencing unrelated processes whose keys share a page would
//! abort each other. A savepoint per batch was not needed either: since
//! every precondition is decided before anything is written, a failing
//! batch writes nothing, and the group's transaction carries no
//! subtransactions (more than 64 in one transaction slow down every
//! snapshot taken on the server, and each would cost round trips).
//!
//! A statement error that is neither a conflict nor a lost connection (say,
//! a key too long for the index) fails a group of one with
//! [`StoreError::Io`]; in a larger group each batch is then applied on its
//! own, so only the offending batch fails. A lost or refused connection
//! fails every batch of the group with [`StoreError::Unavailable`]; if it
//! was lost during `COMMIT`, the detail says the outcome is unknown.
//!
//! [`Store::flush`] returns at once: every write returns after its commit.
//! [`Store::backup`] is [`StoreError::Unsupported`]: back a database up
//! with `pg_dump` or the server's own backups.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tracing::Instrument;

use crate::batch::{Batch, BatchOp, Lookup};
use crate::error::StoreError;
use crate::store::{resolve_group, Direction, Entry, Store};
use crate::store_dir::format_of;
use crate::{FORMAT, FORMAT_KEY, FORMAT_VERSION, OLDEST_FORMAT};

/// Tuning of a [`PgStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections in the pool (default 8). Group commit uses one at a
    /// time; readers take the others.
    pub max_connections: usize,
    /// How long connecting, or waiting for a free pooled connection, may
    /// take before a call fails with [`StoreError::Unavailable`] (default
    /// 5 s).
    pub connect_timeout: Duration,
    /// Tries of a group whose transaction met a conflicting writer (a key
    /// claimed meanwhile, a deadlock, a serialization failure) before it
    /// fails with [`StoreError::Unavailable`] (default 8).
    pub max_attempts: u32,
    /// How long a statement waits for a row another session locked before
    /// it fails with [`StoreError::Unavailable`] (PostgreSQL's
    /// `lock_timeout`; default 2 s). A node paused or cut off in the middle
    /// of a transaction holds its row locks: without this bound, another
    /// node taking over its lease would wait for it forever.
    pub lock_timeout: Duration,
    /// How long the server keeps a session that sits idle inside a
    /// transaction before it ends the session, rolling the transaction
    /// back and releasing its locks (PostgreSQL's
    /// `idle_in_transaction_session_timeout`; default 2 s). hb's own
    /// transactions never wait on their client; only a stalled node's do.
    pub idle_in_transaction_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            max_attempts: 8,
            lock_timeout: Duration::from_secs(2),
            idle_in_transaction_timeout: Duration::from_secs(2),
        }
    }
}

/// The PostgreSQL backend: one table `kv` in the database a URL names,
/// shared by every node opened on it. See the module documentation for
/// the transactions and the threads.
pub struct PgStore {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    /// Taken by `Drop`, which shuts it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.shared.location)
            .finish()
    }
}

/// What the runtime's tasks share.
struct Shared {
    pool: Pool,
    /// The URL without its password, for errors and logs.
    location: String,
    max_attempts: u32,
}

/// The advisory lock taken while the schema is created or checked, so that
/// two nodes starting at once do not race on `CREATE TABLE`.
const SCHEMA_LOCK: i64 = 0x6862_2d73_746f_7265; // "hb-store"

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS kv (key bytea PRIMARY KEY, value bytea NOT NULL)";
const GET: &str = "SELECT value FROM kv WHERE key = $1";
const PUT: &str = "INSERT INTO kv (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value \
     WHERE kv.value IS DISTINCT FROM excluded.value";
const DELETE: &str = "DELETE FROM kv WHERE key = $1";
const RANGE_FORWARD: &str =
    "SELECT key, value FROM kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3";
const RANGE_FORWARD_OPEN: &str = "SELECT key, value FROM kv WHERE key >= $1 ORDER BY key LIMIT $2";
const RANGE_REVERSE: &str =
    "SELECT key, value FROM kv WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3";
const RANGE_REVERSE_OPEN: &str =
    "SELECT key, value FROM kv WHERE key >= $1 ORDER BY key DESC LIMIT $2";
const LOCK_KEYS: &str = "SELECT key, value FROM kv WHERE key = ANY($1) ORDER BY key FOR UPDATE";
const CLAIM: &str = "INSERT INTO kv (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
     ON CONFLICT (key) DO NOTHING RETURNING key";
const UPSERT: &str = "INSERT INTO kv (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value \
     WHERE kv.value IS DISTINCT FROM excluded.value";
const DELETE_KEYS: &str = "DELETE FROM kv WHERE key = ANY($1)";
const CAS_INSERT: &str = "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
const CAS_UPDATE: &str = "UPDATE kv SET value = $3 WHERE key = $1 AND value = $2";
const CAS_DELETE: &str = "DELETE FROM kv WHERE key = $1 AND value = $2";
const SIZE: &str = "SELECT pg_total_relation_size('kv')::bigint";

impl PgStore {
    /// Opens the store in the database `url` names
    /// (`postgres://user[:password]@host[:port]/database[?…]`), creating
    /// the table and the format marker if they are missing.
    ///
    /// Creation is one transaction under an advisory lock, so nodes that
    /// start at once on a fresh database all open it and it holds one
    /// marker. A database whose marker names a newer format is
    /// [`StoreError::NewerFormat`] (nothing written); an unknown marker, or
    /// a `kv` table with rows but no marker, is [`StoreError::CorruptStore`];
    /// an unreachable server [`StoreError::Unavailable`]; a URL that does
    /// not parse [`StoreError::InvalidUrl`]. TLS is not supported by this
    /// build (`sslmode=require` fails to connect).
    pub fn open(url: &str, options: &PgOptions) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::InvalidUrl {
                detail: format!("{e}"),
            })?;
        let location = describe(&config);
        let span = tracing::info_span!("pg_open", store = %location);
        let _entered = span.enter();
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("hb");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hb-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io {
                path: PathBuf::from(&location),
                detail: format!("cannot start the PostgreSQL runtime: {e}"),
            })?;
        let handle = runtime.handle().clone();
        let setup = {
            let location = location.clone();
            let config = config.clone();
            async move { prepare_database(&config, &location).await }
        };
        let synchronous_commit = run_on(&handle, setup.instrument(span.clone()))?;
        // Every pooled session commits durably (`on` unless the server's
        // default is the stronger `remote_apply`), and neither waits for
        // nor keeps locks past its bounds (see `PgOptions`).
        let mut session = config.get_options().unwrap_or_default().to_string();
        let mut set = |setting: String| {
            if !session.is_empty() {
                session.push(' ');
            }
            session.push_str(&setting);
        };
        if synchronous_commit != "remote_apply" {
            set("-c synchronous_commit=on".into());
        }
        set(format!(
            "-c lock_timeout={}",
            options.lock_timeout.as_millis().max(1)
        ));
        set(format!(
            "-c idle_in_transaction_session_timeout={}",
            options.idle_in_transaction_timeout.as_millis().max(1)
        ));
        config.options(session);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Io {
                path: PathBuf::from(&location),
                detail: format!("cannot build the connection pool: {e}"),
            })?;
        tracing::info!("postgres store open");
        Ok(PgStore {
            shared: Arc::new(Shared {
                pool,
                location,
                max_attempts: options.max_attempts.max(1),
            }),
            handle,
            runtime: Some(runtime),
        })
    }

    /// Where the store is: its URL without the password.
    pub fn location(&self) -> &str {
        &self.shared.location
    }

    /// Runs `work` on the store's runtime and waits for its answer.
    fn call<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        run_on(&self.handle, work(self.shared.clone()))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Never blocks, so dropping the store on an executor thread is fine;
        // the pool's connections close with the runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `work` on the runtime behind `handle` and waits for its answer on
/// a std channel: safe from any thread but the runtime's own.
fn run_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(work.await);
    });
    // A task that panicked, or a runtime shut down, drops the sender.
    rx.recv().unwrap_or(Err(StoreError::Closed))
}

/// `postgres://user@host:port/database`: the URL without its password.
fn describe(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let database = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{}/{database}", hosts.join(","))
}

/// Connects once, creates the table and the format marker if missing (one
/// transaction under [`SCHEMA_LOCK`]) and checks the marker; returns the
/// server's default `synchronous_commit`.
async fn prepare_database(
    config: &tokio_postgres::Config,
    location: &str,
) -> Result<String, StoreError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| unavailable(location, &e, "cannot connect"))?;
    let connection = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "schema connection ended");
        }
    });
    let result = create_schema(&client, location).await;
    drop(client);
    let _ = connection.await;
    result
}

async fn create_schema(client: &Client, location: &str) -> Result<String, StoreError> {
    let db = |e: tokio_postgres::Error| map_error(location, &e, "creating the schema");
    let synchronous_commit = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .map_err(db)?
        .try_get::<_, String>(0)
        .map_err(db)?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(db)?;
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(db)?;
    client.batch_execute(CREATE_TABLE).await.map_err(db)?;
    let corrupt = |detail: String| StoreError::CorruptStore {
        path: PathBuf::from(location),
        detail,
    };
    let marker: Option<Vec<u8>> = client
        .query_opt(GET, &[&FORMAT_KEY])
        .await
        .map_err(|e| match e.code() {
            // Someone else's table named `kv`.
            Some(c) if *c == SqlState::UNDEFINED_COLUMN || *c == SqlState::DATATYPE_MISMATCH => {
                corrupt(format!("table kv is not an hb store: {e}"))
            }
            _ => db(e),
        })?
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(db)?;
    let outcome = match marker {
        Some(v) if v == FORMAT_VERSION => Ok(()),
        Some(v) if format_of(&v).is_some_and(|n| (OLDEST_FORMAT..FORMAT).contains(&n)) => {
            let from = format_of(&v).unwrap_or(OLDEST_FORMAT);
            client
                .execute(PUT, &[&FORMAT_KEY, &FORMAT_VERSION])
                .await
                .map_err(db)?;
            tracing::info!(from, to = FORMAT, "store format upgraded");
            Ok(())
        }
        Some(v) if format_of(&v).is_some_and(|n| n > FORMAT) => Err(StoreError::NewerFormat {
            path: PathBuf::from(location),
            found: format_of(&v).unwrap_or(FORMAT),
            supported: FORMAT,
        }),
        Some(v) => Err(corrupt(format!(
            "unknown format marker {:?} (this build reads {:?})",
            v.escape_ascii().to_string(),
            FORMAT_VERSION.escape_ascii().to_string()
        ))),
        None => {
            let first: Option<Vec<u8>> = client
                .query_opt("SELECT key FROM kv ORDER BY key LIMIT 1", &[])
                .await
                .map_err(db)?
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(db)?;
            match first {
                Some(key) => Err(corrupt(format!(
                    "table kv holds data (first key {}) but no format marker",
                    crate::keys::printable(&key)
                ))),
                None => {
                    client
                        .execute(PUT, &[&FORMAT_KEY, &FORMAT_VERSION])
                        .await
                        .map_err(db)?;
                    tracing::info!("postgres store created");
                    Ok(())
                }
            }
        }
    };
    let end = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    client.batch_execute(end).await.map_err(db)?;
    outcome.map(|()| synchronous_commit)
}

/// How a database error is reported.
enum Failure {
    /// Another writer conflicted (a claimed key, a deadlock, a
    /// serialization failure): the group may be tried again.
    Conflict(String),
    /// The server is unreachable or refused the work.
    Unavailable(String),
    /// Any other statement error.
    Other(String),
}

fn classify(e: &tokio_postgres::Error) -> Failure {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection closed, an I/O error, a protocol error.
        return Failure::Unavailable(e.to_string());
    };
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), code.code()),
        None => e.to_string(),
    };
    let class = &code.code()[..2.min(code.code().len())];
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        Failure::Conflict(detail)
    } else if matches!(class, "08" | "53" | "57" | "28")
        || *code == SqlState::INVALID_CATALOG_NAME
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
    {
        // Connection exceptions, insufficient resources, operator
        // intervention (shutdown, database dropped), authentication, a
        // missing database, a standby; a row lock held past
        // `lock_timeout` (a stalled session), this session ended for
        // idling in a transaction.
        Failure::Unavailable(detail)
    } else {
        Failure::Other(detail)
    }
}

fn failure_error(location: &str, failure: Failure, context: &str) -> StoreError {
    match failure {
        Failure::Unavailable(detail) => StoreError::Unavailable {
            store: location.to_string(),
            detail: format!("{context}: {detail}"),
        },
        Failure::Conflict(detail) | Failure::Other(detail) => StoreError::Io {
            path: PathBuf::from(location),
            detail: format!("{context}: {detail}"),
        },
    }
}

fn map_error(location: &str, e: &tokio_postgres::Error, context: &str) -> StoreError {
    failure_error(location, classify(e), context)
}

fn unavailable(location: &str, e: &tokio_postgres::Error, context: &str) -> StoreError {
    StoreError::Unavailable {
        store: location.to_string(),
        detail: format!("{context}: {e}"),
    }
}

impl Shared {
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            let detail = match e {
                PoolError::Timeout(_) => "no connection within the connect timeout".to_string(),
                PoolError::Backend(e) => return unavailable(&self.location, &e, "cannot connect"),
                other => other.to_string(),
            };
            StoreError::Unavailable {
                store: self.location.clone(),
                detail,
            }
        })
    }

    fn error(&self, e: &tokio_postgres::Error, context: &str) -> StoreError {
        map_error(&self.location, e, context)
    }

    async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let read = async {
            let statement = client.prepare_cached(GET).await?;
            match client.query_opt(&statement, &[&key]).await? {
                Some(row) => row.try_get(0).map(Some),
                None => Ok(None),
            }
        };
        read.await.map_err(|e| self.error(&e, "get"))
    }

    async fn execute(&self, sql: &str, params: &[&[u8]], context: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let write = async {
            let statement = client.prepare_cached(sql).await?;
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            client.execute(&statement, &params).await
        };
        write.await.map_err(|e| self.error(&e, context))
    }

    async fn range(
        &self,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let read = async {
            let rows = match (&end, direction) {
                (Some(end), Direction::Forward) => {
                    let s = client.prepare_cached(RANGE_FORWARD).await?;
                    client.query(&s, &[&start, end, &limit]).await?
                }
                (Some(end), Direction::Reverse) => {
                    let s = client.prepare_cached(RANGE_REVERSE).await?;
                    client.query(&s, &[&start, end, &limit]).await?
                }
                (None, Direction::Forward) => {
                    let s = client.prepare_cached(RANGE_FORWARD_OPEN).await?;
                    client.query(&s, &[&start, &limit]).await?
                }
                (None, Direction::Reverse) => {
                    let s = client.prepare_cached(RANGE_REVERSE_OPEN).await?;
                    client.query(&s, &[&start, &limit]).await?
                }
            };
            rows.into_iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<Vec<Entry>, tokio_postgres::Error>>()
        };
        read.await.map_err(|e| self.error(&e, "range"))
    }

    /// [`Store::apply_group`]: tries the group until it commits, fails for
    /// good, or has met [`PgOptions::max_attempts`] conflicts; falls back to
    /// one transaction per batch when a statement error (not a conflict,
    /// not a lost connection) fails a group of several.
    async fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        if batches.is_empty() {
            return Vec::new();
        }
        match self.apply_group_retrying(&batches).await {
            Ok(outcomes) => outcomes,
            Err(GroupError::Statement(e)) if batches.len() > 1 => {
                tracing::warn!(error = %e, batches = batches.len(),
                    "a statement failed the group: applying its batches one by one");
                let mut outcomes = Vec::with_capacity(batches.len());
                for batch in batches {
                    let one = std::slice::from_ref(&batch);
                    outcomes.push(match self.apply_group_retrying(one).await {
                        Ok(mut o) => o.pop().unwrap_or(Ok(())),
                        Err(GroupError::Statement(e) | GroupError::Fatal(e)) => Err(e),
                    });
                }
                outcomes
            }
            Err(GroupError::Statement(e) | GroupError::Fatal(e)) => {
                batches.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    async fn apply_group_retrying(
        &self,
        batches: &[Batch],
    ) -> Result<Vec<Result<(), StoreError>>, GroupError> {
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let client = self.client().await.map_err(GroupError::Fatal)?;
            let result = group_transaction(&client, batches).await;
            let failure = match result {
                Ok(outcomes) => return Ok(outcomes),
                Err(failure) => failure,
            };
            // Leave the connection outside any transaction, or out of the pool.
            if client.batch_execute("ROLLBACK").await.is_err() {
                drop(Object::take(client));
            } else {
                drop(client);
            }
            match failure {
                Attempt::Conflict(detail) => {
                    tracing::debug!(attempt, %detail, "group conflicted with another writer");
                    last = detail;
                    // Let the conflicting transaction finish.
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt))).await;
                }
                Attempt::Failed {
                    failure,
                    committing,
                } => {
                    let context = if committing {
                        "commit (its outcome is unknown)"
                    } else {
                        "group transaction (nothing was written)"
                    };
                    let unavailable = matches!(failure, Failure::Unavailable(_));
                    let e = failure_error(&self.location, failure, context);
                    return Err(if unavailable {
                        GroupError::Fatal(e)
                    } else {
                        GroupError::Statement(e)
                    });
                }
            }
        }
        Err(GroupError::Fatal(StoreError::Unavailable {
            store: self.location.clone(),
            detail: format!(
                "gave up after {} conflicting tries (last: {last}); nothing was written",
                self.max_attempts
            ),
        }))
    }

    async fn compare_and_swap(
        &self,
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let context = "compare-and-swap";
        let changed = match (&expected, &new) {
            (None, None) => return Ok(self.get(key).await?.is_none()),
            (None, Some(n)) => self.execute(CAS_INSERT, &[&key, n], context).await?,
            (Some(e), Some(n)) => self.execute(CAS_UPDATE, &[&key, e, n], context).await?,
            (Some(e), None) => self.execute(CAS_DELETE, &[&key, e], context).await?,
        };
        Ok(changed == 1)
    }

    async fn size(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let read = async {
            let statement = client.prepare_cached(SIZE).await?;
            client.query_one(&statement, &[]).await?.try_get(0)
        };
        read.await.map_err(|e| self.error(&e, "size"))
    }
}

/// Why a group failed for good.
enum GroupError {
    /// A statement error: the group's batches may succeed one by one.
    Statement(StoreError),
    /// The server is unavailable, or conflicts did not end.
    Fatal(StoreError),
}

/// Why one try of a group's transaction did not commit.
enum Attempt {
    /// Another writer conflicted: try again.
    Conflict(String),
    /// A database error; `committing`: it answered the `COMMIT`.
    Failed { failure: Failure, committing: bool },
}

impl From<tokio_postgres::Error> for Attempt {
    fn from(e: tokio_postgres::Error) -> Attempt {
        match classify(&e) {
            Failure::Conflict(detail) => Attempt::Conflict(detail),
            failure => Attempt::Failed {
                failure,
                committing: false,
            },
        }
    }
}

/// The rows the group's conditional operations name, as locked in its
/// transaction (present ones only).
struct Locked<'a> {
    rows: &'a HashMap<Vec<u8>, Vec<u8>>,
}

impl Lookup for Locked<'_> {
    fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.rows.contains_key(key))
    }

    fn holds(&mut self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        Ok(self.rows.get(key).is_some_and(|v| v == value))
    }
}

/// The keys the conditional operations of `batches` name, sorted, once
/// each.
fn conditional_keys(batches: &[Batch]) -> Vec<&[u8]> {
    let mut keys: Vec<&[u8]> = batches
        .iter()
        .flat_map(|b| &b.ops)
        .filter_map(|op| match op {
            BatchOp::PutNew(k, _)
            | BatchOp::PutIfAbsent(k, _)
            | BatchOp::Require(k)
            | BatchOp::RequireEq(k, _) => Some(k.as_slice()),
            BatchOp::Put(..) | BatchOp::Delete(..) | BatchOp::PutContent(..) => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// One try of a group: lock, resolve, write, commit (see the module
/// documentation). Leaves a transaction open only when it fails.
async fn group_transaction(
    client: &Object,
    batches: &[Batch],
) -> Result<Vec<Result<(), StoreError>>, Attempt> {
    let conditional = conditional_keys(batches);
    let begin = client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED");
    let rows: HashMap<Vec<u8>, Vec<u8>> = if conditional.is_empty() {
        begin.await?;
        HashMap::new()
    } else {
        let lock = async {
            let statement = client.prepare_cached(LOCK_KEYS).await?;
            client.query(&statement, &[&conditional]).await
        };
        // Pipelined: one round trip.
        let ((), rows) = futures::try_join!(begin, lock)?;
        rows.into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()?
    };
    let (outcomes, writes) = resolve_group(batches.to_vec(), &mut Locked { rows: &rows });
    // The last write of each key, in key order (a consistent lock order).
    let last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = writes.into_iter().collect();
    let found_absent: HashSet<&[u8]> = conditional
        .iter()
        .copied()
        .filter(|k| !rows.contains_key(*k))
        .collect();
    let (mut claim_keys, mut claim_values) = (Vec::new(), Vec::new());
    let (mut upsert_keys, mut upsert_values) = (Vec::new(), Vec::new());
    let mut deletes = Vec::new();
    for (key, value) in &last {
        let key = key.as_slice();
        if found_absent.contains(key) {
            // Claimed with its value, or with a placeholder that the
            // deletes below remove: either way, a row someone else
            // inserted meanwhile makes the claim fail.
            claim_keys.push(key);
            claim_values.push(value.as_deref().unwrap_or_default());
            if value.is_none() {
                deletes.push(key);
            }
        } else {
            match value {
                Some(v) => {
                    upsert_keys.push(key);
                    upsert_values.push(v.as_slice());
                }
                None => deletes.push(key),
            }
        }
    }
    let claim = async {
        if claim_keys.is_empty() {
            return Ok(0);
        }
        let statement = client.prepare_cached(CLAIM).await?;
        let rows = client
            .query(&statement, &[&claim_keys, &claim_values])
            .await?;
        Ok::<usize, tokio_postgres::Error>(rows.len())
    };
    let upsert = async {
        if upsert_keys.is_empty() {
            return Ok(0);
        }
        let statement = client.prepare_cached(UPSERT).await?;
        client
            .execute(&statement, &[&upsert_keys, &upsert_values])
            .await
    };
    let delete = async {
        if deletes.is_empty() {
            return Ok(0);
        }
        let statement = client.prepare_cached(DELETE_KEYS).await?;
        client.execute(&statement, &[&deletes]).await
    };
    // Pipelined, in this order (a placeholder claim before its delete).
    let (claimed, _, _) = futures::try_join!(claim, upsert, delete)?;
    if claimed != claim_keys.len() {
        return Err(Attempt::Conflict(format!(
            "{} of {} keys found absent were inserted by another writer",
            claim_keys.len() - claimed,
            claim_keys.len()
        )));
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| match classify(&e) {
            Failure::Conflict(detail) => Attempt::Conflict(detail),
            failure => Attempt::Failed {
                failure,
                committing: true,
            },
        })?;
    Ok(outcomes)
}

impl Store for PgStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.call(|s| async move { s.get(key).await })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.call(|s| async move { s.execute(PUT, &[&key, &value], "put").await.map(drop) })
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        let key = key.to_vec();
        self.call(|s| async move { s.execute(DELETE, &[&key], "delete").await.map(drop) })
    }

    fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        if end.is_some_and(|e| e <= start) || limit == 0 {
            return Ok(Vec::new());
        }
        let (start, end) = (start.to_vec(), end.map(<[u8]>::to_vec));
        self.call(|s| async move { s.range(start, end, direction, limit).await })
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.apply_group(vec![batch])
            .pop()
            .unwrap_or(Err(StoreError::Closed))
    }

    fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        let n = batches.len();
        let span = tracing::debug_span!("pg_apply_group", batches = n);
        let outcomes = self.call(|s| {
            async move { Ok::<_, StoreError>(s.apply_group(batches).await) }.instrument(span)
        });
        match outcomes {
            Ok(outcomes) => outcomes,
            Err(e) => vec![Err(e); n],
        }
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let (key, expected, new) = (
            key.to_vec(),
            expected.map(<[u8]>::to_vec),
            new.map(<[u8]>::to_vec),
        );
        self.call(|s| async move { s.compare_and_swap(key, expected, new).await })
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every write returned after its commit (synchronous_commit = on).
        Ok(())
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        let size = self.call(|s| async move { s.size().await }).ok()?;
        u64::try_from(size).ok()
    }

    fn backup(&self, _dest: &std::path::Path) -> Result<crate::BackupReport, StoreError> {
        Err(StoreError::Unsupported {
            backend: "postgres",
            operation: "back up (use pg_dump or the server's own backups)",
        })
    }
}
