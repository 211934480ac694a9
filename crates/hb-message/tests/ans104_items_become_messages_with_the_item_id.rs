//! SPEC §10.2: an ANS-104 item becomes a message whose id(all) is the item
//! ID, which verifies, and which gives back the item byte for byte. Items
//! made by arbundles (types 1, 2 and 3, hb-ans104's fixtures) and items
//! generated here; a message may carry `ed25519@1.0` and `ans104@1.0`
//! commitments together; the JSON form keeps all of it.

mod common;

use common::{arbundles_fixtures, Fixture};
use hb_message::hb_ans104::{bundle, DataItem, Tag};
use hb_message::{
    encode_base64url, human, json, verify_batch, CommitmentDevice, Id, IdSelector, Message,
    MessageError, NodeKey, UnsignedItem, Value, Verification, VerifyFailure, ANS104_DEVICE,
    COMMITMENTS, ED25519_DEVICE,
};
use proptest::prelude::*;

fn parse(f: &Fixture) -> DataItem {
    DataItem::parse(&f.bytes).unwrap_or_else(|e| panic!("{}: {e}", f.name))
}

fn reason(m: &Message) -> Option<VerifyFailure> {
    match m.verify(&IdSelector::All).unwrap() {
        Verification::Valid => None,
        Verification::Invalid { reason, .. } => Some(reason),
    }
}

/// The commitment of `m` made by `device`, as (ID, body).
fn commitment_of(m: &Message, device: &str) -> (String, Message) {
    m.get_message(COMMITMENTS)
        .unwrap()
        .iter()
        .find(|(_, b)| b.as_message().unwrap().get_text("commitment-device") == Some(device))
        .map(|(id, b)| (id.as_str().to_string(), b.as_message().unwrap().clone()))
        .unwrap_or_else(|| panic!("no {device} commitment"))
}

#[test]
fn every_arbundles_item_maps_to_a_message_with_its_id_that_verifies_and_rebuilds() {
    let fixtures = arbundles_fixtures();
    assert_eq!(fixtures.len(), 5);
    let mut messages = Vec::new();
    for f in &fixtures {
        let item = parse(f);
        let m = Message::from_data_item(&item).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        assert_eq!(m.id_all().unwrap().to_human(), f.id, "{}: id(all)", f.name);
        assert_eq!(reason(&m), None, "{}: verify", f.name);
        assert_eq!(
            m.committers().unwrap(),
            vec![f.address.clone()],
            "{}",
            f.name
        );
        let (id, body) = commitment_of(&m, ANS104_DEVICE);
        assert_eq!(id, f.id);
        let expected_type = match f.name.as_bytes()[4] {
            b'1' => "rsa-pss-sha256",
            b'2' => "ed25519",
            _ => "secp256k1",
        };
        assert_eq!(body.get_text("type"), Some(expected_type), "{}", f.name);
        let rebuilt = m.to_data_item(&f.id).unwrap();
        assert_eq!(rebuilt.serialize(), f.bytes, "{}: byte-exact", f.name);
        messages.push(m);
    }
    // The fixtures' tags: Data-Protocol, Action twice, an empty value.
    let type2 = &messages[2];
    assert_eq!(type2.get_text("data-protocol"), Some("ao"));
    assert_eq!(
        type2.get("action"),
        Some(&Value::List(vec!["Eval".into(), "Again".into()]))
    );
    assert_eq!(type2.get_text("empty"), Some(""));
    assert_eq!(type2.get_text("data"), Some("1 + 1"));
    // The bare item is a message with only its commitment.
    assert_eq!(messages[3].keys().count(), 1);
    // Batched, the same answers.
    let refs: Vec<&Message> = messages.iter().collect();
    assert!(verify_batch(&refs).iter().all(Verification::is_valid));
}

#[test]
fn the_items_of_an_arbundles_bundle_keep_their_ids_as_messages() {
    let line = include_str!("../../hb-ans104/tests/data/arbundles-bundle.txt");
    let f: Vec<&str> = line.split_whitespace().collect();
    let hex = f[2];
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let items = bundle::decode_bundle(&bytes).unwrap();
    let ids: Vec<&str> = f[1].split(',').collect();
    assert_eq!(items.len(), ids.len());
    for (item, id) in items.iter().zip(ids) {
        let m = Message::from_data_item(item).unwrap();
        assert_eq!(m.id_all().unwrap().to_human(), id);
        assert!(m.verify(&IdSelector::All).unwrap().is_valid());
        assert_eq!(m.to_data_item(id).unwrap(), *item);
    }
}

