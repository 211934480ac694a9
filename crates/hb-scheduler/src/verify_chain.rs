//! The operators' chain verifier (SPEC §5.7): checks a stored schedule from
//! slot 0 — every assignment's slot, signature, signer and hash chain — and
//! reports the first fault precisely.
//!
//! **Who signed matters:** every assignment must be committed by the
//! expected scheduler, given by the operator or else named by the process
//! definition at slot 0, and by no other key; otherwise a whole schedule
//! re-signed by a forger would pass.

use std::fmt;

use hb_message::{Id, IdSelector, Message};

use crate::ao_assignment::{self, first_link, AoFields, AoLink, Variant};
use crate::assignment::Assignment;
use crate::definition::{is_process, scheduler_of};
use crate::hash_chain;

/// The first fault found in a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFault {
    /// The slot at which checking stopped.
    pub slot: u64,
    /// The failed check: `malformed`, `process`, `slot`, `definition`,
    /// `signature`, `wrong-signer` or `hash-chain`; for ao.TN.1 processes
    /// also `ao-assignment` (the item is missing or says something other
    /// than its assignment), `ao-signature`, `ao-hash-chain` (the ao CU's
    /// rule, SPEC §10.3) and `timestamp` (not strictly increasing).
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
    /// The scheduler address every assignment was committed by.
    pub signer: Option<String>,
}

/// Whose commitments the assignments must carry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ExpectedSigner {
    /// The address in the `scheduler` (else `scheduler-location`) of the
    /// process definition at slot 0, without any `?hint=`.
    #[default]
    FromDefinition,
    /// An address given by the operator.
    Address(String),
}

/// Incremental verifier: feed assignments in slot order.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    pid: Id,
    next_slot: u64,
    /// The link after the previous slot; `None` when unknown (a cursor
    /// resumed without it), which skips one chain check.
    chain: Option<Vec<u8>>,
    expected: ExpectedSigner,
    /// The resolved signer address.
    signer: Option<String>,
    check_signatures: bool,
    /// The variant, once slot 0 was seen (`None` when resumed past it:
    /// the ao.TN.1 checks are then skipped).
    variant: Option<Variant>,
    /// ao.TN.1: the previous slot's item ID and link.
    ao: Option<AoLink>,
    /// ao.TN.1: the previous slot's timestamp.
    last_timestamp: Option<i64>,
}

impl ChainVerifier {
    /// A verifier for the schedule of `pid` from slot 0, checking every
    /// signature and its signer.
    pub fn new(pid: Id, expected: ExpectedSigner) -> ChainVerifier {
        let signer = match &expected {
            ExpectedSigner::Address(a) => Some(a.clone()),
            ExpectedSigner::FromDefinition => None,
        };
        ChainVerifier {
            pid,
            next_slot: 0,
            chain: Some(Vec::new()),
            expected,
            signer,
            check_signatures: true,
            variant: None,
            ao: None,
            last_timestamp: None,
        }
    }

    /// A verifier that resumes at `next_slot`, after the chain link
    /// `previous` (`None`: unknown, so the next link is not checked). With
    /// `signer` set, signatures and their signer are checked too; without,
    /// only slots and links (what `next` does unless `paranoid_verify`).
    pub fn resume(
        pid: Id,
        next_slot: u64,
        previous: Option<Vec<u8>>,
        signer: Option<String>,
    ) -> ChainVerifier {
        let check_signatures = signer.is_some();
        ChainVerifier {
            pid,
            next_slot,
            chain: if next_slot == 0 {
                Some(Vec::new())
            } else {
                previous
            },
            expected: ExpectedSigner::Address(signer.clone().unwrap_or_default()),
            signer,
            check_signatures,
            variant: None,
            ao: None,
            last_timestamp: None,
        }
    }

    /// The slot the next assignment must carry.
    pub fn next_slot(&self) -> u64 {
        self.next_slot
    }

