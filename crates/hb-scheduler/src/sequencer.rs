//! The sequencer: the pure state machine at the heart of a scheduler server
//! (SPEC §5.2, §5.3). No runtime, no I/O: given the last slot and chain it
//! fixes the next slot, chain link and timestamp.

use hb_message::{Id, Message};

use crate::ao_assignment::{first_link, AoLink, Variant};
use crate::assignment::{Assignment, AssignmentDraft};
use crate::chain_tip::ChainTip;
use crate::error::SchedulerError;
use crate::hash_chain;

/// Slot and hash-chain state of one process's schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequencer {
    pid: Id,
    /// The last assigned slot; `None` before slot 0.
    current: Option<u64>,
    /// Raw bytes of the last link; empty before slot 0.
    chain: Vec<u8>,
    /// The last timestamp handed out (timestamps strictly increase, SPEC
    /// §10.3: the legacy API pages by timestamp from an exclusive `from`).
    last_timestamp: i64,
    /// The process's variant (from its definition at slot 0).
    variant: Variant,
    /// ao.TN.1 only: the ao chain after the last slot, once its item is
    /// signed ([`Sequencer::signed`]); `None` in between.
    ao: Option<AoLink>,
}

impl Sequencer {
    /// A schedule with no slots yet.
    pub fn new(pid: Id) -> Sequencer {
        Sequencer {
            pid,
            current: None,
            chain: Vec::new(),
            last_timestamp: i64::MIN,
            variant: Variant::N1,
            ao: None,
        }
    }

    /// Resumes after `slot`, whose assignment carries the hash chain `chain`
    /// (the stored `hash-chain` text, base64url-decoded — not the text
    /// itself, which is where HyperBEAM's restart path differs).
    pub fn resume(pid: Id, slot: u64, chain_text: &str) -> Result<Sequencer, SchedulerError> {
        let chain =
            hash_chain::from_text(chain_text).ok_or_else(|| SchedulerError::CorruptSchedule {
                pid: pid.to_human(),
                slot,
                detail: "stored hash-chain is not 32 bytes of base64url".into(),
            })?;
        if i64::try_from(slot).is_err() {
            return Err(SchedulerError::CorruptSchedule {
                pid: pid.to_human(),
                slot,
                detail: "the stored head slot is beyond the assignable range (i64)".into(),
            });
        }
        Ok(Sequencer {
            pid,
            current: Some(slot),
            chain,
            last_timestamp: i64::MIN,
            variant: Variant::N1,
            ao: None,
        })
    }

    /// Resumes the timestamps after `timestamp`, the stored head's: the next
    /// assignment is stamped later than it even if the clock stepped back
    /// across the restart.
    pub fn with_last_timestamp(mut self, timestamp: i64) -> Sequencer {
        self.last_timestamp = timestamp;
        self
    }

    /// Resumes an ao.TN.1 schedule whose head item has ID and link `head`.
    pub fn with_ao_head(mut self, head: AoLink) -> Sequencer {
        self.variant = Variant::TN1;
        self.ao = Some(head);
        self
    }

    /// The process's variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Records the signed assignment of the last slot: for ao.TN.1, its
    /// item's ID is the next link's input. Call after each
    /// [`Sequencer::assign`] once the draft is signed.
    pub fn signed(&mut self, assignment: &Assignment) {
        if let Some(link) = assignment.ao {
            self.ao = Some(link);
        }
    }

    /// The process.
    pub fn pid(&self) -> Id {
        self.pid
    }

