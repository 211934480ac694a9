//! SPEC §2.4: the golden vectors of `docs/message-format.md`, checked from the
//! document itself so that the document and the code can never disagree.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hb_message::{
    canonical, json, verify_batch, Id, IdSelector, Key, Message, NodeKey, Value, Verification,
};
use serde_json::Value as J;
use sha2::{Digest, Sha256};

/// Topics SPEC §2.4 requires the vectors to cover.
const REQUIRED: &[&str] = &[
    "bytes",
    "text",
    "integer",
    "float",
    "boolean",
    "list",
    "message",
    "negative-integer",
    "fractional-float",
    "unicode",
    "nesting",
    "empty-message",
    "id-shaped-key",
    "private-key",
    "top-level-commitments",
    "nested-commitments",
    "signature",
    "two-commitments",
];

fn doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/message-format.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Topics the verification vectors (§9.1) must cover: SPEC §2.6's
/// adversarial inputs.
const REQUIRED_VERIFY: &[&str] = &[
    "torsion-shifted-r",
    "small-order-r",
    "non-canonical-r",
    "non-canonical-s",
    "r-not-a-point",
    "small-order-key",
    "non-canonical-keyid",
    "bad-signature",
];

/// The JSON objects of every fenced block tagged `hbc-vector`.
fn vectors(text: &str) -> Vec<J> {
    blocks(text, "hbc-vector")
}

/// The JSON objects of every fenced block tagged `tag`.
fn blocks(text: &str, tag: &str) -> Vec<J> {
    let fence = format!("```{tag}");
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != fence {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let v: J = serde_json::from_str(&body.join("\n"))
            .unwrap_or_else(|e| panic!("vector #{} is not JSON: {e}", out.len() + 1));
        out.push(v);
    }
    out
}

fn text<'a>(v: &'a J, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: field {field} is missing or not text", v["name"]))
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Adds the `private` entries, by path to a nested message.
fn add_private(m: &mut Message, path: &[&str], value: Value) {
    if let [last] = path {
        m.set_private(last, value).expect("private key");
        return;
    }
    let mut inner = m
        .get_message(path[0])
        .expect("private path through a message")
        .clone();
    add_private(&mut inner, &path[1..], value);
    m.insert(path[0], inner).expect("key");
}

