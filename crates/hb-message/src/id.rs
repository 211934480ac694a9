//! IDs: 32-byte hashes and their human form (SPEC §2.5).

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{truncate_for_error, MessageError};

/// Unpadded base64url, strict about trailing bits: the one form hb emits.
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// A 32-byte ID (a sha-256 digest or a sum of them).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// The ID of `data`: sha256(data).
    pub fn hash(data: &[u8]) -> Id {
        Id(Sha256::digest(data).into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The human form: 43 characters of unpadded base64url.
    pub fn to_human(&self) -> String {
        B64URL.encode(self.0)
    }

    /// Parses a human ID. Accepts base64url and standard base64, padded or
    /// not; rejects other lengths and alphabets with [`MessageError::InvalidId`].
    pub fn parse(input: &str) -> Result<Id, MessageError> {
        if let Some(id) = parse_human(input) {
            return Ok(id);
        }
        let bytes = decode_base64_any(input)?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| MessageError::InvalidId {
                input: truncate_for_error(input),
                reason: format!("decodes to {} bytes, an ID is 32", bytes.len()),
            })?;
        Ok(Id(arr))
    }

    /// Sum of IDs read as 256-bit big-endian integers, modulo 2^256.
    pub fn sum<'a>(ids: impl IntoIterator<Item = &'a Id>) -> Id {
        let mut acc = [0u8; 32];
        for id in ids {
            let mut carry = 0u16;
            for i in (0..32).rev() {
                let s = u16::from(acc[i]) + u16::from(id.0[i]) + carry;
                acc[i] = s as u8; // keep the low byte; the high bit is the carry
                carry = s >> 8;
            }
        }
        Id(acc)
    }
}

/// The common case of [`Id::parse`] without allocating: hb's own form, 43
/// characters of canonical unpadded base64url. `None` for anything else,
/// which the general path then accepts or explains.
fn parse_human(input: &str) -> Option<Id> {
    if input.len() != 43 {
        return None;
    }
    let mut out = [0u8; 32];
    match B64URL.decode_slice(input, &mut out) {
        Ok(32) => Some(Id(out)),
        _ => None,
    }
}

/// Decodes base64 in either alphabet, padded or not, with a typed error
/// naming the problem (length, alphabet position, trailing bits).
pub fn decode_base64_any(input: &str) -> Result<Vec<u8>, MessageError> {
    let err = |reason: String| MessageError::InvalidId {
        input: truncate_for_error(input),
        reason,
    };
    let trimmed = input.trim_end_matches('=');
    let padding = input.len() - trimmed.len();
    if padding > 2 || (padding > 0 && !input.len().is_multiple_of(4)) {
        return Err(err("misplaced '=' padding".into()));
    }
    let mut normalised = Vec::with_capacity(trimmed.len());
    for (pos, b) in trimmed.bytes().enumerate() {
        let c = match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => b,
            b'+' => b'-',
            b'/' => b'_',
            _ => {
                return Err(err(format!(
                    "character {:?} at position {pos} is not in the base64 or base64url alphabet",
                    trimmed[pos..].chars().next().unwrap_or('?')
                )))
            }
        };
        normalised.push(c);
    }
    if normalised.len() % 4 == 1 {
        return Err(err(format!(
            "length {} is not a base64 length",
            trimmed.len()
        )));
    }
    B64URL
        .decode(&normalised)
        .map_err(|e| err(format!("not canonical base64: {e}")))
}

/// Encodes bytes as unpadded base64url.
pub fn encode_base64url(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

/// human(x): unpadded base64url of 32 bytes.
pub fn human(bytes: &[u8; 32]) -> String {
    B64URL.encode(bytes)
}

/// Appends human(bytes) to `out`, without a separate allocation.
pub(crate) fn encode_human_into(bytes: &[u8; 32], out: &mut String) {
    let mut buf = [0u8; 43];
    let encoded = B64URL
        .encode_slice(bytes, &mut buf)
        .ok()
        .and_then(|n| std::str::from_utf8(&buf[..n]).ok());
    match encoded {
        Some(text) => out.push_str(text),
        // Not reached: 43 bytes hold the form, and base64url is ASCII.
        None => out.push_str(&human(bytes)),
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_human())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.to_human())
    }
}

impl FromStr for Id {
    type Err = MessageError;
    fn from_str(s: &str) -> Result<Id, MessageError> {
        Id::parse(s)
    }
}

/// Which commitments an ID covers (SPEC §2.5).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum IdSelector {
    /// Every commitment; the unsigned ID when there are none.
    #[default]
    All,
    /// No commitment: the unsigned ID.
    None,
    /// The commitments of these committer addresses.
    Committers(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_form_round_trips() {
        let id = Id::hash(b"hello");
        let h = id.to_human();
        assert_eq!(h.len(), 43);
        assert_eq!(Id::parse(&h).unwrap(), id);
    }

    #[test]
    fn human_ids_parse_without_the_general_path() {
        let id = Id([0xfb; 32]);
        assert_eq!(parse_human(&id.to_human()), Some(id));
        // Other forms go to the general path, which gives the same ID.
        let std = id.to_human().replace('-', "+").replace('_', "/");
        assert_eq!(parse_human(&std), None);
        assert_eq!(Id::parse(&std).unwrap(), id);
        // Stray trailing bits are not canonical in either path.
        let mut s = Id([0; 32]).to_human();
        s.pop();
        s.push('B');
        assert_eq!(parse_human(&s), None);
    }

    #[test]
    fn human_form_appends_to_text() {
        let id = Id::hash(b"x");
        let mut out = String::from("prefix:");
        encode_human_into(id.as_bytes(), &mut out);
        assert_eq!(out, format!("prefix:{}", id.to_human()));
    }

    #[test]
    fn standard_base64_and_padding_are_accepted() {
        let id = Id([0xfb; 32]);
        let url = id.to_human();
        assert!(url.contains('-') || url.contains('_'));
        let std = url.replace('-', "+").replace('_', "/");
        assert_eq!(Id::parse(&std).unwrap(), id);
        assert_eq!(Id::parse(&format!("{std}=")).unwrap(), id);
        assert_eq!(Id::parse(&format!("{url}=")).unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_typed_errors() {
        for bad in [
            "",
            "abc",
            &"A".repeat(42),
            &"A".repeat(44),
            &format!("{}!", "A".repeat(42)),
            "====",
            &format!("{}==", "A".repeat(43)),
        ] {
            assert!(
                matches!(Id::parse(bad), Err(MessageError::InvalidId { .. })),
                "{bad:?}"
            );
        }
        // 43 chars whose last character carries stray bits is not canonical.
        let mut s = Id([0; 32]).to_human();
        s.pop();
        s.push('B');
        assert!(matches!(Id::parse(&s), Err(MessageError::InvalidId { .. })));
    }

    #[test]
    fn sum_wraps_modulo_2_256() {
        let max = Id([0xff; 32]);
        let one = {
            let mut b = [0; 32];
            b[31] = 1;
            Id(b)
        };
        assert_eq!(Id::sum([&max, &one]), Id([0; 32]));
        assert_eq!(Id::sum([&one, &max]), Id::sum([&max, &one]));
    }
}
