//! The legacy SU API (SPEC §10.4): what the ao messenger unit, the ao
//! compute unit and aoconnect's `legacy` mode call, served at the node's
//! root beside hb's own routes. The handlers are thin: the JSON shapes are
//! [`shapes`], the page query and edge choice [`paging`]; scheduling goes
//! through the same scheduler (and every check of SPEC §5.6.2) as hb's own
//! routes. Errors on this surface are `{"error": "<sentence>"}` with 400,
//! or 404 for an unknown process or message.
//!
//! `GET /{id}` is shared with hb's `/<id>` (the stored message): a process
//! of this node, or an ID asked with `process-id`, is answered here; any
//! other ID falls through to hb's resolver.

pub mod paging;
pub mod shapes;

use actix_web::{web, HttpRequest, HttpResponse};
use hb_message::hb_ans104::DataItem;
use hb_message::{ErrorCode, Id, Message};
use hb_scheduler::{ScheduleRequest, SchedulerError};
use serde_json::json;

use crate::node::NodeState;
use paging::PageQuery;

/// `{"error": detail}` with `status`.
fn refuse(status: u16, detail: impl Into<String>) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({ "error": detail.into() }))
}

/// A scheduler error on this surface: its own status for unknown
/// processes (404), overload (429/503) and internal faults, else 400.
fn refuse_scheduler(e: &SchedulerError) -> HttpResponse {
    let status = match e.status() {
        s @ (404 | 429 | 503 | 500..=599) => s,
        _ => 400,
    };
    let mut response = refuse(status, e.to_string());
    if let SchedulerError::NotOwner { owner, .. } = e {
        // Another cluster node sequences the process: forwarded there
        // (SPEC §11.3).
        crate::http::mark_owned_elsewhere(&mut response, owner.clone());
    }
    response
}

/// The query string's pairs, percent-decoded.
fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, String> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|e| format!("malformed query: {e}"))
}

/// `GET /`: the time and this node's address.
pub(crate) async fn info(state: web::Data<NodeState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "timestamp": state.scheduler.now_ms().to_string(),
        "address": state.scheduler.address(),
    }))
}

/// `GET /timestamp`.
pub(crate) async fn timestamp(state: web::Data<NodeState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "timestamp": state.scheduler.now_ms().to_string(),
        "block_height": shapes::block(state.scheduler.tip().current().height),
    }))
}

/// `GET /health`: 200, empty.
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// The tag `name` (exact case), as text.
fn tag<'a>(item: &'a DataItem, name: &str) -> Option<&'a str> {
    item.tags()
        .iter()
        .find(|t| t.name == name.as_bytes())
        .and_then(|t| std::str::from_utf8(&t.value).ok())
}

/// What a posted item is, or why it is refused (SPEC §10.4).
fn classify(item: &DataItem, node_address: &str) -> Result<(Id, bool), String> {
    if item
        .tags()
        .iter()
        .any(|t| t.name.ends_with(b"+link") || t.value.ends_with(b"+link"))
    {
        return Err("tag names and values may not end in +link".into());
    }
    let id = Id(item.id_bytes());
    match tag(item, "Type") {
        Some("Process") => {
            for required in ["Data-Protocol", "Module", "Scheduler"] {
                if tag(item, required).is_none() {
                    return Err(format!("a Process needs a {required} tag"));
                }
            }
            let named = tag(item, "Scheduler").unwrap_or_default();
            if named != node_address {
                return Err(format!(
                    "the process names scheduler {named}, not this node ({node_address})"
                ));
            }
            Ok((id, true))
        }
        Some("Message") => match item.target() {
            Some(t) => Ok((Id(*t), false)),
            None => Err("a Message needs a target (its process)".into()),
        },
        Some(other) => Err(format!("unknown Type {other:?}: Process or Message")),
        None => Err("the item has no Type tag: Process or Message".into()),
    }
}

