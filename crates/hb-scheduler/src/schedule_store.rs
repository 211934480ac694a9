//! The scheduler's use of hb-store: what a server loads on start, what one
//! assignment writes, and the reads behind GET schedule and `slot`.

use std::sync::Arc;

use hb_message::{Id, Message};
use hb_store::{
    keys, AssignmentRecord, Batch, DedupEntry, MessageCache, SchedulerCache, Store, StoreError,
    StoredAssignment,
};

use crate::assignment::Assignment;
use crate::config::DedupPolicy;
use crate::definition::{is_process, process_dedup};
use crate::error::SchedulerError;
use crate::sequencer::Sequencer;

/// What a server starts from: its sequencer and the process's own dedup
/// policy (from the definition at slot 0), if it sets one.
pub(crate) struct Loaded {
    pub sequencer: Sequencer,
    pub dedup: Option<DedupPolicy>,
}

/// Loads the head of `pid`'s schedule by one reverse seek (no replay). The
/// chain resumes from the stored `hash-chain`, base64url-decoded.
pub(crate) fn load(store: Arc<dyn Store>, pid: Id) -> Result<Loaded, SchedulerError> {
    let cache = SchedulerCache::new(Arc::clone(&store));
    let corrupt = |slot: u64, detail: String| SchedulerError::CorruptSchedule {
        pid: pid.to_human(),
        slot,
        detail,
    };
    let head = cache.latest_record(&pid).map_err(|e| located(&pid, e))?;
    let Some(head) = head else {
        return Ok(Loaded {
            sequencer: Sequencer::new(pid),
            dedup: None,
        });
    };
    let chain_text = head
        .assignment
        .get_text("hash-chain")
        .ok_or_else(|| corrupt(head.slot, "assignment has no hash-chain".into()))?;
    let mut sequencer = Sequencer::resume(pid, head.slot, chain_text)?;
    if let Some(t) = head.assignment.get_int("timestamp") {
        sequencer = sequencer.with_last_timestamp(t);
    }
    if let Some(link) = crate::ao_assignment::link_of(&head.assignment) {
        sequencer = sequencer.with_ao_head(link.map_err(|e| corrupt(head.slot, e))?);
    }
    if sequencer.chain() != head.hash_chain.as_slice() {
        return Err(corrupt(
            head.slot,
            "the record's chain and the assignment's hash-chain differ".into(),
        ));
    }
    let definition = match cache.read(&pid, 0) {
        Ok(Some(r)) => r.assignment.get_message("body").cloned(),
        Ok(None) => None,
        Err(e) => return Err(corrupt(0, e.to_string())),
    };
    let dedup = match definition {
        Some(d) => process_dedup(&d).unwrap_or_else(|e| {
            tracing::warn!(%pid, error = %e, "ignoring the definition's invalid scheduler-dedup");
            None
        }),
        None => None,
    };
    Ok(Loaded { sequencer, dedup })
}

/// Stages everything one assignment writes, in one atomic batch: the
/// assignment ("must be absent", and the previous slot "must be present"),
/// for a process definition its entry in the message cache, and for signed
/// messages the dedup entry.
///
/// An assignment without a commitment is refused
/// ([`SchedulerError::Internal`], nothing staged): a stored schedule must
/// verify, and an unsigned assignment never would.
pub(crate) fn stage(batch: &mut Batch, a: &Assignment, signed: bool) -> Result<(), SchedulerError> {
    if !a.message.is_signed() {
        return Err(SchedulerError::Internal {
            pid: a.pid.to_human(),
            detail: format!(
                "the assignment of slot {} carries no commitment, and is not stored",
                a.slot
            ),
        });
    }
    let record = AssignmentRecord {
        pid: a.pid,
        slot: a.slot,
        hash_chain: a.chain.to_vec(),
        assignment_id: a.id,
        assignment: a.message.clone(),
    };
    SchedulerCache::stage_assignment(batch, &record)?;
    if let Some(previous) = a.slot.checked_sub(1) {
        // Never store a slot on top of a missing one (a failed earlier
        // write fails every write pipelined after it).
        batch.require(keys::sched(&a.pid, previous));
    }
    // Process definitions go to the message cache (later found by their
    // ID). Other messages are stored once, inside their assignment: a
    // second copy per message would double the writer's work.
    if let Some(body) = a.body().filter(|b| is_process(b)) {
        MessageCache::stage(batch, body)?;
    }
    if signed {
        let entry = DedupEntry {
            slot: a.slot,
            assignment_id: a.id,
        };
        SchedulerCache::stage_dedup(batch, &a.pid, &a.body_id, &entry)?;
    }
    Ok(())
}

