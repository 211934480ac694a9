//! `NodeBuilder` and the `Node` handle: the scheduler, the process layer
//! and the HTTP server on one store and node key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use hb_device::{Context, Device};
use hb_message::{Id, Message, NodeKey};
use hb_process::{ComputeError, Computed, Freshness, ProcessBuilder, ProcessConfig, Processes};
use hb_scheduler::{
    Assignment, Clock, ScheduleRequest, Scheduler, SchedulerBuilder, SchedulerConfig,
    SchedulerError,
};
use hb_store::Store;

use crate::config::NodeConfig;
use crate::http::{self, Lifecycle};
use crate::metrics::{Metrics, Sources};

/// Devices a node has, for `validate_process_devices`; `test-device@1.0`
/// only with `enable_test_devices`.
pub const BUILT_IN_DEVICES: [&str; 8] = [
    "message@1.0",
    "stack@1.0",
    "scheduler@1.0",
    "process@1.0",
    "push@1.0",
    "test-device@1.0",
    "patch@1.0",
    "lua@5.3a",
];

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A setting does not validate.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The scheduler did not start.
    #[error(transparent)]
    Scheduler(#[from] hb_scheduler::SchedulerError),
    /// The process layer did not start.
    #[error(transparent)]
    Process(#[from] hb_process::ComputeError),
    /// A device given to [`NodeBuilder::device`] cannot be registered.
    #[error("cannot register device {name:?}: {detail}")]
    Device {
        /// The device's name.
        name: String,
        /// Why not (a malformed name, or one already registered).
        detail: String,
    },
    /// The node could not join its cluster (SPEC §11.3).
    #[error("cannot join the cluster: {detail}")]
    Cluster {
        /// What failed.
        detail: String,
    },
    /// The HTTP server could not bind.
    #[error("cannot listen on {addr}: {detail}")]
    Bind {
        /// The address.
        addr: String,
        /// What failed.
        detail: String,
    },
}

/// What every HTTP handler reaches.
pub(crate) struct NodeState {
    pub scheduler: Scheduler,
    pub context: Context,
    pub config: NodeConfig,
    pub metrics: Arc<Metrics>,
    pub sources: Sources,
    pub lifecycle: Arc<Lifecycle>,
    pub dashboard: Arc<crate::dashboard::Dashboard>,
    /// This node's place in a cluster (SPEC §11), if it is in one.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The node key's address (the node's own identity; in a cluster the
    /// scheduler key signs assignments).
    pub node_address: String,
}

/// How long shutdown lets requests in flight finish before failing them
/// with 503 `unavailable`, unless [`NodeBuilder::shutdown_grace`] says.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Builds a node. Defaults: SPEC's settings ([`NodeConfig::default`]), from
/// which the scheduler's and the process layer's derive.
pub struct NodeBuilder {
    store: Arc<dyn Store>,
    key: NodeKey,
    node_key: Option<NodeKey>,
    config: NodeConfig,
    scheduler_config: Option<SchedulerConfig>,
    process_config: Option<ProcessConfig>,
    clock: Option<Arc<dyn Clock>>,
    shutdown_grace: Duration,
    http: bool,
    devices: Vec<Arc<dyn Device>>,
}

impl NodeBuilder {
    /// A node on `store`, signing assignments with `key` (in a cluster, the
    /// scheduler key every node shares).
    pub fn new(store: Arc<dyn Store>, key: NodeKey) -> NodeBuilder {
        NodeBuilder {
            store,
            key,
            node_key: None,
            config: NodeConfig::default(),
            scheduler_config: None,
            process_config: None,
            clock: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            http: true,
            devices: Vec::new(),
        }
    }

    /// The node's own key, when it differs from the key that signs
    /// assignments (in a cluster, SPEC §11.4): it names the node (the
    /// default `node_id` is its address). Default: the signing key.
    pub fn node_key(mut self, key: NodeKey) -> NodeBuilder {
        self.node_key = Some(key);
        self
    }

    /// Whether the node starts its own HTTP server on the configured host
    /// and port (default true). Without it, the host reaches the node
    /// through the [`Node`] handle, and may still serve hb's routes in its
    /// own actix-web `App` ([`Node::routes`]).
    pub fn http(mut self, serve: bool) -> NodeBuilder {
        self.http = serve;
        self
    }

    /// Registers a device of the host's own (under its
    /// [`name`](Device::name)): processes may name it as their execution
    /// device (or anywhere a device is named), and the scheduler's
    /// `validate_process_devices` check accepts it. [`NodeBuilder::start`]
    /// refuses a malformed name or one already registered
    /// ([`NodeError::Device`]).
    pub fn device(mut self, device: Arc<dyn Device>) -> NodeBuilder {
        self.devices.push(device);
        self
    }

    /// The clock the scheduler and the workers read (default: the system
    /// clock). A `ManualClock` makes every answer reproducible, which the
    /// documentation's examples rely on.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> NodeBuilder {
        self.clock = Some(clock);
        self
    }

    /// How long [`Node::shutdown`] lets requests in flight finish before
    /// failing them with 503 `unavailable` (default
    /// [`DEFAULT_SHUTDOWN_GRACE`]).
    pub fn shutdown_grace(mut self, grace: Duration) -> NodeBuilder {
        self.shutdown_grace = grace;
        self
    }

    /// The node's settings. Unless overridden below, the scheduler's and
    /// the process layer's settings derive from them
    /// ([`NodeConfig::scheduler_config`], [`NodeConfig::process_config`]).
    pub fn config(mut self, config: NodeConfig) -> NodeBuilder {
        self.config = config;
        self
    }

    /// The scheduler's settings, used as given instead of those derived
    /// from the node's settings.
    pub fn scheduler_config(mut self, config: SchedulerConfig) -> NodeBuilder {
        self.scheduler_config = Some(config);
        self
    }

    /// The process layer's settings, used as given instead of those
    /// derived from the node's settings. Whether `test-device@1.0` is
    /// registered stays the node's `enable_test_devices`.
    pub fn process_config(mut self, config: ProcessConfig) -> NodeBuilder {
        self.process_config = Some(config);
        self
    }

    /// Starts the scheduler, the process layer and, unless
    /// [`http(false)`](Self::http), the HTTP server (bound before this
    /// returns). Inside a running actix system.
    pub fn start(self) -> Result<Node, NodeError> {
        self.config.validate()?;
        let custom =
            crate::embed::custom_device_names(&self.devices, self.config.enable_test_devices)?;
        // The port first: a port in use is refused before any actor starts
        // (actors started and dropped unpolled cannot stop cleanly).
        let listener = if self.http {
            Some(crate::http::bind((self.config.host, self.config.port))?)
        } else {
            None
        };
        let metrics = Arc::new(Metrics::new());
        let store = metrics.timed_store(self.store);
        let scheduler_config = self
            .scheduler_config
            .unwrap_or_else(|| self.config.scheduler_config());
        let process_config = self
            .process_config
            .unwrap_or_else(|| self.config.process_config());
        let test_devices = self.config.enable_test_devices;
        let node_address = self
            .node_key
            .as_ref()
            .unwrap_or(&self.key)
            .address()
            .to_string();
        let mut scheduler_config = scheduler_config;
        if self.config.is_cluster() && scheduler_config.node_id.is_none() {
            // `node_id` defaults to the node key's address (SPEC §11.4).
            scheduler_config.node_id = Some(node_address.clone());
        }
        let clock: Arc<dyn Clock> = self
            .clock
            .unwrap_or_else(|| Arc::new(hb_scheduler::SystemClock));
        let scheduler =
            SchedulerBuilder::new(Arc::clone(&store), self.key).clock(Arc::clone(&clock));
        let scheduler = scheduler
            .config(scheduler_config)
            .device_check(Arc::new(move |name: &str| {
                (BUILT_IN_DEVICES.contains(&name)
                    && (test_devices || name != hb_process::test_device::NAME))
                    || custom.contains(&name.to_ascii_lowercase())
                    // WASM devices: such processes register and are
                    // scheduled; computing them answers 501 (SPEC §10.5).
                    || hb_process::run_as::UNSUPPORTED_EXECUTION_DEVICES
                        .contains(&name.to_ascii_lowercase().as_str())
            }))
            .start()?;
        let mut processes = ProcessBuilder::new(scheduler.clone())
            .config(process_config)
            .test_devices(test_devices);
        for device in self.devices {
            processes = processes.device(device)?;
        }
        let processes = processes.start()?;
        let lifecycle = Arc::new(Lifecycle::default());
        let sources = Sources {
            scheduler: scheduler.clone(),
            processes: processes.clone(),
            store,
        };
        let cluster = scheduler.node_id().map(|node_id| {
            Arc::new(crate::cluster::Cluster {
                node_id: node_id.to_string(),
                routing: self.config.cluster_routing,
                lease_ttl_ms: scheduler.config().lease_ttl_ms,
                url: std::sync::OnceLock::new(),
                // A live owner answers a schedule in far less than a
                // lease; one that does not may be paused, and waiting
                // longer would hold this node's callers past the time
                // another node can take the process over.
                forward_timeout: Duration::from_millis(scheduler.config().lease_ttl_ms.max(1_000)),
            })
        });
        let dashboard = Arc::new(crate::dashboard::Dashboard::new());
        crate::dashboard::start_sampler(&dashboard, &metrics, &sources);
        let state = web::Data::new(NodeState {
            scheduler: scheduler.clone(),
            context: processes.context().clone(),
            config: self.config.clone(),
            metrics,
            sources,
            lifecycle: Arc::clone(&lifecycle),
            dashboard,
            cluster: cluster.clone(),
            node_address,
        });
        let server = match listener {
            Some(listener) => Some(http::serve(state.clone(), listener)?),
            None => None,
        };
        let registration = match &cluster {
            Some(cluster) => {
                let url = self
                    .config
                    .advertised_url
                    .clone()
                    .or_else(|| server.as_ref().map(|(_, addr)| format!("http://{addr}")));
                match url {
                    Some(url) => {
                        let _ = cluster.url.set(url.clone());
                        let registered = crate::cluster::registration::Registration::start(
                            Arc::clone(scheduler.store()),
                            clock,
                            cluster.node_id.clone(),
                            url,
                            cluster.lease_ttl_ms,
                        );
                        match registered {
                            Ok(r) => Some(r),
                            Err(e) => {
                                return Err(NodeError::Cluster {
                                    detail: format!("cannot register this node in the store: {e}"),
                                })
                            }
                        }
                    }
                    // Mounted in a host's server without `advertised_url`:
                    // no URL to give the other nodes, so none is registered
                    // and they answer 503 for its processes.
                    None => None,
                }
            }
            None => None,
        };
        Ok(Node {
            scheduler,
            processes,
            server,
            state,
            lifecycle,
            grace: self.shutdown_grace,
            registration: parking_lot::Mutex::new(registration),
        })
    }
}

