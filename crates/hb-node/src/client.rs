//! A small async HTTP client for a node's API (SPEC §7.3), on `awc`: one
//! method per route, answers parsed into [`Message`]s and [`Value`]s, and
//! the node's JSON errors (`{status, error, detail}`, SPEC §7.4) kept typed
//! in [`ClientError::Node`].
//!
//! Used by the `hb` client subcommands and by tests. It needs a running
//! actix (or tokio `LocalSet`) runtime; plain `http://` only (no TLS).
//!
//! ```no_run
//! # use hb_node::client::Client;
//! # async fn run() -> Result<(), hb_node::client::ClientError> {
//! let node = Client::new("http://127.0.0.1:8734")?;
//! let status = node.scheduler_status().await?;
//! println!("{} serves {:?}", node.address().await?, status.get("processes"));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use hb_message::json::{from_json_with_depth, to_json, value_from_json, JSON_MAX_DEPTH};
use hb_message::{ErrorCode, Id, Message, MessageError, Value};

/// The URL `hb`'s client subcommands use by default.
pub const DEFAULT_NODE_URL: &str = "http://127.0.0.1:8734";

/// How long one request may take by default: longer than the node's own
/// compute deadline (60 s), so the node's 504 arrives before ours.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// The largest answer read by default (a page of 1 001 assignments with
/// large bodies fits).
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024 * 1024;