/// A store error of a schedule read, with a corrupt record located as
/// `CorruptSchedule { pid, slot }` (the store names the record's key).
pub(crate) fn located(pid: &Id, e: StoreError) -> SchedulerError {
    match e {
        StoreError::Corrupt { key, detail } => {
            let slot = keys::parse_sched(key.as_bytes())
                .filter(|(p, _)| p == pid)
                .map(|(_, s)| s);
            match slot {
                Some(slot) => SchedulerError::CorruptSchedule {
                    pid: pid.to_human(),
                    slot,
                    detail: format!("record {key}: {detail}"),
                },
                None => SchedulerError::Store(StoreError::Corrupt { key, detail }),
            }
        }
        other => SchedulerError::Store(other),
    }
}

/// The original assignment of a signed message, from the dedup index.
pub(crate) fn find_original(
    store: Arc<dyn Store>,
    pid: &Id,
    body_id: &Id,
) -> Result<Option<Assignment>, SchedulerError> {
    let cache = SchedulerCache::new(store);
    let Some(entry) = cache.dedup(pid, body_id)? else {
        return Ok(None);
    };
    let record = cache
        .read(pid, entry.slot)
        .map_err(|e| located(pid, e))?
        .ok_or_else(|| SchedulerError::CorruptSchedule {
            pid: pid.to_human(),
            slot: entry.slot,
            detail: "dedup entry names a missing slot".into(),
        })?;
    Assignment::from_message(record.assignment)
        .map(Some)
        .map_err(|detail| SchedulerError::CorruptSchedule {
            pid: pid.to_human(),
            slot: entry.slot,
            detail,
        })
}

/// The head (slot, raw chain) of `pid`'s schedule.
pub(crate) fn latest(
    store: Arc<dyn Store>,
    pid: &Id,
) -> Result<Option<(u64, Vec<u8>)>, SchedulerError> {
    Ok(SchedulerCache::new(store)
        .latest(pid)
        .map_err(|e| located(pid, e))?
        .map(|h| (h.slot, h.hash_chain)))
}

/// One stored assignment message.
pub(crate) fn read(
    store: Arc<dyn Store>,
    pid: &Id,
    slot: u64,
) -> Result<Option<Message>, SchedulerError> {
    Ok(SchedulerCache::new(store)
        .read(pid, slot)
        .map_err(|e| located(pid, e))?
        .map(|r| r.assignment))
}

/// Stored assignments `from..=to`, stopping at the first gap.
pub(crate) fn range(
    store: Arc<dyn Store>,
    pid: &Id,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Message)>, SchedulerError> {
    SchedulerCache::new(store)
        .range_stored(pid, from, to)
        .map_err(|e| located(pid, e))?
        .into_iter()
        .map(|r| Ok((r.slot, r.message().map_err(|e| located(pid, e))?)))
        .collect()
}

/// [`range`] with the messages left packed (`SchedulerCache::range_stored`).
pub(crate) fn range_stored(
    store: Arc<dyn Store>,
    pid: &Id,
    from: u64,
    to: u64,
) -> Result<Vec<StoredAssignment>, SchedulerError> {
    SchedulerCache::new(store)
        .range_stored(pid, from, to)
        .map_err(|e| located(pid, e))
}

