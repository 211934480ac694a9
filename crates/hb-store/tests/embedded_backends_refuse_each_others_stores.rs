//! The two embedded backends share a directory layout convention (the
//! creation file, the format marker) but not their files: each refuses the
//! other's store with a typed error, before writing anything to it. A
//! fjall store keeps what was flushed across a reopen, and a second
//! opener of a live fjall store is told it is locked.

use std::collections::BTreeMap;
use std::path::Path;

use hb_store::{FjallStore, SledStore, Store, StoreError, FORMAT_KEY, FORMAT_VERSION};

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(
                    entry.path().display().to_string(),
                    (meta.len(), meta.modified().unwrap()),
                );
            }
        }
    }
    out
}

#[test]
fn fjall_refuses_a_sled_store_and_leaves_it_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    {
        let sled = SledStore::open(&dir).unwrap();
        sled.put(b"k", b"v").unwrap();
        sled.flush().unwrap();
    }
    let before = snapshot(&dir);
    let refused = FjallStore::open(&dir).unwrap_err();
    assert_eq!(
        refused,
        StoreError::WrongBackend {
            path: dir.clone(),
            found: "sled",
            expected: "fjall"
        }
    );
    assert_eq!(snapshot(&dir), before);
    let sled = SledStore::open(&dir).unwrap();
    assert_eq!(sled.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn sled_refuses_a_fjall_store_and_leaves_it_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    {
        let fjall = FjallStore::open(&dir).unwrap();
        fjall.put(b"k", b"v").unwrap();
        fjall.flush().unwrap();
    }
    let before = snapshot(&dir);
    let refused = SledStore::open(&dir).unwrap_err();
    assert_eq!(
        refused,
        StoreError::WrongBackend {
            path: dir.clone(),
            found: "fjall",
            expected: "sled"
        }
    );
    assert_eq!(snapshot(&dir), before);
    let fjall = FjallStore::open(&dir).unwrap();
    assert_eq!(fjall.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn a_fjall_store_reopens_with_its_marker_and_data_and_locks_out_a_second_opener() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    // Beside a file of someone else's (the node keeps its key there).
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("node.key"), b"not the store's").unwrap();
    {
        let store = FjallStore::open(&dir).unwrap();
        assert!(!dir.join(hb_store::CREATING_FILE).exists());
        for i in 0..1000u32 {
            store.put(&i.to_be_bytes(), &[i as u8; 300]).unwrap();
        }
        store.flush().unwrap();
        assert!(matches!(
            FjallStore::open(&dir),
            Err(StoreError::Locked { path }) if path == dir
        ));
    }
    let store = FjallStore::open(&dir).unwrap();
    assert_eq!(
        store.get(FORMAT_KEY).unwrap(),
        Some(FORMAT_VERSION.to_vec())
    );
    for i in [0u32, 500, 999] {
        assert_eq!(
            store.get(&i.to_be_bytes()).unwrap(),
            Some(vec![i as u8; 300])
        );
    }
    assert_eq!(
        std::fs::read(dir.join("node.key")).unwrap(),
        b"not the store's"
    );
}

#[test]
fn fjall_tables_without_their_version_file_are_a_corrupt_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    {
        let store = FjallStore::open(&dir).unwrap();
        store.put(b"k", b"v").unwrap();
        store.flush().unwrap();
    }
    std::fs::remove_file(dir.join("version")).unwrap();
    assert!(matches!(
        FjallStore::open(&dir),
        Err(StoreError::CorruptStore { path, .. }) if path == dir
    ));
}
