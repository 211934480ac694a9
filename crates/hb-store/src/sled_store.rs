//! `SledStore`: the embedded default backend (sled 0.34.7, one `Db`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::batch::{Batch, Lookup, Overlay, Writes};
use crate::error::StoreError;
use crate::store::{
    collect_range, fail_accepted, resolve_group, BackupReport, Direction, Entry, Store,
};
use crate::store_dir::{
    announce_creation, backup_into_new_dir, check_format, io_error, refuse_other_backend, sync_dir,
};

/// The key of the format marker every sled store holds.
pub const FORMAT_KEY: &[u8] = b"meta/format";
/// The format this build writes and the newest it reads. Format 2 (this
/// build) writes assignment records in version 2
/// ([`crate::ASSIGNMENT_VERSION`]), which builds of format 1 cannot read;
/// it reads stores of format 1 and marks them 2 when it opens them, before
/// it writes anything else.
pub const FORMAT: u32 = 2;
/// The oldest format this build opens (and upgrades to [`FORMAT`]).
pub const OLDEST_FORMAT: u32 = 1;
/// What a format marker's value starts with; the format number follows.
pub const FORMAT_PREFIX: &str = "hb-store/";
/// The format marker's value for this layout: [`FORMAT_PREFIX`] then
/// [`FORMAT`].
pub const FORMAT_VERSION: &[u8] = b"hb-store/2";

/// The file announcing that the store in its directory is being created
/// (see [`SledStore::open_with`]); it never exists in a finished store.
pub const CREATING_FILE: &str = "hb-store.creating";

/// Tuning of a [`SledStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SledOptions {
    /// sled's background flush interval. `None` turns it off: writes are
    /// then durable only through [`Store::flush`] (group commit does that).
    pub flush_every_ms: Option<u64>,
    /// Page cache size in bytes.
    pub cache_capacity: u64,
}

impl Default for SledOptions {
    fn default() -> SledOptions {
        SledOptions {
            flush_every_ms: Some(500),
            cache_capacity: 1 << 30,
        }
    }
}

/// The sled backend: one `Db` (its default tree), key prefixes, no tree
/// per process.
///
/// Writes are serialised by one lock so that the existence checks of
/// conditional operations are atomic with the write that follows them;
/// reads take no lock.
pub struct SledStore {
    db: sled::Db,
    path: PathBuf,
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SledStore {
    /// Opens (or creates) the store at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        SledStore::open_with(path, &SledOptions::default())
    }

    /// Opens (or creates) the store at `path`.
    ///
    /// A store held by another process gives [`StoreError::Locked`]; one
    /// whose files are corrupt gives [`StoreError::CorruptStore`] (also
    /// when sled panics on them); both name the path.
    ///
    /// Creation is resumable: a new store is first announced by the file
    /// [`CREATING_FILE`] (made durable before sled writes anything), which
    /// is removed only once the format marker is durable. A directory a
    /// crash left with that file is an unfinished creation, and opening it
    /// finishes the creation; existing files without that file and without
    /// a marker are refused as corrupt (see `docs/storage.md`, "Recovery").
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &SledOptions,
    ) -> Result<SledStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let _span = tracing::info_span!("sled_open", path = %path.display()).entered();
        refuse_other_backend(&path, "sled")?;
        let unfinished = if path.join(CREATING_FILE).exists() {
            tracing::warn!("resuming the unfinished creation of the store");
            true
        } else if !path.join("db").exists() {
            announce_creation(&path).map_err(|e| io_error(&path, &e))?;
            true
        } else {
            false
        };
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(options.flush_every_ms)
            .mode(sled::Mode::HighThroughput);
        let db = match open_db(&config, &path) {
            Err(StoreError::CorruptStore { detail, .. }) if unfinished => {
                // sled writes its config file before it takes its lock, in
                // two writes: a crash between them leaves a file sled
                // refuses. It holds only sled's fixed parameters (never
                // data), so an unfinished creation rewrites it.
                tracing::warn!(%detail, "rewriting the config file of an unfinished creation");
                match std::fs::remove_file(path.join("conf")) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&path, &e)),
                }
                open_db(&config, &path)?
            }
            other => other?,
        };
        tracing::info!(recovered = db.was_recovered(), "sled store open");
        let store = SledStore {
            db,
            path,
            write_lock: Mutex::new(()),
        };
        check_format(&store, &store.path, unfinished)?;
        Ok(store)
    }

    /// The copy of [`Store::backup`]: every entry, with writes held off.
    fn copy_into(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        // Writes wait on this lock for the whole copy: no batch lands in
        // the middle of it, and everything written before is in it.
        let held = self.write_lock.lock();
        self.flush()?;
        let copy = SledStore::open_with(
            dest,
            &SledOptions {
                flush_every_ms: None,
                cache_capacity: 64 << 20,
            },
        )?;
        let mut report = BackupReport {
            entries: 0,
            bytes: 0,
        };
        let mut batch = sled::Batch::default();
        let mut pending = 0usize;
        for item in self.db.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            report.entries += 1;
            report.bytes += (k.len() + v.len()) as u64;
            batch.insert(k, v);
            pending += 1;
            if pending == BACKUP_BATCH {
                copy.db
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| copy.err(e))?;
                pending = 0;
            }
        }
        copy.db.apply_batch(batch).map_err(|e| copy.err(e))?;
        drop(held);
        copy.flush()?;
        drop(copy);
        sync_dir(dest).map_err(|e| io_error(dest, &e))?;
        Ok(report)
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(|e| self.err(e))
    }

    fn err(&self, e: sled::Error) -> StoreError {
        op_error(&self.path, e)
    }

    fn write(&self, writes: Writes) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))
    }
}

