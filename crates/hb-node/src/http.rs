//! The HTTP API (SPEC §7.2–7.5) over the resolution engine: a path names a
//! base and a key path, query parameters and a JSON body make the request,
//! and every answer and error is JSON.
//!
//! - `/~<device>/<key>/…` resolves with base `{device}`.
//! - `/<pid>~process@1.0/<key>/…` loads the process's stored definition
//!   (404 `unknown-process` if absent) as the base; `/<id>/<key>/…` loads
//!   the process definition, else any stored message with that ID, and
//!   resolves with its own `device`; `/<id>~<device>/…` with `<device>`.
//! - Query parameters become text fields; so do inline fields of a
//!   segment, `<key>&<field>=<value>`. `slot`, `from`, `to`, `nonce`,
//!   `max-age`, `min-slot` and `max-depth` become integers when they are
//!   digits.
//! - A POST body is JSON (SPEC §2.9) and becomes the request's `body`. A
//!   GET's `accept: application/aos-2` header becomes the request's
//!   `accept`, and the aos-2 answer is sent as the JSON it is.
//! - `compute`, `now` and their sub-paths carry `x-ao-slot` and
//!   `x-ao-computed-at`; `slot`, `status`, `now` (and any answer carrying
//!   `cache-control: no-store`) carry `cache-control: no-store`. An integer
//!   `status` field of the answer is the HTTP status.
//! - Errors are `{status, error, detail}` with the library error's own code
//!   and status (`ErrorCode`), never a downcast. 503 answers carry
//!   `retry-after`.
//!
//! Around every route, one wrapper ([`around`]) runs the request in a
//! `tracing` span (`method`, `route`, `path`, then `pid`, `slot` and
//! `status` as they become known), counts it in the metrics by route
//! pattern and status, turns a handler panic into 500 `internal` (the
//! server keeps serving), answers 503 `unavailable` once the node is
//! closing and 503 `busy` past `max_requests_in_flight` ([`crate::overload`]),
//! and fails requests still running at the end of the shutdown
//! grace period with 503 `unavailable`.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use futures::FutureExt;
use hb_device::Outcome;
use hb_message::{ErrorCode, Id, Message, Value};
use tracing::field::Empty;
use tracing::Instrument;

use crate::metrics::{Timed, CONTENT_TYPE as METRICS_CONTENT_TYPE};
use crate::node::{NodeError, NodeState, BUILT_IN_DEVICES};

/// Query parameters converted to integers when they are digits.
const INTEGER_PARAMS: [&str; 7] = [
    "slot",
    "from",
    "to",
    "nonce",
    "max-age",
    "min-slot",
    "max-depth",
];

/// First keys whose answers must not be cached.
const NO_STORE: [&str; 3] = ["slot", "status", "now"];

/// First keys whose answers carry `x-ao-slot` and `x-ao-computed-at`.
const COMPUTED: [&str; 2] = ["compute", "now"];

/// Keys that name a route in metrics labels; any other key is `other`.
const ROUTE_KEYS: [&str; 21] = [
    "backup",
    "schedule",
    "slot",
    "status",
    "location",
    "compute",
    "now",
    "dry-run",
    "push",
    "info",
    "snapshot",
    "init",
    "checkpoint",
    "keys",
    "id",
    "commitments",
    "committers",
    "verify",
    "panic",
    "dashboard",
    "stats",
];

/// A refused request: what its JSON error says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The kebab-case code.
    pub code: String,
    /// A sentence naming the field, check or slot.
    pub detail: String,
    /// Typed extras (`phase`, `attempted-slot`, `original-slot`,
    /// `requested-nonce`, `location`), from the error's
    /// [`ErrorCode::extras`].
    pub extras: Vec<(String, serde_json::Value)>,
}

impl Refusal {
    /// The JSON answer `{status, error, detail}`; 503 answers carry
    /// `retry-after`.
    pub fn respond(self) -> HttpResponse {
        let not_owner = self.code == "not-owner";
        let mut body = serde_json::Map::new();
        for (key, value) in self.extras {
            body.insert(key, value);
        }
        body.insert("status".into(), self.status.into());
        body.insert("error".into(), self.code.into());
        body.insert("detail".into(), self.detail.into());
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.insert_header(("retry-after", "1"));
        }
        if status.is_redirection() {
            if let Some(url) = body.get("location").and_then(|l| l.as_str()) {
                if let Ok(value) = actix_web::http::header::HeaderValue::from_str(url) {
                    r.insert_header((actix_web::http::header::LOCATION, value));
                }
            }
        }
        let owner = not_owner
            .then(|| {
                body.get("owner")
                    .and_then(|o| o.as_str())
                    .map(str::to_string)
            })
            .flatten();
        let mut response = r.json(serde_json::Value::Object(body));
        if let Some(owner) = owner {
            mark_owned_elsewhere(&mut response, owner);
        }
        response
    }
}

/// Marks `response` as the answer to a request whose process another
/// cluster node sequences: the wrapper of every route then forwards or
/// redirects the request (SPEC §11.3).
pub(crate) fn mark_owned_elsewhere(response: &mut HttpResponse, owner: String) {
    response
        .extensions_mut()
        .insert(crate::cluster::OwnedElsewhere { owner });
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

/// A refusal raised where no request is at hand (the wrapper of every
/// route): answered as its JSON.
impl actix_web::ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.clone().respond()
    }
}

