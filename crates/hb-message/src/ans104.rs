//! The `ans104@1.0` commitment device (SPEC §10.2): ANS-104 data items
//! (crate `hb-ans104`) as messages, messages back as the exact items they
//! came from, and the checks behind verifying such a commitment.
//!
//! # Item → message ([`Message::from_data_item`])
//!
//! - Each tag becomes a key: its name normalised as any key (SPEC §2.2:
//!   ASCII lower case unless ID-shaped). A name that occurs several times
//!   (after normalisation: `Action` and `action` are one name) becomes a
//!   list of its values in tag order; a name that occurs once, a single
//!   value. Values are text when valid UTF-8, else bytes.
//! - The data becomes `data` (text when valid UTF-8, else bytes), unless it
//!   is empty.
//! - The target and the anchor, when present, become the text keys
//!   `target` and `anchor` holding `human(raw 32 bytes)`.
//! - One commitment, keyed by the item ID: `commitment-device`
//!   (`"ans104@1.0"`), `type` (`"rsa-pss-sha256"`, `"ed25519"` or
//!   `"secp256k1"` for types 1, 2, 3), `committer` (the owner address),
//!   `keyid` (`human(owner)`), `signature` (`human(signature)`), `committed`
//!   (the keys above, sorted) and `original-tags`: a list of `{name, value}`
//!   messages, one per tag in order, text when valid UTF-8, else bytes, so
//!   exact bytes, case and order are kept.
//!
//! So `id(all)` of the message is the item ID (SPEC §2.5 with one
//! commitment), and a process spawned by an item has the item ID as its
//! process ID.
//!
//! **Tags named like a field.** A tag whose name normalises to `data`,
//! `target` or `anchor` is a key like any other tag when the item does not
//! have that field: items made inside HyperBEAM put a target that is not an
//! ID in a tag, and a tag named `data` on an item without data is plain
//! data. Where the key comes from is read from `original-tags` on the way
//! back: a key is a tag's iff an original tag's name normalises to it, else
//! it is the item field. When an item has both the tag and the field, one
//! key cannot hold both values, so the item is refused
//! ([`MessageError::UnmappableItem`]) rather than losing one (HyperBEAM keeps
//! the field and drops the tag from the message).
//!
//! **Refused items** ([`MessageError::UnmappableItem`], never a panic): a
//! tag name that is not UTF-8, starts with `@`, is private once normalised
//! (`priv…`: never signed or serialised, so it would vanish) or is
//! `commitments`; a tag named like a field the item also has; and tags not
//! in the one-block Avro encoding arbundles (and hb) write. The message
//! keeps tags, not their encoding; HyperBEAM re-encodes the same way, so it
//! cannot verify such an item either.
//!
//! # Message → item ([`Message::to_data_item`])
//!
//! The item is rebuilt from the commitment (type, owner from `keyid`,
//! signature, original tags) and the message's committed `data`, `target`
//! and `anchor` fields, byte-exactly:
//! `to_data_item(from_data_item(item)).serialize() == item.serialize()`.
//!
//! # Verification
//!
//! In this order, each failure naming the commitment and a
//! [`VerifyFailure`]: `type` is one of the three names (else
//! `malformed-commitment`); `keyid` is the type's owner length, for type 2
//! a valid ed25519 key under SPEC §2.6's per-key checks (`invalid-keyid`);
//! `committer` is its owner address (`committer-mismatch`); `signature` is
//! the type's signature length (`invalid-signature-encoding`) and the
//! commitment ID is `human(sha256(signature))`, the rebuilt item's ID
//! (`commitment-id-mismatch`); `original-tags` is a list of `{name, value}`
//! text or bytes whose names can be keys (`malformed-commitment`);
//! `committed` is exactly the keys of the original tags plus any of
//! `data`, `target`, `anchor` no tag names (`committed-keys-mismatch`);
//! each is present (`missing-committed-key`); each tag key holds exactly
//! what the tags give, `data` non-empty text or non-UTF-8 bytes, `target`
//! and `anchor` the human form of 32 bytes (`committed-value-mismatch`);
//! the signature verifies over the rebuilt item's signing message
//! (`bad-signature`): type 1 RSA-PSS, type 3 secp256k1 recovery (both with
//! `hb-ans104`), type 2 ed25519 under ZIP-215 exactly as `ed25519@1.0`, so
//! [`verify_batch`](crate::verify_batch) puts it in its batch equations.
//!
//! # Signing ([`Message::commit_with`] with [`CommitmentDevice::Ans104`])
//!
//! The committed keys become a type-2 item signed by the node key
//! ([`NodeKey::sign_data_item`]): non-empty text or bytes `data` is the
//! data, a `target` or `anchor` holding the human form of 32 bytes is the
//! field; every other committed key is a tag named by the normalised key
//! (text or bytes, or a list of two or more of them as repeated tags), in
//! key order. A value that would not read back as it is (an integer, a
//! message, bytes that are valid UTF-8, a list of fewer than two) is
//! [`MessageError::InvalidCommitment`], as are values over the tag limits
//! of SPEC §10.1.
//!
//! ```
//! use hb_message::hb_ans104::{DataItem, Tag};
//! use hb_message::{IdSelector, Message, NodeKey, UnsignedItem};
//!
//! let item = NodeKey::from_seed(&[1; 32]).sign_data_item(UnsignedItem {
//!     tags: vec![Tag::new("Action", "Eval"), Tag::new("Action", "Again")],
//!     data: b"1 + 1".to_vec(),
//!     ..UnsignedItem::default()
//! })?;
//! let m = Message::from_data_item(&DataItem::parse(&item.serialize())?)?;
//! assert_eq!(m.id_all()?.to_human(), item.id());
//! assert!(m.verify(&IdSelector::All)?.is_valid());
//! assert_eq!(m.get("action").and_then(|v| v.as_list()).map(|l| l.len()), Some(2));
//! assert_eq!(m.to_data_item(&item.id())?.serialize(), item.serialize());
//! # Ok::<(), hb_message::MessageError>(())
//! ```
//!
//! [`CommitmentDevice::Ans104`]: crate::CommitmentDevice::Ans104

