//! `Store::backup` of a sled or fjall store while other threads keep writing: the
//! copy holds every batch that returned before the backup started, each
//! batch either whole or not at all (writes wait while the copy is made),
//! and opens as a store. A destination that exists is refused untouched;
//! an in-memory store cannot back up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use hb_store::{Batch, Direction, FjallStore, MemoryStore, SledStore, Store, StoreError};

const WRITERS: u64 = 4;

#[test]
fn a_backup_under_writes_has_every_earlier_batch_and_no_half_batch() {
    backup_under_writes(|path| Arc::new(SledStore::open(path).unwrap()));
}

#[test]
fn a_fjall_backup_under_writes_has_every_earlier_batch_and_no_half_batch() {
    backup_under_writes(|path| Arc::new(FjallStore::open(path).unwrap()));
}

fn backup_under_writes(open: impl Fn(&std::path::Path) -> Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("data"));
    let stop = Arc::new(AtomicBool::new(false));
    // Per writer: the last batch that returned.
    let done: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Two keys per batch: a backup must hold both or none.
                    let mut batch = Batch::new();
                    batch.put(format!("a/{w}/{n:08}"), n.to_be_bytes().to_vec());
                    batch.put(format!("b/{w}/{n:08}"), n.to_be_bytes().to_vec());
                    store.apply(batch).unwrap();
                    done[w as usize].store(n, Ordering::SeqCst);
                }
            })
        })
        .collect();
    while done.iter().any(|d| d.load(Ordering::SeqCst) < 200) {
        std::thread::yield_now();
    }
    let before: Vec<u64> = done.iter().map(|d| d.load(Ordering::SeqCst)).collect();
    let dest = dir.path().join("backup");
    let report = store.backup(&dest).unwrap();
    let after: Vec<u64> = done.iter().map(|d| d.load(Ordering::SeqCst)).collect();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    let copy = open(&dest);
    let all = copy
        .range(b"", None, Direction::Forward, usize::MAX)
        .unwrap();
    assert_eq!(report.entries, all.len() as u64);
    let count = |prefix: &str| {
        all.iter()
            .filter(|(k, _)| k.starts_with(prefix.as_bytes()))
            .count() as u64
    };
    for w in 0..WRITERS {
        let (a, b) = (count(&format!("a/{w}/")), count(&format!("b/{w}/")));
        assert_eq!(a, b, "writer {w}: every batch whole");
        // Batches are numbered from 1 without gaps.
        let i = w as usize;
        assert!(
            a >= before[i] && a <= after[i] + 1,
            "writer {w}: {a} batches, {} before the backup, {} after",
            before[i],
            after[i]
        );
        let last = copy
            .get(format!("a/{w}/{a:08}").as_bytes())
            .unwrap()
            .expect("the writer's batches are a prefix");
        assert_eq!(last, a.to_be_bytes().to_vec());
    }

    // The destination exists now: refused, and the copy left as it was.
    drop(copy);
    assert!(matches!(
        store.backup(&dest),
        Err(StoreError::DestinationExists { path }) if path == dest
    ));
    let copy = open(&dest);
    assert_eq!(
        copy.range(b"", None, Direction::Forward, usize::MAX)
            .unwrap()
            .len() as u64,
        report.entries
    );
}

#[test]
fn an_in_memory_store_cannot_back_up() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backup");
    assert!(matches!(
        MemoryStore::new().backup(&dest),
        Err(StoreError::Unsupported { .. })
    ));
    assert!(!dest.exists());
}