/// A running node.
pub struct Node {
    scheduler: Scheduler,
    processes: Processes,
    /// The node's own HTTP server and its address, unless started with
    /// `http(false)`.
    server: Option<(actix_web::dev::ServerHandle, SocketAddr)>,
    pub(crate) state: web::Data<NodeState>,
    lifecycle: Arc<Lifecycle>,
    grace: Duration,
    /// This node's row in a cluster's node registry, refreshed until
    /// shutdown.
    registration: parking_lot::Mutex<Option<crate::cluster::registration::Registration>>,
}

impl Node {
    /// The address the node's own HTTP server listens on; `None` for a
    /// node started with [`NodeBuilder::http`]`(false)`.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|(_, addr)| *addr)
    }

    /// `http://<addr>` of the node's own HTTP server; `None` for a node
    /// started with [`NodeBuilder::http`]`(false)`.
    pub fn http_url(&self) -> Option<String> {
        self.http_addr().map(|addr| format!("http://{addr}"))
    }

    /// The address the node's own HTTP server listens on.
    ///
    /// # Panics
    ///
    /// If the node was started with [`NodeBuilder::http`]`(false)`: it
    /// listens nowhere ([`Node::http_addr`] says so without panicking).
    pub fn addr(&self) -> SocketAddr {
        match self.http_addr() {
            Some(addr) => addr,
            None => panic!("Node::addr: this node was started without its HTTP server"),
        }
    }

    /// `http://<addr>` of the node's own HTTP server.
    ///
    /// # Panics
    ///
    /// If the node was started with [`NodeBuilder::http`]`(false)`
    /// ([`Node::http_url`] says so without panicking).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Schedules `message` (its `target` names the process; a process
    /// definition registers a new process), with every check of SPEC
    /// §5.6.2, as `POST /~scheduler@1.0/schedule` does.
    pub async fn schedule(&self, message: Message) -> Result<Arc<Assignment>, SchedulerError> {
        self.scheduler
            .schedule(ScheduleRequest {
                message,
                ..ScheduleRequest::default()
            })
            .await
    }

    /// The state of `pid` at `slot` (SPEC §6.4), as
    /// `GET /<pid>~process@1.0/compute?slot=<slot>` answers it.
    pub async fn compute(&self, pid: Id, slot: u64) -> Result<Computed, ComputeError> {
        self.processes.compute(pid, slot).await
    }

    /// Evaluates `message` on the latest state of `pid` without scheduling
    /// or storing anything (SPEC §6.5.1): `{results, at-slot}`.
    pub async fn dry_run(&self, pid: Id, message: Message) -> Result<Message, ComputeError> {
        self.processes
            .dry_run(pid, message, Freshness::default())
            .await
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The process layer.
    pub fn processes(&self) -> &Processes {
        &self.processes
    }

    /// HTTP requests being handled now.
    pub fn requests_in_flight(&self) -> usize {
        self.lifecycle.in_flight()
    }

    /// Stops the node (SPEC §7.2): stops accepting connections, answers
    /// new requests on open connections 503 `unavailable`, lets requests
    /// in flight finish for the shutdown grace period and fails those
    /// still running with 503 `unavailable` (every accepted request gets an
    /// answer); then stops the HTTP server, snapshots the workers, and
    /// waits until every write is durable. Safe to call more than once.
    ///
    /// Routes mounted in a host's `App` ([`Node::routes`]) answer 503
    /// `unavailable` from the start of the shutdown and are drained the
    /// same way; the host's server is the host's to stop.
    pub async fn shutdown(&self) {
        self.lifecycle.close();
        if let Some((http, _)) = &self.server {
            http.pause().await;
        }
        self.lifecycle.drain(self.grace).await;
        if let Some((http, _)) = &self.server {
            http.stop(true).await;
        }
        self.processes.shutdown().await;
        self.scheduler.shutdown().await;
        // Last: until the scheduler let go, other nodes may still forward
        // here. Then the row says gone, so they stop at once.
        let registration = self.registration.lock().take();
        if let Some(mut registration) = registration {
            let _ = tokio::task::spawn_blocking(move || registration.stop()).await;
        }
    }
}
