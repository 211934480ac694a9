//! ao.TN.1 assignments (SPEC §10.3): for a process whose definition says
//! `variant: "ao.TN.1"`, every assignment is in addition an ANS-104 item
//! signed by the node key as type 2, with the ao scheduler unit's tags in
//! its order and the ao compute unit's hash chain. Pure: building, signing
//! and checking such items; the sequencer carries the chain, the signed
//! hb assignment carries the raw item under [`AO_ASSIGNMENT`] (so it is
//! stored, replicated and backed up with the assignment, and covered by
//! its ed25519 commitment).

use hb_ans104::{DataItem, Tag};
use hb_message::{Id, Message, MessageError, NodeKey, UnsignedItem, Value};
use sha2::{Digest, Sha256};

/// The `variant` of a legacy (ao testnet) process.
pub const TN1: &str = "ao.TN.1";

/// The key of an hb assignment that holds its ao.TN.1 item's raw bytes.
pub const AO_ASSIGNMENT: &str = "ao-assignment";

/// The two process variants (SPEC §10.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Variant {
    /// hb's own (`ao.N.1`, and any definition without `variant: ao.TN.1`).
    #[default]
    N1,
    /// The ao testnet's legacy variant.
    TN1,
}

impl Variant {
    /// The variant a process definition names.
    pub fn of(definition: &Message) -> Variant {
        match definition.get_text("variant") {
            Some(TN1) => Variant::TN1,
            _ => Variant::N1,
        }
    }
}

/// The ao CU's first link: sha256(raw(pid)).
pub fn first_link(pid: &Id) -> [u8; 32] {
    Sha256::digest(pid.as_bytes()).into()
}

/// The ao CU's next link: sha256(raw(previous assignment ID) ‖
/// raw(previous link)).
pub fn next_link(previous_id: &[u8; 32], previous_link: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous_id);
    h.update(previous_link);
    h.finalize().into()
}

/// Where the ao chain stands after a slot: that slot's item ID and link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AoLink {
    /// The assignment item's ID (raw).
    pub id: [u8; 32],
    /// Its `Hash-Chain` (raw).
    pub link: [u8; 32],
}

impl AoLink {
    /// The `Hash-Chain` of the slot after this one.
    pub fn next(&self) -> [u8; 32] {
        next_link(&self.id, &self.link)
    }
}

/// Everything an ao.TN.1 assignment item says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AoFields {
    /// The process.
    pub pid: Id,
    /// The slot (`Nonce`).
    pub slot: u64,
    /// `Hash-Chain` (raw).
    pub hash_chain: [u8; 32],
    /// `Block-Height`.
    pub block_height: i64,
    /// `Timestamp` (ms).
    pub timestamp: i64,
    /// `Message`: the scheduled message's ID, absent for slot 0 (the process
    /// itself).
    pub message: Option<Id>,
}

impl AoFields {
    /// The tags, exactly in the ao SU's order.
    pub fn tags(&self) -> Vec<Tag> {
        let mut tags = vec![
            Tag::new("Process", self.pid.to_human()),
            Tag::new("Epoch", crate::assignment::EPOCH),
            Tag::new("Nonce", self.slot.to_string()),
            Tag::new("Hash-Chain", hb_message::human(&self.hash_chain)),
            Tag::new("Block-Height", format!("{:012}", self.block_height)),
            Tag::new("Timestamp", self.timestamp.to_string()),
            Tag::new("Data-Protocol", crate::assignment::DATA_PROTOCOL),
            Tag::new("Type", "Assignment"),
            Tag::new("Variant", TN1),
        ];
        if let Some(m) = &self.message {
            tags.push(Tag::new("Message", m.to_human()));
        }
        tags
    }

    /// The item, signed by `key` as type 2 (no data, target or anchor).
    pub fn sign(&self, key: &NodeKey) -> Result<DataItem, MessageError> {
        key.sign_data_item(UnsignedItem {
            target: None,
            anchor: None,
            tags: self.tags(),
            data: Vec::new(),
        })
    }

    /// Reads the fields back from an item, checking that its tags are
    /// exactly those [`AoFields::tags`] writes, in that order. Does not
    /// check the signature.
    pub fn read(item: &DataItem) -> Result<AoFields, String> {
        let tags = item.tags();
        let text = |i: usize, name: &str| -> Result<&str, String> {
            let tag = tags
                .get(i)
                .ok_or_else(|| format!("tag {i} ({name}) is missing"))?;
            if tag.name != name.as_bytes() {
                return Err(format!(
                    "tag {i} is {:?}, expected {name}",
                    String::from_utf8_lossy(&tag.name)
                ));
            }
            std::str::from_utf8(&tag.value).map_err(|_| format!("{name} is not text"))
        };
        let id = |s: &str, name: &str| Id::parse(s).map_err(|_| format!("{name} is not an ID"));
        let int = |s: &str, name: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("{name} is not a decimal integer"))
        };
        let pid = id(text(0, "Process")?, "Process")?;
        if text(1, "Epoch")? != crate::assignment::EPOCH {
            return Err("Epoch is not \"0\"".into());
        }
        let slot = text(2, "Nonce")?
            .parse::<u64>()
            .map_err(|_| "Nonce is not a slot".to_string())?;
        let hash_chain = *id(text(3, "Hash-Chain")?, "Hash-Chain")?.as_bytes();
        let height_text = text(4, "Block-Height")?;
        let block_height = int(height_text, "Block-Height")?;
        if height_text != format!("{block_height:012}") {
            return Err("Block-Height is not 12-digit zero-padded".into());
        }
        let timestamp = int(text(5, "Timestamp")?, "Timestamp")?;
        for (i, name, value) in [
            (6, "Data-Protocol", crate::assignment::DATA_PROTOCOL),
            (7, "Type", "Assignment"),
            (8, "Variant", TN1),
        ] {
            if text(i, name)? != value {
                return Err(format!("{name} is not {value:?}"));
            }
        }
        let message = match tags.len() {
            9 => None,
            10 => Some(id(text(9, "Message")?, "Message")?),
            n => return Err(format!("{n} tags, expected 9 or 10")),
        };
        if !item.data().is_empty() || item.target().is_some() || item.anchor().is_some() {
            return Err("an assignment item has no data, target or anchor".into());
        }
        Ok(AoFields {
            pid,
            slot,
            hash_chain,
            block_height,
            timestamp,
            message,
        })
    }
}

