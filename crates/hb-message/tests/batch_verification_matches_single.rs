//! SPEC §2.6: "Batch verification MAY be offered and MUST give the same
//! answers, including on adversarial inputs (small-order keys,
//! torsion-shifted R, non-canonical s, mixed valid and invalid signatures in
//! one batch)".
//!
//! Each adversarial commitment below is crafted by hand (a key holder can
//! make all of them) and has a known answer under SPEC §2.6: ZIP-215 rules
//! for the signature (cofactored equation, `s < ℓ`, non-canonical `R`
//! accepted) after the per-key checks (canonical `keyid`, not of small
//! order). For every one, [`Message::verify`] gives that answer and
//! [`verify_batch`] gives the same, alone and among valid messages, at every
//! position; a property test does the same over random mixes.

mod common;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use hb_message::{
    address_of, encode_base64url, human, msg, verify_batch, IdSelector, Message, NodeKey, Value,
    Verification, VerifyFailure,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256, Sha512};

/// ℓ, the order of the prime-order subgroup, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `p + y` for a small `y` (< 19): a non-canonical encoding of the `y`
/// coordinate, sign bit clear.
fn y_plus_p(y: u8) -> [u8; 32] {
    assert!(y < 19);
    let mut b = [0xff; 32];
    b[0] = 0xed + y;
    b[31] = 0x7f;
    b
}

/// A point of large order whose `y` is below 19, so that it has a
/// non-canonical encoding `y + p`; with that encoding.
fn large_order_point_with_small_y() -> [u8; 32] {
    (0u8..19)
        .find(|&y| {
            let mut b = [0; 32];
            b[0] = y;
            CompressedEdwardsY(b)
                .decompress()
                .is_some_and(|p| !p.is_small_order())
        })
        .map(y_plus_p)
        .expect("some y < 19 is the y of a point of large order")
}

/// The 32-byte little-endian sum of two 256-bit numbers (no overflow here).
fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// `(R, s)` with `s = r + sha512(R ‖ A ‖ digest)·a`: valid under ZIP-215
/// whenever `[8]R = [8][r]B` and `[8]A = [8][a]B`, whatever the encodings.
fn sign_raw(a: Scalar, public: &[u8; 32], r: Scalar, big_r: &[u8; 32], digest: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(big_r);
    h.update(public);
    h.update(digest);
    let h = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + h * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// A commitment body over every key of `m` with the given key bytes and
/// signature, and its ID (human(sha256(signature))).
fn commitment(m: &Message, public: &[u8; 32], sig: &[u8; 64]) -> (String, Message) {
    let committed: Vec<Value> = m.keys().map(|k| Value::from(k.as_str())).collect();
    let body = msg! {
        "commitment-device" => "ed25519@1.0",
        "committer" => address_of(public),
        "keyid" => human(public),
        "signature" => encode_base64url(sig),
        "committed" => Value::List(committed),
    };
    (human(&Sha256::digest(sig).into()), body)
}

/// `m` (unsigned) with these hand-made commitments.
fn with_commitments(m: &Message, cs: &[([u8; 32], [u8; 64])]) -> Message {
    let mut map = Message::new();
    for (public, sig) in cs {
        let (id, body) = commitment(m, public, sig);
        map.insert(&id, body).unwrap();
    }
    m.clone().with("commitments", map).unwrap()
}

/// Whether bare ZIP-215 (ed25519-zebra, no per-key checks) accepts.
fn zip215_accepts(public: &[u8; 32], sig: &[u8; 64], digest: &[u8]) -> bool {
    ed25519_zebra::VerificationKey::try_from(*public)
        .and_then(|k| k.verify(&ed25519_zebra::Signature::from_bytes(sig), digest))
        .is_ok()
}

/// Whether ed25519-dalek's `verify_strict` (v1's rule) accepts.
fn strict_accepts(public: &[u8; 32], sig: &[u8; 64], digest: &[u8]) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(public)
        .and_then(|k| k.verify_strict(digest, &ed25519_dalek::Signature::from_bytes(sig)))
        .is_ok()
}

