//! Per-process leases with fencing epochs (SPEC §11.2), as a plain state
//! machine: no actors, no I/O, time passed in as `now_ms`.
//!
//! Several nodes may share one store; a process is sequenced by the node
//! holding its lease, the record `lease/<pid>` → `{owner, epoch, until}`
//! ([`LeaseRecord`]). The decisions:
//!
//! - **Take** ([`decide_take`]): on the bytes read at `lease/<pid>`, if the
//!   lease is absent, expired (`now_ms >= until`), or already ours, write
//!   `{me, epoch + 1 (or 1), now + ttl}` with a compare-and-swap on the
//!   bytes read ([`Take`]); another node's unexpired lease is a [`Holder`].
//!   Only after the compare-and-swap succeeded ([`Lease::taken`]) may the
//!   node load the head and sequence.
//! - **Fence** ([`Lease::fence`]): every assignment batch carries
//!   `RequireEq(lease/<pid>, <the bytes held>)`, so a batch lands only if
//!   the lease is still exactly what this node wrote. A lost lease, or one
//!   expired on this node's clock, gives no fence (and stays lost).
//! - **Renew** ([`Lease::renewal`]): once a third of the lease time has
//!   passed since the value held was written, `{me, epoch, now + ttl}`
//!   with a compare-and-swap on the bytes held ([`Renewal::Due`]). The new
//!   bytes become the fence at once: the caller submits the renewal and
//!   every later assignment batch to one ordered writer, so batches queued
//!   before it carry the old bytes and land before it, later ones the new.
//!   [`Lease::renewed`] takes its outcome; a failure loses the lease.
//! - **Lose** ([`Lease::lose`]): final. The server stops at once; a new
//!   server must take the lease again (a new epoch).
//!
//! Correctness does not depend on clocks: two nodes whose clocks disagree
//! may both believe they hold the lease for a while, but only the one
//! whose bytes are stored can write. Clocks only decide when a lease is
//! worth taking over.

use hb_message::Id;
use hb_store::{keys, Batch, LeaseRecord, StoreError};

/// Who holds a lease that is not ours to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The owner's node id.
    pub owner: String,
    /// Its epoch.
    pub epoch: u64,
    /// When it expires (on our clock's reading of the owner's promise).
    pub until_ms: i64,
}

/// A take to attempt: compare-and-swap `key` from `expected` to `bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Take {
    /// `lease/<pid>`.
    pub key: Vec<u8>,
    /// The bytes read (`None`: absent).
    pub expected: Option<Vec<u8>>,
    /// The lease to write.
    pub record: LeaseRecord,
    /// Its stored form.
    pub bytes: Vec<u8>,
}

/// What [`decide_take`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TakeDecision {
    /// Absent, expired or ours: attempt this compare-and-swap.
    Take(Take),
    /// Another node holds an unexpired lease.
    Held(Holder),
}

/// The ttl as signed milliseconds (saturating).
fn ttl_i64(ttl_ms: u64) -> i64 {
    i64::try_from(ttl_ms).unwrap_or(i64::MAX)
}

/// Decides whether node `me` may take the lease of `pid`, given the bytes
/// stored at `lease/<pid>` (`None`: absent) and its clock. A stored value
/// that is not a lease record is [`StoreError::Corrupt`]; so is one whose
/// epoch cannot grow.
pub fn decide_take(
    pid: &Id,
    me: &str,
    ttl_ms: u64,
    stored: Option<&[u8]>,
    now_ms: i64,
) -> Result<TakeDecision, StoreError> {
    let key = keys::lease(pid);
    let previous = match stored {
        Some(bytes) => Some(LeaseRecord::decode(&key, bytes)?),
        None => None,
    };
    let epoch = match &previous {
        None => 1,
        Some(p) if p.owner != me && now_ms < p.until_ms => {
            return Ok(TakeDecision::Held(Holder {
                owner: p.owner.clone(),
                epoch: p.epoch,
                until_ms: p.until_ms,
            }))
        }
        Some(p) => p.epoch.checked_add(1).ok_or_else(|| StoreError::Corrupt {
            key: keys::printable(&key),
            detail: "lease epoch cannot grow past u64::MAX".into(),
        })?,
    };
    let record = LeaseRecord {
        owner: me.to_string(),
        epoch,
        until_ms: now_ms.saturating_add(ttl_i64(ttl_ms)),
    };
    let bytes = record.encode()?;
    Ok(TakeDecision::Take(Take {
        key,
        expected: stored.map(<[u8]>::to_vec),
        record,
        bytes,
    }))
}

