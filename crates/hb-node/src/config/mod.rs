//! Node settings (SPEC §7.1): one list of every setting ([`SETTINGS`]:
//! name, default, `HB_*` variable, flag, meaning), the typed
//! [`NodeConfig`] they fill, and the layering that fills it: a TOML file,
//! overridden by `HB_*` environment variables, overridden by flags
//! ([`NodeConfig::load`], a pure function of those three inputs).
//!
//! Every value is checked at load ([`NodeConfig::validate`]); a refused one
//! is a [`ConfigError`] naming the setting. The settings map onto the
//! library configurations with [`NodeConfig::scheduler_config`] and
//! [`NodeConfig::process_config`]. `docs/configuration.md` documents the
//! same list, and a test checks that the two agree.

mod layers;
mod settings;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use hb_message::NodeKey;
use hb_process::ProcessConfig;
use hb_scheduler::{DedupPolicy, SchedulerConfig, SchedulingMode};

pub use layers::ENV_PREFIX;
pub use settings::{Setting, ValueKind, SETTINGS};

/// A setting that does not validate; `hb serve` stops with exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting `{setting}`: {reason}")]
pub struct ConfigError {
    /// The setting's name; for an unknown key or variable, that key or
    /// variable as given; `config` for the configuration file itself.
    pub setting: String,
    /// Why it is refused (one line).
    pub reason: String,
}

impl ConfigError {
    /// A refusal of `setting`.
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// Where block heights and hashes come from (SPEC §5.3 `chain_tip`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChainTipKind {
    /// Height 0, timestamp 0, a zero hash: HyperBEAM's debug mode. The only
    /// source built so far.
    #[default]
    Local,
}

impl ChainTipKind {
    /// Every accepted spelling.
    pub const ALLOWED: [&'static str; 1] = ["local"];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainTipKind::Local => "local",
        }
    }
}

/// Which store backend the node runs on (`store`, SPEC §11.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded sled store in `data_dir`: one node.
    #[default]
    Sled,
    /// The embedded fjall store in `data_dir` (an LSM tree, about a sixth
    /// of sled's disk per assignment): one node.
    Fjall,
    /// A PostgreSQL database at `postgres_url`, shared by the nodes of a
    /// cluster (SPEC §11).
    Postgres,
}

impl StoreKind {
    /// Every accepted spelling.
    pub const ALLOWED: [&'static str; 3] = ["sled", "fjall", "postgres"];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sled => "sled",
            StoreKind::Fjall => "fjall",
            StoreKind::Postgres => "postgres",
        }
    }
}

/// How a node answers a schedule request for a process another live node
/// sequences (`cluster_routing`, SPEC §11.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClusterRouting {
    /// Forward the request to the owner and relay its answer.
    #[default]
    Proxy,
    /// Answer 307 with the owner's URL in `Location`.
    Redirect,
}

impl ClusterRouting {
    /// Every accepted spelling.
    pub const ALLOWED: [&'static str; 2] = ["proxy", "redirect"];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterRouting::Proxy => "proxy",
            ClusterRouting::Redirect => "redirect",
        }
    }
}

/// The default `lease_ttl_ms` (SPEC §11.2).
pub const DEFAULT_LEASE_TTL_MS: u64 = 5_000;

/// The shortest `lease_ttl_ms` accepted: renewals every third of it must
/// fit a database round trip with room to spare.
pub const MIN_LEASE_TTL_MS: u64 = 300;

