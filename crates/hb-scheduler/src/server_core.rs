//! `ServerCore`: everything a scheduler server decides, as a plain struct
//! (SPEC §5.2, §5.4, §5.5). The scheduler server actor only
//! gives it a mailbox, fetches what it asks for off the arbiter, and hands
//! its batches to group commit.
//!
//! The core owns the sequencer, the slot-0 invariant, the dedup decision,
//! the in-flight dedup entries, the count of writes not yet acknowledged and
//! the restart generation. [`is_idle`] is the rule the registry applies to
//! retire servers.

use std::collections::HashMap;
use std::sync::Arc;

use hb_message::{Id, Message, NodeKey};
use hb_store::Batch;

use crate::assignment::Assignment;
use crate::chain_tip::ChainTip;
use crate::config::DedupPolicy;
use crate::definition::is_process;
use crate::error::SchedulerError;
use crate::lease::Fence;
use crate::schedule_store;
use crate::sequencer::Sequencer;

/// The last assigned slot and chain link of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentSlot {
    /// The last assigned slot, −1 if none.
    pub slot: i64,
    /// The raw chain link after it (empty if none).
    pub chain: Vec<u8>,
}

/// What the core decided for one request.
#[derive(Debug)]
pub enum Decision {
    /// An idempotent repeat: the original assignment, nothing to write.
    Existing(Arc<Assignment>),
    /// A new assignment and the batch that stores it.
    New(Arc<Assignment>, Batch),
}

/// One request as the core sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The message, already restricted to its committed keys and verified.
    pub body: Message,
    /// Whether it carries commitments (only signed messages are de-duplicated).
    pub signed: bool,
    /// Internal idempotent call.
    pub idempotent: bool,
    /// The original assignment of this message found in the store's dedup
    /// index, when [`ServerCore::lookup_needed`] asked for it.
    pub stored_original: Option<Assignment>,
    /// The chain tip to stamp.
    pub tip: ChainTip,
    /// The wall clock, in ms.
    pub now_ms: i64,
    /// The node key that signs.
    pub key: &'a NodeKey,
    /// The lease's fence, which the batch must carry (SPEC §11.2), when
    /// the node holds leases.
    pub fence: Option<Fence>,
}

/// The state of one process's server.
#[derive(Debug)]
pub struct ServerCore {
    pid: Id,
    /// `None` while reloading after a restart.
    sequencer: Option<Sequencer>,
    dedup: DedupPolicy,
    /// Dedup entries of assignments submitted but not yet acknowledged.
    inflight: HashMap<Id, Arc<Assignment>>,
    /// Writes submitted and not yet acknowledged.
    pending_writes: usize,
    /// Bumped on every restart, so acknowledgements of writes made before
    /// it are recognised as stale.
    generation: u64,
}

/// Whether a server may stop for idleness: no caller holds a capacity slot
/// (a slot is held from the call until its write is acknowledged) and no
/// request came for `max_idle_ms` (0: never idle). Write acknowledgements
/// are not requests.
pub fn is_idle(now_ms: i64, last_request_ms: i64, inflight: usize, max_idle_ms: u64) -> bool {
    let max_idle = i64::try_from(max_idle_ms).unwrap_or(i64::MAX);
    max_idle > 0 && inflight == 0 && now_ms.saturating_sub(last_request_ms) >= max_idle
}

impl ServerCore {
    /// A core resuming `sequencer` (loaded from the store).
    pub fn new(sequencer: Sequencer, dedup: DedupPolicy) -> ServerCore {
        ServerCore {
            pid: sequencer.pid(),
            sequencer: Some(sequencer),
            dedup,
            inflight: HashMap::new(),
            pending_writes: 0,
            generation: 0,
        }
    }

    /// The process.
    pub fn pid(&self) -> Id {
        self.pid
    }

    /// The restart generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Writes submitted and not yet acknowledged.
    pub fn pending_writes(&self) -> usize {
        self.pending_writes
    }