/// `POST /`: a raw ANS-104 item, a `Process` to register or a `Message`
/// to schedule. Answers `{"timestamp": <ms>, "id": <item ID>}`.
pub(crate) async fn post_item(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<NodeState>,
) -> HttpResponse {
    let json_body = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
    if json_body {
        return refuse(
            400,
            "the body is a raw ANS-104 data item (application/octet-stream)",
        );
    }
    let body = match crate::http::read_body(&req, payload, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(refused) => return refuse(refused.status, refused.detail),
    };
    let item = match DataItem::parse(&body) {
        Ok(item) => item,
        Err(e) => return refuse(400, format!("not a valid data item: {e}")),
    };
    let (pid, is_process) = match classify(&item, state.scheduler.address()) {
        Ok(c) => c,
        Err(why) => return refuse(400, why),
    };
    let message = match Message::from_data_item(&item) {
        Ok(m) => m,
        Err(e) => return refuse(400, e.to_string()),
    };
    let item_id = item.id();
    tracing::Span::current().record("pid", tracing::field::display(pid.to_human()));
    // The SU refuses a re-posted item (SPEC §10.4).
    let exists = if is_process {
        state.scheduler.has_schedule(pid).await
    } else {
        let cache = hb_store::SchedulerCache::new(std::sync::Arc::clone(state.scheduler.store()));
        let id = Id(item.id_bytes());
        tokio::task::spawn_blocking(move || cache.dedup(&pid, &id))
            .await
            .map_err(|e| SchedulerError::Task {
                detail: e.to_string(),
            })
            .and_then(|r| r.map_err(SchedulerError::Store))
            .map(|entry| entry.is_some())
    };
    match exists {
        Ok(true) => {
            let kind = if is_process { "Process" } else { "Message" };
            return refuse(400, format!("{kind} {item_id} already exists"));
        }
        Ok(false) => {}
        Err(e) => return refuse_scheduler(&e),
    }
    let scheduled = state
        .scheduler
        .schedule(ScheduleRequest {
            message,
            // Two identical items racing get one slot between them.
            idempotent: true,
            ..ScheduleRequest::default()
        })
        .await;
    match scheduled {
        Ok(a) => HttpResponse::Ok().json(json!({
            "timestamp": a.message.get_int("timestamp").unwrap_or_default(),
            "id": item_id,
        })),
        Err(e) => refuse_scheduler(&e),
    }
}

/// `GET /processes/{pid}`.
pub(crate) async fn process(path: web::Path<String>, state: web::Data<NodeState>) -> HttpResponse {
    let Ok(pid) = Id::parse(&path) else {
        return refuse(400, format!("{:?} is not a process ID", path.as_str()));
    };
    match state.scheduler.assignment(pid, 0).await {
        Ok(Some(slot0)) => HttpResponse::Ok().json(shapes::process_json(&pid.to_human(), &slot0)),
        Ok(None) => refuse(404, format!("Process {pid} not found")),
        Err(e) => refuse_scheduler(&e),
    }
}

/// `GET /{pid}/latest`: the latest `{message, assignment}`; other IDs and
/// paths fall through to hb's resolver.
pub(crate) async fn latest(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
    state: web::Data<NodeState>,
) -> HttpResponse {
    let Ok(pid) = Id::parse(&path) else {
        return crate::http::resolve(req, payload, state).await;
    };
    let current = match state.scheduler.current(pid).await {
        Ok(Some(c)) => c,
        Ok(None) => return refuse(404, format!("Process {pid} not found")),
        Err(e) => return refuse_scheduler(&e),
    };
    let Ok(slot) = u64::try_from(current.slot) else {
        return refuse(404, format!("Process {pid} not found"));
    };
    match state.scheduler.assignment(pid, slot).await {
        Ok(Some(a)) => HttpResponse::Ok().json(shapes::node_json(&a)),
        Ok(None) => refuse(
            404,
            format!("the latest assignment of {pid} is not stored yet"),
        ),
        Err(e) => refuse_scheduler(&e),
    }
}

/// `GET /{id}`: a process's schedule page, or with `process-id` one
/// message or assignment of that process; anything else falls through to
/// hb's `/<id>`.
pub(crate) async fn by_id(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
    state: web::Data<NodeState>,
) -> HttpResponse {
    let Ok(id) = Id::parse(&path) else {
        return crate::http::resolve(req, payload, state).await;
    };
    let pairs = match query_pairs(&req) {
        Ok(p) => p,
        Err(why) => return refuse(400, why),
    };
    let process_id = pairs
        .iter()
        .find(|(k, _)| k == "process-id")
        .map(|(_, v)| v.clone());
    match process_id {
        Some(p) if p != id.to_human() => {
            let Ok(pid) = Id::parse(&p) else {
                return refuse(400, format!("process-id {p:?} is not an ID"));
            };
            one_of(&state, pid, id).await
        }
        _ => match state.scheduler.current(id).await {
            Ok(Some(current)) => page(&state, id, current.slot, &pairs).await,
            Ok(None) if process_id.is_some() => refuse(404, format!("Process {id} not found")),
            Ok(None) => crate::http::resolve(req, payload, state).await,
            Err(e) => refuse_scheduler(&e),
        },
    }
}

