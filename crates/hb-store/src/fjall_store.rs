//! `FjallStore`: the compact embedded backend (fjall 3.1, an LSM tree).
//!
//! sled 0.34 keeps 3.4× the logical bytes of a scheduler's records on
//! disk, and ~700 bytes for even a 12-byte value written in the order a
//! scheduler writes (round-robin over processes): past the 1 KB per
//! assignment target whatever the record holds (`docs/PERFORMANCE.md`,
//! "Disk per assignment"). An LSM tree writes sorted, LZ4-compressed
//! blocks and merges them in the background: one process's records sit
//! side by side in a block, so what they repeat (process ID, key names,
//! the scheduler's key and address) compresses away.
//!
//! Same keys, values and format marker as [`crate::SledStore`], one
//! keyspace, one write lock for conditional operations; a write is
//! durable once [`Store::flush`] (a synced journal) has returned.

use std::path::{Path, PathBuf};

use fjall::config::{BlockSizePolicy, CompressionPolicy};
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::Mutex;

use crate::batch::{Batch, Lookup, Overlay, Writes};
use crate::error::StoreError;
use crate::sled_store::CREATING_FILE;
use crate::store::{
    collect_range, fail_accepted, resolve_group, BackupReport, Direction, Entry, Store,
};
use crate::store_dir::{
    announce_creation, backup_into_new_dir, check_format, io_error, refuse_other_backend, sync_dir,
};

/// The one keyspace every entry lives in.
const KEYSPACE: &str = "hb";

/// Entries written to a backup per batch.
const BACKUP_BATCH: usize = 4096;

/// What every stored key starts with. fjall refuses (panics on) an empty
/// key, which the `Store` contract allows; one leading byte makes every key
/// non-empty and keeps their order.
const KEY_TAG: u8 = 0;
/// The longest key fjall stores (its keys are at most `u16::MAX` bytes),
/// less the tag.
const MAX_KEY: usize = u16::MAX as usize - 1;
/// The longest value fjall stores.
const MAX_VALUE: u64 = u32::MAX as u64;

/// `key` as stored: tagged, and refused with a typed error where fjall
/// would panic.
fn tagged(key: &[u8]) -> Result<Vec<u8>, StoreError> {
    if key.len() > MAX_KEY {
        return Err(StoreError::TooLarge {
            record: "fjall key",
            limit: MAX_KEY as u64,
        });
    }
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(KEY_TAG);
    out.extend_from_slice(key);
    Ok(out)
}

/// Refuses a value fjall would panic on.
fn checked(value: &[u8]) -> Result<&[u8], StoreError> {
    if value.len() as u64 > MAX_VALUE {
        return Err(StoreError::TooLarge {
            record: "fjall value",
            limit: MAX_VALUE,
        });
    }
    Ok(value)
}

/// A stored key without its tag.
fn untagged(stored: &[u8]) -> &[u8] {
    stored.get(1..).unwrap_or_default()
}

/// Tuning of a [`FjallStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FjallOptions {
    /// Block cache size in bytes.
    pub cache_capacity: u64,
    /// Upper bound of the journals (write-ahead logs) in bytes; fjall
    /// flushes memtables to disk to stay under it. At least 64 MiB.
    pub max_journal_bytes: u64,
    /// Background flush and compaction threads (at least 1).
    pub worker_threads: usize,
}

impl Default for FjallOptions {
    fn default() -> FjallOptions {
        FjallOptions {
            cache_capacity: 256 << 20,
            max_journal_bytes: 64 << 20,
            worker_threads: 2,
        }
    }
}

/// The fjall backend: one database, one keyspace, key prefixes.
///
/// Writes are serialised by one lock so that the existence checks of
/// conditional operations are atomic with the write that follows them;
/// reads take no lock.
pub struct FjallStore {
    db: Database,
    data: Keyspace,
    path: PathBuf,
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore")
            .field("path", &self.path)
            .finish()
    }
}

