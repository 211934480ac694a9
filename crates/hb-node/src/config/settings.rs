//! The list of settings: the one place that names each setting, its
//! default, its `HB_*` variable, its flag and its meaning, and how its
//! value is read and shown. The loader, the `hb serve` flags,
//! `--print-config` and docs/configuration.md (checked by a test) all
//! follow it.

use std::net::IpAddr;
use std::path::PathBuf;

use hb_scheduler::{DedupPolicy, SchedulingMode};

use super::{redact_url, ChainTipKind, ClusterRouting, NodeConfig, StoreKind};

/// The type of a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A whole number (TOML integer; digits in a variable or flag).
    Integer,
    /// `true` or `false` (TOML boolean; the word in a variable or flag). A
    /// flag given without a value means `true`.
    Boolean,
    /// Text (TOML string).
    Text,
}

/// One value as a layer gives it: typed from the TOML file, text from a
/// variable or a flag.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// From the file.
    Toml(&'a toml::Value),
    /// From an `HB_*` variable or a flag.
    Text(&'a str),
}

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// The name: the TOML key (snake case).
    pub name: &'static str,
    /// The default, as docs/configuration.md shows it.
    pub default: &'static str,
    /// The environment variable: `HB_` and the name in upper case.
    pub env: &'static str,
    /// The flag of `hb serve`: `--` and the name in kebab case.
    pub flag: &'static str,
    /// The type of its value.
    pub kind: ValueKind,
    /// What it does, in one line.
    pub description: &'static str,
    set: fn(&mut NodeConfig, Raw<'_>) -> Result<(), String>,
    show: fn(&NodeConfig) -> toml::Value,
}

impl Setting {
    /// Sets this setting in `config` from `raw`; the reason if the value
    /// has the wrong type or spelling (ranges are checked by
    /// [`NodeConfig::validate`]).
    pub(crate) fn set(&self, config: &mut NodeConfig, raw: Raw<'_>) -> Result<(), String> {
        (self.set)(config, raw)
    }

    /// This setting's effective value in `config`.
    pub fn value(&self, config: &NodeConfig) -> toml::Value {
        (self.show)(config)
    }

    /// The setting named `name`.
    pub fn named(name: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.name == name)
    }

    /// The setting whose variable is `var`.
    pub fn for_env(var: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.env == var)
    }
}

fn kind_of(value: &toml::Value) -> &'static str {
    value.type_str()
}

/// A whole number of type `T`.
fn number<T: TryFrom<i64>>(raw: Raw<'_>) -> Result<T, String> {
    let n = match raw {
        Raw::Toml(toml::Value::Integer(n)) => *n,
        Raw::Toml(v) => return Err(format!("must be an integer, not a {}", kind_of(v))),
        Raw::Text(t) => t
            .parse::<i64>()
            .map_err(|_| format!("must be a whole number, not {t:?}"))?,
    };
    T::try_from(n).map_err(|_| format!("{n} is out of range"))
}

fn boolean(raw: Raw<'_>) -> Result<bool, String> {
    match raw {
        Raw::Toml(toml::Value::Boolean(b)) => Ok(*b),
        Raw::Toml(v) => Err(format!("must be true or false, not a {}", kind_of(v))),
        Raw::Text("true") => Ok(true),
        Raw::Text("false") => Ok(false),
        Raw::Text(t) => Err(format!("must be true or false, not {t:?}")),
    }
}

fn text(raw: Raw<'_>) -> Result<String, String> {
    match raw {
        Raw::Toml(toml::Value::String(s)) => Ok(s.clone()),
        Raw::Toml(v) => Err(format!("must be a string, not a {}", kind_of(v))),
        Raw::Text(t) => Ok(t.to_string()),
    }
}

fn host(raw: Raw<'_>) -> Result<IpAddr, String> {
    let t = text(raw)?;
    t.parse()
        .map_err(|_| format!("must be an IP address such as 127.0.0.1 or ::, not {t:?}"))
}

fn scheduling_mode(raw: Raw<'_>) -> Result<SchedulingMode, String> {
    text(raw)?
        .parse()
        .map_err(|e: hb_scheduler::UnknownSetting| {
            format!(
                "unknown mode {:?}; allowed: {}",
                e.value,
                e.allowed.join(", ")
            )
        })
}

