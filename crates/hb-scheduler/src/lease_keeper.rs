//! The shell around [`Lease`] (SPEC §11.2): taking a lease before a server
//! starts, the cell a server and the keeper share, and the keeper thread
//! that renews every held lease.
//!
//! The keeper is a plain thread of its own, not a task on an arbiter and
//! not a server's mailbox: a busy mailbox or a busy executor cannot starve
//! renewals. It never blocks on the store either: renewals go to group
//! commit, and their outcome comes back on the writer's thread.
//!
//! Ordering is what makes a renewal safe for pipelined writes. A renewal
//! changes the bytes every assignment batch must require, while earlier
//! batches carrying the old bytes may still wait in group commit's queue.
//! So a server's submission of an assignment batch and the keeper's
//! submission of a renewal both happen under the cell's `order` lock,
//! taking the fence (or changing it) in the same critical section: the
//! writer's queue sees the old bytes before the renewal and the new ones
//! after it, and each batch requires what the store holds when it lands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hb_message::Id;
use hb_store::{GroupCommit, Store, StoreError};
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::clock::Clock;
use crate::deps::SchedulerMetrics;
use crate::error::SchedulerError;
use crate::lease::{decide_take, Fence, Lease, Renewal, TakeDecision};

/// How often a take is retried when another node's compare-and-swap won
/// the race between the read and the write.
const TAKE_ATTEMPTS: usize = 8;

/// One held lease, shared by its server, the keeper and group commit's
/// acknowledgements.
#[derive(Debug)]
pub(crate) struct LeaseCell {
    /// Held while a batch that carries or changes the fence is submitted.
    order: Mutex<()>,
    state: Mutex<Lease>,
    /// Mirrors `state.is_lost()`, read without the lock on hot paths.
    lost: AtomicBool,
    metrics: Arc<SchedulerMetrics>,
}

impl LeaseCell {
    fn new(lease: Lease, metrics: Arc<SchedulerMetrics>) -> LeaseCell {
        LeaseCell {
            order: Mutex::new(()),
            state: Mutex::new(lease),
            lost: AtomicBool::new(false),
            metrics,
        }
    }

    /// The process.
    pub(crate) fn pid(&self) -> Id {
        self.state.lock().pid()
    }

    /// Whether the lease is lost (final).
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// The lease as last written.
    #[cfg(test)]
    pub(crate) fn record(&self) -> hb_store::LeaseRecord {
        self.state.lock().record().clone()
    }

    /// Taken before [`fence`](Self::fence) and held until the batch is
    /// submitted.
    pub(crate) fn order(&self) -> MutexGuard<'_, ()> {
        self.order.lock()
    }

    /// The fence for a batch submitted now (call under
    /// [`order`](Self::order)), or `None` once the lease is lost or
    /// expired on this node's clock.
    pub(crate) fn fence(&self, now_ms: i64) -> Option<Fence> {
        let fence = self.state.lock().fence(now_ms);
        if fence.is_none() {
            self.mark_lost("the lease is lost or expired");
        }
        fence
    }

    /// The lease is lost (a batch failed its fence, say). Final.
    pub(crate) fn lose(&self, why: &str) {
        self.state.lock().lose();
        self.mark_lost(why);
    }

    fn mark_lost(&self, why: &str) {
        if !self.lost.swap(true, Ordering::AcqRel) {
            self.metrics.leases_lost.fetch_add(1, Ordering::Relaxed);
            let pid = self.pid();
            tracing::warn!(%pid, why, "lease lost: this node stops sequencing the process");
        }
    }

    /// Renews the lease if due at `now_ms`, through `writer`.
    fn renew(self: &Arc<Self>, writer: &GroupCommit, now_ms: i64) {
        let _order = self.order.lock();
        let renewal = self.state.lock().renewal(now_ms);
        match renewal {
            Ok(Renewal::NotDue) => {}
            Ok(Renewal::Lost) => self.mark_lost("the lease expired before it was renewed"),
            Err(e) => {
                self.state.lock().lose();
                self.mark_lost(&format!("the renewal cannot be encoded: {e}"));
            }
            Ok(Renewal::Due(write)) => {
                let cell = Arc::clone(self);
                // The outcome comes on the writer's thread (or at once, here,
                // if the writer is closed): no lock of ours is held there.
                writer.submit_then(write.batch(), move |written| {
                    let ok = written.is_ok();
                    cell.state.lock().renewed(ok);
                    if let Err(e) = written {
                        cell.mark_lost(&format!("renewal failed: {e}"));
                    }
                });
            }
        }
    }
}