/// A refusal with this status, code and detail.
pub fn refusal(status: u16, code: &str, detail: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code: code.to_string(),
        detail: detail.into(),
        extras: Vec::new(),
    }
}

/// An error answer: `{status, error, detail}`.
pub fn error(status: u16, code: &str, detail: impl Into<String>) -> HttpResponse {
    refusal(status, code, detail).respond()
}

/// The refusal of a library error: its own code, status and extras.
pub(crate) fn from_error(e: &(impl ErrorCode + std::fmt::Display)) -> Refusal {
    Refusal {
        extras: e
            .extras()
            .into_iter()
            .map(|(key, value)| (key.to_string(), hb_message::json::value_to_json(&value)))
            .collect(),
        ..refusal(e.status(), e.code(), e.to_string())
    }
}

// ---------------------------------------------------------------------------
// Paths and queries: plain functions, property-tested.

/// What a path's first segment names as the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `/~<device>/…`: the base is `{device}`.
    Device(String),
    /// `/<id>[~<device>]/…`: a stored message (a process definition, else
    /// any stored message), with `device` in place of its own if given.
    Stored {
        /// The message's ID.
        id: Id,
        /// The device named after `~`, if any.
        device: Option<String>,
    },
}

/// A request path, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPath {
    /// The base.
    pub base: Base,
    /// The key path, one key per segment (inline fields removed),
    /// percent-decoded.
    pub keys: Vec<String>,
    /// Inline fields (`<key>&<field>=<value>`), percent-decoded, in order.
    pub fields: Vec<(String, String)>,
}

/// Parses a request path (`/~<device>/<key>/…` or `/<id>[~<device>]/…`,
/// segments optionally `<key>&<field>=<value>…`). Never panics; anything
/// that names no base is 404 `not-found`.
pub fn parse_path(path: &str) -> Result<ParsedPath, Refusal> {
    let no_route = || {
        refusal(
            404,
            "not-found",
            format!("no route for {:?}", truncate(path)),
        )
    };
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let mut fields = Vec::new();
    let first = segments.next().ok_or_else(no_route)?;
    let first = split_inline(first, &mut fields);
    let first = percent_decode_path(first);
    let base = if let Some(device) = first.strip_prefix('~') {
        if device.is_empty() {
            return Err(no_route());
        }
        Base::Device(device.to_string())
    } else {
        let (id, device) = match first.split_once('~') {
            Some((id, device)) if !device.is_empty() => (id, Some(device.to_string())),
            Some(_) => return Err(no_route()),
            None => (first.as_str(), None),
        };
        let id = Id::parse(id).map_err(|_| no_route())?;
        Base::Stored { id, device }
    };
    let mut keys = Vec::new();
    for segment in segments {
        let key = split_inline(segment, &mut fields);
        if !key.is_empty() {
            keys.push(percent_decode_path(key));
        }
    }
    Ok(ParsedPath { base, keys, fields })
}

/// The key part of a segment; its `&k=v` fields go to `fields`.
fn split_inline<'a>(segment: &'a str, fields: &mut Vec<(String, String)>) -> &'a str {
    let mut parts = segment.split('&');
    let key = parts.next().unwrap_or_default();
    for pair in parts.filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        fields.push((percent_decode(k), percent_decode(v)));
    }
    key
}

/// Query parameters as text fields (integers for the known numeric ones).
/// Never panics; an unusable field name is 400.
pub fn query_fields(query: &str) -> Result<Message, Refusal> {
    let mut m = Message::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        set_field(&mut m, &percent_decode(k), percent_decode(v))?;
    }
    Ok(m)
}

/// Sets one request field: an integer for the known numeric parameters
/// when the value is digits, else text.
fn set_field(m: &mut Message, key: &str, value: String) -> Result<(), Refusal> {
    let value = if INTEGER_PARAMS.contains(&key)
        && !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
    {
        match value.parse::<i64>() {
            Ok(n) => Value::Int(n),
            Err(_) => Value::from(value),
        }
    } else {
        Value::from(value)
    };
    m.insert(key, value).map_err(|e| from_error(&e))?;
    Ok(())
}

/// `%XX` escapes decoded, and `+` as a space (query strings and inline
/// fields).
fn percent_decode(s: &str) -> String {
    decode(s, true)
}

