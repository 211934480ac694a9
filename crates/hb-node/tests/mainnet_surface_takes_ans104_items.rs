//! The mainnet surface (SPEC §10.5) of a node on sled, driven with signed
//! ANS-104 items as aoconnect's `mainnet` mode sends them
//! (tests/aoconnect/EXCHANGES.md): a process spawned through `POST /push`,
//! messages through `POST /<pid>~process@1.0/push`, results by slot and by
//! message ID, the current slot, dry-runs that change nothing, tampered
//! and malformed items refused with nothing scheduled, and a WASM process
//! that registers and schedules but answers 501 when computed. Items are
//! signed with ed25519 (type 2) and RSA-4096 (type 1).

mod http_support;

use hb_ans104::sign::{sign_ed25519, sign_rsa, Unsigned};
use hb_ans104::{DataItem, Tag};
use hb_message::Id;
use http_support::{Answer, TestNode};
use serde_json::Value as Json;

const COUNTER: &str = include_str!("../../../tests/aoconnect/counter.lua");

/// Who signs the items.
enum Signer {
    Ed25519([u8; 32]),
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl Signer {
    fn rsa() -> Signer {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 4096).expect("an RSA key");
        Signer::Rsa(Box::new(key))
    }

    fn sign(&self, u: Unsigned) -> DataItem {
        match self {
            Signer::Ed25519(secret) => sign_ed25519(*secret, u).expect("signs"),
            Signer::Rsa(key) => sign_rsa(key, 32, &mut rand::rngs::OsRng, u).expect("signs"),
        }
    }