/// The leases one scheduler holds, and the keeper that renews them.
pub(crate) struct Leases {
    /// This node's id (the lease owner).
    pub me: String,
    /// How long a taken or renewed lease lasts.
    pub ttl_ms: u64,
    metrics: Arc<SchedulerMetrics>,
    held: Mutex<HashMap<Id, Arc<LeaseCell>>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Leases {
    /// Leases of node `me`, lasting `ttl_ms`.
    pub(crate) fn new(me: String, ttl_ms: u64, metrics: Arc<SchedulerMetrics>) -> Leases {
        Leases {
            me,
            ttl_ms,
            metrics,
            held: Mutex::new(HashMap::new()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// Takes the lease of `pid` (blocking: reads and a compare-and-swap on
    /// `store`): absent, expired or ours. Another node's unexpired lease is
    /// `NotOwner`. The cell is not renewed until [`hold`](Self::hold).
    pub(crate) fn take(
        &self,
        store: &dyn Store,
        pid: Id,
        clock: &dyn Clock,
    ) -> Result<Arc<LeaseCell>, SchedulerError> {
        let key = hb_store::keys::lease(&pid);
        for _ in 0..TAKE_ATTEMPTS {
            let stored = store.get(&key)?;
            let now_ms = clock.now_ms();
            match decide_take(&pid, &self.me, self.ttl_ms, stored.as_deref(), now_ms)? {
                TakeDecision::Held(holder) => {
                    return Err(SchedulerError::NotOwner {
                        pid: pid.to_human(),
                        owner: holder.owner,
                        epoch: holder.epoch,
                    })
                }
                TakeDecision::Take(take) => {
                    if store.compare_and_swap(&key, take.expected.as_deref(), Some(&take.bytes))? {
                        self.metrics.leases_taken.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%pid, epoch = take.record.epoch, "lease taken");
                        let lease = Lease::taken(pid, take, self.ttl_ms);
                        return Ok(Arc::new(LeaseCell::new(lease, Arc::clone(&self.metrics))));
                    }
                    // Another writer changed it between the read and the
                    // swap: read again.
                }
            }
        }
        Err(SchedulerError::Store(StoreError::Unavailable {
            store: "lease".into(),
            detail: format!("the lease of {pid} changed under {TAKE_ATTEMPTS} attempts to take it"),
        }))
    }

    /// From now on the keeper renews `cell` (its server started).
    pub(crate) fn hold(&self, cell: Arc<LeaseCell>) {
        self.held.lock().insert(cell.pid(), cell);
    }

    /// The keeper stops renewing the lease of `pid` (its server retired);
    /// the lease runs out on its own.
    pub(crate) fn forget(&self, pid: &Id) {
        self.held.lock().remove(pid);
    }

    /// One pass of the keeper: renews every held lease that is due, and
    /// forgets the lost ones.
    fn renew_due(&self, writer: &GroupCommit, now_ms: i64) {
        let cells: Vec<Arc<LeaseCell>> = self.held.lock().values().cloned().collect();
        for cell in &cells {
            if !cell.is_lost() {
                cell.renew(writer, now_ms);
            }
        }
        self.held.lock().retain(|_, cell| !cell.is_lost());
    }

    /// Starts the keeper thread: a pass every sixth of the lease time (at
    /// most every second), on `clock`'s time, until [`stop`](Self::stop).
    pub(crate) fn start_keeper(
        self: &Arc<Self>,
        writer: Arc<GroupCommit>,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let leases = Arc::clone(self);
        let tick = Duration::from_millis((self.ttl_ms / 6).clamp(1, 1_000));
        std::thread::Builder::new()
            .name("hb-lease-keeper".into())
            .spawn(move || loop {
                {
                    let mut stop = leases.stop.lock();
                    if !*stop {
                        leases.wake.wait_for(&mut stop, tick);
                    }
                    if *stop {
                        return;
                    }
                }
                leases.renew_due(&writer, clock.now_ms());
            })
    }

    /// Stops the keeper thread (join its handle afterwards). The leases
    /// are not released: they run out.
    pub(crate) fn stop(&self) {
        *self.stop.lock() = true;
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use hb_store::{keys, Batch, MemoryStore};

    fn leases(me: &str) -> Leases {
        Leases::new(me.into(), 300, Arc::new(SchedulerMetrics::default()))
    }

    #[test]
    fn a_take_refuses_another_nodes_lease_naming_its_owner() {
        let store = MemoryStore::new();
        let clock = ManualClock::new(1_000);
        let pid = Id([5; 32]);
        let a = leases("a")
            .take(&store, pid, &clock)
            .expect("absent: taken");
        assert_eq!(a.record().epoch, 1);
        let err = leases("b")
            .take(&store, pid, &clock)
            .expect_err("held by a");
        assert!(
            matches!(&err, SchedulerError::NotOwner { owner, epoch: 1, .. } if owner == "a"),
            "{err:?}"
        );
        clock.advance(300);
        let b = leases("b")
            .take(&store, pid, &clock)
            .expect("expired: taken");
        assert_eq!((b.record().owner.as_str(), b.record().epoch), ("b", 2));
    }

    #[test]
    fn the_keeper_renews_through_group_commit_and_a_failed_renewal_loses() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let writer = GroupCommit::start(Arc::clone(&store)).expect("writer");
        let clock = ManualClock::new(1_000);
        let pid = Id([6; 32]);
        let a = leases("a");
        let cell = a.take(store.as_ref(), pid, &clock).expect("taken");
        a.hold(Arc::clone(&cell));
        a.renew_due(&writer, clock.now_ms());
        assert_eq!(cell.record().until_ms, 1_300, "not due yet");
        a.renew_due(&writer, 1_100);
        // The renewal's bytes are the fence at once; the barrier waits for it.
        writer.commit(Batch::new()).expect("barrier");
        let (stored, bytes) = hb_store::LeaseRecord::read(store.as_ref(), &pid)
            .expect("read")
            .expect("stored");
        assert_eq!(stored.until_ms, 1_400);
        assert_eq!(cell.fence(1_350).map(|f| f.value), Some(bytes));
        // Someone else's value: the next renewal fails and loses the lease.
        store
            .put(&keys::lease(&pid), b"another")
            .expect("overwrite");
        a.renew_due(&writer, 1_250);
        writer.commit(Batch::new()).expect("barrier");
        assert!(cell.is_lost());
        assert_eq!(cell.fence(1_251), None);
        a.renew_due(&writer, 1_260);
        assert!(a.held.lock().is_empty(), "lost leases are forgotten");
    }
}