/// `%XX` escapes decoded; `+` stays `+` (path segments). Shared with the
/// mainnet surface's path fields.
pub(crate) fn percent_decode_path(s: &str) -> String {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

/// The bounded route label of a path for metrics: `/healthz`,
/// `/metrics`, `/~<device>/<key>` or `/<pid>[~<device>]/<key>`, where a
/// device other than the node's own is `other`, a key not among the
/// node's route keys is `other`, and any process or message ID is
/// `<pid>`. Never the raw path.
pub fn route_label(path: &str) -> String {
    if matches!(path, "/healthz" | "/metrics" | "/push") {
        return path.to_string();
    }
    let known_device = |d: &str| {
        let d = d.to_ascii_lowercase();
        if BUILT_IN_DEVICES.contains(&d.as_str())
            || matches!(d.as_str(), "meta@1.0" | "hyperbuddy@1.0" | "node@1.0")
        {
            d
        } else {
            "other".to_string()
        }
    };
    let key = |keys: &[String]| match keys.first() {
        None => String::new(),
        Some(k) if ROUTE_KEYS.contains(&k.as_str()) => format!("/{k}"),
        Some(_) => "/other".to_string(),
    };
    match parse_path(path) {
        Ok(ParsedPath {
            base: Base::Device(d),
            keys,
            ..
        }) => format!("/~{}{}", known_device(&d), key(&keys)),
        Ok(ParsedPath {
            base: Base::Stored { device, .. },
            keys,
            ..
        }) => match device {
            Some(d) => format!("/<pid>~{}{}", known_device(&d), key(&keys)),
            None => format!("/<pid>{}", key(&keys)),
        },
        Err(_) => "other".to_string(),
    }
}

/// Which latency histogram a request belongs to, if any.
fn timed(method: &Method, path: &str) -> Option<Timed> {
    let first = parse_path(path).ok()?.keys.into_iter().next()?;
    match first.as_str() {
        "schedule" if method == Method::POST => Some(Timed::Schedule),
        "compute" | "now" => Some(Timed::Compute),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// The server.

/// The node's routes.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .route("/~meta@1.0/info", web::route().to(meta_info))
        .route("/~meta@1.0/info/{key}", web::route().to(meta_info))
        .route(
            "/~node@1.0/backup",
            web::route().to(crate::backup::backup_route),
        )
        // The mainnet surface (SPEC §10.5): a POST carrying an ANS-104
        // item, whatever its path; hb's JSON routes never see one.
        .route(
            "/{tail:.*}",
            web::post()
                .guard(actix_web::guard::fn_guard(|g| {
                    crate::mainnet::is_ans104(g.head().headers())
                }))
                .to(crate::mainnet::handle),
        );
    #[cfg(feature = "test-support")]
    cfg.route("/~hb-test@1.0/panic", web::route().to(test_panic));
    cfg.configure(crate::dashboard::routes);
    // The legacy SU API (SPEC §10.4); `/{id}` and `/{id}/latest` fall
    // through to `resolve` for anything but a process or `process-id`.
    cfg.route("/", web::get().to(crate::legacy::info))
        .route("/", web::post().to(crate::legacy::post_item))
        .route("/timestamp", web::get().to(crate::legacy::timestamp))
        .route("/health", web::get().to(crate::legacy::health))
        .route("/processes/{pid}", web::get().to(crate::legacy::process))
        .route("/{id}/latest", web::get().to(crate::legacy::latest))
        .route("/{id}", web::get().to(crate::legacy::by_id));
    cfg.route("/{tail:.*}", web::route().to(resolve));
}

/// The node's routes as one service wrapped in [`around`], for the node's
/// own server and for a host's `App` (`Node::routes`), at the root or
/// under a scope.
pub(crate) fn mount(
    state: web::Data<NodeState>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        let wrapped = state.clone();
        cfg.service(
            web::scope("")
                .app_data(state.clone())
                .wrap_fn(move |req, srv| around(&wrapped, req, srv))
                .configure(routes),
        );
    }
}

/// The request's path below where the node's routes are mounted (the whole
/// path at the root; the rest after a host's scope), set by [`around`].
#[derive(Clone, Debug)]
struct MountedPath(String);

/// The path the node's routes read: relative to their mount point.
pub(crate) fn mounted_path(req: &HttpRequest) -> String {
    req.extensions()
        .get::<MountedPath>()
        .map_or_else(|| req.uri().path().to_string(), |p| p.0.clone())
}

/// Binds the HTTP server on `bind` and starts it (on the running actix
/// system); returns its handle and the address it listens on.
/// Binds the node's port (before anything else starts, so that a port in
/// use is refused with nothing to undo).
pub(crate) fn bind(bind: (std::net::IpAddr, u16)) -> Result<std::net::TcpListener, NodeError> {
    let bind_error = |detail: String| NodeError::Bind {
        addr: format!("{}:{}", bind.0, bind.1),
        detail,
    };
    let listener = std::net::TcpListener::bind(bind).map_err(|e| bind_error(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| bind_error(e.to_string()))?;
    Ok(listener)
}

/// Serves the node's routes on `listener` (from [`bind`]).
pub(crate) fn serve(
    state: web::Data<NodeState>,
    listener: std::net::TcpListener,
) -> Result<(actix_web::dev::ServerHandle, SocketAddr), NodeError> {
    let local = listener.local_addr();
    let bind_error = |detail: String| NodeError::Bind {
        addr: local
            .as_ref()
            .map_or_else(|_| "?".into(), |a| a.to_string()),
        detail,
    };
    let mounted = mount(state);
    let server = HttpServer::new(move || App::new().configure(mounted.clone()))
        .workers(2)
        .disable_signals()
        // The node drains requests itself (`Lifecycle`) before stopping the
        // server; this only bounds the wait for connections left idle.
        .shutdown_timeout(1)
        .listen(listener)
        .map_err(|e| bind_error(e.to_string()))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| bind_error("no address bound".into()))?;
    let server = server.run();
    let handle = server.handle();
    actix::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the HTTP server stopped with an error");
        }
    });
    Ok((handle, addr))
}

