//! SPEC §2.6: "Batch verification MAY be offered and MUST give the same
//! answers." These signatures are crafted by a key holder so that the
//! cofactorless ed25519 batch equation accepts them while `verify_strict`
//! (and so [`Message::verify`]) rejects them; `verify_batch` must reject
//! them too.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};
use hb_message::{
    address_of, encode_base64url, human, msg, verify_batch, IdSelector, Message, Value,
    Verification, VerifyFailure,
};
use sha2::{Digest, Sha256, Sha512};

/// A commitment over every key of `m` (unsigned) with a hand-made signature.
fn with_commitment(m: &Message, public: &CompressedEdwardsY, sig: &[u8; 64]) -> Message {
    let id = human(&Sha256::digest(sig).into());
    let committed: Vec<Value> = m.keys().map(|k| Value::from(k.as_str())).collect();
    let body = msg! {
        "commitment-device" => "ed25519@1.0",
        "committer" => address_of(public.as_bytes()),
        "keyid" => human(public.as_bytes()),
        "signature" => encode_base64url(sig),
        "committed" => Value::List(committed),
    };
    m.clone()
        .with("commitments", msg! { id.as_str() => body })
        .unwrap()
}

/// Signs `digest` with secret scalar `a`, nonce `r`, and `R` shifted by `t`.
fn craft(a: Scalar, r: Scalar, t: EdwardsPoint, digest: &[u8; 32]) -> [u8; 64] {
    let public = (a * ED25519_BASEPOINT_POINT).compress();
    let big_r = (r * ED25519_BASEPOINT_POINT + t).compress();
    let mut h = Sha512::new();
    h.update(big_r.as_bytes());
    h.update(public.as_bytes());
    h.update(digest);
    let h = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + h * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

fn expect_bad_signature(m: &Message) {
    let single = m.verify(&IdSelector::All).unwrap();
    assert!(
        matches!(
            single,
            Verification::Invalid {
                reason: VerifyFailure::BadSignature,
                ..
            }
        ),
        "{single:?}"
    );
    assert_eq!(verify_batch(&[m]), vec![single]);
}

#[test]
fn a_torsion_shifted_r_is_rejected_by_batch_and_single_alike() {
    let a = Scalar::from_bytes_mod_order([7; 32]);
    let public = (a * ED25519_BASEPOINT_POINT).compress();
    let vk = VerifyingKey::from_bytes(public.as_bytes()).unwrap();
    // R + T with T of order 2: the batch equation's coefficient z kills T
    // whenever z is even. Find a nonce for which dalek's deterministic
    // batch accepts, then check that hb does not.
    let t = EIGHT_TORSION[4];
    let mut found = false;
    for n in 0u8..64 {
        let m = msg! { "n" => i64::from(n), "data" => "crafted" };
        let digest = *m.unsigned_id().as_bytes();
        let sig = craft(a, Scalar::from_bytes_mod_order([n + 1; 32]), t, &digest);
        let signature = Signature::from_bytes(&sig);
        assert!(vk.verify_strict(&digest, &signature).is_err());
        if ed25519_dalek::verify_batch(&[&digest[..]], &[signature], &[vk]).is_ok() {
            found = true;
            expect_bad_signature(&with_commitment(&m, &public, &sig));
        }
    }
    assert!(
        found,
        "no nonce made the batch equation accept (p = 1/2 each)"
    );
}

#[test]
fn a_small_order_r_is_rejected_by_batch_and_single_alike() {
    // R = identity and s = h·a satisfy the cofactorless equation exactly,
    // so any batch equation accepts; verify_strict rejects small-order R.
    let a = Scalar::from_bytes_mod_order([9; 32]);
    let public = (a * ED25519_BASEPOINT_POINT).compress();
    let m = msg! { "x" => 1 };
    let digest = *m.unsigned_id().as_bytes();
    let sig = craft(a, Scalar::ZERO, EdwardsPoint::default(), &digest);
    let vk = VerifyingKey::from_bytes(public.as_bytes()).unwrap();
    let signature = Signature::from_bytes(&sig);
    assert!(ed25519_dalek::verify_batch(&[&digest[..]], &[signature], &[vk]).is_ok());
    expect_bad_signature(&with_commitment(&m, &public, &sig));
}

#[test]
fn honest_and_broken_messages_get_the_single_answers() {
    let keys: Vec<_> = (1..=6u8)
        .map(|i| hb_message::NodeKey::from_seed(&[i; 32]))
        .collect();
    let mut all: Vec<Message> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| msg! { "i" => i as i64 }.commit(k, None).unwrap())
        .collect();
    all[2].insert("i", 99).unwrap(); // tampered
    all[4].remove("i"); // committed key removed
    all.push(msg! { "unsigned" => true });
    let refs: Vec<&Message> = all.iter().collect();
    let single: Vec<Verification> = refs
        .iter()
        .map(|m| m.verify(&IdSelector::All).unwrap())
        .collect();
    assert_eq!(verify_batch(&refs), single);
    let valid: Vec<bool> = single.iter().map(Verification::is_valid).collect();
    assert_eq!(valid, [true, true, false, true, false, true, true]);
}