/// Every process with a stored schedule.
pub(crate) fn processes(store: Arc<dyn Store>) -> Result<Vec<Id>, SchedulerError> {
    Ok(SchedulerCache::new(store).processes()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain_tip::ChainTip;
    use hb_message::{msg, NodeKey};
    use hb_store::MemoryStore;

    fn assignment(seq: &mut Sequencer, n: i64) -> Assignment {
        seq.assign(msg! { "n" => n }, ChainTip::LOCAL, n)
            .and_then(|d| Ok(d.sign(&NodeKey::from_seed(&[1; 32]))?))
            .expect("assign and sign")
    }

    #[test]
    fn a_corrupt_head_record_is_a_corrupt_schedule_at_its_slot() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let pid = Id::hash(b"p");
        let mut seq = Sequencer::new(pid);
        for n in 0..3 {
            let mut b = Batch::new();
            stage(&mut b, &assignment(&mut seq, n), false).expect("stage");
            store.apply(b).expect("apply");
        }
        store
            .put(&keys::sched(&pid, 2), b"not a record")
            .expect("overwrite the head");
        for err in [
            latest(Arc::clone(&store), &pid).map(|_| ()).unwrap_err(),
            read(Arc::clone(&store), &pid, 2).map(|_| ()).unwrap_err(),
            range(Arc::clone(&store), &pid, 0, 2)
                .map(|_| ())
                .unwrap_err(),
        ] {
            assert!(
                matches!(&err, SchedulerError::CorruptSchedule { slot: 2, pid: p, .. } if *p == pid.to_human()),
                "{err:?}"
            );
        }
        // Loading a server from it is the same typed error.
        let err = load(Arc::clone(&store), pid).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, SchedulerError::CorruptSchedule { slot: 2, .. }),
            "{err:?}"
        );
        assert!(read(store, &pid, 1).expect("slot 1 is intact").is_some());
    }

    /// Slot 1 of [`priv_schedule`]'s schedule, assigned at this time, is
    /// signed by a commitment whose ID starts with `priv` (found by a
    /// search: one ID in 2^24 does).
    const PRIV_MS: i64 = 10_435_791;

    /// The key, pid and the two signed assignments of a schedule whose slot
    /// 1 has a commitment ID starting with `priv`.
    fn priv_schedule() -> (NodeKey, Id, Vec<Assignment>) {
        let key = NodeKey::from_seed(&[1; 32]);
        let def = msg! { "type" => "Process", "scheduler" => key.address() };
        let pid = def.id_all().expect("an ID");
        let mut seq = Sequencer::new(pid);
        let assignments = [(def, 0), (msg! { "n" => 1 }, PRIV_MS)]
            .into_iter()
            .map(|(body, now)| {
                seq.assign(body, ChainTip::LOCAL, now)
                    .and_then(|d| Ok(d.sign(&key)?))
                    .expect("assign and sign")
            })
            .collect();
        (key, pid, assignments)
    }

    #[test]
    fn an_assignment_whose_commitment_id_starts_with_priv_is_stored_signed() {
        let (key, pid, assignments) = priv_schedule();
        assert!(assignments[1].id.to_human().starts_with("priv"));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        for a in &assignments {
            let mut b = Batch::new();
            stage(&mut b, a, false).expect("a signed assignment is staged");
            store.apply(b).expect("apply");
        }
        let stored = read(Arc::clone(&store), &pid, 1)
            .expect("read")
            .expect("slot 1");
        assert_eq!(stored, assignments[1].message);
        assert!(stored.is_signed());
        let report = crate::verify_chain::verify_stored(
            Arc::clone(&store),
            pid,
            crate::ExpectedSigner::FromDefinition,
            |_| {},
        )
        .expect("the store reads")
        .unwrap_or_else(|fault| panic!("{fault}"));
        assert_eq!(report.slots, 2);
        assert_eq!(report.signer.as_deref(), Some(key.address()));
    }

    #[test]
    fn an_assignment_without_a_commitment_is_never_staged() {
        let (_, _, assignments) = priv_schedule();
        let mut unsigned = assignments[1].clone();
        unsigned.message.remove("commitments");
        let mut b = Batch::new();
        let err = stage(&mut b, &unsigned, true).unwrap_err();
        assert!(
            matches!(&err, SchedulerError::Internal { detail, .. } if detail.contains("slot 1")),
            "{err:?}"
        );
        assert!(b.is_empty());
    }

    #[test]
    fn a_slot_is_never_stored_on_top_of_a_missing_one() {
        let store = MemoryStore::new();
        let pid = Id::hash(b"p");
        let mut seq = Sequencer::new(pid);
        let zero = assignment(&mut seq, 0);
        let one = assignment(&mut seq, 1);
        let two = assignment(&mut seq, 2);
        let mut b = Batch::new();
        stage(&mut b, &zero, false).expect("stage");
        store.apply(b).expect("slot 0 needs nothing before it");
        // Slot 1's write failed (never applied): slot 2 must not land.
        let mut b = Batch::new();
        stage(&mut b, &two, false).expect("stage");
        assert!(matches!(store.apply(b), Err(StoreError::Missing { .. })));
        let mut b = Batch::new();
        stage(&mut b, &one, false).expect("stage");
        store.apply(b).expect("slot 1 follows slot 0");
        let mut b = Batch::new();
        stage(&mut b, &two, true).expect("stage");
        store.apply(b).expect("slot 2 follows slot 1");
        let head = SchedulerCache::new(Arc::new(store))
            .latest(&pid)
            .expect("read");
        assert_eq!(head.map(|h| h.slot), Some(2));
    }
}
