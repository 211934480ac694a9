//! `SledStore`: the embedded default backend (sled 0.34.7, one `Db`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::batch::{Batch, Overlay, Writes};
use crate::error::StoreError;
use crate::store::{resolve_group, Direction, Entry, Store};

/// The key of the format marker every sled store holds.
pub const FORMAT_KEY: &[u8] = b"meta/format";
/// The format marker's value for this layout.
pub const FORMAT_VERSION: &[u8] = b"hb-store/1";

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
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &SledOptions,
    ) -> Result<SledStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let _span = tracing::info_span!("sled_open", path = %path.display()).entered();
        let existed = path.join("db").exists();
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(options.flush_every_ms)
            .mode(sled::Mode::HighThroughput);
        let db = match catch_unwind(AssertUnwindSafe(|| config.open())) {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(open_error(&path, e)),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                return Err(StoreError::CorruptStore {
                    path,
                    detail: format!("sled panicked while opening: {detail}"),
                });
            }
        };
        tracing::info!(recovered = db.was_recovered(), "sled store open");
        let store = SledStore {
            db,
            path,
            write_lock: Mutex::new(()),
        };
        store.check_format(existed)?;
        Ok(store)
    }

    /// Checks the format marker: a new store gets one (made durable at
    /// once); existing files without it were truncated or overwritten,
    /// which sled's recovery would otherwise present as an empty store.
    fn check_format(&self, existed: bool) -> Result<(), StoreError> {
        let corrupt = |detail: String| StoreError::CorruptStore {
            path: self.path.clone(),
            detail,
        };
        match self.get(FORMAT_KEY)? {
            Some(v) if v == FORMAT_VERSION => Ok(()),
            Some(v) => Err(corrupt(format!(
                "unknown format marker {:?} (this build reads {:?})",
                v.escape_ascii().to_string(),
                FORMAT_VERSION.escape_ascii().to_string()
            ))),
            None if existed => Err(corrupt(
                "the files exist but hold no format marker: the log was truncated or \
                 overwritten (sled recovered it as empty)"
                    .into(),
            )),
            None => {
                self.put(FORMAT_KEY, FORMAT_VERSION)?;
                self.flush()
            }
        }
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

    fn exists(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.db.contains_key(key).map_err(|e| self.err(e))
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
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut push = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<bool, StoreError> {
            let (k, v) = item.map_err(|e| op_error(&self.path, e))?;
            out.push((k.to_vec(), v.to_vec()));
            Ok(out.len() < limit)
        };
        match direction {
            Direction::Forward => {
                for item in iter {
                    if !push(item)? {
                        break;
                    }
                }
            }
            Direction::Reverse => {
                for item in iter.rev() {
                    if !push(item)? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let _w = self.write_lock.lock();
        let writes = Overlay::default().resolve(batch, &mut |k| self.exists(k))?;
        self.write(writes)
    }

    fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        let _w = self.write_lock.lock();
        let (mut outcomes, writes) = resolve_group(batches, &mut |k| self.exists(k));
        if let Err(e) = self.write(writes) {
            for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *o = Err(e.clone());
            }
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
}
