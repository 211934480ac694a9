//! Shared by the `scheduler_load` bench and the `disk_per_assignment`
//! example (included with `#[path]`): cold-cache measurements.

use std::path::Path;

/// Drops the store's files from the page cache (`dd iflag=nocache
/// count=0` is `posix_fadvise(DONTNEED)` on the whole file; the files are
/// clean after the last flush), so the next open reads from disk. Returns
/// false if `dd` is not there.
pub fn evict_page_cache(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut ok = true;
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            ok &= evict_page_cache(&path);
        } else {
            ok &= std::process::Command::new("dd")
                .arg(format!("if={}", path.display()))
                .args(["iflag=nocache", "count=0", "status=none"])
                .status()
                .is_ok_and(|s| s.success());
        }
    }
    ok
}