use std::collections::BTreeMap;

use ed25519_zebra::{Signature, VerificationKey};
use hb_ans104::tags::encode_tags;
use hb_ans104::{DataItem, SignatureType, Tag};
use sha2::{Digest, Sha256};

use crate::commitment::{invalid, Entry, Failure, Prepared, Signed, VerifyFailure};
use crate::error::MessageError;
use crate::id::{decode_base64_any, encode_base64url, human};
use crate::key::Key;
use crate::message::{Message, COMMITMENTS};
use crate::signer::{NodeKey, UnsignedItem};
use crate::value::Value;
use crate::zip215;

/// The ANS-104 commitment device of SPEC §10.2.
pub const ANS104_DEVICE: &str = "ans104@1.0";

/// The key of an item's data.
const DATA: &str = "data";
/// The key of an item's target.
const TARGET: &str = "target";
/// The key of an item's anchor.
const ANCHOR: &str = "anchor";

/// The commitment's `type` for a signature type.
pub fn type_name(t: SignatureType) -> &'static str {
    match t {
        SignatureType::Arweave => "rsa-pss-sha256",
        SignatureType::Ed25519 => "ed25519",
        SignatureType::Ethereum => "secp256k1",
    }
}

/// The signature type a commitment's `type` names.
fn type_of(name: &str) -> Option<SignatureType> {
    [
        SignatureType::Arweave,
        SignatureType::Ed25519,
        SignatureType::Ethereum,
    ]
    .into_iter()
    .find(|t| type_name(*t) == name)
}

/// Item bytes as a value: text when valid UTF-8, else bytes.
fn bytes_value(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::Text(s.to_string()),
        Err(_) => Value::Bytes(b.to_vec()),
    }
}

/// The key a tag name becomes, or why it cannot become one.
fn tag_key(name: &[u8]) -> Result<Key, String> {
    let text = std::str::from_utf8(name).map_err(|_| {
        format!(
            "tag name {} is not UTF-8",
            encode_base64url(&name[..name.len().min(48)])
        )
    })?;
    let key = Key::new(text).map_err(|e| format!("tag name: {e}"))?;
    if key.as_str() == COMMITMENTS {
        return Err("a tag is named `commitments`, which holds the commitments".into());
    }
    if key.is_private() {
        return Err(format!(
            "tag name {:?} is a private key once normalised (never signed or serialised)",
            key.as_str()
        ));
    }
    Ok(key)
}

/// The keys and values tags give: names normalised, a name that occurs
/// several times as the list of its values in tag order.
fn tag_entries(tags: &[Tag]) -> Result<BTreeMap<Key, Value>, String> {
    let mut grouped: BTreeMap<Key, Vec<Value>> = BTreeMap::new();
    for t in tags {
        grouped
            .entry(tag_key(&t.name)?)
            .or_default()
            .push(bytes_value(&t.value));
    }
    Ok(grouped
        .into_iter()
        .map(|(k, mut vs)| {
            let v = if vs.len() == 1 {
                vs.swap_remove(0)
            } else {
                Value::List(vs)
            };
            (k, v)
        })
        .collect())
}

