//! A store's directory: the creation protocol and the format marker shared
//! by the embedded backends ([`crate::SledStore`], [`crate::FjallStore`]).
//!
//! A new store is first announced by the file [`CREATING_FILE`] (made
//! durable before the engine writes anything), which is removed only once
//! the format marker is durable; see `docs/storage.md`, "Recovery".

use std::io::Write;
use std::path::Path;

use crate::error::StoreError;
use crate::sled_store::{
    CREATING_FILE, FORMAT, FORMAT_KEY, FORMAT_PREFIX, FORMAT_VERSION, OLDEST_FORMAT,
};
use crate::store::{Direction, Store};

/// Checks the format marker. An unfinished creation (see
/// [`crate::SledStore::open_with`]) gets its marker, made durable, and then
/// loses its [`CREATING_FILE`]. Otherwise, existing files without a
/// marker were truncated or overwritten, which the engine's recovery
/// would present as an empty store: corrupt.
pub(crate) fn check_format(
    store: &dyn Store,
    path: &Path,
    unfinished: bool,
) -> Result<(), StoreError> {
    let corrupt = |detail: String| StoreError::CorruptStore {
        path: path.to_path_buf(),
        detail,
    };
    match store.get(FORMAT_KEY)? {
        Some(v) if v == FORMAT_VERSION => {}
        Some(v) if format_of(&v).is_some_and(|n| (OLDEST_FORMAT..FORMAT).contains(&n)) => {
            // Marked first, durably, so that an older build refuses the
            // store once this one may have written records it cannot read.
            let from = format_of(&v).unwrap_or(OLDEST_FORMAT);
            store.put(FORMAT_KEY, FORMAT_VERSION)?;
            store.flush()?;
            tracing::info!(from, to = FORMAT, "store format upgraded");
        }
        Some(v) if format_of(&v).is_some_and(|n| n > FORMAT) => {
            // Refused before anything is written: the newer build's
            // store stays as it was.
            return Err(StoreError::NewerFormat {
                path: path.to_path_buf(),
                found: format_of(&v).unwrap_or(FORMAT),
                supported: FORMAT,
            });
        }
        Some(v) => {
            return Err(corrupt(format!(
                "unknown format marker {:?} (this build reads {:?})",
                v.escape_ascii().to_string(),
                FORMAT_VERSION.escape_ascii().to_string()
            )))
        }
        None if !unfinished => {
            return Err(corrupt(
                "the files exist but hold no format marker: the log was truncated or \
                 overwritten (sled recovered it as empty)"
                    .into(),
            ))
        }
        None => {
            // Creation writes the marker and nothing else, and data is
            // written only after creation: an "unfinished" store that
            // holds data was not left by a creation, and is never
            // completed (nor wiped) here.
            if let Some((key, _)) = store.range(b"", None, Direction::Forward, 1)?.pop() {
                return Err(corrupt(format!(
                    "{CREATING_FILE} says the store is being created, but it holds data \
                     (first key {}) and no format marker",
                    crate::keys::printable(&key)
                )));
            }
            store.put(FORMAT_KEY, FORMAT_VERSION)?;
            store.flush()?;
        }
    }
    if unfinished {
        finish_creation(path).map_err(|e| io_error(path, &e))?;
        tracing::info!("store created");
    }
    Ok(())
}

/// The format number of a marker `hb-store/<n>`, if it is one.
pub(crate) fn format_of(marker: &[u8]) -> Option<u32> {
    std::str::from_utf8(marker)
        .ok()?
        .strip_prefix(FORMAT_PREFIX)?
        .parse()
        .ok()
}

/// Creates the directory and a durable [`CREATING_FILE`] in it, before
/// sled writes anything there: whatever a crash leaves behind is then
/// recognisably an unfinished creation.
pub(crate) fn announce_creation(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    let mut file = std::fs::File::create(path.join(CREATING_FILE))?;
    file.write_all(b"hb-store: this store is being created; opening it finishes the creation.\n")?;
    file.sync_all()?;
    sync_dir(path)?;
    // The directory itself may be new: make its entry durable too. Best
    // effort: a parent we may not read must not prevent creating a store.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Err(e) = sync_dir(parent) {
            tracing::debug!(error = %e, "cannot sync the parent directory");
        }
    }
    Ok(())
}