fn dedup(raw: Raw<'_>) -> Result<DedupPolicy, String> {
    text(raw)?
        .parse()
        .map_err(|e: hb_scheduler::UnknownSetting| {
            format!(
                "unknown policy {:?}; allowed: {}",
                e.value,
                e.allowed.join(", ")
            )
        })
}

fn chain_tip(raw: Raw<'_>) -> Result<ChainTipKind, String> {
    match text(raw)?.as_str() {
        "local" => Ok(ChainTipKind::Local),
        other => Err(format!(
            "unknown chain-tip source {other:?}; allowed: {}",
            ChainTipKind::ALLOWED.join(", ")
        )),
    }
}

fn store_kind(raw: Raw<'_>) -> Result<StoreKind, String> {
    match text(raw)?.as_str() {
        "sled" => Ok(StoreKind::Sled),
        "fjall" => Ok(StoreKind::Fjall),
        "postgres" => Ok(StoreKind::Postgres),
        other => Err(format!(
            "unknown store {other:?}; allowed: {}",
            StoreKind::ALLOWED.join(", ")
        )),
    }
}

fn cluster_routing(raw: Raw<'_>) -> Result<ClusterRouting, String> {
    match text(raw)?.as_str() {
        "proxy" => Ok(ClusterRouting::Proxy),
        "redirect" => Ok(ClusterRouting::Redirect),
        other => Err(format!(
            "unknown routing {other:?}; allowed: {}",
            ClusterRouting::ALLOWED.join(", ")
        )),
    }
}

/// Text where empty means unset.
fn optional_text(raw: Raw<'_>) -> Result<Option<String>, String> {
    let t = text(raw)?;
    Ok((!t.is_empty()).then_some(t))
}

fn dedup_str(p: DedupPolicy) -> &'static str {
    match p {
        DedupPolicy::Off => "off",
        DedupPolicy::SignedId => "signed-id",
    }
}

/// A number as a TOML integer. Loaded values fit (they were read as
/// `i64`); an embedder's larger value shows saturated.
fn int<T: TryInto<i64>>(n: T) -> toml::Value {
    toml::Value::Integer(n.try_into().unwrap_or(i64::MAX))
}

fn string(s: impl Into<String>) -> toml::Value {
    toml::Value::String(s.into())
}

fn path(p: &std::path::Path) -> toml::Value {
    string(p.to_string_lossy())
}