/// The kinds of commitment under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// An honest signature (`NodeKey::commit`).
    Good,
    /// An honest signature over a value changed afterwards.
    Tampered,
    /// `R + T` for the torsion point `EIGHT_TORSION[t]`, `t` in 1..8:
    /// cofactored ZIP-215 accepts, `verify_strict` does not.
    TorsionShiftedR(usize),
    /// `R` = the identity (small order), `s = k·a`.
    SmallOrderR,
    /// `R` = the identity written non-canonically (`y = 1 + p`).
    NonCanonicalR,
    /// An honest `s` plus ℓ: the same point, `s ≥ ℓ`.
    SPlusEll,
    /// `s` with its top bits set (≥ 2^255).
    HugeS,
    /// `R` bytes that decode to no point.
    RNotAPoint,
    /// The key is the torsion point `EIGHT_TORSION[t]` (`t` in 0..8), with
    /// a signature that bare ZIP-215 accepts for any message.
    SmallOrderKey(usize),
    /// The identity as key, written `y = 1 + p`, with a signature bare
    /// ZIP-215 accepts.
    NonCanonicalSmallOrderKey,
    /// The identity as key with the sign bit set (x = 0 has no sign).
    SignedIdentityKey,
    /// A point of large order written non-canonically (`y + p`).
    NonCanonicalKey,
}

impl Case {
    /// Every case, with each torsion point.
    fn all() -> Vec<Case> {
        let mut v = vec![Case::Good, Case::Tampered];
        v.extend((1..8).map(Case::TorsionShiftedR));
        v.extend([
            Case::SmallOrderR,
            Case::NonCanonicalR,
            Case::SPlusEll,
            Case::HugeS,
            Case::RNotAPoint,
        ]);
        v.extend((0..8).map(Case::SmallOrderKey));
        v.extend([
            Case::NonCanonicalSmallOrderKey,
            Case::SignedIdentityKey,
            Case::NonCanonicalKey,
        ]);
        v
    }

    /// The answer SPEC §2.6 gives: `None` for valid, else the reason.
    fn expected(self) -> Option<VerifyFailure> {
        match self {
            Case::Good | Case::TorsionShiftedR(_) | Case::SmallOrderR | Case::NonCanonicalR => None,
            Case::Tampered | Case::SPlusEll | Case::HugeS | Case::RNotAPoint => {
                Some(VerifyFailure::BadSignature)
            }
            Case::SmallOrderKey(_)
            | Case::NonCanonicalSmallOrderKey
            | Case::SignedIdentityKey
            | Case::NonCanonicalKey => Some(VerifyFailure::InvalidKeyId),
        }
    }