fn check(v: &J) {
    let name = text(v, "name");
    let mut m = json::from_json(v["message"].to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{name}: message: {e}"));
    // The JSON form round-trips exactly.
    assert_eq!(
        json::from_json(json::to_json_string(&m).as_bytes()).unwrap(),
        m,
        "{name}: JSON round trip"
    );
    let public = m.clone();
    if let Some(private) = v.get("private") {
        for (path, value) in private.as_object().expect("private is an object") {
            let value = json::value_from_json(value.to_string().as_bytes(), 64).unwrap();
            add_private(&mut m, &path.split('/').collect::<Vec<_>>(), value);
        }
        assert_ne!(m, public, "{name}: private entries were added");
    }

    let expected_hex: String = v["canonical"]
        .as_array()
        .expect("canonical is a list of hex strings")
        .iter()
        .map(|s| s.as_str().expect("hex string"))
        .collect();
    let bytes = canonical::canonical(&m);
    assert_eq!(hex(&bytes), expected_hex, "{name}: canonical bytes");
    let unsigned = text(v, "unsigned-id");
    // The document is self-consistent: its ID is sha256 of its hex.
    let digest: [u8; 32] = Sha256::digest(unhex(&expected_hex)).into();
    assert_eq!(Id(digest).to_human(), unsigned, "{name}: sha256 of the hex");
    assert_eq!(m.unsigned_id().to_human(), unsigned, "{name}: unsigned ID");
    assert_eq!(m.id(&IdSelector::None).unwrap().to_human(), unsigned);
    // Decoding gives the message without private keys and top-level commitments.
    let mut without = public.clone();
    without.remove("commitments");
    assert_eq!(
        canonical::decode(&bytes, canonical::DEFAULT_MAX_DEPTH).unwrap(),
        without,
        "{name}: decode"
    );

    let Some(commitments) = v.get("commitments") else {
        assert!(
            v.get("id-all").is_none(),
            "{name}: id-all without commitments"
        );
        return;
    };
    let mut signed = m.clone();
    let mut ids = Vec::new();
    for c in commitments.as_array().expect("commitments is a list") {
        let seed: [u8; 32] = unhex(text(c, "seed")).try_into().expect("32-byte seed");
        let key = NodeKey::from_seed(&seed);
        let committed: Option<Vec<Key>> = c.get("committed").map(|ks| {
            ks.as_array()
                .expect("committed is a list")
                .iter()
                .map(|k| Key::new(k.as_str().expect("key text")).expect("key"))
                .collect()
        });
        signed = signed.commit(&key, committed.as_deref()).unwrap();
        let id = text(c, "commitment-id");
        let body = signed
            .get_message("commitments")
            .and_then(|cs| cs.get_message(id))
            .unwrap_or_else(|| panic!("{name}: no commitment {id}"));
        for field in ["keyid", "committer", "signature"] {
            assert_eq!(
                body.get_text(field),
                Some(text(c, field)),
                "{name}: {field}"
            );
        }
        assert_eq!(body.get_text("commitment-device"), Some("ed25519@1.0"));
        assert_eq!(text(c, "committer"), key.address(), "{name}: committer");
        ids.push(Id::parse(id).unwrap());
        // Each commitment alone is selected by its committer.
        let one = IdSelector::Committers(vec![key.address().to_string()]);
        assert_eq!(
            signed.id(&one).unwrap().to_human(),
            id,
            "{name}: id(committer)"
        );
    }
    let id_all = text(v, "id-all");
    assert_eq!(
        signed.id_all().unwrap().to_human(),
        id_all,
        "{name}: id(all)"
    );
    assert_eq!(Id::sum(&ids).to_human(), id_all, "{name}: sum of IDs");
    assert_eq!(
        signed.unsigned_id().to_human(),
        unsigned,
        "{name}: signing keeps the unsigned ID"
    );
    assert!(
        signed.verify(&IdSelector::All).unwrap().is_valid(),
        "{name}: verify"
    );
    if let Some(expected) = v.get("signed-message") {
        assert_eq!(
            &json::to_json(&signed),
            expected,
            "{name}: signed JSON form"
        );
        let parsed = json::from_json(expected.to_string().as_bytes()).unwrap();
        assert_eq!(
            parsed,
            signed.without_private(),
            "{name}: signed JSON parses back"
        );
    }
}

#[test]
fn every_golden_vector_holds() {
    let vs = vectors(&doc());
    assert!(
        vs.len() >= 12,
        "docs/message-format.md has {} vectors; SPEC §2.4 requires at least 12",
        vs.len()
    );
    let mut names = BTreeSet::new();
    let mut covered = BTreeSet::new();
    for v in &vs {
        assert!(names.insert(text(v, "name").to_string()), "duplicate name");
        for c in v["covers"].as_array().expect("covers is a list") {
            covered.insert(c.as_str().expect("topic text").to_string());
        }
        check(v);
    }
    let missing: Vec<&&str> = REQUIRED.iter().filter(|t| !covered.contains(**t)).collect();
    assert!(missing.is_empty(), "topics not covered: {missing:?}");
}

#[test]
fn top_level_commitments_are_left_out_and_nested_ones_are_not() {
    let vs = vectors(&doc());
    let by_name = |n: &str| {
        vs.iter()
            .find(|v| v["name"] == n)
            .unwrap_or_else(|| panic!("vector {n}"))
            .clone()
    };
    // The same bytes with and without a top-level `commitments`.
    assert_eq!(
        by_name("top-level-commitments")["canonical"],
        by_name("one-integer")["canonical"]
    );
    // Private keys leave no trace: the bytes of the message without them.
    let private = by_name("private-keys");
    let plain = json::from_json(private["message"].to_string().as_bytes()).unwrap();
    let expected: String = private["canonical"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(hex(&canonical::canonical(&plain)), expected);
    // A nested `commitments` is encoded.
    let nested = by_name("nested-commitments");
    let bytes = unhex(
        &nested["canonical"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect::<String>(),
    );
    assert!(bytes.windows(11).any(|w| w == b"commitments"));
}

/// The answer of a verification vector, as `(verify, commitment)`.
fn answer(v: &Verification) -> (String, Option<String>) {
    match v {
        Verification::Valid => ("valid".into(), None),
        Verification::Invalid {
            commitment, reason, ..
        } => (reason.code().into(), Some(commitment.clone())),
    }
}

#[test]
fn every_verification_vector_holds_single_and_batched() {
    let vs = blocks(&doc(), "hbc-verify-vector");
    let mut covered = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut messages = Vec::new();
    for v in &vs {
        let name = text(v, "name");
        assert!(names.insert(name.to_string()), "duplicate name {name}");
        for c in v["covers"].as_array().expect("covers is a list") {
            covered.insert(c.as_str().expect("topic text").to_string());
        }
        let m = json::from_json(v["message"].to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{name}: message: {e}"));
        let single = m.verify(&IdSelector::All).unwrap();
        let expected = (
            text(v, "verify").to_string(),
            v.get("commitment")
                .map(|c| c.as_str().expect("text").to_string()),
        );
        assert_eq!(answer(&single), expected, "{name}");
        assert_eq!(verify_batch(&[&m]), vec![single], "{name}: batch alone");
        messages.push(m);
    }
    let missing: Vec<&&str> = REQUIRED_VERIFY
        .iter()
        .filter(|t| !covered.contains(**t))
        .collect();
    assert!(missing.is_empty(), "topics not covered: {missing:?}");
    // All of them in one batch, between valid messages.
    let key = NodeKey::from_seed(&[5; 32]);
    let mut all = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let mut good = Message::new();
        good.insert("i", i as i64).unwrap();
        all.push(good.commit(&key, None).unwrap());
        all.push(m.clone());
    }
    let refs: Vec<&Message> = all.iter().collect();
    let singles: Vec<Verification> = all
        .iter()
        .map(|m| m.verify(&IdSelector::All).unwrap())
        .collect();
    assert_eq!(verify_batch(&refs), singles);
}

/// Topics the ANS-104 vectors (§10.5) must cover.
const REQUIRED_ANS104: &[&str] = &[
    "arbundles",
    "repeated-tag",
    "commit",
    "target",
    "bytes-value",
];

fn hex_lines(v: &J, field: &str) -> Vec<u8> {
    let joined: String = v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{}: {field} is not a list of hex strings", v["name"]))
        .iter()
        .map(|s| s.as_str().expect("hex string"))
        .collect();
    unhex(&joined)
}

#[test]
fn every_ans104_vector_holds() {
    use hb_message::hb_ans104::DataItem;
    use hb_message::{CommitmentDevice, UnsignedItem};
    let vs = blocks(&doc(), "hbc-ans104-vector");
    assert!(
        vs.len() >= 2,
        "docs/message-format.md §10.5 has {} vectors",
        vs.len()
    );
    let mut covered = BTreeSet::new();
    for v in &vs {
        let name = text(v, "name");
        for c in v["covers"].as_array().expect("covers is a list") {
            covered.insert(c.as_str().expect("topic text").to_string());
        }
        let bytes = hex_lines(v, "item");
        let item = DataItem::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let id = text(v, "item-id");
        assert_eq!(item.id(), id, "{name}: item ID");
        // The item and its message.
        let m = Message::from_data_item(&item).unwrap();
        assert_eq!(json::to_json(&m), v["message"], "{name}: message");
        assert_eq!(
            json::from_json(v["message"].to_string().as_bytes()).unwrap(),
            m,
            "{name}: message parses back"
        );
        assert_eq!(m.id_all().unwrap().to_human(), id, "{name}: id(all)");
        let single = m.verify(&IdSelector::All).unwrap();
        assert_eq!(single, Verification::Valid, "{name}: verify");
        assert_eq!(verify_batch(&[&m]), vec![single], "{name}: batched");
        assert_eq!(
            m.to_data_item(id).unwrap().serialize(),
            bytes,
            "{name}: rebuilt"
        );
        // The signer.
        let seed: [u8; 32] = unhex(text(v, "seed")).try_into().expect("32-byte seed");
        let key = NodeKey::from_seed(&seed);
        let signed = key
            .sign_data_item(UnsignedItem {
                target: item.target().copied(),
                anchor: item.anchor().copied(),
                tags: item.tags().to_vec(),
                data: item.data().to_vec(),
            })
            .unwrap();
        assert_eq!(signed.serialize(), bytes, "{name}: signed by the seed");
        if let Some(unsigned) = v.get("unsigned-message") {
            let unsigned = json::from_json(unsigned.to_string().as_bytes()).unwrap();
            let committed = unsigned
                .commit_with(CommitmentDevice::Ans104, &key, None)
                .unwrap();
            assert_eq!(committed, m, "{name}: commit_with(ans104@1.0)");
        }
    }
    let missing: Vec<&&str> = REQUIRED_ANS104
        .iter()
        .filter(|t| !covered.contains(**t))
        .collect();
    assert!(missing.is_empty(), "topics not covered: {missing:?}");
}

#[test]
fn the_parser_reads_only_vector_blocks() {
    let two = "x\n```hbc-vector\n{\"name\": \"a\"}\n```\n```json\n{}\n```\n```hbc-vector\n{\"name\": \"b\"}\n```\n";
    assert_eq!(vectors(two).len(), 2);
    let mixed = "```hbc-verify-vector\n{}\n```\n```hbc-vector\n{}\n```\n";
    assert_eq!(vectors(mixed).len(), 1);
    assert_eq!(blocks(mixed, "hbc-verify-vector").len(), 1);
}
