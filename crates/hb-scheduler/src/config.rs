//! Scheduler settings (SPEC §5.4, §5.5, §5.6, §7.1).

use std::fmt;
use std::str::FromStr;

/// When a schedule call is answered (SPEC §5.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SchedulingMode {
    /// Answer once signed; write afterwards, in slot order.
    Aggressive,
    /// Answer once the assignment is durable (group commit). The default.
    #[default]
    LocalConfirmation,
    /// As local confirmation, then after the uploader's attempt returns.
    RemoteConfirmation,
    /// Refuse to schedule; reads still work.
    Disabled,
}

impl SchedulingMode {
    /// Every accepted spelling, for error messages.
    pub const ALLOWED: [&'static str; 4] = [
        "aggressive",
        "local_confirmation",
        "remote_confirmation",
        "disabled",
    ];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulingMode::Aggressive => "aggressive",
            SchedulingMode::LocalConfirmation => "local_confirmation",
            SchedulingMode::RemoteConfirmation => "remote_confirmation",
            SchedulingMode::Disabled => "disabled",
        }
    }
}

impl fmt::Display for SchedulingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown scheduling mode or dedup policy in configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {setting} {value:?}; allowed: {}", allowed.join(", "))]
pub struct UnknownSetting {
    /// The setting's name.
    pub setting: &'static str,
    /// The value given.
    pub value: String,
    /// The allowed values.
    pub allowed: Vec<&'static str>,
}

impl FromStr for SchedulingMode {
    type Err = UnknownSetting;
    fn from_str(s: &str) -> Result<SchedulingMode, UnknownSetting> {
        Ok(match s {
            "aggressive" => SchedulingMode::Aggressive,
            "local_confirmation" => SchedulingMode::LocalConfirmation,
            "remote_confirmation" => SchedulingMode::RemoteConfirmation,
            "disabled" => SchedulingMode::Disabled,
            _ => {
                return Err(UnknownSetting {
                    setting: "scheduling_mode",
                    value: s.to_string(),
                    allowed: SchedulingMode::ALLOWED.to_vec(),
                })
            }
        })
    }
}

/// De-duplication of re-posted signed messages (SPEC §5.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DedupPolicy {
    /// Re-posting gives a new slot, as in HyperBEAM. The default.
    #[default]
    Off,
    /// A signed message already in the process's dedup index is refused.
    SignedId,
}

impl FromStr for DedupPolicy {
    type Err = UnknownSetting;
    fn from_str(s: &str) -> Result<DedupPolicy, UnknownSetting> {
        match s {
            "off" => Ok(DedupPolicy::Off),
            "signed-id" => Ok(DedupPolicy::SignedId),
            _ => Err(UnknownSetting {
                setting: "scheduler_dedup",
                value: s.to_string(),
                allowed: vec!["off", "signed-id"],
            }),
        }
    }
}

/// Every scheduler setting, with SPEC's defaults.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// `scheduling_mode`.
    pub mode: SchedulingMode,
    /// `require_signed`: refuse messages without commitments.
    pub require_signed: bool,
    /// `verify_assignments`: verify incoming commitments.
    pub verify_assignments: bool,
    /// `scheduler_dedup`: the node-wide dedup policy.
    pub dedup: DedupPolicy,
    /// `schedule_timeout_ms`: the deadline of one schedule call.
    pub schedule_timeout_ms: u64,
    /// Requests one process's server may hold at once before callers get `Busy`.
    pub server_capacity: usize,
    /// `schedule_page_max`: the most slots a GET schedule spans.
    pub schedule_page_max: u64,
    /// `aos2_legacy_aliases`: `Nonce` and `Message` tags in aos-2 output.
    pub aos2_legacy_aliases: bool,
    /// Number of arbiters (threads) scheduler servers are spread over.
    pub arbiters: usize,
    /// `paranoid_verify`: `next` also verifies each assignment's signature.
    pub paranoid_verify: bool,
    /// `validate_process_devices`: refuse processes naming unknown devices.
    pub validate_process_devices: bool,
    /// This node's public URL, for self-registered location records
    /// (`http://<host>:<port>` by default, set by the node).
    pub location_url: String,
    /// `scheduler_location_ttl_ms`: time-to-live of self-registered records.
    pub location_ttl_ms: i64,
    /// `scheduler_follow_hints`: a `?hint=<url>` in a target or in a
    /// definition's `scheduler` value redirects to that URL (SPEC §5.6.7).
    pub follow_hints: bool,
    /// `scheduler_max_idle_ms`: a server without requests for this long
    /// stops and deregisters; the next request restarts it from the store
    /// (0: never).
    pub max_idle_ms: u64,
    /// Signature checks that may wait for the verification pool before
    /// callers get `Busy`.
    pub verify_queue_capacity: usize,
    /// `node_id`: this node's name in a cluster sharing one store (SPEC
    /// §11.2). When set, a server takes its process's lease before loading
    /// the head, every assignment batch is fenced by it, and a keeper
    /// thread renews it; a process whose lease another node holds gives
    /// `NotOwner`. `None` (the default): no leases, one node owns its store.
    pub node_id: Option<String>,
    /// `lease_ttl_ms`: how long a taken or renewed lease lasts; renewed
    /// every third of it (only with `node_id`; at least 3).
    pub lease_ttl_ms: u64,
    /// Fault injection for tests: a server whose incoming message carries
    /// this key panics while handling it, at [`fault_panic_point`](Self::fault_panic_point).
    #[cfg(feature = "test-support")]
    pub fault_panic_key: Option<String>,
    /// Where the injected panic happens.
    #[cfg(feature = "test-support")]
    pub fault_panic_point: FaultPoint,
}