    /// The key bytes and signature of this case over `digest`; `n` varies
    /// the secret and the nonce.
    fn forge(self, n: u64, digest: &[u8; 32]) -> ([u8; 32], [u8; 64]) {
        let a = Scalar::from(n * 7 + 3);
        let r = Scalar::from(n * 13 + 5);
        let public = (a * ED25519_BASEPOINT_POINT).compress().to_bytes();
        let big_r = (r * ED25519_BASEPOINT_POINT).compress().to_bytes();
        let identity = EdwardsPoint::default().compress().to_bytes();
        match self {
            Case::Good | Case::Tampered => unreachable!("signed by NodeKey"),
            Case::TorsionShiftedR(t) => {
                let shifted = (r * ED25519_BASEPOINT_POINT + EIGHT_TORSION[t])
                    .compress()
                    .to_bytes();
                (public, sign_raw(a, &public, r, &shifted, digest))
            }
            Case::SmallOrderR => (
                public,
                sign_raw(a, &public, Scalar::ZERO, &identity, digest),
            ),
            Case::NonCanonicalR => (
                public,
                sign_raw(a, &public, Scalar::ZERO, &y_plus_p(1), digest),
            ),
            Case::SPlusEll => {
                let mut sig = sign_raw(a, &public, r, &big_r, digest);
                let s: [u8; 32] = sig[32..].try_into().unwrap();
                sig[32..].copy_from_slice(&add_le(&s, &ELL));
                (public, sig)
            }
            Case::HugeS => {
                let mut sig = sign_raw(a, &public, r, &big_r, digest);
                sig[63] |= 0xe0;
                (public, sig)
            }
            Case::RNotAPoint => {
                let mut sig = sign_raw(a, &public, r, &big_r, digest);
                let off_curve = (2u8..)
                    .map(|y| {
                        let mut b = [0; 32];
                        b[0] = y;
                        b
                    })
                    .find(|b| CompressedEdwardsY(*b).decompress().is_none())
                    .expect("some small y is off the curve");
                sig[..32].copy_from_slice(&off_curve);
                (public, sig)
            }
            Case::SmallOrderKey(t) => {
                let key = EIGHT_TORSION[t].compress().to_bytes();
                // [8]A = 0, so s = r passes the cofactored equation.
                (key, sign_raw(Scalar::ZERO, &key, r, &big_r, digest))
            }
            Case::NonCanonicalSmallOrderKey => {
                let key = y_plus_p(1);
                (key, sign_raw(Scalar::ZERO, &key, r, &big_r, digest))
            }
            Case::SignedIdentityKey => {
                let mut key = identity;
                key[31] |= 0x80;
                (key, sign_raw(Scalar::ZERO, &key, r, &big_r, digest))
            }
            Case::NonCanonicalKey => {
                // Its discrete log is unknown: the signature is a guess.
                let key = large_order_point_with_small_y();
                (key, sign_raw(a, &key, r, &big_r, digest))
            }
        }
    }

    /// A message holding one commitment of this case.
    fn message(self, n: u64) -> Message {
        let m = msg! { "n" => n as i64, "case" => format!("{self:?}") };
        match self {
            Case::Good => m.commit(&key(n), None).unwrap(),
            Case::Tampered => {
                let mut s = m.commit(&key(n), None).unwrap();
                s.insert("n", n as i64 + 1).unwrap();
                s
            }
            _ => {
                let digest = *m.unsigned_id().as_bytes();
                let (public, sig) = self.forge(n, &digest);
                with_commitments(&m, &[(public, sig)])
            }
        }
    }
}

fn key(n: u64) -> NodeKey {
    NodeKey::from_seed(&[(n % 251) as u8 + 1; 32])
}

fn single(m: &Message) -> Verification {
    m.verify(&IdSelector::All).unwrap()
}

fn reason(v: &Verification) -> Option<VerifyFailure> {
    match v {
        Verification::Valid => None,
        Verification::Invalid { reason, .. } => Some(*reason),
    }
}

/// The batch answers equal the single ones, message by message.
fn assert_batch_matches(ms: &[Message]) -> Vec<Verification> {
    let refs: Vec<&Message> = ms.iter().collect();
    let singles: Vec<Verification> = ms.iter().map(single).collect();
    assert_eq!(verify_batch(&refs), singles);
    singles
}

#[test]
fn every_case_has_its_spec_answer_alone_and_in_a_batch() {
    for case in Case::all() {
        for n in 0..3 {
            let m = case.message(n);
            let answer = single(&m);
            assert_eq!(
                reason(&answer),
                case.expected(),
                "{case:?} #{n}: {answer:?}"
            );
            assert_eq!(verify_batch(&[&m]), vec![answer], "{case:?} #{n} alone");
            // Among eight valid messages, at the front, the middle, the end.
            for at in [0, 4, 8] {
                let mut ms: Vec<Message> = (0..8).map(|i| Case::Good.message(100 + i)).collect();
                ms.insert(at, m.clone());
                let answers = assert_batch_matches(&ms);
                assert_eq!(reason(&answers[at]), case.expected(), "{case:?} at {at}");
                let valid = answers.iter().filter(|a| a.is_valid()).count();
                assert_eq!(valid, 8 + usize::from(case.expected().is_none()));
            }
        }
    }
}

