//! This node's row in the store's node registry (SPEC §11.3): written
//! once at start (a store that cannot take it stops start-up), refreshed
//! every third of a lease from a thread of its own (no busy mailbox can
//! starve it), and marked gone on a clean stop so the other nodes stop
//! routing here at once rather than after a lease time.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hb_scheduler::Clock;
use hb_store::{NodeRecord, Store, StoreError};
use parking_lot::{Condvar, Mutex};

/// The refresher of this node's registration.
pub(crate) struct Registration {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// What the refresher writes with.
struct Row {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    node_id: String,
    url: String,
    started_ms: i64,
}

impl Row {
    fn write(&self, last_seen_ms: i64) -> Result<(), StoreError> {
        NodeRecord {
            url: self.url.clone(),
            started_ms: self.started_ms,
            last_seen_ms,
        }
        .write(self.store.as_ref(), &self.node_id)
    }
}

/// A row's `last_seen_ms` once its node stopped cleanly: older than any
/// staleness bound.
pub const GONE: i64 = 0;

impl Registration {
    /// Writes the row of `node_id` at `url`, then refreshes it every
    /// `lease_ttl_ms / 3` until [`stop`](Self::stop). Err if the first
    /// write fails.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        node_id: String,
        url: String,
        lease_ttl_ms: u64,
    ) -> Result<Registration, StoreError> {
        let started_ms = clock.now_ms();
        let row = Row {
            store,
            clock,
            node_id,
            url,
            started_ms,
        };
        row.write(started_ms)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let every = Duration::from_millis((lease_ttl_ms / 3).max(1));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("hb-node-registry".into())
                .spawn(move || refresh(&row, &stop, every))
                .map_err(|e| StoreError::Io {
                    path: std::path::PathBuf::from("node registry"),
                    detail: format!("cannot start the registration thread: {e}"),
                })?
        };
        Ok(Registration {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops refreshing and marks the row gone; returns once the thread
    /// has ended. Blocking; safe to call more than once.
    pub fn stop(&mut self) {
        {
            let (stopped, wake) = &*self.stop;
            *stopped.lock() = true;
            wake.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            // The thread only loops and writes; a panic in it has been
            // logged by the panic hook already.
            let _ = thread.join();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.stop();
    }
}

fn refresh(row: &Row, stop: &(Mutex<bool>, Condvar), every: Duration) {
    let (stopped, wake) = stop;
    loop {
        {
            let mut stopped = stopped.lock();
            if !*stopped {
                wake.wait_for(&mut stopped, every);
            }
            if *stopped {
                break;
            }
        }
        if let Err(e) = row.write(row.clock.now_ms()) {
            tracing::warn!(node_id = %row.node_id, error = %e, "cannot refresh this node's registration");
        }
    }
    if let Err(e) = row.write(GONE) {
        tracing::warn!(node_id = %row.node_id, error = %e, "cannot mark this node's registration gone");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_scheduler::ManualClock;
    use hb_store::MemoryStore;

    #[test]
    fn the_row_is_written_at_start_refreshed_and_marked_gone_at_stop() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(1_000));
        let mut reg = Registration::start(
            Arc::clone(&store),
            clock.clone(),
            "n1".into(),
            "http://127.0.0.1:1".into(),
            30,
        )
        .expect("registered");
        let row = NodeRecord::read(store.as_ref(), "n1").unwrap().unwrap();
        assert_eq!((row.started_ms, row.last_seen_ms), (1_000, 1_000));
        assert_eq!(row.url, "http://127.0.0.1:1");
        clock.set(2_000);
        // Refreshed every 10 ms: wait (bounded) until the new time shows.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let seen = NodeRecord::read(store.as_ref(), "n1").unwrap().unwrap();
            if seen.last_seen_ms == 2_000 {
                assert_eq!(seen.started_ms, 1_000);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never refreshed");
            std::thread::sleep(Duration::from_millis(5));
        }
        reg.stop();
        let gone = NodeRecord::read(store.as_ref(), "n1").unwrap().unwrap();
        assert_eq!(gone.last_seen_ms, GONE);
        assert!(!gone.is_live(2_000, 30));
    }
}