    /// Checks the next assignment, and returns it parsed.
    pub fn push(&mut self, message: &Message) -> Result<Assignment, ChainFault> {
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
        if slot == 0 && self.expected == ExpectedSigner::FromDefinition {
            let named = a
                .body()
                .filter(|b| is_process(b))
                .ok_or_else(|| {
                    fault(
                        "definition",
                        "the process definition at slot 0".into(),
                        "a message that is not a Process".into(),
                    )
                })
                .and_then(|b| {
                    scheduler_of(b).map_err(|e| {
                        fault(
                            "definition",
                            "a definition naming its scheduler".into(),
                            e.to_string(),
                        )
                    })
                })?;
            self.signer = Some(named.address);
        }
        if self.check_signatures {
            self.check_signature(message, &fault)?;
        }
        if let Some(previous) = &self.chain {
            let expected = hash_chain::next_link(previous, &a.body_id);
            if expected != a.chain {
                return Err(fault(
                    "hash-chain",
                    hash_chain::to_text(&expected),
                    hash_chain::to_text(&a.chain),
                ));
            }
        }
        if slot == 0 {
            self.variant = Some(a.body().map(Variant::of).unwrap_or_default());
        }
        if self.variant == Some(Variant::TN1) {
            self.check_ao(&a, &fault)?;
        }
        self.chain = Some(a.chain.to_vec());
        self.next_slot = slot
            .checked_add(1)
            .ok_or_else(|| fault("slot", "a slot below 2^64 - 1".into(), slot.to_string()))?;
        Ok(a)
    }

