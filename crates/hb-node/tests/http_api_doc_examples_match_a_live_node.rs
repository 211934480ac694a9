//! Every example in `docs/http-api.md` is replayed, in order, against a
//! live node (a real HTTP server on 127.0.0.1, port 0) and its answer
//! compared with the one the doc shows: the status, every header the doc
//! lists, and the JSON or plain-text body exactly (for `/metrics`, every
//! `# HELP` and `# TYPE` line the doc shows).
//!
//! The node is made reproducible: node key seeded with `[1; 32]`, client
//! key `[2; 32]`, an in-memory store and a manual clock, so signatures,
//! IDs, timestamps and states are the same on every run.
//!
//! An example in the doc is a marker, a request block and a response block:
//!
//! ````text
//! <!-- example: name -->
//! ```http
//! GET /path
//! header: value
//!
//! optional body
//! ```
//! ```http
//! HTTP/1.1 200 OK
//! header: value
//!
//! body
//! ```
//! ````
//!
//! A request with `content-type: application/octet-stream` (the legacy
//! SU API's `POST /` of a raw ANS-104 item) shows its body in base64url,
//! wrapped at 76 characters; the test sends the decoded bytes. The legacy
//! items are ed25519-signed (seed `[3; 32]`), so their IDs and the
//! node-signed assignments are the same on every run too.
//!
//! `HB_UPDATE_DOCS=1 cargo test -p hb-node --test
//! http_api_doc_examples_match_a_live_node` rewrites the blocks after each
//! marker from the requests built in [`examples`] (signing the bodies) and
//! the node's real answers; without it the test only reads and compares.

use std::sync::Arc;

use hb_message::hb_ans104::sign::{sign_ed25519, Unsigned};
use hb_message::hb_ans104::{DataItem, Tag};
use hb_message::json::to_json;
use hb_message::{decode_base64_any, encode_base64url, Id, Message, NodeKey};
use hb_node::{Node, NodeBuilder, NodeConfig};
use hb_process::ProcessConfig;
use hb_scheduler::ManualClock;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/http-api.md");
const COUNTER: &str = include_str!("../../../examples/lua/counter.lua");
/// 2026-12-01T00:00:00Z.
const CLOCK_MS: i64 = 1_795_996_800_000;
/// The ed25519 seed of the legacy examples' ao wallet.
const LEGACY_WALLET: [u8; 32] = [3; 32];
/// The media type of a raw ANS-104 body, shown in base64url in the doc.
const RAW: &str = "application/octet-stream";
/// Response headers an example shows when the node sends them.
const SHOWN_HEADERS: [&str; 6] = [
    "content-type",
    "x-ao-slot",
    "x-ao-computed-at",
    "cache-control",
    "retry-after",
    "location",
];

/// One HTTP request of an example.
#[derive(Clone, Debug, PartialEq)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// One HTTP response as the doc shows it.
#[derive(Clone, Debug, PartialEq)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn node_key() -> NodeKey {
    NodeKey::from_seed(&[1; 32])
}

fn client_key() -> NodeKey {
    NodeKey::from_seed(&[2; 32])
}

async fn start() -> Node {
    NodeBuilder::new(Arc::new(hb_store::MemoryStore::new()), node_key())
        .config(NodeConfig {
            port: 0,
            ..NodeConfig::default()
        })
        .process_config(ProcessConfig {
            arbiters: 1,
            ..ProcessConfig::default()
        })
        .clock(Arc::new(ManualClock::new(CLOCK_MS)))
        .start()
        .expect("the node starts")
}

fn json_request(method: &str, path: &str, body: &Message) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_string_pretty(&to_json(body)).expect("JSON prints"),
    }
}

fn get(path: &str) -> Request {
    Request {
        method: "GET".into(),
        path: path.into(),
        headers: Vec::new(),
        body: String::new(),
    }
}

/// `POST /` of a raw item, its bytes shown in base64url lines of 76.
fn raw_post(item: &DataItem) -> Request {
    let text = encode_base64url(&item.serialize());
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("base64url is ASCII"))
        .collect();
    Request {
        method: "POST".into(),
        path: "/".into(),
        headers: vec![("content-type".into(), RAW.into())],
        body: lines.join("\n"),
    }
}

/// The body a request sends: a raw item's decoded bytes, else its text.
fn body_bytes(req: &Request) -> anyhow::Result<Vec<u8>> {
    let raw = req
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == RAW);
    if raw {
        let joined: String = req.body.split_whitespace().collect();
        Ok(decode_base64_any(&joined)?)
    } else {
        Ok(req.body.clone().into_bytes())
    }
}

