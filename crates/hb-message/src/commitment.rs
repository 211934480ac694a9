//! IDs and commitments of a message (SPEC §2.5, §2.6): `ed25519@1.0` here,
//! with verification dispatched on `commitment-device` (`ans104@1.0` is in
//! [`crate::ans104`]), single and batched.

use ed25519_zebra::{Signature, VerificationKey};
use sha2::{Digest, Sha256};

use crate::ans104::{self, ANS104_DEVICE};
use crate::canonical::{self, Select};
use crate::error::MessageError;
use crate::id::{decode_base64_any, encode_base64url, human, Id, IdSelector};
use crate::key::Key;
use crate::message::{Message, COMMITMENTS};
use crate::signer::{address_of, NodeKey};
use crate::value::Value;
use crate::zip215;

/// hb's own commitment device (SPEC §2.6).
pub const ED25519_DEVICE: &str = "ed25519@1.0";

/// A commitment device hb signs with ([`Message::commit_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitmentDevice {
    /// `ed25519@1.0` (SPEC §2.6): ed25519 over the sha256 of the canonical
    /// encoding of the committed keys.
    Ed25519,
    /// `ans104@1.0` (SPEC §10.2): the committed keys as a type-2 ANS-104
    /// item signed by the key; the commitment ID is the item ID.
    Ans104,
}

impl CommitmentDevice {
    /// The device's name, as written in `commitment-device`.
    pub fn name(self) -> &'static str {
        match self {
            CommitmentDevice::Ed25519 => ED25519_DEVICE,
            CommitmentDevice::Ans104 => ANS104_DEVICE,
        }
    }

    /// The device of a name, ASCII case ignored; any other name is
    /// [`MessageError::UnsupportedCommitmentDevice`].
    pub fn from_name(name: &str) -> Result<CommitmentDevice, MessageError> {
        [CommitmentDevice::Ed25519, CommitmentDevice::Ans104]
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                MessageError::UnsupportedCommitmentDevice(crate::error::truncate_for_error(name))
            })
    }
}

/// Why a commitment failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The commitment's device is neither `ed25519@1.0` nor `ans104@1.0`.
    UnsupportedCommitmentDevice,
    /// A field is missing or has the wrong type.
    MalformedCommitment,
    /// `keyid` is not a valid public key: for ed25519 (`ed25519@1.0`, and
    /// type-2 `ans104@1.0`) not 32 bytes of base64, not a curve point, not
    /// the canonical encoding of its point, or a point of small order; for
    /// `ans104@1.0` types 1 and 3, not the type's owner length.
    InvalidKeyId,
    /// `committer` is not the key's address: human(sha256(keyid)), or for
    /// a type-3 `ans104@1.0` commitment its `0x…` Ethereum address.
    CommitterMismatch,
    /// `signature` is not base64 of the signature's length (64 bytes for
    /// ed25519; 512 and 65 for `ans104@1.0` types 1 and 3).
    InvalidSignatureEncoding,
    /// The commitment's map key is not human(sha256(signature)) (for
    /// `ans104@1.0`: the rebuilt item's ID).
    CommitmentIdMismatch,
    /// A committed key is absent from the message.
    MissingCommittedKey,
    /// `ans104@1.0`: the `committed` list is not exactly the keys the
    /// original tags give plus the item fields (`data`, `target`,
    /// `anchor`) the message carries.
    CommittedKeysMismatch,
    /// `ans104@1.0`: a committed key's value is not what the item gives
    /// (the tags' values, text iff UTF-8, a list for a repeated name; a
    /// field in its one form).
    CommittedValueMismatch,
    /// The signature does not verify: for ed25519 over the committed keys
    /// or the rebuilt item (ZIP-215 rules: `s ≥ ℓ`, an `R` that is not a
    /// point, or the cofactored equation fails); for `ans104@1.0` types 1
    /// and 3, RSA-PSS or secp256k1 recovery over the rebuilt item.
    BadSignature,
}

impl VerifyFailure {
    /// The kebab-case reason code used in errors and HTTP bodies.
    pub fn code(self) -> &'static str {
        match self {
            VerifyFailure::UnsupportedCommitmentDevice => "unsupported-commitment-device",
            VerifyFailure::MalformedCommitment => "malformed-commitment",
            VerifyFailure::InvalidKeyId => "invalid-keyid",
            VerifyFailure::CommitterMismatch => "committer-mismatch",
            VerifyFailure::InvalidSignatureEncoding => "invalid-signature-encoding",
            VerifyFailure::CommitmentIdMismatch => "commitment-id-mismatch",
            VerifyFailure::MissingCommittedKey => "missing-committed-key",
            VerifyFailure::CommittedKeysMismatch => "committed-keys-mismatch",
            VerifyFailure::CommittedValueMismatch => "committed-value-mismatch",
            VerifyFailure::BadSignature => "bad-signature",
        }
    }
}

/// The answer of [`Message::verify`]: valid, or the first failing commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every selected commitment verified (or none was selected).
    Valid,
    /// The first commitment that failed, and why.
    Invalid {
        /// The failing commitment's ID.
        commitment: String,
        /// The failed check.
        reason: VerifyFailure,
        /// A sentence with the specifics (the missing key, the device name…).
        detail: String,
    },
}

impl Verification {
    /// Whether verification succeeded.
    pub fn is_valid(&self) -> bool {
        matches!(self, Verification::Valid)
    }
}

