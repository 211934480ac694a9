//! Relays a request to the node that sequences its process (SPEC §11.3,
//! `cluster_routing = "proxy"`): same method, path, query, headers and
//! body, plus [`FORWARDED_BY`](super::FORWARDED_BY); the owner's answer
//! comes back as it was given.

use std::time::Duration;

use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::http::Method;
use actix_web::web::Bytes;
use actix_web::HttpResponse;

/// The largest answer relayed: far above any schedule answer.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

thread_local! {
    // One client (and its connection pool) per HTTP worker thread: awc
    // clients are not `Send`, and forwarded requests reuse connections.
    static CLIENT: awc::Client = awc::Client::builder().disable_redirects().finish();
}

/// Headers of one hop only, never relayed.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
        || name.as_str().eq_ignore_ascii_case("keep-alive")
}

/// What is forwarded.
pub(crate) struct Forward<'a> {
    /// The owner's URL for this request.
    pub url: &'a str,
    /// The request's method.
    pub method: &'a Method,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The request's body.
    pub body: Bytes,
    /// This node's id (sent in `hb-forwarded-by`).
    pub node_id: &'a str,
    /// How long the owner may take.
    pub timeout: Duration,
}

/// Sends the request to the owner and builds the answer to relay; Err
/// (a sentence) if the owner could not be reached or its answer read.
pub(crate) async fn forward(f: Forward<'_>) -> Result<HttpResponse, String> {
    let url = f.url.to_string();
    let limit = f.timeout;
    // awc's own timeout covers sending and the answer's head; this bound
    // covers everything (a paused owner must never hold a caller longer).
    match tokio::time::timeout(limit, relay(f)).await {
        Ok(relayed) => relayed,
        Err(_) => Err(format!(
            "the owner at {url} did not answer within {} ms",
            limit.as_millis()
        )),
    }
}

async fn relay(f: Forward<'_>) -> Result<HttpResponse, String> {
    let client = CLIENT.with(|c| c.clone());
    let mut request = client
        .request(f.method.clone(), f.url)
        .timeout(f.timeout)
        .insert_header((super::FORWARDED_BY, f.node_id));
    for (name, value) in f.headers {
        if !hop_by_hop(name) && name.as_str() != super::FORWARDED_BY {
            request = request.append_header((name.clone(), value.clone()));
        }
    }
    let mut answer = request
        .send_body(f.body)
        .await
        .map_err(|e| format!("the owner at {} did not answer: {e}", f.url))?;
    let body = answer
        .body()
        .limit(MAX_ANSWER_BYTES)
        .await
        .map_err(|e| format!("the owner's answer could not be read: {e}"))?;
    let mut relayed = HttpResponse::build(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            relayed.append_header((name.clone(), value.clone()));
        }
    }
    Ok(relayed.body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind_and_others_travel() {
        assert!(hop_by_hop(&header::HOST));
        assert!(hop_by_hop(&header::CONTENT_LENGTH));
        assert!(hop_by_hop(&HeaderName::from_static("keep-alive")));
        assert!(!hop_by_hop(&header::CONTENT_TYPE));
        assert!(!hop_by_hop(&HeaderName::from_static("signature")));
    }
}