/// The legacy examples' ao.TN.1 process item, as aoconnect's legacy mode
/// would sign it, naming `scheduler`.
fn legacy_process(scheduler: &str) -> anyhow::Result<DataItem> {
    Ok(sign_ed25519(
        LEGACY_WALLET,
        Unsigned {
            tags: vec![
                Tag::new("Data-Protocol", "ao"),
                Tag::new("Variant", "ao.TN.1"),
                Tag::new("Type", "Process"),
                Tag::new("Module", Id::hash(b"module").to_human()),
                Tag::new("Scheduler", scheduler),
            ],
            data: b"-- the process's code".to_vec(),
            ..Unsigned::default()
        },
    )?)
}

/// The legacy examples' message `n` to `pid`.
fn legacy_message(pid: &Id, n: u32) -> anyhow::Result<DataItem> {
    Ok(sign_ed25519(
        LEGACY_WALLET,
        Unsigned {
            target: Some(pid.0),
            tags: vec![
                Tag::new("Data-Protocol", "ao"),
                Tag::new("Variant", "ao.TN.1"),
                Tag::new("Type", "Message"),
                Tag::new("Action", "Ping"),
            ],
            data: format!("ping {n}").into_bytes(),
            ..Unsigned::default()
        },
    )?)
}

/// The requests of the doc's examples, by marker name, in doc order.
fn examples() -> anyhow::Result<Vec<(&'static str, Request)>> {
    let node = node_key().address().to_string();
    let client = client_key();
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", node.as_str())?
        .with("execution-device", "lua@5.3a")?
        .with("script", COUNTER)?
        .commit(&client, None)?;
    let pid = def.id_all()?.to_human();
    let inc = |n: i64| -> anyhow::Result<Message> {
        Ok(Message::new()
            .with("target", pid.as_str())?
            .with("action", "Inc")?
            .with("n", n)?
            .commit(&client, None)?)
    };
    let p = |rest: &str| format!("/{pid}~process@1.0/{rest}");
    let legacy = legacy_process(&node)?;
    let lpid = Id(legacy.id_bytes());
    let ping1 = legacy_message(&lpid, 1)?;
    let ping2 = legacy_message(&lpid, 2)?;
    // Assignments are stamped by the fixed clock, one ms apart per process.
    let (t0, t1) = (CLOCK_MS, CLOCK_MS + 1);
    let mut all = vec![
        ("healthz", get("/healthz")),
        ("meta-info", get("/~meta@1.0/info")),
        ("meta-info-key", get("/~meta@1.0/info/address")),
        (
            "meta-info-post",
            json_request("POST", "/~meta@1.0/info", &Message::new()),
        ),
        (
            "register",
            json_request("POST", "/~scheduler@1.0/schedule", &def),
        ),
        (
            "schedule",
            json_request("POST", "/~scheduler@1.0/schedule", &inc(1)?),
        ),
        (
            "schedule-process-path",
            json_request("POST", &p("schedule"), &inc(2)?),
        ),
        ("slot", get(&format!("/~scheduler@1.0/slot?target={pid}"))),
        ("slot-process-path", get(&p("slot/current"))),
        (
            "read-schedule",
            get(&format!(
                "/~scheduler@1.0/schedule?target={pid}&from=2&to=2"
            )),
        ),
        (
            "read-schedule-aos2",
            Request {
                headers: vec![("accept".into(), "application/aos-2".into())],
                ..get(&format!(
                    "/~scheduler@1.0/schedule?target={pid}&from=1&to=1"
                ))
            },
        ),
        (
            "read-schedule-navigate",
            get(&p("schedule/assignments/2/body/action")),
        ),
        ("scheduler-status", get("/~scheduler@1.0/status")),
        (
            "location-missing",
            get(&format!(
                "/~scheduler@1.0/location?address={}",
                client.address()
            )),
        ),
        (
            "location-register",
            json_request(
                "POST",
                "/~scheduler@1.0/location",
                &Message::new()
                    .with("url", "http://127.0.0.1:8734")?
                    .commit(&node_key(), None)?,
            ),
        ),
        (
            "location",
            get(&format!("/~scheduler@1.0/location?address={node}")),
        ),
        ("compute", get(&p("compute?slot=2"))),
        ("compute-sub-path", get(&p("compute/state/count?slot=2"))),
        ("now", get(&p("now"))),
        ("now-sub-path", get(&p("now/state/count"))),
        ("stored-device-path", get(&format!("/{pid}/slot/current"))),
        (
            "inline-fields",
            get(&format!("/~scheduler@1.0/slot&target={pid}")),
        ),
        (
            "dry-run",
            json_request(
                "POST",
                &p("dry-run"),
                &Message::new().with("action", "Get")?,
            ),
        ),
        ("process-status", get(&p("status"))),
        (
            "push",
            json_request("POST", &p("push?slot=2"), &Message::new()),
        ),
        ("metrics", get("/metrics")),
        (
            "error-malformed-body",
            Request {
                body: "{\"target\"".into(),
                ..json_request("POST", "/~scheduler@1.0/schedule", &Message::new())
            },
        ),
        (
            "error-media-type",
            Request {
                headers: vec![("content-type".into(), "text/plain".into())],
                body: "Inc".into(),
                ..get("/~scheduler@1.0/schedule")
            }
            .with_method("POST"),
        ),
        (
            "error-unknown-process",
            get(&format!("/{}~process@1.0/now", client.address())),
        ),
    ];
    all.extend([
        ("legacy-root", get("/")),
        ("legacy-register", raw_post(&legacy)),
        ("legacy-schedule", raw_post(&ping1)),
        ("legacy-schedule-2", raw_post(&ping2)),
        ("legacy-page", get(&format!("/{lpid}?limit=2"))),
        (
            "legacy-page-from",
            get(&format!("/{lpid}?from={t1}&limit=2")),
        ),
        ("legacy-page-to", get(&format!("/{lpid}?from={t0}&to={t1}"))),
        (
            "legacy-page-nonce",
            get(&format!("/{lpid}?from-nonce=2&to-nonce=2")),
        ),
        (
            "legacy-message",
            get(&format!("/{}?process-id={lpid}", ping1.id())),
        ),
        ("legacy-latest", get(&format!("/{lpid}/latest"))),
        ("legacy-process", get(&format!("/processes/{lpid}"))),
        ("legacy-timestamp", get("/timestamp")),
        ("legacy-health", get("/health")),
        ("legacy-error-reposted", raw_post(&ping1)),
        ("legacy-error-limit", get(&format!("/{lpid}?limit=0"))),
        (
            "legacy-error-unknown-process",
            get(&format!("/processes/{}", Id::hash(b"nobody"))),
        ),
    ]);
    Ok(all)
}

