//! Group commit: many writers, one flush (SPEC §3.2).
//!
//! A dedicated writer thread owns the write path. Callers hand it batches
//! ([`GroupCommit::submit`] from async code, [`GroupCommit::commit`] from
//! plain threads). Whatever has queued up while the previous flush was in
//! progress becomes the next group: the writer applies the group's batches
//! (each atomically, with its conditional operations checked against the
//! store and the earlier batches of the group: [`Store::apply_group`]),
//! makes them durable with one [`Store::flush`], and only then acknowledges
//! each caller with its own batch's outcome.
//!
//! No caller waits forever: if the writer thread dies, every queued and
//! in-flight caller gets [`StoreError::Closed`], and so does every later
//! submission.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use parking_lot::{Condvar, Mutex};

use crate::batch::Batch;
use crate::error::StoreError;
use crate::store::Store;

/// Tuning of a [`GroupCommit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCommitOptions {
    /// Most batches made durable by one flush; more wait for the next.
    pub max_group: usize,
    /// How long the writer may wait before starting a group that is less
    /// than half the size of the previous one (its callers are probably
    /// between an acknowledgement and their next batch). Zero: never wait.
    /// Never applies when nothing is queued.
    pub linger: Duration,
}

impl Default for GroupCommitOptions {
    fn default() -> GroupCommitOptions {
        GroupCommitOptions {
            max_group: 4096,
            linger: Duration::from_micros(200),
        }
    }
}

/// Counters of a [`GroupCommit`], for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Batches handed to the writer.
    pub submitted: u64,
    /// Batches applied and made durable (acknowledged with `Ok`).
    pub committed: u64,
    /// Batches acknowledged with an error (a failed condition, a failed
    /// write or a failed flush).
    pub failed: u64,
    /// Groups processed: one flush each (a group whose batches all failed
    /// needs no flush and is not counted).
    pub flushes: u64,
}

struct Pending {
    batch: Batch,
    ack: Reply,
}

/// Where a batch's outcome goes. Dropped unanswered (the writer panicked
/// mid-group), it answers [`StoreError::Closed`], so a callback always runs.
struct Reply(Option<ReplyTo>);

enum ReplyTo {
    /// To an [`Ack`] future.
    Channel(oneshot::Sender<Result<(), StoreError>>),
    /// To a callback run on the writer thread ([`GroupCommit::submit_then`]).
    Callback(Box<dyn FnOnce(Result<(), StoreError>) + Send>),
}

impl Reply {
    fn send(mut self, result: Result<(), StoreError>) {
        match self.0.take() {
            // A caller that stopped waiting dropped its receiver: fine.
            Some(ReplyTo::Channel(tx)) => {
                let _ = tx.send(result);
            }
            Some(ReplyTo::Callback(then)) => then(result),
            None => {}
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(ReplyTo::Callback(then)) = self.0.take() {
            then(Err(StoreError::Closed));
        }
    }
}

struct Queue {
    pending: Vec<Pending>,
    closed: bool,
    /// Queue length at which a submission wakes the writer: 1 while it
    /// waits idle, the linger threshold while it lingers, `usize::MAX` while
    /// it works (it looks at the queue by itself when done).
    wake_at: usize,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            pending: Vec::new(),
            closed: false,
            wake_at: 1,
        }
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    submitted: AtomicU64,
    committed: AtomicU64,
    failed: AtomicU64,
    flushes: AtomicU64,
}

/// The group-commit writer over one store. Dropping it (or
/// [`GroupCommit::close`]) lets the writer finish the queued batches, then
/// stops it.
pub struct GroupCommit {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("stats", &self.stats())
            .finish()
    }
}

impl GroupCommit {
    /// Starts the writer thread over `store` with default options.
    pub fn start(store: Arc<dyn Store>) -> Result<GroupCommit, StoreError> {
        GroupCommit::with_options(store, GroupCommitOptions::default())
    }