    /// The last assigned slot and chain link (−1 and empty while reloading
    /// or before slot 0).
    pub fn current(&self) -> CurrentSlot {
        match &self.sequencer {
            Some(s) => CurrentSlot {
                slot: s.current(),
                chain: s.chain().to_vec(),
            },
            None => CurrentSlot {
                slot: -1,
                chain: Vec::new(),
            },
        }
    }

    /// The body ID whose original must be read from the store's dedup index
    /// before [`decide`](ServerCore::decide), or `None` when dedup does not
    /// apply or the original is in flight here (so no read is needed).
    pub fn lookup_needed(&self, body_id: &Id, signed: bool, idempotent: bool) -> Option<Id> {
        let applies = signed && (idempotent || self.dedup == DedupPolicy::SignedId);
        (applies && !self.inflight.contains_key(body_id)).then_some(*body_id)
    }

    /// Checks 9 and 10 and the slot-0 invariant: dedup, then the next slot,
    /// its chain link, the signed assignment and its batch.
    pub fn decide(&mut self, req: Request<'_>) -> Result<Decision, SchedulerError> {
        let sequencer = self
            .sequencer
            .as_ref()
            .ok_or_else(|| SchedulerError::Unavailable {
                pid: self.pid.to_human(),
            })?;
        let body_id = req.body.id_all()?;
        // Slot 0 is the definition: an empty schedule takes only the
        // Process whose ID is this process's, whatever started the server.
        if sequencer.current() < 0 && !(is_process(&req.body) && body_id == self.pid) {
            return Err(SchedulerError::UnknownProcess {
                pid: self.pid.to_human(),
            });
        }
        if req.signed && (req.idempotent || self.dedup == DedupPolicy::SignedId) {
            let original = self
                .inflight
                .get(&body_id)
                .cloned()
                .or_else(|| req.stored_original.map(Arc::new));
            if let Some(original) = original {
                if req.idempotent {
                    return Ok(Decision::Existing(original));
                }
                return Err(SchedulerError::Duplicate {
                    pid: self.pid.to_human(),
                    message_id: body_id.to_human(),
                    original_slot: original.slot,
                    original_assignment: original.id.to_human(),
                });
            }
        }
        let sequencer = self
            .sequencer
            .as_mut()
            .ok_or_else(|| SchedulerError::Unavailable {
                pid: self.pid.to_human(),
            })?;
        // A copy advances: the sequencer moves on only once the assignment
        // is signed and staged, so one refused on the way (a record too
        // large, an assignment without its commitment) leaves no hole that
        // the next slot's write would fail on.
        let mut next = sequencer.clone();
        let draft = next.assign(req.body, req.tip, req.now_ms)?;
        let assignment = Arc::new(draft.sign(req.key)?);
        next.signed(&assignment);
        let mut batch = Batch::new();
        // The fence first: a stale owner's batch fails on its first check.
        if let Some(fence) = &req.fence {
            fence.stage(&mut batch);
        }
        schedule_store::stage(&mut batch, &assignment, req.signed)?;
        *sequencer = next;
        if req.signed {
            self.inflight.insert(body_id, Arc::clone(&assignment));
        }
        self.pending_writes += 1;
        Ok(Decision::New(assignment, batch))
    }

    /// Group commit acknowledged a write of `generation`. Returns `Err` with
    /// the reason when the server must stop: a failed write, so it never
    /// assigns on top of a slot that is not stored.
    pub fn written(
        &mut self,
        generation: u64,
        body_id: Option<Id>,
        slot: u64,
        error: Option<String>,
    ) -> Result<(), String> {
        if generation != self.generation {
            return Ok(()); // a write from before the last restart
        }
        self.pending_writes = self.pending_writes.saturating_sub(1);
        // An acknowledgement is not a request: idleness counts from the
        // last request, and a pending write alone keeps the server.
        if let Some(id) = body_id {
            self.inflight.remove(&id);
        }
        match error {
            Some(error) => Err(format!("write of slot {slot} failed: {error}")),
            None => Ok(()),
        }
    }

