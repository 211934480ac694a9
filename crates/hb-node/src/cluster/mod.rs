//! Several nodes on one PostgreSQL store acting as one scheduler (SPEC
//! §11.3): each node registers itself ([`registration`]: the row
//! `node/<node id>` → `{url, started, last seen}`, refreshed every third
//! of a lease), and a schedule request for a process whose lease another
//! live node holds is forwarded there or redirected ([`routing`] decides,
//! [`forward`] relays). Leases and fencing themselves are the scheduler's
//! (hb-scheduler's `lease` and `lease_keeper`); reads and computation are
//! served by any node from the shared store.

pub mod forward;
pub mod registration;
pub mod routing;

use std::sync::OnceLock;

use crate::config::ClusterRouting;

/// The request header a node sets on a request it forwards to the owner
/// of a process: its own node id. A forwarded request is never forwarded
/// again (two nodes that disagree about an owner answer 503 rather than
/// bounce a request between them).
pub const FORWARDED_BY: &str = "hb-forwarded-by";

/// What the HTTP layer knows of the cluster this node is part of.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// This node's id.
    pub node_id: String,
    /// Proxy or redirect.
    pub routing: ClusterRouting,
    /// The lease time: also how stale a node's row may grow before it
    /// counts as gone.
    pub lease_ttl_ms: u64,
    /// Where the other nodes reach this one: `advertised_url`, else the URL
    /// the HTTP server bound (known once it has).
    pub url: OnceLock<String>,
    /// How long a forwarded request may take: the lease time (at least
    /// 1 s), after which the caller gets 503 `unavailable`.
    pub forward_timeout: std::time::Duration,
}

/// A response's mark that the request's process is sequenced by another
/// node (the scheduler answered `not-owner`): the wrapper of every route
/// forwards or redirects such a request (SPEC §11.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedElsewhere {
    /// The owner's node id.
    pub owner: String,
}

/// The request body as a handler read it, kept in the request's
/// extensions so that a request answered `not-owner` can be forwarded.
#[derive(Clone, Debug)]
pub(crate) struct RequestBody(pub actix_web::web::Bytes);