#[test]
fn the_crafted_cases_are_what_they_claim() {
    let m = msg! { "x" => 1 };
    let digest = *m.unsigned_id().as_bytes();
    for case in Case::all() {
        if matches!(case, Case::Good | Case::Tampered) {
            continue;
        }
        let (public, sig) = case.forge(1, &digest);
        let zip215 = zip215_accepts(&public, &sig, &digest);
        let strict = strict_accepts(&public, &sig, &digest);
        match case {
            // ZIP-215 accepts what verify_strict (v1) rejected: the reason
            // v1's batch could not agree with its single verification.
            Case::TorsionShiftedR(_) | Case::SmallOrderR | Case::NonCanonicalR => {
                assert!(zip215 && !strict, "{case:?}");
            }
            // Rejected by the signature rules themselves.
            Case::SPlusEll | Case::HugeS | Case::RNotAPoint => {
                assert!(!zip215 && !strict, "{case:?}");
            }
            // Bare ZIP-215 accepts these weak keys: only the per-key checks
            // of SPEC §2.6 rule 5 reject them.
            Case::SmallOrderKey(_) | Case::NonCanonicalSmallOrderKey | Case::SignedIdentityKey => {
                assert!(zip215, "{case:?}");
            }
            Case::NonCanonicalKey => {
                let point = CompressedEdwardsY(public).decompress().unwrap();
                assert!(!point.is_small_order());
                assert_ne!(point.compress().to_bytes(), public);
            }
            Case::Good | Case::Tampered => unreachable!(),
        }
    }
}

#[test]
fn a_bad_signature_in_a_batch_of_good_ones_is_named_as_single_names_it() {
    for n in [16usize, 64] {
        for bad in [0, n / 3, n - 1] {
            let mut ms: Vec<Message> = (0..n as u64).map(|i| Case::Good.message(i)).collect();
            ms[bad].insert("n", -1).unwrap();
            let answers = assert_batch_matches(&ms);
            let failing: Vec<usize> = (0..n).filter(|&i| !answers[i].is_valid()).collect();
            assert_eq!(failing, vec![bad]);
            let Verification::Invalid { commitment, .. } = &answers[bad] else {
                unreachable!()
            };
            let id = ms[bad].get_message("commitments").unwrap().keys().next();
            assert_eq!(Some(commitment.as_str()), id.map(|k| k.as_str()));
        }
    }
}

#[test]
fn the_first_failing_commitment_of_a_message_is_named_by_both() {
    // Two commitments on one message, every ordered pair of cases: the
    // answer names the first failing one in ID order (a bad signature
    // before a bad key, or after it), batch and single alike.
    let m = msg! { "two" => "commitments" };
    let digest = *m.unsigned_id().as_bytes();
    let cases: Vec<Case> = Case::all()
        .into_iter()
        .filter(|c| !matches!(c, Case::Good | Case::Tampered))
        .collect();
    let mut ms = Vec::new();
    for (i, a) in cases.iter().enumerate() {
        for b in &cases[i..] {
            let ca = a.forge(1, &digest);
            let cb = b.forge(2, &digest);
            let signed = with_commitments(&m, &[ca, cb]);
            // Signed by a real key too, so that a valid one sits among them.
            ms.push(signed.commit(&key(9), None).unwrap());
            ms.push(signed);
        }
    }
    for chunk in ms.chunks(16) {
        let answers = assert_batch_matches(chunk);
        for (m, a) in chunk.iter().zip(&answers) {
            // The named commitment is the first, in ID order, whose case
            // fails on its own.
            let first_failing = m
                .get_message("commitments")
                .unwrap()
                .iter()
                .find(|(id, body)| {
                    let alone = m
                        .clone()
                        .with("commitments", msg! { id.as_str() => (*body).clone() })
                        .unwrap();
                    !single(&alone).is_valid()
                })
                .map(|(id, _)| id.as_str().to_string());
            match a {
                Verification::Valid => assert_eq!(first_failing, None),
                Verification::Invalid { commitment, .. } => {
                    assert_eq!(Some(commitment), first_failing.as_ref())
                }
            }
        }
    }
}

