//! What the HTTP tests share: a node on 127.0.0.1 (a random port) over a
//! MemoryStore or a temporary sled store, a real HTTP client, and helpers
//! to register processes and send messages.

#![allow(dead_code)]

use std::sync::Arc;

use hb_message::json::to_json;
use hb_message::{Message, NodeKey};
use hb_node::{Node, NodeBuilder, NodeConfig};
use hb_store::Store;

/// The node's key seed (tests sign as the node with it).
pub const NODE_SEED: [u8; 32] = [1; 32];

/// A started node and the store it runs on.
pub struct TestNode {
    pub node: Node,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

/// Where requests go: a node started in-process, or the real `hb serve`
/// binary ([`Binary`]).
pub trait Endpoint {
    /// `http://<addr>`.
    fn base_url(&self) -> String;
    /// The node's address, the scheduler its processes name.
    fn scheduler_address(&self) -> String;
}

impl Endpoint for Node {
    fn base_url(&self) -> String {
        self.url()
    }
    fn scheduler_address(&self) -> String {
        self.scheduler().address().to_string()
    }
}

impl Endpoint for TestNode {
    fn base_url(&self) -> String {
        self.node.url()
    }
    fn scheduler_address(&self) -> String {
        self.node.scheduler().address().to_string()
    }
}

/// The real `hb serve` on a temporary data dir and a random port, with
/// this file's limits ([`config`]) given as flags and the test devices on.
pub struct Binary {
    child: std::process::Child,
    url: String,
    address: String,
    _dir: tempfile::TempDir,
}

impl Binary {
    /// Starts `hb serve` and reads its address and URL from what it prints.
    pub fn start() -> Binary {
        Binary::start_with(&[])
    }

    /// Starts `hb serve` with `extra` flags after this file's own.
    pub fn start_with(extra: &[&str]) -> Binary {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().expect("a temp dir");
        let c = config();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hb"))
            .args(["serve", "--port", "0", "--enable-test-devices"])
            .args(["--max-body-bytes", &c.max_body_bytes.to_string()])
            .args(["--max-json-depth", &c.max_json_depth.to_string()])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("HB_NODE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hb serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut address = String::new();
        let url = loop {
            let line = lines
                .next()
                .expect("hb serve prints its URL before anything fails")
                .expect("a line");
            if let Some(a) = line.strip_prefix("hb node ") {
                address = a.trim().to_string();
            }
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep reading, so the node's later lines find an open pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Binary {
            child,
            url,
            address,
            _dir: dir,
        }
    }

    /// The node's OS process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM; the exit code once the node has stopped.
    pub fn stop(mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Endpoint for Binary {
    fn base_url(&self) -> String {
        self.url.clone()
    }
    fn scheduler_address(&self) -> String {
        self.address.clone()
    }
}

pub fn config() -> NodeConfig {
    NodeConfig {
        port: 0,
        max_body_bytes: 64 * 1024,
        max_json_depth: 16,
        enable_test_devices: true,
        ..NodeConfig::default()
    }
}

/// A node over a MemoryStore.
pub fn start() -> TestNode {
    start_with(|b| b, false)
}

/// A node over a temporary sled store.
pub fn start_sled() -> TestNode {
    start_with(|b| b, true)
}

pub fn start_with(tweak: impl FnOnce(NodeBuilder) -> NodeBuilder, sled: bool) -> TestNode {
    let (store, dir): (Arc<dyn Store>, _) = if sled {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = hb_store::SledStore::open(dir.path().join("db")).expect("sled opens");
        (Arc::new(store), Some(dir))
    } else {
        (Arc::new(hb_store::MemoryStore::new()), None)
    };
    let builder =
        NodeBuilder::new(Arc::clone(&store), NodeKey::from_seed(&NODE_SEED)).config(config());
    let node = tweak(builder).start().expect("the node starts");
    TestNode {
        node,
        store,
        _dir: dir,
    }
}

pub fn client() -> NodeKey {
    NodeKey::from_seed(&[2; 32])
}

/// An answer: status, JSON body (null if none) and headers.
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    pub headers: awc::http::header::HeaderMap,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a JSON error `{status, error, detail}` with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "{}",
            self.json
        );
        assert_eq!(self.json["status"].as_u64(), Some(u64::from(status)));
        assert!(
            self.json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            self.json
        );
    }
}

async fn read<S>(mut res: awc::ClientResponse<S>) -> Answer
where
    S: futures::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.body().limit(16 * 1024 * 1024).await.expect("a body");
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)))
    };
    Answer {
        status,
        json,
        headers,
    }
}