/// The 32 bytes whose human form `text` is, only if it is exactly that
/// form (43 characters of unpadded base64url).
fn raw_id(text: &str) -> Option<[u8; 32]> {
    let bytes: [u8; 32] = decode_base64_any(text).ok()?.try_into().ok()?;
    (human(&bytes) == text).then_some(bytes)
}

impl Message {
    /// The message of an ANS-104 item (SPEC §10.2, mapped as the
    /// [module docs](crate::ans104) say), with one `ans104@1.0` commitment
    /// keyed by the item ID, so that `id(all)` is the item ID. The
    /// signature is not checked here: [`verify`](Message::verify) does.
    /// Items without a message form (unusable tag names, a tag colliding
    /// with a field, tags in another encoding) give
    /// [`MessageError::UnmappableItem`].
    pub fn from_data_item(item: &DataItem) -> Result<Message, MessageError> {
        let unmappable = |reason: String| MessageError::UnmappableItem {
            item: item.id(),
            reason,
        };
        if encode_tags(item.tags()).ok().as_deref() != Some(item.raw_tags()) {
            return Err(unmappable(
                "its tags are not in the one-block encoding: a message keeps the tags, not \
                 their encoding, so it could not give back the signed bytes"
                    .into(),
            ));
        }
        let mut m = Message::new();
        for (k, v) in tag_entries(item.tags()).map_err(unmappable)? {
            m.insert_key(k, v);
        }
        let fields = [
            (
                DATA,
                (!item.data().is_empty()).then(|| bytes_value(item.data())),
            ),
            (TARGET, item.target().map(|t| Value::Text(human(t)))),
            (ANCHOR, item.anchor().map(|a| Value::Text(human(a)))),
        ];
        for (name, value) in fields {
            let Some(value) = value else { continue };
            if m.contains_key(name) {
                return Err(unmappable(format!(
                    "a tag is named `{name}` and the item has a {name} field too: one key \
                     cannot hold both"
                )));
            }
            m.insert(name, value)?;
        }
        let committed: Vec<Value> = m.keys().map(|k| Value::from(k.as_str())).collect();
        let original_tags = item
            .tags()
            .iter()
            .map(|t| {
                Message::new()
                    .with("name", bytes_value(&t.name))?
                    .with("value", bytes_value(&t.value))
                    .map(Value::Message)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let body = Message::new()
            .with("commitment-device", ANS104_DEVICE)?
            .with("type", type_name(item.signature_type()))?
            .with("committer", item.owner_address())?
            .with("keyid", encode_base64url(item.owner()))?
            .with("signature", encode_base64url(item.signature()))?
            .with("committed", Value::List(committed))?
            .with("original-tags", Value::List(original_tags))?;
        m.insert(COMMITMENTS, Message::new().with(&item.id(), body)?)?;
        Ok(m)
    }

    /// The ANS-104 item that the `ans104@1.0` commitment keyed `commitment`
    /// signs, rebuilt from the commitment and the message's committed
    /// fields; byte-exact for a message made by
    /// [`from_data_item`](Message::from_data_item). Every check of
    /// [`verify`](Message::verify) but the signature's is made first: a
    /// commitment that is absent, of another device, or does not match the
    /// message gives [`MessageError::InvalidCommitment`] with the reason
    /// code.
    pub fn to_data_item(&self, commitment: &str) -> Result<DataItem, MessageError> {
        let entries = self.entries()?;
        let e = entries
            .iter()
            .find(|e| e.id == commitment)
            .ok_or_else(|| invalid(commitment, "the message has no such commitment"))?;
        match e.text("commitment-device") {
            Some(ANS104_DEVICE) => {}
            Some(other) => {
                return Err(invalid(
                    e.id,
                    format!("device {other:?} is not {ANS104_DEVICE}: it signs no item"),
                ))
            }
            None => {
                return Err(invalid(
                    e.id,
                    "field `commitment-device` is missing or not text",
                ))
            }
        }
        rebuild(self, e)
            .map(|r| r.item)
            .map_err(|(reason, detail)| invalid(e.id, format!("{}: {detail}", reason.code())))
    }
}

/// An `ans104@1.0` commitment checked against its message (all but the
/// signature), with the item it signs.
struct Rebuilt {
    item: DataItem,
    /// For type 2: the owner, past SPEC §2.6's per-key checks.
    ed25519: Option<VerificationKey>,
}

/// A failed check, before the commitment ID is attached.
type Refusal = (VerifyFailure, String);

/// The `original-tags` of a commitment, as tags.
fn original_tags(body: &Message) -> Result<Vec<Tag>, String> {
    let list = body
        .get("original-tags")
        .and_then(Value::as_list)
        .ok_or("field `original-tags` is missing or not a list")?;
    let part = |tag: &Message, field: &str| -> Result<Vec<u8>, String> {
        match tag.get(field) {
            Some(Value::Text(s)) => Ok(s.as_bytes().to_vec()),
            Some(Value::Bytes(b)) => Ok(b.clone()),
            _ => Err(format!(
                "an `original-tags` entry's `{field}` is missing or not text or bytes"
            )),
        }
    };
    list.iter()
        .map(|v| {
            let tag = v
                .as_message()
                .ok_or("an `original-tags` entry is not a message")?;
            Ok(Tag::new(part(tag, "name")?, part(tag, "value")?))
        })
        .collect()
}

/// The item's data from the message's committed `data`: non-empty, and in
/// the form [`bytes_value`] gives it.
fn field_data(v: &Value) -> Result<Vec<u8>, Refusal> {
    match v {
        Value::Text(s) if !s.is_empty() => Ok(s.as_bytes().to_vec()),
        Value::Bytes(b) if std::str::from_utf8(b).is_err() => Ok(b.clone()),
        _ => Err((
            VerifyFailure::CommittedValueMismatch,
            "`data` is not item data: non-empty text, or bytes that are not UTF-8".into(),
        )),
    }
}

/// A target or anchor field from the message's committed key.
fn field_id(v: &Value, name: &str) -> Result<[u8; 32], Refusal> {
    v.as_text().and_then(raw_id).ok_or_else(|| {
        (
            VerifyFailure::CommittedValueMismatch,
            format!("`{name}` is not the human form of 32 bytes"),
        )
    })
}

/// Every check of an `ans104@1.0` commitment but the signature's, in the
/// order of the [module docs](crate::ans104), and the rebuilt item.
fn rebuild(m: &Message, e: &Entry<'_>) -> Result<Rebuilt, Refusal> {
    let text = |field: &str| {
        e.text(field).ok_or_else(|| {
            (
                VerifyFailure::MalformedCommitment,
                format!("field `{field}` is missing or not text"),
            )
        })
    };
    let type_text = text("type")?;
    let ty = type_of(type_text).ok_or_else(|| {
        (
            VerifyFailure::MalformedCommitment,
            format!(
                "type {:?} is not rsa-pss-sha256, ed25519 or secp256k1",
                crate::error::truncate_for_error(type_text)
            ),
        )
    })?;
    // The owner, and the address derived from it.
    let keyid = text("keyid")?;
    let committer = text("committer")?;
    let owner = decode_base64_any(keyid)
        .ok()
        .filter(|o| o.len() == ty.owner_len())
        .ok_or_else(|| {
            (
                VerifyFailure::InvalidKeyId,
                format!(
                    "keyid is not {} bytes of base64 (a {} owner)",
                    ty.owner_len(),
                    type_name(ty)
                ),
            )
        })?;
    let ed25519 = match <[u8; 32]>::try_from(owner.as_slice()) {
        Ok(bytes) if ty == SignatureType::Ed25519 => Some(
            zip215::checked_key(&bytes)
                .map_err(|r| (VerifyFailure::InvalidKeyId, r.detail().to_string()))?,
        ),
        _ => None,
    };
    if ty.owner_address(&owner) != committer {
        return Err((
            VerifyFailure::CommitterMismatch,
            "committer is not the owner address of keyid".into(),
        ));
    }
    // The signature, and the item ID derived from it.
    let signature = decode_base64_any(text("signature")?)
        .ok()
        .filter(|s| s.len() == ty.signature_len())
        .ok_or_else(|| {
            (
                VerifyFailure::InvalidSignatureEncoding,
                format!("signature is not {} bytes of base64", ty.signature_len()),
            )
        })?;
    if human(&Sha256::digest(&signature).into()) != e.id {
        return Err((
            VerifyFailure::CommitmentIdMismatch,
            "commitment ID is not the item ID, human(sha256(signature))".into(),
        ));
    }
    // The tags, and the keys they give.
    let tags = original_tags(e.body).map_err(|r| (VerifyFailure::MalformedCommitment, r))?;
    let from_tags = tag_entries(&tags).map_err(|r| {
        (
            VerifyFailure::MalformedCommitment,
            format!("original-tags: {r}"),
        )
    })?;
    // The committed keys: the tags' and the fields'.
    let committed = e
        .committed()
        .map_err(|r| (VerifyFailure::MalformedCommitment, r))?;
    if let Some(k) = from_tags
        .keys()
        .find(|k| committed.binary_search(k).is_err())
    {
        return Err((
            VerifyFailure::CommittedKeysMismatch,
            format!("key {k:?} of the original tags is not committed"),
        ));
    }
    let fields: Vec<&Key> = committed
        .iter()
        .filter(|k| !from_tags.contains_key(*k))
        .collect();
    if let Some(k) = fields
        .iter()
        .find(|k| ![DATA, TARGET, ANCHOR].contains(&k.as_str()))
    {
        return Err((
            VerifyFailure::CommittedKeysMismatch,
            format!("committed key {k:?} is neither a tag's nor data, target or anchor"),
        ));
    }
    if let Some(k) = committed.iter().find(|k| m.get_key(k).is_none()) {
        return Err((
            VerifyFailure::MissingCommittedKey,
            format!("committed key {k:?} is absent"),
        ));
    }
    // Their values.
    if let Some(k) = from_tags
        .iter()
        .find(|(k, v)| m.get_key(k) != Some(*v))
        .map(|(k, _)| k)
    {
        return Err((
            VerifyFailure::CommittedValueMismatch,
            format!("the value of {k:?} is not what the original tags give"),
        ));
    }
    let (mut data, mut target, mut anchor) = (Vec::new(), None, None);
    for k in fields {
        // Present: checked above.
        let Some(v) = m.get_key(k) else { continue };
        match k.as_str() {
            DATA => data = field_data(v)?,
            TARGET => target = Some(field_id(v, TARGET)?),
            _ => anchor = Some(field_id(v, ANCHOR)?),
        }
    }
    let mut item = DataItem::new_unsigned(ty, owner, target, anchor, tags, data).map_err(|r| {
        (
            VerifyFailure::MalformedCommitment,
            format!("original-tags: {r}"),
        )
    })?;
    item.set_signature(signature)
        .map_err(|r| (VerifyFailure::InvalidSignatureEncoding, r.to_string()))?;
    Ok(Rebuilt { item, ed25519 })
}

/// The checks of an `ans104@1.0` commitment for [`Message::verify`] and
/// [`verify_batch`](crate::verify_batch): everything but a type-2
/// signature, which is left to the caller's ZIP-215 check (`Some`); types
/// 1 and 3 are checked in full here (`None`).
pub(crate) fn prepare(m: &Message, e: &Entry<'_>) -> Result<Option<Prepared>, Failure> {
    let fail = |(reason, detail): Refusal| (e.id.to_string(), reason, detail);
    let r = rebuild(m, e).map_err(fail)?;
    match r.ed25519 {
        Some(key) => {
            let signature: [u8; 64] = r.item.signature().try_into().map_err(|_| {
                fail((
                    VerifyFailure::InvalidSignatureEncoding,
                    "signature is not 64 bytes".into(),
                ))
            })?;
            Ok(Some(Prepared {
                commitment: e.id.to_string(),
                key,
                signature: Signature::from_bytes(&signature),
                signed: Signed::Item(r.item.signing_message()),
            }))
        }
        None => match r.item.verify() {
            Ok(()) => Ok(None),
            Err(err) => Err(fail((VerifyFailure::BadSignature, err.to_string()))),
        },
    }
}

/// Appends the tags of one committed key: text or bytes as one tag, a list
/// of two or more texts or bytes as repeated tags.
fn push_tags(tags: &mut Vec<Tag>, k: &Key, v: &Value) -> Result<(), MessageError> {
    let one = |v: &Value| match v {
        Value::Text(s) => Some(s.as_bytes().to_vec()),
        Value::Bytes(b) => Some(b.clone()),
        _ => None,
    };
    let cannot = |what: &str| {
        invalid(
            "-",
            format!("the value of {k:?} cannot be an ANS-104 tag: {what}"),
        )
    };
    match v {
        Value::List(items) if items.len() < 2 => Err(cannot(
            "a list of fewer than two reads back as a single value",
        )),
        Value::List(items) => {
            for item in items {
                let value = one(item).ok_or_else(|| cannot("a list of non-text values"))?;
                tags.push(Tag::new(k.as_str(), value));
            }
            Ok(())
        }
        other => {
            let value = one(other).ok_or_else(|| cannot(other.type_name()))?;
            tags.push(Tag::new(k.as_str(), value));
            Ok(())
        }
    }
}

/// `commit_with(ans104@1.0)`: `keys` (checked by the caller) as a type-2
/// item signed by `key`; the commitment is the one that item maps to, after
/// checking that every committed value reads back from the item as it is.
pub(crate) fn commit(m: &Message, key: &NodeKey, keys: &[Key]) -> Result<Message, MessageError> {
    let mut unsigned = UnsignedItem::default();
    for k in keys {
        let v = m
            .get_key(k)
            .ok_or_else(|| invalid("-", format!("committed key {k:?} is absent")))?;
        match (k.as_str(), v) {
            (DATA, Value::Text(s)) if !s.is_empty() => unsigned.data = s.as_bytes().to_vec(),
            (DATA, Value::Bytes(b)) if !b.is_empty() => unsigned.data = b.clone(),
            (TARGET, Value::Text(t)) if raw_id(t).is_some() => unsigned.target = raw_id(t),
            (ANCHOR, Value::Text(a)) if raw_id(a).is_some() => unsigned.anchor = raw_id(a),
            _ => push_tags(&mut unsigned.tags, k, v)?,
        }
    }
    let item = key
        .sign_data_item(unsigned)
        .map_err(|e| invalid("-", format!("the committed keys make no ANS-104 item: {e}")))?;
    let mapped = Message::from_data_item(&item)
        .map_err(|e| invalid("-", format!("the signed item has no message form: {e}")))?;
    if let Some(k) = keys.iter().find(|k| mapped.get_key(k) != m.get_key(k)) {
        return Err(invalid(
            "-",
            format!(
                "the value of {k:?} would not read back from an ANS-104 item as it is \
                 (bytes that are valid UTF-8 read back as text)"
            ),
        ));
    }
    let id = item.id();
    let body = mapped
        .get_message(COMMITMENTS)
        .and_then(|cs| cs.get_message(&id))
        .cloned()
        .ok_or_else(|| invalid(&id, "the mapped item lost its commitment"))?;
    m.with_commitment(&id, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{msg, CommitmentDevice, IdSelector, Verification};

    fn key() -> NodeKey {
        NodeKey::from_seed(&[7; 32])
    }

    fn item(target: Option<[u8; 32]>, tags: Vec<Tag>, data: &[u8]) -> DataItem {
        key()
            .sign_data_item(UnsignedItem {
                target,
                anchor: Some([2; 32]),
                tags,
                data: data.to_vec(),
            })
            .unwrap()
    }

    fn sample() -> DataItem {
        item(
            Some([1; 32]),
            vec![
                Tag::new("Action", "Eval"),
                Tag::new("action", "Again"),
                Tag::new("Blob", vec![0xff, 0x00]),
                Tag::new("Empty", ""),
            ],
            b"1 + 1",
        )
    }

    fn reason(m: &Message) -> VerifyFailure {
        match m.verify(&IdSelector::All).unwrap() {
            Verification::Invalid { reason, .. } => reason,
            Verification::Valid => panic!("expected a failure"),
        }
    }

    #[test]
    fn tags_fields_and_the_commitment_map_as_the_spec_says() {
        let it = sample();
        let m = Message::from_data_item(&it).unwrap();
        assert_eq!(
            m.get("action"),
            Some(&Value::List(vec!["Eval".into(), "Again".into()]))
        );
        assert_eq!(m.get("blob"), Some(&Value::Bytes(vec![0xff, 0])));
        assert_eq!(m.get_text("empty"), Some(""));
        assert_eq!(m.get_text("data"), Some("1 + 1"));
        assert_eq!(m.get_text("target"), Some(human(&[1; 32]).as_str()));
        assert_eq!(m.get_text("anchor"), Some(human(&[2; 32]).as_str()));
        let body = m
            .get_message(COMMITMENTS)
            .and_then(|c| c.get_message(&it.id()))
            .unwrap();
        assert_eq!(body.get_text("commitment-device"), Some(ANS104_DEVICE));
        assert_eq!(body.get_text("type"), Some("ed25519"));
        assert_eq!(body.get_text("committer"), Some(key().address()));
        assert_eq!(body.get_text("keyid"), Some(key().keyid().as_str()));
        let committed: Vec<&str> = body
            .get("committed")
            .and_then(Value::as_list)
            .unwrap()
            .iter()
            .filter_map(Value::as_text)
            .collect();
        assert_eq!(
            committed,
            ["action", "anchor", "blob", "data", "empty", "target"]
        );
        let names: Vec<Value> = body
            .get("original-tags")
            .and_then(Value::as_list)
            .unwrap()
            .iter()
            .map(|t| t.as_message().unwrap().get("name").unwrap().clone())
            .collect();
        assert_eq!(
            names,
            vec![
                Value::from("Action"),
                "action".into(),
                "Blob".into(),
                "Empty".into()
            ]
        );
        assert_eq!(m.id_all().unwrap().to_human(), it.id());
        assert!(m.verify(&IdSelector::All).unwrap().is_valid());
        assert_eq!(
            m.to_data_item(&it.id()).unwrap().serialize(),
            it.serialize()
        );
    }

    #[test]
    fn tags_named_like_absent_fields_are_plain_keys_and_round_trip() {
        let it = item(
            None,
            vec![
                Tag::new("Target", "not-an-id"),
                Tag::new("Data", "in a tag"),
            ],
            b"",
        );
        let m = Message::from_data_item(&it).unwrap();
        assert_eq!(m.get_text("target"), Some("not-an-id"));
        assert_eq!(m.get_text("data"), Some("in a tag"));
        assert!(m.verify(&IdSelector::All).unwrap().is_valid());
        let back = m.to_data_item(&it.id()).unwrap();
        assert_eq!(back.serialize(), it.serialize());
        assert_eq!(back.target(), None);
        assert!(back.data().is_empty());
    }

    #[test]
    fn unmappable_items_are_typed_errors() {
        let cases: Vec<(DataItem, &str)> = vec![
            (item(None, vec![Tag::new("Data", "x")], b"data"), "data"),
            (
                item(Some([3; 32]), vec![Tag::new("target", "x")], b""),
                "target",
            ),
            (item(None, vec![Tag::new("ANCHOR", "x")], b""), "anchor"),
            (
                item(None, vec![Tag::new("Commitments", "x")], b""),
                "commitments",
            ),
            (
                item(None, vec![Tag::new("Private-Note", "x")], b""),
                "private",
            ),
            (item(None, vec![Tag::new("@at", "x")], b""), "@"),
            (
                item(None, vec![Tag::new(vec![0xff, 0xfe], "x")], b""),
                "UTF-8",
            ),
        ];
        for (it, what) in cases {
            match Message::from_data_item(&it) {
                Err(MessageError::UnmappableItem { item, reason }) => {
                    assert_eq!(item, it.id());
                    assert!(reason.contains(what), "{what}: {reason}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn tags_in_another_encoding_are_refused() {
        // The same two tags as two blocks, the second one negative: a
        // valid item whose tag bytes a message cannot give back.
        let it = item(None, vec![Tag::new("a", "1"), Tag::new("b", "2")], b"");
        let mut bytes = it.serialize();
        let at = bytes.len() - it.raw_tags().len();
        let mut raw = vec![2, 2, b'a', 2, b'1'];
        raw.extend_from_slice(&[1, 8, 2, b'b', 2, b'2', 0]);
        bytes.truncate(at);
        let len_at = at - 8;
        bytes[len_at..at].copy_from_slice(&(raw.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&raw);
        let reparsed = DataItem::parse(&bytes).unwrap();
        assert_eq!(reparsed.tags(), it.tags());
        assert!(matches!(
            Message::from_data_item(&reparsed),
            Err(MessageError::UnmappableItem { .. })
        ));
    }

    #[test]
    fn each_check_fails_with_its_reason() {
        let it = sample();
        let id = it.id();
        let m = Message::from_data_item(&it).unwrap();
        let edit = |f: &dyn Fn(&mut Message)| {
            let mut body = m
                .get_message(COMMITMENTS)
                .and_then(|c| c.get_message(&id))
                .unwrap()
                .clone();
            f(&mut body);
            m.clone()
                .with(COMMITMENTS, msg! { id.as_str() => body })
                .unwrap()
        };
        let cases: Vec<(Message, VerifyFailure)> = vec![
            (
                edit(&|b| {
                    b.insert("type", "rsa").unwrap();
                }),
                VerifyFailure::MalformedCommitment,
            ),
            (
                edit(&|b| {
                    b.insert("keyid", encode_base64url(&[0; 31])).unwrap();
                }),
                VerifyFailure::InvalidKeyId,
            ),
            (
                // The identity point: small order.
                edit(&|b| {
                    let mut small = [0u8; 32];
                    small[0] = 1;
                    b.insert("keyid", encode_base64url(&small)).unwrap();
                }),
                VerifyFailure::InvalidKeyId,
            ),
            (
                edit(&|b| {
                    b.insert("committer", NodeKey::from_seed(&[8; 32]).address())
                        .unwrap();
                }),
                VerifyFailure::CommitterMismatch,
            ),
            (
                edit(&|b| {
                    b.insert("signature", encode_base64url(&[1; 65])).unwrap();
                }),
                VerifyFailure::InvalidSignatureEncoding,
            ),
            (
                edit(&|b| {
                    b.insert("signature", encode_base64url(&[1; 64])).unwrap();
                }),
                VerifyFailure::CommitmentIdMismatch,
            ),
            (
                edit(&|b| {
                    b.insert("original-tags", "none").unwrap();
                }),
                VerifyFailure::MalformedCommitment,
            ),
            (
                edit(&|b| {
                    b.insert(
                        "committed",
                        Value::List(vec!["action".into(), "data".into()]),
                    )
                    .unwrap();
                }),
                VerifyFailure::CommittedKeysMismatch,
            ),
            (
                edit(&|b| {
                    let mut c = b.get("committed").unwrap().as_list().unwrap().to_vec();
                    c.push("extra".into());
                    b.insert("committed", Value::List(c)).unwrap();
                }),
                VerifyFailure::CommittedKeysMismatch,
            ),
        ];
        for (i, (bad, want)) in cases.iter().enumerate() {
            assert_eq!(reason(bad), *want, "case {i}");
            assert!(bad.to_data_item(&id).is_err(), "case {i}");
        }
        let mut gone = m.clone();
        gone.remove("empty");
        assert_eq!(reason(&gone), VerifyFailure::MissingCommittedKey);
        for (k, v) in [
            ("action", Value::from("Eval")),
            ("blob", Value::from("text now")),
            ("empty", Value::from(" ")),
            ("data", Value::Bytes(b"1 + 1".to_vec())),
            ("target", Value::from(encode_base64url(&[1; 32]) + "=")),
            ("anchor", Value::from("short")),
        ] {
            let mut changed = m.clone();
            changed.insert(k, v).unwrap();
            assert_eq!(
                reason(&changed),
                VerifyFailure::CommittedValueMismatch,
                "{k}"
            );
        }
        let mut data = m.clone();
        data.insert("data", "1 + 2").unwrap();
        assert_eq!(reason(&data), VerifyFailure::BadSignature);
    }

    #[test]
    fn adding_an_uncommitted_key_keeps_it_valid_and_with_only_committed_drops_it() {
        let it = sample();
        let m = Message::from_data_item(&it).unwrap();
        let mut more = m.clone();
        more.insert("extra", 1).unwrap();
        assert!(more.verify(&IdSelector::All).unwrap().is_valid());
        assert_eq!(more.with_only_committed().unwrap(), m);
    }

    #[test]
    fn committing_with_ans104_signs_a_type_2_item_that_reads_back() {
        let m = msg! {
            "Action" => "Transfer",
            "recipients" => Value::List(vec!["a".into(), "b".into()]),
            "blob" => Value::Bytes(vec![0xff]),
            "data" => "payload",
            "target" => human(&[9; 32]),
            "anchor" => "not an id, so a tag",
            "uncommitted" => 5
        };
        let keys: Vec<Key> = ["action", "anchor", "blob", "data", "recipients", "target"]
            .iter()
            .map(|k| Key::new(k).unwrap())
            .collect();
        let signed = m
            .commit_with(CommitmentDevice::Ans104, &key(), Some(&keys))
            .unwrap();
        assert!(signed.verify(&IdSelector::All).unwrap().is_valid());
        let id = signed.id_all().unwrap().to_human();
        let it = signed.to_data_item(&id).unwrap();
        it.verify().unwrap();
        assert_eq!(it.id(), id);
        assert_eq!(it.target(), Some(&[9; 32]));
        assert_eq!(it.anchor(), None);
        assert_eq!(it.data(), b"payload");
        assert_eq!(
            signed.committers().unwrap(),
            vec![key().address().to_string()]
        );
        // Deterministic: committing again changes nothing.
        assert_eq!(
            signed
                .commit_with(CommitmentDevice::Ans104, &key(), Some(&keys))
                .unwrap(),
            signed
        );
    }

    #[test]
    fn values_that_would_not_read_back_cannot_be_committed() {
        for (name, m) in [
            ("integer", msg! { "n" => 1 }),
            ("utf-8 bytes", msg! { "b" => Value::Bytes(b"abc".to_vec()) }),
            (
                "one-item list",
                msg! { "l" => Value::List(vec!["x".into()]) },
            ),
            ("message", msg! { "m" => msg! { "x" => "y" } }),
            ("long value", msg! { "v" => "x".repeat(3073) }),
        ] {
            assert!(
                matches!(
                    m.commit_with(CommitmentDevice::Ans104, &key(), None),
                    Err(MessageError::InvalidCommitment { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn to_data_item_needs_an_ans104_commitment() {
        let signed = msg! { "a" => "b" }.commit(&key(), None).unwrap();
        let id = signed.id_all().unwrap().to_human();
        assert!(matches!(
            signed.to_data_item(&id),
            Err(MessageError::InvalidCommitment { .. })
        ));
        assert!(matches!(
            signed.to_data_item("nope"),
            Err(MessageError::InvalidCommitment { .. })
        ));
    }
}