    /// The server is restarting: forget everything not in the store.
    pub fn restart(&mut self) {
        self.sequencer = None;
        self.inflight.clear();
        self.pending_writes = 0;
        self.generation += 1;
    }

    /// The server reloaded `sequencer` from the store after a restart.
    pub fn reloaded(&mut self, sequencer: Sequencer) {
        self.sequencer = Some(sequencer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::{msg, ErrorCode};

    fn key() -> NodeKey {
        NodeKey::from_seed(&[7; 32])
    }

    fn definition() -> Message {
        msg! { "type" => "Process", "scheduler" => key().address() }
    }

    fn request<'a>(body: Message, signed: bool, key: &'a NodeKey) -> Request<'a> {
        Request {
            body,
            signed,
            idempotent: false,
            stored_original: None,
            tip: ChainTip::LOCAL,
            now_ms: 10,
            key,
            fence: None,
        }
    }

    fn core_for(def: &Message, dedup: DedupPolicy) -> ServerCore {
        ServerCore::new(Sequencer::new(def.id_all().unwrap()), dedup)
    }

    #[test]
    fn an_empty_schedule_takes_only_its_own_definition() {
        let k = key();
        let def = definition();
        let mut core = core_for(&def, DedupPolicy::Off);
        let err = core
            .decide(request(msg! { "action" => "x" }, false, &k))
            .unwrap_err();
        assert_eq!(err.code(), "unknown-process");
        // Another process's definition is not this one's slot 0 either.
        let other = msg! { "type" => "Process", "scheduler" => "elsewhere" };
        let err = core.decide(request(other, false, &k)).unwrap_err();
        assert_eq!(err.code(), "unknown-process");
        assert_eq!(core.current().slot, -1);
        assert_eq!(core.pending_writes(), 0);
        let Decision::New(a, _) = core.decide(request(def, false, &k)).unwrap() else {
            panic!("the definition is assigned")
        };
        assert_eq!(a.slot, 0);
        let Decision::New(a, _) = core
            .decide(request(msg! { "action" => "x" }, false, &k))
            .unwrap()
        else {
            panic!("a message after slot 0 is assigned")
        };
        assert_eq!(a.slot, 1);
    }

    #[test]
    fn signed_duplicates_are_refused_in_flight_and_from_the_store() {
        let k = key();
        let def = definition();
        let mut core = core_for(&def, DedupPolicy::SignedId);
        core.decide(request(def, false, &k)).unwrap();
        let m = msg! { "n" => 1 }.commit(&k, None).unwrap();
        let id = m.id_all().unwrap();
        assert_eq!(core.lookup_needed(&id, true, false), Some(id));
        core.decide(request(m.clone(), true, &k)).unwrap();
        // In flight: no store read needed, and refused.
        assert_eq!(core.lookup_needed(&id, true, false), None);
        let err = core.decide(request(m.clone(), true, &k)).unwrap_err();
        assert_eq!(err.code(), "duplicate-message");
        // Acknowledged: the store's answer decides.
        core.written(0, Some(id), 2, None).unwrap();
        assert_eq!(core.lookup_needed(&id, true, false), Some(id));
        assert!(core.decide(request(m.clone(), true, &k)).is_ok());
    }

    #[test]
    fn unsigned_messages_are_never_deduplicated() {
        let k = key();
        let def = definition();
        let mut core = core_for(&def, DedupPolicy::SignedId);
        core.decide(request(def, false, &k)).unwrap();
        let m = msg! { "n" => 1 };
        let id = m.id_all().unwrap();
        assert_eq!(core.lookup_needed(&id, false, false), None);
        core.decide(request(m.clone(), false, &k)).unwrap();
        assert!(core.decide(request(m, false, &k)).is_ok());
    }

    #[test]
    fn idempotent_repeats_return_the_original() {
        let k = key();
        let def = definition();
        let mut core = core_for(&def, DedupPolicy::Off);
        core.decide(request(def, false, &k)).unwrap();
        let m = msg! { "n" => 1 }.commit(&k, None).unwrap();
        let mut first = request(m.clone(), true, &k);
        first.idempotent = true;
        let Decision::New(original, _) = core.decide(first).unwrap() else {
            panic!("first call assigns")
        };
        let mut again = request(m, true, &k);
        again.idempotent = true;
        let Decision::Existing(same) = core.decide(again).unwrap() else {
            panic!("a repeat returns the original")
        };
        assert_eq!(same.id, original.id);
    }

