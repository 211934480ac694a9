//! Keys: the normalised names of a message's fields (SPEC §2.2, §2.3).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::{truncate_for_error, MessageError};

/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The prefix that makes a key private (runtime-only, never serialised),
/// unless the key is ID-shaped ([`is_private_text`]).
pub const PRIVATE_PREFIX: &str = "priv";

/// A normalised key.
///
/// Normalisation: ID-shaped keys (43 base64url characters) keep their case;
/// every other key has its ASCII letters lower-cased. Integer keys are their
/// decimal form. A key is never empty, at most [`MAX_KEY_BYTES`] long, and
/// never starts with `@`.
///
/// Keys order by the unsigned bytes of their UTF-8 form, which is the order
/// of the canonical encoding (and of `str`, so lookups by `&str` agree).
#[derive(Clone)]
pub struct Key(String);

// By hand (as the derive would) so that tests can count comparisons.
impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Key) -> bool {
        #[cfg(test)]
        eq_probes::count();
        self.0 == other.0
    }
}

impl Eq for Key {}

// The hash of the text, as `Borrow<str>` requires.
impl Hash for Key {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

/// Counts [`Key`] equality tests on this thread: unit tests use it to show
/// that duplicate checks are linear, without timing anything.
#[cfg(test)]
pub(crate) mod eq_probes {
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) fn count() {
        COUNT.with(|c| c.set(c.get() + 1));
    }

    /// The count since the last call, resetting it.
    pub(crate) fn take() -> u64 {
        COUNT.with(|c| c.replace(0))
    }
}

impl Key {
    /// Normalises `raw` into a key, or says which rule it breaks.
    pub fn new(raw: &str) -> Result<Key, MessageError> {
        validate(raw)?;
        if is_id_shaped(raw) || !raw.bytes().any(|b| b.is_ascii_uppercase()) {
            Ok(Key(raw.to_string()))
        } else {
            Ok(Key(raw.to_ascii_lowercase()))
        }
    }

    /// The key for a list position or integer field (`5` → `"5"`).
    pub fn from_index(index: u64) -> Key {
        Key(index.to_string())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the key is private (see [`is_private_text`]).
    pub fn is_private(&self) -> bool {
        is_private_text(&self.0)
    }

    /// Whether the key is ID-shaped (and so kept case-sensitive).
    pub fn is_id_shaped(&self) -> bool {
        is_id_shaped(&self.0)
    }

    /// Builds a key from text already known to be normalised.
    pub(crate) fn from_normalised(s: String) -> Key {
        debug_assert!(Key::new(&s).map(|k| k.0 == s).unwrap_or(false));
        Key(s)
    }
}

/// Checks the rules that do not depend on case.
fn validate(raw: &str) -> Result<(), MessageError> {
    let reason = if raw.is_empty() {
        "keys must not be empty"
    } else if raw.len() > MAX_KEY_BYTES {
        "keys must be at most 1024 bytes"
    } else if raw.starts_with('@') {
        "keys must not start with '@'"
    } else {
        return Ok(());
    };
    Err(MessageError::InvalidKey {
        key: truncate_for_error(raw),
        reason,
    })
}

/// Normalises `raw` for lookup without allocating when it is already normal.
pub(crate) fn normalise_for_lookup(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    validate(raw).ok()?;
    if is_id_shaped(raw) || !raw.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(std::borrow::Cow::Borrowed(raw))
    } else {
        Some(std::borrow::Cow::Owned(raw.to_ascii_lowercase()))
    }
}

/// Whether the normalised key `s` is private: it starts with
/// [`PRIVATE_PREFIX`] and is not ID-shaped.
///
/// An ID-shaped key is data: a commitment's ID under `commitments`, a
/// message ID used as a key. One ID in 2^24 starts with `priv` (three
/// bytes of its hash); were it private, such a commitment would be hidden
/// from every reader (the message reads as unsigned, its ID as the unsigned
/// one) and dropped from every encoding, so a signed assignment would be
/// stored without its signature.
pub fn is_private_text(s: &str) -> bool {
    s.starts_with(PRIVATE_PREFIX) && !is_id_shaped(s)
}

