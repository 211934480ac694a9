//! The cryptographic half of SPEC §2.6: the per-key checks (cached per key)
//! and ed25519 signature verification under the ZIP-215 rules, single and
//! batched, with `ed25519-zebra`.
//!
//! ZIP-215 (<https://zips.z.cash/zip-0215>) accepts a signature `(R, s)` by
//! key `A` over `M` iff `A` and `R` decode to curve points (non-canonical
//! encodings accepted), `s < ℓ`, and the cofactored equation
//! `[8][s]B = [8]R + [8][k]A` holds, `k = sha512(R ‖ A ‖ M)`. The batch
//! equation multiplies a random linear combination of these by 8 as well,
//! so it accepts a set of signatures iff each is accepted on its own (up to
//! a 2^-125-ish chance of accepting a bad one): unlike `verify_strict`,
//! single and batch answers agree on small-order and torsion-shifted `R`.
//!
//! On top of ZIP-215, SPEC §2.6 rule 5 makes two deterministic per-key
//! checks: `keyid` is the canonical encoding of its point, and the point is
//! not of small order. They run once per key ([`checked_key`]) and their
//! answer is kept in a bounded cache ([`KeyCache`]).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};

/// How many checked keys one generation of the key cache holds. The cache
/// keeps two generations, so at most `2 × KEY_CACHE_CAPACITY` keys: each
/// entry is 224 bytes (the 32 key bytes, and the decompressed, negated
/// point of 192 bytes), under 1 MiB in all with the hash tables' slack.
pub const KEY_CACHE_CAPACITY: usize = 1024;

/// Why a `keyid` fails the per-key checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyRejection {
    /// The 32 bytes are not the encoding of a curve point.
    NotAPoint,
    /// A point, but not its canonical encoding (y ≥ p, or the sign bit set
    /// on x = 0): ZIP-215 would accept it, SPEC §2.6 rule 5 does not.
    NonCanonical,
    /// A point of small order (one of the 8 torsion points): it verifies
    /// signatures without any secret.
    SmallOrder,
}

impl KeyRejection {
    /// A sentence for [`Verification::Invalid`](crate::Verification)'s
    /// detail.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            KeyRejection::NotAPoint => "keyid is not an ed25519 point",
            KeyRejection::NonCanonical => "keyid is not the canonical encoding of its point",
            KeyRejection::SmallOrder => "keyid is a point of small order",
        }
    }
}

/// The per-key checks, uncached: the bytes decode to a point, encode it
/// canonically, and the point is not of small order.
fn check_key(bytes: &[u8; 32]) -> Result<VerificationKey, KeyRejection> {
    let point = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(KeyRejection::NotAPoint)?;
    if point.compress().as_bytes() != bytes {
        return Err(KeyRejection::NonCanonical);
    }
    if point.is_small_order() {
        return Err(KeyRejection::SmallOrder);
    }
    // Decompresses again (ed25519-zebra builds its key only from bytes):
    // once per key, thanks to the cache. It cannot fail where the
    // decompression above succeeded; mapped all the same.
    VerificationKey::try_from(*bytes).map_err(|_| KeyRejection::NotAPoint)
}

/// Keys that passed the per-key checks, by their 32 bytes: a bounded map in
/// two generations. A lookup that hits the old generation moves the key to
/// the young one; when the young generation holds `capacity` keys, the old
/// one is dropped and the young one becomes old. So the cache never holds
/// more than `2 × capacity` keys, and a key in steady use is never dropped
/// (it is moved forward at least once per `capacity` insertions).
#[derive(Debug)]
pub(crate) struct KeyCache {
    young: HashMap<[u8; 32], VerificationKey>,
    old: HashMap<[u8; 32], VerificationKey>,
    capacity: usize,
}

