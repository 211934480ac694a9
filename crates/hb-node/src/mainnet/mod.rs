//! The mainnet surface (SPEC §10.5): the routes aoconnect calls in
//! `mainnet` mode, each a `POST` whose body is one signed ANS-104 item
//! (`content-type: application/ans104` or `codec-device: ans104@1.0`).
//!
//! | route | what it does |
//! |---|---|
//! | `POST /push` | registers the `Type: Process` item (every check of SPEC §5.6.2; its `scheduler` must be this node); 200 with header `process: <pid>` and the signed assignment as JSON |
//! | `POST /<pid>~process@1.0/push` | schedules the item on `pid`, then pushes that slot's outbox (SPEC §6.12); `{"slot", "process", "id", "assignment", "pushed"}`, or `push-error` in place of `pushed` when the slot was scheduled but could not be pushed |
//! | `POST /<pid>[~process@1.0]/compute/results=<slot or message ID>` | computes that slot (a message ID is found in the schedule's dedup index) and answers the ao result shape ([`result`]) |
//! | `POST /<pid>[~process@1.0]/slot/current` | the current slot, as text |
//! | `POST /<pid>[~process@1.0]/as=execution/compute&K1=V1&…` | a dry-run (SPEC §6.5.1) of the item's fields plus the path's, `from` the item's signer; the ao result shape |
//!
//! Every item is parsed, mapped (SPEC §10.2) and verified first
//! ([`request::signed_item`]): a bad signature is 400 `invalid-signature`,
//! never "unsigned"; a malformed body 400 `malformed-body`. The items of the
//! last three routes are reads: they are verified, never scheduled. The
//! control tags aoconnect adds (`signing-format`, `accept-bundle`,
//! `require-codec`, `accept-codec`) are signed, so a scheduled message
//! keeps them (removing them would break its signature).
//!
//! hb's own JSON routes under the same paths are untouched: only requests
//! with the ANS-104 content type or codec header come here ([`is_ans104`]).

pub mod request;
pub mod result;

use actix_web::http::header::{HeaderMap, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};
use hb_message::{ErrorCode, Id};
use hb_process::Freshness;
use hb_scheduler::ScheduleRequest;
use serde_json::json;

use crate::http::{from_error, mounted_path, read_body, refusal, Refusal};
use crate::node::NodeState;
use request::{ResultOf, Route, SignedItem};

/// The content type of a raw ANS-104 item.
pub const ANS104_CONTENT_TYPE: &str = "application/ans104";

/// The codec header value naming ANS-104.
pub const ANS104_CODEC: &str = "ans104@1.0";

/// Whether a request carries an ANS-104 item: `content-type:
/// application/ans104` (parameters ignored) or `codec-device: ans104@1.0`,
/// in any case.
pub fn is_ans104(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header(CONTENT_TYPE.as_str())
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(ANS104_CONTENT_TYPE))
        || header("codec-device").is_some_and(|c| c.trim().eq_ignore_ascii_case(ANS104_CODEC))
}

/// Every mainnet route: the path names what to do, the body is the item.
pub(crate) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<NodeState>,
) -> HttpResponse {
    match handle_in(&req, payload, &state).await {
        Ok(response) => response,
        Err(refused) => refused.respond(),
    }
}

async fn handle_in(
    req: &HttpRequest,
    payload: web::Payload,
    state: &NodeState,
) -> Result<HttpResponse, Refusal> {
    let span = tracing::Span::current();
    let route = request::route(&mounted_path(req))?;
    if let Some(pid) = route.pid() {
        span.record("pid", tracing::field::display(pid));
    }
    let body = read_body(req, payload, state.config.max_body_bytes).await?;
    let item = request::signed_item(&body)?;
    match route {
        Route::Spawn => spawn(state, item).await,
        Route::Message { pid } => message(state, pid, item).await,
        Route::Result { pid, of } => result(state, pid, of).await,
        Route::CurrentSlot { pid } => current_slot(state, pid).await,
        Route::DryRun { pid, fields } => dry_run(state, pid, &item, &fields).await,
    }
}

/// `POST /push`: registers a process.
async fn spawn(state: &NodeState, item: SignedItem) -> Result<HttpResponse, Refusal> {
    let kind = item.message.get_text("type");
    if kind != Some("Process") {
        return Err(refusal(
            400,
            "invalid-value",
            format!(
                "POST /push takes a `Type: Process` item; item {} has type {:?}: a message \
                 goes to /<pid>~process@1.0/push",
                item.id,
                kind.unwrap_or("(none)")
            ),
        ));
    }
    let node = state.scheduler.address();
    if let Some(named) = item.message.get_text("scheduler") {
        if named != node {
            return Err(refusal(
                400,
                "invalid-value",
                format!(
                    "process {} names scheduler {named:?}; this node is {node}",
                    item.id
                ),
            ));
        }
    }
    let assignment = state
        .scheduler
        .schedule(ScheduleRequest {
            message: item.message,
            ..ScheduleRequest::default()
        })
        .await
        .map_err(|e| from_error(&e))?;
    tracing::Span::current().record("slot", assignment.slot);
    Ok(HttpResponse::Ok()
        .insert_header(("process", assignment.pid.to_human()))
        .json(hb_message::json::to_json(&assignment.message)))
}

