//! The keys the engine and `stack@1.0` read and write on every step,
//! normalised once so that hot paths look them up with
//! [`Message::get_key`](hb_message::Message::get_key) instead of
//! re-normalising text, and insert them without validating again.
//!
//! A leaf module: the names are spelled here, once, and the public
//! constants of [`path`](crate::path), [`stack`](crate::stack) and the
//! engine are defined from them, so this module depends on no other.

use std::sync::LazyLock;

use hb_message::{hashpath, Key, COMMITMENTS as COMMITMENTS_NAME};

/// The key names, as text.
pub(crate) mod names {
    /// `path`.
    pub(crate) const PATH: &str = "path";
    /// `device`.
    pub(crate) const DEVICE: &str = "device";
    /// `device-stack`.
    pub(crate) const DEVICE_STACK: &str = "device-stack";
    /// `stack-keys`.
    pub(crate) const STACK_KEYS: &str = "stack-keys";
    /// `device-key`.
    pub(crate) const DEVICE_KEY: &str = "device-key";
    /// `pass`.
    pub(crate) const PASS: &str = "pass";
    /// `input-prefix`.
    pub(crate) const INPUT_PREFIX: &str = "input-prefix";
    /// `output-prefix`.
    pub(crate) const OUTPUT_PREFIX: &str = "output-prefix";
    /// `input-prefixes`.
    pub(crate) const INPUT_PREFIXES: &str = "input-prefixes";
    /// `output-prefixes`.
    pub(crate) const OUTPUT_PREFIXES: &str = "output-prefixes";
    /// `previous-device`.
    pub(crate) const PREVIOUS_DEVICE: &str = "previous-device";
    /// `previous-input-prefix`.
    pub(crate) const PREVIOUS_INPUT_PREFIX: &str = "previous-input-prefix";
    /// `previous-output-prefix`.
    pub(crate) const PREVIOUS_OUTPUT_PREFIX: &str = "previous-output-prefix";
    /// `mode`.
    pub(crate) const MODE: &str = "mode";
}

/// A key from one of the literals below.
fn literal(name: &'static str) -> Key {
    // Every literal below is a valid, lower-case key (checked by the test).
    Key::new(name).expect("engine key literals are valid keys")
}

/// `path`.
pub(crate) static PATH: LazyLock<Key> = LazyLock::new(|| literal(names::PATH));
/// `device`.
pub(crate) static DEVICE: LazyLock<Key> = LazyLock::new(|| literal(names::DEVICE));
/// `priv`, which holds `hashpath` and other runtime data.
pub(crate) static PRIV: LazyLock<Key> = LazyLock::new(|| literal(hashpath::PRIV));
/// `hashpath`, inside `priv`.
pub(crate) static HASHPATH: LazyLock<Key> = LazyLock::new(|| literal("hashpath"));
/// `commitments`.
pub(crate) static COMMITMENTS: LazyLock<Key> = LazyLock::new(|| literal(COMMITMENTS_NAME));
/// `device-stack`.
pub(crate) static DEVICE_STACK: LazyLock<Key> = LazyLock::new(|| literal(names::DEVICE_STACK));
/// `stack-keys`.
pub(crate) static STACK_KEYS: LazyLock<Key> = LazyLock::new(|| literal(names::STACK_KEYS));
/// `device-key`.
pub(crate) static DEVICE_KEY: LazyLock<Key> = LazyLock::new(|| literal(names::DEVICE_KEY));
/// `pass`.
pub(crate) static PASS: LazyLock<Key> = LazyLock::new(|| literal(names::PASS));
/// `input-prefix`.
pub(crate) static INPUT_PREFIX: LazyLock<Key> = LazyLock::new(|| literal(names::INPUT_PREFIX));
/// `output-prefix`.
pub(crate) static OUTPUT_PREFIX: LazyLock<Key> = LazyLock::new(|| literal(names::OUTPUT_PREFIX));
/// `input-prefixes`.
pub(crate) static INPUT_PREFIXES: LazyLock<Key> = LazyLock::new(|| literal(names::INPUT_PREFIXES));
/// `output-prefixes`.
pub(crate) static OUTPUT_PREFIXES: LazyLock<Key> =
    LazyLock::new(|| literal(names::OUTPUT_PREFIXES));
/// `previous-device`.
pub(crate) static PREVIOUS_DEVICE: LazyLock<Key> =
    LazyLock::new(|| literal(names::PREVIOUS_DEVICE));
/// `previous-input-prefix`.
pub(crate) static PREVIOUS_INPUT_PREFIX: LazyLock<Key> =
    LazyLock::new(|| literal(names::PREVIOUS_INPUT_PREFIX));
/// `previous-output-prefix`.
pub(crate) static PREVIOUS_OUTPUT_PREFIX: LazyLock<Key> =
    LazyLock::new(|| literal(names::PREVIOUS_OUTPUT_PREFIX));
/// `mode`.
pub(crate) static MODE: LazyLock<Key> = LazyLock::new(|| literal(names::MODE));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_its_literal_unchanged() {
        let pairs: [(&LazyLock<Key>, &str); 18] = [
            (&PATH, "path"),
            (&DEVICE, "device"),
            (&PRIV, "priv"),
            (&HASHPATH, "hashpath"),
            (&COMMITMENTS, "commitments"),
            (&DEVICE_STACK, "device-stack"),
            (&STACK_KEYS, "stack-keys"),
            (&DEVICE_KEY, "device-key"),
            (&PASS, "pass"),
            (&INPUT_PREFIX, "input-prefix"),
            (&OUTPUT_PREFIX, "output-prefix"),
            (&INPUT_PREFIXES, "input-prefixes"),
            (&OUTPUT_PREFIXES, "output-prefixes"),
            (&PREVIOUS_DEVICE, "previous-device"),
            (&PREVIOUS_INPUT_PREFIX, "previous-input-prefix"),
            (&PREVIOUS_OUTPUT_PREFIX, "previous-output-prefix"),
            (&MODE, "mode"),
            (&PRIV, hashpath::PRIV),
        ];
        for (key, name) in pairs {
            assert_eq!(key.as_str(), name);
        }
    }
}
