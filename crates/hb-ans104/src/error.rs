//! The crate's typed errors.

use thiserror::Error;

/// Why a data item, its tags or a bundle could not be parsed, built or
/// verified. Parse errors name the field and the byte offset (from the
/// start of the item or bundle) where the problem was found.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Ans104Error {
    /// A signature type other than 1, 2 and 3 (400 `unsupported-signature-type`).
    #[error("unsupported signature type {}", .r#type)]
    UnsupportedSignatureType {
        /// The type read from the item.
        r#type: u16,
    },
    /// The input ended inside a field.
    #[error("truncated {field} at offset {offset}: {needed} bytes needed, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
        /// How many bytes were left.
        available: usize,
    },
    /// A field is present but its value breaks a rule of SPEC §10.1.
    #[error("malformed {field} at offset {offset}: {reason}")]
    Malformed {
        /// The field at fault.
        field: &'static str,
        /// Where the faulty value starts.
        offset: usize,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An item being built breaks a rule (tag limits, field lengths).
    #[error("invalid item: {0}")]
    Invalid(&'static str),
    /// The signature does not verify under the item's owner.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
}

/// Shorthand for results with [`Ans104Error`].
pub type Result<T> = std::result::Result<T, Ans104Error>;