/// One entry of a message's `commitments`, as read from it.
#[derive(Clone, Debug)]
pub(crate) struct Entry<'a> {
    /// The commitment ID: its key under `commitments`.
    pub(crate) id: &'a str,
    /// The commitment.
    pub(crate) body: &'a Message,
}

impl<'a> Entry<'a> {
    pub(crate) fn text(&self, field: &str) -> Option<&'a str> {
        self.body.get_text(field)
    }

    fn committer(&self) -> Option<&'a str> {
        self.text("committer")
    }

    /// The committed keys, normalised and sorted, or why they are unreadable.
    pub(crate) fn committed(&self) -> Result<Vec<Key>, String> {
        let list = match self.body.get("committed") {
            Some(Value::List(l)) => l,
            Some(_) => return Err("`committed` is not a list".into()),
            None => return Err("`committed` is missing".into()),
        };
        let mut keys = Vec::with_capacity(list.len());
        for item in list {
            let text = item
                .as_text()
                .ok_or_else(|| "`committed` holds a non-text entry".to_string())?;
            let key = Key::new(text).map_err(|e| e.to_string())?;
            if key.as_str() == COMMITMENTS {
                return Err("`committed` names `commitments`, which cannot be committed".into());
            }
            if key.is_private() {
                return Err(format!(
                    "`committed` names the private key {key:?}, which cannot be committed"
                ));
            }
            keys.push(key);
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The structural checks behind "malformed" (no cryptography): the
    /// device is text; for `ed25519@1.0` and `ans104@1.0`, `committer`,
    /// `keyid` and `signature` are text; for `ans104@1.0` also `type`, and
    /// `original-tags` is a list. `committed` is checked by
    /// [`committed`](Entry::committed).
    fn well_formed(&self) -> Result<(), String> {
        let device = self
            .text("commitment-device")
            .ok_or("field `commitment-device` is missing or not text")?;
        let texts: &[&str] = match device {
            ED25519_DEVICE => &["committer", "keyid", "signature"],
            ANS104_DEVICE => &["committer", "keyid", "signature", "type"],
            _ => &[],
        };
        if let Some(field) = texts.iter().find(|f| self.text(f).is_none()) {
            return Err(format!("field `{field}` is missing or not text"));
        }
        if device == ANS104_DEVICE
            && self
                .body
                .get("original-tags")
                .and_then(Value::as_list)
                .is_none()
        {
            return Err("field `original-tags` is missing or not a list".into());
        }
        Ok(())
    }
}

pub(crate) fn invalid(id: &str, reason: impl Into<String>) -> MessageError {
    MessageError::InvalidCommitment {
        id: id.to_string(),
        reason: reason.into(),
    }
}

/// What an ed25519 signature of a commitment signs.
pub(crate) enum Signed {
    /// `ed25519@1.0`: sha256(canonical(m restricted to the committed keys)).
    Digest([u8; 32]),
    /// Type-2 `ans104@1.0`: the rebuilt item's signing message.
    Item([u8; 48]),
}

impl Signed {
    fn as_slice(&self) -> &[u8] {
        match self {
            Signed::Digest(d) => d,
            Signed::Item(m) => m,
        }
    }
}

/// A commitment that passed every check but its ed25519 signature's,
/// ready for the ZIP-215 check (single or batched).
pub(crate) struct Prepared {
    pub(crate) commitment: String,
    pub(crate) key: VerificationKey,
    pub(crate) signature: Signature,
    pub(crate) signed: Signed,
}

impl Prepared {
    /// The ZIP-215 signature check, alone.
    fn verify_one(&self) -> bool {
        zip215::verify_one(&self.key, &self.signature, self.signed.as_slice())
    }

    fn bad_signature(&self) -> Verification {
        let detail = match self.signed {
            Signed::Digest(_) => {
                "ed25519 signature (ZIP-215 rules) does not verify over the committed keys"
            }
            Signed::Item(_) => {
                "ed25519 signature (ZIP-215 rules) does not verify over the rebuilt item"
            }
        };
        Verification::Invalid {
            commitment: self.commitment.clone(),
            reason: VerifyFailure::BadSignature,
            detail: detail.into(),
        }
    }
}

/// A failed check: the commitment ID, the reason and a sentence.
pub(crate) type Failure = (String, VerifyFailure, String);

/// The checks of one message, all but the ed25519 signature equations: the
/// commitments that passed every other check (in verification order), then
/// the first failure of those checks, if any. The message's answer is the
/// first of the prepared commitments whose signature fails, else `then`,
/// else valid: exactly the answer of checking each commitment in full, in
/// order, since the other checks are pure and only reorder work. (The
/// RSA-PSS and secp256k1 signatures of `ans104@1.0` types 1 and 3 are
/// checked while planning: a failure there is `then`.)
struct Plan {
    prepared: Vec<Prepared>,
    then: Option<Failure>,
}

impl Plan {
    /// The answer given which signatures are known good: `all_good` when a
    /// batch accepted them all, else each is checked on its own, in order.
    fn answer(&self, all_good: bool) -> Verification {
        for p in &self.prepared {
            if !all_good && !p.verify_one() {
                return p.bad_signature();
            }
        }
        match &self.then {
            Some(f) => failure(f.clone()),
            None => Verification::Valid,
        }
    }
}

impl Message {
    /// The unsigned ID: human-form sha256 of the canonical encoding, without
    /// top-level `commitments` and private keys.
    pub fn unsigned_id(&self) -> Id {
        Id(canonical::digest(self, Select::Unsigned))
    }

    /// id(m, all): the sum of every commitment ID, or the unsigned ID when
    /// unsigned.
    pub fn id_all(&self) -> Result<Id, MessageError> {
        self.id(&IdSelector::All)
    }

    /// id(m, selector) (SPEC §2.5): the sum modulo 2^256 of the selected
    /// commitment IDs. Selecting none (`none`, `all` on an unsigned
    /// message, an empty committer list) gives the unsigned ID; a listed
    /// committer without a commitment is
    /// [`MessageError::RequestedCommittersNotFound`].
    pub fn id(&self, selector: &IdSelector) -> Result<Id, MessageError> {
        if *selector == IdSelector::None {
            return Ok(self.unsigned_id());
        }
        let entries = self.entries()?;
        let selected = select(&entries, selector)?;
        if selected.is_empty() {
            // `all` on an unsigned message, or an empty committer list.
            return Ok(self.unsigned_id());
        }
        let ids = selected
            .iter()
            .map(|e| Id::parse(e.id).map_err(|_| invalid(e.id, "commitment ID is not an ID")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Id::sum(&ids))
    }

    /// Reads the `commitments` map (empty when absent).
    pub(crate) fn entries(&self) -> Result<Vec<Entry<'_>>, MessageError> {
        let map = match self.get(COMMITMENTS) {
            None => return Ok(Vec::new()),
            Some(Value::Message(m)) => m,
            Some(_) => return Err(invalid("-", "`commitments` is not a message")),
        };
        map.iter()
            .map(|(k, v)| match v {
                Value::Message(body) => Ok(Entry {
                    id: k.as_str(),
                    body,
                }),
                _ => Err(invalid(k.as_str(), "commitment is not a message")),
            })
            .collect()
    }

    /// Signs the message with `key` over `committed` (default: every
    /// non-private key except `commitments`) with `ed25519@1.0`, and adds
    /// the commitment to any existing ones. Deterministic: committing the
    /// same content with the same key again changes nothing.
    pub fn commit(
        &self,
        key: &NodeKey,
        committed: Option<&[Key]>,
    ) -> Result<Message, MessageError> {
        let keys = self.keys_to_commit(committed)?;
        let digest = canonical::digest(self, Select::Only(&keys));
        let signature = key.sign(&digest).to_bytes();
        let id = human(&Sha256::digest(signature).into());
        let body = Message::new()
            .with("commitment-device", ED25519_DEVICE)?
            .with("committer", key.address())?
            .with("keyid", key.keyid())?
            .with("signature", encode_base64url(&signature))?
            .with(
                "committed",
                Value::List(keys.iter().map(|k| Value::from(k.as_str())).collect()),
            )?;
        self.with_commitment(&id, body)
    }

    /// [`commit`](Message::commit) with the named device: `ed25519@1.0`
    /// exactly as `commit`; `ans104@1.0` as a type-2 item signed by `key`
    /// (SPEC §10.2, see [`crate::ans104`] for which values can be tags).
    /// Either way the commitment is added to any existing ones, and
    /// committing again changes nothing.
    pub fn commit_with(
        &self,
        device: CommitmentDevice,
        key: &NodeKey,
        committed: Option<&[Key]>,
    ) -> Result<Message, MessageError> {
        match device {
            CommitmentDevice::Ed25519 => self.commit(key, committed),
            CommitmentDevice::Ans104 => {
                let keys = self.keys_to_commit(committed)?;
                ans104::commit(self, key, &keys)
            }
        }
    }

    /// The message with `body` added to its `commitments` under `id`.
    pub(crate) fn with_commitment(&self, id: &str, body: Message) -> Result<Message, MessageError> {
        let mut commitments = match self.get(COMMITMENTS) {
            None => Message::new(),
            Some(Value::Message(m)) => m.clone(),
            Some(_) => return Err(invalid("-", "`commitments` is not a message")),
        };
        commitments.insert(id, body)?;
        let mut out = self.clone();
        out.insert(COMMITMENTS, commitments)?;
        Ok(out)
    }

    /// The keys a new commitment covers: `committed` normalised, sorted and
    /// checked (no `commitments`, no private key, none absent), or every
    /// non-private key except `commitments`.
    fn keys_to_commit(&self, committed: Option<&[Key]>) -> Result<Vec<Key>, MessageError> {
        Ok(match committed {
            Some(ks) => {
                let mut ks = ks.to_vec();
                ks.sort();
                ks.dedup();
                for k in &ks {
                    if k.as_str() == COMMITMENTS {
                        return Err(invalid("-", "`commitments` cannot be committed"));
                    }
                    if k.is_private() {
                        return Err(invalid(
                            "-",
                            format!("private key {k:?} cannot be committed"),
                        ));
                    }
                    if self.get(k.as_str()).is_none() {
                        return Err(invalid("-", format!("committed key {k:?} is absent")));
                    }
                }
                ks
            }
            None => self.uncommitted_keys(),
        })
    }

    /// The distinct committer addresses, sorted.
    pub fn committers(&self) -> Result<Vec<String>, MessageError> {
        let mut out: Vec<String> = self
            .entries()?
            .iter()
            .filter_map(|e| e.committer().map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The keys covered by every selected commitment (their intersection),
    /// sorted. Selecting none (unsigned, `none`, an empty committer list):
    /// every non-private key but `commitments`. A listed committer without
    /// a commitment is [`MessageError::RequestedCommittersNotFound`].
    pub fn committed(&self, selector: &IdSelector) -> Result<Vec<Key>, MessageError> {
        let entries = self.entries()?;
        let selected = select(&entries, selector)?;
        if selected.is_empty() {
            // Unsigned, `none`, or an empty committer list.
            return Ok(self.uncommitted_keys());
        }
        let mut acc: Option<Vec<Key>> = None;
        for e in selected {
            let keys = e.committed().map_err(|r| invalid(e.id, r))?;
            acc = Some(match acc {
                None => keys,
                Some(prev) => prev
                    .into_iter()
                    .filter(|k| keys.binary_search(k).is_ok())
                    .collect(),
            });
        }
        Ok(acc.unwrap_or_default())
    }

    /// Every non-private key except `commitments`: what an unsigned message
    /// (or an empty selection) counts as committed.
    fn uncommitted_keys(&self) -> Vec<Key> {
        self.keys()
            .filter(|k| k.as_str() != COMMITMENTS)
            .cloned()
            .collect()
    }

    /// The message restricted to its committed keys, plus `commitments`.
    /// Unsigned messages are returned unchanged (private keys included),
    /// except that an empty `commitments` map is dropped: it means unsigned,
    /// so the result is the unsigned form and [`is_signed`] is false on it.
    /// Signed messages lose their private keys, which no commitment can
    /// cover. Malformed commitments (a missing or mistyped field, a
    /// `committed` list naming `commitments` or a private key) and
    /// commitments naming absent keys give [`MessageError::InvalidCommitment`].
    ///
    /// [`is_signed`]: Message::is_signed
    pub fn with_only_committed(&self) -> Result<Message, MessageError> {
        let entries = self.entries()?;
        if entries.is_empty() {
            let mut out = self.clone();
            // `entries` read a message here (or nothing): an empty map.
            out.remove(COMMITMENTS);
            return Ok(out);
        }
        for e in &entries {
            e.well_formed().map_err(|r| invalid(e.id, r))?;
            let keys = e.committed().map_err(|r| invalid(e.id, r))?;
            if let Some(k) = keys.iter().find(|k| self.get(k.as_str()).is_none()) {
                return Err(invalid(e.id, format!("committed key {k:?} is absent")));
            }
        }
        let keep = self.committed(&IdSelector::All)?;
        Ok(self
            .iter()
            .filter(|(k, _)| k.as_str() == COMMITMENTS || keep.binary_search(k).is_ok())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// Verifies the selected top-level commitments (SPEC §2.6): checks 1–4,
    /// the per-key checks, then each signature under the ZIP-215 rules.
    /// Vacuously valid with none. Naming a committer without a commitment
    /// is [`MessageError::RequestedCommittersNotFound`].
    pub fn verify(&self, selector: &IdSelector) -> Result<Verification, MessageError> {
        Ok(self.plan(selector)?.answer(false))
    }

    /// Checks 1–4 and the per-key checks of the selected commitments, in
    /// order, up to the first failure (see [`Plan`]).
    fn plan(&self, selector: &IdSelector) -> Result<Plan, MessageError> {
        let mut plan = Plan {
            prepared: Vec::new(),
            then: None,
        };
        if *selector == IdSelector::None {
            return Ok(plan);
        }
        let entries = match self.entries() {
            Ok(e) => e,
            Err(MessageError::InvalidCommitment { id, reason }) => {
                plan.then = Some((id, VerifyFailure::MalformedCommitment, reason));
                return Ok(plan);
            }
            Err(e) => return Err(e),
        };
        for e in select(&entries, selector)? {
            match prepare(self, e) {
                Ok(Some(p)) => plan.prepared.push(p),
                // Fully checked already (`ans104@1.0` types 1 and 3).
                Ok(None) => {}
                Err(f) => {
                    plan.then = Some(f);
                    break;
                }
            }
        }
        Ok(plan)
    }
}

fn failure((commitment, reason, detail): Failure) -> Verification {
    Verification::Invalid {
        commitment,
        reason,
        detail,
    }
}

fn select<'a, 'b>(
    entries: &'b [Entry<'a>],
    selector: &IdSelector,
) -> Result<Vec<&'b Entry<'a>>, MessageError> {
    match selector {
        IdSelector::All => Ok(entries.iter().collect()),
        IdSelector::None => Ok(Vec::new()),
        IdSelector::Committers(wanted) => {
            let missing: Vec<String> = wanted
                .iter()
                .filter(|w| !entries.iter().any(|e| e.committer() == Some(w.as_str())))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(MessageError::RequestedCommittersNotFound(missing));
            }
            Ok(entries
                .iter()
                .filter(|e| e.committer().is_some_and(|c| wanted.iter().any(|w| w == c)))
                .collect())
        }
    }
}

/// Check 1 of SPEC §2.6, the device, then the device's own checks: every
/// check but the ed25519 signature equation, which is left to the caller
/// (`Some`); `None` when the commitment is fully checked already.
fn prepare(m: &Message, e: &Entry<'_>) -> Result<Option<Prepared>, Failure> {
    let device = e.text("commitment-device").ok_or_else(|| {
        (
            e.id.to_string(),
            VerifyFailure::MalformedCommitment,
            "field `commitment-device` is missing or not text".to_string(),
        )
    })?;
    match device {
        ED25519_DEVICE => prepare_ed25519(m, e).map(Some),
        ANS104_DEVICE => ans104::prepare(m, e),
        _ => Err((
            e.id.to_string(),
            VerifyFailure::UnsupportedCommitmentDevice,
            format!("commitment device {device:?} is neither {ED25519_DEVICE} nor {ANS104_DEVICE}"),
        )),
    }
}

/// Checks 2–4 of SPEC §2.6, in order, with the per-key checks of rule 5
/// made where the key is read (check 2), and computes the signed digest. A
/// missing or mistyped field is reported at the check that reads it.
fn prepare_ed25519(m: &Message, e: &Entry<'_>) -> Result<Prepared, Failure> {
    let fail = |reason, detail: String| (e.id.to_string(), reason, detail);
    let malformed = |field: &str| {
        fail(
            VerifyFailure::MalformedCommitment,
            format!("field `{field}` is missing or not text"),
        )
    };
    // 2. The key and the committer derived from it.
    let keyid = e.text("keyid").ok_or_else(|| malformed("keyid"))?;
    let committer = e.committer().ok_or_else(|| malformed("committer"))?;
    let key_bytes: [u8; 32] = decode_base64_any(keyid)
        .ok()
        .and_then(|b| b.as_slice().try_into().ok())
        .ok_or_else(|| {
            fail(
                VerifyFailure::InvalidKeyId,
                "keyid is not 32 bytes of base64".into(),
            )
        })?;
    // With rule 5's per-key checks (canonical encoding, not of small
    // order): they read the key alone, so they are made once per key, here.
    let key = zip215::checked_key(&key_bytes)
        .map_err(|r| fail(VerifyFailure::InvalidKeyId, r.detail().into()))?;
    if address_of(&key_bytes) != committer {
        return Err(fail(
            VerifyFailure::CommitterMismatch,
            "committer is not human(sha256(keyid))".into(),
        ));
    }
    // 3. The signature and the commitment ID derived from it.
    let signature = e.text("signature").ok_or_else(|| malformed("signature"))?;
    let sig_bytes: [u8; 64] = decode_base64_any(signature)
        .ok()
        .and_then(|b| b.as_slice().try_into().ok())
        .ok_or_else(|| {
            fail(
                VerifyFailure::InvalidSignatureEncoding,
                "signature is not 64 bytes of base64".into(),
            )
        })?;
    if human(&Sha256::digest(sig_bytes).into()) != e.id {
        return Err(fail(
            VerifyFailure::CommitmentIdMismatch,
            "commitment ID is not human(sha256(signature))".into(),
        ));
    }
    // 4. The committed keys are all present.
    let committed = e
        .committed()
        .map_err(|r| fail(VerifyFailure::MalformedCommitment, r))?;
    if let Some(k) = committed.iter().find(|k| m.get(k.as_str()).is_none()) {
        return Err(fail(
            VerifyFailure::MissingCommittedKey,
            format!("committed key {k:?} is absent"),
        ));
    }
    Ok(Prepared {
        commitment: e.id.to_string(),
        key,
        signature: Signature::from_bytes(&sig_bytes),
        signed: Signed::Digest(canonical::digest(m, Select::Only(&committed))),
    })
}

/// The most signatures [`verify_batch`] puts in one batch equation (more
/// are split by whole messages). Measured in docs/PERFORMANCE.md: beyond a
/// few dozen signatures the equation's tables (1.3 KB per point, two points
/// per signature) outgrow the caches and the allocator's reuse, and the
/// cost per signature rises again; smaller chunks also bound what one bad
/// signature costs: the single checks of its chunk only.
pub const BATCH_CHUNK: usize = 32;

/// Verifies many messages (selector `all`), giving for each exactly the
/// answer of [`Message::verify`], with ZIP-215 batch equations over their
/// signatures (one equation per [`BATCH_CHUNK`] signatures, whole messages).
///
/// Checks 1–4 and the per-key checks run per message first (they are
/// deterministic, and cached per key). The signatures that reach check 5
/// are verified in batches; under the ZIP-215 rules a batch accepts iff
/// every signature is accepted on its own, including small-order and
/// torsion-shifted `R`. A failed batch falls back to single checks of its
/// messages, message by message and commitment by commitment in order, so
/// the first failing commitment is named exactly as [`Message::verify`]
/// names it.
pub fn verify_batch(messages: &[&Message]) -> Vec<Verification> {
    let plans: Vec<Result<Plan, MessageError>> =
        messages.iter().map(|m| m.plan(&IdSelector::All)).collect();
    let signatures = |p: &Result<Plan, MessageError>| p.as_ref().map_or(0, |p| p.prepared.len());
    let mut answers = Vec::with_capacity(plans.len());
    let mut start = 0;
    while start < plans.len() {
        // Whole messages, up to BATCH_CHUNK signatures (at least one message).
        let mut end = start + 1;
        let mut n = signatures(&plans[start]);
        while end < plans.len() && n + signatures(&plans[end]) <= BATCH_CHUNK {
            n += signatures(&plans[end]);
            end += 1;
        }
        let chunk = &plans[start..end];
        let all_good = zip215::verify_all(
            chunk
                .iter()
                .filter_map(|p| p.as_ref().ok())
                .flat_map(|p| &p.prepared)
                .map(|p| (&p.key, &p.signature, p.signed.as_slice())),
        );
        answers.extend(chunk.iter().map(|plan| match plan {
            Ok(plan) => plan.answer(all_good),
            // Selector `all` names no committer: not reached today, but an
            // error is an answer too.
            Err(e) => Verification::Invalid {
                commitment: "-".into(),
                reason: VerifyFailure::MalformedCommitment,
                detail: e.to_string(),
            },
        }));
        start = end;
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_seed(&[n; 32])
    }

    fn signed() -> Message {
        msg! { "a" => 1, "b" => "two" }
            .commit(&key(1), None)
            .unwrap()
    }

    /// `signed()` with its commitment filed under `id` instead.
    fn refiled(id: &str) -> Message {
        let m = signed();
        let body = m.entries().unwrap()[0].body.clone();
        let mut commitments = Message::new();
        commitments.insert(id, body).unwrap();
        let mut out = m.clone();
        out.insert(COMMITMENTS, commitments).unwrap();
        out
    }

    #[test]
    fn a_commitment_whose_id_starts_with_priv_is_kept() {
        // A commitment's ID is human(sha256(signature)): one in 2^24
        // starts with `priv`. Its entry must not turn private, or the
        // message reads as unsigned and loses its commitment when stored.
        let id = format!("priv{}", &signed().id_all().unwrap().to_human()[4..]);
        let m = refiled(&id);
        assert!(m.is_signed());
        assert_eq!(m.entries().unwrap().len(), 1);
        assert_eq!(m.committers().unwrap(), vec![key(1).address().to_string()]);
        assert_eq!(m.id_all().unwrap().to_human(), id);
        let back = crate::canonical::decode(&crate::canonical::encode_whole(&m), 64).unwrap();
        assert_eq!(back, m);
        assert!(back.is_signed());
    }

    #[test]
    fn a_signed_message_verifies() {
        assert_eq!(
            signed().verify(&IdSelector::All).unwrap(),
            Verification::Valid
        );
    }

    #[test]
    fn tampering_with_a_committed_value_fails() {
        let mut m = signed();
        m.insert("a", 2).unwrap();
        assert!(matches!(
            m.verify(&IdSelector::All).unwrap(),
            Verification::Invalid {
                reason: VerifyFailure::BadSignature,
                ..
            }
        ));
    }

    #[test]
    fn removing_a_committed_key_fails() {
        let mut m = signed();
        m.remove("b");
        assert!(matches!(
            m.verify(&IdSelector::All).unwrap(),
            Verification::Invalid {
                reason: VerifyFailure::MissingCommittedKey,
                ..
            }
        ));
    }

    #[test]
    fn adding_an_uncommitted_key_keeps_it_valid() {
        let mut m = signed();
        m.insert("c", 3).unwrap();
        assert!(m.verify(&IdSelector::All).unwrap().is_valid());
        assert_eq!(m.with_only_committed().unwrap(), signed());
    }

    #[test]
    fn a_wrong_key_fails() {
        let mut m = signed();
        let other = key(2);
        let commitments = m.get_message("commitments").unwrap().clone();
        let (cid, body) = commitments.iter().next().unwrap();
        let mut body = body.as_message().unwrap().clone();
        body.insert("keyid", other.keyid()).unwrap();
        body.insert("committer", other.address()).unwrap();
        m.insert("commitments", msg! { cid.as_str() => body })
            .unwrap();
        assert!(matches!(
            m.verify(&IdSelector::All).unwrap(),
            Verification::Invalid {
                reason: VerifyFailure::BadSignature,
                ..
            }
        ));
    }

    #[test]
    fn a_swapped_signature_fails() {
        let m = signed();
        let other = msg! { "a" => 9, "b" => "two" }
            .commit(&key(1), None)
            .unwrap();
        let theirs = other.get_message("commitments").unwrap().clone();
        let mut swapped = m.clone();
        swapped.insert("commitments", theirs).unwrap();
        assert!(!swapped.verify(&IdSelector::All).unwrap().is_valid());
    }

    #[test]
    fn multi_party_ids_sum_and_are_order_independent() {
        let base = msg! { "x" => 1 };
        let ab = base
            .commit(&key(1), None)
            .unwrap()
            .commit(&key(2), None)
            .unwrap();
        let ba = base
            .commit(&key(2), None)
            .unwrap()
            .commit(&key(1), None)
            .unwrap();
        assert_eq!(ab, ba);
        assert_eq!(ab.committers().unwrap().len(), 2);
        let one = ab
            .id(&IdSelector::Committers(vec![key(1).address().into()]))
            .unwrap();
        let two = ab
            .id(&IdSelector::Committers(vec![key(2).address().into()]))
            .unwrap();
        assert_eq!(ab.id_all().unwrap(), Id::sum([&one, &two]));
        assert_eq!(ab.id(&IdSelector::None).unwrap(), base.unsigned_id());
        assert!(ab.verify(&IdSelector::All).unwrap().is_valid());
    }

    #[test]
    fn recommitting_changes_nothing() {
        let m = signed();
        assert_eq!(m.commit(&key(1), None).unwrap(), m);
    }

    #[test]
    fn requested_committers_must_exist() {
        let sel = IdSelector::Committers(vec![key(3).address().into()]);
        assert!(matches!(
            signed().verify(&sel),
            Err(MessageError::RequestedCommittersNotFound(_))
        ));
        assert!(matches!(
            signed().id(&sel),
            Err(MessageError::RequestedCommittersNotFound(_))
        ));
    }

    #[test]
    fn bad_committed_sets_are_rejected() {
        let m = msg! { "a" => 1 };
        for k in ["commitments", "missing"] {
            let ks = [Key::new(k).unwrap()];
            assert!(
                matches!(
                    m.commit(&key(1), Some(&ks)),
                    Err(MessageError::InvalidCommitment { .. })
                ),
                "{k}"
            );
        }
        let mut p = m.clone();
        p.set_private("priv-x", 1).unwrap();
        let ks = [Key::new("priv-x").unwrap()];
        assert!(matches!(
            p.commit(&key(1), Some(&ks)),
            Err(MessageError::InvalidCommitment { .. })
        ));
    }

    #[test]
    fn partial_commitments_cover_only_their_keys() {
        let m = msg! { "a" => 1, "b" => 2 };
        let ks = [Key::new("a").unwrap()];
        let mut s = m.commit(&key(1), Some(&ks)).unwrap();
        assert_eq!(
            s.committed(&IdSelector::All).unwrap(),
            vec![Key::new("a").unwrap()]
        );
        s.insert("b", 5).unwrap();
        assert!(s.verify(&IdSelector::All).unwrap().is_valid());
        assert!(s.with_only_committed().unwrap().get("b").is_none());
    }

    #[test]
    fn unsupported_devices_fail_with_their_reason() {
        let mut m = signed();
        let mut cs = m.get_message("commitments").unwrap().clone();
        let cid = cs.keys().next().unwrap().clone();
        let mut body = cs.get_message(cid.as_str()).unwrap().clone();
        body.insert("commitment-device", "rsa-pss@1.0").unwrap();
        cs.insert_key(cid, body);
        m.insert("commitments", cs).unwrap();
        assert!(matches!(
            m.verify(&IdSelector::All).unwrap(),
            Verification::Invalid {
                reason: VerifyFailure::UnsupportedCommitmentDevice,
                ..
            }
        ));
    }

    /// Replaces fields of the one commitment of `m`.
    fn edit_commitment(m: &Message, edit: impl FnOnce(&mut Message)) -> Message {
        let cs = m.get_message("commitments").unwrap();
        let (cid, body) = cs.iter().next().unwrap();
        let mut body = body.as_message().unwrap().clone();
        edit(&mut body);
        let mut out = m.clone();
        out.insert("commitments", msg! { cid.as_str() => body })
            .unwrap();
        out
    }

    fn reason(m: &Message) -> VerifyFailure {
        match m.verify(&IdSelector::All).unwrap() {
            Verification::Invalid { reason, .. } => reason,
            Verification::Valid => panic!("expected a failure"),
        }
    }

    #[test]
    fn checks_run_in_the_spec_order() {
        let m = signed();
        // A bad keyid is check 2: it is reported before a missing signature
        // (check 3) and a missing committed key (check 4).
        let both = edit_commitment(&m, |b| {
            b.insert("keyid", "AAAA").unwrap();
            b.remove("signature");
        });
        assert_eq!(reason(&both), VerifyFailure::InvalidKeyId);
        let mut all_three = both.clone();
        all_three.remove("a");
        assert_eq!(reason(&all_three), VerifyFailure::InvalidKeyId);
        // With a good key, the missing signature is next.
        let no_sig = edit_commitment(&m, |b| {
            b.remove("signature");
        });
        assert_eq!(reason(&no_sig), VerifyFailure::MalformedCommitment);
        // The device comes before everything.
        let device = edit_commitment(&all_three, |b| {
            b.insert("commitment-device", "rsa-pss-sha512@1.0").unwrap();
        });
        assert_eq!(reason(&device), VerifyFailure::UnsupportedCommitmentDevice);
        // A committer that does not match its keyid.
        let committer = edit_commitment(&m, |b| {
            b.insert("committer", key(2).address()).unwrap();
        });
        assert_eq!(reason(&committer), VerifyFailure::CommitterMismatch);
        // A signature under another commitment ID.
        let sig = edit_commitment(&m, |b| {
            b.insert("signature", encode_base64url(&[1; 64])).unwrap();
        });
        assert_eq!(reason(&sig), VerifyFailure::CommitmentIdMismatch);
        let short = edit_commitment(&m, |b| {
            b.insert("signature", encode_base64url(&[1; 63])).unwrap();
        });
        assert_eq!(reason(&short), VerifyFailure::InvalidSignatureEncoding);
    }

    #[test]
    fn committed_lists_naming_commitments_or_private_keys_are_malformed() {
        for bad in ["commitments", "priv-x"] {
            let m = edit_commitment(&signed(), |b| {
                b.insert("committed", Value::List(vec![Value::from(bad)]))
                    .unwrap();
            });
            assert_eq!(reason(&m), VerifyFailure::MalformedCommitment, "{bad}");
            assert!(
                matches!(
                    m.with_only_committed(),
                    Err(MessageError::InvalidCommitment { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn with_only_committed_rejects_malformed_commitments() {
        let no_sig = edit_commitment(&signed(), |b| {
            b.remove("signature");
        });
        assert!(matches!(
            no_sig.with_only_committed(),
            Err(MessageError::InvalidCommitment { .. })
        ));
        let mut absent = signed();
        absent.remove("a");
        assert!(matches!(
            absent.with_only_committed(),
            Err(MessageError::InvalidCommitment { .. })
        ));
        let not_a_map = msg! { "a" => 1, "commitments" => 5 };
        assert!(matches!(
            not_a_map.with_only_committed(),
            Err(MessageError::InvalidCommitment { .. })
        ));
    }

    #[test]
    fn unsigned_messages_pass_through_with_only_committed() {
        let mut m = msg! { "a" => 1 };
        m.set_private("priv", 2).unwrap();
        assert_eq!(m.with_only_committed().unwrap(), m);
    }

    #[test]
    fn an_empty_commitments_map_means_unsigned() {
        let plain = msg! { "a" => 1 };
        let mut empty = plain.clone();
        empty.insert(COMMITMENTS, Message::new()).unwrap();
        let wire = crate::json::from_json(br#"{"a": 1, "commitments": {}}"#).unwrap();
        assert_eq!(wire, empty);
        for m in [&empty, &wire] {
            assert!(!m.is_signed());
            assert!(m.commitments().is_none());
            assert!(m.committers().unwrap().is_empty());
            // What the scheduler does with a body: restrict, then ask.
            let only = m.with_only_committed().unwrap();
            assert_eq!(only, plain);
            assert!(only.get(COMMITMENTS).is_none());
            assert!(!only.is_signed());
            assert_eq!(
                canonical::encode_whole(&only),
                canonical::encode_whole(&plain)
            );
            assert_eq!(only.unsigned_id(), plain.unsigned_id());
            assert_eq!(m.id_all().unwrap(), plain.id_all().unwrap());
        }
        // Signing a message that carries an empty map signs it.
        let signed_now = empty.commit(&key(1), None).unwrap();
        assert!(signed_now.is_signed());
        assert_eq!(signed_now, plain.commit(&key(1), None).unwrap());
        assert!(signed().is_signed());
        assert!(signed().commitments().is_some());
        assert!(!plain.is_signed());
        // A non-message `commitments` claims signatures: signed, and rejected.
        let bogus = msg! { "a" => 1, "commitments" => 5 };
        assert!(bogus.is_signed());
        assert!(bogus.commitments().is_none());
        assert!(bogus.with_only_committed().is_err());
    }

    #[test]
    fn selectors_on_unsigned_messages() {
        let m = msg! { "b" => 1, "a" => 2 };
        let keys = vec![Key::new("a").unwrap(), Key::new("b").unwrap()];
        assert_eq!(m.committed(&IdSelector::All).unwrap(), keys);
        assert_eq!(m.committed(&IdSelector::None).unwrap(), keys);
        assert_eq!(m.id_all().unwrap(), m.unsigned_id());
        let someone = IdSelector::Committers(vec![key(1).address().into()]);
        assert!(matches!(
            m.committed(&someone),
            Err(MessageError::RequestedCommittersNotFound(_))
        ));
        assert!(matches!(
            m.id(&someone),
            Err(MessageError::RequestedCommittersNotFound(_))
        ));
        // An empty committer list selects nothing: the unsigned answers.
        let nobody = IdSelector::Committers(vec![]);
        assert_eq!(signed().id(&nobody).unwrap(), signed().unsigned_id());
        assert_eq!(signed().committed(&nobody).unwrap().len(), 2);
        assert!(signed().verify(&nobody).unwrap().is_valid());
    }

    #[test]
    fn committed_intersects_the_selected_commitments() {
        let m = msg! { "a" => 1, "b" => 2, "c" => 3 };
        let ab = [Key::new("a").unwrap(), Key::new("b").unwrap()];
        let bc = [Key::new("b").unwrap(), Key::new("c").unwrap()];
        let s = m
            .commit(&key(1), Some(&ab))
            .unwrap()
            .commit(&key(2), Some(&bc))
            .unwrap();
        assert_eq!(
            s.committed(&IdSelector::All).unwrap(),
            vec![Key::new("b").unwrap()]
        );
        let one = IdSelector::Committers(vec![key(1).address().into()]);
        assert_eq!(s.committed(&one).unwrap(), ab.to_vec());
        assert_eq!(
            s.with_only_committed().unwrap().keys().count(),
            2 // b and commitments
        );
    }

    #[test]
    fn verify_with_none_is_vacuous_even_for_malformed_commitments() {
        let m = msg! { "a" => 1, "commitments" => 5 };
        assert!(m.verify(&IdSelector::None).unwrap().is_valid());
        assert!(!m.verify(&IdSelector::All).unwrap().is_valid());
    }

    #[test]
    fn batch_verification_agrees_with_single() {
        let good: Vec<Message> = (0..8)
            .map(|i| msg! { "n" => i }.commit(&key(i as u8 + 1), None).unwrap())
            .collect();
        let mut bad = good[3].clone();
        bad.insert("n", 100).unwrap();
        let mut all: Vec<&Message> = good.iter().collect();
        all.push(&bad);
        let unsigned = msg! { "u" => 1 };
        all.push(&unsigned);
        let batch = verify_batch(&all);
        let single: Vec<Verification> = all
            .iter()
            .map(|m| m.verify(&IdSelector::All).unwrap())
            .collect();
        assert_eq!(batch, single);
        assert!(!batch[8].is_valid());
        assert!(batch[9].is_valid());
    }
}