/// Why a request to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node URL is not `http://host[:port]`.
    #[error("invalid node URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request did not reach the node, or the connection failed.
    #[error("cannot reach the node at {url}: {detail}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// The transport's reason.
        detail: String,
    },
    /// The node did not answer in time.
    #[error("no answer from {url} within {seconds} s")]
    Timeout {
        /// The request's URL.
        url: String,
        /// The deadline.
        seconds: u64,
    },
    /// The node refused the request with its JSON error.
    #[error("{code} ({status}): {detail}")]
    Node {
        /// The HTTP status.
        status: u16,
        /// The node's kebab-case code (`unknown-process`, `invalid-slot`, …).
        code: String,
        /// The node's sentence.
        detail: String,
    },
    /// The node answered something this client cannot read (not JSON, a
    /// wrong shape, too large).
    #[error("unexpected answer from {url} (HTTP {status}): {detail}")]
    UnexpectedAnswer {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// A message could not be encoded or signed.
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl ClientError {
    /// A kebab-case code: the node's own for [`ClientError::Node`], else
    /// `invalid-url`, `unreachable`, `timeout`, `unexpected-answer` or the
    /// message error's code.
    pub fn code(&self) -> &str {
        match self {
            ClientError::InvalidUrl { .. } => "invalid-url",
            ClientError::Unreachable { .. } => "unreachable",
            ClientError::Timeout { .. } => "timeout",
            ClientError::Node { code, .. } => code,
            ClientError::UnexpectedAnswer { .. } => "unexpected-answer",
            ClientError::Message(e) => e.code(),
        }
    }

    /// The sentence without the code: the node's `detail` for
    /// [`ClientError::Node`], else the error's text.
    pub fn detail(&self) -> String {
        match self {
            ClientError::Node { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }

    /// The node's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Node { status, .. } | ClientError::UnexpectedAnswer { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// An answer of `compute` or `now`: a state (a message) or, with a
/// sub-path, a single value, and the slot it reflects (`x-ao-slot`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The answer.
    pub value: Value,
    /// The slot the answer reflects, from the `x-ao-slot` header.
    pub slot: Option<i64>,
}

/// One page of a schedule in the native format (SPEC §5.6.3).
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulePage {
    /// The assignments by slot.
    pub assignments: BTreeMap<u64, Message>,
    /// More slots follow up to the requested `to`.
    pub continues: bool,
    /// The bundle's other fields: `type`, `process`, `continues`,
    /// `timestamp`, `block-height`, `block-hash`.
    pub header: Message,
}

/// One page of a schedule in the aos-2 format (SPEC §5.6.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Aos2Page {
    /// `{page_info, edges}` as the node wrote it.
    pub page: serde_json::Value,
    /// `page_info.has_next_page`.
    pub has_next_page: bool,
    /// The slot (`cursor`) of the last edge, if any.
    pub last_cursor: Option<u64>,
}

impl Aos2Page {
    /// The page's edges.
    pub fn edges(&self) -> &[serde_json::Value] {
        self.page
            .get("edges")
            .and_then(serde_json::Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
}

/// A slot range of a schedule; `None` leaves the node's default (`from` 0,
/// `to` the last assigned slot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotRange {
    /// The first slot.
    pub from: Option<u64>,
    /// The last slot, inclusive.
    pub to: Option<u64>,
}

/// A client of one node.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: awc::Client,
    timeout: Duration,
    body_limit: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

impl Client {
    /// A client of the node at `url` (`http://host[:port]`, a trailing `/`
    /// allowed), with [`DEFAULT_TIMEOUT`].
    pub fn new(url: &str) -> Result<Client, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let base = url.trim_end_matches('/');
        let authority = base
            .strip_prefix("http://")
            .ok_or_else(|| invalid("only http:// URLs are supported"))?;
        if authority.is_empty() || authority.contains(['/', '?', '#', ' ']) {
            return Err(invalid("expected http://host[:port] without a path"));
        }
        base.parse::<awc::http::Uri>()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Client {
            base: base.to_string(),
            http: http_client(DEFAULT_TIMEOUT),
            timeout: DEFAULT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
        })
    }

    /// The same client with another per-request deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.http = http_client(timeout);
        self.timeout = timeout;
        self
    }

    /// The node's URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /~meta@1.0/info`: the node's address, version and non-secret
    /// settings.
    pub async fn info(&self) -> Result<Message, ClientError> {
        self.get_message("/~meta@1.0/info").await
    }

    /// `GET /~meta@1.0/info/address`: the node's address, which a process
    /// names as its `scheduler` to be scheduled here. The node answers it
    /// as bare text; a JSON string (what nodes before the mainnet surface
    /// answered) is read too.
    pub async fn address(&self) -> Result<String, ClientError> {
        let url = self.url_of("/~meta@1.0/info/address");
        let (status, body) = self.send(self.http.get(&url), None, &url).await?;
        if body.first() == Some(&b'"') {
            return match self.value(&body, status, &url)? {
                Value::Text(address) => Ok(address),
                other => Err(unexpected(
                    &url,
                    status,
                    format!("the address is a {}, not text", other.type_name()),
                )),
            };
        }
        match std::str::from_utf8(&body) {
            Ok(address) if !address.is_empty() => Ok(address.to_string()),
            _ => Err(unexpected(&url, status, "the address is not text".into())),
        }
    }

    /// `POST /~scheduler@1.0/schedule`: registers a process (a message with
    /// `type: Process`) or schedules a message on its `target`. Returns the
    /// signed assignment.
    pub async fn schedule(&self, message: &Message) -> Result<Message, ClientError> {
        self.post_message("/~scheduler@1.0/schedule", message).await
    }

    /// `GET /~scheduler@1.0/schedule?target=&from=&to=`: one page of a
    /// schedule in the native format.
    pub async fn schedule_page(
        &self,
        pid: &Id,
        range: SlotRange,
    ) -> Result<SchedulePage, ClientError> {
        let path = schedule_path(pid, range, false);
        let url = self.url_of(&path);
        let mut header = self.get_message(&path).await?;
        let assignments = match header.remove("assignments") {
            Some(Value::Message(m)) => m,
            None => Message::new(),
            Some(other) => {
                return Err(unexpected(
                    &url,
                    200,
                    format!("`assignments` is a {}", other.type_name()),
                ))
            }
        };
        let mut by_slot = BTreeMap::new();
        for (key, value) in assignments.iter() {
            let slot = key
                .as_str()
                .parse::<u64>()
                .map_err(|_| unexpected(&url, 200, format!("`assignments/{key}` is no slot")))?;
            let assignment = value.as_message().cloned().ok_or_else(|| {
                unexpected(&url, 200, format!("`assignments/{key}` is no message"))
            })?;
            by_slot.insert(slot, assignment);
        }
        let continues = match header.get("continues") {
            Some(Value::Bool(b)) => *b,
            _ => false,
        };
        Ok(SchedulePage {
            assignments: by_slot,
            continues,
            header,
        })
    }

    /// `GET /~scheduler@1.0/schedule?target=&from=&to=&accept=application/aos-2`:
    /// one page of a schedule in the aos-2 format.
    pub async fn schedule_page_aos2(
        &self,
        pid: &Id,
        range: SlotRange,
    ) -> Result<Aos2Page, ClientError> {
        let path = schedule_path(pid, range, true);
        let url = self.url_of(&path);
        let (status, body) = self
            .send(
                self.http.get(&url).insert_header(("accept", AOS2)),
                None,
                &url,
            )
            .await?;
        let mut page: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| unexpected(&url, status, format!("not JSON: {e}")))?;
        // The node may wrap the aos-2 text as a message's `body` (a JSON
        // string) instead of answering it as the document itself.
        if page.get("edges").is_none() {
            if let Some(text) = page.get("body").and_then(serde_json::Value::as_str) {
                page = serde_json::from_str(text)
                    .map_err(|e| unexpected(&url, status, format!("aos-2 body: {e}")))?;
            }
        }
        let edges = page
            .get("edges")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| unexpected(&url, status, "no aos-2 `edges`".into()))?;
        let mut last_cursor = None;
        for edge in edges {
            let cursor = edge
                .get("cursor")
                .and_then(cursor_of)
                .ok_or_else(|| unexpected(&url, status, "an edge without a cursor".into()))?;
            last_cursor = Some(cursor);
        }
        let has_next_page = page
            .pointer("/page_info/has_next_page")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Ok(Aos2Page {
            page,
            has_next_page,
            last_cursor,
        })
    }

    /// `GET /~scheduler@1.0/slot?target=`: `{process, current, timestamp,
    /// block-height, block-hash, wallet-address, …}`.
    pub async fn slot(&self, pid: &Id) -> Result<Message, ClientError> {
        self.get_message(&format!("/~scheduler@1.0/slot?target={pid}"))
            .await
    }

    /// The last assigned slot of `pid` (from [`slot`](Client::slot)).
    pub async fn current_slot(&self, pid: &Id) -> Result<i64, ClientError> {
        let path = format!("/~scheduler@1.0/slot?target={pid}");
        let slot = self.get_message(&path).await?;
        slot.get_int("current")
            .ok_or_else(|| unexpected(&self.url_of(&path), 200, "no integer `current`".into()))
    }

    /// `GET /<pid>~process@1.0/compute[/<sub/path>]?slot=N`: the state at
    /// slot N, or a value inside it.
    pub async fn compute(
        &self,
        pid: &Id,
        slot: u64,
        sub_path: &str,
    ) -> Result<Answer, ClientError> {
        let path = format!(
            "/{pid}~process@1.0/compute{}?slot={slot}",
            encode_sub_path(sub_path)
        );
        self.get_answer(&path).await
    }

    /// `GET /<pid>~process@1.0/now[/<sub/path>]`: the state at the last
    /// scheduled slot, or a value inside it.
    pub async fn now(&self, pid: &Id, sub_path: &str) -> Result<Answer, ClientError> {
        let path = format!("/{pid}~process@1.0/now{}", encode_sub_path(sub_path));
        self.get_answer(&path).await
    }

    /// `POST /<pid>~process@1.0/dry-run`: evaluates `message` on a copy of
    /// the latest state without scheduling it; `{results, at-slot}`.
    pub async fn dry_run(&self, pid: &Id, message: &Message) -> Result<Message, ClientError> {
        self.post_message(&format!("/{pid}~process@1.0/dry-run"), message)
            .await
    }

    /// `GET /<pid>~process@1.0/status`: `{process, scheduled-slot,
    /// computed-slot, snapshot-slot, worker, last-error?}`.
    pub async fn process_status(&self, pid: &Id) -> Result<Message, ClientError> {
        self.get_message(&format!("/{pid}~process@1.0/status"))
            .await
    }

    /// `GET /~scheduler@1.0/status`: `{address, processes}`.
    pub async fn scheduler_status(&self) -> Result<Message, ClientError> {
        self.get_message("/~scheduler@1.0/status").await
    }

    /// `POST /~node@1.0/backup`: the node copies its store into a new
    /// subdirectory of its `backup_dir`; `{path, entries, bytes}`.
    pub async fn backup(&self) -> Result<Message, ClientError> {
        self.post_message("/~node@1.0/backup", &Message::new())
            .await
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get_message(&self, path: &str) -> Result<Message, ClientError> {
        let url = self.url_of(path);
        let (status, body) = self.send(self.http.get(&url), None, &url).await?;
        from_json_with_depth(&body, JSON_MAX_DEPTH)
            .map_err(|e| unexpected(&url, status, format!("not a message: {e}")))
    }

    async fn post_message(&self, path: &str, message: &Message) -> Result<Message, ClientError> {
        let url = self.url_of(path);
        let body = serde_json::to_vec(&to_json(message))
            .map_err(|e| MessageError::InvalidJson(e.to_string()))?;
        let request = self
            .http
            .post(&url)
            .insert_header(("content-type", "application/json"));
        let (status, answer) = self.send(request, Some(body), &url).await?;
        from_json_with_depth(&answer, JSON_MAX_DEPTH)
            .map_err(|e| unexpected(&url, status, format!("not a message: {e}")))
    }

    async fn get_answer(&self, path: &str) -> Result<Answer, ClientError> {
        let url = self.url_of(path);
        let (status, headers, body) = self.exchange(self.http.get(&url), None, &url).await?;
        let slot = headers
            .get("x-ao-slot")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        let value = self.value(&body, status, &url)?;
        Ok(Answer { value, slot })
    }

    fn value(&self, body: &[u8], status: u16, url: &str) -> Result<Value, ClientError> {
        value_from_json(body, JSON_MAX_DEPTH)
            .map_err(|e| unexpected(url, status, format!("not a value: {e}")))
    }

    /// Sends and reads a successful answer's status and body.
    async fn send(
        &self,
        request: awc::ClientRequest,
        body: Option<Vec<u8>>,
        url: &str,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let (status, _, body) = self.exchange(request, body, url).await?;
        Ok((status, body))
    }

    /// Sends and reads a successful answer; a refusal becomes
    /// [`ClientError::Node`].
    async fn exchange(
        &self,
        request: awc::ClientRequest,
        body: Option<Vec<u8>>,
        url: &str,
    ) -> Result<(u16, awc::http::header::HeaderMap, Vec<u8>), ClientError> {
        let sent = match body {
            Some(body) => request.send_body(body).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| match e {
            awc::error::SendRequestError::Timeout => ClientError::Timeout {
                url: url.to_string(),
                seconds: self.timeout.as_secs(),
            },
            other => ClientError::Unreachable {
                url: url.to_string(),
                detail: other.to_string(),
            },
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body()
            .limit(self.body_limit)
            .await
            .map_err(|e| match e {
                awc::error::PayloadError::Overflow => unexpected(
                    url,
                    status,
                    format!("larger than {} bytes", self.body_limit),
                ),
                other => ClientError::Unreachable {
                    url: url.to_string(),
                    detail: format!("reading the answer: {other}"),
                },
            })?
            .to_vec();
        if (200..300).contains(&status) {
            return Ok((status, headers, body));
        }
        Err(refusal(&body, status, url))
    }
}

const AOS2: &str = "application/aos-2";

fn http_client(timeout: Duration) -> awc::Client {
    awc::Client::builder().timeout(timeout).finish()
}

fn unexpected(url: &str, status: u16, detail: String) -> ClientError {
    ClientError::UnexpectedAnswer {
        url: url.to_string(),
        status,
        detail,
    }
}

/// The node's `{status, error, detail}`, or an unexpected answer.
fn refusal(body: &[u8], status: u16, url: &str) -> ClientError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        json.as_ref()
            .and_then(|j| j.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    match (field("error"), field("detail")) {
        (Some(code), detail) => ClientError::Node {
            status,
            code,
            detail: detail.unwrap_or_default(),
        },
        (None, _) => {
            let text = String::from_utf8_lossy(body);
            let mut detail: String = text.chars().take(200).collect();
            if detail.is_empty() {
                detail = "an empty answer".into();
            }
            unexpected(url, status, detail)
        }
    }
}

fn schedule_path(pid: &Id, range: SlotRange, aos2: bool) -> String {
    let mut path = format!("/~scheduler@1.0/schedule?target={pid}");
    if let Some(from) = range.from {
        path.push_str(&format!("&from={from}"));
    }
    if let Some(to) = range.to {
        path.push_str(&format!("&to={to}"));
    }
    if aos2 {
        // The query form of `accept` (SPEC §5.6.3), which every node reads.
        path.push_str("&accept=application%2Faos-2");
    }
    path
}

/// A cursor as a number or as digit text.
fn cursor_of(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `a/b c` → `/a/b%20c`: empty segments dropped, each segment
/// percent-encoded outside the unreserved set.
fn encode_sub_path(sub_path: &str) -> String {
    let mut out = String::new();
    for segment in sub_path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_without_a_path() {
        assert!(Client::new("http://127.0.0.1:8734").is_ok());
        assert_eq!(
            Client::new("http://127.0.0.1:8734/")
                .map(|c| c.url().to_string())
                .ok(),
            Some("http://127.0.0.1:8734".to_string())
        );
        for bad in [
            "https://x",
            "127.0.0.1:8734",
            "http://",
            "http://a/b",
            "http://a b",
        ] {
            let err = Client::new(bad).err();
            assert_eq!(
                err.as_ref().map(ClientError::code),
                Some("invalid-url"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sub_paths_are_encoded_by_segment() {
        assert_eq!(encode_sub_path(""), "");
        assert_eq!(encode_sub_path("state/count"), "/state/count");
        assert_eq!(encode_sub_path("/a//b c/"), "/a/b%20c");
        assert_eq!(encode_sub_path("x?y#z"), "/x%3Fy%23z");
    }

    #[test]
    fn refusals_keep_the_nodes_code_and_detail() {
        let body = br#"{"status": 404, "error": "unknown-process", "detail": "POST it first"}"#;
        let e = refusal(body, 404, "u");
        assert_eq!(
            (e.code(), e.detail(), e.status()),
            ("unknown-process", "POST it first".to_string(), Some(404))
        );
        let e = refusal(b"<html>", 502, "u");
        assert_eq!((e.code(), e.status()), ("unexpected-answer", Some(502)));
    }
}
