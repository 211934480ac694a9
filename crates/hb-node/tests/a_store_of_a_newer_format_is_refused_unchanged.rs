//! docs/operations.md, "Upgrading": a data dir whose store was written in
//! a newer format than this build reads is refused. `hb serve` exits 2
//! with one line naming the store, its format and the format this build
//! reads, and leaves the data dir's files as they were (sled's log `db`,
//! its `conf` and the node key byte for byte; sled rebuilds its index
//! `snap.*` on any open); opening the store in the library is the typed
//! `StoreError::NewerFormat`.

mod cli_support;

use std::collections::BTreeMap;
use std::path::Path;

use hb_store::{SledStore, Store, StoreError, FORMAT, FORMAT_KEY, FORMAT_PREFIX};

/// Every file under `dir`, by relative path, with a hash of its bytes;
/// except sled's `snap.*`, the index it rebuilds from its log on every
/// open (it holds no data: the log `db` does).
fn files(dir: &Path) -> BTreeMap<String, (usize, hb_message::Id)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap."))
            {
                continue;
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&path).unwrap();
                out.insert(rel, (bytes.len(), hb_message::Id::hash(&bytes)));
            }
        }
    }
    out
}

#[test]
fn hb_serve_exits_2_naming_the_newer_format_and_changes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A data dir a node made (store and key) …
    let node = cli_support::Serve::start(&data);
    assert_eq!(node.stop(), 0);
    // … which a newer build then marked with its own format.
    let newer = FORMAT + 1;
    {
        let store = SledStore::open(&data).unwrap();
        store
            .put(FORMAT_KEY, format!("{FORMAT_PREFIX}{newer}").as_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let before = files(&data);
    assert!(before.contains_key("db") && before.contains_key("node.key"));

    let run = cli_support::hb(
        dir.path(),
        &[
            "serve",
            "--port",
            "0",
            "--data-dir",
            &data.to_string_lossy(),
        ],
    );
    run.fails(2, "hb: store at ");
    assert!(
        run.stderr
            .contains(&format!("has format {newer}, newer than format {FORMAT}")),
        "{run:?}"
    );
    assert_eq!(files(&data), before, "the data dir is unchanged");

    match SledStore::open(&data) {
        Err(StoreError::NewerFormat {
            path,
            found,
            supported,
        }) => {
            assert_eq!((path, found, supported), (data.clone(), newer, FORMAT));
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a newer store opened"),
    }
    assert_eq!(files(&data), before, "the data dir is still unchanged");
}
