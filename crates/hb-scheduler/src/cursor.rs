//! `Cursor`: where `next` (SPEC §5.6.6) stands in a schedule, kept in the
//! state's `priv/scheduler@1.0`: the last slot consumed, its chain link,
//! and a look-ahead of the assignments that follow. Each step checks the
//! assignment with one [`ChainVerifier`] (slot, link, and under
//! `paranoid_verify` signature and signer). Plain data; the device fetches
//! from the store when the look-ahead is empty.

use std::collections::VecDeque;

use hb_message::{Id, Message, MessageError, Value};

use crate::assignment::Assignment;
use crate::error::{Check, SchedulerError};
use crate::hash_chain;
use crate::verify_chain::ChainVerifier;

/// How many assignments after the one asked for `next` prefetches.
pub const LOOKAHEAD: u64 = 16;

/// A process's position in its schedule, as `next` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pid: Id,
    /// The last slot applied (the state's `at-slot`), −1 before slot 0.
    at: i64,
    /// The chain link after `at`, when known.
    link: Option<Vec<u8>>,
    /// Assignments after `at`, in slot order.
    lookahead: VecDeque<Message>,
}

impl Cursor {
    /// The cursor of a state at `at_slot`, from its private memo (the
    /// `priv/scheduler@1.0` message; absent or stale parts are ignored).
    pub fn from_state(
        pid: Id,
        at_slot: i64,
        memo: Option<&Message>,
    ) -> Result<Cursor, SchedulerError> {
        if at_slot < -1 {
            return Err(SchedulerError::invalid(
                Check::InvalidSlot,
                format!("at-slot {at_slot} is not ≥ -1"),
            ));
        }
        let memo_is_current = memo.is_some_and(|m| m.get_int("slot") == Some(at_slot));
        let link = if at_slot == -1 {
            Some(Vec::new())
        } else if memo_is_current {
            memo.and_then(|m| m.get_text("hash-chain"))
                .and_then(hash_chain::from_text)
        } else {
            None
        };
        let lookahead = memo
            .filter(|_| memo_is_current || at_slot == -1)
            .and_then(|m| m.get("lookahead"))
            .and_then(Value::as_list)
            .map(|l| l.iter().filter_map(Value::as_message).cloned().collect())
            .unwrap_or_default();
        Ok(Cursor {
            pid,
            at: at_slot,
            link,
            lookahead,
        })
    }

    /// The slot `next` asks for: `at-slot + 1`, checked.
    pub fn wanted(&self) -> Result<u64, SchedulerError> {
        self.at
            .checked_add(1)
            .and_then(|w| u64::try_from(w).ok())
            .ok_or_else(|| {
                SchedulerError::invalid(
                    Check::InvalidSlot,
                    format!("at-slot {} has no next slot", self.at),
                )
            })
    }

    /// The last slot to prefetch with a store read for `wanted`, saturating.
    pub fn prefetch_to(&self) -> Result<u64, SchedulerError> {
        Ok(self.wanted()?.saturating_add(LOOKAHEAD))
    }

    /// Whether the chain link of the last applied slot is known.
    pub fn knows_link(&self) -> bool {
        self.link.is_some()
    }

    /// Supplies the link of the last applied slot (read from the store).
    pub fn set_link(&mut self, link: Option<Vec<u8>>) {
        if self.link.is_none() {
            self.link = link;
        }
    }

    /// The look-ahead's assignment for the wanted slot, if it holds it.
    pub fn take_ahead(&mut self) -> Option<Message> {
        let wanted = i64::try_from(self.wanted().ok()?).ok()?;
        match self.lookahead.front().and_then(|m| m.get_int("slot")) {
            Some(slot) if slot == wanted => self.lookahead.pop_front(),
            _ => {
                // Stale or out of order: refetch from the store.
                self.lookahead.clear();
                None
            }
        }
    }

    /// Replaces the look-ahead with assignments read from the store.
    pub fn refill(&mut self, following: impl IntoIterator<Item = Message>) {
        self.lookahead = following.into_iter().collect();
    }