impl Request {
    fn with_method(self, method: &str) -> Request {
        Request {
            method: method.into(),
            ..self
        }
    }

    fn render(&self) -> String {
        let mut out = format!("{} {}\n", self.method, self.path);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
        if !self.body.is_empty() {
            out.push('\n');
            out.push_str(&self.body);
            out.push('\n');
        }
        out
    }
}

impl Response {
    fn render(&self) -> String {
        let reason = awc::http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut out = format!("HTTP/1.1 {} {reason}\n", self.status);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
        if !self.body.is_empty() {
            out.push('\n');
            out.push_str(&self.body);
            out.push('\n');
        }
        out
    }
}

/// A block's first line, its header lines and its body.
type Block = (String, Vec<(String, String)>, String);

/// Splits a block into its first line, its header lines and its body.
fn split_block(block: &str) -> anyhow::Result<Block> {
    let (head, body) = block.split_once("\n\n").unwrap_or((block, ""));
    let mut lines = head.lines();
    let first = lines
        .next()
        .ok_or_else(|| anyhow::anyhow!("an empty block"))?
        .to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(": ")
            .ok_or_else(|| anyhow::anyhow!("not a header line: {line:?}"))?;
        headers.push((k.to_ascii_lowercase(), v.to_string()));
    }
    Ok((first, headers, body.trim_end().to_string()))
}

