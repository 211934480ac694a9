//! The operators' chain verifier (SPEC §5.7): checks a stored schedule from
//! slot 0 — every assignment's signature, slot continuity and hash chain —
//! and reports the first fault precisely.

use std::fmt;

use hb_message::{Id, IdSelector, Message};

use crate::assignment::Assignment;
use crate::hash_chain;

/// The first fault found in a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFault {
    /// The slot at which checking stopped.
    pub slot: u64,
    /// The failed check: `malformed`, `process`, `slot`, `signature` or `hash-chain`.
    pub check: &'static str,
    /// What the check expected.
    pub expected: String,
    /// What it found.
    pub actual: String,
}

impl fmt::Display for ChainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "slot {}: {} check failed (expected {}, found {})",
            self.slot, self.check, self.expected, self.actual
        )
    }
}

/// What a successful check covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Number of assignments checked (slots 0..n-1).
    pub slots: u64,
    /// The final hash-chain link (empty if there were no assignments).
    pub head: Vec<u8>,
}

/// Incremental verifier: feed assignments in slot order from slot 0.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    pid: Id,
    next_slot: u64,
    chain: Vec<u8>,
    check_signatures: bool,
}

impl ChainVerifier {
    /// A verifier for the schedule of `pid`, starting at slot 0.
    pub fn new(pid: Id) -> ChainVerifier {
        ChainVerifier {
            pid,
            next_slot: 0,
            chain: Vec::new(),
            check_signatures: true,
        }
    }

    /// Skips signature checks (for assignments converted from aos-2, which
    /// cannot be verified).
    pub fn without_signatures(mut self) -> ChainVerifier {
        self.check_signatures = false;
        self
    }

    /// Checks the next assignment.
    pub fn push(&mut self, message: &Message) -> Result<(), ChainFault> {
        let slot = self.next_slot;
        let fault = |check, expected: String, actual: String| ChainFault {
            slot,
            check,
            expected,
            actual,
        };
        let a = Assignment::from_message(message.clone())
            .map_err(|why| fault("malformed", "a well-formed assignment".into(), why))?;
        if a.pid != self.pid {
            return Err(fault("process", self.pid.to_human(), a.pid.to_human()));
        }
        if a.slot != slot {
            return Err(fault("slot", slot.to_string(), a.slot.to_string()));
        }
        if self.check_signatures {
            if message.commitments().is_none() {
                return Err(fault(
                    "signature",
                    "a signed assignment".into(),
                    "no commitments".into(),
                ));
            }
            match message.verify(&IdSelector::All) {
                Ok(v) if v.is_valid() => {}
                Ok(v) => {
                    return Err(fault(
                        "signature",
                        "a valid signature".into(),
                        format!("{v:?}"),
                    ))
                }
                Err(e) => {
                    return Err(fault(
                        "signature",
                        "a valid signature".into(),
                        e.to_string(),
                    ))
                }
            }
        }
        let expected = hash_chain::next_link(&self.chain, &a.body_id);
        if expected != a.chain {
            return Err(fault(
                "hash-chain",
                hash_chain::to_text(&expected),
                hash_chain::to_text(&a.chain),
            ));
        }
        self.chain = a.chain.to_vec();
        self.next_slot += 1;
        Ok(())
    }

    /// The report so far.
    pub fn report(&self) -> ChainReport {
        ChainReport {
            slots: self.next_slot,
            head: self.chain.clone(),
        }
    }
}

/// Slots read per page by [`verify_stored`].
const PAGE: u64 = 1_000;