    /// Checks `assignment` as the wanted slot (slot, chain link, and with
    /// `signer` its signature and signer) and moves past it.
    pub fn advance(
        &mut self,
        assignment: &Message,
        signer: Option<String>,
    ) -> Result<Assignment, SchedulerError> {
        let wanted = self.wanted()?;
        let mut verifier = ChainVerifier::resume(self.pid, wanted, self.link.clone(), signer);
        let parsed = verifier
            .push(assignment)
            .map_err(|fault| match fault.check {
                "slot" => SchedulerError::ScheduleInconsistent {
                    pid: self.pid.to_human(),
                    expected: wanted,
                    found: assignment.get_int("slot").unwrap_or(-1),
                },
                "hash-chain" => SchedulerError::HashChainMismatch {
                    pid: self.pid.to_human(),
                    slot: wanted,
                },
                "signature" | "wrong-signer" => SchedulerError::invalid(
                    Check::InvalidSignature,
                    format!("the assignment of slot {wanted}: {fault}"),
                ),
                _ => SchedulerError::CorruptSchedule {
                    pid: self.pid.to_human(),
                    slot: wanted,
                    detail: fault.to_string(),
                },
            })?;
        self.at = i64::try_from(wanted).map_err(|_| {
            SchedulerError::invalid(Check::InvalidSlot, format!("slot {wanted} is too large"))
        })?;
        self.link = Some(parsed.chain.to_vec());
        Ok(parsed)
    }

    /// The private memo to keep in the state.
    pub fn to_memo(&self) -> Result<Message, MessageError> {
        let mut memo = Message::new().with("slot", self.at)?;
        if let Some(link) = &self.link {
            memo.insert("hash-chain", hash_chain::to_text(link))?;
        }
        memo.insert(
            "lookahead",
            Value::List(self.lookahead.iter().cloned().map(Value::Message).collect()),
        )?;
        Ok(memo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, ErrorCode, NodeKey};

    fn schedule(n: i64) -> (Id, Vec<Message>, NodeKey) {
        let key = NodeKey::from_seed(&[3; 32]);
        let (pid, msgs) = crate::verify_chain::schedule_of(n, &key, &key);
        (pid, msgs, key)
    }

    #[test]
    fn a_cursor_walks_a_schedule_and_survives_its_memo() {
        let (pid, msgs, key) = schedule(4);
        let mut c = Cursor::from_state(pid, -1, None).unwrap();
        c.refill(msgs.iter().cloned());
        for (slot, m) in msgs.iter().enumerate() {
            assert_eq!(c.wanted().unwrap(), slot as u64);
            let ahead = c.take_ahead().expect("the look-ahead holds it");
            assert_eq!(&ahead, m);
            c.advance(&ahead, Some(key.address().to_string())).unwrap();
            let memo = c.to_memo().unwrap();
            c = Cursor::from_state(pid, slot as i64, Some(&memo)).unwrap();
        }
        assert_eq!(c.wanted().unwrap(), 4);
    }

    #[test]
    fn a_broken_link_and_a_wrong_slot_are_typed() {
        let (pid, msgs, _) = schedule(3);
        let mut c = Cursor::from_state(pid, -1, None).unwrap();
        c.advance(&msgs[0], None).unwrap();
        let err = c.advance(&msgs[2], None).unwrap_err();
        assert_eq!(err.code(), "schedule-inconsistent");
        // Slot 1 read after a memo whose link is another one.
        let memo = msg! { "slot" => 0, "hash-chain" => hash_chain::to_text(&[7; 32]) };
        let mut c = Cursor::from_state(pid, 0, Some(&memo)).unwrap();
        let err = c.advance(&msgs[1], None).unwrap_err();
        assert!(
            matches!(err, SchedulerError::HashChainMismatch { slot: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_forged_signer_is_refused_under_paranoid_checks() {
        let (pid, msgs, _) = schedule(2);
        let mut c = Cursor::from_state(pid, -1, None).unwrap();
        let forger = NodeKey::from_seed(&[4; 32]).address().to_string();
        let err = c.advance(&msgs[0], Some(forger)).unwrap_err();
        assert_eq!(err.code(), "invalid-signature");
    }

    #[test]
    fn slot_arithmetic_at_the_limits_is_an_error_not_a_wrap() {
        let pid = Id::hash(b"p");
        let c = Cursor::from_state(pid, i64::MAX, None).unwrap();
        assert_eq!(c.wanted().unwrap_err().code(), "invalid-slot");
        assert_eq!(
            Cursor::from_state(pid, -2, None).unwrap_err().code(),
            "invalid-slot"
        );
        let c = Cursor::from_state(pid, i64::MAX - 1, None).unwrap();
        assert_eq!(c.wanted().unwrap(), i64::MAX as u64);
        assert_eq!(c.prefetch_to().unwrap(), i64::MAX as u64 + LOOKAHEAD);
    }
}