impl FjallStore {
    /// Opens (or creates) the store at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<FjallStore, StoreError> {
        FjallStore::open_with(path, &FjallOptions::default())
    }

    /// Opens (or creates) the store at `path`.
    ///
    /// A store held by another process gives [`StoreError::Locked`]; one
    /// whose files are corrupt gives [`StoreError::CorruptStore`]; both
    /// name the path. Creation follows the same resumable protocol as
    /// [`crate::SledStore::open_with`] ([`CREATING_FILE`]).
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &FjallOptions,
    ) -> Result<FjallStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let _span = tracing::info_span!("fjall_open", path = %path.display()).entered();
        if options.max_journal_bytes < 64 << 20 || options.worker_threads == 0 {
            // fjall panics on these; refuse them as settings instead.
            return Err(StoreError::Unsupported {
                backend: "fjall",
                operation: "open with journals under 64 MiB or no worker thread",
            });
        }
        refuse_other_backend(&path, "fjall")?;
        let unfinished = if path.join(CREATING_FILE).exists() {
            tracing::warn!("resuming the unfinished creation of the store");
            true
        } else if !path.join("version").exists() {
            if path.join("keyspaces").exists() {
                // fjall's tables without its version file: truncated or
                // half deleted, never written over.
                return Err(StoreError::CorruptStore {
                    path,
                    detail: "fjall's `keyspaces` directory is there but its `version` file is \
                             not, and the store is not being created"
                        .into(),
                });
            }
            announce_creation(&path).map_err(|e| io_error(&path, &e))?;
            true
        } else {
            false
        };
        let (db, data) = match open_database(&path, options) {
            // A crash while fjall laid out its first files leaves them
            // torn (fjall then reports corruption, or an I/O error such as
            // a directory it expects to make being there). They hold no
            // data yet (the marker comes first), so an unfinished creation
            // starts them again; a live creator holds the lock and is not
            // touched.
            Err(e) if unfinished && !matches!(e, StoreError::Locked { .. }) => {
                tracing::warn!(error = %e, "restarting the unfinished creation's fjall files");
                remove_fjall_files(&path).map_err(|e| io_error(&path, &e))?;
                open_database(&path, options)?
            }
            other => other?,
        };
        tracing::info!("fjall store open");
        let store = FjallStore {
            db,
            data,
            path,
            write_lock: Mutex::new(()),
        };
        check_format(&store, &store.path, unfinished)?;
        Ok(store)
    }

    fn err(&self, e: fjall::Error) -> StoreError {
        op_error(&self.path, e)
    }

    fn write(&self, writes: Writes) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for (k, v) in writes {
            let k = tagged(&k)?;
            match v {
                Some(v) => batch.insert(&self.data, k, checked(&v)?),
                None => batch.remove(&self.data, k),
            }
        }
        batch.commit().map_err(|e| self.err(e))
    }

    /// The copy of [`Store::backup`]: every entry, with writes held off.
    fn copy_into(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        // Writes wait on this lock for the whole copy: no batch lands in
        // the middle of it, and everything written before is in it.
        let held = self.write_lock.lock();
        let copy = FjallStore::open_with(
            dest,
            &FjallOptions {
                cache_capacity: 16 << 20,
                ..FjallOptions::default()
            },
        )?;
        let mut report = BackupReport {
            entries: 0,
            bytes: 0,
        };
        let mut pending = Vec::with_capacity(BACKUP_BATCH);
        for item in self.data.iter() {
            let (k, v) = item.into_inner().map_err(|e| self.err(e))?;
            report.entries += 1;
            report.bytes += (k.len() + v.len()) as u64;
            pending.push((untagged(&k).to_vec(), Some(v.to_vec())));
            if pending.len() == BACKUP_BATCH {
                copy.write(std::mem::take(&mut pending))?;
            }
        }
        copy.write(pending)?;
        drop(held);
        copy.flush()?;
        drop(copy);
        sync_dir(dest).map_err(|e| io_error(dest, &e))?;
        Ok(report)
    }
}

/// Opens fjall's database and the one keyspace.
fn open_database(path: &Path, options: &FjallOptions) -> Result<(Database, Keyspace), StoreError> {
    let db = Database::builder(path)
        .cache_size(options.cache_capacity)
        .max_journaling_size(options.max_journal_bytes)
        .worker_threads(options.worker_threads)
        .open()
        .map_err(|e| open_error(path, e))?;
    let data = db
        .keyspace(KEYSPACE, keyspace_options)
        .map_err(|e| open_error(path, e))?;
    Ok((db, data))
}

/// Removes the files fjall lays out in `dir` (its version file, lock,
/// journals and keyspaces), leaving everything else.
fn remove_fjall_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "keyspaces" {
            std::fs::remove_dir_all(entry.path())?;
        } else if name == "version" || name == "lock" || name.ends_with(".jnl") {
            std::fs::remove_file(entry.path())?;
        }
    }
    sync_dir(dir)
}

/// Every block LZ4-compressed, at every level (fjall's default leaves the
/// first two levels uncompressed, where a young store keeps everything).
fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default()
        .data_block_size_policy(BlockSizePolicy::all(4 * 1024))
        .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
}

/// The database, as conditional operations ask it (under the write lock).
struct Db<'a>(&'a FjallStore);