/// Verifies the schedule of `pid` as stored, from slot 0 to its head, page
/// by page (bounded memory). `progress` is called after each page with the
/// number of slots checked so far. The outer error is a storage failure;
/// the inner one the first fault of the schedule. A schedule that ends
/// before the stored head (a gap) is reported as a `slot` fault.
pub fn verify_stored(
    store: std::sync::Arc<dyn hb_store::Store>,
    pid: Id,
    mut progress: impl FnMut(u64),
) -> Result<Result<ChainReport, ChainFault>, hb_store::StoreError> {
    let cache = hb_store::SchedulerCache::new(store);
    let Some(head) = cache.latest(&pid)? else {
        return Ok(Ok(ChainReport {
            slots: 0,
            head: Vec::new(),
        }));
    };
    let mut v = ChainVerifier::new(pid);
    while v.next_slot <= head.slot {
        let from = v.next_slot;
        let page = cache.range(&pid, from, from.saturating_add(PAGE - 1).min(head.slot))?;
        if page.is_empty() {
            return Ok(Err(ChainFault {
                slot: from,
                check: "slot",
                expected: format!("an assignment at slot {from}"),
                actual: format!("none (the head is slot {})", head.slot),
            }));
        }
        for record in &page {
            if let Err(fault) = v.push(&record.assignment) {
                return Ok(Err(fault));
            }
        }
        progress(v.next_slot);
    }
    Ok(Ok(v.report()))
}

/// Verifies a whole schedule given in slot order from slot 0.
pub fn verify_chain<'a>(
    pid: Id,
    assignments: impl IntoIterator<Item = &'a Message>,
) -> Result<ChainReport, ChainFault> {
    let mut v = ChainVerifier::new(pid);
    for m in assignments {
        v.push(m)?;
    }
    Ok(v.report())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain_tip::ChainTip;
    use crate::sequencer::Sequencer;
    use hb_message::{msg, NodeKey};

    fn schedule(n: i64) -> (Id, Vec<Message>) {
        let key = NodeKey::from_seed(&[5; 32]);
        let pid = Id::hash(b"p");
        let mut s = Sequencer::new(pid);
        let msgs = (0..n)
            .map(|i| {
                s.assign(msg! { "n" => i }, ChainTip::LOCAL, i)
                    .unwrap()
                    .sign(&key)
                    .unwrap()
                    .message
            })
            .collect();
        (pid, msgs)
    }

    #[test]
    fn an_intact_schedule_verifies() {
        let (pid, msgs) = schedule(5);
        let report = verify_chain(pid, &msgs).unwrap();
        assert_eq!(report.slots, 5);
    }

    #[test]
    fn a_gap_is_reported_at_its_slot() {
        let (pid, mut msgs) = schedule(5);
        msgs.remove(2);
        let fault = verify_chain(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (2, "slot"));
        assert_eq!(fault.actual, "3");
    }

    #[test]
    fn a_tampered_body_breaks_the_signature() {
        let (pid, mut msgs) = schedule(3);
        let mut body = msgs[1].get_message("body").unwrap().clone();
        body.insert("n", 99).unwrap();
        msgs[1].insert("body", body).unwrap();
        let fault = verify_chain(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (1, "signature"));
    }

    #[test]
    fn a_broken_link_is_reported_with_both_values() {
        // Re-sign a reordered schedule: signatures are fine, the chain is not.
        let key = NodeKey::from_seed(&[5; 32]);
        let (pid, msgs) = schedule(3);
        let mut a = Assignment::from_message(msgs[2].clone()).unwrap().message;
        a.remove("commitments");
        a.insert("hash-chain", hash_chain::to_text(&[9; 32]))
            .unwrap();
        let resigned = a.commit(&key, None).unwrap();
        let fault = verify_chain(pid, [&msgs[0], &msgs[1], &resigned]).unwrap_err();
        assert_eq!((fault.slot, fault.check), (2, "hash-chain"));
        assert_eq!(fault.actual, hash_chain::to_text(&[9; 32]));
    }

    #[test]
    fn another_process_is_reported() {
        let (_, msgs) = schedule(1);
        let fault = verify_chain(Id::hash(b"other"), &msgs).unwrap_err();
        assert_eq!(fault.check, "process");
    }
}
