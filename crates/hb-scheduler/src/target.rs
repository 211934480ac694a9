//! Which process a scheduling request is for (SPEC §5.6.1).

use hb_message::{is_id_shaped, Id, Message};

use crate::definition::is_process;
use crate::error::{Check, SchedulerError};

/// Where the message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A process ID.
    Process(Id),
    /// A `?hint=<url>` target: redirect there while hints are followed.
    Hint {
        /// The process ID part.
        pid: String,
        /// The hinted scheduler URL.
        url: String,
    },
}

/// The sources of SPEC §5.6.1, in their order of precedence.
#[derive(Clone, Debug, Default)]
pub struct TargetSources<'a> {
    /// The message to schedule (`request.body`, else the request).
    pub message: Option<&'a Message>,
    /// The request's `target`.
    pub request_target: Option<&'a str>,
    /// id(base.process, all), when called through `process@1.0`.
    pub base_process: Option<Id>,
    /// id(base, all), when the base itself has `type: Process`.
    pub base_is_process: Option<Id>,
    /// `scheduler_follow_hints`: a `?hint=<url>` target redirects there.
    /// When off, the hint is dropped and the ID part is the target.
    pub follow_hints: bool,
}

/// Finds the target: the message itself if it is a `Process`; else its
/// `target`, the request's `target` or the base's process, which must agree
/// (`target-mismatch`); else the base if it is a process.
pub fn resolve_target(src: &TargetSources<'_>) -> Result<Target, SchedulerError> {
    if let Some(m) = src.message.filter(|m| is_process(m)) {
        return Ok(Target::Process(m.id_all()?));
    }
    let message_target = match src.message.and_then(|m| m.get("target")) {
        None => None,
        Some(v) => Some(v.as_text().ok_or_else(|| {
            SchedulerError::invalid(Check::InvalidTarget, "the message's `target` is not text")
        })?),
    };
    let candidates: Vec<(&str, Target)> = [
        (
            "message target",
            message_target
                .map(|t| parse_target_with(t, src.follow_hints))
                .transpose()?,
        ),
        (
            "request target",
            src.request_target
                .map(|t| parse_target_with(t, src.follow_hints))
                .transpose()?,
        ),
        ("base process", src.base_process.map(Target::Process)),
    ]
    .into_iter()
    .filter_map(|(name, t)| t.map(|t| (name, t)))
    .collect();
    if let Some((first_name, first)) = candidates.first() {
        if let Some((other_name, _)) = candidates
            .iter()
            .find(|(_, t)| pid_text(t) != pid_text(first))
        {
            return Err(SchedulerError::invalid(
                Check::TargetMismatch,
                format!("the {first_name} and the {other_name} name different processes"),
            ));
        }
        return Ok(first.clone());
    }
    if let Some(pid) = src.base_is_process {
        return Ok(Target::Process(pid));
    }
    Err(SchedulerError::invalid(
        Check::MissingTarget,
        "no target: the message is not a Process and names no `target`",
    ))
}

fn pid_text(t: &Target) -> String {
    match t {
        Target::Process(id) => id.to_human(),
        Target::Hint { pid, .. } => pid.clone(),
    }
}

/// Parses `<pid>` or `<pid>?hint=<url>`, following hints.
pub fn parse_target(text: &str) -> Result<Target, SchedulerError> {
    parse_target_with(text, true)
}

/// Parses `<pid>` or `<pid>?hint=<url>`; with `follow_hints` off the hint is
/// dropped and the ID part must be an ID.
pub fn parse_target_with(text: &str, follow_hints: bool) -> Result<Target, SchedulerError> {
    let mut text = text;
    if let Some((pid, query)) = text.split_once('?') {
        if let Some(url) = query.strip_prefix("hint=").filter(|u| !u.is_empty()) {
            if follow_hints {
                return Ok(Target::Hint {
                    pid: pid.to_string(),
                    url: url.to_string(),
                });
            }
            text = pid;
        }
    }
    if !is_id_shaped(text) {
        return Err(SchedulerError::invalid(
            Check::InvalidTarget,
            format!("target {text:?} is not a 43-character base64url ID"),
        ));
    }
    Id::parse(text)
        .map(Target::Process)
        .map_err(|e| SchedulerError::invalid(Check::InvalidTarget, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, ErrorCode};

    fn pid(n: &[u8]) -> Id {
        Id::hash(n)
    }

    #[test]
    fn a_process_targets_itself() {
        let p = msg! { "type" => "Process", "target" => pid(b"x").to_human() };
        let src = TargetSources {
            message: Some(&p),
            ..Default::default()
        };
        assert_eq!(
            resolve_target(&src).unwrap(),
            Target::Process(p.id_all().unwrap())
        );
    }

    #[test]
    fn message_then_request_then_base_targets_must_agree() {
        let a = pid(b"a").to_human();
        let m = msg! { "target" => a.clone() };
        let src = TargetSources {
            message: Some(&m),
            request_target: Some(&a),
            ..Default::default()
        };
        assert_eq!(resolve_target(&src).unwrap(), Target::Process(pid(b"a")));
        let b = pid(b"b").to_human();
        let src = TargetSources {
            message: Some(&m),
            request_target: Some(&b),
            ..Default::default()
        };
        assert_eq!(resolve_target(&src).unwrap_err().code(), "target-mismatch");
        let src = TargetSources {
            message: Some(&m),
            base_process: Some(pid(b"c")),
            ..Default::default()
        };
        assert_eq!(resolve_target(&src).unwrap_err().code(), "target-mismatch");
    }

    #[test]
    fn the_base_process_is_the_last_resort() {
        let m = msg! { "action" => "x" };
        let src = TargetSources {
            message: Some(&m),
            base_is_process: Some(pid(b"p")),
            ..Default::default()
        };
        assert_eq!(resolve_target(&src).unwrap(), Target::Process(pid(b"p")));
        let src = TargetSources {
            message: Some(&m),
            ..Default::default()
        };
        assert_eq!(resolve_target(&src).unwrap_err().code(), "missing-target");
    }

    #[test]
    fn malformed_targets_are_invalid() {
        for bad in ["short", "", &"!".repeat(43)] {
            assert_eq!(
                parse_target(bad).unwrap_err().code(),
                "invalid-target",
                "{bad:?}"
            );
        }
        let m = msg! { "target" => 5 };
        let src = TargetSources {
            message: Some(&m),
            ..Default::default()
        };
        assert_eq!(resolve_target(&src).unwrap_err().code(), "invalid-target");
    }

    #[test]
    fn hints_carry_the_url() {
        let t = parse_target(&format!("{}?hint=http://other:8734", pid(b"h"))).unwrap();
        assert!(matches!(t, Target::Hint { url, .. } if url == "http://other:8734"));
    }

    #[test]
    fn without_following_hints_the_id_part_is_the_target() {
        let text = format!("{}?hint=http://other:8734", pid(b"h"));
        assert_eq!(
            parse_target_with(&text, false).unwrap(),
            Target::Process(pid(b"h"))
        );
        assert_eq!(
            parse_target_with("short?hint=http://x", false)
                .unwrap_err()
                .code(),
            "invalid-target"
        );
    }
}
