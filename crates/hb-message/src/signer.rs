//! Ed25519 signing keys, addresses and key files (SPEC §2.6 "Keys"), and
//! the node-signed type-2 ANS-104 items made with them (SPEC §10.2, §10.3).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hb_ans104::{DataItem, SignatureType, Tag};
use sha2::{Digest, Sha256};

use crate::error::MessageError;
use crate::id::{decode_base64_any, encode_base64url, human};

/// First line of a key file.
const KEY_FILE_HEADER: &str = "hb-ed25519-seed-v1";

/// A node's or client's ed25519 signing key, with its address.
///
/// The address is human(sha256(public key)). `Debug` never prints the secret.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
    address: String,
}

impl NodeKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> NodeKey {
        NodeKey::from_seed(&random_seed())
    }

    /// The key whose secret seed is `seed` (deterministic: tests and vectors).
    pub fn from_seed(seed: &[u8; 32]) -> NodeKey {
        let signing = SigningKey::from_bytes(seed);
        let address = address_of(signing.verifying_key().as_bytes());
        NodeKey { signing, address }
    }

    /// human(sha256(public key)).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// human(public key): the `keyid` of commitments.
    pub fn keyid(&self) -> String {
        human(self.signing.verifying_key().as_bytes())
    }

    /// Signs `data` (a 32-byte digest in every hb use).
    pub fn sign(&self, data: &[u8]) -> Signature {
        self.signing.sign(data)
    }

    /// Signs `unsigned` as a type-2 (ed25519) ANS-104 item: the owner is
    /// this key's 32-byte public key and the signature is ed25519 over the
    /// item's signing message (its deep hash, SPEC §10.1), so the item's
    /// owner address is [`address`](NodeKey::address). The tags are
    /// encoded in one block, as arbundles writes them. Deterministic: the
    /// same fields give the same item and ID.
    ///
    /// The `ans104@1.0` commitments of [`Message::commit_with`] and the
    /// scheduler's ao.TN.1 assignments are made this way. Tags over the
    /// limits of SPEC §10.1 (128 tags, names of 1–1024 bytes, values of
    /// at most 3072) give [`MessageError::Ans104`].
    ///
    /// [`Message::commit_with`]: crate::Message::commit_with
    pub fn sign_data_item(&self, unsigned: UnsignedItem) -> Result<DataItem, MessageError> {
        let UnsignedItem {
            target,
            anchor,
            tags,
            data,
        } = unsigned;
        let owner = self.signing.verifying_key().to_bytes().to_vec();
        let mut item =
            DataItem::new_unsigned(SignatureType::Ed25519, owner, target, anchor, tags, data)?;
        let signature = self.signing.sign(&item.signing_message());
        item.set_signature(signature.to_bytes().to_vec())?;
        Ok(item)
    }

    /// Reads a key file written by [`save`](NodeKey::save).
    pub fn load(path: &Path) -> Result<NodeKey, MessageError> {
        let invalid = |reason: String| MessageError::InvalidKeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = fs::read_to_string(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(invalid(format!("first line is not {KEY_FILE_HEADER:?}")));
        }
        let seed_line = lines
            .next()
            .ok_or_else(|| invalid("missing the seed line".into()))?;
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(invalid("unexpected content after the seed line".into()));
        }
        let seed = decode_base64_any(seed_line.trim())
            .map_err(|_| invalid("seed is not base64".into()))?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| invalid(format!("seed is {} bytes, expected 32", seed.len())))?;
        Ok(NodeKey::from_seed(&seed))
    }

    /// Writes the key to a new file with mode 0600 (atomically: a temporary
    /// file beside it, then rename). Fails if `path` exists.
    pub fn save(&self, path: &Path) -> Result<(), MessageError> {
        let invalid = |reason: String| MessageError::InvalidKeyFile {
            path: path.to_path_buf(),
            reason,
        };
        if path.exists() {
            return Err(invalid(
                "already exists; refusing to overwrite a key".into(),
            ));
        }
        let tmp = path.with_extension("tmp");
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let contents = format!(
            "{KEY_FILE_HEADER}\n{}\n",
            encode_base64url(self.signing.as_bytes())
        );
        let write = || -> std::io::Result<()> {
            let mut f = opts.open(&tmp)?;
            f.write_all(contents.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().map_err(|e| invalid(format!("cannot write: {e}")))
    }

    /// Loads the key at `path`, creating it (mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<NodeKey, MessageError> {
        if path.exists() {
            return NodeKey::load(path);
        }
        let key = NodeKey::generate();
        key.save(path)?;
        Ok(key)
    }
}