/// The ao.TN.1 item an hb assignment carries, if any: `None` when the key is
/// absent, `Err` when it is there but is not an item.
pub fn item_of(assignment: &Message) -> Option<Result<DataItem, String>> {
    match assignment.get(AO_ASSIGNMENT)? {
        Value::Bytes(b) => Some(DataItem::parse(b).map_err(|e| e.to_string())),
        _ => Some(Err(format!("`{AO_ASSIGNMENT}` is not bytes"))),
    }
}

/// The ao link of an hb assignment that carries an item: its ID and
/// `Hash-Chain`.
pub fn link_of(assignment: &Message) -> Option<Result<AoLink, String>> {
    let item = match item_of(assignment)? {
        Ok(i) => i,
        Err(e) => return Some(Err(e)),
    };
    Some(AoFields::read(&item).map(|f| AoLink {
        id: item.id_bytes(),
        link: f.hash_chain,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_ans104::SignatureType;

    fn fields(slot: u64, message: Option<Id>) -> AoFields {
        let pid = Id::hash(b"process");
        AoFields {
            pid,
            slot,
            hash_chain: first_link(&pid),
            block_height: 1_234,
            timestamp: 1_700_000_000_123,
            message,
        }
    }

    #[test]
    fn the_item_has_the_sus_tags_in_order_and_verifies() {
        let key = NodeKey::from_seed(&[3; 32]);
        let f = fields(7, Some(Id::hash(b"m")));
        let item = f.sign(&key).unwrap();
        let names: Vec<String> = item
            .tags()
            .iter()
            .map(|t| String::from_utf8(t.name.clone()).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Process",
                "Epoch",
                "Nonce",
                "Hash-Chain",
                "Block-Height",
                "Timestamp",
                "Data-Protocol",
                "Type",
                "Variant",
                "Message"
            ]
        );
        assert_eq!(item.tags()[4].value, b"000000001234");
        assert_eq!(item.signature_type(), SignatureType::Ed25519);
        item.verify().unwrap();
        assert_eq!(item.owner_address(), key.address());
        // The bytes round-trip and the fields read back.
        let parsed = DataItem::parse(&item.serialize()).unwrap();
        assert_eq!(AoFields::read(&parsed).unwrap(), f);
    }

    #[test]
    fn slot_zero_has_no_message_tag() {
        let item = fields(0, None).sign(&NodeKey::from_seed(&[3; 32])).unwrap();
        assert_eq!(item.tags().len(), 9);
        assert_eq!(AoFields::read(&item).unwrap().message, None);
    }

    #[test]
    fn the_chain_is_the_cus_rule() {
        let pid = Id::hash(b"p");
        assert_eq!(first_link(&pid), <[u8; 32]>::from(Sha256::digest(pid.0)));
        let (id, link) = ([1u8; 32], [2u8; 32]);
        let mut joined = id.to_vec();
        joined.extend_from_slice(&link);
        let expected: [u8; 32] = Sha256::digest(&joined).into();
        assert_eq!(AoLink { id, link }.next(), expected);
        assert_ne!(next_link(&link, &id), expected, "the order matters");
    }

    #[test]
    fn reading_refuses_reordered_or_foreign_tags() {
        let key = NodeKey::from_seed(&[3; 32]);
        let mut tags = fields(1, Some(Id::hash(b"m"))).tags();
        tags.swap(0, 1);
        let owner = key.verifying_key().to_bytes().to_vec();
        let item = DataItem::new_unsigned(
            SignatureType::Ed25519,
            owner.clone(),
            None,
            None,
            tags,
            vec![],
        )
        .unwrap();
        assert!(AoFields::read(&item).unwrap_err().contains("Epoch"));
        let mut tags = fields(1, Some(Id::hash(b"m"))).tags();
        tags[4] = Tag::new("Block-Height", "1234");
        let item = DataItem::new_unsigned(SignatureType::Ed25519, owner, None, None, tags, vec![])
            .unwrap();
        assert!(AoFields::read(&item).unwrap_err().contains("zero-padded"));
    }

    #[test]
    fn the_variant_comes_from_the_definition() {
        let tn1 = Message::new().with("variant", TN1).unwrap();
        assert_eq!(Variant::of(&tn1), Variant::TN1);
        let n1 = Message::new().with("variant", "ao.N.1").unwrap();
        assert_eq!(Variant::of(&n1), Variant::N1);
        assert_eq!(Variant::of(&Message::new()), Variant::N1);
    }
}
