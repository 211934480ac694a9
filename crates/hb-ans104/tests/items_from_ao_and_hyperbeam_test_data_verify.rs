//! Signed ANS-104 items and bundles copied from the test data of the ao
//! scheduler unit (permaweb/ao, servers/su) and of HyperBEAM
//! (`tests/data/ao-hyperbeam/README.md` says where each file comes from).
//! Each item parses, verifies, serialises back to its exact bytes and has
//! the ID, owner address, target, tags and data its source states; each
//! bundle decodes to items with its header's IDs and re-encodes to its
//! bytes. HyperBEAM's map bundle puts unsigned IDs in its header (not the
//! items' IDs), so hb refuses it as a bundle; its items still verify, except
//! the unsigned manifest, which is refused as unsigned.

use hb_ans104::bundle::{decode_bundle, encode_bundle};
use hb_ans104::{Ans104Error, DataItem, Tag};
use sha2::{Digest, Sha256};

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            &include_bytes!(concat!("data/ao-hyperbeam/", $name))[..],
        )
    };
}

/// The owner address the ao SU's tests state for their items.
const SU_OWNER: &str = "4QKhXnyl1z3HEPprMKfTeXrWPRuQjK6O99k5SFKGuck";

/// Parses, round-trips and verifies one item; answers it.
fn item(name: &str, bytes: &[u8]) -> DataItem {
    let item = DataItem::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(item.serialize(), bytes, "{name}: byte-exact round trip");
    item.verify().unwrap_or_else(|e| panic!("{name}: {e}"));
    item
}

fn tag_pairs(item: &DataItem) -> Vec<(String, String)> {
    item.tags()
        .iter()
        .map(|Tag { name, value }| {
            (
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect()
}

fn tag<'a>(item: &'a DataItem, name: &str) -> Option<&'a [u8]> {
    item.tags()
        .iter()
        .find(|t| t.name == name.as_bytes())
        .map(|t| t.value.as_slice())
}

fn human(bytes: &[u8]) -> String {
    hb_ans104::human(bytes)
}

/// The bundle's header entries (ID, item bytes), read without checking
/// the IDs, so a bundle `decode_bundle` refuses can still be looked into.
fn frames(bundle: &[u8]) -> Vec<([u8; 32], &[u8])> {
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&bundle[at..at + 8]);
        u64::from_le_bytes(a) as usize
    };
    let count = u64_at(0);
    let mut pos = 32 + 64 * count;
    (0..count)
        .map(|i| {
            let size = u64_at(32 + 64 * i);
            let mut id = [0u8; 32];
            id.copy_from_slice(&bundle[32 + 64 * i + 32..32 + 64 * i + 64]);
            let body = &bundle[pos..pos + size];
            pos += size;
            (id, body)
        })
        .collect()
}