/// `POST /<pid>~process@1.0/push`: schedules a message, then pushes its
/// slot's outbox.
async fn message(state: &NodeState, pid: Id, item: SignedItem) -> Result<HttpResponse, Refusal> {
    if item.message.get_text("type") == Some("Process") {
        return Err(refusal(
            400,
            "invalid-value",
            format!(
                "item {} is a `Type: Process`: register it with POST /push",
                item.id
            ),
        ));
    }
    let assignment = state
        .scheduler
        .schedule(ScheduleRequest {
            message: item.message,
            request_target: Some(pid.to_human()),
            ..ScheduleRequest::default()
        })
        .await
        .map_err(|e| from_error(&e))?;
    let slot = assignment.slot;
    tracing::Span::current().record("slot", slot);
    let mut answer = json!({
        "slot": slot,
        "process": pid.to_human(),
        "id": item.id.to_human(),
        "assignment": assignment.id.to_human(),
    });
    // The message is scheduled (durably) whatever happens next: a failed
    // push is reported beside the slot, not as a failed request.
    match state.sources.processes.push(pid, slot, None).await {
        Ok(pushed) => {
            answer["pushed"] = hb_message::json::to_json(&pushed)["pushed"].clone();
        }
        Err(e) => {
            answer["push-error"] =
                json!({"status": e.status(), "error": e.code(), "detail": e.to_string()});
        }
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// `POST /<pid>/compute/results=<slot or message ID>`: that slot's results
/// in the ao result shape.
async fn result(state: &NodeState, pid: Id, of: ResultOf) -> Result<HttpResponse, Refusal> {
    let slot = match of {
        ResultOf::Slot(slot) => slot,
        ResultOf::Message(id) => slot_of(state, pid, id).await?,
    };
    tracing::Span::current().record("slot", slot);
    let computed = state
        .sources
        .processes
        .compute(pid, slot)
        .await
        .map_err(|e| from_error(&e))?;
    Ok(HttpResponse::Ok()
        .insert_header(("x-ao-slot", computed.slot.to_string()))
        .json(result::answer(computed.state.get("results"))))
}

/// The slot message `id` was assigned in `pid`'s schedule (404 `not-found`
/// when it was not).
async fn slot_of(state: &NodeState, pid: Id, id: Id) -> Result<u64, Refusal> {
    let cache = hb_store::SchedulerCache::new(std::sync::Arc::clone(state.scheduler.store()));
    let entry = tokio::task::spawn_blocking(move || cache.dedup(&pid, &id))
        .await
        .map_err(|e| refusal(500, "internal", format!("store task failed: {e}")))?
        .map_err(|e| from_error(&e))?;
    match entry {
        Some(entry) => Ok(entry.slot),
        None => Err(refusal(
            404,
            "not-found",
            format!("message {id} is not in the schedule of process {pid}"),
        )),
    }
}

/// `POST /<pid>/slot/current`: the current slot as text.
async fn current_slot(state: &NodeState, pid: Id) -> Result<HttpResponse, Refusal> {
    match state
        .scheduler
        .current(pid)
        .await
        .map_err(|e| from_error(&e))?
    {
        Some(current) => Ok(HttpResponse::Ok()
            .content_type("text/plain")
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(current.slot.to_string())),
        None => Err(refusal(
            404,
            "unknown-process",
            format!("unknown process {pid}: POST the process item to /push first"),
        )),
    }
}

/// `POST /<pid>~process@1.0/as=execution/compute&K=V…`: a dry-run.
async fn dry_run(
    state: &NodeState,
    pid: Id,
    item: &SignedItem,
    fields: &[(String, String)],
) -> Result<HttpResponse, Refusal> {
    let message = request::dry_run_message(&item.message, fields)?;
    let ran = state
        .sources
        .processes
        .dry_run_from(
            pid,
            message,
            Some(item.sender.clone()),
            Freshness::default(),
        )
        .await
        .map_err(|e| from_error(&e))?;
    let mut response = HttpResponse::Ok();
    if let Some(at) = ran.get_int("at-slot") {
        response.insert_header(("x-ao-slot", at.to_string()));
    }
    Ok(response.json(result::answer(ran.get("results"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn ans104_requests_are_known_by_content_type_or_codec() {
        assert!(is_ans104(&headers(&[(
            "content-type",
            "application/ans104"
        )])));
        assert!(is_ans104(&headers(&[(
            "content-type",
            "Application/ANS104; charset=x"
        )])));
        assert!(is_ans104(&headers(&[("codec-device", "ans104@1.0")])));
        assert!(!is_ans104(&headers(&[(
            "content-type",
            "application/json"
        )])));
        assert!(!is_ans104(&headers(&[])));
    }
}
