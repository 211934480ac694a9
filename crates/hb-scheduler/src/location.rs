//! Scheduler location records (SPEC §5.6.7): who schedules for an address,
//! at which URL, replaceable only by a verified record with a higher nonce.

use std::sync::Arc;

use hb_message::{IdSelector, Message, Value, ED25519_DEVICE};
use hb_store::{LocationCache, LocationRecord, LocationUpdate};

use crate::error::{Check, SchedulerError};
use crate::scheduler::Scheduler;

fn cache(scheduler: &Scheduler) -> LocationCache {
    LocationCache::new(Arc::clone(scheduler.store()))
}

/// GET `location?address=` (default: this node) → `{body: record}`.
pub async fn get(scheduler: &Scheduler, request: &Message) -> Result<Message, SchedulerError> {
    let address = match request.get("address") {
        None => scheduler.address().to_string(),
        Some(Value::Text(a)) if hb_message::is_id_shaped(a) => a.clone(),
        Some(Value::Text(a)) => {
            return Err(SchedulerError::invalid(
                Check::InvalidAddress,
                format!("address {a:?} is not a 43-character base64url address"),
            ))
        }
        Some(_) => {
            return Err(SchedulerError::invalid(
                Check::InvalidAddress,
                "`address` must be text",
            ))
        }
    };
    let cache = cache(scheduler);
    let lookup = address.clone();
    let stored = blocking(move || cache.get(&lookup)).await?;
    match stored {
        Some(r) => Ok(Message::new().with("body", r.record)?),
        None => Err(SchedulerError::LocationNotFound { address }),
    }
}

/// POST `location`: self-registration when the body is signed by the node
/// key, else a verified third-party record stored under each committer.
pub async fn post(scheduler: &Scheduler, request: &Message) -> Result<Message, SchedulerError> {
    // 1. The record: the body, or the request key named by `target`.
    let body = match request.get_text("target") {
        Some(t) => request.get_message(t),
        None => request.get_message("body"),
    }
    .cloned()
    .ok_or_else(|| {
        SchedulerError::invalid(Check::InvalidLocation, "no location record in the request")
    })?;
    let node = scheduler.address().to_string();
    let signers = body.committers()?;
    let self_registration = signers.contains(&node);
    let owners = if self_registration {
        vec![node.clone()]
    } else {
        signers
    };
    if owners.is_empty() {
        return Err(SchedulerError::invalid(
            Check::InvalidLocation,
            "a location record must carry at least one commitment",
        ));
    }
    if !body.verify(&IdSelector::All)?.is_valid() {
        return Err(SchedulerError::invalid(
            Check::InvalidLocation,
            "the location record does not verify",
        ));
    }
    // 2–4. Nonces only go up.
    let cache = cache(scheduler);
    let mut existing = -1;
    for owner in &owners {
        let c = cache.clone();
        let o = owner.clone();
        if let Some(r) = blocking(move || c.get(&o)).await? {
            existing = existing.max(r.nonce().unwrap_or(-1));
        }
    }
    let requested = match body.get("nonce") {
        None => existing.checked_add(1).ok_or_else(|| {
            SchedulerError::invalid(
                Check::InvalidLocation,
                format!("the stored nonce is {existing}; no higher nonce exists"),
            )
        })?,
        Some(v) => v.to_int_lenient().ok_or_else(|| {
            SchedulerError::invalid(Check::InvalidLocation, "`nonce` must be an integer")
        })?,
    };
    if requested <= existing {
        return Err(SchedulerError::StaleNonce {
            requested,
            existing,
        });
    }
    // 5. Self-registration: the node builds and signs the record.
    let record = if self_registration {
        let cfg = scheduler.config();
        let url = body
            .get_text("url")
            .unwrap_or(&cfg.location_url)
            .to_string();
        let ttl = request
            .get("time-to-live")
            .and_then(Value::to_int_lenient)
            .unwrap_or(cfg.location_ttl_ms);
        Message::new()
            .with("data-protocol", "ao")?
            .with("variant", "ao.N.1")?
            .with("type", "scheduler-location")?
            .with("url", url)?
            .with("nonce", requested)?
            .with("time-to-live", ttl)?
            .with("codec-device", ED25519_DEVICE)?
            .commit(scheduler.key(), None)?
    } else {
        body
    };
    // 6. Stored under each owner, each only if still newer (atomically).
    let stored = LocationRecord {
        record: record.clone(),
        // Before 1970 only on a broken clock.
        stored_at_ms: u64::try_from(scheduler.now_ms()).unwrap_or(0),
    };
    for owner in owners {
        let c = cache.clone();
        let r = stored.clone();
        if let LocationUpdate::Stale { existing_nonce } =
            blocking(move || c.put_if_newer(&owner, &r)).await?
        {
            return Err(SchedulerError::StaleNonce {
                requested,
                existing: existing_nonce,
            });
        }
    }
    Ok(record)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, hb_store::StoreError> + Send + 'static,
) -> Result<T, SchedulerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SchedulerError::Task {
            detail: e.to_string(),
        })?
        .map_err(SchedulerError::from)
}
