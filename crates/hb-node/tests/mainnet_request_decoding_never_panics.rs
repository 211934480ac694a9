//! SPEC §8 for the mainnet surface's decoders: arbitrary paths, bodies and
//! dry-run fields never panic them, and everything they refuse is a 4xx;
//! a signed item with any one byte flipped is never accepted.

use hb_ans104::sign::{sign_ed25519, Unsigned};
use hb_ans104::Tag;
use hb_message::Message;
use hb_node::mainnet::request::{dry_run_message, route, signed_item};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_paths_route_or_are_refused_with_a_4xx(path in any::<String>()) {
        if let Err(refused) = route(&path) {
            prop_assert!((400..500).contains(&refused.status), "{refused:?}");
        }
    }

    #[test]
    fn path_shaped_noise_routes_or_is_refused_with_a_4xx(
        path in "(/[~&=%a-zA-Z0-9@._+-]{0,50}){0,6}"
    ) {
        if let Err(refused) = route(&path) {
            prop_assert!((400..500).contains(&refused.status), "{refused:?}");
        }
    }

    #[test]
    fn arbitrary_bodies_are_refused_with_a_4xx(body in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Err(refused) = signed_item(&body) {
            prop_assert!((400..500).contains(&refused.status), "{refused:?}");
        }
    }

    #[test]
    fn arbitrary_dry_run_fields_are_kept_or_refused_with_a_4xx(
        fields in prop::collection::vec((any::<String>(), any::<String>()), 0..6)
    ) {
        if let Err(refused) = dry_run_message(&Message::new(), &fields) {
            prop_assert!((400..500).contains(&refused.status), "{refused:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_flipped_byte_is_never_accepted(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let item = sign_ed25519(
            [3; 32],
            Unsigned {
                target: Some([4; 32]),
                tags: vec![Tag::new("Action", "Inc"), Tag::new("Type", "Message")],
                data: b"1984".to_vec(),
                ..Unsigned::default()
            },
        )
        .expect("signs");
        let mut bytes = item.serialize();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        match signed_item(&bytes) {
            Ok(decoded) => prop_assert!(false, "accepted with byte {i} flipped: {}", decoded.id),
            Err(refused) => prop_assert_eq!(refused.status, 400, "{:?}", refused),
        }
    }
}
