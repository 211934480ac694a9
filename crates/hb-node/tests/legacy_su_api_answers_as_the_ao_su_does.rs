//! SPEC §10.4: the legacy SU API on a node over sled. ANS-104 items posted
//! to `/` register and schedule; the schedule pages by timestamp (exclusive
//! `from`) and by nonce; a reader that pages as the ao CU does, checking
//! the CU's hash chain, finds every message exactly once; bad items are
//! 400 `{"error"}` and change nothing.

mod http_support;

use hb_message::hb_ans104::sign::{sign_ed25519, Unsigned};
use hb_message::hb_ans104::{DataItem, Tag};
use hb_message::{decode_base64_any, Id};
use http_support::{get, start_sled, Endpoint};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

const WALLET: [u8; 32] = [9; 32];

async fn post_raw(node: &impl Endpoint, body: Vec<u8>, content_type: &str) -> (u16, Json) {
    let mut res = awc::Client::new()
        .post(format!("{}/", node.base_url()))
        .insert_header(("content-type", content_type))
        .send_body(body)
        .await
        .expect("the node answers");
    let status = res.status().as_u16();
    let bytes = res.body().await.expect("a body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Json::Null))
}

fn process_item(scheduler: &str, nonce: &str) -> DataItem {
    let tags = vec![
        Tag::new("Name", nonce),
        Tag::new("Data-Protocol", "ao"),
        Tag::new("Variant", "ao.TN.1"),
        Tag::new("Type", "Process"),
        Tag::new("Module", "mod-1"),
        Tag::new("Scheduler", scheduler),
    ];
    sign_ed25519(
        WALLET,
        Unsigned {
            tags,
            data: b"code".to_vec(),
            ..Unsigned::default()
        },
    )
    .expect("signs")
}

fn message_item(pid: &Id, n: u32) -> DataItem {
    let tags = vec![
        Tag::new("Data-Protocol", "ao"),
        Tag::new("Variant", "ao.TN.1"),
        Tag::new("Type", "Message"),
        Tag::new("Action", "Ping"),
        Tag::new("N", n.to_string()),
    ];
    sign_ed25519(
        WALLET,
        Unsigned {
            target: Some(pid.0),
            tags,
            data: format!("m{n}").into_bytes(),
            ..Unsigned::default()
        },
    )
    .expect("signs")
}

fn raw(text: &str) -> Vec<u8> {
    decode_base64_any(text).expect("base64url")
}

fn tag_value<'a>(tags: &'a Json, name: &str) -> Option<&'a str> {
    tags.as_array()?
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| t["value"].as_str())
}