#[test]
fn one_key_signing_a_whole_batch_is_checked_per_signature() {
    // ed25519-zebra coalesces the terms of one key: a single bad signature
    // among them must still fail the batch and be found.
    let k = key(3);
    let mut ms: Vec<Message> = (0..32)
        .map(|i| msg! { "i" => i }.commit(&k, None).unwrap())
        .collect();
    assert!(assert_batch_matches(&ms).iter().all(Verification::is_valid));
    ms[17].insert("i", 1000).unwrap();
    let answers = assert_batch_matches(&ms);
    assert_eq!(answers.iter().filter(|a| !a.is_valid()).count(), 1);
    assert!(!answers[17].is_valid());
}

#[test]
fn honest_broken_and_unsigned_messages_get_the_single_answers() {
    let keys: Vec<_> = (1..=6u8).map(|i| NodeKey::from_seed(&[i; 32])).collect();
    let mut all: Vec<Message> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| msg! { "i" => i as i64 }.commit(k, None).unwrap())
        .collect();
    all[2].insert("i", 99).unwrap(); // tampered
    all[4].remove("i"); // committed key removed
    all.push(msg! { "unsigned" => true });
    all.push(msg! { "commitments" => 5 }); // malformed
    let single = assert_batch_matches(&all);
    let valid: Vec<bool> = single.iter().map(Verification::is_valid).collect();
    assert_eq!(valid, [true, true, false, true, false, true, true, false]);
    assert_eq!(verify_batch(&[]), Vec::<Verification>::new());
}

#[test]
fn batches_longer_than_a_chunk_are_split_by_whole_messages() {
    // verify_batch splits at BATCH_CHUNK signatures, never inside a
    // message: messages of two commitments straddle every boundary here.
    let cases = Case::all();
    let mut ms = Vec::new();
    for i in 0..(3 * hb_message::BATCH_CHUNK + 5) {
        let case = cases[i % cases.len()];
        let m = case.message(i as u64);
        ms.push(if i % 3 == 0 {
            m.commit(&key(i as u64 + 7), None).unwrap()
        } else {
            m
        });
    }
    let answers = assert_batch_matches(&ms);
    assert!(answers.iter().any(Verification::is_valid));
    assert!(!answers.iter().all(Verification::is_valid));
    // All valid but one, in the last chunk only: only that one fails.
    let mut good: Vec<Message> = (0..(2 * hb_message::BATCH_CHUNK as u64 + 3))
        .map(|i| Case::Good.message(i))
        .collect();
    let last = good.len() - 1;
    good[last].insert("n", -5).unwrap();
    let answers = assert_batch_matches(&good);
    assert_eq!(
        answers.iter().filter(|a| !a.is_valid()).count(),
        1,
        "{answers:?}"
    );
}

