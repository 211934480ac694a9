//! Items made by arbundles (tests/data/arbundles-fixtures.txt): each
//! parses, round-trips byte-exactly, verifies, has arbundles' ID and owner
//! address, and re-encodes from its fields to the same bytes.

use hb_ans104::{Ans104Error, DataItem};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("fixture is hex"))
        .collect()
}

fn fixtures() -> Vec<(String, String, String, Vec<u8>)> {
    include_str!("data/arbundles-fixtures.txt")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "fixture line has 4 fields");
            (f[0].into(), f[1].into(), f[2].into(), hex(f[3]))
        })
        .collect()
}

#[test]
fn arbundles_items_parse_round_trip_and_verify() {
    let all = fixtures();
    assert_eq!(all.len(), 5);
    for (name, id, address, bytes) in all {
        let item = DataItem::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(item.serialize(), bytes, "{name}");
        item.verify().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(item.id(), id, "{name}");
        assert_eq!(item.owner_address(), address, "{name}");
        // hb's one-block tag encoder writes what arbundles writes.
        let mut rebuilt = DataItem::new_unsigned(
            item.signature_type(),
            item.owner().to_vec(),
            item.target().copied(),
            item.anchor().copied(),
            item.tags().to_vec(),
            item.data().to_vec(),
        )
        .unwrap();
        rebuilt.set_signature(item.signature().to_vec()).unwrap();
        assert_eq!(rebuilt.serialize(), bytes, "{name}");
    }
}

#[test]
fn arbundles_items_fail_when_any_signed_field_changes() {
    for (name, _, _, bytes) in fixtures() {
        let item = DataItem::parse(&bytes).unwrap();
        let sig_len = item.signature_type().signature_len();
        // last signature byte, first owner byte, last data byte if any
        let mut spots = vec![1 + sig_len, 2 + sig_len];
        if !item.data().is_empty() {
            spots.push(bytes.len() - 1);
        }
        for at in spots {
            let mut b = bytes.clone();
            b[at] ^= 0x01;
            let r = DataItem::parse(&b).and_then(|i| i.verify());
            assert!(
                matches!(r, Err(Ans104Error::InvalidSignature(_))),
                "{name}: flipped byte {at} gave {r:?}"
            );
        }
    }
}

/// The two type-1 fixtures really use salt lengths 478 and 32 (checked
/// with the `rsa` crate at a fixed salt length, independent of the crate's
/// salt-length detection).
#[test]
fn type1_fixtures_use_salt_lengths_478_and_32() {
    use rsa::{BigUint, Pss, RsaPublicKey};
    use sha2::{Digest, Sha256};
    for (name, _, _, bytes) in fixtures() {
        let salt = match name.as_str() {
            "type1-salt-default" => 478,
            "type1-salt-32" => 32,
            _ => continue,
        };
        let item = DataItem::parse(&bytes).unwrap();
        let key = RsaPublicKey::new(
            BigUint::from_bytes_be(item.owner()),
            BigUint::from(65_537u32),
        )
        .unwrap();
        let hashed = Sha256::digest(item.signing_message());
        let verify = |s: usize| {
            key.verify(Pss::new_with_salt::<Sha256>(s), &hashed, item.signature())
                .is_ok()
        };
        assert!(verify(salt), "{name}");
        assert!(!verify(if salt == 32 { 478 } else { 32 }), "{name}");
    }
}

/// A bundle made by arbundles decodes to items with its IDs, each
/// verifying, and hb encodes those items back to the same bytes.
#[test]
fn arbundles_bundle_decodes_and_re_encodes() {
    let line = include_str!("data/arbundles-bundle.txt").trim();
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 3, "bundle line has 3 fields");
    let ids: Vec<&str> = f[1].split(',').collect();
    let bytes = hex(f[2]);
    let items = hb_ans104::bundle::decode_bundle(&bytes).unwrap();
    assert_eq!(items.len(), 3);
    for (item, id) in items.iter().zip(&ids) {
        assert_eq!(&item.id(), id);
        item.verify().unwrap();
    }
    assert_eq!(items[0].data(), b"first");
    assert_eq!(hb_ans104::bundle::encode_bundle(&items), bytes);
}
