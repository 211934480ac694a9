//! Assignments: node-signed messages binding one message to one slot of one
//! process (SPEC §5.3).

use hb_message::{Id, Message, MessageError, NodeKey, Value};

use crate::ao_assignment::{self, AoFields, AoLink, AO_ASSIGNMENT};
use crate::chain_tip::ChainTip;
use crate::hash_chain;

/// `data-protocol` of every assignment.
pub const DATA_PROTOCOL: &str = "ao";
/// `variant` of every assignment.
pub const VARIANT: &str = "ao.N.1";
/// `epoch` of every assignment (text, as in HyperBEAM).
pub const EPOCH: &str = "0";

/// Everything that goes into an assignment besides its signature.
#[derive(Clone, Debug)]
pub struct AssignmentDraft {
    /// The process.
    pub pid: Id,
    /// The slot.
    pub slot: u64,
    /// The hash chain after this slot.
    pub chain: [u8; 32],
    /// The chain tip at assignment time.
    pub tip: ChainTip,
    /// Wall-clock milliseconds (never decreasing per process).
    pub timestamp: i64,
    /// The scheduled message (already restricted to its committed keys).
    pub body: Message,
    /// id(body, all).
    pub body_id: Id,
    /// ao.TN.1 only: this slot's `Hash-Chain` under the ao CU's rule; the
    /// signed assignment then also carries the node-signed ANS-104 item.
    pub ao_chain: Option<[u8; 32]>,
}

impl AssignmentDraft {
    /// The unsigned assignment message with every field of SPEC §5.3.
    pub fn to_message(&self) -> Result<Message, MessageError> {
        self.fields(self.body.clone())
    }

    /// The assignment message around `body` (the draft's own, moved or
    /// copied).
    fn fields(&self, body: Message) -> Result<Message, MessageError> {
        let path = match body.get("path") {
            Some(Value::Text(p)) => p.clone(),
            _ => "compute".to_string(),
        };
        Message::new()
            .with("path", path)?
            .with("data-protocol", DATA_PROTOCOL)?
            .with("variant", VARIANT)?
            .with("process", self.pid.to_human())?
            .with("epoch", EPOCH)?
            .with("slot", Value::try_from(self.slot)?)?
            .with("block-height", self.tip.height)?
            .with("block-timestamp", self.tip.timestamp)?
            .with("block-hash", self.tip.hash.to_human())?
            .with("timestamp", self.timestamp)?
            .with("hash-chain", hash_chain::to_text(&self.chain))?
            .with("body", body)
    }

    /// Signs the draft with the node key (`ed25519@1.0`, default committed
    /// keys). This is the expensive step and may run on any thread.
    pub fn sign(mut self, key: &NodeKey) -> Result<Assignment, MessageError> {
        // The body moves into the assignment: no copy of the message.
        let body = std::mem::take(&mut self.body);
        let mut fields = self.fields(body)?;
        let ao = match self.ao_chain {
            Some(hash_chain) => {
                let item = AoFields {
                    pid: self.pid,
                    slot: self.slot,
                    hash_chain,
                    block_height: self.tip.height,
                    timestamp: self.timestamp,
                    message: (self.slot > 0).then_some(self.body_id),
                }
                .sign(key)?;
                fields.insert(AO_ASSIGNMENT, Value::Bytes(item.serialize()))?;
                Some(AoLink {
                    id: item.id_bytes(),
                    link: hash_chain,
                })
            }
            None => None,
        };
        let message = fields.commit(key, None)?;
        let id = message.id_all()?;
        Ok(Assignment {
            pid: self.pid,
            slot: self.slot,
            chain: self.chain,
            body_id: self.body_id,
            id,
            ao,
            message,
        })
    }
}

