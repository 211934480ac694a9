//! The node-wide bound on requests in flight (`max_requests_in_flight`):
//! past it, a request is answered 503 `busy` with `retry-after` at once,
//! before its body is read, so a flood of clients holds at most that many
//! requests (each at most `max_body_bytes`) in memory. The per-process
//! bounds sit behind it: a scheduler server's mailbox
//! (`scheduler_mailbox_capacity`), the verification queue
//! (`scheduler_verify_queue_capacity`), a process worker's mailbox
//! (`process_worker_mailbox_capacity`) and the number of live workers
//! (`process_max_live_workers`), each also answered 503 `busy`.

use crate::http::{refusal, Refusal};

/// Whether a request may run when `in_flight` requests (itself included)
/// are being handled and at most `limit` may: else 503 `busy`.
pub fn admit(in_flight: usize, limit: usize) -> Result<(), Refusal> {
    if in_flight <= limit {
        return Ok(());
    }
    Err(refusal(
        503,
        "busy",
        format!(
            "the node is busy: {limit} requests in flight (max_requests_in_flight); retry later"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_up_to_the_limit_run_and_the_next_is_busy_with_retry_after() {
        assert!(admit(1, 1).is_ok());
        assert!(admit(64, 64).is_ok());
        let busy = admit(65, 64).unwrap_err();
        assert_eq!((busy.status, busy.code.as_str()), (503, "busy"));
        assert!(busy.detail.contains("max_requests_in_flight"));
        let res = busy.respond();
        assert_eq!(res.status().as_u16(), 503);
        assert_eq!(
            res.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
}
