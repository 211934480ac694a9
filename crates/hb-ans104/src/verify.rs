//! Signature verification of the three supported types (SPEC §10.1).

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::{Signature as EdSignature, VerificationKey};
use k256::ecdsa::{RecoveryId, Signature as EcSignature, VerifyingKey as EcKey};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use sha2::{Digest, Sha256};
use sha3::Keccak256;

use crate::error::{Ans104Error, Result};
use crate::item::{DataItem, SignatureType};

const SHA256_LEN: usize = 32;

impl DataItem {
    /// Verifies the signature over [`DataItem::signing_message`] under the
    /// owner: `Ok(())` or `InvalidSignature` with the reason.
    pub fn verify(&self) -> Result<()> {
        let m = self.signing_message();
        match self.signature_type() {
            SignatureType::Arweave => verify_rsa_pss(self.owner(), &m, self.signature()),
            SignatureType::Ed25519 => verify_ed25519(self.owner(), &m, self.signature()),
            SignatureType::Ethereum => verify_ethereum(self.owner(), &m, self.signature()),
        }
    }
}

/// The EIP-191 personal-message hash of a 48-byte signing message.
pub(crate) fn eip191_hash(m: &[u8; 48]) -> [u8; 32] {
    Keccak256::new()
        .chain_update(b"\x19Ethereum Signed Message:\n48")
        .chain_update(m)
        .finalize()
        .into()
}