impl KeyCache {
    /// An empty cache of two generations of `capacity` keys (at least 1).
    pub(crate) fn new(capacity: usize) -> KeyCache {
        KeyCache {
            young: HashMap::new(),
            old: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The checked key for these bytes, if it is cached.
    pub(crate) fn get(&mut self, bytes: &[u8; 32]) -> Option<VerificationKey> {
        if let Some(k) = self.young.get(bytes) {
            return Some(*k);
        }
        let k = self.old.remove(bytes)?;
        self.insert(*bytes, k);
        Some(k)
    }

    /// Remembers a key that passed the checks.
    pub(crate) fn insert(&mut self, bytes: [u8; 32], key: VerificationKey) {
        if self.young.len() >= self.capacity && !self.young.contains_key(&bytes) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(bytes, key);
    }

    /// How many keys are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

/// The process-wide cache behind [`checked_key`].
fn cache() -> &'static Mutex<KeyCache> {
    static CACHE: OnceLock<Mutex<KeyCache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(KeyCache::new(KEY_CACHE_CAPACITY)))
}

/// The key of these bytes if it passes the per-key checks of SPEC §2.6
/// rule 5. A key seen valid before is not checked again (nor decompressed:
/// decompression is a field square root, about a tenth of a verification);
/// rejected keys are not cached, so they cost a check each time.
pub(crate) fn checked_key(bytes: &[u8; 32]) -> Result<VerificationKey, KeyRejection> {
    // A poisoned lock only means another thread panicked between two
    // statements of `get`/`insert`, which leave the maps sound (each entry
    // is a pure function of its bytes).
    if let Some(k) = cache().lock().unwrap_or_else(|p| p.into_inner()).get(bytes) {
        return Ok(k);
    }
    let key = check_key(bytes)?;
    cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(*bytes, key);
    Ok(key)
}

/// One signature check under the ZIP-215 rules.
pub(crate) fn verify_one(key: &VerificationKey, signature: &Signature, message: &[u8]) -> bool {
    key.verify(signature, message).is_ok()
}

/// One ZIP-215 batch check of every `(key, signature, message)`: true iff
/// [`verify_one`] would accept each of them (but for a chance of about
/// 2^-125 of accepting a set holding a bad signature; never the other way
/// round). An empty set is accepted.
pub(crate) fn verify_all<'a>(
    items: impl IntoIterator<Item = (&'a VerificationKey, &'a Signature, &'a [u8])>,
) -> bool {
    let mut batch = batch::Verifier::new();
    let mut n = 0usize;
    for (key, signature, message) in items {
        batch.queue((VerificationKeyBytes::from(*key), *signature, message));
        n += 1;
    }
    // The random coefficients come from the thread's CSPRNG (ChaCha,
    // seeded from the OS): an OS call per signature would cost ~2 %.
    n == 0 || batch.verify(rand::thread_rng()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;

    fn point(n: u8) -> [u8; 32] {
        (Scalar::from(u64::from(n) + 1) * ED25519_BASEPOINT_POINT)
            .compress()
            .to_bytes()
    }

    #[test]
    fn the_per_key_checks() {
        assert!(check_key(&point(1)).is_ok());
        for t in EIGHT_TORSION {
            assert_eq!(
                check_key(&t.compress().to_bytes()).unwrap_err(),
                KeyRejection::SmallOrder
            );
        }
        // The identity (y = 1) written as y = 1 + p: a point, non-canonical.
        let mut y_plus_p = [0u8; 32];
        y_plus_p[0] = 0xee; // p = 2^255 - 19: p + 1 = ...ffee, top bit clear
        y_plus_p[1..31].fill(0xff);
        y_plus_p[31] = 0x7f;
        assert_eq!(
            check_key(&y_plus_p).unwrap_err(),
            KeyRejection::NonCanonical
        );
        // A point of large order with its sign bit flipped is another
        // point (-A), canonical; with x = 0 the flip is non-canonical.
        let mut minus = point(1);
        minus[31] ^= 0x80;
        assert!(check_key(&minus).is_ok());
        let mut identity_signed = EIGHT_TORSION[0].compress().to_bytes();
        identity_signed[31] |= 0x80;
        assert_eq!(
            check_key(&identity_signed).unwrap_err(),
            KeyRejection::NonCanonical
        );
        // y = 2 is not on the curve.
        let mut off = [0u8; 32];
        off[0] = 2;
        assert_eq!(check_key(&off).unwrap_err(), KeyRejection::NotAPoint);
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_keys_in_use() {
        let mut cache = KeyCache::new(4);
        let keys: Vec<([u8; 32], VerificationKey)> = (0..40)
            .map(|n| (point(n), check_key(&point(n)).unwrap()))
            .collect();
        let hot = keys[0];
        cache.insert(hot.0, hot.1);
        for (bytes, key) in &keys[1..] {
            cache.insert(*bytes, *key);
            assert!(cache.len() <= 8, "{} keys", cache.len());
            // The key in use is looked up between insertions: never lost.
            assert_eq!(cache.get(&hot.0), Some(hot.1));
        }
        // Keys not used for two generations are gone.
        assert_eq!(cache.get(&keys[1].0), None);
        assert_eq!(cache.get(&keys[39].0), Some(keys[39].1));
    }

    #[test]
    fn a_checked_key_is_served_from_the_cache() {
        let bytes = point(200);
        let key = checked_key(&bytes).unwrap();
        assert!(cache().lock().unwrap().get(&bytes).is_some());
        assert_eq!(checked_key(&bytes).unwrap(), key);
        // A rejected key is not remembered.
        let small = EIGHT_TORSION[1].compress().to_bytes();
        assert!(checked_key(&small).is_err());
        assert!(cache().lock().unwrap().get(&small).is_none());
    }

    #[test]
    fn an_empty_batch_is_accepted() {
        assert!(verify_all(std::iter::empty()));
    }
}