/// The doc's examples: (name, request, response), in order.
fn parse_doc(doc: &str) -> anyhow::Result<Vec<(String, Request, Response)>> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(at) = rest.find("<!-- example: ") {
        rest = &rest[at + "<!-- example: ".len()..];
        let (name, after) = rest
            .split_once(" -->")
            .ok_or_else(|| anyhow::anyhow!("an unclosed example marker"))?;
        let mut blocks = Vec::new();
        let mut cursor = after;
        for _ in 0..2 {
            let open = cursor
                .find("```http\n")
                .ok_or_else(|| anyhow::anyhow!("example {name}: two http blocks expected"))?;
            let inner = &cursor[open + "```http\n".len()..];
            let close = inner
                .find("\n```")
                .ok_or_else(|| anyhow::anyhow!("example {name}: an unclosed block"))?;
            blocks.push(inner[..close].to_string());
            cursor = &inner[close + 4..];
        }
        let (line, headers, body) = split_block(&blocks[0])?;
        let (method, path) = line
            .split_once(' ')
            .ok_or_else(|| anyhow::anyhow!("example {name}: {line:?} is not `METHOD /path`"))?;
        let request = Request {
            method: method.into(),
            path: path.into(),
            headers,
            body,
        };
        let (line, headers, body) = split_block(&blocks[1])?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("example {name}: {line:?} has no status"))?;
        out.push((
            name.to_string(),
            request,
            Response {
                status,
                headers,
                body,
            },
        ));
        rest = cursor;
    }
    Ok(out)
}

/// Sends a request and returns the answer with the headers a doc shows.
async fn send(node: &Node, req: &Request) -> anyhow::Result<Response> {
    let method = awc::http::Method::from_bytes(req.method.as_bytes())?;
    let mut builder = awc::Client::new().request(method, format!("{}{}", node.url(), req.path));
    for (k, v) in &req.headers {
        builder = builder.insert_header((k.as_str(), v.as_str()));
    }
    let mut res = builder
        .send_body(body_bytes(req)?)
        .await
        .map_err(|e| anyhow::anyhow!("{} {}: {e}", req.method, req.path))?;
    let headers = SHOWN_HEADERS
        .iter()
        .filter_map(|h| {
            res.headers()
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.to_string(), v.to_string()))
        })
        .collect();
    let bytes = res.body().limit(16 << 20).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => serde_json::to_string_pretty(&v)?,
        // Prometheus text: histogram buckets are left out of the doc.
        Err(_) => text
            .lines()
            .filter(|l| !l.contains("_bucket{"))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    Ok(Response {
        status: res.status().as_u16(),
        headers,
        body,
    })
}

/// Whether `got` is the answer `shown` documents.
fn matches(shown: &Response, got: &Response) -> Result<(), String> {
    if shown.status != got.status {
        return Err(format!(
            "status {} where the doc shows {}",
            got.status, shown.status
        ));
    }
    for (k, v) in &shown.headers {
        let actual = got.headers.iter().find(|(h, _)| h == k).map(|(_, v)| v);
        if actual != Some(v) {
            return Err(format!("header {k}: {actual:?} where the doc shows {v:?}"));
        }
    }
    match serde_json::from_str::<serde_json::Value>(&shown.body) {
        Ok(doc_json) => {
            let got_json: serde_json::Value =
                serde_json::from_str(&got.body).map_err(|e| format!("not JSON: {e}"))?;
            if doc_json != got_json {
                return Err(format!("body differs; the node answered:\n{}", got.body));
            }
        }
        // Plain text: exactly the doc's.
        Err(_) if !shown.body.lines().any(|l| l.starts_with('#')) => {
            if shown.body != got.body {
                return Err(format!("body differs; the node answered:\n{}", got.body));
            }
        }
        // Text (Prometheus): every comment line the doc shows is there.
        Err(_) => {
            for line in shown.body.lines().filter(|l| l.starts_with('#')) {
                if !got.body.lines().any(|g| g == line) {
                    return Err(format!("missing line {line:?}"));
                }
            }
        }
    }
    Ok(())
}

/// Rewrites the two blocks after each marker with `rendered`.
fn rewrite(doc: &str, rendered: &[(&str, String, String)]) -> anyhow::Result<String> {
    let mut out = doc.to_string();
    for (name, request, response) in rendered {
        let marker = format!("<!-- example: {name} -->");
        let at = out
            .find(&marker)
            .ok_or_else(|| anyhow::anyhow!("docs/http-api.md has no marker {marker}"))?;
        let start = at + marker.len();
        // The marker's old blocks end at the second closing fence, if any.
        let mut end = start;
        let tail = &out[start..];
        let next_marker = tail.find("<!-- example: ").unwrap_or(tail.len());
        let mut scan = &tail[..next_marker];
        for _ in 0..2 {
            if let Some(open) = scan.find("```http\n") {
                let inner = &scan[open + 8..];
                if let Some(close) = inner.find("\n```") {
                    let consumed = (scan.len() - inner.len()) + close + 4;
                    end += consumed;
                    scan = &scan[consumed..];
                }
            }
        }
        let blocks = format!("\n```http\n{request}```\n```http\n{response}```");
        out.replace_range(start..end, &blocks);
    }
    Ok(out)
}