/// Removes [`CREATING_FILE`] (once the format marker is durable), durably.
pub(crate) fn finish_creation(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path.join(CREATING_FILE)) {
        Ok(()) => {}
        // A racing opener finished it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    sync_dir(path)
}

/// Makes the entries of directory `dir` durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened (nor synced) as files here.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

pub(crate) fn io_error(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// The embedded backend whose store `dir` holds (`"sled"` or `"fjall"`),
/// or `None` for a directory with neither (or none at all): sled keeps
/// `db` and `conf`, fjall `version` and `keyspaces/`.
pub fn embedded_backend_in(dir: &Path) -> Option<&'static str> {
    if dir.join("db").is_file() || dir.join("conf").is_file() {
        Some("sled")
    } else if dir.join("version").is_file() || dir.join("keyspaces").is_dir() {
        Some("fjall")
    } else {
        None
    }
}

/// Refuses to open `dir` as `expected` when it holds another backend's
/// store, before anything is written to it.
pub(crate) fn refuse_other_backend(dir: &Path, expected: &'static str) -> Result<(), StoreError> {
    match embedded_backend_in(dir) {
        Some(found) if found != expected => Err(StoreError::WrongBackend {
            path: dir.to_path_buf(),
            found,
            expected,
        }),
        _ => Ok(()),
    }
}

/// Opens the embedded store in `dir` with the backend whose files are
/// there ([`crate::FjallStore`] for fjall's, [`crate::SledStore`]
/// otherwise, which creates a sled store in an empty directory): for tools
/// that read a node's data directory without its configuration.
pub fn open_embedded(dir: &Path) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match embedded_backend_in(dir) {
        Some("fjall") => std::sync::Arc::new(crate::FjallStore::open(dir)?),
        _ => std::sync::Arc::new(crate::SledStore::open(dir)?),
    })
}

/// Entries copied per batch by [`copy_store`].
const COPY_BATCH: usize = 4096;

/// Copies every entry of `from` into `to` (a new, empty store: anything
/// but its format marker there is refused as [`StoreError::DestinationExists`]),
/// in key order, in batches, then flushes `to`. `progress` is called with
/// the entries copied so far after each batch. For moving a stopped node's
/// store between backends; `from` must not be written meanwhile (nothing
/// here holds its writers off, unlike [`Store::backup`]).
pub fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    mut progress: impl FnMut(u64),
) -> Result<crate::BackupReport, StoreError> {
    let in_dest = to.range(b"", None, Direction::Forward, 2)?;
    if in_dest.iter().any(|(k, _)| k.as_slice() != FORMAT_KEY) {
        return Err(StoreError::DestinationExists {
            path: to.path().map(Path::to_path_buf).unwrap_or_default(),
        });
    }
    let mut report = crate::BackupReport {
        entries: 0,
        bytes: 0,
    };
    let mut start: Vec<u8> = Vec::new();
    loop {
        let chunk = from.range(&start, None, Direction::Forward, COPY_BATCH)?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        // The next chunk starts right after the last key read.
        start = last.clone();
        start.push(0);
        let mut batch = crate::Batch::new();
        for (k, v) in chunk {
            report.entries += 1;
            report.bytes += (k.len() + v.len()) as u64;
            batch.put(k, v);
        }
        to.apply(batch)?;
        progress(report.entries);
    }
    to.flush()?;
    Ok(report)
}

/// [`Store::backup`] of an embedded backend: makes `dest` (never an
/// existing directory: [`StoreError::DestinationExists`]), lets `copy`
/// write the store into it, and removes it again if `copy` fails (a
/// partial copy is no backup).
pub(crate) fn backup_into_new_dir(
    dest: &Path,
    copy: impl FnOnce(&Path) -> Result<crate::BackupReport, StoreError>,
) -> Result<crate::BackupReport, StoreError> {
    match std::fs::create_dir(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(StoreError::DestinationExists {
                path: dest.to_path_buf(),
            })
        }
        Err(e) => return Err(io_error(dest, &e)),
    }
    match copy(dest) {
        Ok(report) => {
            tracing::info!(
                entries = report.entries,
                bytes = report.bytes,
                "backup written"
            );
            Ok(report)
        }
        Err(e) => {
            if let Err(rm) = std::fs::remove_dir_all(dest) {
                tracing::warn!(error = %rm, "cannot remove the partial backup");
            }
            Err(e)
        }
    }
}