#[actix_rt::test]
async fn items_register_schedule_and_page_as_the_su_does() {
    let node = start_sled();
    let address = node.scheduler_address();

    let root = get(&node, "/").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.json["address"], address);
    assert!(root.json["timestamp"]
        .as_str()
        .is_some_and(|t| t.parse::<i64>().is_ok()));

    let process = process_item(&address, "p1");
    let pid = Id(process.id_bytes());
    let (status, answer) = post_raw(&node, process.serialize(), "application/octet-stream").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], pid.to_human());
    assert!(answer["timestamp"].is_i64());

    let messages: Vec<DataItem> = (1..=5).map(|n| message_item(&pid, n)).collect();
    for m in &messages {
        let (status, answer) = post_raw(&node, m.serialize(), "application/octet-stream").await;
        assert_eq!(
            (status, answer["id"].as_str()),
            (200, Some(m.id().as_str())),
            "{answer}"
        );
    }

    // Read as the ao CU does: pages of 2 from an exclusive `from`, checking
    // its hash chain; every message exactly once, the process first.
    let mut seen = Vec::new();
    let mut from: Option<String> = None;
    let mut previous: Option<(Vec<u8>, Vec<u8>)> = None; // (assignment ID, Hash-Chain)
    let mut last_timestamp = i64::MIN;
    loop {
        let path = match &from {
            None => format!("/{pid}?limit=2"),
            Some(f) => format!("/{pid}?limit=2&from={f}"),
        };
        let page = get(&node, &path).await;
        assert_eq!(page.status, 200, "{}", page.json);
        for edge in page.json["edges"].as_array().expect("edges") {
            let a = &edge["node"]["assignment"];
            let nonce: u64 = tag_value(&a["tags"], "Nonce")
                .expect("Nonce")
                .parse()
                .unwrap();
            assert_eq!(nonce as usize, seen.len(), "nonces follow without gaps");
            let ts: i64 = tag_value(&a["tags"], "Timestamp").unwrap().parse().unwrap();
            assert!(ts > last_timestamp, "timestamps strictly increase");
            assert_eq!(edge["cursor"], ts.to_string());
            last_timestamp = ts;
            let chain = raw(tag_value(&a["tags"], "Hash-Chain").expect("Hash-Chain"));
            let expected: Vec<u8> = match &previous {
                None => Sha256::digest(pid.0).to_vec(),
                Some((id, link)) => {
                    Sha256::digest([id.as_slice(), link.as_slice()].concat()).to_vec()
                }
            };
            assert_eq!(chain, expected, "nonce {nonce} links by the CU's rule");
            previous = Some((raw(a["id"].as_str().unwrap()), chain));
            seen.push(edge["node"]["message"]["id"].as_str().unwrap().to_string());
            from = Some(edge["cursor"].as_str().unwrap().to_string());
        }
        if !page.json["page_info"]["has_next_page"].as_bool().unwrap() {
            break;
        }
    }
    let mut expected = vec![pid.to_human()];
    expected.extend(messages.iter().map(|m| m.id()));
    assert_eq!(seen, expected);

    // The message shape is the item, exactly.
    let page = get(&node, &format!("/{pid}?from-nonce=1&to-nonce=1")).await;
    let edges = page.json["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    let m = &edges[0]["node"]["message"];
    assert_eq!(m["data"], "m1");
    assert_eq!(m["target"], pid.to_human());
    assert_eq!(m["owner"]["address"], messages[0].owner_address());
    assert_eq!(tag_value(&m["tags"], "N"), Some("1"));
    assert_eq!(edges[0]["cursor"], "1");
    // Nonce mode from -1 includes the process.
    let page = get(&node, &format!("/{pid}?from-nonce=-1&to-nonce=0")).await;
    assert_eq!(
        page.json["edges"][0]["node"]["message"]["id"],
        pid.to_human()
    );

    // One message, by its ID or its assignment's.
    let one = get(&node, &format!("/{}?process-id={pid}", messages[2].id())).await;
    assert_eq!(one.status, 200, "{}", one.json);
    assert_eq!(one.json["message"]["id"], messages[2].id());
    let assignment_id = one.json["assignment"]["id"].as_str().unwrap().to_string();
    let by_assignment = get(&node, &format!("/{assignment_id}?process-id={pid}")).await;
    assert_eq!(by_assignment.json["message"]["id"], messages[2].id());

    let latest = get(&node, &format!("/{pid}/latest")).await;
    assert_eq!(
        tag_value(&latest.json["assignment"]["tags"], "Nonce"),
        Some("5")
    );

    let p = get(&node, &format!("/processes/{pid}")).await;
    assert_eq!(p.status, 200, "{}", p.json);
    assert_eq!(p.json["process_id"], pid.to_human());
    assert_eq!(p.json["block"].as_str().map(str::len), Some(12));
    assert_eq!(p.json["data"], "code");
    assert_eq!(tag_value(&p.json["tags"], "Module"), Some("mod-1"));
    assert!(p.json["timestamp"].is_i64());

    let t = get(&node, "/timestamp").await;
    assert_eq!(t.json["block_height"].as_str().map(str::len), Some(12));
    assert_eq!(get(&node, "/health").await.status, 200);
}

#[actix_rt::test]
async fn bad_items_are_400_errors_and_change_nothing() {
    let node = start_sled();
    let address = node.scheduler_address();
    let process = process_item(&address, "p2");
    let pid = Id(process.id_bytes());
    assert_eq!(post_raw(&node, process.serialize(), "").await.0, 200);
    let first = message_item(&pid, 1);
    assert_eq!(
        post_raw(&node, first.serialize(), "application/octet-stream")
            .await
            .0,
        200
    );

    let mut tampered = message_item(&pid, 2).serialize();
    let last = tampered.len() - 1;
    tampered[last] ^= 1; // the data is signed
    let elsewhere = process_item(&Id::hash(b"other").to_human(), "p3");
    let untyped = sign_ed25519(
        WALLET,
        Unsigned {
            target: Some(pid.0),
            ..Unsigned::default()
        },
    )
    .unwrap();
    let linked = sign_ed25519(
        WALLET,
        Unsigned {
            target: Some(pid.0),
            tags: vec![Tag::new("Type", "Message"), Tag::new("X+link", "y")],
            ..Unsigned::default()
        },
    )
    .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        (
            "a re-posted message",
            first.serialize(),
            "application/octet-stream",
            400,
        ),
        (
            "a re-posted process",
            process.serialize(),
            "application/octet-stream",
            400,
        ),
        ("a tampered item", tampered, "application/octet-stream", 400),
        (
            "not an item",
            b"hello".to_vec(),
            "application/octet-stream",
            400,
        ),
        (
            "another scheduler's process",
            elsewhere.serialize(),
            "",
            400,
        ),
        ("an item without Type", untyped.serialize(), "", 400),
        ("a +link tag", linked.serialize(), "", 400),
        ("a JSON body", b"{}".to_vec(), "application/json", 400),
        (
            "an unknown process",
            message_item(&Id::hash(b"nobody"), 1).serialize(),
            "",
            404,
        ),
    ];
    for (what, body, content_type, status) in cases {
        let (got, answer) = post_raw(&node, body, content_type).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {answer}"
        );
    }
    let page = get(&node, &format!("/{pid}")).await;
    assert_eq!(
        page.json["edges"].as_array().map(Vec::len),
        Some(2),
        "{}",
        page.json
    );
    assert_eq!(
        get(&node, &format!("/{}/latest", Id::hash(b"nobody")))
            .await
            .status,
        404
    );
    assert_eq!(get(&node, &format!("/{pid}?limit=0")).await.status, 400);
}
