//! The hash chain linking a process's assignments (SPEC §5.3).
//!
//! `chain_n = sha256(chain_{n-1} ‖ ASCII(id(M_n, all)))`, with the empty
//! string before slot 0. Assignments carry `hash-chain` = base64url(chain_n).

use hb_message::{decode_base64_any, encode_base64url, Id};
use sha2::{Digest, Sha256};

/// The next link: sha256(previous raw bytes ‖ the body ID's human form).
pub fn next_link(previous: &[u8], body_id: &Id) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(body_id.to_human().as_bytes());
    h.finalize().into()
}

/// The `hash-chain` text of a link.
pub fn to_text(link: &[u8]) -> String {
    encode_base64url(link)
}

/// Decodes a stored `hash-chain` text back to its raw bytes (SPEC §5.2:
/// the chain resumes from the decoded bytes, not from the text).
pub fn from_text(text: &str) -> Option<Vec<u8>> {
    decode_base64_any(text).ok().filter(|b| b.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_link_hashes_only_the_id_text() {
        let id = Id::hash(b"m");
        let expected: [u8; 32] = Sha256::digest(id.to_human().as_bytes()).into();
        assert_eq!(next_link(&[], &id), expected);
    }

    #[test]
    fn links_chain_raw_bytes_not_text() {
        let a = Id::hash(b"a");
        let b = Id::hash(b"b");
        let l0 = next_link(&[], &a);
        let l1 = next_link(&l0, &b);
        let wrong = next_link(to_text(&l0).as_bytes(), &b);
        assert_ne!(l1, wrong);
        assert_eq!(from_text(&to_text(&l1)).unwrap(), l1.to_vec());
        assert_eq!(from_text("not base64!"), None);
        assert_eq!(from_text("AAAA"), None);
    }
}
