//! Signature checks of incoming messages, batched and off the sequencing
//! path (SPEC §5.2: "signature checks … run in parallel, before it").
//!
//! Worker threads take whatever requests are waiting (up to [`MAX_BATCH`])
//! and check them with one ed25519 batch equation, which costs about half of
//! single verification per signature. Order does not matter here: the
//! sequencer fixes order afterwards.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;

use hb_message::{verify_batch, Message, Verification};
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The most messages checked in one batch.
pub const MAX_BATCH: usize = 64;

struct Job {
    message: Arc<Message>,
    reply: oneshot::Sender<Verification>,
}

/// A pool of verification threads. Cheap to clone.
#[derive(Clone)]
pub struct VerifyPool {
    tx: Sender<Job>,
}

/// The pool stopped before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the verification pool has stopped")]
pub struct PoolStopped;

impl VerifyPool {
    /// Starts `threads` verification threads (at least one). They stop when
    /// the last handle is dropped.
    pub fn start(threads: usize) -> VerifyPool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = thread::Builder::new()
                .name(format!("hb-verify-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a verification thread");
            }
        }
        VerifyPool { tx }
    }

    /// Verifies `message` (selector `all`), batched with concurrent callers.
    pub async fn verify(&self, message: Arc<Message>) -> Result<Verification, PoolStopped> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { message, reply })
            .map_err(|_| PoolStopped)?;
        answer.await.map_err(|_| PoolStopped)
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
        let pool = VerifyPool::start(2);
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
    }
}
