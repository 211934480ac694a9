//! One small trait that every library error of hb implements, so the HTTP
//! layer maps any of them to SPEC §7.4's `{status, error}` without
//! downcasting.

/// A stable, kebab-case error code and the HTTP status it maps to.
pub trait ErrorCode {
    /// The kebab-case code of SPEC §7.4 (`invalid-target`, `busy`, …).
    fn code(&self) -> &'static str;
    /// The HTTP status of SPEC §7.4.
    fn status(&self) -> u16;
    /// The typed extras of the JSON error (SPEC §7.4): `phase`,
    /// `attempted-slot`, `original-slot`, `requested-nonce`, `location`.
    /// None by default.
    fn extras(&self) -> Vec<(&'static str, crate::Value)> {
        Vec::new()
    }
}

impl ErrorCode for crate::MessageError {
    fn code(&self) -> &'static str {
        use crate::MessageError as E;
        match self {
            E::DuplicateKey(_) => "duplicate-key",
            E::InvalidJson(_) | E::Malformed { .. } | E::TooDeep { .. } => "malformed-body",
            E::InvalidCommitment { .. } | E::UnsupportedCommitmentDevice(_) => {
                "invalid-commitments"
            }
            E::RequestedCommittersNotFound(_) => "requested-committers-not-found",
            E::Ans104(e) => ans104_code(e),
            // The node's own failures: its key file, its stored records.
            E::InvalidKeyFile { .. } | E::Codec(_) | E::DecodedTooLarge { .. } => "internal",
            // Keys, IDs, floats and other values; also any variant added
            // later, until it is given a code here.
            _ => "invalid-value",
        }
    }

    fn status(&self) -> u16 {
        use crate::MessageError as E;
        match self {
            E::InvalidKeyFile { .. } | E::Codec(_) | E::DecodedTooLarge { .. } => 500,
            _ => 400,
        }
    }
}

/// SPEC §10.1's codes for an item's own errors: a type other than 1–3 is
/// `unsupported-signature-type`, a bad signature `invalid-signature`, bytes
/// that are not an item `malformed-body`, an item that cannot be built
/// (tag limits) `invalid-value`.
fn ans104_code(e: &hb_ans104::Ans104Error) -> &'static str {
    use hb_ans104::Ans104Error as A;
    match e {
        A::UnsupportedSignatureType { .. } => "unsupported-signature-type",
        A::InvalidSignature(_) => "invalid-signature",
        A::Truncated { .. } | A::Malformed { .. } => "malformed-body",
        A::Invalid(_) => "invalid-value",
    }
}
