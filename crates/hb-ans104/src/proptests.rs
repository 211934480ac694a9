//! Property tests: total parsing, round trip, flipped bytes.

use proptest::prelude::*;

use crate::sign::{sign_ed25519, Unsigned};
use crate::{bundle, DataItem, Tag};

fn tag() -> impl Strategy<Value = Tag> {
    (
        proptest::collection::vec(any::<u8>(), 1..20),
        proptest::collection::vec(any::<u8>(), 0..20),
    )
        .prop_map(|(n, v)| Tag::new(n, v))
}

fn unsigned() -> impl Strategy<Value = Unsigned> {
    (
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::collection::vec(tag(), 0..6),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(target, anchor, tags, data)| Unsigned {
            target,
            anchor,
            tags,
            data,
        })
}

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = DataItem::parse(&bytes);
        let _ = bundle::decode_bundle(&bytes);
    }

    #[test]
    fn parsing_prefixed_bytes_never_panics(t in 1u16..4, bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
        let mut b = t.to_le_bytes().to_vec();
        b.extend_from_slice(&bytes);
        if let Ok(item) = DataItem::parse(&b) {
            prop_assert_eq!(item.serialize(), b);
            let _ = item.verify();
        }
    }

    #[test]
    fn generated_items_round_trip_and_verify(secret in any::<[u8; 32]>(), u in unsigned()) {
        let item = sign_ed25519(secret, u).unwrap();
        let bytes = item.serialize();
        let parsed = DataItem::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &item);
        prop_assert_eq!(parsed.serialize(), bytes);
        prop_assert!(parsed.verify().is_ok());
    }

    #[test]
    fn flipping_any_byte_breaks_parsing_or_verification(
        secret in any::<[u8; 32]>(),
        u in unsigned(),
        at in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let item = sign_ed25519(secret, u).unwrap();
        let mut bytes = item.serialize();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(p) = DataItem::parse(&bytes) {
            prop_assert!(p.verify().is_err(), "flipped byte {} still verifies", i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random keys and signatures of every type give errors, not panics.
    #[test]
    fn verifying_random_keys_and_signatures_never_panics(
        t in 1u16..4,
        owner in proptest::collection::vec(any::<u8>(), 512),
        sig in proptest::collection::vec(any::<u8>(), 512),
    ) {
        let st = crate::SignatureType::from_code(t).unwrap();
        let mut item = DataItem::new_unsigned(
            st,
            owner[..st.owner_len()].to_vec(),
            None,
            None,
            vec![],
            b"x".to_vec(),
        )
        .unwrap();
        item.set_signature(sig[..st.signature_len()].to_vec()).unwrap();
        prop_assert!(item.verify().is_err());
    }
}

/// Avro zigzag varint, written independently of the codec under test.
fn zigzag(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

proptest! {
    /// Tags split into blocks of any sizes, each written with a positive or
    /// a negative count (then its byte size), decode to the same tags.
    #[test]
    fn tags_in_any_blocks_decode_the_same(
        tags in proptest::collection::vec(tag(), 1..12),
        cuts in proptest::collection::vec((1usize..5, any::<bool>()), 1..12),
    ) {
        let mut raw = Vec::new();
        let mut rest = &tags[..];
        let mut i = 0;
        while !rest.is_empty() {
            let (size, negative) = cuts[i % cuts.len()];
            i += 1;
            let (block, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            let mut body = Vec::new();
            for t in block {
                zigzag(&mut body, t.name.len() as i64);
                body.extend_from_slice(&t.name);
                zigzag(&mut body, t.value.len() as i64);
                body.extend_from_slice(&t.value);
            }
            if negative {
                zigzag(&mut raw, -(block.len() as i64));
                zigzag(&mut raw, body.len() as i64);
            } else {
                zigzag(&mut raw, block.len() as i64);
            }
            raw.extend_from_slice(&body);
        }
        raw.push(0);
        prop_assert_eq!(
            crate::tags::decode_tags(&raw, tags.len() as u64, 0).unwrap(),
            tags.clone()
        );
        // hb's encoder agrees with the one-block form.
        let one = crate::tags::encode_tags(&tags).unwrap();
        prop_assert_eq!(crate::tags::decode_tags(&one, tags.len() as u64, 0).unwrap(), tags);
    }

    /// Decoding arbitrary tag bytes never panics.
    #[test]
    fn decoding_arbitrary_tag_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        count in 0u64..200,
    ) {
        let _ = crate::tags::decode_tags(&bytes, count, 0);
    }
}