/// Requests in flight, closing and aborting, for shutdown (SPEC §7.2).
#[derive(Debug)]
pub(crate) struct Lifecycle {
    closing: AtomicBool,
    in_flight: AtomicUsize,
    /// Woken when the last request in flight ends.
    idle: tokio::sync::Notify,
    abort: tokio::sync::watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            closing: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            abort: tokio::sync::watch::Sender::new(false),
        }
    }
}

/// One request in flight, until dropped.
struct InFlight {
    lifecycle: Arc<Lifecycle>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.lifecycle.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.lifecycle.idle.notify_waiters();
        }
        self.metrics.in_flight(-1);
    }
}

impl Lifecycle {
    fn enter(self: &Arc<Self>, metrics: &Arc<crate::metrics::Metrics>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        metrics.in_flight(1);
        InFlight {
            lifecycle: Arc::clone(self),
            metrics: Arc::clone(metrics),
        }
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Requests being handled now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Resolves once the node aborts the requests still in flight.
    fn aborted(&self) -> impl Future<Output = ()> + 'static {
        let mut abort = self.abort.subscribe();
        async move {
            if abort.wait_for(|a| *a).await.is_err() {
                // The node is gone without aborting: nothing will.
                std::future::pending::<()>().await;
            }
        }
    }

    /// New requests get 503 `unavailable` from now on. (A request counts
    /// itself in flight before it checks this, so once this is set and
    /// none is in flight, none will start.)
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Resolves when no request is in flight.
    async fn idle(&self) {
        loop {
            let woken = self.idle.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            woken.await;
        }
    }