    /// Starts the writer thread over `store`.
    pub fn with_options(
        store: Arc<dyn Store>,
        options: GroupCommitOptions,
    ) -> Result<GroupCommit, StoreError> {
        let shared = Arc::new(Shared::default());
        let path = store.path().map(|p| p.to_path_buf()).unwrap_or_default();
        let writer = std::thread::Builder::new()
            .name("hb-store-writer".into())
            .spawn({
                let shared = shared.clone();
                move || run_writer(store, shared, options)
            })
            .map_err(|e| StoreError::Io {
                path,
                detail: format!("cannot start the group-commit writer: {e}"),
            })?;
        Ok(GroupCommit {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queues `batch` and returns its acknowledgement: it resolves once the
    /// batch is applied and flushed (`Ok`), or with the batch's own error
    /// ([`StoreError::SlotExists`], a write or flush error), or with
    /// [`StoreError::Closed`] if the writer is gone. The batch is queued
    /// before this returns, so submissions from one caller keep their order.
    /// Awaiting never blocks an executor thread.
    pub fn submit(&self, batch: Batch) -> Ack {
        let (tx, rx) = oneshot::channel();
        match self.enqueue(batch, Reply(Some(ReplyTo::Channel(tx)))) {
            Ok(()) => Ack(AckState::Waiting(rx)),
            Err(_) => Ack(AckState::Ready(Some(StoreError::Closed))),
        }
    }

    /// Queues `batch` like [`submit`](Self::submit), and hands its outcome
    /// to `then` instead of a future: on the writer thread once the batch
    /// is durable (or failed), or at once on the calling thread with
    /// [`StoreError::Closed`] if the writer is gone. This saves the caller a
    /// task that only waits and forwards; `then` must be short and must not
    /// block, since every later group waits for it.
    pub fn submit_then<F>(&self, batch: Batch, then: F)
    where
        F: FnOnce(Result<(), StoreError>) + Send + 'static,
    {
        if let Err(reply) = self.enqueue(batch, Reply(Some(ReplyTo::Callback(Box::new(then))))) {
            reply.send(Err(StoreError::Closed));
        }
    }

    /// Queues one batch; gives the reply back if the writer is closed.
    fn enqueue(&self, batch: Batch, ack: Reply) -> Result<(), Reply> {
        let wake = {
            let mut queue = self.shared.queue.lock();
            if queue.closed {
                return Err(ack);
            }
            queue.pending.push(Pending { batch, ack });
            queue.pending.len() >= queue.wake_at
        };
        self.shared.submitted.fetch_add(1, Ordering::Relaxed);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Queues `batch` and blocks the calling thread until it is
    /// acknowledged (see [`GroupCommit::submit`]). For plain threads, not
    /// for async executors.
    pub fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        futures::executor::block_on(self.submit(batch))
    }

    /// The counters so far.
    pub fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            submitted: self.shared.submitted.load(Ordering::Relaxed),
            committed: self.shared.committed.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            flushes: self.shared.flushes.load(Ordering::Relaxed),
        }
    }

    /// Whether the writer still accepts batches.
    pub fn is_open(&self) -> bool {
        !self.shared.queue.lock().closed
    }

    /// Stops accepting batches, lets the writer finish the queued ones and
    /// waits for it to stop (blocking: call it off async executor threads).
    /// Later submissions are answered [`StoreError::Closed`]. Closing twice
    /// is harmless, so a shared writer needs no unwrapping to be closed.
    pub fn close(&self) {
        self.shared.queue.lock().closed = true;
        self.shared.wake.notify_all();
        let writer = self.writer.lock().take();
        if let Some(writer) = writer {
            // A writer that panicked has already failed its callers with
            // `Closed` (see `CloseOnExit`); nothing more to report here.
            let _ = writer.join();
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.close();
    }
}

/// The acknowledgement of one submitted batch (a future).
#[must_use = "an acknowledgement says whether the batch is durable"]
#[derive(Debug)]
pub struct Ack(AckState);

#[derive(Debug)]
enum AckState {
    Waiting(oneshot::Receiver<Result<(), StoreError>>),
    Ready(Option<StoreError>),
}

impl Future for Ack {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            AckState::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                // The sender was dropped without an answer: the writer died.
                .map(|r| r.unwrap_or(Err(StoreError::Closed))),
            AckState::Ready(err) => Poll::Ready(match err.take() {
                Some(e) => Err(e),
                None => Err(StoreError::Closed),
            }),
        }
    }
}

/// Marks the queue closed and fails every queued caller when the writer
/// exits, normally or by panic.
struct CloseOnExit(Arc<Shared>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        let orphans = {
            let mut queue = self.0.queue.lock();
            queue.closed = true;
            std::mem::take(&mut queue.pending)
        };
        if !orphans.is_empty() {
            tracing::error!(
                queued = orphans.len(),
                "group-commit writer stopped with batches queued; failing them with Closed"
            );
        }
        for p in orphans {
            p.ack.send(Err(StoreError::Closed));
        }
    }
}