/// The timestamp of `pid`'s assignment at `slot`.
async fn timestamp_at(state: &NodeState, pid: Id, slot: u64) -> Result<i64, SchedulerError> {
    Ok(match state.scheduler.assignment(pid, slot).await? {
        Some(a) => a.get_int("timestamp").unwrap_or(i64::MIN),
        None => i64::MAX, // not written yet: after any `from`
    })
}

/// One schedule page (SPEC §10.4).
async fn page(
    state: &NodeState,
    pid: Id,
    current: i64,
    pairs: &[(String, String)],
) -> HttpResponse {
    let max = state.scheduler.config().schedule_page_max.max(1);
    let q = match PageQuery::parse(pairs, max) {
        Ok(q) => q,
        Err(why) => return refuse(400, why),
    };
    let Ok(last) = u64::try_from(current) else {
        return HttpResponse::Ok()
            .json(json!({ "page_info": { "has_next_page": false }, "edges": [] }));
    };
    // The first slot the range can include: timestamps strictly increase
    // with slots, so a binary search finds the first one after `from`.
    let start = match &q.range {
        paging::Range::Nonces { from, .. } => *from,
        paging::Range::Timestamps { from: None, .. } => 0,
        paging::Range::Timestamps {
            from: Some(from), ..
        } => {
            let (mut lo, mut hi) = (0u64, last.saturating_add(1));
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match timestamp_at(state, pid, mid).await {
                    Ok(t) if t <= *from => lo = mid + 1,
                    Ok(_) => hi = mid,
                    Err(e) => return refuse_scheduler(&e),
                }
            }
            lo
        }
    };
    let mut candidates = Vec::new();
    if start <= last {
        // One more than the limit, to know whether a next page exists.
        let to = start.saturating_add(q.limit).min(last);
        let from = i64::try_from(start).unwrap_or(i64::MAX);
        let to = i64::try_from(to).unwrap_or(i64::MAX);
        match state
            .scheduler
            .read_schedule(pid, Some(from), Some(to))
            .await
        {
            Ok(p) => candidates = p.assignments,
            Err(e) => return refuse_scheduler(&e),
        }
    }
    let more_after = candidates.last().is_some_and(|(s, _)| *s < last);
    let page = paging::choose(&q, candidates, more_after);
    let edges: Vec<_> = page
        .edges
        .iter()
        .map(|e| json!({ "node": shapes::node_json(&e.assignment), "cursor": e.cursor }))
        .collect();
    HttpResponse::Ok().json(json!({
        "page_info": { "has_next_page": page.has_next_page },
        "edges": edges,
    }))
}

/// `GET /{id}?process-id=P`: the message `id` (found by the dedup index)
/// or the assignment `id` (found by reading the schedule) of `pid`.
async fn one_of(state: &NodeState, pid: Id, id: Id) -> HttpResponse {
    let current = match state.scheduler.current(pid).await {
        Ok(Some(c)) => c.slot,
        Ok(None) => return refuse(404, format!("Process {pid} not found")),
        Err(e) => return refuse_scheduler(&e),
    };
    let cache = hb_store::SchedulerCache::new(std::sync::Arc::clone(state.scheduler.store()));
    let entry = tokio::task::spawn_blocking(move || cache.dedup(&pid, &id)).await;
    if let Ok(Ok(Some(entry))) = entry {
        if let Ok(Some(a)) = state.scheduler.assignment(pid, entry.slot).await {
            return HttpResponse::Ok().json(shapes::node_json(&a));
        }
    }
    // An assignment ID (or the process itself): read the schedule page by
    // page. Linear, like the SU's own look-up of assignments.
    let wanted = id.to_human();
    let page_max = state.scheduler.config().schedule_page_max.max(1);
    let mut from = 0i64;
    while from <= current {
        let to = from.saturating_add(i64::try_from(page_max).unwrap_or(i64::MAX) - 1);
        let page = match state
            .scheduler
            .read_schedule(pid, Some(from), Some(to))
            .await
        {
            Ok(p) => p,
            Err(e) => return refuse_scheduler(&e),
        };
        if page.assignments.is_empty() {
            break;
        }
        for (slot, a) in &page.assignments {
            let body_id = a.get_message("body").and_then(|b| b.id_all().ok());
            if shapes::assignment_id(a).as_deref() == Some(&wanted) || body_id == Some(id) {
                return HttpResponse::Ok().json(shapes::node_json(a));
            }
            from = i64::try_from(*slot).unwrap_or(i64::MAX).saturating_add(1);
        }
    }
    refuse(404, format!("Message {id} not found in process {pid}"))
}