impl Lookup for Db<'_> {
    fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        let key = tagged(key)?;
        self.0.data.contains_key(key).map_err(|e| self.0.err(e))
    }

    fn holds(&mut self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        let held = self.0.data.get(tagged(key)?).map_err(|e| self.0.err(e))?;
        Ok(held.is_some_and(|v| &*v == value))
    }
}

/// Maps an error of `open`: lock and corruption are told apart.
fn open_error(path: &Path, e: fjall::Error) -> StoreError {
    match e {
        fjall::Error::Locked => StoreError::Locked {
            path: path.to_path_buf(),
        },
        fjall::Error::Io(io) => StoreError::Io {
            path: path.to_path_buf(),
            detail: io.to_string(),
        },
        // Anything else at open is about the files' contents: versions,
        // trailers, tags, journals or tables that do not decode.
        other => StoreError::CorruptStore {
            path: path.to_path_buf(),
            detail: format!("fjall cannot recover the store: {other:?}"),
        },
    }
}

fn op_error(path: &Path, e: fjall::Error) -> StoreError {
    match e {
        fjall::Error::Io(io) => StoreError::Io {
            path: path.to_path_buf(),
            detail: io.to_string(),
        },
        fjall::Error::Poisoned => StoreError::Io {
            path: path.to_path_buf(),
            detail: "fjall refuses writes after an earlier write failed (poisoned)".into(),
        },
        other => StoreError::CorruptStore {
            path: path.to_path_buf(),
            detail: format!("fjall: {other:?}"),
        },
    }
}

impl Store for FjallStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .data
            .get(tagged(key)?)
            .map_err(|e| self.err(e))?
            .map(|v| v.to_vec()))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let (key, value) = (tagged(key)?, checked(value)?);
        let _w = self.write_lock.lock();
        self.data.insert(key, value).map_err(|e| self.err(e))
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        let key = tagged(key)?;
        let _w = self.write_lock.lock();
        self.data.remove(key).map_err(|e| self.err(e))
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
        let start = tagged(start)?;
        // No upper bound: everything tagged, which sorts below the next tag.
        let end = match end {
            Some(end) => tagged(end)?,
            None => vec![KEY_TAG + 1],
        };
        collect_range(self.data.range(start..end), direction, limit, |item| {
            let (k, v) = item.into_inner().map_err(|e| self.err(e))?;
            Ok((untagged(&k).to_vec(), v.to_vec()))
        })
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let _w = self.write_lock.lock();
        let mut overlay = Overlay::default();
        overlay.resolve(batch, &mut Db(self))?;
        self.write(overlay.into_writes())
    }

    fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        let _w = self.write_lock.lock();
        let (mut outcomes, writes) = resolve_group(batches, &mut Db(self));
        if let Err(e) = self.write(writes) {
            fail_accepted(&mut outcomes, &e);
        }
        outcomes
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let key = tagged(key)?;
        let new = new.map(checked).transpose()?;
        let _w = self.write_lock.lock();
        let held = self.data.get(&key).map_err(|e| self.err(e))?;
        if held.as_deref() != expected {
            return Ok(false);
        }
        match new {
            Some(v) => self.data.insert(key, v),
            None => self.data.remove(key),
        }
        .map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.err(e))
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        self.db.disk_space().ok()
    }

    fn backup(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        let _span = tracing::info_span!("fjall_backup", dest = %dest.display()).entered();
        backup_into_new_dir(dest, |dest| self.copy_into(dest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_fjall_cannot_hold_is_too_large_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FjallStore::open(dir.path().join("s")).expect("open");
        let long = vec![b'k'; MAX_KEY + 1];
        let refused = StoreError::TooLarge {
            record: "fjall key",
            limit: MAX_KEY as u64,
        };
        assert_eq!(store.put(&long, b"v"), Err(refused.clone()));
        let mut batch = Batch::new();
        batch.put(b"a".to_vec(), b"1".to_vec());
        batch.put(long.clone(), b"v".to_vec());
        assert_eq!(store.apply(batch), Err(refused.clone()));
        assert_eq!(store.get(&long), Err(refused));
        // Only the format marker: the batch's first put did not land.
        let all = store
            .range(b"", None, Direction::Forward, 10)
            .expect("range");
        assert_eq!(all.len(), 1, "{all:?}");
        // The longest key it holds is fine, and the empty key too.
        store.put(&long[..MAX_KEY], b"v").expect("longest key");
        store.put(b"", b"empty").expect("empty key");
        assert_eq!(store.get(b"").expect("get"), Some(b"empty".to_vec()));
    }
}