fn run_writer(store: Arc<dyn Store>, shared: Arc<Shared>, options: GroupCommitOptions) {
    let _close = CloseOnExit(shared.clone());
    let max_group = options.max_group.max(1);
    let mut previous = 0usize;
    loop {
        let group: Vec<Pending> = {
            let mut queue = shared.queue.lock();
            while queue.pending.is_empty() && !queue.closed {
                queue.wake_at = 1;
                shared.wake.wait(&mut queue);
            }
            if queue.pending.is_empty() {
                return; // closed and drained
            }
            // A group much smaller than the last one: the other callers are
            // likely about to resubmit. Give them a bounded moment, so one
            // flush serves them too.
            if !options.linger.is_zero() && !queue.closed && queue.pending.len() < previous / 2 {
                let deadline = Instant::now() + options.linger;
                while queue.pending.len() < previous / 2 && !queue.closed {
                    queue.wake_at = previous / 2;
                    if shared.wake.wait_until(&mut queue, deadline).timed_out() {
                        break;
                    }
                }
            }
            queue.wake_at = usize::MAX;
            if queue.pending.len() <= max_group {
                std::mem::take(&mut queue.pending)
            } else {
                queue.pending.drain(..max_group).collect()
            }
        };
        previous = group.len();
        let span = tracing::debug_span!("group_commit", batches = group.len());
        let _entered = span.enter();
        let (batches, acks): (Vec<Batch>, Vec<_>) =
            group.into_iter().map(|p| (p.batch, p.ack)).unzip();
        let outcomes = store.apply_group(batches);
        let flushed = if outcomes.iter().any(Result::is_ok) {
            let result = store.flush();
            shared.flushes.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = &result {
                tracing::error!(error = %e, "group-commit flush failed");
            }
            result
        } else {
            Ok(())
        };
        let results: Vec<Result<(), StoreError>> = outcomes
            .into_iter()
            .map(|outcome| outcome.and_then(|()| flushed.clone()))
            .collect();
        // Counters first, so a caller that was acknowledged sees them.
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        shared.committed.fetch_add(ok, Ordering::Relaxed);
        shared
            .failed
            .fetch_add(results.len() as u64 - ok, Ordering::Relaxed);
        for (ack, result) in acks.into_iter().zip(results) {
            ack.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use std::sync::atomic::AtomicBool;

    fn batch(key: &str) -> Batch {
        let mut b = Batch::new();
        b.put_new(key.as_bytes().to_vec(), b"v".to_vec());
        b
    }

    #[test]
    fn each_caller_gets_its_own_outcome() {
        let store = Arc::new(MemoryStore::new());
        let gc = GroupCommit::start(store.clone()).unwrap();
        gc.commit(batch("a")).unwrap();
        assert!(matches!(
            gc.commit(batch("a")),
            Err(StoreError::KeyExists { .. })
        ));
        gc.commit(batch("b")).unwrap();
        let stats = gc.stats();
        assert_eq!(stats.submitted, 3);
        assert_eq!(stats.committed, 2);
        assert_eq!(stats.failed, 1);
        assert_eq!(stats.flushes, 2);
        assert_eq!(store.get(b"b").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn queued_batches_share_flushes() {
        let store = Arc::new(MemoryStore::new());
        let gc = GroupCommit::start(store.clone()).unwrap();
        let acks: Vec<Ack> = (0..500)
            .map(|i| gc.submit(batch(&format!("k{i}"))))
            .collect();
        for ack in acks {
            futures::executor::block_on(ack).unwrap();
        }
        let stats = gc.stats();
        assert_eq!(stats.committed, 500);
        assert!(stats.flushes <= 500);
        assert_eq!(store.len(), 500);
    }

    #[test]
    fn groups_never_exceed_max_group() {
        let store = Arc::new(MemoryStore::new());
        let options = GroupCommitOptions {
            max_group: 10,
            linger: Duration::ZERO,
        };
        let gc = GroupCommit::with_options(store.clone(), options).unwrap();
        let acks: Vec<Ack> = (0..100)
            .map(|i| gc.submit(batch(&format!("k{i}"))))
            .collect();
        for ack in acks {
            futures::executor::block_on(ack).unwrap();
        }
        let stats = gc.stats();
        assert_eq!(stats.committed, 100);
        assert!(stats.flushes >= 10, "{stats:?}");
        assert_eq!(store.len(), 100);
    }

    #[test]
    fn a_group_whose_batches_all_fail_needs_no_flush() {
        let store = Arc::new(MemoryStore::new());
        store.put(b"taken", b"x").unwrap();
        let gc = GroupCommit::start(store).unwrap();
        assert!(gc.commit(batch("taken")).is_err());
        let stats = gc.stats();
        assert_eq!((stats.failed, stats.flushes), (1, 0));
    }

    #[test]
    fn close_finishes_queued_batches_then_refuses() {
        let store = Arc::new(MemoryStore::new());
        let gc = GroupCommit::start(store.clone()).unwrap();
        let acks: Vec<Ack> = (0..50)
            .map(|i| gc.submit(batch(&format!("k{i}"))))
            .collect();
        let shared = gc.shared.clone();
        gc.close();
        for ack in acks {
            futures::executor::block_on(ack).unwrap();
        }
        assert_eq!(store.len(), 50);
        assert!(shared.queue.lock().closed);
    }

    /// A real store that panics while applying once told to: the writer
    /// thread dies the way a backend bug would kill it.
    struct FailingStore {
        inner: MemoryStore,
        panic_on_apply: AtomicBool,
    }

    impl Store for FailingStore {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(key)
        }
        fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
            self.inner.put(key, value)
        }
        fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
            self.inner.delete(key)
        }
        fn range(
            &self,
            start: &[u8],
            end: Option<&[u8]>,
            direction: crate::Direction,
            limit: usize,
        ) -> Result<Vec<crate::Entry>, StoreError> {
            self.inner.range(start, end, direction, limit)
        }
        fn apply(&self, batch: Batch) -> Result<(), StoreError> {
            self.inner.apply(batch)
        }
        fn apply_group(&self, batches: Vec<Batch>) -> Vec<Result<(), StoreError>> {
            if self.panic_on_apply.load(Ordering::SeqCst) {
                panic!("injected backend failure");
            }
            self.inner.apply_group(batches)
        }
        fn compare_and_swap(
            &self,
            key: &[u8],
            expected: Option<&[u8]>,
            new: Option<&[u8]>,
        ) -> Result<bool, StoreError> {
            self.inner.compare_and_swap(key, expected, new)
        }
        fn flush(&self) -> Result<(), StoreError> {
            Err(StoreError::Io {
                path: "<memory>".into(),
                detail: "flush refused".into(),
            })
        }
    }

    #[test]
    fn a_failed_flush_fails_every_batch_of_its_group() {
        let store = Arc::new(FailingStore {
            inner: MemoryStore::new(),
            panic_on_apply: AtomicBool::new(false),
        });
        let gc = GroupCommit::start(store).unwrap();
        assert!(matches!(gc.commit(batch("a")), Err(StoreError::Io { .. })));
        assert_eq!(gc.stats().failed, 1);
    }

    #[test]
    fn a_dead_writer_answers_closed_and_never_hangs() {
        let store = Arc::new(FailingStore {
            inner: MemoryStore::new(),
            panic_on_apply: AtomicBool::new(true),
        });
        let gc = GroupCommit::start(store).unwrap();
        let acks: Vec<Ack> = (0..20)
            .map(|i| gc.submit(batch(&format!("k{i}"))))
            .collect();
        for ack in acks {
            assert_eq!(futures::executor::block_on(ack), Err(StoreError::Closed));
        }
        // The writer is gone: later submissions fail at once.
        assert_eq!(gc.commit(batch("late")), Err(StoreError::Closed));
        assert!(!gc.is_open());
    }

    #[test]
    fn callbacks_get_each_batchs_outcome_after_it_is_durable() {
        let store = Arc::new(MemoryStore::new());
        let gc = GroupCommit::start(store.clone()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for key in ["a", "a", "b"] {
            let tx = tx.clone();
            let store = store.clone();
            gc.submit_then(batch(key), move |result| {
                // Durable before the callback runs: the key reads back.
                let stored = store.get(key.as_bytes()).unwrap().is_some();
                tx.send((key, result, stored)).unwrap();
            });
        }
        let answers: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(answers[0], ("a", Ok(()), true));
        assert!(matches!(
            answers[1],
            ("a", Err(StoreError::KeyExists { .. }), true)
        ));
        assert_eq!(answers[2], ("b", Ok(()), true));
    }

    #[test]
    fn callbacks_of_a_closed_writer_run_at_once_with_closed() {
        let store = Arc::new(MemoryStore::new());
        let gc = GroupCommit::start(store.clone()).unwrap();
        gc.close();
        let (tx, rx) = std::sync::mpsc::channel();
        gc.submit_then(batch("a"), move |result| tx.send(result).unwrap());
        assert_eq!(rx.try_recv().unwrap(), Err(StoreError::Closed));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn callbacks_queued_at_a_writers_death_get_closed() {
        let store = Arc::new(FailingStore {
            inner: MemoryStore::new(),
            panic_on_apply: AtomicBool::new(true),
        });
        let gc = GroupCommit::start(store).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            gc.submit_then(batch(&format!("k{i}")), move |r| tx.send(r).unwrap());
        }
        for _ in 0..20 {
            assert_eq!(rx.recv().unwrap(), Err(StoreError::Closed));
        }
    }
}
