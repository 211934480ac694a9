//! Signing helpers for tests (feature `test-support`): build and sign items
//! of each type.

use ed25519_zebra::{SigningKey as EdKey, VerificationKey};
use k256::ecdsa::SigningKey as EcKey;
use rsa::rand_core::CryptoRngCore;
use rsa::traits::PublicKeyParts;
use rsa::{Pss, RsaPrivateKey};
use sha2::{Digest, Sha256};

use crate::error::{Ans104Error, Result};
use crate::item::{DataItem, SignatureType};
use crate::tags::Tag;
use crate::verify::eip191_hash;

/// The fields of an item to sign.
#[derive(Clone, Debug, Default)]
pub struct Unsigned {
    /// The target.
    pub target: Option<[u8; 32]>,
    /// The anchor.
    pub anchor: Option<[u8; 32]>,
    /// The tags.
    pub tags: Vec<Tag>,
    /// The data.
    pub data: Vec<u8>,
}

fn build(t: SignatureType, owner: Vec<u8>, u: Unsigned) -> Result<DataItem> {
    DataItem::new_unsigned(t, owner, u.target, u.anchor, u.tags, u.data)
}

/// A type-2 item signed by an ed25519 secret key (32 bytes).
pub fn sign_ed25519(secret: [u8; 32], u: Unsigned) -> Result<DataItem> {
    let key = EdKey::from(secret);
    let owner: [u8; 32] = VerificationKey::from(&key).into();
    let mut item = build(SignatureType::Ed25519, owner.to_vec(), u)?;
    let sig: [u8; 64] = key.sign(&item.signing_message()).into();
    item.set_signature(sig.to_vec())?;
    Ok(item)
}

/// A type-1 item signed by an RSA-4096 key with RSA-PSS SHA-256 and the
/// given salt length.
pub fn sign_rsa(
    key: &RsaPrivateKey,
    salt_len: usize,
    rng: &mut impl CryptoRngCore,
    u: Unsigned,
) -> Result<DataItem> {
    let n = key.n().to_bytes_be();
    if n.len() != 512 {
        return Err(Ans104Error::Invalid("RSA modulus is not 4096 bits"));
    }
    let mut item = build(SignatureType::Arweave, n, u)?;
    let hashed = Sha256::digest(item.signing_message());
    let sig = key
        .sign_with_rng(rng, Pss::new_with_salt::<Sha256>(salt_len), &hashed)
        .map_err(|_| Ans104Error::Invalid("RSA signing failed"))?;
    item.set_signature(sig)?;
    Ok(item)
}

/// A type-3 item signed by a secp256k1 secret key (32 bytes), EIP-191.
pub fn sign_ethereum(secret: [u8; 32], u: Unsigned) -> Result<DataItem> {
    let key = EcKey::from_slice(&secret).map_err(|_| Ans104Error::Invalid("bad secp256k1 key"))?;
    let owner = key
        .verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    let mut item = build(SignatureType::Ethereum, owner, u)?;
    let (sig, recid) = key
        .sign_prehash_recoverable(&eip191_hash(&item.signing_message()))
        .map_err(|_| Ans104Error::Invalid("secp256k1 signing failed"))?;
    let mut bytes = sig.to_bytes().to_vec();
    bytes.push(27 + recid.to_byte());
    item.set_signature(bytes)?;
    Ok(item)
}