/// The database, as conditional operations ask it (under the write lock).
struct Db<'a>(&'a SledStore);

impl Lookup for Db<'_> {
    fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        self.0.db.contains_key(key).map_err(|e| self.0.err(e))
    }

    fn holds(&mut self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        let held = self.0.db.get(key).map_err(|e| self.0.err(e))?;
        Ok(held.is_some_and(|v| v == value))
    }
}

/// Entries written to a backup per sled batch.
const BACKUP_BATCH: usize = 4096;

/// Opens sled, mapping its errors, and a panic inside its recovery, to
/// [`StoreError`]s naming `path`.
fn open_db(config: &sled::Config, path: &Path) -> Result<sled::Db, StoreError> {
    match catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_error(path, e)),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(StoreError::CorruptStore {
                path: path.to_path_buf(),
                detail: format!("sled panicked while opening: {detail}"),
            })
        }
    }
}

/// Maps an error of `open`: lock and corruption are told apart.
fn open_error(path: &Path, e: sled::Error) -> StoreError {
    match e {
        // sled 0.34.7 reports a held lock only as this I/O error text.
        sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                path: path.to_path_buf(),
            }
        }
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            StoreError::CorruptStore {
                path: path.to_path_buf(),
                detail: io.to_string(),
            }
        }
        sled::Error::Unsupported(detail) | sled::Error::ReportableBug(detail) => {
            StoreError::CorruptStore {
                path: path.to_path_buf(),
                detail,
            }
        }
        other => op_error(path, other),
    }
}

fn op_error(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { at, .. } => StoreError::CorruptStore {
            path: path.to_path_buf(),
            detail: format!("sled detected corruption at {at:?}"),
        },
        other => StoreError::Io {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| v.to_vec()))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let _w = self.write_lock.lock();
        self.db.insert(key, value).map_err(|e| self.err(e))?;
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        let _w = self.write_lock.lock();
        self.db.remove(key).map_err(|e| self.err(e))?;
        Ok(())
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
        let iter = match end {
            Some(end) => self.db.range(start..end),
            None => self.db.range(start..),
        };
        collect_range(iter, direction, limit, |item| {
            let (k, v) = item.map_err(|e| op_error(&self.path, e))?;
            Ok((k.to_vec(), v.to_vec()))
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
        let _w = self.write_lock.lock();
        let swapped = self
            .db
            .compare_and_swap(key, expected, new)
            .map_err(|e| self.err(e))?;
        Ok(swapped.is_ok())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        SledStore::size_on_disk(self).ok()
    }

    fn backup(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        let _span = tracing::info_span!("sled_backup", dest = %dest.display()).entered();
        backup_into_new_dir(dest, |dest| self.copy_into(dest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store_dir::format_of;

    #[test]
    fn the_marker_names_the_format() {
        assert_eq!(
            FORMAT_VERSION,
            format!("{FORMAT_PREFIX}{FORMAT}").as_bytes()
        );
        assert_eq!(format_of(FORMAT_VERSION), Some(FORMAT));
        assert_eq!(format_of(b"hb-store/7"), Some(7));
        assert_eq!(format_of(b"hb-store/1"), Some(OLDEST_FORMAT));
        for bad in [&b"hb-store/"[..], b"hb-store/x", b"other/2", b"\xff"] {
            assert_eq!(format_of(bad), None);
        }
    }
}