pub async fn get(node: &impl Endpoint, path: &str) -> Answer {
    get_with(node, path, &[]).await
}

pub async fn get_with(node: &impl Endpoint, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = awc::Client::new().get(format!("{}{path}", node.base_url()));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    read(req.send().await.expect("the node answers")).await
}

pub async fn post(node: &impl Endpoint, path: &str, m: &Message) -> Answer {
    post_json(node, path, &to_json(m)).await
}

pub async fn post_json(node: &impl Endpoint, path: &str, body: &serde_json::Value) -> Answer {
    let res = awc::Client::new()
        .post(format!("{}{path}", node.base_url()))
        .send_json(body)
        .await
        .expect("the node answers");
    read(res).await
}

/// A POST without a body.
pub async fn post_empty(node: &impl Endpoint, path: &str) -> Answer {
    let res = awc::Client::new()
        .post(format!("{}{path}", node.base_url()))
        .send()
        .await
        .expect("the node answers");
    read(res).await
}

pub async fn post_raw(
    node: &impl Endpoint,
    path: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Answer {
    let res = awc::Client::new()
        .post(format!("{}{path}", node.base_url()))
        .insert_header(("content-type", content_type))
        .send_body(body)
        .await
        .expect("the node answers");
    read(res).await
}

/// A `test-device@1.0` process definition scheduled on `node`, signed by
/// the client key; `extra` keys are added (to make distinct processes).
pub fn definition(node: &impl Endpoint, extra: &str) -> Message {
    Message::new()
        .with("type", "Process")
        .and_then(|m| m.with("device", "process@1.0"))
        .and_then(|m| m.with("scheduler", node.scheduler_address()))
        .and_then(|m| m.with("execution-device", "test-device@1.0"))
        .and_then(|m| m.with("name", extra))
        .and_then(|m| m.commit(&client(), None))
        .expect("a definition")
}

/// Registers a process; returns its ID (text).
pub async fn register(node: &impl Endpoint, extra: &str) -> String {
    let def = definition(node, extra);
    let pid = def.id_all().expect("an id").to_human();
    let a = post(node, "/~scheduler@1.0/schedule", &def).await;
    assert_eq!(
        (a.status, a.json["slot"].as_i64()),
        (200, Some(0)),
        "{}",
        a.json
    );
    pid
}

/// A signed message to `pid` adding `add`.
pub fn adding(pid: &str, add: i64) -> Message {
    Message::new()
        .with("target", pid)
        .and_then(|m| m.with("add", add))
        .and_then(|m| m.commit(&client(), None))
        .expect("a message")
}

/// Schedules `add` on `pid`; returns the slot.
pub async fn send(node: &impl Endpoint, pid: &str, add: i64) -> i64 {
    let a = post(node, "/~scheduler@1.0/schedule", &adding(pid, add)).await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.json["slot"].as_i64().expect("a slot")
}

/// The scheduler's current slot of `pid`.
pub async fn current(node: &Node, pid: &str) -> Option<i64> {
    let pid = hb_message::Id::parse(pid).expect("a pid");
    node.scheduler()
        .current(pid)
        .await
        .expect("the scheduler answers")
        .map(|c| c.slot)
}
