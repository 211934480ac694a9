//! Fault injection around a real store: hold flushes at a gate, or make
//! writes fail, to test backpressure, deadlines and failed writes
//! deterministically (no sleeps, no timing assertions).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hb_store::{Batch, Direction, Entry, Store, StoreError};
use parking_lot::{Condvar, Mutex};

/// A gate that `flush` waits at while it is closed.
#[derive(Default)]
pub struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    /// Holds every later flush until [`open`](Gate::open).
    pub fn close(&self) {
        *self.closed.lock() = true;
    }

    /// Lets held and later flushes through.
    pub fn open(&self) {
        *self.closed.lock() = false;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock();
        while *closed {
            self.opened.wait(&mut closed);
        }
    }
}

/// A store that delegates to a real one, with a flush gate and a switch
/// that makes writes fail.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    /// Flushes wait here while it is closed.
    pub gate: Arc<Gate>,
    fail_writes: AtomicBool,
}

impl FaultyStore {
    /// Wraps `inner`, gate open, writes working.
    pub fn new(inner: Arc<dyn Store>) -> FaultyStore {
        FaultyStore {
            inner,
            gate: Arc::new(Gate::default()),
            fail_writes: AtomicBool::new(false),
        }
    }

    /// Makes every later write fail with an I/O error (or work again).
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                path: self.inner.path().map(Path::to_path_buf).unwrap_or_default(),
                detail: "injected write failure".into(),
            });
        }
        Ok(())
    }
}

impl Store for FaultyStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put(key, value)
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete(key)
    }

    fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.range(start, end, direction, limit)
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.check()?;
        self.inner.apply(batch)
    }

    fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
        if let Err(e) = self.check() {
            return batches.iter().map(|_| Err(clone_io(&e))).collect();
        }
        self.inner.apply_group(batches)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.compare_and_swap(key, expected, new)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.gate.pass();
        self.inner.flush()
    }

    fn path(&self) -> Option<&Path> {
        self.inner.path()
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        self.inner.bytes_on_disk()
    }

    fn backup(&self, dest: &Path) -> Result<hb_store::BackupReport, StoreError> {
        self.inner.backup(dest)
    }
}

fn clone_io(e: &StoreError) -> StoreError {
    StoreError::Io {
        path: Default::default(),
        detail: e.to_string(),
    }
}