    /// The last assigned slot, or −1 before slot 0.
    pub fn current(&self) -> i64 {
        // `resume` and `assign` keep slots within i64.
        self.current
            .map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX))
    }

    /// The slot the next message gets (`None` when the schedule is full:
    /// slots stay within i64, the type clients see).
    pub fn next_slot(&self) -> Option<u64> {
        match self.current {
            None => Some(0),
            Some(s) => s.checked_add(1).filter(|n| i64::try_from(*n).is_ok()),
        }
    }

    /// Raw bytes of the last link (empty before slot 0).
    pub fn chain(&self) -> &[u8] {
        &self.chain
    }

    /// Assigns the next slot to `body` (already restricted to its committed
    /// keys) and advances. The returned draft still has to be signed.
    pub fn assign(
        &mut self,
        body: Message,
        tip: ChainTip,
        now_ms: i64,
    ) -> Result<AssignmentDraft, SchedulerError> {
        let body_id = body.id_all()?;
        let slot = self.next_slot().ok_or_else(|| {
            SchedulerError::invalid(
                crate::error::Check::InvalidSlot,
                format!(
                    "the schedule of {} has no slot after {}",
                    self.pid,
                    self.current()
                ),
            )
        })?;
        let chain = hash_chain::next_link(&self.chain, &body_id);
        // Slot 0 is the definition, which names the variant.
        let variant = if slot == 0 {
            crate::ao_assignment::Variant::of(&body)
        } else {
            self.variant
        };
        let ao_chain = match (variant, slot, self.ao.take()) {
            (Variant::N1, _, _) => None,
            (Variant::TN1, 0, _) => Some(first_link(&self.pid)),
            (Variant::TN1, _, Some(previous)) => Some(previous.next()),
            (Variant::TN1, _, None) => {
                return Err(SchedulerError::CorruptSchedule {
                    pid: self.pid.to_human(),
                    slot,
                    detail: "the previous ao.TN.1 assignment was not signed".into(),
                })
            }
        };
        // Strictly increasing: a tie, or a clock that steps back, takes the
        // previous timestamp + 1 ms.
        let timestamp = now_ms.max(self.last_timestamp.saturating_add(1));
        self.current = Some(slot);
        self.chain = chain.to_vec();
        self.last_timestamp = timestamp;
        self.variant = variant;
        Ok(AssignmentDraft {
            ao_chain,
            pid: self.pid,
            slot,
            chain,
            tip,
            timestamp,
            body,
            body_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::msg;

    fn seq() -> Sequencer {
        Sequencer::new(Id::hash(b"process"))
    }

    #[test]
    fn the_last_slot_is_i64_max_and_there_is_none_after_it() {
        let pid = Id::hash(b"process");
        let link = crate::hash_chain::to_text(&[1; 32]);
        let mut s = Sequencer::resume(pid, i64::MAX as u64 - 1, &link).unwrap();
        assert_eq!(
            s.assign(msg! {}, ChainTip::LOCAL, 1).unwrap().slot,
            i64::MAX as u64
        );
        assert_eq!(s.current(), i64::MAX);
        assert!(s.next_slot().is_none());
        let err = s.assign(msg! {}, ChainTip::LOCAL, 1).unwrap_err();
        assert!(matches!(err, SchedulerError::Invalid { .. }), "{err}");
        // A stored head beyond i64 is corrupt, not wrapped.
        let err = Sequencer::resume(pid, u64::MAX, &link).unwrap_err();
        assert!(
            matches!(err, SchedulerError::CorruptSchedule { slot: u64::MAX, .. }),
            "{err}"
        );
    }

    #[test]
    fn slots_start_at_zero_and_increase_without_gaps() {
        let mut s = seq();
        assert_eq!(s.current(), -1);
        for expected in 0..5u64 {
            let d = s
                .assign(msg! { "n" => expected as i64 }, ChainTip::LOCAL, 1)
                .unwrap();
            assert_eq!(d.slot, expected);
            assert_eq!(s.current(), expected as i64);
        }
    }

    #[test]
    fn the_chain_links_each_body_id_to_the_previous_link() {
        let mut s = seq();
        let a = s.assign(msg! { "n" => 1 }, ChainTip::LOCAL, 1).unwrap();
        let b = s.assign(msg! { "n" => 2 }, ChainTip::LOCAL, 1).unwrap();
        assert_eq!(a.chain, hash_chain::next_link(&[], &a.body_id));
        assert_eq!(b.chain, hash_chain::next_link(&a.chain, &b.body_id));
        assert_eq!(s.chain(), b.chain.as_slice());
    }

    #[test]
    fn timestamps_strictly_increase_even_when_the_clock_steps_back() {
        let mut s = seq();
        let mut stamp = |now| {
            s.assign(msg! { "n" => now }, ChainTip::LOCAL, now)
                .unwrap()
                .timestamp
        };
        assert_eq!(stamp(100), 100);
        assert_eq!(stamp(100), 101, "a tie takes the previous + 1 ms");
        assert_eq!(stamp(50), 102, "so does a clock that steps back");
        assert_eq!(stamp(150), 150);
    }

    #[test]
    fn a_resumed_sequencer_stamps_later_than_the_stored_head() {
        let pid = Id::hash(b"p");
        let link = hash_chain::to_text(&[1; 32]);
        let mut s = Sequencer::resume(pid, 3, &link)
            .unwrap()
            .with_last_timestamp(500);
        let d = s.assign(msg! { "n" => 4 }, ChainTip::LOCAL, 400).unwrap();
        assert_eq!(d.timestamp, 501);
    }

    #[test]
    fn an_ao_tn1_schedule_links_each_item_and_needs_it_signed() {
        use crate::ao_assignment::{first_link, AoLink, Variant};
        let key = hb_message::NodeKey::from_seed(&[2; 32]);
        let def = msg! { "type" => "Process", "variant" => "ao.TN.1" };
        let pid = def.id_all().unwrap();
        let mut s = Sequencer::new(pid);
        let d0 = s.assign(def, ChainTip::LOCAL, 1).unwrap();
        assert_eq!(s.variant(), Variant::TN1);
        assert_eq!(d0.ao_chain, Some(first_link(&pid)));
        let a0 = d0.sign(&key).unwrap();
        let link0 = a0.ao.expect("a TN.1 assignment carries its item");
        // Before slot 0's item is recorded, slot 1 cannot be linked.
        let mut unsigned = s.clone();
        assert!(matches!(
            unsigned.assign(msg! { "n" => 1 }, ChainTip::LOCAL, 1),
            Err(SchedulerError::CorruptSchedule { slot: 1, .. })
        ));
        s.signed(&a0);
        let d1 = s.assign(msg! { "n" => 1 }, ChainTip::LOCAL, 1).unwrap();
        assert_eq!(d1.ao_chain, Some(link0.next()));
        // A resumed sequencer links the same way.
        let mut resumed = Sequencer::resume(pid, 0, &hash_chain::to_text(&a0.chain))
            .unwrap()
            .with_ao_head(AoLink {
                id: link0.id,
                link: link0.link,
            });
        let r1 = resumed
            .assign(msg! { "n" => 1 }, ChainTip::LOCAL, 1)
            .unwrap();
        assert_eq!(r1.ao_chain, d1.ao_chain);
        // hb's own variant carries no ao chain.
        let mut n1 = seq();
        assert_eq!(
            n1.assign(msg! { "n" => 1 }, ChainTip::LOCAL, 1)
                .unwrap()
                .ao_chain,
            None
        );
    }

    #[test]
    fn resuming_continues_the_same_chain() {
        let mut original = seq();
        original
            .assign(msg! { "n" => 1 }, ChainTip::LOCAL, 1)
            .unwrap();
        let last = original
            .assign(msg! { "n" => 2 }, ChainTip::LOCAL, 1)
            .unwrap();
        let mut resumed =
            Sequencer::resume(original.pid(), last.slot, &hash_chain::to_text(&last.chain))
                .unwrap();
        let next_a = original
            .assign(msg! { "n" => 3 }, ChainTip::LOCAL, 1)
            .unwrap();
        let next_b = resumed
            .assign(msg! { "n" => 3 }, ChainTip::LOCAL, 1)
            .unwrap();
        assert_eq!((next_a.slot, next_a.chain), (next_b.slot, next_b.chain));
    }

    #[test]
    fn an_undecodable_stored_chain_is_corrupt() {
        let err = Sequencer::resume(Id::hash(b"p"), 4, "###").unwrap_err();
        assert!(matches!(
            err,
            SchedulerError::CorruptSchedule { slot: 4, .. }
        ));
    }
}