/// Decodes a bundle, checks every item (round trip, signature) and that
/// hb encodes the items back to the same bytes; answers the items.
fn bundle(name: &str, bytes: &[u8]) -> Vec<DataItem> {
    let items = decode_bundle(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (i, (header_id, body)) in frames(bytes).into_iter().enumerate() {
        let it = item(&format!("{name} item {i}"), body);
        assert_eq!(it.id_bytes(), header_id, "{name} item {i}");
    }
    assert_eq!(encode_bundle(&items), bytes, "{name}: re-encodes");
    items
}

#[test]
fn ao_su_items_verify_round_trip_and_keep_their_stated_ids() {
    // servers/su/src/domain/core/bytes.rs and json.rs: ITEM_STR.
    let (name, bytes) = fixture!("ao-su-message-item.bin");
    let m = item(name, bytes);
    assert_eq!(m.signature_type().code(), 1);
    assert_eq!(m.id(), "6oYAxVAnH8yKsZKpMgHSbRv7uVWey68PAqYuSXeZBbg");
    assert_eq!(
        m.target().map(|t| human(t)).as_deref(),
        Some("-oM8CYgbqsRcpI3tE_cpGM3kgDlamnYjSGA4nptPao0")
    );
    assert_eq!(m.owner_address(), SU_OWNER);
    assert_eq!(m.data(), b"6583");
    // A tag given twice stays twice, in order.
    assert_eq!(
        tag_pairs(&m)
            .iter()
            .filter(|(n, _)| n == "Data-Protocol")
            .count(),
        2
    );

    // json.rs: PROCESS_ITEM_STR.
    let (name, bytes) = fixture!("ao-su-process-item.bin");
    let p = item(name, bytes);
    assert_eq!(p.id(), "boxXWZqkBaZmOKJ3Vh7PZzC07Q9OXmxF4QT_ikodfNY");
    assert_eq!(p.owner_address(), SU_OWNER);
    assert_eq!(tag(&p, "ao-type"), Some(&b"process"[..]));

    // json.rs: ASSIGNMENT_ITEM_STR, an SU assignment (its ID is not
    // stated by the source; its Process tag is the process ID json.rs
    // states).
    let (name, bytes) = fixture!("ao-su-assignment-item.bin");
    let a = item(name, bytes);
    assert_eq!(a.id(), "P_N-NEMtNRpNXemOHMNu9Gjx4AbNhAl-7_5CGtPC6PM");
    assert_eq!(
        tag(&a, "Process"),
        Some(&b"4iZaXaryQ3eeCDB_2ZS4WmET6DTm35QukI6dNEhQPmw"[..])
    );
    assert_eq!(tag(&a, "Nonce"), Some(&b"1"[..]));
}

#[test]
fn ao_su_items_carrying_bundles_verify_at_both_levels() {
    // local_store/tests.rs: create_test_process_bundle and
    // create_test_message_bundle, items whose data is a bundle of the
    // assignment and the process (or message).
    let (name, bytes) = fixture!("ao-su-process-bundle-item.bin");
    let outer = item(name, bytes);
    assert_eq!(outer.id(), "3V78xU523MnmjUPvwDDCbbeFBncSlk2OUZ9INaQws5g");
    assert_eq!(tag(&outer, "Bundle-Format"), Some(&b"binary"[..]));
    let inner = bundle(name, outer.data());
    assert_eq!(inner.len(), 2);
    let (assignment, process) = (&inner[0], &inner[1]);
    assert_eq!(process.id(), "oVZz-HyFwhXUa61vM1UkEpi0fWx804HlxYwxV69lv5A");
    assert_eq!(tag(process, "Type"), Some(&b"Process"[..]));
    assert_eq!(tag(assignment, "Process"), Some(process.id().as_bytes()));
    assert_eq!(tag(assignment, "Nonce"), Some(&b"0"[..]));

    let (name, bytes) = fixture!("ao-su-message-bundle-item.bin");
    let outer = item(name, bytes);
    assert_eq!(outer.id(), "3wvuiwreb6sCVrwLCNTohld_d-bJdxMAWk3hxjDneP0");
    let inner = bundle(name, outer.data());
    assert_eq!(inner.len(), 1);
    assert_eq!(tag(&inner[0], "Nonce"), Some(&b"1"[..]));
}

#[test]
fn ao_su_message_bundle_decodes_to_its_assignment_and_message() {
    // servers/su/message.bin: the bundle the SU uploads for one message.
    let (name, bytes) = fixture!("ao-su-message.bundle");
    let items = bundle(name, bytes);
    assert_eq!(items.len(), 2);
    let (assignment, message) = (&items[0], &items[1]);
    assert_eq!(
        assignment.id(),
        "qAxRmlZZTnQDKNqYTB5_8u8Cmk9J9-aVVee_bDZMlr0"
    );
    assert_eq!(message.id(), "XxAng_IUpIPBuk35-jNWuN2eBPVytruzobiFwmSTt4I");
    assert_eq!(tag(assignment, "Type"), Some(&b"Assignment"[..]));
    assert_eq!(tag(assignment, "Message"), Some(message.id().as_bytes()));
    assert_eq!(tag(assignment, "Nonce"), Some(&b"247050"[..]));
    let pid = message.target().map(|t| human(t)).expect("a target");
    assert_eq!(tag(assignment, "Process"), Some(pid.as_bytes()));
    assert_eq!(tag(message, "Action"), Some(&b"Info"[..]));
}

#[test]
fn hyperbeam_arbundles_items_verify_with_the_fields_its_tests_state() {
    // test/arbundles.js/ans104-item.bundle (one item, made by arbundles).
    let (name, bytes) = fixture!("hyperbeam-ans104-item.bundle");
    let it = item(name, bytes);
    assert_eq!(it.signature_type().code(), 1);
    assert_eq!(it.data(), b"hello world");
    assert_eq!(
        it.target().map(|t| human(t)).as_deref(),
        Some("eJmUI4azsmhRCZRf3MaX0CFDHwWn9oStIirZma3ql68")
    );
    assert_eq!(it.anchor(), None);
    assert_eq!(
        tag_pairs(&it),
        vec![
            ("Content-Type".into(), "text/plain".into()),
            ("App-Name".into(), "arbundles-gen".into())
        ]
    );

    // test/arbundles.js/ans104-list-bundle.bundle (three items).
    let (name, bytes) = fixture!("hyperbeam-ans104-list-bundle.bundle");
    let items = bundle(name, bytes);
    let data: Vec<&[u8]> = items.iter().map(DataItem::data).collect();
    assert_eq!(data, [&b"first"[..], b"second", b"third"]);
    assert_eq!(
        items[0].target().map(|t| human(t)).as_deref(),
        Some("Tu6LHQdEVK7lNF3AOAHrVBjl2CFvQizd5VaWBvdFRSs")
    );
    assert_eq!(
        items[0].anchor().map(|a| human(a)).as_deref(),
        Some("N1k7gUBck6EBgmApl58Nxxhe3TTATSHeEyyXhdFVe9A")
    );
    assert_eq!(
        items[1].anchor().map(|a| human(a)).as_deref(),
        Some("fgAVH_xJJU1tkzWSmSfBfb_KBX8sa_FQ2b7YWuE08Ko")
    );
    assert_eq!((items[1].target(), items[2].anchor()), (None, None));
    assert_eq!(
        tag_pairs(&items[2]),
        vec![("Type".into(), "list".into()), ("Index".into(), "2".into())]
    );

    // test/arbundles.js/ans104-single-list-bundle.bundle.
    let (name, bytes) = fixture!("hyperbeam-ans104-single-list-bundle.bundle");
    let items = bundle(name, bytes);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].id(), "IchWLlJKLaCqKd4KW6BcDKe560XpfgFuPHXjjK8tfgA");
    assert_eq!(items[0].data(), b"only");
}