/// Another value of the same kind: text and bytes changed, a list's first
/// entry changed.
fn changed(v: &Value) -> Value {
    match v {
        Value::Text(s) => Value::Text(format!("{s}x")),
        Value::Bytes(b) => {
            let mut b = b.clone();
            b.push(0xff);
            Value::Bytes(b)
        }
        Value::List(items) => {
            let mut items = items.clone();
            items[0] = changed(&items[0]);
            Value::List(items)
        }
        other => panic!("no item gives {other:?}"),
    }
}

#[test]
fn changing_any_committed_value_the_data_the_target_or_the_anchor_fails_verification() {
    let mut checked = 0;
    for f in arbundles_fixtures() {
        let m = Message::from_data_item(&parse(&f)).unwrap();
        for k in m.committed(&IdSelector::All).unwrap() {
            let v = m.get_key(&k).unwrap();
            let mut edited = m.clone();
            let new = match k.as_str() {
                // Another well-formed target or anchor: only the
                // signature can tell.
                "target" | "anchor" => Value::Text(human(&[0x42; 32])),
                _ => changed(v),
            };
            edited.insert_key(k.clone(), new);
            let expected = match k.as_str() {
                "data" | "target" | "anchor" => VerifyFailure::BadSignature,
                _ => VerifyFailure::CommittedValueMismatch,
            };
            assert_eq!(reason(&edited), Some(expected), "{}: changed {k}", f.name);
            assert_eq!(
                verify_batch(&[&edited]),
                vec![edited.verify(&IdSelector::All).unwrap()]
            );
            let mut removed = m.clone();
            removed.remove_key(&k);
            assert_eq!(
                reason(&removed),
                Some(VerifyFailure::MissingCommittedKey),
                "{}: removed {k}",
                f.name
            );
            checked += 1;
        }
        // A field the item does not have, added later, is not committed:
        // it changes nothing.
        let mut extra = m.clone();
        extra.insert("unrelated", "value").unwrap();
        assert_eq!(reason(&extra), None, "{}", f.name);
    }
    // Three tag keys each (Data-Protocol, Action twice, Empty), plus: type 1
    // ×2 data, target and anchor; type 2 data; type 3 data and anchor.
    assert_eq!(checked, 2 * 6 + 4 + 5);
}

#[test]
fn a_message_with_ed25519_and_ans104_commitments_verifies_and_its_id_is_the_sum() {
    let key = NodeKey::from_seed(&[11; 32]);
    let fixtures = arbundles_fixtures();
    let item = parse(&fixtures[2]);
    let from_item = Message::from_data_item(&item).unwrap();
    let both = from_item.commit(&key, None).unwrap();
    // And the other way round: an hb message signed with both devices.
    let native = hb_message::msg! { "action" => "Eval", "data" => "2 + 2" };
    let native_both = native
        .commit(&key, None)
        .unwrap()
        .commit_with(
            CommitmentDevice::Ans104,
            &NodeKey::from_seed(&[12; 32]),
            None,
        )
        .unwrap();
    for m in [&both, &native_both] {
        assert_eq!(reason(m), None);
        assert_eq!(verify_batch(&[m]), vec![Verification::Valid]);
        let (ans, _) = commitment_of(m, ANS104_DEVICE);
        let (ed, _) = commitment_of(m, ED25519_DEVICE);
        let sum = Id::sum([&Id::parse(&ans).unwrap(), &Id::parse(&ed).unwrap()]);
        assert_eq!(m.id_all().unwrap(), sum);
        assert_eq!(m.committers().unwrap().len(), 2);
        assert_eq!(m.with_only_committed().unwrap(), *m);
        // The item is still there, byte for byte.
        let rebuilt = m.to_data_item(&ans).unwrap();
        assert_eq!(rebuilt.id(), ans);
        rebuilt.verify().unwrap();
        // Tampering breaks both, and the first one in ID order is named.
        let mut tampered = m.clone();
        tampered.insert("data", "changed").unwrap();
        let Verification::Invalid { commitment, .. } = tampered.verify(&IdSelector::All).unwrap()
        else {
            panic!("tampered message verified")
        };
        assert_eq!(commitment, std::cmp::min(&ans, &ed).clone());
    }
    assert_eq!(
        both.to_data_item(&fixtures[2].id).unwrap().serialize(),
        fixtures[2].bytes
    );
}