    /// Waits for the requests in flight to finish, at most `grace`; then
    /// fails those left with 503 `unavailable` and waits for their answers.
    pub(crate) async fn drain(&self, grace: Duration) {
        if tokio::time::timeout(grace, self.idle()).await.is_err() {
            tracing::warn!(
                in_flight = self.in_flight(),
                "requests still in flight after the shutdown grace period; failing them with unavailable"
            );
            self.abort.send_replace(true);
            // Aborted requests answer at once.
            self.idle().await;
        }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>>>;

/// Wraps every route: the request's span, metrics, panics, closing and
/// aborting (see the module documentation).
pub(crate) fn around<S>(state: &web::Data<NodeState>, req: ServiceRequest, srv: &S) -> Answer
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let state = state.clone();
    let method = req.method().clone();
    // Below the mount point: the scope's prefix (if any) is matched, the
    // rest is the node's path.
    let path = match req.match_info().unprocessed() {
        "" => "/".to_string(),
        rest => rest.to_string(),
    };
    req.extensions_mut().insert(MountedPath(path.clone()));
    let route = route_label(&path);
    let timed = timed(&method, &path);
    let span = tracing::info_span!(
        "http_request",
        method = %method,
        route = %route,
        path = %truncate(&path),
        pid = Empty,
        slot = Empty,
        status = Empty,
    );
    let started = Instant::now();
    // Counted before the closing check, so a drain that sees none in
    // flight after closing knows none will start.
    let guard = state.lifecycle.enter(&state.metrics);
    if state.lifecycle.is_closing() {
        drop(guard);
        let mut res = error(503, "unavailable", "the node is shutting down");
        res.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        span.record("status", 503);
        state
            .metrics
            .request(&route, method.as_str(), 503, None, 0.0);
        return Box::pin(async move { Ok(req.into_response(res)) });
    }
    if let Err(busy) = crate::overload::admit(
        state.lifecycle.in_flight(),
        state.config.max_requests_in_flight,
    ) {
        drop(guard);
        span.record("status", busy.status);
        state
            .metrics
            .request(&route, method.as_str(), busy.status, None, 0.0);
        let res = busy.respond();
        return Box::pin(async move { Ok(req.into_response(res)) });
    }
    // A handler may panic before its future exists, or while it runs.
    let call = {
        let _entered = span.enter();
        std::panic::catch_unwind(AssertUnwindSafe(|| srv.call(req)))
    };
    let aborted = state.lifecycle.aborted();
    let answer = async move {
        let outcome = match call {
            Err(_) => Err(true),
            Ok(fut) => {
                tokio::select! {
                    done = AssertUnwindSafe(fut).catch_unwind() => done.map_err(|_| true),
                    () = aborted => Err(false),
                }
            }
        };
        // Without the request (the handler has it), a failure is answered
        // as an error whose own response is the JSON refusal.
        let res = match outcome {
            Ok(Ok(res)) => Ok(match &state.cluster {
                Some(cluster) => reroute(&state, cluster, res).await,
                None => res,
            }),
            Ok(Err(e)) => {
                // An error of actix itself: still a JSON error.
                let status = e.as_response_error().status_code().as_u16();
                let code = match status {
                    404 => "not-found",
                    405 => "method-not-allowed",
                    413 => "body-too-large",
                    415 => "unsupported-media-type",
                    400..=499 => "malformed-body",
                    _ => "internal",
                };
                Err(refusal(status, code, e.to_string()))
            }
            Err(true) => {
                state.metrics.panicked();
                tracing::error!("an HTTP handler panicked; answered 500 internal");
                Err(refusal(
                    500,
                    "internal",
                    "the handler failed unexpectedly; the node keeps serving",
                ))
            }
            Err(false) => Err(refusal(
                503,
                "unavailable",
                "the node shut down before this request finished",
            )),
        };
        let status = match &res {
            Ok(res) => res.status().as_u16(),
            Err(refused) => refused.status,
        };
        tracing::Span::current().record("status", status);
        state.metrics.request(
            &route,
            method.as_str(),
            status,
            timed,
            started.elapsed().as_secs_f64(),
        );
        drop(guard);
        res.map_err(actix_web::Error::from)
    };
    Box::pin(answer.instrument(span))
}

/// A request answered `not-owner` (its process is sequenced by another
/// node of the cluster) is forwarded to the owner, or redirected there,
/// if the store shows it alive (SPEC §11.3); any other answer, and a
/// `not-owner` answer with no live owner to send it to, stands.
async fn reroute(
    state: &NodeState,
    cluster: &crate::cluster::Cluster,
    res: ServiceResponse<BoxBody>,
) -> ServiceResponse<BoxBody> {
    use crate::cluster::{forward, routing, OwnedElsewhere, RequestBody, FORWARDED_BY};
    let Some(owned) = res.response().extensions().get::<OwnedElsewhere>().cloned() else {
        return res;
    };
    let req = res.request().clone();
    let store = std::sync::Arc::clone(state.scheduler.store());
    let owner = owned.owner.clone();
    let record = match tokio::task::spawn_blocking(move || {
        hb_store::NodeRecord::read(store.as_ref(), &owner)
    })
    .await
    {
        Ok(Ok(record)) => record,
        Ok(Err(e)) => {
            tracing::warn!(owner = %owned.owner, error = %e, "cannot read the owner's registration");
            None
        }
        Err(_) => None,
    };
    let path = mounted_path(&req);
    let path_and_query = match req.query_string() {
        "" => path,
        query => format!("{path}?{query}"),
    };
    let decision = routing::route(
        routing::Situation {
            me: &cluster.node_id,
            owner: &owned.owner,
            record: record.as_ref(),
            now_ms: state.scheduler.now_ms(),
            lease_ttl_ms: cluster.lease_ttl_ms,
            path_and_query: &path_and_query,
            forwarded: req.headers().contains_key(FORWARDED_BY),
        },
        cluster.routing,
    );
    match decision {
        routing::Route::Proxy(url) => {
            let body = req
                .extensions()
                .get::<RequestBody>()
                .map(|b| b.0.clone())
                .unwrap_or_default();
            tracing::debug!(owner = %owned.owner, %url, "forwarding to the process's owner");
            let relayed = forward::forward(forward::Forward {
                url: &url,
                method: req.method(),
                headers: req.headers(),
                body,
                node_id: &cluster.node_id,
                timeout: cluster.forward_timeout,
            })
            .await;
            match relayed {
                Ok(answer) => res.into_response(answer),
                Err(why) => res.into_response(
                    Refusal {
                        status: 503,
                        code: "unavailable".into(),
                        detail: format!("node {} sequences this process, but {why}", owned.owner),
                        extras: vec![("owner".into(), owned.owner.clone().into())],
                    }
                    .respond(),
                ),
            }
        }
        routing::Route::Redirect(url) => res.into_response(
            Refusal {
                status: 307,
                code: "redirect".into(),
                detail: format!("node {} sequences this process", owned.owner),
                extras: vec![
                    ("location".into(), url.into()),
                    ("owner".into(), owned.owner.clone().into()),
                ],
            }
            .respond(),
        ),
        routing::Route::Unavailable(why) => {
            tracing::debug!(owner = %owned.owner, why, "not-owner answer stands");
            res
        }
    }
}

// ---------------------------------------------------------------------------
// Handlers.

/// `GET /~meta@1.0/info[/<key>]`: the node's address, version and
/// non-secret settings (never the key), as JSON, except
/// `/~meta@1.0/info/address`: the bare address as text (what aoconnect's
/// mainnet mode reads). Other methods get 405.
pub(crate) async fn meta_info(req: HttpRequest, state: web::Data<NodeState>) -> HttpResponse {
    if req.method() != Method::GET {
        return error(405, "method-not-allowed", "the node's info is read-only");
    }
    let c = &state.config;
    let info = serde_json::json!({
        "address": state.scheduler.address(),
        "version": env!("CARGO_PKG_VERSION"),
        "scheduling-mode": state.scheduler.config().mode.as_str(),
        "host": c.host.to_string(),
        "port": c.port,
        "max-body-bytes": c.max_body_bytes,
        "max-json-depth": c.max_json_depth,
        "store": c.store.as_str(),
    });
    let mut info = info;
    if let Some(cluster) = &state.cluster {
        // SPEC §11.3: the cluster's scheduler address (above), and this
        // node's own id, URL and key.
        if let Some(map) = info.as_object_mut() {
            map.insert("node-id".into(), cluster.node_id.clone().into());
            map.insert(
                "node-url".into(),
                cluster.url.get().cloned().unwrap_or_default().into(),
            );
            map.insert("node-address".into(), state.node_address.clone().into());
            map.insert("lease-ttl-ms".into(), cluster.lease_ttl_ms.into());
            map.insert("cluster-routing".into(), cluster.routing.as_str().into());
        }
    }
    match req.match_info().get("key").filter(|k| !k.is_empty()) {
        None => HttpResponse::Ok().json(info),
        // The bare address as text: aoconnect's mainnet mode pastes the
        // body into a process's `Scheduler` and `Authority` tags.
        Some("address") => HttpResponse::Ok()
            .content_type("text/plain")
            .body(state.scheduler.address().to_string()),
        Some(key) => match info.get(key) {
            Some(v) => HttpResponse::Ok().json(v),
            None => error(404, "not-found", format!("no info key {key:?}")),
        },
    }
}

/// `GET /healthz`: 200 `{status: ok, store: ok}` when the scheduler runs
/// and the store answers a read (for PostgreSQL, the connection; SPEC
/// §11.3), else 503 naming what failed.
pub(crate) async fn healthz(state: web::Data<NodeState>) -> HttpResponse {
    if let Err(e) = state.scheduler.processes().await {
        return error(503, "unavailable", format!("scheduler: {e}"));
    }
    let store = Arc::clone(state.scheduler.store());
    let probe = tokio::task::spawn_blocking(move || store.get(b"meta/health-probe")).await;
    match probe {
        Ok(Ok(_)) => HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "store": "ok" })),
        Ok(Err(e)) => error(503, "unavailable", format!("store: {e}")),
        Err(e) => error(503, "unavailable", format!("store: {e}")),
    }
}

