//! Backups of a running node: `POST /~node@1.0/backup` makes the node copy
//! its own store ([`hb_store::Store::backup`]: writes wait while the copy
//! is made, so it is consistent) into a new subdirectory of `backup_dir`,
//! named after the time. The request names no path: with `backup_dir`
//! unset the route is refused, and the node never writes anywhere else.
//! docs/operations.md has the procedure and the restore.

use std::path::{Path, PathBuf};

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use hb_message::ErrorCode;
use hb_store::Store;

use crate::http::{refusal, Refusal};
use crate::node::NodeState;

/// What a backup made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// The new directory holding the copy (a store `hb serve --data-dir`
    /// opens).
    pub path: PathBuf,
    /// Entries copied.
    pub entries: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

/// The name of a backup made at `unix_ms`: `backup-YYYYMMDDTHHMMSS.mmmZ`
/// (UTC), so names sort by time.
pub fn backup_name(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "backup-{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm, proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is in 1..=31 and m in 1..=12 by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// Backs `store` up into a new subdirectory of `dir` (created if missing)
/// named after `unix_ms` ([`backup_name`]; `-2`, `-3`… appended if that
/// name is taken). Blocking.
pub fn backup_into(
    store: &dyn Store,
    dir: &Path,
    unix_ms: u64,
) -> Result<Backup, hb_store::StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| hb_store::StoreError::Io {
        path: dir.to_path_buf(),
        detail: e.to_string(),
    })?;
    let name = backup_name(unix_ms);
    let mut attempt = 1u32;
    loop {
        let path = match attempt {
            1 => dir.join(&name),
            n => dir.join(format!("{name}-{n}")),
        };
        match store.backup(&path) {
            Ok(report) => {
                return Ok(Backup {
                    path,
                    entries: report.entries,
                    bytes: report.bytes,
                })
            }
            Err(hb_store::StoreError::DestinationExists { .. }) if attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// `POST /~node@1.0/backup`: `{path, entries, bytes}` of the new backup;
/// 403 `backup-disabled` without `backup_dir`; other methods 405.
pub(crate) async fn backup_route(req: HttpRequest, state: web::Data<NodeState>) -> HttpResponse {
    match backup(&req, &state).await {
        Ok(b) => HttpResponse::Ok().json(serde_json::json!({
            "path": b.path.display().to_string(),
            "entries": b.entries,
            "bytes": b.bytes,
        })),
        Err(refused) => refused.respond(),
    }
}

async fn backup(req: &HttpRequest, state: &NodeState) -> Result<Backup, Refusal> {
    if req.method() != Method::POST {
        return Err(refusal(
            405,
            "method-not-allowed",
            "a backup is made with POST",
        ));
    }
    let Some(dir) = state.config.backup_dir.clone() else {
        return Err(refusal(
            403,
            "backup-disabled",
            "this node has no backup_dir setting: backups are off",
        ));
    };
    let store = std::sync::Arc::clone(&state.sources.store);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let made = tokio::task::spawn_blocking(move || backup_into(store.as_ref(), &dir, now))
        .await
        .map_err(|e| refusal(500, "internal", format!("backup task failed: {e}")))?;
    match made {
        Ok(b) => {
            tracing::info!(path = %b.path.display(), entries = b.entries, "backup made");
            Ok(b)
        }
        Err(e) => {
            tracing::error!(error = %e, "backup failed");
            Err(refusal(e.status(), e.code(), e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_are_utc_times_that_sort() {
        assert_eq!(backup_name(0), "backup-19700101T000000.000Z");
        // 2026-12-02T01:15:30.123Z
        assert_eq!(
            backup_name(1_796_174_130_123),
            "backup-20261202T011530.123Z"
        );
        // 2024-02-29, a leap day.
        assert_eq!(
            backup_name(1_709_164_800_000),
            "backup-20240229T000000.000Z"
        );
        assert!(backup_name(1_709_164_800_000) < backup_name(1_796_174_130_123));
    }

    #[test]
    fn a_store_that_cannot_back_up_says_so_and_leaves_no_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = hb_store::MemoryStore::new();
        let err = backup_into(&store, dir.path(), 0).unwrap_err();
        assert!(
            matches!(err, hb_store::StoreError::Unsupported { .. }),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_taken_name_gets_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let store = hb_store::SledStore::open(dir.path().join("data")).unwrap();
        store.put(b"k", b"v").unwrap();
        let first = backup_into(&store, &dir.path().join("b"), 5).unwrap();
        let second = backup_into(&store, &dir.path().join("b"), 5).unwrap();
        assert_ne!(first.path, second.path);
        assert!(second.path.to_string_lossy().ends_with("-2"));
        drop(store);
        // The backup opened and closed the copy; sled's flusher thread lets
        // go of its lock shortly after, not at the drop: wait that out.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let copy = loop {
            match hb_store::SledStore::open(&second.path) {
                Err(hb_store::StoreError::Locked { .. })
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                opened => break opened.unwrap(),
            }
        };
        assert_eq!(copy.get(b"k").unwrap(), Some(b"v".to_vec()));
    }
}