/// MGF1 with SHA-256, XORed into `out`.
fn mgf1_xor(out: &mut [u8], seed: &[u8]) {
    for (counter, chunk) in out.chunks_mut(SHA256_LEN).enumerate() {
        let h = Sha256::new()
            .chain_update(seed)
            .chain_update((counter as u32).to_be_bytes())
            .finalize();
        for (o, k) in chunk.iter_mut().zip(h.iter()) {
            *o ^= k;
        }
    }
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with SHA-256 and MGF1-SHA-256, the
/// salt length read from the encoding ("auto"): real items use 32 and 478.
/// `em` is the encoded message, `em_bits` = modulus bits − 1.
fn emsa_pss_verify_any_salt(m_hash: &[u8], em: &[u8], em_bits: usize) -> bool {
    let em_len = em.len();
    // Step 3 for the shortest salt (0); longer salts are bounded by the
    // position of the 0x01 separator below.
    if em_len < SHA256_LEN + 2 || em[em_len - 1] != 0xbc {
        return false;
    }
    let db_len = em_len - SHA256_LEN - 1;
    let (masked, rest) = em.split_at(db_len);
    let h = &rest[..SHA256_LEN];
    // Step 6: the unused leftmost bits of maskedDB are zero.
    let unused = 8 * em_len - em_bits;
    if unused > 8 || (unused > 0 && masked[0] >> (8 - unused) != 0) {
        return false;
    }
    let mut db = masked.to_vec();
    mgf1_xor(&mut db, h);
    if unused > 0 {
        db[0] &= 0xff >> unused;
    }
    // Step 10: DB = zeros ‖ 0x01 ‖ salt.
    let Some(one) = db.iter().position(|&b| b != 0) else {
        return false;
    };
    if db[one] != 0x01 {
        return false;
    }
    let salt = &db[one + 1..];
    // Steps 12–14.
    let h2 = Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(m_hash)
        .chain_update(salt)
        .finalize();
    h2.as_slice() == h
}

fn verify_rsa_pss(owner: &[u8], m: &[u8; 48], signature: &[u8]) -> Result<()> {
    let n = BigUint::from_bytes_be(owner);
    // Checks the modulus' size limits; the exponent is fixed.
    let key = RsaPublicKey::new(n, BigUint::from(65_537u32))
        .map_err(|_| Ans104Error::InvalidSignature("owner is not a usable RSA modulus"))?;
    let s = BigUint::from_bytes_be(signature);
    if &s >= key.n() {
        return Err(Ans104Error::InvalidSignature(
            "signature is not below the modulus",
        ));
    }
    // RSAVP1, then I2OSP to emLen = ceil((modBits − 1) / 8) bytes.
    let em_int = s.modpow(key.e(), key.n());
    let em_bits = key.n().bits() - 1;
    let em_len = em_bits.div_ceil(8);
    let em_bytes = em_int.to_bytes_be();
    if em_bytes.len() > em_len {
        return Err(Ans104Error::InvalidSignature("not a PSS encoding"));
    }
    let mut em = vec![0u8; em_len];
    em[em_len - em_bytes.len()..].copy_from_slice(&em_bytes);
    let m_hash = Sha256::digest(m);
    if emsa_pss_verify_any_salt(&m_hash, &em, em_bits) {
        Ok(())
    } else {
        Err(Ans104Error::InvalidSignature(
            "RSA-PSS signature does not verify",
        ))
    }
}

fn verify_ed25519(owner: &[u8], m: &[u8; 48], signature: &[u8]) -> Result<()> {
    let bytes: [u8; 32] = owner
        .try_into()
        .map_err(|_| Ans104Error::InvalidSignature("owner is not 32 bytes"))?;
    // SPEC §2.6 rule 5: the key is a canonical encoding and not of small
    // order; the signature itself is checked under ZIP-215.
    let point = CompressedEdwardsY(bytes)
        .decompress()
        .ok_or(Ans104Error::InvalidSignature(
            "owner is not an ed25519 point",
        ))?;
    if point.compress().as_bytes() != &bytes {
        return Err(Ans104Error::InvalidSignature(
            "owner is not the canonical encoding of its point",
        ));
    }
    if point.is_small_order() {
        return Err(Ans104Error::InvalidSignature(
            "owner is a point of small order",
        ));
    }
    let key = VerificationKey::try_from(bytes)
        .map_err(|_| Ans104Error::InvalidSignature("owner is not an ed25519 point"))?;
    let sig: [u8; 64] = signature
        .try_into()
        .map_err(|_| Ans104Error::InvalidSignature("signature is not 64 bytes"))?;
    key.verify(&EdSignature::from(sig), m)
        .map_err(|_| Ans104Error::InvalidSignature("ed25519 signature does not verify"))
}

fn verify_ethereum(owner: &[u8], m: &[u8; 48], signature: &[u8]) -> Result<()> {
    if signature.len() != 65 {
        return Err(Ans104Error::InvalidSignature("signature is not 65 bytes"));
    }
    let v = signature[64];
    let recid = match v {
        27 | 28 => RecoveryId::from_byte(v - 27),
        _ => None,
    }
    .ok_or(Ans104Error::InvalidSignature("v is neither 27 nor 28"))?;
    let sig = EcSignature::from_slice(&signature[..64])
        .map_err(|_| Ans104Error::InvalidSignature("r or s out of range"))?;
    // k256 refuses a high s here: see the crate docs.
    let key = EcKey::recover_from_prehash(&eip191_hash(m), &sig, recid)
        .map_err(|_| Ans104Error::InvalidSignature("no key recovers from the signature"))?;
    if key.to_encoded_point(false).as_bytes() == owner {
        Ok(())
    } else {
        Err(Ans104Error::InvalidSignature(
            "recovered key differs from the owner",
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sign::{sign_ed25519, sign_ethereum, sign_rsa, Unsigned};
    use crate::tags::Tag;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::RsaPrivateKey;
    use std::sync::OnceLock;

    /// The committed throwaway test key (see tests/data/README.md).
    pub(crate) fn rsa_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            // A fixed, valid file committed with the crate.
            RsaPrivateKey::from_pkcs1_der(include_bytes!("../tests/data/rsa4096-test-key.der"))
                .expect("the committed test key parses")
        })
    }

    fn fields() -> Unsigned {
        Unsigned {
            target: Some([3; 32]),
            anchor: Some([4; 32]),
            tags: vec![Tag::new("Action", "Eval"), Tag::new("Action", "Again")],
            data: b"1 + 1".to_vec(),
        }
    }

    fn check_signed(item: &DataItem) {
        item.verify().unwrap();
        let bytes = item.serialize();
        let parsed = DataItem::parse(&bytes).unwrap();
        parsed.verify().unwrap();
        assert_eq!(parsed.serialize(), bytes);
        // Any change to signed content or signature fails.
        for at in [
            3,
            2 + item.signature_type().signature_len(),
            bytes.len() - 1,
        ] {
            let mut b = bytes.clone();
            b[at] ^= 1;
            let p = DataItem::parse(&b).unwrap();
            assert!(
                matches!(p.verify(), Err(Ans104Error::InvalidSignature(_))),
                "byte {at}"
            );
        }
    }

    #[test]
    fn rsa_pss_any_salt_length() {
        let mut rng = rand_core::OsRng;
        for salt in [32, 478, 0, 1] {
            let item = sign_rsa(rsa_key(), salt, &mut rng, fields()).unwrap();
            check_signed(&item);
        }
    }

    #[test]
    fn rsa_rejects_signature_at_or_above_modulus() {
        let mut rng = rand_core::OsRng;
        let mut item = sign_rsa(rsa_key(), 32, &mut rng, fields()).unwrap();
        let n = item.owner().to_vec();
        item.set_signature(n).unwrap();
        assert!(item.verify().is_err());
    }

    #[test]
    fn rsa_refuses_pkcs1_v15_and_other_messages() {
        let mut rng = rand_core::OsRng;
        let mut item = sign_rsa(rsa_key(), 32, &mut rng, fields()).unwrap();
        let hashed = Sha256::digest(item.signing_message());
        let v15 = rsa_key()
            .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &hashed)
            .unwrap();
        item.set_signature(v15).unwrap();
        assert!(item.verify().is_err());
        // A valid PSS signature of another message.
        let other = sign_rsa(rsa_key(), 32, &mut rng, Unsigned::default()).unwrap();
        item.set_signature(other.signature().to_vec()).unwrap();
        assert!(item.verify().is_err());
        other.verify().unwrap();
    }

    #[test]
    fn rsa_garbage_owners_are_errors_not_panics() {
        let mut rng = rand_core::OsRng;
        let good = sign_rsa(rsa_key(), 32, &mut rng, fields()).unwrap();
        let mut one = vec![0u8; 512];
        one[511] = 1;
        let mut small = vec![0u8; 512];
        small[480..].copy_from_slice(&good.owner()[480..]);
        for owner in [vec![0u8; 512], one, vec![0xff; 512], vec![0xfe; 512], small] {
            for sig in [vec![0u8; 512], vec![0xff; 512], good.signature().to_vec()] {
                let mut item = DataItem::new_unsigned(
                    SignatureType::Arweave,
                    owner.clone(),
                    None,
                    None,
                    vec![],
                    vec![],
                )
                .unwrap();
                item.set_signature(sig).unwrap();
                assert!(matches!(
                    item.verify(),
                    Err(Ans104Error::InvalidSignature(_))
                ));
            }
        }
    }

    #[test]
    fn ed25519_signs_and_verifies() {
        check_signed(&sign_ed25519([9; 32], fields()).unwrap());
    }

    #[test]
    fn ed25519_per_key_checks() {
        let item = sign_ed25519([9; 32], fields()).unwrap();
        // identity point: small order.
        let mut id = [0u8; 32];
        id[0] = 1;
        let mut bad = DataItem::new_unsigned(
            SignatureType::Ed25519,
            id.to_vec(),
            None,
            None,
            vec![],
            vec![],
        )
        .unwrap();
        bad.set_signature(item.signature().to_vec()).unwrap();
        assert_eq!(
            bad.verify(),
            Err(Ans104Error::InvalidSignature(
                "owner is a point of small order"
            ))
        );
        // y = p (≡ 0): a non-canonical encoding of a valid point, which
        // ZIP-215 would decode; SPEC §2.6 rule 5 refuses it.
        let mut y_p = [0xffu8; 32];
        y_p[0] = 0xed;
        y_p[31] = 0x7f;
        let mut nc = DataItem::new_unsigned(
            SignatureType::Ed25519,
            y_p.to_vec(),
            None,
            None,
            vec![],
            vec![],
        )
        .unwrap();
        nc.set_signature(item.signature().to_vec()).unwrap();
        assert_eq!(
            nc.verify(),
            Err(Ans104Error::InvalidSignature(
                "owner is not the canonical encoding of its point"
            ))
        );
    }

    /// The high-s twin of a valid signature (s' = n − s, v flipped) is the
    /// same signature to ethers, but another item ID (sha256 of the
    /// signature bytes): refused, so type-3 IDs are not malleable.
    #[test]
    fn ethereum_high_s_twin_is_refused() {
        let item = sign_ethereum([5; 32], fields()).unwrap();
        let sig = EcSignature::from_slice(&item.signature()[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let twin = EcSignature::from_scalars(r, -*s).unwrap();
        assert!(twin.normalize_s().is_some(), "the twin has a high s");
        let mut bytes = twin.to_bytes().to_vec();
        bytes.push(if item.signature()[64] == 27 { 28 } else { 27 });
        let mut t = item.clone();
        t.set_signature(bytes).unwrap();
        assert_eq!(
            t.verify(),
            Err(Ans104Error::InvalidSignature(
                "no key recovers from the signature"
            ))
        );
        item.verify().unwrap();
    }

    #[test]
    fn ethereum_recovers_the_owner() {
        let item = sign_ethereum([5; 32], fields()).unwrap();
        check_signed(&item);
        assert!(item.owner_address().starts_with("0x"));
        assert_eq!(item.owner_address().len(), 42);
        let mut bad_v = item.serialize();
        bad_v[2 + 64] = 29;
        assert_eq!(
            DataItem::parse(&bad_v).unwrap().verify(),
            Err(Ans104Error::InvalidSignature("v is neither 27 nor 28"))
        );
        // Another key's owner does not match the recovered one.
        let other = sign_ethereum([6; 32], fields()).unwrap();
        let mut swapped = DataItem::new_unsigned(
            SignatureType::Ethereum,
            other.owner().to_vec(),
            Some([3; 32]),
            Some([4; 32]),
            fields().tags,
            fields().data,
        )
        .unwrap();
        swapped.set_signature(item.signature().to_vec()).unwrap();
        assert!(swapped.verify().is_err());
    }
}