/// A signed assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The process.
    pub pid: Id,
    /// The slot.
    pub slot: u64,
    /// The hash chain after this slot.
    pub chain: [u8; 32],
    /// id(body, all).
    pub body_id: Id,
    /// id(assignment, all).
    pub id: Id,
    /// ao.TN.1 only: the ANS-104 item's ID (the assignment ID on the legacy
    /// surface) and its `Hash-Chain`.
    pub ao: Option<AoLink>,
    /// The signed assignment message (the body inside).
    pub message: Message,
}

impl Assignment {
    /// Reads the typed fields back from a stored or received assignment
    /// message. Says which field is missing or malformed.
    pub fn from_message(message: Message) -> Result<Assignment, String> {
        let pid = message
            .get_text("process")
            .ok_or("missing `process`")
            .and_then(|p| Id::parse(p).map_err(|_| "`process` is not an ID"))?;
        let slot = message
            .get_int("slot")
            .and_then(|s| u64::try_from(s).ok())
            .ok_or("missing or negative `slot`")?;
        let chain: [u8; 32] = message
            .get_text("hash-chain")
            .and_then(hash_chain::from_text)
            .and_then(|b| b.try_into().ok())
            .ok_or("missing or undecodable `hash-chain`")?;
        let body = message.get_message("body").ok_or("missing `body`")?;
        let body_id = body
            .id_all()
            .map_err(|_| "`body` has malformed commitments")?;
        let id = message
            .id_all()
            .map_err(|_| "assignment has malformed commitments")?;
        let ao = ao_assignment::link_of(&message)
            .transpose()
            .map_err(|_| "`ao-assignment` is not an ao.TN.1 assignment item")?;
        Ok(Assignment {
            pid,
            slot,
            chain,
            body_id,
            id,
            ao,
            message,
        })
    }

    /// The scheduled message.
    pub fn body(&self) -> Option<&Message> {
        self.message.get_message("body")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, IdSelector};

    fn draft() -> AssignmentDraft {
        let body = msg! { "action" => "ping" };
        let body_id = body.id_all().unwrap();
        AssignmentDraft {
            pid: Id::hash(b"pid"),
            slot: 3,
            chain: hash_chain::next_link(&[], &body_id),
            tip: ChainTip::LOCAL,
            timestamp: 1_700_000_000_000,
            body,
            body_id,
            ao_chain: None,
        }
    }

    #[test]
    fn assignments_carry_every_field() {
        let m = draft().to_message().unwrap();
        for key in [
            "path",
            "data-protocol",
            "variant",
            "process",
            "epoch",
            "slot",
            "block-height",
            "block-timestamp",
            "block-hash",
            "timestamp",
            "hash-chain",
            "body",
        ] {
            assert!(m.get(key).is_some(), "{key}");
        }
        assert_eq!(m.get_text("path"), Some("compute"));
        assert_eq!(m.get_text("epoch"), Some("0"));
        assert_eq!(m.get_int("slot"), Some(3));
        assert_eq!(m.get_text("block-hash"), Some("A".repeat(43).as_str()));
    }

    #[test]
    fn the_body_path_becomes_the_assignment_path() {
        let mut d = draft();
        d.body.insert("path", "custom").unwrap();
        assert_eq!(d.to_message().unwrap().get_text("path"), Some("custom"));
    }

    #[test]
    fn signed_assignments_verify_and_parse_back() {
        let key = NodeKey::from_seed(&[4; 32]);
        let a = draft().sign(&key).unwrap();
        assert!(a.message.verify(&IdSelector::All).unwrap().is_valid());
        assert_eq!(
            a.message.committers().unwrap(),
            vec![key.address().to_string()]
        );
        // Signing moves the body in: the same message as signing a copy.
        assert_eq!(a.body(), Some(&draft().body));
        assert_eq!(
            a.message,
            draft().to_message().unwrap().commit(&key, None).unwrap()
        );
        let back = Assignment::from_message(a.message.clone()).unwrap();
        assert_eq!(back, a);
        let mut broken = a.message.clone();
        broken.remove("hash-chain");
        assert!(Assignment::from_message(broken).is_err());
    }
}