#[test]
fn the_json_form_round_trips_ans104_messages() {
    let key = NodeKey::from_seed(&[13; 32]);
    let item = key
        .sign_data_item(UnsignedItem {
            target: Some([5; 32]),
            anchor: Some([6; 32]),
            tags: vec![
                Tag::new("Binary", vec![0xff, 0xfe, 0x00]),
                Tag::new("Name", "héllo"),
                Tag::new("name", vec![0xc3]),
            ],
            data: vec![0x80, 0x81, 0x82],
        })
        .unwrap();
    let mut ms = vec![Message::from_data_item(&item).unwrap()];
    for f in arbundles_fixtures() {
        ms.push(Message::from_data_item(&parse(&f)).unwrap());
    }
    for m in ms {
        let text = json::to_json_string(&m);
        let back = json::from_json(text.as_bytes()).unwrap();
        assert_eq!(back, m, "{text}");
        assert!(back.verify(&IdSelector::All).unwrap().is_valid());
        let id = back.id_all().unwrap().to_human();
        assert_eq!(back.to_data_item(&id).unwrap().id(), id);
    }
    // Bytes values travel as `@bytes`.
    let m = Message::from_data_item(&item).unwrap();
    let j = json::to_json(&m);
    assert_eq!(
        j["binary"]["@bytes"],
        serde_json::json!(encode_base64url(&[0xff, 0xfe, 0x00]))
    );
    assert_eq!(
        j["name"],
        serde_json::json!(["héllo", {"@bytes": encode_base64url(&[0xc3])}])
    );
}

/// Tag names that always become keys: varied case (so some normalise
/// alike and become lists), ID-shaped names, never a field's or a
/// private name.
fn tag_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[A-Za-z][A-Za-z0-9-]{0,8}",
        2 => prop::sample::select(vec!["Action", "action", "ACTION", "Data-Protocol"])
            .prop_map(str::to_string),
        1 => "[A-Za-z0-9_-]{43}",
    ]
    .prop_filter("a name that maps", |n| {
        let l = n.to_ascii_lowercase();
        !l.starts_with("priv") && !["data", "target", "anchor", "commitments"].contains(&l.as_str())
    })
    .prop_map(String::into_bytes)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..max),
        "[ -~é]{0,12}".prop_map(String::into_bytes),
    ]
}

fn unsigned(name: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = UnsignedItem> {
    (
        prop::option::of(any::<[u8; 32]>()),
        prop::option::of(any::<[u8; 32]>()),
        prop::collection::vec((name, bytes(16)), 0..10),
        bytes(64),
    )
        .prop_map(|(target, anchor, tags, data)| UnsignedItem {
            target,
            anchor,
            tags: tags.into_iter().map(|(n, v)| Tag::new(n, v)).collect(),
            data,
        })
}

/// The properties every mappable item has.
fn check_round_trip(item: &DataItem, m: &Message) -> Result<(), TestCaseError> {
    let id = item.id();
    prop_assert_eq!(m.id_all().unwrap().to_human(), id.clone());
    let single = m.verify(&IdSelector::All).unwrap();
    prop_assert_eq!(&single, &Verification::Valid);
    prop_assert_eq!(verify_batch(&[m]), vec![single]);
    prop_assert_eq!(m.to_data_item(&id).unwrap().serialize(), item.serialize());
    let back = json::from_json(json::to_json_string(m).as_bytes()).unwrap();
    prop_assert_eq!(&back, m);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Generated type-2 items (duplicate names in any case, non-UTF-8
    /// values and data, with and without target and anchor): the message
    /// has the item ID, verifies single and batched, rebuilds byte-exactly
    /// and survives the JSON form.
    #[test]
    fn generated_type_2_items_round_trip_and_verify(
        seed in any::<[u8; 32]>(),
        u in unsigned(tag_name()),
    ) {
        let item = NodeKey::from_seed(&seed).sign_data_item(u).unwrap();
        let m = Message::from_data_item(&item).unwrap();
        check_round_trip(&item, &m)?;
    }

    /// Any tag names at all: the item maps and round-trips, or it is an
    /// `UnmappableItem`; never a panic.
    #[test]
    fn items_with_any_tag_names_map_or_are_refused(
        u in unsigned(prop::collection::vec(any::<u8>(), 1..6)),
    ) {
        let item = NodeKey::from_seed(&[3; 32]).sign_data_item(u).unwrap();
        match Message::from_data_item(&item) {
            Ok(m) => check_round_trip(&item, &m)?,
            Err(MessageError::UnmappableItem { item: id, .. }) => prop_assert_eq!(id, item.id()),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