/// Every setting `hb serve` takes, in the order docs/configuration.md and
/// `--print-config` list them.
pub static SETTINGS: &[Setting] = &[
    Setting {
        name: "host",
        default: "127.0.0.1",
        env: "HB_HOST",
        flag: "--host",
        kind: ValueKind::Text,
        description: "The IP address the HTTP server binds.",
        set: |c, v| {
            c.host = host(v)?;
            Ok(())
        },
        show: |c| string(c.host.to_string()),
    },
    Setting {
        name: "port",
        default: "8734",
        env: "HB_PORT",
        flag: "--port",
        kind: ValueKind::Integer,
        description: "The TCP port the HTTP server binds (0: any free port).",
        set: |c, v| {
            c.port = number(v)?;
            Ok(())
        },
        show: |c| int(c.port),
    },
    Setting {
        name: "data_dir",
        default: "./hb-data",
        env: "HB_DATA_DIR",
        flag: "--data-dir",
        kind: ValueKind::Text,
        description: "The directory of the embedded store, sled or fjall (created if missing).",
        set: |c, v| {
            c.data_dir = PathBuf::from(text(v)?);
            Ok(())
        },
        show: |c| path(&c.data_dir),
    },
    Setting {
        name: "key_file",
        default: "<data_dir>/node.key",
        env: "HB_KEY_FILE",
        flag: "--key-file",
        kind: ValueKind::Text,
        description: "The node key (created with mode 0600 if missing).",
        set: |c, v| {
            c.key_file = Some(PathBuf::from(text(v)?));
            Ok(())
        },
        show: |c| path(&c.key_path()),
    },
    Setting {
        name: "store",
        default: "sled",
        env: "HB_STORE",
        flag: "--store",
        kind: ValueKind::Text,
        description: "The store backend: `sled` (embedded, in `data_dir`), `fjall` (embedded, in `data_dir`; about a sixth of sled's disk per assignment) or `postgres` (a cluster's shared database at `postgres_url`).",
        set: |c, v| {
            c.store = store_kind(v)?;
            Ok(())
        },
        show: |c| string(c.store.as_str()),
    },
    Setting {
        name: "postgres_url",
        default: "(unset)",
        env: "HB_POSTGRES_URL",
        flag: "--postgres-url",
        kind: ValueKind::Text,
        description: "The PostgreSQL database of a cluster, as a `postgres://` URL (only with `store = \"postgres\"`; a password shows as `***`).",
        set: |c, v| {
            c.postgres_url = optional_text(v)?;
            Ok(())
        },
        show: |c| string(c.postgres_url.as_deref().map(redact_url).unwrap_or_default()),
    },
    Setting {
        name: "scheduler_key_file",
        default: "(the node key)",
        env: "HB_SCHEDULER_KEY_FILE",
        flag: "--scheduler-key-file",
        kind: ValueKind::Text,
        description: "The key that signs assignments, shared by every node of a cluster; must exist.",
        set: |c, v| {
            c.scheduler_key_file = optional_text(v)?.map(PathBuf::from);
            Ok(())
        },
        show: |c| c.scheduler_key_file.as_deref().map_or_else(|| string(""), path),
    },
    Setting {
        name: "node_id",
        default: "(the node key's address)",
        env: "HB_NODE_ID",
        flag: "--node-id",
        kind: ValueKind::Text,
        description: "This node's name in a cluster: letters, digits, `-`, `_`, `.` (only with `store = \"postgres\"`).",
        set: |c, v| {
            c.node_id = optional_text(v)?;
            Ok(())
        },
        show: |c| string(c.node_id.clone().unwrap_or_default()),
    },
    Setting {
        name: "advertised_url",
        default: "http://<host>:<port>",
        env: "HB_ADVERTISED_URL",
        flag: "--advertised-url",
        kind: ValueKind::Text,
        description: "The URL the other nodes of a cluster reach this one at (only with `store = \"postgres\"`; required when `host` is unspecified).",
        set: |c, v| {
            c.advertised_url = optional_text(v)?;
            Ok(())
        },
        show: |c| string(c.advertised_url.clone().unwrap_or_default()),
    },
    Setting {
        name: "lease_ttl_ms",
        default: "5000",
        env: "HB_LEASE_TTL_MS",
        flag: "--lease-ttl-ms",
        kind: ValueKind::Integer,
        description: "How long a process lease lasts; renewed every third of it (≥ 300; only with `store = \"postgres\"`).",
        set: |c, v| {
            c.lease_ttl_ms = number(v)?;
            Ok(())
        },
        show: |c| int(c.lease_ttl_ms),
    },
    Setting {
        name: "cluster_routing",
        default: "proxy",
        env: "HB_CLUSTER_ROUTING",
        flag: "--cluster-routing",
        kind: ValueKind::Text,
        description: "A schedule request for a process another live node sequences is forwarded to it (`proxy`) or answered 307 (`redirect`).",
        set: |c, v| {
            c.cluster_routing = cluster_routing(v)?;
            Ok(())
        },
        show: |c| string(c.cluster_routing.as_str()),
    },
    Setting {
        name: "backup_dir",
        default: "(unset)",
        env: "HB_BACKUP_DIR",
        flag: "--backup-dir",
        kind: ValueKind::Text,
        description: "Where `POST /~node@1.0/backup` writes backups, each in a new subdirectory; unset: backups are refused.",
        set: |c, v| {
            let dir = text(v)?;
            c.backup_dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
            Ok(())
        },
        show: |c| c.backup_dir.as_deref().map_or_else(|| string(""), path),
    },
    Setting {
        name: "max_body_bytes",
        default: "10485760",
        env: "HB_MAX_BODY_BYTES",
        flag: "--max-body-bytes",
        kind: ValueKind::Integer,
        description: "Larger request bodies get 413 `body-too-large` (≥ 1).",
        set: |c, v| {
            c.max_body_bytes = number(v)?;
            Ok(())
        },
        show: |c| int(c.max_body_bytes),
    },
    Setting {
        name: "max_json_depth",
        default: "64",
        env: "HB_MAX_JSON_DEPTH",
        flag: "--max-json-depth",
        kind: ValueKind::Integer,
        description: "Deeper JSON request bodies get 400 (1 to 126).",
        set: |c, v| {
            c.max_json_depth = number(v)?;
            Ok(())
        },
        show: |c| int(c.max_json_depth),
    },
    Setting {
        name: "max_requests_in_flight",
        default: "1024",
        env: "HB_MAX_REQUESTS_IN_FLIGHT",
        flag: "--max-requests-in-flight",
        kind: ValueKind::Integer,
        description: "Requests handled at once; past it, new ones get 503 `busy` with `retry-after` (≥ 1).",
        set: |c, v| {
            c.max_requests_in_flight = number(v)?;
            Ok(())
        },
        show: |c| int(c.max_requests_in_flight),
    },
    Setting {
        name: "scheduling_mode",
        default: "local_confirmation",
        env: "HB_SCHEDULING_MODE",
        flag: "--scheduling-mode",
        kind: ValueKind::Text,
        description: "When a schedule call is answered: `aggressive`, `local_confirmation`, `remote_confirmation` or `disabled` (SPEC §5.4).",
        set: |c, v| {
            c.scheduling_mode = scheduling_mode(v)?;
            Ok(())
        },
        show: |c| string(c.scheduling_mode.as_str()),
    },
    Setting {
        name: "require_signed",
        default: "false",
        env: "HB_REQUIRE_SIGNED",
        flag: "--require-signed",
        kind: ValueKind::Boolean,
        description: "Refuse to schedule messages without commitments.",
        set: |c, v| {
            c.require_signed = boolean(v)?;
            Ok(())
        },
        show: |c| toml::Value::Boolean(c.require_signed),
    },
    Setting {
        name: "verify_assignments",
        default: "true",
        env: "HB_VERIFY_ASSIGNMENTS",
        flag: "--verify-assignments",
        kind: ValueKind::Boolean,
        description: "Verify the commitments of messages before scheduling them.",
        set: |c, v| {
            c.verify_assignments = boolean(v)?;
            Ok(())
        },
        show: |c| toml::Value::Boolean(c.verify_assignments),
    },
    Setting {
        name: "paranoid_verify",
        default: "false",
        env: "HB_PARANOID_VERIFY",
        flag: "--paranoid-verify",
        kind: ValueKind::Boolean,
        description: "Computation also verifies each assignment's signature.",
        set: |c, v| {
            c.paranoid_verify = boolean(v)?;
            Ok(())
        },
        show: |c| toml::Value::Boolean(c.paranoid_verify),
    },
    Setting {
        name: "chain_tip",
        default: "local",
        env: "HB_CHAIN_TIP",
        flag: "--chain-tip",
        kind: ValueKind::Text,
        description: "Where assignments' block height and hash come from; only `local` (height 0, zero hash) exists.",
        set: |c, v| {
            c.chain_tip = chain_tip(v)?;
            Ok(())
        },
        show: |c| string(c.chain_tip.as_str()),
    },
    Setting {
        name: "scheduler_dedup",
        default: "off",
        env: "HB_SCHEDULER_DEDUP",
        flag: "--scheduler-dedup",
        kind: ValueKind::Text,
        description: "De-duplication of re-posted signed messages: `off` or `signed-id` (SPEC §5.5).",
        set: |c, v| {
            c.scheduler_dedup = dedup(v)?;
            Ok(())
        },
        show: |c| string(dedup_str(c.scheduler_dedup)),
    },
    Setting {
        name: "schedule_timeout_ms",
        default: "30000",
        env: "HB_SCHEDULE_TIMEOUT_MS",
        flag: "--schedule-timeout-ms",
        kind: ValueKind::Integer,
        description: "Deadline of one schedule call, after which it gets 504 (≥ 1).",
        set: |c, v| {
            c.schedule_timeout_ms = number(v)?;
            Ok(())
        },
        show: |c| int(c.schedule_timeout_ms),
    },
    Setting {
        name: "schedule_page_max",
        default: "1000",
        env: "HB_SCHEDULE_PAGE_MAX",
        flag: "--schedule-page-max",
        kind: ValueKind::Integer,
        description: "The most slots one GET schedule returns (≥ 1).",
        set: |c, v| {
            c.schedule_page_max = number(v)?;
            Ok(())
        },
        show: |c| int(c.schedule_page_max),
    },
    Setting {
        name: "aos2_legacy_aliases",
        default: "true",
        env: "HB_AOS2_LEGACY_ALIASES",
        flag: "--aos2-legacy-aliases",
        kind: ValueKind::Boolean,
        description: "aos-2 schedule output also carries `Nonce` and `Message`.",
        set: |c, v| {
            c.aos2_legacy_aliases = boolean(v)?;
            Ok(())
        },
        show: |c| toml::Value::Boolean(c.aos2_legacy_aliases),
    },
    Setting {
        name: "validate_process_devices",
        default: "true",
        env: "HB_VALIDATE_PROCESS_DEVICES",
        flag: "--validate-process-devices",
        kind: ValueKind::Boolean,
        description: "Refuse process definitions that name devices this node lacks.",
        set: |c, v| {
            c.validate_process_devices = boolean(v)?;
            Ok(())
        },
        show: |c| toml::Value::Boolean(c.validate_process_devices),
    },
    Setting {
        name: "scheduler_follow_hints",
        default: "true",
        env: "HB_SCHEDULER_FOLLOW_HINTS",
        flag: "--scheduler-follow-hints",
        kind: ValueKind::Boolean,
        description: "A `?hint=<url>` in a target or a definition's `scheduler` routes there.",
        set: |c, v| {
            c.scheduler_follow_hints = boolean(v)?;
            Ok(())
        },
        show: |c| toml::Value::Boolean(c.scheduler_follow_hints),
    },
    Setting {
        name: "scheduler_location_url",
        default: "http://<host>:<port>",
        env: "HB_SCHEDULER_LOCATION_URL",
        flag: "--scheduler-location-url",
        kind: ValueKind::Text,
        description: "This node's public URL in the location records it signs.",
        set: |c, v| {
            c.scheduler_location_url = Some(text(v)?);
            Ok(())
        },
        show: |c| string(c.location_url()),
    },
    Setting {
        name: "scheduler_location_ttl_ms",
        default: "604800000",
        env: "HB_SCHEDULER_LOCATION_TTL_MS",
        flag: "--scheduler-location-ttl-ms",
        kind: ValueKind::Integer,
        description: "Time-to-live of the location records this node signs (≥ 1).",
        set: |c, v| {
            c.scheduler_location_ttl_ms = number(v)?;
            Ok(())
        },
        show: |c| int(c.scheduler_location_ttl_ms),
    },
    Setting {
        name: "scheduler_max_idle_ms",
        default: "600000",
        env: "HB_SCHEDULER_MAX_IDLE_MS",
        flag: "--scheduler-max-idle-ms",
        kind: ValueKind::Integer,
        description: "A process's scheduler server stops after this long without requests (0: never).",
        set: |c, v| {
            c.scheduler_max_idle_ms = number(v)?;
            Ok(())
        },
        show: |c| int(c.scheduler_max_idle_ms),
    },
    Setting {
        name: "scheduler_mailbox_capacity",
        default: "1024",
        env: "HB_SCHEDULER_MAILBOX_CAPACITY",
        flag: "--scheduler-mailbox-capacity",
        kind: ValueKind::Integer,
        description: "Requests one scheduler server holds before callers get 503 `busy` (≥ 1).",
        set: |c, v| {
            c.scheduler_mailbox_capacity = number(v)?;
            Ok(())
        },
        show: |c| int(c.scheduler_mailbox_capacity),
    },
    Setting {
        name: "scheduler_verify_queue_capacity",
        default: "16384",
        env: "HB_SCHEDULER_VERIFY_QUEUE_CAPACITY",
        flag: "--scheduler-verify-queue-capacity",
        kind: ValueKind::Integer,
        description: "Signature checks waiting for the verification pool before callers get 503 `busy` (≥ 1).",
        set: |c, v| {
            c.scheduler_verify_queue_capacity = number(v)?;
            Ok(())
        },
        show: |c| int(c.scheduler_verify_queue_capacity),
    },
    Setting {
        name: "process_cache_frequency",
        default: "1",
        env: "HB_PROCESS_CACHE_FREQUENCY",
        flag: "--process-cache-frequency",
        kind: ValueKind::Integer,
        description: "Computed states carry a snapshot every this many slots (≥ 1).",
        set: |c, v| {
            c.process_cache_frequency = number(v)?;
            Ok(())
        },
        show: |c| int(c.process_cache_frequency),
    },
    Setting {
        name: "compute_timeout_ms",
        default: "60000",
        env: "HB_COMPUTE_TIMEOUT_MS",
        flag: "--compute-timeout-ms",
        kind: ValueKind::Integer,
        description: "How long one compute request waits before 504 `compute-timeout` (≥ 1).",
        set: |c, v| {
            c.compute_timeout_ms = number(v)?;
            Ok(())
        },
        show: |c| int(c.compute_timeout_ms),
    },
    Setting {
        name: "process_worker_max_idle_ms",
        default: "300000",
        env: "HB_PROCESS_WORKER_MAX_IDLE_MS",
        flag: "--process-worker-max-idle-ms",
        kind: ValueKind::Integer,
        description: "A process worker snapshots and stops after this long without requests (0: never).",
        set: |c, v| {
            c.process_worker_max_idle_ms = number(v)?;
            Ok(())
        },
        show: |c| int(c.process_worker_max_idle_ms),
    },
    Setting {
        name: "process_worker_mailbox_capacity",
        default: "1024",
        env: "HB_PROCESS_WORKER_MAILBOX_CAPACITY",
        flag: "--process-worker-mailbox-capacity",
        kind: ValueKind::Integer,
        description: "Requests one process worker holds before callers get 503 `busy` (≥ 1).",
        set: |c, v| {
            c.process_worker_mailbox_capacity = number(v)?;
            Ok(())
        },
        show: |c| int(c.process_worker_mailbox_capacity),
    },
    Setting {
        name: "process_max_live_workers",
        default: "4096",
        env: "HB_PROCESS_MAX_LIVE_WORKERS",
        flag: "--process-max-live-workers",
        kind: ValueKind::Integer,
        description: "Process workers alive at once; past it the least recently used idle one snapshots and stops, or callers get 503 `busy` (0: no bound).",
        set: |c, v| {
            c.process_max_live_workers = number(v)?;
            Ok(())
        },
        show: |c| int(c.process_max_live_workers),
    },
    Setting {
        name: "push_max_depth",
        default: "4",
        env: "HB_PUSH_MAX_DEPTH",
        flag: "--push-max-depth",
        kind: ValueKind::Integer,
        description: "How many levels of outboxes one push delivers.",
        set: |c, v| {
            c.push_max_depth = number(v)?;
            Ok(())
        },
        show: |c| int(c.push_max_depth),
    },
    Setting {
        name: "lua_max_instructions",
        default: "100000000",
        env: "HB_LUA_MAX_INSTRUCTIONS",
        flag: "--lua-max-instructions",
        kind: ValueKind::Integer,
        description: "VM instructions one `lua@5.3a` call may run (≥ 1).",
        set: |c, v| {
            c.lua_max_instructions = number(v)?;
            Ok(())
        },
        show: |c| int(c.lua_max_instructions),
    },
    Setting {
        name: "lua_max_memory_bytes",
        default: "268435456",
        env: "HB_LUA_MAX_MEMORY_BYTES",
        flag: "--lua-max-memory-bytes",
        kind: ValueKind::Integer,
        description: "Bytes of Lua heap one `lua@5.3a` process may use (≥ 1).",
        set: |c, v| {
            c.lua_max_memory_bytes = number(v)?;
            Ok(())
        },
        show: |c| int(c.lua_max_memory_bytes),
    },
    Setting {
        name: "enable_test_devices",
        default: "false",
        env: "HB_ENABLE_TEST_DEVICES",
        flag: "--enable-test-devices",
        kind: ValueKind::Boolean,
        description: "Register `test-device@1.0` and accept processes that name it.",
        set: |c, v| {
            c.enable_test_devices = boolean(v)?;
            Ok(())
        },
        show: |c| toml::Value::Boolean(c.enable_test_devices),
    },
    Setting {
        name: "test_device_panics",
        default: "false",
        env: "HB_TEST_DEVICE_PANICS",
        flag: "--test-device-panics",
        kind: ValueKind::Boolean,
        description: "`test-device@1.0` panics on `fail: \"panic\"` (needs `enable_test_devices`).",
        set: |c, v| {
            c.test_device_panics = boolean(v)?;
            Ok(())
        },
        show: |c| toml::Value::Boolean(c.test_device_panics),
    },
    Setting {
        name: "arbiters",
        default: "number of CPUs",
        env: "HB_ARBITERS",
        flag: "--arbiters",
        kind: ValueKind::Integer,
        description: "Threads the scheduler servers, and separately the process workers, run on (≥ 1).",
        set: |c, v| {
            c.arbiters = Some(number(v)?);
            Ok(())
        },
        show: |c| int(c.effective_arbiters()),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The value as plain text, as the defaults column shows it.
    fn plain(v: &toml::Value) -> String {
        match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    #[test]
    fn names_are_unique_and_variables_and_flags_follow_from_them() {
        let mut names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len(), "duplicate setting names");
        for s in SETTINGS {
            assert!(
                s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is snake case",
                s.name
            );
            assert_eq!(s.env, format!("HB_{}", s.name.to_ascii_uppercase()));
            assert_eq!(s.flag, format!("--{}", s.name.replace('_', "-")));
            assert!(!s.description.is_empty() && !s.description.contains('\n'));
            assert_eq!(Setting::named(s.name).map(|f| f.env), Some(s.env));
            assert_eq!(Setting::for_env(s.env).map(|f| f.name), Some(s.name));
        }
    }

    #[test]
    fn the_shown_defaults_are_the_default_config() {
        let d = NodeConfig::default();
        for s in SETTINGS {
            let shown = plain(&s.value(&d));
            match s.name {
                "key_file" => assert_eq!(shown, "./hb-data/node.key"),
                "backup_dir" | "postgres_url" | "scheduler_key_file" | "node_id"
                | "advertised_url" => assert_eq!(shown, "", "{}", s.name),
                "scheduler_location_url" => assert_eq!(shown, "http://127.0.0.1:8734"),
                "arbiters" => assert_eq!(shown, d.effective_arbiters().to_string()),
                _ => assert_eq!(shown, s.default, "the default of {}", s.name),
            }
        }
    }

    #[test]
    fn setting_each_shown_value_back_changes_nothing() {
        let d = NodeConfig::default();
        for s in SETTINGS {
            let shown = s.value(&d);
            let mut from_file = d.clone();
            s.set(&mut from_file, Raw::Toml(&shown))
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
            assert_eq!(s.value(&from_file), shown, "{}", s.name);
            let mut from_text = d.clone();
            s.set(&mut from_text, Raw::Text(&plain(&shown)))
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
            assert_eq!(s.value(&from_text), shown, "{}", s.name);
        }
    }

    #[test]
    fn values_of_the_wrong_type_or_spelling_are_refused() {
        let mut c = NodeConfig::default();
        let port = Setting::named("port").expect("port is a setting");
        assert!(port
            .set(&mut c, Raw::Toml(&string("8734")))
            .unwrap_err()
            .contains("integer"));
        assert!(port.set(&mut c, Raw::Text("http")).is_err());
        assert!(port.set(&mut c, Raw::Text("70000")).is_err());
        assert!(port.set(&mut c, Raw::Text("-1")).is_err());
        let host = Setting::named("host").expect("host is a setting");
        assert!(host.set(&mut c, Raw::Text("localhost:80")).is_err());
        let flag = Setting::named("require_signed").expect("a setting");
        assert!(flag.set(&mut c, Raw::Text("yes")).is_err());
        assert!(flag.set(&mut c, Raw::Toml(&int(1))).is_err());
        let mode = Setting::named("scheduling_mode").expect("a setting");
        let err = mode.set(&mut c, Raw::Text("eager")).unwrap_err();
        assert!(err.contains("local_confirmation"), "{err}");
        let tip = Setting::named("chain_tip").expect("a setting");
        assert!(tip.set(&mut c, Raw::Text("arweave")).is_err());
        let dedup = Setting::named("scheduler_dedup").expect("a setting");
        assert!(dedup.set(&mut c, Raw::Text("on")).is_err());
        assert_eq!(c, NodeConfig::default(), "refused values change nothing");
    }
}