/// Whether `s` is 43 characters of the base64url alphabet (an ID's human form).
pub fn is_id_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Ord for Key {
    #[inline]
    fn cmp(&self, other: &Key) -> Ordering {
        compare_bytes(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl PartialOrd for Key {
    #[inline]
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The order of `[u8]` (and so of `str`), compared inline, eight bytes at
/// a time: keys are short, often share a prefix (`device`, `device-key`,
/// `device-stack`), and a loop beats a call to `memcmp`. Map lookups by
/// [`Key`] compare keys this way.
#[inline]
fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        // Big-endian words order as their bytes do.
        let (x, y) = (word(&a[i..i + 8]), word(&b[i..i + 8]));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// Eight bytes as a big-endian word.
#[inline]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    // Callers pass exactly eight bytes.
    w.copy_from_slice(bytes);
    u64::from_be_bytes(w)
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl TryFrom<&str> for Key {
    type Error = MessageError;
    fn try_from(s: &str) -> Result<Key, MessageError> {
        Key::new(s)
    }
}

impl TryFrom<String> for Key {
    type Error = MessageError;
    fn try_from(s: String) -> Result<Key, MessageError> {
        Key::new(&s)
    }
}

impl From<u64> for Key {
    fn from(i: u64) -> Key {
        Key::from_index(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Key {
        /// Any text as a key, for order tests (bypasses normalisation).
        fn from_normalised_any(s: &str) -> Key {
            Key(s.to_string())
        }
    }

    #[test]
    fn keys_are_lower_cased() {
        assert_eq!(Key::new("Content-Type").unwrap().as_str(), "content-type");
    }

    #[test]
    fn id_shaped_keys_keep_their_case() {
        let id = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_ABCDE";
        assert_eq!(id.len(), 43);
        assert_eq!(Key::new(id).unwrap().as_str(), id);
        // 42 characters is not ID-shaped, so it is lower-cased.
        assert_eq!(
            Key::new(&id[..42]).unwrap().as_str(),
            id[..42].to_ascii_lowercase()
        );
    }

    #[test]
    fn only_ascii_letters_are_lower_cased() {
        assert_eq!(Key::new("ÄBC").unwrap().as_str(), "Äbc");
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(matches!(Key::new(""), Err(MessageError::InvalidKey { .. })));
        assert!(matches!(
            Key::new("@x"),
            Err(MessageError::InvalidKey { .. })
        ));
        assert!(matches!(
            Key::new(&"a".repeat(1025)),
            Err(MessageError::InvalidKey { .. })
        ));
        assert!(Key::new(&"a".repeat(1024)).is_ok());
    }

    #[test]
    fn private_keys_start_with_priv() {
        for k in ["priv", "private", "priv-x", "privacy", "PRIVATE"] {
            assert!(Key::new(k).unwrap().is_private(), "{k}");
        }
        for k in ["pri", "xpriv", "pr1v"] {
            assert!(!Key::new(k).unwrap().is_private(), "{k}");
        }
    }

    #[test]
    fn an_id_shaped_key_is_never_private_even_when_it_starts_with_priv() {
        // One ID in 2^24 starts with `priv` (a commitment's ID as a key of
        // `commitments`, a message ID as a key): it is data, not runtime.
        let id = format!("priv{}", "Xy_-9".repeat(8).get(..39).unwrap());
        assert!(is_id_shaped(&id));
        let key = Key::new(&id).unwrap();
        assert_eq!(key.as_str(), id);
        assert!(!key.is_private());
        assert!(!is_private_text(&id));
        // One character short, or with a `/`, it is not ID-shaped: private.
        for k in [&id[..42], &format!("priv/{}", &id[5..])] {
            assert!(Key::new(k).unwrap().is_private(), "{k}");
            assert!(is_private_text(&k.to_ascii_lowercase()), "{k}");
        }
    }

    #[test]
    fn keys_order_as_their_bytes_like_str() {
        let names = [
            "a",
            "ab",
            "abc",
            "b",
            "ba",
            "a-b",
            "a/b",
            "A_b",
            "0",
            "10",
            "9",
            "Äbc",
            "äbc",
            "z\u{80}",
            "zz",
            "priv",
            "private",
            "path",
            "device",
            "device-key",
            "device-stack",
            "devicf",
            "previous-device",
            "previous-input-prefix",
            "previous-output-prefix",
            "input-prefix",
            "input-prefixes",
            "12345678",
            "123456789",
            "12345679",
            "1234567\u{ff}",
            "abcdefgh\u{80}x",
            "abcdefghx",
            "abcdefgh",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
        ];
        let keys: Vec<Key> = names.iter().map(|n| Key::from_normalised_any(n)).collect();
        for a in &keys {
            for b in &keys {
                assert_eq!(a.cmp(b), a.as_str().cmp(b.as_str()), "{a:?} vs {b:?}");
                assert_eq!(a.partial_cmp(b), Some(a.cmp(b)));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn key_order_is_str_order(a in "\\PC{1,40}", b in "\\PC{1,40}") {
            let (ka, kb) = (Key::from_normalised_any(&a), Key::from_normalised_any(&b));
            proptest::prop_assert_eq!(ka.cmp(&kb), a.as_str().cmp(b.as_str()));
            // Shared prefixes of more than eight bytes.
            let (pa, pb) = (format!("previous-{a}"), format!("previous-{b}"));
            let (ka, kb) = (Key::from_normalised_any(&pa), Key::from_normalised_any(&pb));
            proptest::prop_assert_eq!(ka.cmp(&kb), pa.cmp(&pb));
        }
    }

    #[test]
    fn integer_keys_are_decimal() {
        assert_eq!(Key::from_index(5).as_str(), "5");
        assert_eq!(Key::from(0u64).as_str(), "0");
    }
}