#[test]
fn hyperbeam_type3_item_with_a_negative_avro_block_count_verifies() {
    // src/ar_bundles.erl, deserialize_header_test: an Ethereum-signed
    // (type 3) item whose tags are one Avro block with a negative count.
    let (name, bytes) = fixture!("hyperbeam-ar-bundles-header-test-type3.bin");
    let it = item(name, bytes);
    assert_eq!(it.signature_type().code(), 3);
    assert_eq!(it.id(), "sfuxzQEEIFo5w6swrIPNjqUXCkaRm1BiuP5E3tmuNeU");
    assert_eq!(
        it.raw_tags().first(),
        Some(&3),
        "zigzag -2: a negative block count"
    );
    assert_eq!(
        tag_pairs(&it),
        vec![
            (
                "IPFS-Hash".into(),
                "bafkreibgdsah6zol2eoe6bpx63hc7u3pk5xij3txnbxfxattatq3ll4wda".into()
            ),
            ("Content-Type".into(), "application/octet-stream".into())
        ]
    );
    assert!(it.data().starts_with(b"RIFF"));
}

#[test]
fn hyperbeam_map_bundle_with_unsigned_header_ids_is_refused_as_a_bundle() {
    // test/arbundles.js/ans104-map-bundle-erlang.bundle, made by
    // HyperBEAM's ar_bundles.erl: an item whose data is a map bundle.
    let (name, bytes) = fixture!("hyperbeam-ans104-map-bundle-erlang.bundle");
    let outer = item(name, bytes);
    assert_eq!(
        tag(&outer, "bundle-map"),
        Some(&b"DwgwetwuSXGrnQiHFziiRLPKIucN5ua9KWkHA-nRQJQ"[..])
    );
    // HyperBEAM writes each item's unsigned ID (sha256 of the deep hash
    // with a zero owner) into a map bundle's header, where ANS-104 has the
    // item's ID (sha256 of its signature): hb refuses the bundle.
    assert!(
        matches!(
            decode_bundle(outer.data()),
            Err(Ans104Error::Malformed {
                field: "bundle item id",
                ..
            })
        ),
        "{:?}",
        decode_bundle(outer.data()).map(|items| items.len())
    );
    let frames = frames(outer.data());
    let header_ids: Vec<String> = frames.iter().map(|(id, _)| human(id)).collect();
    assert_eq!(
        header_ids,
        [
            // The manifest, then key1 and key2 as the manifest names them.
            "DwgwetwuSXGrnQiHFziiRLPKIucN5ua9KWkHA-nRQJQ",
            "zZXTg5K_9G3EnpMUOhp9QX1tqa8dJa32p2JPkQtiPT0",
            "m4D2fObeaz5qFkhpacO1K351jaksg2j0-wpyCetAOb4",
        ]
    );
    for (i, (header_id, body)) in frames.iter().enumerate() {
        let it = DataItem::parse(body).unwrap_or_else(|e| panic!("{name} item {i}: {e}"));
        assert_eq!(it.serialize(), *body, "{name} item {i}");
        let zero_owner = DataItem::new_unsigned(
            it.signature_type(),
            vec![0; it.signature_type().owner_len()],
            it.target().copied(),
            it.anchor().copied(),
            it.tags().to_vec(),
            it.data().to_vec(),
        )
        .expect("rebuilds");
        let unsigned_id: [u8; 32] = Sha256::digest(zero_owner.signing_message()).into();
        assert_eq!(&unsigned_id, header_id, "{name} item {i}: the unsigned ID");
        assert_ne!(&it.id_bytes(), header_id, "{name} item {i}");
    }
    // The manifest is unsigned (a zero signature): refused as such.
    let manifest = DataItem::parse(frames[0].1).expect("parses");
    assert!(manifest.signature().iter().all(|&b| b == 0));
    assert!(matches!(
        manifest.verify(),
        Err(Ans104Error::InvalidSignature(_))
    ));
    assert_eq!(
        manifest.data(),
        br#"{"key1":"zZXTg5K_9G3EnpMUOhp9QX1tqa8dJa32p2JPkQtiPT0","key2":"m4D2fObeaz5qFkhpacO1K351jaksg2j0-wpyCetAOb4"}"#
    );
    // The two signed items verify on their own.
    for (i, data) in [(1, &b"item1_data"[..]), (2, b"item2_data")] {
        let it = item(&format!("{name} item {i}"), frames[i].1);
        assert_eq!(it.data(), data);
    }
}

#[test]
fn a_changed_byte_in_any_fixture_item_fails_verification() {
    for (name, bytes) in [
        fixture!("ao-su-message-item.bin"),
        fixture!("ao-su-process-item.bin"),
        fixture!("hyperbeam-ans104-item.bundle"),
        fixture!("hyperbeam-ar-bundles-header-test-type3.bin"),
    ] {
        let mut b = bytes.to_vec();
        let last = b.len() - 1;
        b[last] ^= 1; // the last data byte is signed
        let r = DataItem::parse(&b).and_then(|i| i.verify());
        assert!(
            matches!(r, Err(Ans104Error::InvalidSignature(_))),
            "{name}: {r:?}"
        );
    }
}
