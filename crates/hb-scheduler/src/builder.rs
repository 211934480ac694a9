//! `SchedulerBuilder`: starts the scheduler's actors with defaults for
//! everything but the store and the node key.

use std::sync::Arc;

use hb_message::NodeKey;
use hb_store::{GroupCommit, Store};

use crate::admission::DeviceCheck;
use crate::chain_tip::{CachedChainTip, ChainTipSource, LocalChainTip};
use crate::clock::{Clock, SystemClock};
use crate::config::SchedulerConfig;
use crate::deps::{NoopUploader, SchedulerDeps, SchedulerMetrics, Uploader};
use crate::error::{Check, SchedulerError};
use crate::lease_keeper::Leases;
use crate::scheduler::Scheduler;

/// Builds a [`Scheduler`]. Defaults: SPEC's settings, the local chain tip,
/// the no-op uploader, the system clock, fresh metrics, a group-commit
/// writer of its own (closed by [`Scheduler::shutdown`]), and no device
/// check (set one with [`device_check`](Self::device_check) to enforce
/// `validate_process_devices`).
pub struct SchedulerBuilder {
    store: Arc<dyn Store>,
    key: NodeKey,
    config: SchedulerConfig,
    tip: Arc<dyn ChainTipSource>,
    uploader: Arc<dyn Uploader>,
    metrics: Arc<SchedulerMetrics>,
    clock: Arc<dyn Clock>,
    writer: Option<Arc<GroupCommit>>,
    device_check: Option<DeviceCheck>,
}

impl std::fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerBuilder")
            .field("address", &self.key.address())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SchedulerBuilder {
    /// A builder for a scheduler over `store`, signing with `key`.
    pub fn new(store: Arc<dyn Store>, key: NodeKey) -> SchedulerBuilder {
        SchedulerBuilder {
            store,
            key,
            config: SchedulerConfig::default(),
            tip: Arc::new(LocalChainTip),
            uploader: Arc::new(NoopUploader),
            metrics: Arc::new(SchedulerMetrics::default()),
            clock: Arc::new(SystemClock),
            writer: None,
            device_check: None,
        }
    }

    /// The settings (default: SPEC's).
    pub fn config(mut self, config: SchedulerConfig) -> SchedulerBuilder {
        self.config = config;
        self
    }

    /// The chain-tip source (default: local, height 0).
    pub fn chain_tip(mut self, source: Arc<dyn ChainTipSource>) -> SchedulerBuilder {
        self.tip = source;
        self
    }

    /// The `remote_confirmation` uploader (default: a no-op sink).
    pub fn uploader(mut self, uploader: Arc<dyn Uploader>) -> SchedulerBuilder {
        self.uploader = uploader;
        self
    }

    /// Counters to update (default: fresh ones, see [`Scheduler::metrics`]).
    pub fn metrics(mut self, metrics: Arc<SchedulerMetrics>) -> SchedulerBuilder {
        self.metrics = metrics;
        self
    }

    /// The wall clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> SchedulerBuilder {
        self.clock = clock;
        self
    }

    /// A group-commit writer shared with other users of the store (the
    /// node shares one with hb-process). Shutdown then waits for the
    /// scheduler's writes but leaves the writer open for its owner.
    pub fn group_commit(mut self, writer: Arc<GroupCommit>) -> SchedulerBuilder {
        self.writer = Some(writer);
        self
    }

    /// The device check of `validate_process_devices`: whether a device
    /// name is known on this node (for instance a device registry's
    /// `contains`). Without one, definitions are not checked for devices.
    pub fn device_check(mut self, known: DeviceCheck) -> SchedulerBuilder {
        self.device_check = Some(known);
        self
    }

    /// Starts the actors. Must be called inside a running actix system.
    /// Settings that cannot work (see [`SchedulerConfig::validate`]) are
    /// an `Invalid` error, and nothing is started. With `node_id` set, a
    /// lease keeper thread starts too (SPEC §11.2).
    pub fn start(self) -> Result<Scheduler, SchedulerError> {
        self.config
            .validate()
            .map_err(|detail| SchedulerError::invalid(Check::InvalidValue, detail))?;
        if self.config.validate_process_devices && self.device_check.is_none() {
            tracing::warn!(
                "validate_process_devices is on but no device check was given \
                 (SchedulerBuilder::device_check): process definitions are not checked for devices"
            );
        }
        let (writer, owns_writer) = match self.writer {
            Some(w) => (w, false),
            None => (Arc::new(GroupCommit::start(Arc::clone(&self.store))?), true),
        };
        let leases = self.config.node_id.clone().map(|me| {
            Arc::new(Leases::new(
                me,
                self.config.lease_ttl_ms,
                Arc::clone(&self.metrics),
            ))
        });
        let deps = SchedulerDeps {
            store: self.store,
            writer,
            key: Arc::new(self.key),
            tip: Arc::new(CachedChainTip::new(self.tip)),
            config: Arc::new(self.config),
            metrics: self.metrics,
            uploader: self.uploader,
            clock: self.clock,
            leases,
        };
        Scheduler::start(deps, owns_writer, self.device_check)
    }
}
