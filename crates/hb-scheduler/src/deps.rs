//! What every scheduler actor shares: store, writer, key, tip, settings.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use futures::future::BoxFuture;
use hb_message::NodeKey;
use hb_store::{GroupCommit, Store};

use crate::assignment::Assignment;
use crate::chain_tip::CachedChainTip;
use crate::clock::Clock;
use crate::config::SchedulerConfig;
use crate::lease_keeper::Leases;

/// Counters exported as metrics and observed by tests.
#[derive(Debug, Default)]
pub struct SchedulerMetrics {
    /// Slots assigned since start.
    pub assigned: AtomicU64,
    /// Server restarts after a panic or a failed write.
    pub restarts: AtomicU64,
    /// Servers stopped by a panic in a handler (each is then restarted
    /// from the store); with `write_failures`, the restarts by reason.
    pub panics: AtomicU64,
    /// Assignment writes that failed.
    pub write_failures: AtomicU64,
    /// Calls refused with `Busy`.
    pub busy: AtomicU64,
    /// Servers stopped after `scheduler_max_idle_ms` without requests.
    pub retired: AtomicU64,
    /// Servers started (first start or after retirement; not restarts).
    pub started: AtomicU64,
    /// Retired servers whose actor has ended (its memory is released).
    pub ended: AtomicU64,
    /// Leases taken (SPEC §11.2; only with `node_id`).
    pub leases_taken: AtomicU64,
    /// Leases lost: a failed renewal, a batch that failed its fence, or a
    /// lease that expired unrenewed. Each stops its server at once.
    pub leases_lost: AtomicU64,
}

/// Where `remote_confirmation` sends assignments (SPEC §5.4). The result is
/// logged and counted, not checked.
pub trait Uploader: Send + Sync + 'static {
    /// Uploads one assignment.
    fn upload<'a>(&'a self, assignment: &'a Assignment) -> BoxFuture<'a, Result<(), String>>;
}

/// The default uploader: accepts everything, sends nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopUploader;

impl Uploader for NoopUploader {
    fn upload<'a>(&'a self, _: &'a Assignment) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Shared dependencies of the scheduler actors. Cheap to clone. Built by
/// [`SchedulerBuilder`](crate::SchedulerBuilder).
#[derive(Clone)]
pub(crate) struct SchedulerDeps {
    /// The store, for reads.
    pub store: Arc<dyn Store>,
    /// Group commit, for durable writes.
    pub writer: Arc<GroupCommit>,
    /// The node key that signs assignments.
    pub key: Arc<NodeKey>,
    /// The chain-tip source.
    pub tip: Arc<CachedChainTip>,
    /// Settings.
    pub config: Arc<SchedulerConfig>,
    /// Counters.
    pub metrics: Arc<SchedulerMetrics>,
    /// The `remote_confirmation` sink.
    pub uploader: Arc<dyn Uploader>,
    /// Wall-clock time (timestamps, location time-to-live, idle stops).
    pub clock: Arc<dyn Clock>,
    /// The leases this node holds, when `node_id` is set (SPEC §11.2).
    pub leases: Option<Arc<Leases>>,
}
