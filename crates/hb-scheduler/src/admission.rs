//! SPEC §5.6.2's admission checks 2–7 as a plain state machine, without
//! I/O and without actix.
//!
//! The checks need three facts from outside: a signature verdict (check 5),
//! the URL of a remote scheduler (check 6, remote processes) and whether a
//! process has a schedule here (check 6, other messages). [`Admission`] asks
//! for each by returning a [`Need`]; the caller fetches it however it likes
//! (a verification pool, a blocking store read) and feeds it back. The
//! order of the checks is therefore fixed here and tested here, and the
//! async shell in [`Scheduler`](crate::Scheduler) only fetches.
//!
//! Checks 8–10 (capacity, dedup, assignment) belong to the process's server
//! ([`ServerCore`](crate::core::ServerCore)).

use std::sync::Arc;

use hb_message::{Id, Message, Verification};

use crate::config::{DedupPolicy, SchedulerConfig, SchedulingMode};
use crate::definition::{check_devices, is_process, process_dedup, scheduler_of};
use crate::error::{Check, SchedulerError};
use crate::target::{resolve_target, Target, TargetSources};

/// A predicate saying whether a device name is registered.
pub type DeviceCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One scheduling request, after the body was decoded (check 1).
#[derive(Clone, Default)]
pub struct ScheduleRequest {
    /// The message to schedule.
    pub message: Message,
    /// The request's `target`, if any.
    pub request_target: Option<String>,
    /// id(base.process, all), when called through `process@1.0`.
    pub base_process: Option<Id>,
    /// id(base, all), when the base is itself a process.
    pub base_is_process: Option<Id>,
    /// Internal idempotent call (push): a repeat returns the original.
    pub idempotent: bool,
}

impl std::fmt::Debug for ScheduleRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduleRequest")
            .field("message", &self.message)
            .field("request_target", &self.request_target)
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

/// What the node knows that the checks depend on.
#[derive(Clone)]
pub struct AdmissionPolicy {
    /// The node's settings.
    pub config: Arc<SchedulerConfig>,
    /// This node's scheduler address.
    pub node_address: String,
    /// The device check of `validate_process_devices`, if the node has one.
    pub known_device: Option<DeviceCheck>,
}

/// A fact the checks need before they can go on.
#[derive(Debug, Clone)]
pub enum Need {
    /// Check 5: verify this message (selector `all`); answer with
    /// [`Admission::verified`].
    Verification(Arc<Message>),
    /// Check 6, a process naming another scheduler: the URL of a fresh
    /// location record of this address; answer with [`Admission::located`].
    Location(String),
    /// Check 6, any other message: whether this process has a schedule (or
    /// a live server that assigned slot 0) here; answer with
    /// [`Admission::known`].
    Schedule(Id),
}

/// The outcome of one [`Admission::step`].
#[derive(Debug)]
pub enum Step {
    /// A fact must be fetched and fed back first.
    Need(Need),
    /// Checks 2–7 passed.
    Admitted(Admitted),
}

/// A message that passed checks 2–7, ready for its server.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The process.
    pub pid: Id,
    /// The message, restricted to its committed keys.
    pub body: Message,
    /// Whether it carries at least one commitment.
    pub signed: bool,
    /// Whether it is the process's definition (a registration).
    pub registration: bool,
    /// The definition's own dedup policy, for a registration that sets one.
    pub dedup: Option<DedupPolicy>,
    /// Internal idempotent call.
    pub idempotent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Verify,
    Locate,
    Mode,
}

/// The admission of one request: checks 2–4 on [`begin`](Admission::begin),
/// then 5–7 through [`step`](Admission::step).
#[derive(Debug)]
pub struct Admission<'p> {
    policy: &'p AdmissionPolicy,
    /// Everything but the body, which is held apart (shared with the
    /// verification pool, not copied) until it is admitted.
    admitted: Admitted,
    body: Arc<Message>,
    stage: Stage,
    verdict: Option<Verification>,
    location: Option<Option<String>>,
    known: Option<bool>,
    /// The address a remote process names, once check 6 found it remote.
    remote: Option<String>,
}

impl std::fmt::Debug for AdmissionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionPolicy")
            .field("node_address", &self.node_address)
            .finish_non_exhaustive()
    }
}