/// The node's settings: one field per entry of [`SETTINGS`].
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// `host`: the address the HTTP server binds.
    pub host: IpAddr,
    /// `port` (0: any free port).
    pub port: u16,
    /// `data_dir`: where the embedded store (sled or fjall) lives.
    pub data_dir: PathBuf,
    /// `key_file` (default `<data_dir>/node.key`, created with mode 0600).
    pub key_file: Option<PathBuf>,
    /// `store`: sled or fjall in `data_dir`, or PostgreSQL at `postgres_url`.
    pub store: StoreKind,
    /// `postgres_url`: the database of a cluster (only with `store =
    /// "postgres"`).
    pub postgres_url: Option<String>,
    /// `scheduler_key_file`: the key every node of a cluster shares to sign
    /// assignments (default: the node key). Must exist.
    pub scheduler_key_file: Option<PathBuf>,
    /// `node_id`: this node's name in a cluster (default: the node key's
    /// address; only with `store = "postgres"`).
    pub node_id: Option<String>,
    /// `advertised_url`: the URL the other nodes reach this one at
    /// (default `http://<host>:<port>` as bound; only with `store =
    /// "postgres"`).
    pub advertised_url: Option<String>,
    /// `lease_ttl_ms`: how long a process lease lasts (SPEC §11.2).
    pub lease_ttl_ms: u64,
    /// `cluster_routing`: proxy or redirect requests for processes another
    /// node sequences.
    pub cluster_routing: ClusterRouting,
    /// `backup_dir`: where `POST /~node@1.0/backup` writes backups (unset:
    /// backups are refused).
    pub backup_dir: Option<PathBuf>,
    /// `max_body_bytes`: larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `max_json_depth`: deeper JSON bodies get 400.
    pub max_json_depth: usize,
    /// `max_requests_in_flight`: past this many requests being handled,
    /// new ones get 503 `busy` at once.
    pub max_requests_in_flight: usize,
    /// `scheduling_mode` (SPEC §5.4).
    pub scheduling_mode: SchedulingMode,
    /// `require_signed`: refuse messages without commitments.
    pub require_signed: bool,
    /// `verify_assignments`: verify the commitments of incoming messages.
    pub verify_assignments: bool,
    /// `paranoid_verify`: `next` also verifies each assignment's signature.
    pub paranoid_verify: bool,
    /// `chain_tip`: the block source of assignments.
    pub chain_tip: ChainTipKind,
    /// `scheduler_dedup`: the node-wide de-duplication policy (SPEC §5.5).
    pub scheduler_dedup: DedupPolicy,
    /// `schedule_timeout_ms`: the deadline of one schedule call.
    pub schedule_timeout_ms: u64,
    /// `schedule_page_max`: the most slots one GET schedule spans.
    pub schedule_page_max: u64,
    /// `aos2_legacy_aliases`: `Nonce` and `Message` tags in aos-2 output.
    pub aos2_legacy_aliases: bool,
    /// `validate_process_devices`: refuse processes naming unknown devices.
    pub validate_process_devices: bool,
    /// `scheduler_follow_hints`: a `?hint=<url>` target redirects there.
    pub scheduler_follow_hints: bool,
    /// `scheduler_location_url`: this node's URL in self-registered
    /// location records (default `http://<host>:<port>`).
    pub scheduler_location_url: Option<String>,
    /// `scheduler_location_ttl_ms`: time-to-live of self-registered records.
    pub scheduler_location_ttl_ms: u64,
    /// `scheduler_max_idle_ms`: an idle scheduler server stops after this
    /// long (0: never).
    pub scheduler_max_idle_ms: u64,
    /// `scheduler_mailbox_capacity`: requests one process's scheduler
    /// server holds before callers get `Busy`.
    pub scheduler_mailbox_capacity: usize,
    /// `scheduler_verify_queue_capacity`: signature checks that may wait
    /// for the verification pool before callers get `Busy`.
    pub scheduler_verify_queue_capacity: usize,
    /// `process_cache_frequency`: a snapshot every this many slots (≥ 1).
    pub process_cache_frequency: u64,
    /// `compute_timeout_ms`: how long one compute waiter waits.
    pub compute_timeout_ms: u64,
    /// `process_worker_max_idle_ms`: an idle worker snapshots and stops
    /// after this long (0: never).
    pub process_worker_max_idle_ms: u64,
    /// `process_worker_mailbox_capacity`: requests one worker holds before
    /// callers get `Busy`.
    pub process_worker_mailbox_capacity: usize,
    /// `process_max_live_workers`: the most process workers alive at once
    /// (0: no bound); past it the least recently used idle one retires.
    pub process_max_live_workers: usize,
    /// `push_max_depth`: how deep a push follows outboxes.
    pub push_max_depth: u64,
    /// `lua_max_instructions`: VM instructions per `lua@5.3a` call.
    pub lua_max_instructions: u64,
    /// `lua_max_memory_bytes`: Lua heap per process.
    pub lua_max_memory_bytes: usize,
    /// `enable_test_devices`: register `test-device@1.0` and accept
    /// processes naming it.
    pub enable_test_devices: bool,
    /// `test_device_panics`: `test-device@1.0` panics on `fail: "panic"`
    /// (needs `enable_test_devices`).
    pub test_device_panics: bool,
    /// `arbiters`: threads the scheduler servers, and separately the
    /// process workers, are spread over (default: the number of CPUs).
    pub arbiters: Option<usize>,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        let scheduler = SchedulerConfig::default();
        let process = ProcessConfig::default();
        NodeConfig {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8734,
            data_dir: PathBuf::from("./hb-data"),
            key_file: None,
            store: StoreKind::Sled,
            postgres_url: None,
            scheduler_key_file: None,
            node_id: None,
            advertised_url: None,
            lease_ttl_ms: DEFAULT_LEASE_TTL_MS,
            cluster_routing: ClusterRouting::Proxy,
            backup_dir: None,
            max_body_bytes: 10 * 1024 * 1024,
            max_json_depth: 64,
            max_requests_in_flight: 1024,
            scheduling_mode: SchedulingMode::LocalConfirmation,
            require_signed: false,
            verify_assignments: true,
            paranoid_verify: false,
            chain_tip: ChainTipKind::Local,
            scheduler_dedup: DedupPolicy::Off,
            schedule_timeout_ms: scheduler.schedule_timeout_ms,
            schedule_page_max: scheduler.schedule_page_max,
            aos2_legacy_aliases: scheduler.aos2_legacy_aliases,
            validate_process_devices: scheduler.validate_process_devices,
            scheduler_follow_hints: scheduler.follow_hints,
            scheduler_location_url: None,
            scheduler_location_ttl_ms: 604_800_000,
            scheduler_max_idle_ms: scheduler.max_idle_ms,
            scheduler_mailbox_capacity: scheduler.server_capacity,
            scheduler_verify_queue_capacity: scheduler.verify_queue_capacity,
            process_cache_frequency: 1,
            compute_timeout_ms: process.compute_timeout_ms,
            process_worker_max_idle_ms: process.worker_max_idle_ms,
            process_worker_mailbox_capacity: process.worker_capacity,
            process_max_live_workers: process.max_live_workers,
            push_max_depth: process.push_max_depth,
            lua_max_instructions: process.lua_limits.max_instructions,
            lua_max_memory_bytes: process.lua_limits.max_memory_bytes,
            enable_test_devices: false,
            test_device_panics: false,
            arbiters: None,
        }
    }
}

