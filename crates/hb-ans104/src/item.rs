//! The data item: byte-exact parsing and serialisation, the signing
//! message, the item ID and the owner address (SPEC §10.1).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use sha3::Keccak256;

use crate::deephash::{deep_hash, DeepHashItem};
use crate::error::{Ans104Error, Result};
use crate::tags::{decode_tags, encode_tags, Tag};

/// The signature types hb verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureType {
    /// 1: Arweave, RSA-PSS SHA-256 with a 4096-bit modulus.
    Arweave,
    /// 2: ed25519.
    Ed25519,
    /// 3: Ethereum, secp256k1 EIP-191.
    Ethereum,
}

impl SignatureType {
    /// The type for a code, or `UnsupportedSignatureType`.
    pub fn from_code(code: u16) -> Result<SignatureType> {
        match code {
            1 => Ok(SignatureType::Arweave),
            2 => Ok(SignatureType::Ed25519),
            3 => Ok(SignatureType::Ethereum),
            other => Err(Ans104Error::UnsupportedSignatureType { r#type: other }),
        }
    }

    /// The code written in the item.
    pub fn code(self) -> u16 {
        match self {
            SignatureType::Arweave => 1,
            SignatureType::Ed25519 => 2,
            SignatureType::Ethereum => 3,
        }
    }

    /// The signature's length in bytes.
    pub fn signature_len(self) -> usize {
        match self {
            SignatureType::Arweave => 512,
            SignatureType::Ed25519 => 64,
            SignatureType::Ethereum => 65,
        }
    }

    /// The owner's (public key's) length in bytes.
    pub fn owner_len(self) -> usize {
        match self {
            SignatureType::Arweave => 512,
            SignatureType::Ed25519 => 32,
            SignatureType::Ethereum => 65,
        }
    }

    /// The address of `owner` under this type, as
    /// [`DataItem::owner_address`] gives it: human(sha256(owner)) for
    /// types 1 and 2, the lowercase-hex `0x…` Ethereum address for type 3.
    /// For callers that hold an owner but not yet an item.
    pub fn owner_address(self, owner: &[u8]) -> String {
        match self {
            SignatureType::Arweave | SignatureType::Ed25519 => human(&Sha256::digest(owner)),
            SignatureType::Ethereum => ethereum_address(owner),
        }
    }
}

/// base64url without padding, the "human" form of SPEC §2.5.
pub fn human(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A parsed ANS-104 data item. Keeps the raw tag bytes, so that
/// [`DataItem::serialize`] gives back exactly the parsed bytes (tags in
/// several blocks included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataItem {
    signature_type: SignatureType,
    signature: Vec<u8>,
    owner: Vec<u8>,
    target: Option<[u8; 32]>,
    anchor: Option<[u8; 32]>,
    tags: Vec<Tag>,
    raw_tags: Vec<u8>,
    data: Vec<u8>,
}

/// A cursor over the item's bytes for parsing, with offsets for errors.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        let available = self.bytes.len() - self.pos;
        if n > available {
            return Err(Ans104Error::Truncated {
                field,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64> {
        let s = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    fn optional32(&mut self, field: &'static str) -> Result<Option<[u8; 32]>> {
        let at = self.pos;
        match self.take(1, field)?[0] {
            0 => Ok(None),
            1 => {
                let mut a = [0u8; 32];
                a.copy_from_slice(self.take(32, field)?);
                Ok(Some(a))
            }
            _ => Err(Ans104Error::Malformed {
                field,
                offset: at,
                reason: "presence byte is neither 0 nor 1",
            }),
        }
    }
}

impl DataItem {
    /// Parses an item. Total: malformed input gives a typed error naming
    /// the field and offset; allocates at most about the input's size.
    pub fn parse(bytes: &[u8]) -> Result<DataItem> {
        let mut r = Reader { bytes, pos: 0 };
        let t = r.take(2, "signature type")?;
        let signature_type = SignatureType::from_code(u16::from_le_bytes([t[0], t[1]]))?;
        let signature = r
            .take(signature_type.signature_len(), "signature")?
            .to_vec();
        let owner = r.take(signature_type.owner_len(), "owner")?.to_vec();
        let target = r.optional32("target")?;
        let anchor = r.optional32("anchor")?;
        let tag_count = r.u64("tag count")?;
        let tag_len = r.u64("tag byte length")?;
        let available = bytes.len() - r.pos;
        if tag_len > available as u64 {
            return Err(Ans104Error::Truncated {
                field: "tags",
                offset: r.pos,
                needed: usize::try_from(tag_len).unwrap_or(usize::MAX),
                available,
            });
        }
        let tags_at = r.pos;
        // Fits: checked against the bytes left just above.
        let raw_tags = r.take(tag_len as usize, "tags")?;
        let tags = decode_tags(raw_tags, tag_count, tags_at)?;
        let data = bytes[r.pos..].to_vec();
        Ok(DataItem {
            signature_type,
            signature,
            owner,
            target,
            anchor,
            tags,
            raw_tags: raw_tags.to_vec(),
            data,
        })
    }

    /// An item with a zero signature, its tags encoded in one block like
    /// arbundles; sign it with [`DataItem::set_signature`] over
    /// [`DataItem::signing_message`].
    pub fn new_unsigned(
        signature_type: SignatureType,
        owner: Vec<u8>,
        target: Option<[u8; 32]>,
        anchor: Option<[u8; 32]>,
        tags: Vec<Tag>,
        data: Vec<u8>,
    ) -> Result<DataItem> {
        if owner.len() != signature_type.owner_len() {
            return Err(Ans104Error::Invalid("owner length does not match the type"));
        }
        let raw_tags = encode_tags(&tags)?;
        Ok(DataItem {
            signature_type,
            signature: vec![0; signature_type.signature_len()],
            owner,
            target,
            anchor,
            tags,
            raw_tags,
            data,
        })
    }

    /// Sets the signature (its length must match the type).
    pub fn set_signature(&mut self, signature: Vec<u8>) -> Result<()> {
        if signature.len() != self.signature_type.signature_len() {
            return Err(Ans104Error::Invalid(
                "signature length does not match the type",
            ));
        }
        self.signature = signature;
        Ok(())
    }

    /// The item's bytes, exactly as parsed.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            2 + self.signature.len()
                + self.owner.len()
                + 2
                + 64
                + 16
                + self.raw_tags.len()
                + self.data.len(),
        );
        out.extend_from_slice(&self.signature_type.code().to_le_bytes());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.owner);
        for o in [&self.target, &self.anchor] {
            match o {
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(v);
                }
                None => out.push(0),
            }
        }
        out.extend_from_slice(&(self.tags.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.raw_tags.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.raw_tags);
        out.extend_from_slice(&self.data);
        out
    }

    /// The signature type.
    pub fn signature_type(&self) -> SignatureType {
        self.signature_type
    }
    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
    /// The owner (public key) bytes.
    pub fn owner(&self) -> &[u8] {
        &self.owner
    }
    /// The target, if present.
    pub fn target(&self) -> Option<&[u8; 32]> {
        self.target.as_ref()
    }
    /// The anchor, if present.
    pub fn anchor(&self) -> Option<&[u8; 32]> {
        self.anchor.as_ref()
    }
    /// The tags, in order, duplicates kept.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }
    /// The tags' raw Avro bytes, as parsed or encoded.
    pub fn raw_tags(&self) -> &[u8] {
        &self.raw_tags
    }
    /// The data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The signing message `m`: the deep hash of `["dataitem", "1", type,
    /// owner, target or empty, anchor or empty, raw tags, data]`.
    pub fn signing_message(&self) -> [u8; 48] {
        let code = self.signature_type.code().to_string();
        let target: &[u8] = self.target.as_ref().map_or(&[], |t| &t[..]);
        let anchor: &[u8] = self.anchor.as_ref().map_or(&[], |a| &a[..]);
        let parts = [
            DeepHashItem::Blob(b"dataitem"),
            DeepHashItem::Blob(b"1"),
            DeepHashItem::Blob(code.as_bytes()),
            DeepHashItem::Blob(&self.owner),
            DeepHashItem::Blob(target),
            DeepHashItem::Blob(anchor),
            DeepHashItem::Blob(&self.raw_tags),
            DeepHashItem::Blob(&self.data),
        ];
        deep_hash(DeepHashItem::List(&parts))
    }

    /// The raw item ID, sha256(signature).
    pub fn id_bytes(&self) -> [u8; 32] {
        Sha256::digest(&self.signature).into()
    }

    /// The item ID, human(sha256(signature)).
    pub fn id(&self) -> String {
        human(&self.id_bytes())
    }

    /// The owner address: human(sha256(owner)) for types 1 and 2; for
    /// type 3 the Ethereum address `0x` ‖ lowercase hex of the last 20
    /// bytes of keccak256(owner without its `04` prefix) (not EIP-55
    /// mixed case).
    pub fn owner_address(&self) -> String {
        self.signature_type.owner_address(&self.owner)
    }
}

/// `0x` ‖ lowercase hex of the last 20 bytes of keccak256 of the 65-byte
/// uncompressed key without its first byte.
pub(crate) fn ethereum_address(owner: &[u8]) -> String {
    let h = Keccak256::digest(owner.get(1..).unwrap_or(&[]));
    let mut s = String::with_capacity(42);
    s.push_str("0x");
    for b in &h[12..] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DataItem {
        DataItem::new_unsigned(
            SignatureType::Ed25519,
            vec![7; 32],
            Some([1; 32]),
            None,
            vec![Tag::new("Content-Type", "text/plain"), Tag::new("k", "")],
            b"hello".to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_layout() {
        let item = sample();
        let bytes = item.serialize();
        assert_eq!(&bytes[..2], &[2, 0]);
        assert_eq!(bytes[2 + 64 + 32], 1);
        assert_eq!(bytes[2 + 64 + 32 + 33], 0);
        let parsed = DataItem::parse(&bytes).unwrap();
        assert_eq!(parsed, item);
        assert_eq!(parsed.serialize(), bytes);
        assert_eq!(parsed.data(), b"hello");
    }

    #[test]
    fn multi_block_tags_round_trip_byte_exactly() {
        let mut item = sample();
        // the same two tags as two blocks, the second one negative.
        let mut raw = vec![2, 24];
        raw.extend_from_slice(b"Content-Type");
        raw.push(20);
        raw.extend_from_slice(b"text/plain");
        raw.extend_from_slice(&[1, 6, 2, b'k', 0, 0]);
        item.raw_tags = raw;
        let bytes = item.serialize();
        let parsed = DataItem::parse(&bytes).unwrap();
        assert_eq!(parsed.tags(), sample().tags());
        assert_eq!(parsed.serialize(), bytes);
    }

    #[test]
    fn errors_name_field_and_offset() {
        let bytes = sample().serialize();
        assert_eq!(
            DataItem::parse(&[9, 0]),
            Err(Ans104Error::UnsupportedSignatureType { r#type: 9 })
        );
        assert!(matches!(
            DataItem::parse(&bytes[..50]),
            Err(Ans104Error::Truncated {
                field: "signature",
                offset: 2,
                ..
            })
        ));
        let mut bad = bytes.clone();
        bad[2 + 64 + 32] = 2;
        assert!(matches!(
            DataItem::parse(&bad),
            Err(Ans104Error::Malformed {
                field: "target",
                offset: 98,
                ..
            })
        ));
        let mut huge = bytes.clone();
        let at = 2 + 64 + 32 + 33 + 1 + 8;
        huge[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            DataItem::parse(&huge),
            Err(Ans104Error::Truncated { field: "tags", .. })
        ));
        assert!(DataItem::parse(&[]).is_err());
    }

    #[test]
    fn id_and_addresses() {
        let item = sample();
        assert_eq!(item.id(), human(&Sha256::digest([0u8; 64])));
        assert_eq!(item.owner_address(), human(&Sha256::digest([7u8; 32])));
        assert_eq!(item.id().len(), 43);
    }

    #[test]
    fn ethereum_address_of_a_known_key() {
        // secret key 1: the generator point G; its address is well known.
        let g = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\
                 483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";
        let owner: Vec<u8> = (0..65)
            .map(|i| u8::from_str_radix(&g[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            ethereum_address(&owner),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
        );
    }
}