impl<'p> Admission<'p> {
    /// Runs checks 2 (target), 3 (only what is committed) and 4
    /// (`require_signed`).
    pub fn begin(
        policy: &'p AdmissionPolicy,
        req: ScheduleRequest,
    ) -> Result<Admission<'p>, SchedulerError> {
        let config = &policy.config;
        // 2. Target.
        let target = resolve_target(&TargetSources {
            message: Some(&req.message),
            request_target: req.request_target.as_deref(),
            base_process: req.base_process,
            base_is_process: req.base_is_process,
            follow_hints: config.follow_hints,
        })?;
        let pid = match target {
            Target::Process(pid) => pid,
            Target::Hint { pid, url } => return Err(SchedulerError::Redirect { pid, url }),
        };
        // 3. Only what is committed is scheduled.
        let body = req
            .message
            .with_only_committed()
            .map_err(|e| SchedulerError::invalid(Check::InvalidCommitments, e.to_string()))?;
        let signed = body.is_signed();
        // 4. Signed-only nodes.
        if config.require_signed && !signed {
            return Err(SchedulerError::invalid(
                Check::UnsignedMessage,
                "this node schedules signed messages only",
            ));
        }
        let registration = is_process(&body);
        let stage = if config.verify_assignments && signed {
            Stage::Verify
        } else {
            Stage::Locate
        };
        Ok(Admission {
            policy,
            body: Arc::new(body),
            admitted: Admitted {
                pid,
                body: Message::new(),
                signed,
                registration,
                dedup: None,
                idempotent: req.idempotent,
            },
            stage,
            verdict: None,
            location: None,
            known: None,
            remote: None,
        })
    }

    /// The process the request is for (known after check 2).
    pub fn pid(&self) -> Id {
        self.admitted.pid
    }

    /// Feeds the verdict asked for by [`Need::Verification`].
    pub fn verified(&mut self, verdict: Verification) {
        self.verdict = Some(verdict);
    }

    /// Feeds the URL asked for by [`Need::Location`] (`None`: no fresh record).
    pub fn located(&mut self, url: Option<String>) {
        self.location = Some(url);
    }

    /// Feeds the answer asked for by [`Need::Schedule`].
    pub fn known(&mut self, has_schedule: bool) {
        self.known = Some(has_schedule);
    }

    /// Runs the next check, or says what it needs first.
    pub fn step(&mut self) -> Result<Step, SchedulerError> {
        loop {
            match self.stage {
                Stage::Verify => {
                    // 5. Signatures.
                    match self.verdict.take() {
                        None => return Ok(Step::Need(Need::Verification(Arc::clone(&self.body)))),
                        Some(Verification::Invalid {
                            commitment,
                            reason,
                            detail,
                        }) => {
                            return Err(SchedulerError::invalid(
                                Check::InvalidSignature,
                                format!(
                                    "commitment {commitment} failed ({}): {detail}",
                                    reason.code()
                                ),
                            ))
                        }
                        Some(_) => self.stage = Stage::Locate,
                    }
                }
                Stage::Locate => {
                    // 6. Locate.
                    if let Some(need) = self.locate()? {
                        return Ok(Step::Need(need));
                    }
                    self.stage = Stage::Mode;
                }
                Stage::Mode => {
                    // 7. Mode.
                    if self.policy.config.mode == SchedulingMode::Disabled {
                        return Err(SchedulerError::SchedulingDisabled);
                    }
                    // The body moves out (copied only if the pool still
                    // holds its share); a step after this one has none.
                    let body = std::mem::take(&mut self.body);
                    let mut admitted = self.admitted.clone();
                    admitted.body =
                        Arc::try_unwrap(body).unwrap_or_else(|shared| (*shared).clone());
                    return Ok(Step::Admitted(admitted));
                }
            }
        }
    }

    /// Check 6. `Ok(None)` when it passed; `Ok(Some(need))` when a fact is
    /// missing.
    fn locate(&mut self) -> Result<Option<Need>, SchedulerError> {
        let pid = self.admitted.pid;
        if !self.admitted.registration {
            return match self.known {
                None => Ok(Some(Need::Schedule(pid))),
                Some(true) => Ok(None),
                Some(false) => Err(SchedulerError::UnknownProcess {
                    pid: pid.to_human(),
                }),
            };
        }
        if let Some(address) = &self.remote {
            // The location lookup of a remote scheduler came back.
            return match self.location.take() {
                None => Ok(Some(Need::Location(address.clone()))),
                Some(Some(url)) => Err(SchedulerError::Redirect {
                    pid: pid.to_human(),
                    url,
                }),
                Some(None) => Err(SchedulerError::RemoteScheduler {
                    address: address.clone(),
                }),
            };
        }
        let named = scheduler_of(&self.body)?;
        if named.address != self.policy.node_address {
            // A hint in the definition redirects at once; otherwise the
            // location cache says where that scheduler is.
            if let Some(url) = named.hint.filter(|_| self.follows_hints()) {
                return Err(SchedulerError::Redirect {
                    pid: pid.to_human(),
                    url,
                });
            }
            self.remote = Some(named.address.clone());
            return Ok(Some(Need::Location(named.address)));
        }
        self.admitted.dedup = process_dedup(&self.body)?;
        if self.policy.config.validate_process_devices {
            if let Some(known) = &self.policy.known_device {
                check_devices(&self.body, known.as_ref())?;
            }
        }
        Ok(None)
    }

    fn follows_hints(&self) -> bool {
        self.policy.config.follow_hints
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, ErrorCode, NodeKey};

    /// Facts the checks may ask for, and a log of what they asked, in order.
    struct Facts {
        verdict_valid: bool,
        location: Option<String>,
        has_schedule: bool,
        asked: Vec<&'static str>,
    }

    impl Default for Facts {
        fn default() -> Facts {
            Facts {
                verdict_valid: true,
                location: None,
                has_schedule: true,
                asked: Vec::new(),
            }
        }
    }

    fn node() -> NodeKey {
        NodeKey::from_seed(&[1; 32])
    }

    fn client() -> NodeKey {
        NodeKey::from_seed(&[2; 32])
    }

    fn policy(config: SchedulerConfig) -> AdmissionPolicy {
        AdmissionPolicy {
            config: Arc::new(config),
            node_address: node().address().to_string(),
            known_device: Some(Arc::new(|n: &str| n != "missing@1.0")),
        }
    }

    fn run(
        policy: &AdmissionPolicy,
        message: Message,
        facts: &mut Facts,
    ) -> Result<Admitted, SchedulerError> {
        let mut a = Admission::begin(
            policy,
            ScheduleRequest {
                message,
                ..Default::default()
            },
        )?;
        loop {
            match a.step()? {
                Step::Admitted(done) => return Ok(done),
                Step::Need(Need::Verification(m)) => {
                    facts.asked.push("verify");
                    let v = if facts.verdict_valid {
                        m.verify(&hb_message::IdSelector::All)?
                    } else {
                        // A tampered copy gives a real Invalid verdict.
                        let mut t = (*m).clone();
                        t.insert("action", "Tampered")?;
                        t.verify(&hb_message::IdSelector::All)?
                    };
                    a.verified(v);
                }
                Step::Need(Need::Location(_)) => {
                    facts.asked.push("location");
                    a.located(facts.location.clone());
                }
                Step::Need(Need::Schedule(_)) => {
                    facts.asked.push("schedule");
                    a.known(facts.has_schedule);
                }
            }
        }
    }

    fn process(scheduler: &str) -> Message {
        msg! { "type" => "Process", "scheduler" => scheduler, "execution-device" => "test@1.0" }
    }

    fn ping(pid: &Id) -> Message {
        msg! { "target" => pid.to_human(), "action" => "Ping" }
    }

    #[test]
    fn a_signed_message_is_verified_then_located_then_admitted() {
        let p = policy(SchedulerConfig::default());
        let pid = Id::hash(b"p");
        let mut facts = Facts::default();
        let m = ping(&pid).commit(&client(), None).unwrap();
        let admitted = run(&p, m, &mut facts).unwrap();
        assert_eq!(facts.asked, ["verify", "schedule"]);
        assert!(admitted.signed && !admitted.registration);
        assert_eq!(admitted.pid, pid);
    }

    #[test]
    fn each_check_fails_in_spec_order() {
        let pid = Id::hash(b"p");
        let signed = |m: Message| m.commit(&client(), None).unwrap();
        let strict = SchedulerConfig {
            require_signed: true,
            mode: SchedulingMode::Disabled,
            ..SchedulerConfig::default()
        };
        // Each row breaks one check and every later one; the first wins.
        let no_target = msg! { "action" => "x" };
        let mut bad_commitments = signed(ping(&pid));
        bad_commitments
            .insert("commitments", msg! { "x" => 1 })
            .unwrap();
        let rows: Vec<(Message, Facts, &str, Vec<&str>)> = vec![
            (no_target, Facts::default(), "missing-target", vec![]),
            (
                bad_commitments,
                Facts::default(),
                "invalid-commitments",
                vec![],
            ),
            (ping(&pid), Facts::default(), "unsigned-message", vec![]),
            (
                signed(ping(&pid)),
                Facts {
                    verdict_valid: false,
                    has_schedule: false,
                    ..Facts::default()
                },
                "invalid-signature",
                vec!["verify"],
            ),
            (
                signed(ping(&pid)),
                Facts {
                    has_schedule: false,
                    ..Facts::default()
                },
                "unknown-process",
                vec!["verify", "schedule"],
            ),
            (
                signed(msg! { "type" => "Process" }),
                Facts::default(),
                "missing-scheduler",
                vec!["verify"],
            ),
            (
                signed(ping(&pid)),
                Facts::default(),
                "scheduling-disabled",
                vec!["verify", "schedule"],
            ),
        ];
        for (message, mut facts, code, asked) in rows {
            let err = run(&policy(strict.clone()), message, &mut facts).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
            assert_eq!(facts.asked, asked, "{code}");
        }
    }

    #[test]
    fn empty_commitments_are_unsigned() {
        let p = policy(SchedulerConfig {
            require_signed: true,
            ..SchedulerConfig::default()
        });
        let mut m = ping(&Id::hash(b"p"));
        m.insert("commitments", Message::new()).unwrap();
        let err = run(&p, m, &mut Facts::default()).unwrap_err();
        assert_eq!(err.code(), "unsigned-message");
    }

    #[test]
    fn a_definition_naming_this_node_registers_with_its_dedup_and_devices_checked() {
        let p = policy(SchedulerConfig::default());
        let mut def = process(node().address());
        def.insert("scheduler-dedup", "signed-id").unwrap();
        let mut facts = Facts::default();
        let admitted = run(&p, def.clone(), &mut facts).unwrap();
        assert!(admitted.registration);
        assert_eq!(admitted.dedup, Some(DedupPolicy::SignedId));
        assert_eq!(admitted.pid, def.id_all().unwrap());
        assert!(facts.asked.is_empty(), "a registration needs no schedule");
        def.insert("execution-device", "missing@1.0").unwrap();
        let err = run(&p, def, &mut Facts::default()).unwrap_err();
        assert_eq!(err.code(), "unknown-device");
    }

    #[test]
    fn a_definition_naming_another_scheduler_is_redirected_by_hint_or_location() {
        let p = policy(SchedulerConfig::default());
        let other = NodeKey::from_seed(&[9; 32]).address().to_string();
        // A hint in the definition redirects without a lookup.
        let hinted = process(&format!("{other}?hint=http://other:8734"));
        let mut facts = Facts::default();
        match run(&p, hinted.clone(), &mut facts).unwrap_err() {
            SchedulerError::Redirect { url, .. } => assert_eq!(url, "http://other:8734"),
            e => panic!("expected a redirect, got {e}"),
        }
        assert!(facts.asked.is_empty());
        // Without a hint the location cache decides.
        let plain = process(&other);
        let mut facts = Facts {
            location: Some("http://known:1".into()),
            ..Facts::default()
        };
        match run(&p, plain.clone(), &mut facts).unwrap_err() {
            SchedulerError::Redirect { url, .. } => assert_eq!(url, "http://known:1"),
            e => panic!("expected a redirect, got {e}"),
        }
        assert_eq!(facts.asked, ["location"]);
        let err = run(&p, plain, &mut Facts::default()).unwrap_err();
        assert_eq!(err.code(), "scheduler-location-unknown");
        assert!(err.to_string().contains(&other), "{err}");
        // With hints off, the address part is looked up like any other.
        let off = policy(SchedulerConfig {
            follow_hints: false,
            ..SchedulerConfig::default()
        });
        let mut facts = Facts::default();
        let err = run(&off, hinted, &mut facts).unwrap_err();
        assert_eq!(err.code(), "scheduler-location-unknown");
        assert_eq!(facts.asked, ["location"]);
        // A hint naming this node's own address is this node.
        let own = process(&format!("{}?hint=http://me:1", node().address()));
        assert!(run(&p, own, &mut Facts::default()).unwrap().registration);
    }

    #[test]
    fn a_hinted_target_redirects_only_while_hints_are_followed() {
        let pid = Id::hash(b"p");
        let m = msg! { "target" => format!("{pid}?hint=http://h:1") };
        let err = run(
            &policy(SchedulerConfig::default()),
            m.clone(),
            &mut Facts::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "redirect");
        let off = policy(SchedulerConfig {
            follow_hints: false,
            ..SchedulerConfig::default()
        });
        assert_eq!(run(&off, m, &mut Facts::default()).unwrap().pid, pid);
    }
}