/// The fields of an ANS-104 item before it is signed (its owner and
/// signature come from the key): what [`NodeKey::sign_data_item`] signs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnsignedItem {
    /// The 32-byte target, if any (a process ID, for ao messages).
    pub target: Option<[u8; 32]>,
    /// The 32-byte anchor, if any.
    pub anchor: Option<[u8; 32]>,
    /// The tags, in order; duplicates are kept.
    pub tags: Vec<Tag>,
    /// The data (empty for none).
    pub data: Vec<u8>,
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    seed
}

/// human(sha256(public key)).
pub fn address_of(public_key: &[u8; 32]) -> String {
    human(&Sha256::digest(public_key).into())
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_signed_items_are_type_2_by_the_node_and_verify() {
        let key = NodeKey::from_seed(&[4; 32]);
        let unsigned = UnsignedItem {
            target: Some([1; 32]),
            anchor: None,
            tags: vec![Tag::new("Type", "Assignment"), Tag::new("Nonce", "7")],
            data: Vec::new(),
        };
        let item = key.sign_data_item(unsigned.clone()).unwrap();
        assert_eq!(item.signature_type(), SignatureType::Ed25519);
        assert_eq!(item.owner(), key.verifying_key().as_bytes());
        assert_eq!(item.owner_address(), key.address());
        assert_eq!(item.tags(), unsigned.tags.as_slice());
        assert_eq!(item.target(), Some(&[1; 32]));
        item.verify().unwrap();
        // Deterministic, and the bytes parse back to the same item.
        assert_eq!(key.sign_data_item(unsigned).unwrap(), item);
        assert_eq!(DataItem::parse(&item.serialize()).unwrap(), item);
    }

    #[test]
    fn items_over_the_tag_limits_are_refused() {
        let key = NodeKey::from_seed(&[4; 32]);
        let too_many = UnsignedItem {
            tags: vec![Tag::new("a", "b"); 129],
            ..UnsignedItem::default()
        };
        assert!(matches!(
            key.sign_data_item(too_many),
            Err(MessageError::Ans104(_))
        ));
        let long_value = UnsignedItem {
            tags: vec![Tag::new("a", vec![0; 3073])],
            ..UnsignedItem::default()
        };
        assert!(matches!(
            key.sign_data_item(long_value),
            Err(MessageError::Ans104(_))
        ));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(NodeKey::generate().address(), NodeKey::generate().address());
    }

    #[test]
    fn key_files_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = NodeKey::load_or_create(&path).unwrap();
        assert_eq!(NodeKey::load(&path).unwrap().address(), key.address());
        assert_eq!(
            NodeKey::load_or_create(&path).unwrap().address(),
            key.address()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(matches!(
            key.save(&path),
            Err(MessageError::InvalidKeyFile { .. })
        ));
    }

    #[test]
    fn malformed_key_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("empty", ""),
            ("header", "something else\nAAAA\n"),
            ("short", "hb-ed25519-seed-v1\nAAAA\n"),
            ("alphabet", "hb-ed25519-seed-v1\n!!!!\n"),
            (
                "extra",
                "hb-ed25519-seed-v1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nmore\n",
            ),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, body).unwrap();
            match NodeKey::load(&path) {
                Err(MessageError::InvalidKeyFile { path: p, .. }) => assert_eq!(p, path),
                other => panic!("{name}: {other:?}"),
            }
        }
        let missing = dir.path().join("missing");
        assert!(matches!(
            NodeKey::load(&missing),
            Err(MessageError::InvalidKeyFile { .. })
        ));
    }
}
