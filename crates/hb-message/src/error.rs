//! The one error type of the message model.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while building, decoding, identifying,
/// signing or verifying a message.
///
/// Each variant names the situation precisely enough for an operator or a
/// client to act on it; the HTTP layer maps them to 4xx codes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// A float was NaN or infinite.
    #[error("float value is not finite")]
    NonFiniteFloat,
    /// A key is empty, too long, or starts with `@`.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given (truncated to 64 characters).
        key: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// Two keys of one message normalise to the same form.
    #[error("duplicate key {0:?}: two keys normalise to the same form")]
    DuplicateKey(String),
    /// Nesting exceeded the decoder's depth limit.
    #[error("nesting deeper than {limit} levels")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// A value is not acceptable where it appears.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// JSON input could not be parsed or does not follow the JSON form.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A human-form ID is malformed.
    #[error("invalid ID {input:?}: {reason}")]
    InvalidId {
        /// The input (truncated to 64 characters).
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A commitment is malformed or names keys the message lacks.
    #[error("invalid commitment {id}: {reason}")]
    InvalidCommitment {
        /// The commitment's ID (its key under `commitments`), or `-` when
        /// the problem is with the `commitments` map itself.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A commitment device other than `ed25519@1.0` and `ans104@1.0` was
    /// asked for.
    #[error("unsupported commitment device {0:?}")]
    UnsupportedCommitmentDevice(String),
    /// An ANS-104 data item could not be parsed, built or signed (SPEC
    /// §10.1): the item's own error, naming the field.
    #[error("ANS-104: {0}")]
    Ans104(#[from] hb_ans104::Ans104Error),
    /// A well-formed ANS-104 item has no message form under SPEC §10.2: a
    /// tag name that cannot be a key (not UTF-8, starting with `@`,
    /// private, `commitments`), a tag named like a field the item also
    /// has (`data`, `target`, `anchor`), or tags not in the one-block
    /// encoding the message's rebuilt item would have.
    #[error("ANS-104 item {item} has no message form: {reason}")]
    UnmappableItem {
        /// The item's ID.
        item: String,
        /// What cannot be mapped.
        reason: String,
    },
    /// A selector named committers that have no commitment on the message.
    #[error("requested committers not found: {}", .0.join(", "))]
    RequestedCommittersNotFound(Vec<String>),
    /// A key file exists but cannot be used.
    #[error("invalid key file {path}: {reason}")]
    InvalidKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Bytes given to a decoder are not a valid encoding.
    #[error("malformed encoding at byte {offset}: {reason}")]
    Malformed {
        /// Where decoding stopped.
        offset: usize,
        /// What was expected.
        reason: String,
    },
    /// Decoding would build more than the decoder's memory budget: an
    /// estimate of the decoded size (string and byte lengths plus a fixed
    /// cost per value and per message entry), checked before allocating.
    #[error("decoded size exceeds the limit of {limit} bytes")]
    DecodedTooLarge {
        /// The budget in force, in bytes.
        limit: u64,
    },
    /// A storage record could not be encoded or decoded.
    #[error("record codec: {0}")]
    Codec(String),
}

/// Shortens untrusted input before it is quoted in an error message.
pub(crate) fn truncate_for_error(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