/// The precondition an assignment batch carries: `key` must hold exactly
/// `value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// `lease/<pid>`.
    pub key: Vec<u8>,
    /// The lease bytes this node wrote last.
    pub value: Vec<u8>,
}

impl Fence {
    /// Adds the precondition to `batch`.
    pub fn stage(&self, batch: &mut Batch) {
        batch.require_eq(self.key.clone(), self.value.clone());
    }
}

/// A renewal to write: `key` must hold `expected`, and then holds `new`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalWrite {
    /// `lease/<pid>`.
    pub key: Vec<u8>,
    /// The bytes held before.
    pub expected: Vec<u8>,
    /// The renewed lease's bytes.
    pub new: Vec<u8>,
}

impl RenewalWrite {
    /// The renewal as one batch (a compare-and-swap): `RequireEq` on the
    /// bytes held, then the new bytes.
    pub fn batch(&self) -> Batch {
        let mut batch = Batch::new();
        batch.require_eq(self.key.clone(), self.expected.clone());
        batch.put(self.key.clone(), self.new.clone());
        batch
    }
}

/// What [`Lease::renewal`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Not yet (or a renewal is in flight).
    NotDue,
    /// Write this, then report with [`Lease::renewed`].
    Due(RenewalWrite),
    /// The lease is lost (before, or now: it expired unrenewed).
    Lost,
}

/// One node's hold on one process's lease, from a successful take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pid: Id,
    key: Vec<u8>,
    ttl_ms: i64,
    /// The value written last (the fence), maybe still in flight.
    record: LeaseRecord,
    bytes: Vec<u8>,
    /// The expiry of the last value known to be stored.
    until_ms: i64,
    /// A renewal is written and not yet reported.
    renewing: bool,
    lost: bool,
}

impl Lease {
    /// The lease `take` wrote, once its compare-and-swap succeeded.
    pub fn taken(pid: Id, take: Take, ttl_ms: u64) -> Lease {
        Lease {
            pid,
            key: take.key,
            ttl_ms: ttl_i64(ttl_ms),
            until_ms: take.record.until_ms,
            record: take.record,
            bytes: take.bytes,
            renewing: false,
            lost: false,
        }
    }

    /// The process.
    pub fn pid(&self) -> Id {
        self.pid
    }