/// Where an injected panic happens in a server's handling of a request
/// (test support; the hooks compile to nothing without the feature).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FaultPoint {
    /// Before the sequencer assigns: nothing changed.
    #[default]
    BeforeAssign,
    /// After the sequencer assigned and signed, before the write is handed
    /// to group commit: the slot is not stored and is reused after restart.
    AfterAssign,
    /// After the batch was handed to group commit: the slot is stored and
    /// kept after restart.
    AfterSubmit,
}

impl Default for SchedulerConfig {
    fn default() -> SchedulerConfig {
        SchedulerConfig {
            mode: SchedulingMode::LocalConfirmation,
            require_signed: false,
            verify_assignments: true,
            dedup: DedupPolicy::Off,
            schedule_timeout_ms: 30_000,
            server_capacity: 1024,
            schedule_page_max: 1000,
            aos2_legacy_aliases: true,
            arbiters: std::thread::available_parallelism().map_or(2, |n| n.get()),
            paranoid_verify: false,
            validate_process_devices: true,
            location_url: "http://127.0.0.1:8734".into(),
            location_ttl_ms: 604_800_000,
            follow_hints: true,
            max_idle_ms: 600_000,
            verify_queue_capacity: 16_384,
            node_id: None,
            lease_ttl_ms: 5_000,
            #[cfg(feature = "test-support")]
            fault_panic_key: None,
            #[cfg(feature = "test-support")]
            fault_panic_point: FaultPoint::BeforeAssign,
        }
    }
}

/// The longest node id accepted (it is stored in every lease record).
pub const MAX_NODE_ID_LEN: usize = 256;

impl SchedulerConfig {
    /// Checks the settings that can be wrong on their own: with `node_id`
    /// set, a non-empty id of at most [`MAX_NODE_ID_LEN`] bytes and a
    /// `lease_ttl_ms` of at least 3. Returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(id) = &self.node_id {
            if id.is_empty() || id.len() > MAX_NODE_ID_LEN {
                return Err(format!(
                    "node_id must be 1 to {MAX_NODE_ID_LEN} bytes, got {}",
                    id.len()
                ));
            }
            if self.lease_ttl_ms < 3 {
                return Err(format!(
                    "lease_ttl_ms must be at least 3 (renewed every third), got {}",
                    self.lease_ttl_ms
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_unknown_modes_list_the_allowed_ones() {
        for m in SchedulingMode::ALLOWED {
            assert_eq!(m.parse::<SchedulingMode>().unwrap().as_str(), m);
        }
        let err = "eager".parse::<SchedulingMode>().unwrap_err();
        assert!(err.to_string().contains("local_confirmation"), "{err}");
        assert!("Aggressive".parse::<SchedulingMode>().is_err());
    }

    #[test]
    fn dedup_policies_parse() {
        assert_eq!(
            "signed-id".parse::<DedupPolicy>().unwrap(),
            DedupPolicy::SignedId
        );
        assert!("on".parse::<DedupPolicy>().is_err());
    }

    #[test]
    fn lease_settings_are_checked_only_with_a_node_id() {
        let mut c = SchedulerConfig {
            lease_ttl_ms: 0,
            ..SchedulerConfig::default()
        };
        assert_eq!(c.validate(), Ok(()), "no node id: leases are off");
        c.node_id = Some("node-a".into());
        assert!(c.validate().unwrap_err().contains("lease_ttl_ms"));
        c.lease_ttl_ms = 3;
        assert_eq!(c.validate(), Ok(()));
        c.node_id = Some(String::new());
        assert!(c.validate().unwrap_err().contains("node_id"));
        c.node_id = Some("x".repeat(MAX_NODE_ID_LEN + 1));
        assert!(c.validate().unwrap_err().contains("node_id"));
    }
}