/// `GET /metrics` (SPEC §7.5).
pub(crate) async fn metrics(state: web::Data<NodeState>) -> HttpResponse {
    let text = state.metrics.render(&state.sources).await;
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(text)
}

/// A route that panics, to test panic containment (feature
/// `test-support` only; never in production builds).
#[cfg(feature = "test-support")]
pub(crate) async fn test_panic() -> HttpResponse {
    panic!("test-support: a handler panics on purpose")
}

/// Reads a body up to the node's limit (413 `body-too-large` beyond it).
/// Reads the request body, up to `limit` bytes (413 past it). The bytes
/// are also kept in the request's extensions, so that a request whose
/// process another cluster node sequences can be forwarded there (SPEC
/// §11.3).
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, Refusal> {
    use futures::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| refusal(400, "malformed-body", e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(refusal(
                413,
                "body-too-large",
                format!("the body exceeds max_body_bytes ({limit})"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    req.extensions_mut()
        .insert(crate::cluster::RequestBody(body.clone()));
    Ok(body)
}

/// Every other route: resolves the path.
pub(crate) async fn resolve(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<NodeState>,
) -> HttpResponse {
    match resolve_in(&req, payload, &state).await {
        Ok(response) => response,
        Err(refused) => refused.respond(),
    }
}

async fn resolve_in(
    req: &HttpRequest,
    payload: web::Payload,
    state: &NodeState,
) -> Result<HttpResponse, Refusal> {
    let span = tracing::Span::current();
    let posting = match *req.method() {
        Method::POST => true,
        Method::GET | Method::HEAD => false,
        _ => {
            return Err(refusal(
                405,
                "method-not-allowed",
                format!("{} is not served; use GET or POST", req.method()),
            ))
        }
    };
    let parsed = parse_path(&mounted_path(req))?;
    let body = read_body(req, payload, state.config.max_body_bytes).await?;
    let mut request = query_fields(req.query_string())?;
    for (k, v) in parsed.fields.iter().cloned() {
        set_field(&mut request, &k, v)?;
    }
    request
        .insert("method", if posting { "POST" } else { "GET" })
        .map_err(|e| from_error(&e))?;
    if posting && !body.is_empty() {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| {
                t.split(';')
                    .next()
                    .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(refusal(
                415,
                "unsupported-media-type",
                "bodies are application/json",
            ));
        }
        let m = hb_message::json::from_json_with_depth(&body, state.config.max_json_depth)
            .map_err(|e| from_error(&e))?;
        request
            .insert("body", Value::Message(m))
            .map_err(|e| from_error(&e))?;
    }
    let wants_aos2 = !posting
        && req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.to_ascii_lowercase().contains("application/aos-2"));
    if wants_aos2 && request.get("accept").is_none() {
        request
            .insert("accept", "application/aos-2")
            .map_err(|e| from_error(&e))?;
    }
    if let Some(target) = request.get_text("target") {
        span.record("pid", tracing::field::display(truncate(target)));
    }
    if let Some(slot) = request.get("slot").and_then(Value::to_int_lenient) {
        span.record("slot", slot);
    }
    let base = load_base(&parsed.base, state).await?;
    if let Base::Stored { id, .. } = &parsed.base {
        span.record("pid", tracing::field::display(id.to_human()));
    }
    let Some(first) = parsed.keys.first().cloned() else {
        return match parsed.base {
            // `/<id>`: the stored message itself.
            Base::Stored { .. } => Ok(HttpResponse::Ok().json(hb_message::json::to_json(&base))),
            Base::Device(d) => Err(refusal(
                404,
                "not-found",
                format!("name a key of {d}: /~{d}/<key>"),
            )),
        };
    };
    if let (Base::Stored { id, .. }, "schedule", true) = (&parsed.base, first.as_str(), posting) {
        // `POST /<pid>~process@1.0/schedule`: the target is the path's.
        let pid = id.to_human();
        match request.get("target") {
            None => {
                request
                    .insert("target", pid.as_str())
                    .map_err(|e| from_error(&e))?;
            }
            Some(Value::Text(t)) if *t == pid => {}
            Some(_) => {
                return Err(refusal(
                    400,
                    "target-mismatch",
                    format!("the request's `target` is not the path's process {pid}"),
                ))
            }
        }
    }
    // A schedule page is answered as JSON: `scheduler@1.0` writes it as
    // text straight from the stored records (no `Message` per assignment).
    // Not when the path reads on into the page (`schedule/assignments/2`).
    let json_schedule =
        !posting && !wants_aos2 && parsed.keys.len() == 1 && first == "schedule" && {
            if request.get("accept").is_none() {
                request
                    .insert("accept", "application/json")
                    .map_err(|e| from_error(&e))?;
            }
            request
                .get_text("accept")
                .is_some_and(|a| a.trim().eq_ignore_ascii_case("application/json"))
        };
    let computed = COMPUTED.contains(&first.as_str());
    let ctx = &state.context;
    let (outcome, computed_state) = if computed && parsed.keys.len() > 1 {
        // The state first, for its slot and time, then the sub-path in it.
        request
            .insert("path", first.as_str())
            .map_err(|e| from_error(&e))?;
        let state_msg = match ctx.resolve(base, &request).await {
            Ok(Outcome::Ok(m) | Outcome::Skip(m) | Outcome::Pass(m)) => m,
            Ok(Outcome::Raw(_)) => {
                return Err(refusal(
                    500,
                    "internal",
                    format!("`{first}` did not answer a state"),
                ))
            }
            Err(e) => return Err(from_error(&e)),
        };
        request
            .insert("path", parsed.keys[1..].join("/"))
            .map_err(|e| from_error(&e))?;
        let stamp = stamp_of(&state_msg);
        let outcome = ctx
            .resolve(state_msg, &request)
            .await
            .map_err(|e| from_error(&e))?;
        (outcome, stamp)
    } else {
        request
            .insert("path", parsed.keys.join("/"))
            .map_err(|e| from_error(&e))?;
        let outcome = ctx
            .resolve(base, &request)
            .await
            .map_err(|e| from_error(&e))?;
        let stamp = match (&outcome, computed) {
            (Outcome::Ok(m) | Outcome::Skip(m) | Outcome::Pass(m), true) => stamp_of(m),
            _ => None,
        };
        (outcome, stamp)
    };
    if let Some((slot, _)) = computed_state {
        span.record("slot", slot);
    } else if let Outcome::Ok(m) = &outcome {
        if first == "schedule" && posting {
            if let Some(slot) = m.get_int("slot") {
                span.record("slot", slot);
            }
            if let Some(pid) = m.get_text("process") {
                span.record("pid", tracing::field::display(pid));
            }
        }
    }
    Ok(answer(
        outcome,
        &Answering {
            first_key: &first,
            computed: computed_state,
            aos2: wants_aos2,
            json_schedule,
        },
    ))
}

/// A computed state's `at-slot` and `computed-at`.
fn stamp_of(state: &Message) -> Option<(i64, Option<u64>)> {
    state
        .get_int("at-slot")
        .map(|slot| (slot, hb_process::process_device::computed_at(state)))
}

/// The base a parsed path names.
async fn load_base(base: &Base, state: &NodeState) -> Result<Message, Refusal> {
    let (id, device) = match base {
        Base::Device(device) => {
            return Message::new()
                .with("device", device.as_str())
                .map_err(|e| from_error(&e));
        }
        Base::Stored { id, device } => (*id, device.as_deref()),
    };
    let definition = state
        .scheduler
        .assignment(id, 0)
        .await
        .map_err(|e| from_error(&e))?
        .and_then(|a| a.get_message("body").cloned());
    let wants_process = device.is_some_and(|d| d.eq_ignore_ascii_case("process@1.0"));
    let found = match definition {
        Some(d) => Some(d),
        None if wants_process => None,
        None => {
            let cache = hb_store::MessageCache::new(std::sync::Arc::clone(state.scheduler.store()));
            tokio::task::spawn_blocking(move || cache.read(&id))
                .await
                .map_err(|e| refusal(500, "internal", format!("store task failed: {e}")))?
                .map_err(|e| from_error(&e))?
        }
    };
    let mut base = match found {
        Some(m) => m,
        None if wants_process => {
            return Err(refusal(
                404,
                "unknown-process",
                format!("unknown process {id}: POST the process message first"),
            ))
        }
        None => {
            return Err(refusal(
                404,
                "not-found",
                format!("no process or message {id} on this node"),
            ))
        }
    };
    if let Some(device) = device {
        base.insert("device", device).map_err(|e| from_error(&e))?;
    }
    Ok(base)
}

/// What shapes an answer besides its outcome.
struct Answering<'a> {
    first_key: &'a str,
    /// `(at-slot, computed-at)` of a compute or now state.
    computed: Option<(i64, Option<u64>)>,
    /// The client asked for aos-2.
    aos2: bool,
    /// A schedule page was asked for as JSON text (the native bundle).
    json_schedule: bool,
}

fn answer(outcome: Outcome, how: &Answering<'_>) -> HttpResponse {
    let mut response = match outcome {
        Outcome::Ok(m) | Outcome::Skip(m) | Outcome::Pass(m) => {
            let status = m
                .get_int("status")
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (200..=599).contains(s))
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let mut r = HttpResponse::build(status);
            if status.is_redirection() {
                if let Some(location) = m.get_text("location") {
                    if let Ok(v) = HeaderValue::from_str(location) {
                        r.insert_header((LOCATION, v));
                    }
                }
            }
            if m.get_text("cache-control") == Some("no-store") {
                r.insert_header((CACHE_CONTROL, "no-store"));
            }
            match schedule_text(m, how) {
                // aos-2 travels as JSON text (its keys are case-sensitive),
                // a native page as the JSON text written from the store.
                Ok(text) => r.content_type("application/json").body(text),
                // Written straight to bytes, without a `serde_json::Value` tree.
                Err(m) => r
                    .content_type("application/json")
                    .body(hb_message::json::to_json_vec(&m)),
            }
        }
        Outcome::Raw(v) => HttpResponse::Ok().json(hb_message::json::value_to_json(&v)),
    };
    let status_of_answer = response.status();
    let headers = response.headers_mut();
    if status_of_answer == StatusCode::SERVICE_UNAVAILABLE {
        // Every 503 says when to come back, whoever set the status.
        headers.insert(
            actix_web::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        );
    }
    if NO_STORE.contains(&how.first_key) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some((slot, computed_at)) = how.computed {
        if let Ok(v) = HeaderValue::from_str(&slot.to_string()) {
            headers.insert(
                actix_web::http::header::HeaderName::from_static("x-ao-slot"),
                v,
            );
        }
        if let Some(Ok(v)) = computed_at.map(|ms| HeaderValue::from_str(&ms.to_string())) {
            headers.insert(
                actix_web::http::header::HeaderName::from_static("x-ao-computed-at"),
                v,
            );
        }
    }
    response
}

/// The JSON text of a schedule answer that `scheduler@1.0` wrote as text
/// (`{content-type: application/json, body: <text>}`, asked for as aos-2
/// or as the JSON page), taken without a copy; any other answer is given
/// back.
fn schedule_text(mut m: Message, how: &Answering<'_>) -> Result<String, Message> {
    let is_text = (how.aos2 || how.json_schedule)
        && how.first_key == "schedule"
        && m.get_text("content-type") == Some("application/json")
        && m.get_text("body").is_some();
    if !is_text {
        return Err(m);
    }
    match m.remove("body") {
        Some(Value::Text(text)) => Ok(text),
        _ => Err(m), // unreachable: checked to be text above
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_parameters_become_integers_and_others_stay_text() {
        let m = query_fields("slot=5&target=abc&from=x&max-age=10").unwrap();
        assert_eq!(m.get("slot"), Some(&Value::Int(5)));
        assert_eq!(m.get_text("target"), Some("abc"));
        assert_eq!(m.get_text("from"), Some("x"));
        assert_eq!(m.get("max-age"), Some(&Value::Int(10)));
    }

    #[test]
    fn percent_decoding_is_total() {
        assert_eq!(percent_decode("application%2Faos-2"), "application/aos-2");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode_path("a+b%20c"), "a+b c");
    }

    #[test]
    fn percent_decoding_never_panics_on_truncated_escapes() {
        assert_eq!(percent_decode_path("a%2"), "a%2");
        assert_eq!(percent_decode_path("%"), "%");
        assert_eq!(percent_decode_path("%41%zz"), "A%zz");
    }

    #[test]
    fn paths_name_a_base_keys_and_inline_fields() {
        let pid = Id::hash(b"p").to_human();
        let p = parse_path(&format!("/{pid}~process@1.0/compute&slot=3/sum")).unwrap();
        assert_eq!(
            p.base,
            Base::Stored {
                id: Id::hash(b"p"),
                device: Some("process@1.0".into())
            }
        );
        assert_eq!(p.keys, vec!["compute".to_string(), "sum".to_string()]);
        assert_eq!(p.fields, vec![("slot".to_string(), "3".to_string())]);
        let p = parse_path("/~scheduler@1.0/slot&target=x").unwrap();
        assert_eq!(p.base, Base::Device("scheduler@1.0".into()));
        assert_eq!(p.keys, vec!["slot".to_string()]);
        for bad in ["", "/", "/~", "/nope/x", &format!("/{pid}~/x")] {
            assert_eq!(parse_path(bad).unwrap_err().status, 404, "{bad:?}");
        }
    }

    #[test]
    fn route_labels_never_hold_ids_or_unknown_names() {
        let pid = Id::hash(b"p").to_human();
        assert_eq!(
            route_label(&format!("/{pid}~process@1.0/compute/sum")),
            "/<pid>~process@1.0/compute"
        );
        assert_eq!(route_label(&format!("/{pid}/slot")), "/<pid>/slot");
        assert_eq!(
            route_label("/~scheduler@1.0/schedule"),
            "/~scheduler@1.0/schedule"
        );
        assert_eq!(route_label("/~evil-{x}@9/zzz"), "/~other/other");
        assert_eq!(route_label("/whatever"), "other");
        assert_eq!(route_label("/metrics"), "/metrics");
        assert_eq!(route_label("/push"), "/push");
        assert_eq!(
            route_label("/~hyperbuddy@1.0/stats"),
            "/~hyperbuddy@1.0/stats"
        );
    }
}