    /// The lease as last written (a renewal in flight included).
    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }

    /// When the lease expires, by the last value known to be stored.
    pub fn until_ms(&self) -> i64 {
        self.until_ms
    }

    /// Whether the lease is lost (final).
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Whether this node may sequence at `now_ms`: not lost, not expired.
    pub fn holds(&self, now_ms: i64) -> bool {
        !self.lost && now_ms < self.until_ms
    }

    /// The fence for a batch submitted now, or `None` when the lease is
    /// lost or expired at `now_ms` (it is then lost for good).
    pub fn fence(&mut self, now_ms: i64) -> Option<Fence> {
        if !self.holds(now_ms) {
            self.lost = true;
            return None;
        }
        Some(Fence {
            key: self.key.clone(),
            value: self.bytes.clone(),
        })
    }

    /// Whether a renewal is due at `now_ms`: a third of the lease time
    /// has passed since the value held was written (its `until` minus the
    /// lease time).
    fn renewal_due(&self, now_ms: i64) -> bool {
        let written_at = self.record.until_ms.saturating_sub(self.ttl_ms);
        now_ms >= written_at.saturating_add(self.ttl_ms / 3)
    }

    /// Decides the renewal at `now_ms`. When one is due, its new bytes
    /// become the fence at once and no other renewal is offered until
    /// [`renewed`](Lease::renewed). An expired lease is lost instead of
    /// renewed.
    pub fn renewal(&mut self, now_ms: i64) -> Result<Renewal, StoreError> {
        if !self.holds(now_ms) {
            self.lost = true;
            return Ok(Renewal::Lost);
        }
        if self.renewing || !self.renewal_due(now_ms) {
            return Ok(Renewal::NotDue);
        }
        // Due only after a third of the lease, so this always extends it.
        let record = LeaseRecord {
            until_ms: now_ms.saturating_add(self.ttl_ms),
            ..self.record.clone()
        };
        let new = record.encode()?;
        let expected = std::mem::replace(&mut self.bytes, new.clone());
        self.record = record;
        self.renewing = true;
        Ok(Renewal::Due(RenewalWrite {
            key: self.key.clone(),
            expected,
            new,
        }))
    }

    /// The outcome of the renewal [`renewal`](Lease::renewal) gave: on
    /// success the lease runs to the renewed `until`; a failure (another
    /// node's value, or a write that failed) loses it.
    pub fn renewed(&mut self, ok: bool) {
        self.renewing = false;
        if ok && !self.lost {
            self.until_ms = self.until_ms.max(self.record.until_ms);
        } else {
            self.lost = true;
        }
    }

    /// The lease is lost: a batch failed its fence, or the server stopped
    /// using it. Final.
    pub fn lose(&mut self) {
        self.lost = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const TTL: u64 = 3_000;
    const T0: i64 = 1_000_000;

    fn pid() -> Id {
        Id([9; 32])
    }

    /// A store of bytes with compare-and-swap, the part of a store leases use.
    #[derive(Default)]
    struct Shared(BTreeMap<Vec<u8>, Vec<u8>>);

    impl Shared {
        fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.0.get(key).cloned()
        }

        fn cas(&mut self, key: &[u8], expected: Option<&[u8]>, new: &[u8]) -> bool {
            if self.0.get(key).map(Vec::as_slice) != expected {
                return false;
            }
            self.0.insert(key.to_vec(), new.to_vec());
            true
        }

        /// Applies a batch made of `RequireEq` and `Put` only.
        fn apply(&mut self, batch: &Batch) -> bool {
            for op in &batch.ops {
                if let hb_store::BatchOp::RequireEq(k, v) = op {
                    if self.0.get(k) != Some(v) {
                        return false;
                    }
                }
            }
            for op in &batch.ops {
                if let hb_store::BatchOp::Put(k, v) = op {
                    self.0.insert(k.clone(), v.clone());
                }
            }
            true
        }

        fn lease(&self) -> Option<LeaseRecord> {
            let key = keys::lease(&pid());
            self.get(&key)
                .map(|b| LeaseRecord::decode(&key, &b).expect("a lease record"))
        }

        /// A node's take attempt: decide on what is stored, then CAS.
        fn take(&mut self, me: &str, now_ms: i64) -> Result<Lease, Holder> {
            let stored = self.get(&keys::lease(&pid()));
            match decide_take(&pid(), me, TTL, stored.as_deref(), now_ms).expect("decodes") {
                TakeDecision::Held(h) => Err(h),
                TakeDecision::Take(take) => {
                    assert!(self.cas(&take.key, take.expected.as_deref(), &take.bytes));
                    Ok(Lease::taken(pid(), take, TTL))
                }
            }
        }

        /// A renewal written and reported, as the keeper does.
        fn renew(&mut self, lease: &mut Lease, now_ms: i64) -> Renewal {
            let renewal = lease.renewal(now_ms).expect("encodes");
            if let Renewal::Due(write) = &renewal {
                let ok = self.apply(&write.batch());
                lease.renewed(ok);
            }
            renewal
        }

        /// An assignment batch with the lease's fence: whether it landed.
        fn write(&mut self, lease: &mut Lease, now_ms: i64) -> Option<bool> {
            let fence = lease.fence(now_ms)?;
            let mut batch = Batch::new();
            fence.stage(&mut batch);
            batch.put(b"sched".to_vec(), lease.record().owner.clone().into_bytes());
            Some(self.apply(&batch))
        }
    }

    #[test]
    fn an_absent_lease_is_taken_at_epoch_one_until_now_plus_ttl() {
        let mut store = Shared::default();
        let lease = store.take("a", T0).expect("absent: taken");
        let want = LeaseRecord {
            owner: "a".into(),
            epoch: 1,
            until_ms: T0 + TTL as i64,
        };
        assert_eq!(lease.record(), &want);
        assert_eq!(store.lease(), Some(want));
        assert!(lease.holds(T0) && lease.holds(T0 + TTL as i64 - 1));
        assert!(!lease.holds(T0 + TTL as i64), "expired at until");
    }

    #[test]
    fn another_nodes_lease_is_held_until_its_until_and_taken_from_then_on() {
        let mut store = Shared::default();
        store.take("a", T0).expect("taken");
        let until = T0 + TTL as i64;
        assert_eq!(
            store.take("b", until - 1).unwrap_err(),
            Holder {
                owner: "a".into(),
                epoch: 1,
                until_ms: until
            }
        );
        let b = store.take("b", until).expect("expired at until: taken");
        assert_eq!(b.record().epoch, 2);
        assert_eq!(b.record().owner, "b");
        assert_eq!(b.record().until_ms, until + TTL as i64);
    }

    #[test]
    fn our_own_lease_is_taken_again_with_the_next_epoch_even_unexpired() {
        let mut store = Shared::default();
        let mut first = store.take("a", T0).expect("taken");
        let mut again = store.take("a", T0 + 1).expect("ours: taken again");
        assert_eq!(again.record().epoch, 2);
        // The first incarnation's writes no longer land; the new one's do.
        assert_eq!(store.write(&mut first, T0 + 2), Some(false));
        assert_eq!(store.write(&mut again, T0 + 2), Some(true));
    }

    #[test]
    fn a_take_whose_compare_and_swap_lost_the_race_changes_nothing() {
        let mut store = Shared::default();
        let key = keys::lease(&pid());
        let TakeDecision::Take(slow) = decide_take(&pid(), "a", TTL, None, T0).unwrap() else {
            panic!("absent: take")
        };
        store.take("b", T0).expect("b wins the race");
        assert!(!store.cas(&key, slow.expected.as_deref(), &slow.bytes));
        assert_eq!(store.lease().map(|l| l.owner), Some("b".into()));
        // Read again, a sees b's lease.
        let err = store.take("a", T0).unwrap_err();
        assert_eq!((err.owner.as_str(), err.epoch), ("b", 1));
    }

    #[test]
    fn renewals_come_every_third_of_the_lease_and_keep_the_epoch() {
        let mut store = Shared::default();
        let mut lease = store.take("a", T0).expect("taken");
        let third = TTL as i64 / 3;
        assert_eq!(store.renew(&mut lease, T0 + third - 1), Renewal::NotDue);
        let Renewal::Due(write) = store.renew(&mut lease, T0 + third) else {
            panic!("due after a third")
        };
        assert_ne!(write.expected, write.new);
        let renewed = store.lease().expect("stored");
        assert_eq!(renewed.epoch, 1);
        assert_eq!(renewed.until_ms, T0 + third + TTL as i64);
        assert_eq!(lease.until_ms(), renewed.until_ms);
        // The next renewal counts from this one.
        assert_eq!(store.renew(&mut lease, T0 + 2 * third - 1), Renewal::NotDue);
        assert!(matches!(
            store.renew(&mut lease, T0 + 2 * third),
            Renewal::Due(_)
        ));
        // Renewed on time, the lease never expires.
        assert!(lease.holds(T0 + 5 * TTL as i64 / 4));
        assert_eq!(store.write(&mut lease, T0 + 2 * third), Some(true));
    }

    #[test]
    fn one_renewal_at_a_time_and_its_bytes_are_the_fence_at_once() {
        let mut store = Shared::default();
        let mut lease = store.take("a", T0).expect("taken");
        let old = lease.fence(T0).expect("held").value;
        let Renewal::Due(write) = lease.renewal(T0 + TTL as i64 / 2).unwrap() else {
            panic!("due")
        };
        assert_eq!(write.expected, old);
        assert_eq!(
            lease.renewal(T0 + TTL as i64 / 2).unwrap(),
            Renewal::NotDue,
            "in flight"
        );
        // A batch submitted after the renewal carries its bytes, so it
        // lands after it in the writer's order.
        assert_eq!(lease.fence(T0 + 1).expect("held").value, write.new);
        // Until the renewal is reported, the lease runs to the old until.
        assert!(!lease.holds(T0 + TTL as i64));
        assert!(store.apply(&write.batch()));
        lease.renewed(true);
        assert!(lease.holds(T0 + TTL as i64));
        assert_eq!(store.write(&mut lease, T0 + TTL as i64), Some(true));
    }

    #[test]
    fn a_failed_renewal_loses_the_lease_for_good() {
        let mut store = Shared::default();
        let mut a = store.take("a", T0).expect("taken");
        // b's clock runs a full lease ahead: a's lease is expired to b.
        let b = store.take("b", T0 + TTL as i64).expect("taken by b");
        assert_eq!(b.record().epoch, 2);
        let Renewal::Due(_) = store.renew(&mut a, T0 + TTL as i64 / 3) else {
            panic!("due on a's clock")
        };
        assert!(a.is_lost());
        assert_eq!(a.fence(T0 + 1), None);
        assert_eq!(a.renewal(T0 + 1).unwrap(), Renewal::Lost);
        // A late success report does not bring it back.
        a.renewed(true);
        assert!(a.is_lost() && !a.holds(T0 + 1));
    }

    #[test]
    fn a_lease_expired_unrenewed_is_lost_not_renewed() {
        let mut store = Shared::default();
        let mut lease = store.take("a", T0).expect("taken");
        assert_eq!(
            store.renew(&mut lease, T0 + TTL as i64),
            Renewal::Lost,
            "expired at until"
        );
        assert!(lease.is_lost());
        // Even though the store still holds a's value.
        assert_eq!(store.lease().map(|l| l.owner), Some("a".into()));
        let mut lease = store.take("a", T0 + TTL as i64).expect("retaken");
        assert_eq!(lease.fence(T0 + 2 * TTL as i64), None, "expired");
        assert!(lease.is_lost());
    }

    #[test]
    fn a_late_write_of_a_paused_owner_fails_its_fence() {
        let mut store = Shared::default();
        let mut a = store.take("a", T0).expect("taken");
        assert_eq!(store.write(&mut a, T0), Some(true));
        // a pauses (its clock reads T0 + 10 when it wakes); b, a lease later.
        let mut b = store.take("b", T0 + TTL as i64 + 5).expect("expired to b");
        assert_eq!(store.write(&mut b, T0 + TTL as i64 + 5), Some(true));
        // a still believes it holds the lease: it stages a fenced batch…
        assert!(a.holds(T0 + 10));
        assert_eq!(store.write(&mut a, T0 + 10), Some(false), "fenced off");
        assert_eq!(store.get(b"sched"), Some(b"b".to_vec()));
    }

    #[test]
    fn clock_skew_within_the_lease_only_delays_or_hastens_a_take() {
        // b's clock runs 1 s behind a's: b sees a's lease for 1 s longer.
        let skew = 1_000;
        let mut store = Shared::default();
        store.take("a", T0).expect("taken");
        let until = T0 + TTL as i64;
        assert!(
            store.take("b", until - skew).is_err(),
            "b's clock: unexpired"
        );
        assert!(store.take("b", until - 1).is_err());
        assert!(store.take("b", until).is_ok());
        // b's clock runs ahead: b takes over while a, by its own clock,
        // still holds; a's writes are fenced off all the same.
        let mut store = Shared::default();
        let mut a = store.take("a", T0).expect("taken");
        let mut b = store.take("b", until).expect("b, ahead, sees it expired");
        assert!(a.holds(until - skew) && b.holds(until));
        assert_eq!(store.write(&mut a, until - skew), Some(false));
        assert_eq!(store.write(&mut b, until), Some(true));
    }

    #[test]
    fn corrupt_or_exhausted_leases_are_typed_errors() {
        let err = decide_take(&pid(), "a", TTL, Some(b"garbage"), T0).unwrap_err();
        assert!(matches!(&err, StoreError::Corrupt { key, .. } if key.starts_with("lease/")));
        let last = LeaseRecord {
            owner: "b".into(),
            epoch: u64::MAX,
            until_ms: 0,
        }
        .encode()
        .unwrap();
        let err = decide_take(&pid(), "a", TTL, Some(&last), T0).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        // Extreme times saturate instead of overflowing.
        let TakeDecision::Take(t) = decide_take(&pid(), "a", u64::MAX, None, i64::MAX).unwrap()
        else {
            panic!("absent: take")
        };
        assert_eq!(t.record.until_ms, i64::MAX);
        let mut lease = Lease::taken(pid(), t, u64::MAX);
        assert_eq!(lease.renewal(i64::MIN).unwrap(), Renewal::NotDue);
    }

    /// One step of two simulated nodes over one shared store.
    #[derive(Clone, Debug)]
    enum Op {
        /// Real time passes.
        Advance(i64),
        /// A node (re)takes the lease.
        Take(usize),
        /// A node's keeper renews, if due.
        Renew(usize),
        /// A node's server writes a fenced batch.
        Write(usize),
        /// A node's server stops using its lease.
        Lose(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..TTL as i64).prop_map(Op::Advance),
            (0..2usize).prop_map(Op::Take),
            (0..2usize).prop_map(Op::Renew),
            (0..2usize).prop_map(Op::Renew),
            (0..2usize).prop_map(Op::Write),
            (0..2usize).prop_map(Op::Write),
            (0..2usize).prop_map(Op::Lose),
        ]
    }

    fn skew() -> impl Strategy<Value = i64> {
        prop_oneof![Just(0i64), -(TTL as i64) / 2..TTL as i64 / 2]
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever the interleaving and the clocks' skew within the lease:
        /// every epoch has one owner, stored epochs only grow, a fenced write
        /// lands only for the owner of the stored epoch and in epoch order,
        /// and with equal clocks never two nodes hold an unexpired lease.
        #[test]
        fn two_nodes_never_share_an_epoch_and_epochs_only_grow(
            skews in [skew(), skew()],
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let names = ["a", "b"];
            let mut store = Shared::default();
            let mut leases: [Option<Lease>; 2] = [None, None];
            let mut t = T0;
            let mut owners: BTreeMap<u64, usize> = BTreeMap::new();
            let mut stored_epoch = 0u64;
            let mut last_write_epoch = 0u64;
            for op in ops {
                match op {
                    Op::Advance(dt) => t += dt,
                    Op::Take(n) => {
                        if let Ok(lease) = store.take(names[n], t + skews[n]) {
                            let epoch = lease.record().epoch;
                            prop_assert!(epoch > stored_epoch, "a take raises the epoch");
                            prop_assert_eq!(*owners.entry(epoch).or_insert(n), n);
                            leases[n] = Some(lease);
                        }
                    }
                    Op::Renew(n) => {
                        if let Some(lease) = leases[n].as_mut() {
                            let epoch = lease.record().epoch;
                            if let Renewal::Due(_) = store.renew(lease, t + skews[n]) {
                                if !lease.is_lost() {
                                    prop_assert_eq!(owners.get(&epoch), Some(&n));
                                }
                            }
                        }
                    }
                    Op::Write(n) => {
                        if let Some(lease) = leases[n].as_mut() {
                            if let Some(true) = store.write(lease, t + skews[n]) {
                                let epoch = lease.record().epoch;
                                let stored = store.lease().expect("a lease is stored");
                                prop_assert_eq!(stored.epoch, epoch);
                                prop_assert_eq!(stored.owner.as_str(), names[n]);
                                prop_assert!(epoch >= last_write_epoch, "writes in epoch order");
                                last_write_epoch = epoch;
                            }
                        }
                    }
                    Op::Lose(n) => {
                        if let Some(lease) = leases[n].as_mut() {
                            lease.lose();
                        }
                    }
                }
                let epoch = store.lease().map_or(0, |l| l.epoch);
                prop_assert!(epoch >= stored_epoch, "stored epochs never shrink");
                stored_epoch = epoch;
                // Only the stored value's holder can pass a fence.
                let fenced_in = (0..2)
                    .filter(|&n| {
                        leases[n].as_ref().is_some_and(|l| {
                            !l.is_lost() && store.get(&keys::lease(&pid())) == Some(l.bytes.clone())
                        })
                    })
                    .count();
                prop_assert!(fenced_in <= 1);
                if skews[0] == skews[1] {
                    let holding = (0..2)
                        .filter(|&n| leases[n].as_ref().is_some_and(|l| l.holds(t + skews[n])))
                        .count();
                    prop_assert!(holding <= 1, "two unexpired holders at {}", t);
                }
            }
        }
    }
}