/// `value` ≥ `min`, else a refusal of `setting`.
fn at_least(setting: &str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(
            setting,
            format!("must be at least {min} (got {value})"),
        ));
    }
    Ok(())
}

/// `url` is an `http://` or `https://` URL with a host, else a refusal of
/// `setting`.
fn check_http_url(setting: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
        return Err(ConfigError::new(
            setting,
            format!("must be an http:// or https:// URL (got {url:?})"),
        ));
    }
    Ok(())
}

/// A database URL with its password (if any) replaced by `***`, for
/// errors, logs and `--print-config`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A `usize` as a `u64` (lossless on every platform Rust supports today;
/// saturating otherwise).
fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl NodeConfig {
    /// Loads the settings: defaults, then the TOML `file` text (if any),
    /// then the `HB_*` entries of `env`, then `flags` (setting name →
    /// value as typed), each layer overriding the one before; then
    /// [`validate`](Self::validate)s the result. Unknown keys in the file
    /// and `HB_*` variables that name no setting are refused, naming them;
    /// variables without the `HB_` prefix are ignored. Pure: it reads
    /// nothing but its arguments.
    pub fn load(
        file: Option<&str>,
        env: &std::collections::BTreeMap<String, String>,
        flags: &std::collections::BTreeMap<String, String>,
    ) -> Result<NodeConfig, ConfigError> {
        layers::load(file, env, flags)
    }

    /// The effective settings as TOML, one `name = value` line per setting
    /// in [`SETTINGS`] order, with derived defaults resolved (`key_file`,
    /// `scheduler_location_url`, `arbiters`). Holds no key material.
    /// Loading it back gives the same settings.
    pub fn to_toml(&self) -> String {
        layers::to_toml(self)
    }

    /// The key file: `key_file`, else `<data_dir>/node.key`.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("node.key"))
    }

    /// This node's URL for location records: `scheduler_location_url`, else
    /// `http://<host>:<port>`.
    pub fn location_url(&self) -> String {
        self.scheduler_location_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", SocketAddr::new(self.host, self.port)))
    }

    /// The arbiters: `arbiters`, else the number of CPUs (2 if unknown).
    pub fn effective_arbiters(&self) -> usize {
        self.arbiters
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Checks every value and the combinations; the first refusal names
    /// its setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must name a directory"));
        }
        if self
            .key_file
            .as_ref()
            .is_some_and(|k| k.as_os_str().is_empty())
        {
            return Err(ConfigError::new("key_file", "must name a file"));
        }
        self.validate_cluster()?;
        at_least("max_body_bytes", wide(self.max_body_bytes), 1)?;
        let max_depth = hb_message::json::JSON_MAX_DEPTH;
        if !(1..=max_depth).contains(&self.max_json_depth) {
            return Err(ConfigError::new(
                "max_json_depth",
                format!(
                    "must be between 1 and {max_depth} (got {})",
                    self.max_json_depth
                ),
            ));
        }
        at_least(
            "max_requests_in_flight",
            wide(self.max_requests_in_flight),
            1,
        )?;
        at_least("schedule_timeout_ms", self.schedule_timeout_ms, 1)?;
        at_least("schedule_page_max", self.schedule_page_max, 1)?;
        if let Some(url) = &self.scheduler_location_url {
            check_http_url("scheduler_location_url", url)?;
        }
        at_least(
            "scheduler_location_ttl_ms",
            self.scheduler_location_ttl_ms,
            1,
        )?;
        if i64::try_from(self.scheduler_location_ttl_ms).is_err() {
            return Err(ConfigError::new(
                "scheduler_location_ttl_ms",
                format!("must be at most {}", i64::MAX),
            ));
        }
        at_least(
            "scheduler_mailbox_capacity",
            wide(self.scheduler_mailbox_capacity),
            1,
        )?;
        at_least(
            "scheduler_verify_queue_capacity",
            wide(self.scheduler_verify_queue_capacity),
            1,
        )?;
        at_least("process_cache_frequency", self.process_cache_frequency, 1)?;
        at_least("compute_timeout_ms", self.compute_timeout_ms, 1)?;
        at_least(
            "process_worker_mailbox_capacity",
            wide(self.process_worker_mailbox_capacity),
            1,
        )?;
        at_least("lua_max_instructions", self.lua_max_instructions, 1)?;
        at_least("lua_max_memory_bytes", wide(self.lua_max_memory_bytes), 1)?;
        if let Some(n) = self.arbiters {
            at_least("arbiters", wide(n), 1)?;
        }
        if self.test_device_panics && !self.enable_test_devices {
            return Err(ConfigError::new(
                "test_device_panics",
                "needs enable_test_devices = true (test-device@1.0 is not registered without it)",
            ));
        }
        Ok(())
    }

    /// Whether the node runs in a cluster: on a shared PostgreSQL store,
    /// with leases (SPEC §11).
    pub fn is_cluster(&self) -> bool {
        self.store == StoreKind::Postgres
    }

    /// The cluster settings and their combinations (SPEC §11.4).
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        if self
            .scheduler_key_file
            .as_ref()
            .is_some_and(|k| k.as_os_str().is_empty())
        {
            return Err(ConfigError::new("scheduler_key_file", "must name a file"));
        }
        if let Some(url) = &self.advertised_url {
            check_http_url("advertised_url", url)?;
        }
        if let Some(id) = &self.node_id {
            let ok = !id.is_empty()
                && id.len() <= hb_scheduler::MAX_NODE_ID_LEN
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(ConfigError::new(
                    "node_id",
                    format!(
                        "must be 1 to {} letters, digits, '-', '_' or '.' (got {id:?})",
                        hb_scheduler::MAX_NODE_ID_LEN
                    ),
                ));
            }
        }
        if !self.is_cluster() {
            let only = |setting: &str| {
                ConfigError::new(
                    setting,
                    "is a cluster setting: it needs store = \"postgres\" (this node runs on an embedded store)",
                )
            };
            if self.postgres_url.is_some() {
                return Err(only("postgres_url"));
            }
            if self.node_id.is_some() {
                return Err(only("node_id"));
            }
            if self.advertised_url.is_some() {
                return Err(only("advertised_url"));
            }
            if self.lease_ttl_ms != DEFAULT_LEASE_TTL_MS {
                return Err(only("lease_ttl_ms"));
            }
            if self.cluster_routing != ClusterRouting::Proxy {
                return Err(only("cluster_routing"));
            }
            return Ok(());
        }
        match &self.postgres_url {
            None => {
                return Err(ConfigError::new(
                    "postgres_url",
                    "must be set when store = \"postgres\" (for example postgres://hb@127.0.0.1:5432/hb)",
                ))
            }
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                return Err(ConfigError::new(
                    "postgres_url",
                    format!("must be a postgres:// URL (got {:?})", redact_url(url)),
                ))
            }
            Some(_) => {}
        }
        at_least("lease_ttl_ms", self.lease_ttl_ms, MIN_LEASE_TTL_MS)?;
        if i64::try_from(self.lease_ttl_ms).is_err() {
            return Err(ConfigError::new(
                "lease_ttl_ms",
                format!("must be at most {}", i64::MAX),
            ));
        }
        if self.advertised_url.is_none() && self.host.is_unspecified() {
            return Err(ConfigError::new(
                "advertised_url",
                format!(
                    "must be set when host is {} (the other nodes cannot reach an unspecified address)",
                    self.host
                ),
            ));
        }
        Ok(())
    }

    /// The scheduler key of a cluster (`scheduler_key_file`), if set: it
    /// must exist (every node loads the same key; creating one here would
    /// give this node a schedule identity of its own).
    pub fn scheduler_key(&self) -> Result<Option<NodeKey>, ConfigError> {
        let Some(path) = &self.scheduler_key_file else {
            return Ok(None);
        };
        if !path.exists() {
            return Err(ConfigError::new(
                "scheduler_key_file",
                format!(
                    "{} does not exist: copy one key file to every node of the cluster (for example the first node's node.key)",
                    path.display()
                ),
            ));
        }
        NodeKey::load(path)
            .map(Some)
            .map_err(|e| ConfigError::new("scheduler_key_file", e.to_string()))
    }

    /// The scheduler's settings, from these. The device check of
    /// `validate_process_devices` is the node's (see
    /// [`NodeBuilder`](crate::NodeBuilder)).
    // `..default()` keeps the test-support fault hooks of SchedulerConfig
    // (present only with that feature) and any field added later at their
    // defaults; without them every field is listed, hence the allow.
    #[allow(clippy::needless_update)]
    pub fn scheduler_config(&self) -> SchedulerConfig {
        SchedulerConfig {
            mode: self.scheduling_mode,
            require_signed: self.require_signed,
            verify_assignments: self.verify_assignments,
            paranoid_verify: self.paranoid_verify,
            dedup: self.scheduler_dedup,
            schedule_timeout_ms: self.schedule_timeout_ms,
            schedule_page_max: self.schedule_page_max,
            aos2_legacy_aliases: self.aos2_legacy_aliases,
            validate_process_devices: self.validate_process_devices,
            follow_hints: self.scheduler_follow_hints,
            location_url: self.location_url(),
            // Validated to fit; saturating only for unvalidated embedder values.
            location_ttl_ms: i64::try_from(self.scheduler_location_ttl_ms).unwrap_or(i64::MAX),
            max_idle_ms: self.scheduler_max_idle_ms,
            server_capacity: self.scheduler_mailbox_capacity,
            verify_queue_capacity: self.scheduler_verify_queue_capacity,
            arbiters: self.effective_arbiters(),
            // In a cluster, leases (SPEC §11.2); a `node_id` left to its
            // default is derived from the node key by the node builder.
            node_id: if self.is_cluster() {
                self.node_id.clone()
            } else {
                None
            },
            lease_ttl_ms: self.lease_ttl_ms,
            ..SchedulerConfig::default()
        }
    }

    /// The process layer's settings, from these. Whether `test-device@1.0`
    /// is registered at all is `enable_test_devices`, which the node passes
    /// to `ProcessBuilder::test_devices`.
    // `..default()` keeps any field added later at its default until it is
    // mapped here; today every field is listed, hence the allow.
    #[allow(clippy::needless_update)]
    pub fn process_config(&self) -> ProcessConfig {
        ProcessConfig {
            snapshot_every: self.process_cache_frequency,
            compute_timeout_ms: self.compute_timeout_ms,
            worker_capacity: self.process_worker_mailbox_capacity,
            arbiters: self.effective_arbiters(),
            test_device_panics: self.test_device_panics,
            worker_max_idle_ms: self.process_worker_max_idle_ms,
            max_live_workers: self.process_max_live_workers,
            push_max_depth: self.push_max_depth,
            lua_limits: hb_process::lua::LuaLimits {
                max_instructions: self.lua_max_instructions,
                max_memory_bytes: self.lua_max_memory_bytes,
            },
            ..ProcessConfig::default()
        }
    }

    /// Makes the node's files ready, after [`validate`](Self::validate):
    /// loads the key file if it exists, creates `data_dir` if needed, then
    /// creates the key file (mode 0600) if it did not exist. An unreadable
    /// or corrupt key, or a key file whose directory is missing (other than
    /// `data_dir`), is refused as `key_file` before anything is created; a
    /// directory that cannot be created is refused as `data_dir`.
    pub fn prepare(&self) -> Result<NodeKey, ConfigError> {
        let key_path = self.key_path();
        let key_error = |e: hb_message::MessageError| ConfigError::new("key_file", e.to_string());
        let existing = if key_path.exists() {
            Some(NodeKey::load(&key_path).map_err(key_error)?)
        } else {
            match key_path.parent() {
                Some(dir)
                    if !dir.as_os_str().is_empty()
                        && dir != self.data_dir.as_path()
                        && !dir.is_dir() =>
                {
                    return Err(ConfigError::new(
                        "key_file",
                        format!(
                            "cannot create {}: the directory {} does not exist",
                            key_path.display(),
                            dir.display()
                        ),
                    ));
                }
                _ => None,
            }
        };
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            ConfigError::new(
                "data_dir",
                format!("cannot create {}: {e}", self.data_dir.display()),
            )
        })?;
        match existing {
            Some(key) => Ok(key),
            None => NodeKey::load_or_create(&key_path).map_err(key_error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_specs_and_validate() {
        let c = NodeConfig::default();
        assert_eq!(
            (c.host.to_string(), c.port),
            ("127.0.0.1".to_string(), 8734)
        );
        assert_eq!(c.key_path(), PathBuf::from("./hb-data/node.key"));
        assert_eq!(c.location_url(), "http://127.0.0.1:8734");
        assert!(!c.enable_test_devices && !c.test_device_panics);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn invalid_values_name_their_setting() {
        let cases: Vec<(&str, NodeConfig)> = vec![
            (
                "max_json_depth",
                NodeConfig {
                    max_json_depth: 0,
                    ..NodeConfig::default()
                },
            ),
            (
                "max_body_bytes",
                NodeConfig {
                    max_body_bytes: 0,
                    ..NodeConfig::default()
                },
            ),
            (
                "process_cache_frequency",
                NodeConfig {
                    process_cache_frequency: 0,
                    ..NodeConfig::default()
                },
            ),
            (
                "data_dir",
                NodeConfig {
                    data_dir: PathBuf::new(),
                    ..NodeConfig::default()
                },
            ),
            (
                "scheduler_location_url",
                NodeConfig {
                    scheduler_location_url: Some("ftp://x".into()),
                    ..NodeConfig::default()
                },
            ),
            (
                "scheduler_location_ttl_ms",
                NodeConfig {
                    scheduler_location_ttl_ms: u64::MAX,
                    ..NodeConfig::default()
                },
            ),
            (
                "scheduler_mailbox_capacity",
                NodeConfig {
                    scheduler_mailbox_capacity: 0,
                    ..NodeConfig::default()
                },
            ),
            (
                "arbiters",
                NodeConfig {
                    arbiters: Some(0),
                    ..NodeConfig::default()
                },
            ),
            (
                "test_device_panics",
                NodeConfig {
                    test_device_panics: true,
                    ..NodeConfig::default()
                },
            ),
        ];
        for (setting, c) in cases {
            let err = c.validate().unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
            assert!(err.to_string().contains(setting), "{err}");
        }
    }

    #[test]
    fn the_default_settings_give_the_libraries_defaults() {
        let node = NodeConfig::default();
        let s = node.scheduler_config();
        let d = SchedulerConfig::default();
        assert_eq!(
            (
                s.mode,
                s.require_signed,
                s.verify_assignments,
                s.paranoid_verify
            ),
            (
                d.mode,
                d.require_signed,
                d.verify_assignments,
                d.paranoid_verify
            )
        );
        assert_eq!(
            (s.dedup, s.schedule_timeout_ms, s.schedule_page_max),
            (d.dedup, d.schedule_timeout_ms, d.schedule_page_max)
        );
        assert_eq!(
            (
                s.aos2_legacy_aliases,
                s.validate_process_devices,
                s.follow_hints
            ),
            (
                d.aos2_legacy_aliases,
                d.validate_process_devices,
                d.follow_hints
            )
        );
        assert_eq!(
            (&s.location_url, s.location_ttl_ms, s.max_idle_ms),
            (&d.location_url, d.location_ttl_ms, d.max_idle_ms)
        );
        assert_eq!(
            (s.server_capacity, s.verify_queue_capacity, s.arbiters),
            (d.server_capacity, d.verify_queue_capacity, d.arbiters)
        );
        let p = node.process_config();
        let d = ProcessConfig::default();
        assert_eq!(
            (p.snapshot_every, p.compute_timeout_ms, p.worker_capacity),
            (d.snapshot_every, d.compute_timeout_ms, d.worker_capacity)
        );
        assert_eq!(
            (p.arbiters, p.test_device_panics, p.worker_max_idle_ms),
            (d.arbiters, d.test_device_panics, d.worker_max_idle_ms)
        );
        assert_eq!(
            (p.push_max_depth, p.lua_limits),
            (d.push_max_depth, d.lua_limits)
        );
    }

    #[test]
    fn every_setting_reaches_the_library_configs() {
        let node = NodeConfig {
            host: IpAddr::from([10, 0, 0, 1]),
            port: 9000,
            scheduling_mode: SchedulingMode::Aggressive,
            require_signed: true,
            verify_assignments: false,
            paranoid_verify: true,
            scheduler_dedup: DedupPolicy::SignedId,
            schedule_timeout_ms: 11,
            schedule_page_max: 12,
            aos2_legacy_aliases: false,
            validate_process_devices: false,
            scheduler_follow_hints: false,
            scheduler_location_ttl_ms: 13,
            scheduler_max_idle_ms: 14,
            scheduler_mailbox_capacity: 15,
            scheduler_verify_queue_capacity: 16,
            process_cache_frequency: 17,
            compute_timeout_ms: 18,
            process_worker_max_idle_ms: 19,
            process_worker_mailbox_capacity: 20,
            push_max_depth: 21,
            lua_max_instructions: 22,
            lua_max_memory_bytes: 23,
            enable_test_devices: true,
            test_device_panics: true,
            arbiters: Some(3),
            ..NodeConfig::default()
        };
        let s = node.scheduler_config();
        assert_eq!(s.mode, SchedulingMode::Aggressive);
        assert!(s.require_signed && !s.verify_assignments && s.paranoid_verify);
        assert_eq!(s.dedup, DedupPolicy::SignedId);
        assert_eq!((s.schedule_timeout_ms, s.schedule_page_max), (11, 12));
        assert!(!s.aos2_legacy_aliases && !s.validate_process_devices && !s.follow_hints);
        assert_eq!(s.location_url, "http://10.0.0.1:9000");
        assert_eq!((s.location_ttl_ms, s.max_idle_ms), (13, 14));
        assert_eq!((s.server_capacity, s.verify_queue_capacity), (15, 16));
        assert_eq!(s.arbiters, 3);
        let p = node.process_config();
        assert_eq!((p.snapshot_every, p.compute_timeout_ms), (17, 18));
        assert_eq!((p.worker_max_idle_ms, p.worker_capacity), (19, 20));
        assert_eq!(p.push_max_depth, 21);
        assert_eq!(
            (p.lua_limits.max_instructions, p.lua_limits.max_memory_bytes),
            (22, 23)
        );
        assert!(p.test_device_panics);
        assert_eq!(p.arbiters, 3);
        let url = NodeConfig {
            host: "::1".parse().expect("a literal address"),
            ..NodeConfig::default()
        };
        assert_eq!(url.location_url(), "http://[::1]:8734");
        let url = NodeConfig {
            scheduler_location_url: Some("https://hb.example".into()),
            ..NodeConfig::default()
        };
        assert_eq!(url.scheduler_config().location_url, "https://hb.example");
    }

    fn cluster() -> NodeConfig {
        NodeConfig {
            store: StoreKind::Postgres,
            postgres_url: Some("postgres://hb:secret@db:5432/hb".into()),
            ..NodeConfig::default()
        }
    }

    #[test]
    fn cluster_settings_are_refused_on_sled_and_checked_on_postgres() {
        assert_eq!(cluster().validate(), Ok(()));
        let cases: Vec<(&str, NodeConfig)> = vec![
            (
                "postgres_url",
                NodeConfig {
                    postgres_url: Some("postgres://x/y".into()),
                    ..NodeConfig::default()
                },
            ),
            (
                "node_id",
                NodeConfig {
                    node_id: Some("n1".into()),
                    ..NodeConfig::default()
                },
            ),
            (
                "advertised_url",
                NodeConfig {
                    advertised_url: Some("http://h:1".into()),
                    ..NodeConfig::default()
                },
            ),
            (
                "lease_ttl_ms",
                NodeConfig {
                    lease_ttl_ms: 1_000,
                    ..NodeConfig::default()
                },
            ),
            (
                "cluster_routing",
                NodeConfig {
                    cluster_routing: ClusterRouting::Redirect,
                    ..NodeConfig::default()
                },
            ),
            (
                "postgres_url",
                NodeConfig {
                    postgres_url: None,
                    ..cluster()
                },
            ),
            (
                "postgres_url",
                NodeConfig {
                    postgres_url: Some("mysql://u:pw@h/db".into()),
                    ..cluster()
                },
            ),
            (
                "lease_ttl_ms",
                NodeConfig {
                    lease_ttl_ms: MIN_LEASE_TTL_MS - 1,
                    ..cluster()
                },
            ),
            (
                "node_id",
                NodeConfig {
                    node_id: Some("a/b".into()),
                    ..cluster()
                },
            ),
            (
                "node_id",
                NodeConfig {
                    node_id: Some(String::new()),
                    ..cluster()
                },
            ),
            (
                "advertised_url",
                NodeConfig {
                    host: IpAddr::from([0, 0, 0, 0]),
                    ..cluster()
                },
            ),
            (
                "advertised_url",
                NodeConfig {
                    advertised_url: Some("10.0.0.1:8734".into()),
                    ..cluster()
                },
            ),
            (
                "scheduler_key_file",
                NodeConfig {
                    scheduler_key_file: Some(PathBuf::new()),
                    ..cluster()
                },
            ),
        ];
        for (setting, c) in cases {
            let err = c.validate().unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
            assert!(!err.reason.contains("secret"), "no password in {err}");
        }
        // Unspecified host with an advertised URL is fine.
        let c = NodeConfig {
            host: IpAddr::from([0, 0, 0, 0]),
            advertised_url: Some("http://10.0.0.1:8734".into()),
            ..cluster()
        };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn the_scheduler_config_holds_leases_only_in_a_cluster() {
        let sled = NodeConfig::default().scheduler_config();
        assert_eq!(sled.node_id, None);
        let c = NodeConfig {
            node_id: Some("n1".into()),
            lease_ttl_ms: 1_234,
            ..cluster()
        };
        let sc = c.scheduler_config();
        assert_eq!(sc.node_id.as_deref(), Some("n1"));
        assert_eq!(sc.lease_ttl_ms, 1_234);
        // Left to its default, the node builder derives it from the key.
        assert_eq!(cluster().scheduler_config().node_id, None);
    }

    #[test]
    fn database_passwords_never_show() {
        assert_eq!(
            redact_url("postgres://hb:secret@db:5432/hb?x=1"),
            "postgres://hb:***@db:5432/hb?x=1"
        );
        assert_eq!(redact_url("postgres://hb@db/hb"), "postgres://hb@db/hb");
        assert_eq!(redact_url("postgres://db/hb"), "postgres://db/hb");
        assert_eq!(redact_url("not a url"), "not a url");
        let shown = cluster().to_toml();
        assert!(
            shown.contains("postgres_url = \"postgres://hb:***@db:5432/hb\""),
            "{shown}"
        );
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn the_scheduler_key_must_exist_and_is_never_created() {
        let dir = tempfile::tempdir().expect("a temp dir");
        assert!(NodeConfig::default().scheduler_key().unwrap().is_none());
        let missing = dir.path().join("scheduler.key");
        let c = NodeConfig {
            scheduler_key_file: Some(missing.clone()),
            ..NodeConfig::default()
        };
        let err = c.scheduler_key().unwrap_err();
        assert_eq!(err.setting, "scheduler_key_file");
        assert!(!missing.exists(), "nothing created");
        let key = NodeKey::load_or_create(&missing).expect("a key");
        let loaded = c.scheduler_key().unwrap().expect("loaded");
        assert_eq!(loaded.address(), key.address());
        std::fs::write(&missing, "garbage").expect("written");
        assert_eq!(c.scheduler_key().unwrap_err().setting, "scheduler_key_file");
    }

    #[test]
    fn prepare_creates_the_data_dir_and_a_private_key() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let c = NodeConfig {
            data_dir: dir.path().join("a/b"),
            ..NodeConfig::default()
        };
        let key = c.prepare().expect("prepared");
        let again = NodeKey::load(&c.key_path()).expect("the key was saved");
        assert_eq!(key.address(), again.address());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(c.key_path())
                .expect("the key exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn prepare_refuses_an_uncreatable_data_dir_and_a_corrupt_key() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "not a directory").expect("written");
        let c = NodeConfig {
            data_dir: file.join("data"),
            ..NodeConfig::default()
        };
        assert_eq!(c.prepare().unwrap_err().setting, "data_dir");
        let c = NodeConfig {
            data_dir: dir.path().to_path_buf(),
            key_file: Some(file),
            ..NodeConfig::default()
        };
        let err = c.prepare().unwrap_err();
        assert_eq!(err.setting, "key_file", "{err}");
        assert!(err.to_string().contains("a-file"), "{err}");
        // A corrupt key or a key in a missing directory creates nothing.
        let fresh = dir.path().join("fresh");
        let c = NodeConfig {
            data_dir: fresh.clone(),
            key_file: Some(dir.path().join("a-file")),
            ..NodeConfig::default()
        };
        assert_eq!(c.prepare().unwrap_err().setting, "key_file");
        let c = NodeConfig {
            data_dir: fresh.clone(),
            key_file: Some(dir.path().join("missing/node.key")),
            ..NodeConfig::default()
        };
        assert_eq!(c.prepare().unwrap_err().setting, "key_file");
        assert!(!fresh.exists(), "no data dir was created");
    }
}
