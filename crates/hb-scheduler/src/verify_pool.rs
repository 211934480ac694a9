//! Signature checks of incoming messages, batched and off the sequencing
//! path (SPEC §5.2: "signature checks … run in parallel, before it").
//!
//! Worker threads take whatever requests are waiting (up to [`MAX_BATCH`])
//! and check them with [`hb_message::verify_batch`]: one ZIP-215 batch
//! equation over all their signatures, which gives each message exactly the
//! answer of single verification (SPEC §2.6) at a fraction of its cost per
//! signature (docs/PERFORMANCE.md, hb-message). A batch equation that
//! fails falls back to single checks of its messages inside `verify_batch`,
//! so one bad request costs the single checks of the (at most
//! [`hb_message::BATCH_CHUNK`] signatures) it was batched with.
//! Order does not matter here: the sequencer fixes order afterwards.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use hb_message::{verify_batch, Message, Verification};
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The most messages a thread takes from the queue at once and hands to
/// [`verify_batch`], which splits them into batch equations of at most
/// [`hb_message::BATCH_CHUNK`] signatures.
pub const MAX_BATCH: usize = 64;

struct Job {
    message: Arc<Message>,
    reply: oneshot::Sender<Verification>,
}

/// A pool of verification threads in front of a bounded queue. Cheap to
/// clone.
#[derive(Clone)]
pub struct VerifyPool {
    tx: Arc<Mutex<Option<SyncSender<Job>>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for VerifyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyPool")
            .field("threads", &self.threads.lock().len())
            .finish_non_exhaustive()
    }
}

/// Why the pool gave no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The queue is full: the caller gets `Busy` at once.
    #[error("the verification queue is full")]
    Full,
    /// The pool has stopped.
    #[error("the verification pool has stopped")]
    Stopped,
}

impl VerifyPool {
    /// Starts `threads` verification threads (at least one) behind a queue
    /// of `capacity` checks (at least one). They stop on
    /// [`close`](Self::close), or when the last handle is dropped.
    pub fn start(threads: usize, capacity: usize) -> VerifyPool {
        let (tx, rx) = mpsc::sync_channel::<Job>(capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = thread::Builder::new()
                .name(format!("hb-verify-{i}"))
                .spawn(move || work(&rx));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => tracing::error!(error = %e, "could not start a verification thread"),
            }
        }
        VerifyPool {
            tx: Arc::new(Mutex::new(Some(tx))),
            threads: Arc::new(Mutex::new(handles)),
        }
    }

    /// Verifies `message` (selector `all`), batched with concurrent callers.
    /// A full queue answers [`PoolError::Full`] at once; a caller that stops
    /// waiting (deadline) has its check skipped.
    pub async fn verify(&self, message: Arc<Message>) -> Result<Verification, PoolError> {
        let (reply, answer) = oneshot::channel();
        let sent = match self.tx.lock().as_ref() {
            None => return Err(PoolError::Stopped),
            Some(tx) => tx.try_send(Job { message, reply }),
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PoolError::Full),
            Err(TrySendError::Disconnected(_)) => return Err(PoolError::Stopped),
        }
        answer.await.map_err(|_| PoolError::Stopped)
    }

    /// Stops taking checks, lets the threads finish the queued ones, and
    /// waits for them to end (blocking: call it off async threads).
    pub fn close(&self) {
        self.tx.lock().take();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a verification thread panicked");
            }
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let jobs = {
            let rx = rx.lock();
            let Ok(first) = rx.recv() else { return };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        // Skip checks whose caller stopped waiting (deadline): under a
        // flood this keeps the threads on work somebody still wants.
        let jobs: Vec<Job> = jobs.into_iter().filter(|j| !j.reply.is_closed()).collect();
        if jobs.is_empty() {
            continue;
        }
        let messages: Vec<&Message> = jobs.iter().map(|j| j.message.as_ref()).collect();
        let results = verify_batch(&messages);
        for (job, result) in jobs.into_iter().zip(results) {
            // A caller that gave up (deadline) no longer listens; that is fine.
            let _ = job.reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, NodeKey};

    #[tokio::test]
    async fn concurrent_checks_agree_with_single_verification() {
        let pool = VerifyPool::start(2, 1024);
        let key = NodeKey::from_seed(&[1; 32]);
        let mut messages = Vec::new();
        for i in 0..200i64 {
            let mut m = msg! { "n" => i }.commit(&key, None).unwrap();
            if i % 7 == 0 {
                m.insert("n", -1).unwrap(); // tampered
            }
            messages.push(Arc::new(m));
        }
        let answers =
            futures::future::join_all(messages.iter().map(|m| pool.verify(Arc::clone(m)))).await;
        for (m, a) in messages.iter().zip(answers) {
            assert_eq!(a.unwrap(), m.verify(&hb_message::IdSelector::All).unwrap());
        }
        pool.close();
        let m = Arc::clone(&messages[0]);
        assert_eq!(pool.verify(m).await, Err(PoolError::Stopped));
    }

    #[tokio::test]
    async fn a_full_queue_answers_full_at_once() {
        // One thread, a queue of one: hold the thread with a batch while
        // more calls arrive than the queue takes.
        let pool = VerifyPool::start(1, 1);
        let key = NodeKey::from_seed(&[2; 32]);
        let m = Arc::new(msg! { "n" => 1 }.commit(&key, None).unwrap());
        let calls = (0..200).map(|_| pool.verify(Arc::clone(&m)));
        let answers = futures::future::join_all(calls).await;
        let full = answers
            .iter()
            .filter(|a| **a == Err(PoolError::Full))
            .count();
        let valid = answers
            .iter()
            .filter(|a| matches!(a, Ok(v) if v.is_valid()))
            .count();
        assert!(full > 0, "200 calls at once overflow a queue of one");
        assert_eq!(full + valid, 200, "every call is answered, valid or full");
        pool.close();
    }
}