#[actix_rt::test]
async fn every_example_in_the_http_api_doc_is_what_a_live_node_answers() -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(DOC)?;
    if std::env::var_os("HB_UPDATE_DOCS").is_some() {
        let node = start().await;
        let mut rendered = Vec::new();
        for (name, request) in examples()? {
            let response = send(&node, &request).await?;
            rendered.push((name, request.render(), response.render()));
        }
        node.shutdown().await;
        std::fs::write(DOC, rewrite(&doc, &rendered)?)?;
    }
    let doc = std::fs::read_to_string(DOC)?;
    let examples = parse_doc(&doc)?;
    let names: Vec<&str> = examples.iter().map(|(n, _, _)| n.as_str()).collect();
    for (name, _) in examples_names()? {
        assert!(names.contains(&name), "the doc shows example {name}");
    }
    let node = start().await;
    let mut failures = Vec::new();
    for (name, request, shown) in &examples {
        let got = send(&node, request).await?;
        if let Err(why) = matches(shown, &got) {
            failures.push(format!(
                "example {name} ({} {}): {why}",
                request.method, request.path
            ));
        }
    }
    node.shutdown().await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}

fn examples_names() -> anyhow::Result<Vec<(&'static str, ())>> {
    Ok(examples()?.into_iter().map(|(n, _)| (n, ())).collect())
}

#[test]
fn a_changed_answer_is_caught() {
    let shown = Response {
        status: 200,
        headers: vec![("x-ao-slot".into(), "2".into())],
        body: "{\"count\": 2}".into(),
    };
    let same = Response {
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-ao-slot".into(), "2".into()),
        ],
        ..shown.clone()
    };
    assert!(matches(&shown, &same).is_ok());
    let other_body = Response {
        body: "{\"count\": 3}".into(),
        ..same.clone()
    };
    assert!(matches(&shown, &other_body).is_err());
    let other_header = Response {
        headers: vec![("x-ao-slot".into(), "3".into())],
        ..same.clone()
    };
    assert!(matches(&shown, &other_header).is_err());
    let other_status = Response {
        status: 404,
        ..same
    };
    assert!(matches(&shown, &other_status).is_err());
}

#[test]
fn the_doc_parser_reads_what_the_writer_writes() -> anyhow::Result<()> {
    let request = json_request(
        "POST",
        "/~scheduler@1.0/schedule",
        &Message::new().with("a", 1)?,
    );
    let response = Response {
        status: 404,
        headers: vec![("content-type".into(), "application/json".into())],
        body: "{\n  \"status\": 404\n}".into(),
    };
    let doc = "# T\n\n<!-- example: one -->\nold text stays\n";
    let doc = rewrite(doc, &[("one", request.render(), response.render())])?;
    let parsed = parse_doc(&doc)?;
    assert_eq!(
        parsed,
        vec![("one".to_string(), request.clone(), response.clone())]
    );
    // Rewriting again replaces the blocks instead of adding more.
    let again = rewrite(&doc, &[("one", request.render(), response.render())])?;
    assert_eq!(again, doc);
    Ok(())
}

#[test]
fn a_raw_item_body_is_shown_in_base64url_and_sent_as_its_bytes() -> anyhow::Result<()> {
    let item = legacy_process("NHUPmL1Z_PyUbaRaqr6TO-FUpLUJThxKv0KGZQXzyX4")?;
    let request = raw_post(&item);
    assert!(request.body.lines().count() > 1);
    assert!(request.body.lines().all(|l| l.len() <= 76));
    let response = Response {
        status: 200,
        headers: Vec::new(),
        body: String::new(),
    };
    let doc = rewrite(
        "<!-- example: raw -->\n",
        &[("raw", request.render(), response.render())],
    )?;
    let parsed = parse_doc(&doc)?;
    assert_eq!(parsed[0].1, request);
    assert_eq!(body_bytes(&parsed[0].1)?, item.serialize());
    // Any other body is sent as its text.
    let json = json_request("POST", "/", &Message::new().with("a", 1)?);
    assert_eq!(body_bytes(&json)?, json.body.as_bytes());
    Ok(())
}