/// Messages of ANS-104 items (SPEC §10.2: batch verification applies to
/// the ed25519 ones) with their expected answers: each arbundles item of
/// types 1–3, valid; with its data changed (bad signature: RSA-PSS and
/// secp256k1 checked singly, ed25519 in the batch equation); under another
/// item's signature (commitment ID mismatch); the bare type-2 item under
/// another ed25519 key (bad signature).
fn ans104_messages() -> Vec<(Message, Option<VerifyFailure>)> {
    let mut out = Vec::new();
    let mut previous_signature: Option<Value> = None;
    for f in common::arbundles_fixtures() {
        let item = hb_message::hb_ans104::DataItem::parse(&f.bytes).unwrap();
        let m = Message::from_data_item(&item).unwrap();
        out.push((m.clone(), None));
        let (id, body) = {
            let cs = m.get_message("commitments").unwrap();
            let (id, body) = cs.iter().next().unwrap();
            (id.as_str().to_string(), body.as_message().unwrap().clone())
        };
        let edit = |edit: &dyn Fn(&mut Message)| {
            let mut body = body.clone();
            edit(&mut body);
            m.clone()
                .with("commitments", msg! { id.as_str() => body })
                .unwrap()
        };
        if m.get("data").is_some() {
            let mut changed = m.clone();
            changed.insert("data", "2 + 2").unwrap();
            out.push((changed, Some(VerifyFailure::BadSignature)));
        } else {
            let other = key(40);
            let swapped = edit(&|b| {
                b.insert("keyid", other.keyid()).unwrap();
                b.insert("committer", other.address()).unwrap();
            });
            out.push((swapped, Some(VerifyFailure::BadSignature)));
        }
        if let Some(sig) = &previous_signature {
            let foreign = edit(&|b| {
                b.insert("signature", sig.clone()).unwrap();
            });
            // Of the same length (same type): another ID; else the wrong
            // length for the type.
            let expected =
                if body.get_text("signature").map(str::len) == sig.as_text().map(str::len) {
                    VerifyFailure::CommitmentIdMismatch
                } else {
                    VerifyFailure::InvalidSignatureEncoding
                };
            out.push((foreign, Some(expected)));
        }
        previous_signature = body.get("signature").cloned();
    }
    out
}

#[test]
fn ans104_commitments_get_the_single_answers_alone_and_among_ed25519_cases() {
    let ans = ans104_messages();
    assert_eq!(ans.len(), 5 * 2 + 4);
    for (m, expected) in &ans {
        let answer = single(m);
        assert_eq!(reason(&answer), *expected, "{answer:?}");
        assert_eq!(verify_batch(&[m]), vec![answer]);
    }
    // Interleaved with every ed25519 case, adversarial ones included, and
    // in one run of valid type-2 items and valid ed25519 messages.
    let cases = Case::all();
    let mut mixed = Vec::new();
    let mut expected = Vec::new();
    for (i, (m, e)) in ans.iter().enumerate() {
        let case = cases[i % cases.len()];
        mixed.push(case.message(i as u64));
        expected.push(case.expected());
        mixed.push(m.clone());
        expected.push(*e);
    }
    let answers = assert_batch_matches(&mixed);
    let reasons: Vec<Option<VerifyFailure>> = answers.iter().map(reason).collect();
    assert_eq!(reasons, expected);
    let mut good: Vec<Message> = (0..8).map(|i| Case::Good.message(i)).collect();
    good.extend(
        ans.iter()
            .filter(|(_, e)| e.is_none())
            .map(|(m, _)| m.clone()),
    );
    assert!(assert_batch_matches(&good)
        .iter()
        .all(Verification::is_valid));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random mixes of valid, invalid and adversarial commitments: the
    /// batch answers are the single answers, which are the SPEC's.
    #[test]
    fn batch_equals_single_on_random_mixes(
        picks in prop::collection::vec((any::<prop::sample::Index>(), 0u64..1000), 0..24),
    ) {
        let cases = Case::all();
        let ms: Vec<(Case, Message)> = picks
            .iter()
            .map(|(i, n)| {
                let case = *i.get(&cases);
                (case, case.message(*n))
            })
            .collect();
        let refs: Vec<&Message> = ms.iter().map(|(_, m)| m).collect();
        let batch = verify_batch(&refs);
        for ((case, m), b) in ms.iter().zip(&batch) {
            let s = single(m);
            prop_assert_eq!(&s, b);
            prop_assert_eq!(reason(&s), case.expected(), "{:?}", case);
        }
    }
}