    fn address(&self) -> String {
        self.sign(Unsigned::default()).owner_address()
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs.iter().map(|(n, v)| Tag::new(*n, *v)).collect()
}

/// A spawn item as aoconnect builds it, naming `execution_device` and this
/// node as scheduler, the counter script as data.
fn spawn_item(signer: &Signer, node: &TestNode, execution_device: &str) -> DataItem {
    let address = node.scheduler().address().to_string();
    signer.sign(Unsigned {
        tags: tags(&[
            ("device", "process@1.0"),
            ("scheduler-device", "scheduler@1.0"),
            ("push-device", "push@1.0"),
            ("execution-device", execution_device),
            ("Authority", &address),
            ("Scheduler", &address),
            ("Module", "not-a-wasm-module-000000000000000000000000"),
            ("signing-format", "ans104"),
            ("accept-bundle", "true"),
            ("accept-codec", "httpsig@1.0"),
            ("Data-Protocol", "ao"),
            ("Type", "Process"),
            ("Variant", "ao.N.1"),
        ]),
        data: COUNTER.as_bytes().to_vec(),
        ..Unsigned::default()
    })
}

/// A message item to `pid` with `action`, as aoconnect's `message` builds it.
fn message_item(signer: &Signer, pid: Id, action: &str, data: &str) -> DataItem {
    signer.sign(Unsigned {
        target: Some(pid.0),
        tags: tags(&[
            ("Action", action),
            ("signing-format", "ans104"),
            ("accept-bundle", "true"),
            ("require-codec", "application/json"),
            ("Data-Protocol", "ao"),
            ("Type", "Message"),
            ("Variant", "ao.N.1"),
        ]),
        data: data.as_bytes().to_vec(),
        ..Unsigned::default()
    })
}

/// The item a read (`result`, `dryrun`, `results`) carries.
fn read_item(signer: &Signer, pid: Option<Id>) -> DataItem {
    signer.sign(Unsigned {
        target: pid.map(|p| p.0),
        tags: tags(&[
            ("signing-format", "ans104"),
            ("accept-bundle", "true"),
            ("require-codec", "application/json"),
            ("Data-Protocol", "ao"),
            ("Type", "Message"),
            ("Variant", "ao.N.1"),
        ]),
        data: b"1984".to_vec(),
        ..Unsigned::default()
    })
}

/// POSTs raw item bytes as aoconnect does (both headers).
async fn post_item(node: &TestNode, path: &str, body: Vec<u8>) -> (Answer, String) {
    let mut res = awc::Client::new()
        .post(format!("{}{path}", node.url()))
        .insert_header(("content-type", "application/ans104"))
        .insert_header(("codec-device", "ans104@1.0"))
        .send_body(body)
        .await
        .expect("the node answers");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.body().limit(16 << 20).await.expect("a body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Json::Null);
    (
        Answer {
            status,
            json,
            headers,
        },
        text,
    )
}

async fn spawn(node: &TestNode, signer: &Signer, execution_device: &str) -> Id {
    let item = spawn_item(signer, node, execution_device);
    let (a, _) = post_item(node, "/push", item.serialize()).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.header("process"), Some(item.id().as_str()), "{}", a.json);
    assert_eq!(a.json["slot"].as_i64(), Some(0), "{}", a.json);
    Id::parse(&item.id()).expect("an ID")
}

async fn send(node: &TestNode, signer: &Signer, pid: Id, action: &str) -> (Answer, DataItem) {
    let item = message_item(signer, pid, action, "x");
    let (a, _) = post_item(node, &format!("/{pid}~process@1.0/push"), item.serialize()).await;
    (a, item)
}

async fn current(node: &TestNode, pid: Id) -> Option<i64> {
    http_support::current(node, &pid.to_human()).await
}

async fn spawns_messages_and_reads_results(signer: Signer) {
    let node = http_support::start_sled();
    let sender = signer.address();
    let pid = spawn(&node, &signer, "lua@5.3a").await;

    for slot in 1..=2 {
        let (a, item) = send(&node, &signer, pid, "Inc").await;
        assert_eq!(a.status, 200, "{}", a.json);
        assert_eq!(a.json["slot"].as_i64(), Some(slot), "{}", a.json);
        assert_eq!(a.json["process"].as_str(), Some(pid.to_human().as_str()));
        assert_eq!(a.json["id"].as_str(), Some(item.id().as_str()));
        // The reply goes to the sender, an address with no schedule here.
        assert_eq!(
            a.json["pushed"][0]["reason"].as_str(),
            Some("remote-target"),
            "{}",
            a.json
        );
    }
    let (_, first) = send(&node, &signer, pid, "Get").await;

    // By slot, through both path forms.
    for path in [
        format!("/{pid}~process@1.0/compute/results=2"),
        format!("/{pid}/compute/results=2"),
    ] {
        let (a, _) = post_item(&node, &path, read_item(&signer, Some(pid)).serialize()).await;
        assert_eq!(a.status, 200, "{path}: {}", a.json);
        for shape in [&a.json, &a.json["raw"]] {
            assert_eq!(shape["Output"].as_str(), Some("count=2\n"), "{}", a.json);
            let sent = &shape["Messages"][0];
            assert_eq!(sent["Target"].as_str(), Some(sender.as_str()));
            assert_eq!(sent["Data"].as_str(), Some("2"));
            assert_eq!(sent["Tags"][0]["name"].as_str(), Some("Action"));
            assert_eq!(sent["Tags"][0]["value"].as_str(), Some("Count"));
            assert_eq!(shape["Spawns"], serde_json::json!([]));
            assert_eq!(shape["Assignments"], serde_json::json!([]));
        }
    }
    // By message ID: the Get at slot 3.
    let (a, _) = post_item(
        &node,
        &format!("/{pid}~process@1.0/compute/results={}", first.id()),
        read_item(&signer, Some(pid)).serialize(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["raw"]["Output"].as_str(), Some("count=2\n"));
    assert_eq!(a.json["raw"]["Messages"], serde_json::json!([]));

    // The current slot as text.
    let (a, text) = post_item(
        &node,
        &format!("/{pid}/slot/current"),
        read_item(&signer, None).serialize(),
    )
    .await;
    assert_eq!((a.status, text.as_str()), (200, "3"));

    // The reads scheduled nothing.
    assert_eq!(current(&node, pid).await, Some(3));
    node.shutdown().await;
}

#[actix_rt::test]
async fn ed25519_items_spawn_message_and_read_results() {
    spawns_messages_and_reads_results(Signer::Ed25519([7; 32])).await;
}

#[actix_rt::test]
async fn rsa_items_spawn_message_and_read_results() {
    spawns_messages_and_reads_results(Signer::rsa()).await;
}

#[actix_rt::test]
async fn a_dry_run_answers_from_the_path_fields_and_changes_nothing() {
    let node = http_support::start_sled();
    let signer = Signer::Ed25519([8; 32]);
    let pid = spawn(&node, &signer, "lua@5.3a").await;
    let (a, _) = send(&node, &signer, pid, "Inc").await;
    assert_eq!(a.status, 200, "{}", a.json);
    let state_before =
        http_support::get(&*node, &format!("/{pid}~process@1.0/compute?slot=1")).await;

    let dry = |action: &str| format!("/{pid}~process@1.0/as=execution/compute&Action={action}");
    let (a, _) = post_item(
        &node,
        &dry("Inc"),
        read_item(&signer, Some(pid)).serialize(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["raw"]["Output"].as_str(), Some("count=2\n"));
    // `msg.From` is the signer of the request's item.
    assert_eq!(
        a.json["raw"]["Messages"][0]["Target"].as_str(),
        Some(signer.address().as_str()),
        "{}",
        a.json
    );
    let (a, _) = post_item(
        &node,
        &dry("Get"),
        read_item(&signer, Some(pid)).serialize(),
    )
    .await;
    assert_eq!(
        a.json["raw"]["Output"].as_str(),
        Some("count=1\n"),
        "{}",
        a.json
    );

    // Nothing scheduled, the state at slot 1 the same.
    assert_eq!(current(&node, pid).await, Some(1));
    let state_after =
        http_support::get(&*node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
    assert_eq!(state_after.json, state_before.json);
    node.shutdown().await;
}

#[actix_rt::test]
async fn a_tampered_item_is_an_invalid_signature_and_schedules_nothing() {
    let node = http_support::start_sled();
    let signer = Signer::Ed25519([9; 32]);

    let mut spawn_bytes = spawn_item(&signer, &node, "lua@5.3a").serialize();
    let last = spawn_bytes.len() - 1;
    spawn_bytes[last] ^= 1;
    let (a, _) = post_item(&node, "/push", spawn_bytes).await;
    a.assert_error(400, "invalid-signature");
    assert!(
        node.scheduler()
            .processes()
            .await
            .expect("lists")
            .is_empty(),
        "no process registered"
    );

    let pid = spawn(&node, &signer, "lua@5.3a").await;
    let mut bytes = message_item(&signer, pid, "Inc", "tampered").serialize();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let (a, _) = post_item(&node, &format!("/{pid}~process@1.0/push"), bytes).await;
    a.assert_error(400, "invalid-signature");
    assert_eq!(current(&node, pid).await, Some(0));
    node.shutdown().await;
}

#[actix_rt::test]
async fn malformed_bodies_and_unknown_routes_are_refused_with_codes() {
    let node = http_support::start();
    let signer = Signer::Ed25519([10; 32]);
    let pid = spawn(&node, &signer, "lua@5.3a").await;
    let push = format!("/{pid}~process@1.0/push");

    let (a, _) = post_item(&node, &push, Vec::new()).await;
    a.assert_error(400, "malformed-body");
    let (a, _) = post_item(&node, &push, vec![2, 0, 1, 2, 3]).await;
    a.assert_error(400, "malformed-body");
    let mut trailing = message_item(&signer, pid, "Inc", "x").serialize();
    trailing.push(0);
    // The data runs to the end of the body: a byte more is unsigned data.
    let (a, _) = post_item(&node, &push, trailing).await;
    a.assert_error(400, "invalid-signature");
    let (a, _) = post_item(
        &node,
        &format!("/{pid}~process@1.0/elsewhere"),
        read_item(&signer, Some(pid)).serialize(),
    )
    .await;
    a.assert_error(404, "not-found");
    let (a, _) = post_item(
        &node,
        &format!("/{pid}/compute/results=nope"),
        read_item(&signer, Some(pid)).serialize(),
    )
    .await;
    a.assert_error(400, "invalid-slot");
    // A message ID that is not in the schedule.
    let (a, _) = post_item(
        &node,
        &format!("/{pid}/compute/results={}", Id::hash(b"never sent")),
        read_item(&signer, Some(pid)).serialize(),
    )
    .await;
    a.assert_error(404, "not-found");
    // A process item posted as a message, a message posted as a spawn.
    let (a, _) = post_item(&node, &push, spawn_item(&signer, &node, "x@1").serialize()).await;
    a.assert_error(400, "invalid-value");
    let (a, _) = post_item(
        &node,
        "/push",
        message_item(&signer, pid, "Inc", "x").serialize(),
    )
    .await;
    a.assert_error(400, "invalid-value");
    assert_eq!(current(&node, pid).await, Some(0));
    node.shutdown().await;
}

#[actix_rt::test]
async fn a_spawn_naming_another_scheduler_is_refused() {
    let node = http_support::start();
    let signer = Signer::Ed25519([11; 32]);
    let item = signer.sign(Unsigned {
        tags: tags(&[
            ("device", "process@1.0"),
            ("execution-device", "lua@5.3a"),
            ("Scheduler", "some-other-node-0000000000000000000000000000"),
            ("Type", "Process"),
        ]),
        data: COUNTER.as_bytes().to_vec(),
        ..Unsigned::default()
    });
    let (a, _) = post_item(&node, "/push", item.serialize()).await;
    a.assert_error(400, "invalid-value");
    assert!(node
        .scheduler()
        .processes()
        .await
        .expect("lists")
        .is_empty());
    node.shutdown().await;
}

#[actix_rt::test]
async fn a_wasm_process_is_scheduled_but_computing_it_answers_501() {
    let node = http_support::start_sled();
    let signer = Signer::Ed25519([12; 32]);
    let pid = spawn(&node, &signer, "genesis-wasm@1.0").await;
    let (a, _) = send(&node, &signer, pid, "Inc").await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["slot"].as_i64(), Some(1));
    assert_eq!(
        a.json["push-error"]["error"].as_str(),
        Some("unsupported-execution-device"),
        "{}",
        a.json
    );

    let (a, _) = post_item(
        &node,
        &format!("/{pid}~process@1.0/compute/results=1"),
        read_item(&signer, Some(pid)).serialize(),
    )
    .await;
    a.assert_error(501, "unsupported-execution-device");
    assert!(
        a.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("genesis-wasm@1.0")),
        "{}",
        a.json
    );
    let (a, _) = post_item(
        &node,
        &format!("/{pid}~process@1.0/as=execution/compute&Action=Get"),
        read_item(&signer, Some(pid)).serialize(),
    )
    .await;
    a.assert_error(501, "unsupported-execution-device");
    // hb's own route says the same, and nothing was computed.
    let a = http_support::get(&*node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
    a.assert_error(501, "unsupported-execution-device");
    let status = http_support::get(&*node, &format!("/{pid}~process@1.0/status")).await;
    assert_eq!(
        status.json["computed-slot"].as_i64(),
        Some(-1),
        "{}",
        status.json
    );
    assert_eq!(
        status.json["worker"].as_str(),
        Some("stopped"),
        "{}",
        status.json
    );
    assert_eq!(current(&node, pid).await, Some(1));
    node.shutdown().await;
}

#[actix_rt::test]
async fn hbs_json_routes_still_answer_on_a_mainnet_process() {
    let node = http_support::start();
    let signer = Signer::Ed25519([13; 32]);
    let pid = spawn(&node, &signer, "lua@5.3a").await;
    let (a, _) = send(&node, &signer, pid, "Inc").await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a = http_support::get(
        &*node,
        &format!("/{pid}~process@1.0/compute/state/count?slot=1"),
    )
    .await;
    assert_eq!((a.status, a.json.as_i64()), (200, Some(1)), "{}", a.json);
    let a = http_support::get(&*node, &format!("/{pid}~process@1.0/slot/current")).await;
    assert_eq!(a.status, 200, "{}", a.json);
    node.shutdown().await;
}
