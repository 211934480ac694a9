//! What a process definition says to its scheduler: that it is one, which
//! scheduler it names (with an optional `?hint=<url>`), its own dedup
//! policy, and the devices it needs. Plain functions over a [`Message`].

use hb_message::{Message, Value};

use crate::config::DedupPolicy;
use crate::error::{Check, SchedulerError};

/// Whether `m` is a process definition (`type` exactly `Process`).
pub fn is_process(m: &Message) -> bool {
    m.get_text("type") == Some("Process")
}

/// The scheduler a definition names: an address, and optionally a URL hint
/// (`<address>?hint=<url>`, SPEC §5.6.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerRef {
    /// The scheduler's address (compared with this node's, and looked up in
    /// the location cache).
    pub address: String,
    /// Where the scheduler says it can be reached, if the value carries a hint.
    pub hint: Option<String>,
}

impl SchedulerRef {
    /// Splits `<address>` or `<address>?hint=<url>`. Anything else after
    /// `?` is kept as part of the address (and so matches no address).
    pub fn parse(text: &str) -> SchedulerRef {
        if let Some((address, query)) = text.split_once('?') {
            if let Some(url) = query.strip_prefix("hint=").filter(|u| !u.is_empty()) {
                return SchedulerRef {
                    address: address.to_string(),
                    hint: Some(url.to_string()),
                };
            }
        }
        SchedulerRef {
            address: text.to_string(),
            hint: None,
        }
    }
}

/// The scheduler a definition names in `scheduler`, else in
/// `scheduler-location` (`missing-scheduler` if neither is text).
pub fn scheduler_of(process: &Message) -> Result<SchedulerRef, SchedulerError> {
    process
        .get_text("scheduler")
        .or_else(|| process.get_text("scheduler-location"))
        .map(SchedulerRef::parse)
        .ok_or_else(|| {
            SchedulerError::invalid(
                Check::MissingScheduler,
                "a Process must name its scheduler in `scheduler` or `scheduler-location`",
            )
        })
}

/// A process definition's own `scheduler-dedup`, if it sets one.
pub fn process_dedup(process: &Message) -> Result<Option<DedupPolicy>, SchedulerError> {
    match process.get("scheduler-dedup") {
        None => Ok(None),
        Some(v) => {
            let text = v.as_text().ok_or_else(|| {
                SchedulerError::invalid(Check::InvalidValue, "`scheduler-dedup` must be text")
            })?;
            text.parse()
                .map(Some)
                .map_err(|e: crate::config::UnknownSetting| {
                    SchedulerError::invalid(Check::InvalidValue, e.to_string())
                })
        }
    }
}

/// The device names a definition depends on: `execution-device`,
/// `scheduler-device`, `push-device` and every `device-stack` entry.
pub fn device_names(process: &Message) -> Vec<&str> {
    let mut names: Vec<&str> = ["execution-device", "scheduler-device", "push-device"]
        .iter()
        .filter_map(|k| process.get_text(k))
        .collect();
    match process.get("device-stack") {
        Some(Value::List(l)) => names.extend(l.iter().filter_map(Value::as_text)),
        Some(Value::Message(m)) => names.extend(m.iter().filter_map(|(_, v)| v.as_text())),
        _ => {}
    }
    names
}

/// Refuses a definition naming a device `known` does not know
/// (`unknown-device`, SPEC §5.6.2 with `validate_process_devices`).
pub fn check_devices(
    process: &Message,
    known: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<(), SchedulerError> {
    match device_names(process).into_iter().find(|n| !known(n)) {
        Some(unknown) => Err(SchedulerError::invalid(
            Check::UnknownDevice,
            format!("the process names device {unknown:?}, which this node does not have"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, ErrorCode};

    #[test]
    fn scheduler_values_split_into_address_and_hint() {
        assert_eq!(
            SchedulerRef::parse("addr?hint=http://h:1"),
            SchedulerRef {
                address: "addr".into(),
                hint: Some("http://h:1".into())
            }
        );
        assert_eq!(SchedulerRef::parse("addr").hint, None);
        // An empty hint or another query is no hint.
        assert_eq!(SchedulerRef::parse("addr?hint=").address, "addr?hint=");
        assert_eq!(SchedulerRef::parse("addr?x=1").hint, None);
    }

    #[test]
    fn the_scheduler_comes_from_scheduler_then_scheduler_location() {
        let p = msg! { "type" => "Process", "scheduler-location" => "b", "scheduler" => "a" };
        assert_eq!(scheduler_of(&p).unwrap().address, "a");
        let p = msg! { "type" => "Process", "scheduler-location" => "b?hint=u" };
        assert_eq!(scheduler_of(&p).unwrap().hint.as_deref(), Some("u"));
        let p = msg! { "type" => "Process", "scheduler" => 5 };
        assert_eq!(scheduler_of(&p).unwrap_err().code(), "missing-scheduler");
    }

    #[test]
    fn unknown_devices_are_named() {
        let p = msg! { "type" => "Process", "execution-device" => "a@1", "device-stack" => vec![hb_message::Value::from("b@1"), hb_message::Value::from("zzz@9")] };
        let err = check_devices(&p, &|n: &str| n != "zzz@9").unwrap_err();
        assert_eq!(err.code(), "unknown-device");
        assert!(err.to_string().contains("zzz@9"), "{err}");
        assert!(check_devices(&p, &|_: &str| true).is_ok());
    }

    #[test]
    fn dedup_must_be_a_known_text_policy() {
        assert_eq!(process_dedup(&msg! {}).unwrap(), None);
        assert_eq!(
            process_dedup(&msg! { "scheduler-dedup" => "signed-id" }).unwrap(),
            Some(DedupPolicy::SignedId)
        );
        assert_eq!(
            process_dedup(&msg! { "scheduler-dedup" => 1 })
                .unwrap_err()
                .code(),
            "invalid-value"
        );
    }
}