    fn check_signature(
        &self,
        message: &Message,
        fault: &dyn Fn(&'static str, String, String) -> ChainFault,
    ) -> Result<(), ChainFault> {
        if !message.is_signed() {
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
        let committers = message
            .committers()
            .map_err(|e| fault("signature", "readable commitments".into(), e.to_string()))?;
        let expected = self.signer.clone().unwrap_or_default();
        if committers.iter().any(|c| *c != expected) || !committers.contains(&expected) {
            return Err(fault("wrong-signer", expected, committers.join(", ")));
        }
        Ok(())
    }

    /// The ao.TN.1 checks (SPEC §10.3): the carried item names this very
    /// assignment, is signed by the scheduler, links by the ao CU's rule,
    /// and timestamps strictly increase.
    fn check_ao(
        &mut self,
        a: &Assignment,
        fault: &dyn Fn(&'static str, String, String) -> ChainFault,
    ) -> Result<(), ChainFault> {
        let expect = || "an ao.TN.1 assignment item".to_string();
        let item = match ao_assignment::item_of(&a.message) {
            None => return Err(fault("ao-assignment", expect(), "none".into())),
            Some(Err(e)) => return Err(fault("ao-assignment", expect(), e)),
            Some(Ok(item)) => item,
        };
        let f = AoFields::read(&item).map_err(|e| fault("ao-assignment", expect(), e))?;
        let timestamp = a.message.get_int("timestamp");
        let height = a.message.get_int("block-height");
        let message = (a.slot > 0).then_some(a.body_id);
        let mismatch = [
            ("Process", f.pid != a.pid),
            ("Nonce", f.slot != a.slot),
            ("Message", f.message != message),
            ("Timestamp", Some(f.timestamp) != timestamp),
            ("Block-Height", Some(f.block_height) != height),
        ]
        .into_iter()
        .find(|(_, differs)| *differs);
        if let Some((tag, _)) = mismatch {
            return Err(fault(
                "ao-assignment",
                format!("{tag} as in the assignment"),
                format!("a different {tag}"),
            ));
        }
        if self.check_signatures {
            if let Err(e) = item.verify() {
                return Err(fault(
                    "ao-signature",
                    "a valid type-2 signature".into(),
                    e.to_string(),
                ));
            }
            let expected = self.signer.clone().unwrap_or_default();
            if item.owner_address() != expected {
                return Err(fault("wrong-signer", expected, item.owner_address()));
            }
        }
        let expected_link = match (a.slot, &self.ao) {
            (0, _) => Some(first_link(&a.pid)),
            (_, Some(previous)) => Some(previous.next()),
            (_, None) => None,
        };
        if let Some(expected_link) = expected_link {
            if expected_link != f.hash_chain {
                return Err(fault(
                    "ao-hash-chain",
                    hb_message::human(&expected_link),
                    hb_message::human(&f.hash_chain),
                ));
            }
        }
        if let Some(previous) = self.last_timestamp {
            if f.timestamp <= previous {
                return Err(fault(
                    "timestamp",
                    format!("later than {previous}"),
                    f.timestamp.to_string(),
                ));
            }
        }
        self.last_timestamp = Some(f.timestamp);
        self.ao = Some(AoLink {
            id: item.id_bytes(),
            link: f.hash_chain,
        });
        Ok(())
    }

    /// The report so far.
    pub fn report(&self) -> ChainReport {
        ChainReport {
            slots: self.next_slot,
            head: self.chain.clone().unwrap_or_default(),
            signer: self.signer.clone(),
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
    expected: ExpectedSigner,
    mut progress: impl FnMut(u64),
) -> Result<Result<ChainReport, ChainFault>, hb_store::StoreError> {
    let cache = hb_store::SchedulerCache::new(store);
    let Some(head) = cache.latest(&pid)? else {
        return Ok(Ok(ChainReport {
            slots: 0,
            head: Vec::new(),
            signer: None,
        }));
    };
    let mut v = ChainVerifier::new(pid, expected);
    while v.next_slot <= head.slot {
        let from = v.next_slot;
        // Messages stay packed until checked: one decoded at a time.
        let page = cache.range_stored(&pid, from, from.saturating_add(PAGE - 1).min(head.slot))?;
        if page.is_empty() {
            return Ok(Err(ChainFault {
                slot: from,
                check: "slot",
                expected: format!("an assignment at slot {from}"),
                actual: format!("none (the head is slot {})", head.slot),
            }));
        }
        for record in &page {
            if let Err(fault) = v.push(&record.message()?) {
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
    expected: ExpectedSigner,
    assignments: impl IntoIterator<Item = &'a Message>,
) -> Result<ChainReport, ChainFault> {
    let mut v = ChainVerifier::new(pid, expected);
    for m in assignments {
        v.push(m)?;
    }
    Ok(v.report())
}

/// A schedule for unit tests: `n` slots, the definition at slot 0 naming
/// `named` as its scheduler, every assignment signed by `signer`.
#[cfg(test)]
pub(crate) fn schedule_of(
    n: i64,
    named: &hb_message::NodeKey,
    signer: &hb_message::NodeKey,
) -> (Id, Vec<Message>) {
    use crate::chain_tip::ChainTip;
    use crate::sequencer::Sequencer;
    use hb_message::msg;
    let def = msg! { "type" => "Process", "scheduler" => named.address() };
    let pid = def.id_all().expect("a literal message has an ID");
    let mut s = Sequencer::new(pid);
    let msgs = (0..n)
        .map(|i| {
            let body = if i == 0 {
                def.clone()
            } else {
                msg! { "n" => i }
            };
            s.assign(body, ChainTip::LOCAL, i)
                .and_then(|d| Ok(d.sign(signer)?))
                .expect("assign and sign")
                .message
        })
        .collect();
    (pid, msgs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain_tip::ChainTip;
    use crate::sequencer::Sequencer;
    use hb_message::{msg, NodeKey};

    fn key() -> NodeKey {
        NodeKey::from_seed(&[5; 32])
    }

    fn schedule_signed_by(n: i64, signer: &NodeKey) -> (Id, Vec<Message>) {
        schedule_of(n, &key(), signer)
    }

    fn schedule(n: i64) -> (Id, Vec<Message>) {
        schedule_signed_by(n, &key())
    }

    fn verify(pid: Id, msgs: &[Message]) -> Result<ChainReport, ChainFault> {
        verify_chain(pid, ExpectedSigner::FromDefinition, msgs)
    }

    #[test]
    fn an_intact_schedule_verifies() {
        let (pid, msgs) = schedule(5);
        let report = verify(pid, &msgs).unwrap();
        assert_eq!(report.slots, 5);
        assert_eq!(report.signer.as_deref(), Some(key().address()));
    }

    #[test]
    fn a_schedule_resigned_by_another_key_is_a_wrong_signer_fault() {
        // Every signature is valid, every link follows: only who signed is wrong.
        let forger = NodeKey::from_seed(&[6; 32]);
        let (pid, msgs) = schedule_signed_by(4, &forger);
        let fault = verify(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (0, "wrong-signer"));
        assert_eq!(fault.expected, key().address());
        assert_eq!(fault.actual, forger.address());
        // The operator may name the signer, and then it passes…
        let named = ExpectedSigner::Address(forger.address().to_string());
        assert_eq!(verify_chain(pid, named, &msgs).unwrap().slots, 4);
        // …and an honest schedule against another named signer fails.
        let (pid, honest) = schedule(2);
        let other = ExpectedSigner::Address(forger.address().to_string());
        assert_eq!(
            verify_chain(pid, other, &honest).unwrap_err().check,
            "wrong-signer"
        );
    }

    #[test]
    fn a_second_commitment_by_another_key_is_a_wrong_signer_fault() {
        let (pid, mut msgs) = schedule(3);
        let extra = msgs[2]
            .clone()
            .commit(&NodeKey::from_seed(&[9; 32]), None)
            .unwrap();
        msgs[2] = extra;
        let fault = verify(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (2, "wrong-signer"));
    }

    #[test]
    fn slot_zero_must_be_a_definition_naming_the_scheduler() {
        let pid = Id::hash(b"p");
        let mut s = Sequencer::new(pid);
        let a = s
            .assign(msg! { "n" => 0 }, ChainTip::LOCAL, 0)
            .unwrap()
            .sign(&key())
            .unwrap();
        let fault = verify(pid, &[a.message]).unwrap_err();
        assert_eq!((fault.slot, fault.check), (0, "definition"));
    }

    #[test]
    fn a_gap_is_reported_at_its_slot() {
        let (pid, mut msgs) = schedule(5);
        msgs.remove(2);
        let fault = verify(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (2, "slot"));
        assert_eq!(fault.actual, "3");
    }

    #[test]
    fn a_tampered_body_breaks_the_signature() {
        let (pid, mut msgs) = schedule(3);
        let mut body = msgs[1].get_message("body").unwrap().clone();
        body.insert("n", 99).unwrap();
        msgs[1].insert("body", body).unwrap();
        let fault = verify(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (1, "signature"));
    }

    #[test]
    fn a_broken_link_is_reported_with_both_values() {
        // Re-sign a reordered schedule: signatures are fine, the chain is not.
        let key = key();
        let (pid, msgs) = schedule(3);
        let mut a = Assignment::from_message(msgs[2].clone()).unwrap().message;
        a.remove("commitments");
        a.insert("hash-chain", hash_chain::to_text(&[9; 32]))
            .unwrap();
        let resigned = a.commit(&key, None).unwrap();
        let fault = verify_chain(
            pid,
            ExpectedSigner::FromDefinition,
            [&msgs[0], &msgs[1], &resigned],
        )
        .unwrap_err();
        assert_eq!((fault.slot, fault.check), (2, "hash-chain"));
        assert_eq!(fault.actual, hash_chain::to_text(&[9; 32]));
    }

    #[test]
    fn another_process_is_reported() {
        let (_, msgs) = schedule(1);
        let fault = verify(Id::hash(b"other"), &msgs).unwrap_err();
        assert_eq!(fault.check, "process");
    }

    /// An ao.TN.1 schedule of `n` slots whose clock never moves (so every
    /// timestamp comes from the strictly-increasing rule).
    fn tn1_schedule(n: i64) -> (Id, Vec<Message>) {
        let def =
            msg! { "type" => "Process", "scheduler" => key().address(), "variant" => "ao.TN.1" };
        let pid = def.id_all().unwrap();
        let mut s = Sequencer::new(pid);
        let msgs = (0..n)
            .map(|i| {
                let body = if i == 0 {
                    def.clone()
                } else {
                    msg! { "n" => i }
                };
                let a = s
                    .assign(body, ChainTip::LOCAL, 1_000)
                    .unwrap()
                    .sign(&key())
                    .unwrap();
                s.signed(&a);
                a.message
            })
            .collect();
        (pid, msgs)
    }

    /// Replaces slot `i`'s item by `edit(fields)` signed by `item_key`, and
    /// re-signs the assignment, so only the ao checks can see it.
    fn reissue(
        msgs: &mut [Message],
        i: usize,
        item_key: &NodeKey,
        edit: impl FnOnce(&mut AoFields),
    ) {
        let item = ao_assignment::item_of(&msgs[i]).unwrap().unwrap();
        let mut f = AoFields::read(&item).unwrap();
        edit(&mut f);
        let mut m = msgs[i].clone();
        m.remove(hb_message::COMMITMENTS);
        m.insert(
            ao_assignment::AO_ASSIGNMENT,
            hb_message::Value::Bytes(f.sign(item_key).unwrap().serialize()),
        )
        .unwrap();
        msgs[i] = m.commit(&key(), None).unwrap();
    }

    #[test]
    fn an_ao_tn1_schedule_verifies_under_both_chains() {
        let (pid, msgs) = tn1_schedule(6);
        assert_eq!(verify(pid, &msgs).unwrap().slots, 6);
        // Each item links by the CU's rule and stamps strictly later.
        let items: Vec<_> = msgs
            .iter()
            .map(|m| ao_assignment::item_of(m).unwrap().unwrap())
            .collect();
        let fields: Vec<_> = items.iter().map(|i| AoFields::read(i).unwrap()).collect();
        assert_eq!(fields[0].hash_chain, first_link(&pid));
        assert_eq!(fields[0].message, None);
        for w in 1..items.len() {
            let expected =
                ao_assignment::next_link(&items[w - 1].id_bytes(), &fields[w - 1].hash_chain);
            assert_eq!(fields[w].hash_chain, expected);
            assert_eq!(fields[w].timestamp, fields[w - 1].timestamp + 1);
        }
    }

    #[test]
    fn a_broken_ao_link_is_an_ao_hash_chain_fault() {
        let (pid, mut msgs) = tn1_schedule(4);
        reissue(&mut msgs, 2, &key(), |f| f.hash_chain = [9; 32]);
        let fault = verify(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (2, "ao-hash-chain"));
    }

    #[test]
    fn an_item_naming_another_message_or_time_is_an_ao_assignment_fault() {
        let (pid, mut msgs) = tn1_schedule(4);
        reissue(&mut msgs, 1, &key(), |f| {
            f.message = Some(Id::hash(b"other"))
        });
        let fault = verify(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (1, "ao-assignment"));
        let (pid, mut msgs) = tn1_schedule(4);
        reissue(&mut msgs, 3, &key(), |f| f.timestamp += 5);
        assert_eq!(verify(pid, &msgs).unwrap_err().check, "ao-assignment");
    }

    #[test]
    fn an_item_signed_by_another_key_is_a_wrong_signer_fault() {
        let (pid, mut msgs) = tn1_schedule(3);
        reissue(&mut msgs, 1, &NodeKey::from_seed(&[8; 32]), |_| {});
        let fault = verify(pid, &msgs).unwrap_err();
        assert_eq!((fault.slot, fault.check), (1, "wrong-signer"));
    }

    #[test]
    fn a_tn1_assignment_without_its_item_is_an_ao_assignment_fault() {
        let (pid, mut msgs) = tn1_schedule(3);
        let mut m = msgs[2].clone();
        m.remove(hb_message::COMMITMENTS);
        m.remove(ao_assignment::AO_ASSIGNMENT);
        msgs[2] = m.commit(&key(), None).unwrap();
        let fault = verify(pid, &msgs).unwrap_err();
        assert_eq!(
            (fault.slot, fault.check, fault.actual.as_str()),
            (2, "ao-assignment", "none")
        );
    }
}
