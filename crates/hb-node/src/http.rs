//! The HTTP API (SPEC §7.2–7.4) over the resolution engine: a path names a
//! base and a key path, query parameters and a JSON body make the request,
//! and every answer and error is JSON.
//!
//! - `/~<device>/<key>/…` resolves with base `{device}`.
//! - `/<pid>~process@1.0/<key>/…` loads the process's stored definition
//!   (404 `unknown-process` if absent) as the base.
//! - Query parameters become text fields; `slot`, `from`, `to`, `nonce`,
//!   `max-age`, `min-slot` and `max-depth` become integers when they are
//!   digits.
//! - A POST body is JSON (SPEC §2.9) and becomes the request's `body`.
//! - Errors are `{status, error, detail}` with the library error's own code
//!   and status (`ErrorCode`), never a downcast.

use actix_web::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use hb_device::Outcome;
use hb_message::{ErrorCode, Id, Message, Value};

use crate::node::NodeState;

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

/// Keys whose answers must not be cached.
const NO_STORE: [&str; 3] = ["slot", "status", "now"];

/// A refused request: what its JSON error says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The kebab-case code.
    pub code: String,
    /// A sentence naming the field, check or slot.
    pub detail: String,
}

impl Refusal {
    /// The JSON answer `{status, error, detail}`.
    pub fn respond(self) -> HttpResponse {
        let body =
            serde_json::json!({ "status": self.status, "error": self.code, "detail": self.detail });
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.insert_header(("retry-after", "1"));
        }
        r.json(body)
    }
}

/// A refusal with this status, code and detail.
pub fn refusal(status: u16, code: &str, detail: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code: code.to_string(),
        detail: detail.into(),
    }
}

/// An error answer: `{status, error, detail}`.
pub fn error(status: u16, code: &str, detail: impl Into<String>) -> HttpResponse {
    refusal(status, code, detail).respond()
}

fn from_error(e: &(impl ErrorCode + std::fmt::Display)) -> Refusal {
    refusal(e.status(), e.code(), e.to_string())
}

/// `GET /~meta@1.0/info[/<key>]`: the node's address, version and
/// non-secret settings (never the key). Other methods get 405.
pub(crate) async fn meta_info(req: HttpRequest, state: web::Data<NodeState>) -> HttpResponse {
    if req.method() != actix_web::http::Method::GET {
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
    });
    match req.match_info().get("key").filter(|k| !k.is_empty()) {
        None => HttpResponse::Ok().json(info),
        Some(key) => match info.get(key) {
            Some(v) => HttpResponse::Ok().json(v),
            None => error(404, "not-found", format!("no info key {key:?}")),
        },
    }
}

/// `GET /healthz`.
pub(crate) async fn healthz(state: web::Data<NodeState>) -> HttpResponse {
    match state.scheduler.processes().await {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })),
        Err(e) => error(503, "unavailable", format!("scheduler: {e}")),
    }
}

/// Reads a body up to the node's limit (413 `body-too-large` beyond it).
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, Refusal> {
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
    Ok(body)
}

/// Every other route: resolves the path.
pub(crate) async fn resolve(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<NodeState>,
) -> HttpResponse {
    match resolve_in(req, payload, state).await {
        Ok(response) => response,
        Err(refused) => refused.respond(),
    }
}

async fn resolve_in(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<NodeState>,
) -> Result<HttpResponse, Refusal> {
    let body = read_body(payload, state.config.max_body_bytes).await?;
    let path = req.match_info().query("tail").to_string();
    let span = tracing::info_span!("http", method = %req.method(), %path);
    let _enter = span.enter();
    let posting = req.method() == actix_web::http::Method::POST;
    let (base, keys) = base_and_keys(&path, &state).await?;
    let mut request = query_fields(req.query_string())?;
    request
        .insert("path", keys.as_str())
        .map_err(|e| from_error(&e))?;
    if posting {
        request
            .insert("method", "POST")
            .map_err(|e| from_error(&e))?;
        if !body.is_empty() {
            let is_json = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|t| t.starts_with("application/json"));
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
    }
    let first = keys.split('/').next().unwrap_or_default().to_string();
    let outcome = state
        .context
        .resolve(base, &request)
        .await
        .map_err(|e| from_error(&e))?;
    Ok(answer(outcome, &first))
}

fn answer(outcome: Outcome, first_key: &str) -> HttpResponse {
    let mut response = match outcome {
        Outcome::Ok(m) | Outcome::Skip(m) | Outcome::Pass(m) => {
            let status = m
                .get_int("status")
                .and_then(|s| u16::try_from(s).ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let mut r = HttpResponse::build(status);
            if let Some(slot) = m.get_int("at-slot") {
                if matches!(first_key, "compute" | "now") {
                    r.insert_header(("x-ao-slot", slot.to_string()));
                }
            }
            r.json(hb_message::json::to_json(&m))
        }
        Outcome::Raw(v) => HttpResponse::Ok().json(hb_message::json::value_to_json(&v)),
    };
    if NO_STORE.contains(&first_key) {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The base and the key path of a request path.
async fn base_and_keys(path: &str, state: &NodeState) -> Result<(Message, String), Refusal> {
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    if let Some(device) = first.strip_prefix('~') {
        let base = Message::new()
            .with("device", device)
            .map_err(|e| from_error(&e))?;
        return Ok((base, rest.to_string()));
    }
    let (pid_text, device) = first.split_once('~').unwrap_or((first, "process@1.0"));
    let pid = Id::parse(pid_text)
        .map_err(|_| refusal(404, "not-found", format!("no route for {path:?}")))?;
    let definition = state
        .scheduler
        .assignment(pid, 0)
        .await
        .map_err(|e| from_error(&e))?
        .and_then(|a| a.get_message("body").cloned())
        .ok_or_else(|| {
            refusal(
                404,
                "unknown-process",
                format!("unknown process {pid}: POST the process message first"),
            )
        })?;
    let mut base = definition;
    base.insert("device", device).map_err(|e| from_error(&e))?;
    Ok((base, rest.to_string()))
}

/// Query parameters as text fields (integers for the known numeric ones).
fn query_fields(query: &str) -> Result<Message, Refusal> {
    let mut m = Message::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k);
        let v = percent_decode(v);
        let value = if INTEGER_PARAMS.contains(&k.as_str())
            && !v.is_empty()
            && v.bytes().all(|b| b.is_ascii_digit())
        {
            match v.parse::<i64>() {
                Ok(n) => Value::Int(n),
                Err(_) => Value::from(v),
            }
        } else {
            Value::from(v)
        };
        m.insert(k.as_str(), value).map_err(|e| from_error(&e))?;
    }
    Ok(m)
}

fn percent_decode(s: &str) -> String {
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
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
    }
}
