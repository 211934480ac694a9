//! Property tests of SPEC §2.1–2.6 and §2.9: canonical encoding, JSON and
//! record round trips, and what verify notices.

mod common;

use common::*;
use hb_message::codec::{self, Record};
use hb_message::{canonical, json, IdSelector, Key, Message, NodeKey, COMMITMENTS};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Rec {
    slot: u64,
    body: Message,
    others: Vec<Message>,
    note: Option<String>,
}

impl Record for Rec {
    const VERSION: u8 = 3;
    const NAME: &'static str = "property-record";
}

fn key() -> NodeKey {
    NodeKey::from_seed(&[42; 32])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn encoding_is_independent_of_insertion_order(
        entries in entries(),
        seed in any::<u64>(),
    ) {
        let forward = Message::from_pairs(entries.clone()).unwrap();
        let mut shuffled = entries;
        // A deterministic shuffle driven by `seed`.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let backward = Message::from_pairs(shuffled).unwrap();
        prop_assert_eq!(&forward, &backward);
        let bytes = canonical::canonical(&forward);
        prop_assert_eq!(&bytes, &canonical::canonical(&backward));
        prop_assert_eq!(&bytes, &canonical::canonical(&forward.clone()));
        prop_assert_eq!(forward.unsigned_id(), backward.unsigned_id());
    }

    #[test]
    fn canonical_decode_inverts_the_encoders(m in message()) {
        let public = m.without_private();
        let whole = canonical::encode_whole(&m);
        prop_assert_eq!(&canonical::decode(&whole, 64).unwrap(), &public);
        // Private keys never reach the bytes.
        prop_assert_eq!(&whole, &canonical::encode_whole(&public));
        prop_assert_eq!(m.unsigned_id(), public.unsigned_id());
        let mut unsigned = public.clone();
        unsigned.remove(COMMITMENTS);
        prop_assert_eq!(canonical::decode(&canonical::canonical(&m), 64).unwrap(), unsigned);
    }

    #[test]
    fn json_round_trips_exactly(m in message()) {
        let text = json::to_json_string(&m);
        prop_assert_eq!(json::from_json(text.as_bytes()).unwrap(), m.without_private());
    }

    #[test]
    fn json_written_directly_is_the_text_of_the_json_tree(m in message()) {
        prop_assert_eq!(json::to_json_vec(&m), json::to_json_string(&m).into_bytes());
    }

    #[test]
    fn json_round_trips_every_single_value(v in value()) {
        let text = json::value_to_json(&v).to_string();
        prop_assert_eq!(json::value_from_json(text.as_bytes(), 64).unwrap(), v);
    }

    #[test]
    fn records_round_trip(
        slot in any::<u64>(),
        body in message(),
        others in prop::collection::vec(public_message(), 0..3),
        note in proptest::option::of(text()),
    ) {
        let rec = Rec { slot, body, others, note };
        let bytes = codec::encode(&rec).unwrap();
        prop_assert_eq!(bytes[0], Rec::VERSION);
        let back: Rec = codec::decode(&bytes).unwrap();
        prop_assert_eq!(back.slot, rec.slot);
        prop_assert_eq!(&back.body, &rec.body.without_private());
        prop_assert_eq!(&back.others, &rec.others);
        prop_assert_eq!(&back.note, &rec.note);
    }
}

proptest! {
    // Signing and verifying cost ~100 µs per case in debug builds.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn changing_a_committed_value_breaks_verify(
        m in non_empty_message(),
        pick in any::<prop::sample::Index>(),
        replacement in value(),
    ) {
        let signed = m.commit(&key(), None).unwrap();
        prop_assert!(signed.verify(&IdSelector::All).unwrap().is_valid());
        let keys: Vec<Key> = m.keys().cloned().collect();
        let k = pick.get(&keys);
        let old = m.get(k.as_str()).unwrap();
        // A change the encoding can see (private data inside is invisible).
        prop_assume!(canonical::encode_value(old) != canonical::encode_value(&replacement));
        let mut tampered = signed.clone();
        tampered.insert(k.as_str(), replacement).unwrap();
        prop_assert!(!tampered.verify(&IdSelector::All).unwrap().is_valid());
        prop_assert!(!hb_message::verify_batch(&[&tampered])[0].is_valid());
    }

    #[test]
    fn removing_a_committed_key_breaks_verify(
        m in non_empty_message(),
        pick in any::<prop::sample::Index>(),
    ) {
        let signed = m.commit(&key(), None).unwrap();
        let keys: Vec<Key> = m.keys().cloned().collect();
        let mut removed = signed.clone();
        removed.remove(pick.get(&keys).as_str());
        prop_assert!(!removed.verify(&IdSelector::All).unwrap().is_valid());
    }

    #[test]
    fn adding_an_uncommitted_key_keeps_verify(
        m in message(),
        extra in raw_key(),
        v in value(),
    ) {
        let signed = m.commit(&key(), None).unwrap();
        prop_assume!(signed.get(&extra).is_none());
        let k = Key::new(&extra).unwrap();
        prop_assume!(!k.is_private());
        let mut added = signed.clone();
        added.insert(&extra, v).unwrap();
        prop_assert!(added.verify(&IdSelector::All).unwrap().is_valid());
        prop_assert_eq!(added.id_all().unwrap(), signed.id_all().unwrap());
        prop_assert_eq!(added.with_only_committed().unwrap(), signed.with_only_committed().unwrap());
    }

    #[test]
    fn commitment_ids_add_up(m in message(), seeds in prop::collection::btree_set(1u8..40, 1..4)) {
        let mut signed = m.clone();
        let mut ids = Vec::new();
        for s in &seeds {
            let k = NodeKey::from_seed(&[*s; 32]);
            signed = signed.commit(&k, None).unwrap();
            ids.push(signed.id(&IdSelector::Committers(vec![k.address().into()])).unwrap());
        }
        prop_assert_eq!(signed.id_all().unwrap(), hb_message::Id::sum(&ids));
        prop_assert_eq!(signed.unsigned_id(), m.unsigned_id());
        prop_assert!(signed.verify(&IdSelector::All).unwrap().is_valid());
        prop_assert_eq!(signed.committers().unwrap().len(), seeds.len());
    }
}