    #[test]
    fn an_assignment_that_cannot_be_staged_takes_no_slot() {
        let k = key();
        let def = definition();
        let mut core = core_for(&def, DedupPolicy::Off);
        core.decide(request(def, false, &k)).unwrap();
        let before = core.current();
        // Deeper than a record may nest: signed, but refused when staged.
        let mut deep = msg! { "n" => 0 };
        for _ in 0..hb_message::codec::RECORD_MAX_DEPTH {
            deep = msg! { "n" => deep };
        }
        let err = core.decide(request(deep, false, &k)).unwrap_err();
        assert!(
            matches!(
                err,
                SchedulerError::Store(hb_store::StoreError::TooLarge { .. })
            ),
            "{err:?}"
        );
        assert_eq!(core.current(), before);
        assert_eq!(core.pending_writes(), 1);
        let Decision::New(a, _) = core
            .decide(request(msg! { "action" => "x" }, false, &k))
            .unwrap()
        else {
            panic!("assigned")
        };
        assert_eq!(a.slot, 1, "the refused assignment's slot is reused");
        assert_eq!(core.current().chain, a.chain.to_vec());
    }

    #[test]
    fn a_failed_write_stops_and_stale_acknowledgements_are_ignored() {
        let k = key();
        let def = definition();
        let mut core = core_for(&def, DedupPolicy::Off);
        core.decide(request(def, false, &k)).unwrap();
        assert_eq!(core.pending_writes(), 1);
        core.restart();
        assert_eq!(core.generation(), 1);
        // An acknowledgement from generation 0 changes nothing.
        assert!(core.written(0, None, 0, Some("disk".into())).is_ok());
        assert!(
            core.decide(request(msg! {}, false, &k)).is_err(),
            "reloading"
        );
        core.reloaded(Sequencer::new(core.pid()));
        let def = definition();
        core.decide(request(def, false, &k)).unwrap();
        let stop = core.written(1, None, 0, Some("disk full".into()));
        assert!(stop.unwrap_err().contains("disk full"));
    }

    #[test]
    fn a_fenced_batch_requires_the_lease_before_anything_else() {
        let k = key();
        let def = definition();
        let mut core = core_for(&def, DedupPolicy::Off);
        let fence = Fence {
            key: b"lease/p".to_vec(),
            value: b"held".to_vec(),
        };
        let mut req = request(def, false, &k);
        req.fence = Some(fence.clone());
        let Decision::New(_, batch) = core.decide(req).unwrap() else {
            panic!("the definition is assigned")
        };
        assert_eq!(
            batch.ops.first(),
            Some(&hb_store::BatchOp::RequireEq(fence.key, fence.value))
        );
        let Decision::New(_, batch) = core
            .decide(request(msg! { "action" => "x" }, false, &k))
            .unwrap()
        else {
            panic!("assigned")
        };
        assert!(
            !batch
                .ops
                .iter()
                .any(|op| matches!(op, hb_store::BatchOp::RequireEq(..))),
            "no fence without leases"
        );
    }

    #[test]
    fn idle_means_no_request_for_long_enough_and_no_slot_held() {
        assert!(!is_idle(99, 0, 0, 100));
        assert!(is_idle(100, 0, 0, 100));
        assert!(
            !is_idle(1_000, 0, 1, 100),
            "a caller or a write holds a slot"
        );
        assert!(!is_idle(i64::MAX, 0, 0, 0), "0 disables idle stops");
        assert!(
            !is_idle(50, 100, 0, 10),
            "a clock that stepped back is not idle"
        );
        assert!(
            is_idle(i64::MAX, i64::MIN, 0, u64::MAX),
            "no overflow at the limits"
        );
    }
}
