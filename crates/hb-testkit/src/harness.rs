//! The actor harness: an hb scheduler graph in-process, for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hb_device::{Context, DeviceRegistry};
use hb_message::{Id, Message, NodeKey, Value};
use hb_scheduler::{
    Assignment, ManualClock, NoopUploader, ScheduleRequest, Scheduler, SchedulerBuilder,
    SchedulerConfig, SchedulerDevice, SchedulerError, SchedulerMetrics, Uploader,
};
use hb_store::{GroupCommit, SledStore, Store};
use tempfile::TempDir;

use crate::faults::FaultyStore;

/// The node key every harness uses (seeded: tests are reproducible).
pub const NODE_SEED: [u8; 32] = [42; 32];

/// Where the harness's manual clock starts (2026-01-01T00:00:00Z).
pub const CLOCK_START_MS: i64 = 1_767_225_600_000;

/// A running scheduler graph on a temporary sled store.
///
/// Restarts are accounted for: a test declares the restarts it causes
/// with [`expect_restarts`](Harness::expect_restarts), and dropping the
/// harness fails the test if any scheduler server restarted more or less
/// often than declared (a panic or a failed write nobody expected).
pub struct Harness {
    /// The store's directory (removed when the harness is dropped).
    pub dir: TempDir,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Group commit over the store, shared by every graph of this harness.
    pub writer: Arc<GroupCommit>,
    /// The node key.
    pub key: NodeKey,
    /// The scheduler graph.
    pub scheduler: Scheduler,
    /// The scheduler's counters (restarts, assigned, busy, retired…).
    pub metrics: Arc<SchedulerMetrics>,
    /// The clock every graph of this harness reads; move it with
    /// [`ManualClock::advance`] instead of sleeping.
    pub clock: ManualClock,
    config: SchedulerConfig,
    uploader: Arc<dyn Uploader>,
    /// Restarts of earlier graphs (before [`restart`](Harness::restart)).
    earlier_restarts: u64,
    expected_restarts: AtomicU64,
}

impl Harness {
    /// Starts a graph with `config` on a fresh sled store. Must run inside
    /// an actix system (`#[actix_rt::test]`).
    pub fn start(config: SchedulerConfig) -> Harness {
        Harness::start_with_uploader(config, Arc::new(NoopUploader))
    }

    /// As [`start`](Harness::start), with a `remote_confirmation` uploader.
    pub fn start_with_uploader(config: SchedulerConfig, uploader: Arc<dyn Uploader>) -> Harness {
        let dir = tempfile::tempdir().expect("a temporary directory for the test store");
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path()).expect("a fresh sled store opens"));
        Harness::on_store(dir, store, config, uploader)
    }

    /// Starts a graph on a fresh sled store wrapped in a [`FaultyStore`].
    pub fn start_faulty(config: SchedulerConfig) -> (Harness, Arc<FaultyStore>) {
        let dir = tempfile::tempdir().expect("a temporary directory for the test store");
        let sled: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path()).expect("a fresh sled store opens"));
        let faulty = Arc::new(FaultyStore::new(sled));
        let store: Arc<dyn Store> = faulty.clone();
        (
            Harness::on_store(dir, store, config, Arc::new(NoopUploader)),
            faulty,
        )
    }

    /// Starts a graph on an existing store (wrapped for fault injection, say).
    pub fn on_store(
        dir: TempDir,
        store: Arc<dyn Store>,
        config: SchedulerConfig,
        uploader: Arc<dyn Uploader>,
    ) -> Harness {
        let writer = Arc::new(GroupCommit::start(Arc::clone(&store)).expect("group commit starts"));
        let key = NodeKey::from_seed(&NODE_SEED);
        let clock = ManualClock::new(CLOCK_START_MS);
        let metrics = Arc::new(SchedulerMetrics::default());
        let scheduler = build(&store, &writer, &key, &metrics, &config, &uploader, &clock);
        Harness {
            dir,
            store,
            writer,
            key,
            scheduler,
            metrics,
            clock,
            config,
            uploader,
            earlier_restarts: 0,
            expected_restarts: AtomicU64::new(0),
        }
    }

    /// Stops the whole scheduler graph (waiting until nothing is pending)
    /// and starts a new one on the same store: nothing but the store
    /// carries over.
    pub async fn restart(&mut self) {
        self.restart_with(self.config.clone()).await;
    }

    /// As [`restart`](Harness::restart), with other settings (say, a node
    /// brought back up in another scheduling mode).
    pub async fn restart_with(&mut self, config: SchedulerConfig) {
        self.config = config;
        self.scheduler.shutdown().await;
        self.earlier_restarts += self.metrics.restarts.load(Ordering::Relaxed);
        self.metrics = Arc::new(SchedulerMetrics::default());
        self.scheduler = build(
            &self.store,
            &self.writer,
            &self.key,
            &self.metrics,
            &self.config,
            &self.uploader,
            &self.clock,
        );
    }

    /// Declares `n` more server restarts that this test causes on purpose
    /// (an injected panic, a failed write). Dropping the harness checks
    /// that exactly the declared number happened.
    pub fn expect_restarts(&self, n: u64) {
        self.expected_restarts.fetch_add(n, Ordering::SeqCst);
    }

    /// A client key, seeded by `n`.
    pub fn client(n: u8) -> NodeKey {
        NodeKey::from_seed(&[n; 32])
    }

    /// A signed process definition naming this node as its scheduler.
    pub fn process_definition(&self, client: &NodeKey, nonce: i64) -> Message {
        let m = Message::new()
            .with("type", "Process")
            .and_then(|m| m.with("device", "process@1.0"))
            .and_then(|m| m.with("scheduler", self.key.address()))
            .and_then(|m| m.with("execution-device", "test-device@1.0"))
            .and_then(|m| m.with("nonce", nonce))
            .expect("literal keys are valid");
        m.commit(client, None)
            .expect("committing a fresh message succeeds")
    }

    /// Registers a new process; returns its ID and slot-0 assignment.
    pub async fn spawn_process(
        &self,
        client: &NodeKey,
        nonce: i64,
    ) -> Result<(Id, Arc<Assignment>), SchedulerError> {
        let def = self.process_definition(client, nonce);
        let pid = def.id_all()?;
        let a = self.schedule(def).await?;
        Ok((pid, a))
    }

    /// A signed message to `pid` carrying `n`.
    pub fn message(client: &NodeKey, pid: &Id, n: i64) -> Message {
        Message::new()
            .with("target", pid.to_human())
            .and_then(|m| m.with("action", "Ping"))
            .and_then(|m| m.with("n", Value::Int(n)))
            .and_then(|m| m.commit(client, None))
            .expect("literal keys are valid")
    }

    /// Schedules `message` (target taken from it).
    pub async fn schedule(&self, message: Message) -> Result<Arc<Assignment>, SchedulerError> {
        self.scheduler
            .schedule(ScheduleRequest {
                message,
                ..ScheduleRequest::default()
            })
            .await
    }

    /// Every stored assignment of `pid`, from slot 0, read through the
    /// public API page by page.
    pub async fn schedule_of(&self, pid: Id) -> Result<Vec<Message>, SchedulerError> {
        let mut out = Vec::new();
        loop {
            let from = i64::try_from(out.len()).unwrap_or(i64::MAX);
            let page = self.scheduler.read_schedule(pid, Some(from), None).await?;
            let got = page.assignments.len();
            out.extend(page.assignments.into_iter().map(|(_, m)| m));
            if !page.continues || got == 0 {
                return Ok(out);
            }
        }
    }

    /// A resolution context whose registry has `scheduler@1.0` and whose
    /// extensions hold this harness's scheduler.
    pub fn context(&self) -> Context {
        let registry = registry();
        let ctx = Context::builder(self.key.clone())
            .store(Arc::clone(&self.store))
            .registry(registry)
            .build();
        ctx.insert_extension(Arc::new(self.scheduler.clone()));
        ctx
    }

    /// Scheduler server restarts since the harness started (every graph).
    pub fn restarts(&self) -> u64 {
        self.earlier_restarts + self.metrics.restarts.load(Ordering::Relaxed)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // the test already failed; do not hide why
        }
        let expected = self.expected_restarts.load(Ordering::SeqCst);
        let seen = self.restarts();
        assert_eq!(
            seen, expected,
            "scheduler servers restarted {seen} times, the test declared {expected} \
             (Harness::expect_restarts): an actor died unexpectedly, or an expected fault did not happen"
        );
    }
}

/// Waits until `condition` holds, checking after each short pause; fails
/// with `what` after `limit`. For state that changes on other threads
/// (writer, arbiters); it asserts an outcome, never a duration.
pub async fn wait_until(
    what: &str,
    limit: std::time::Duration,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Devices the harness's node knows, for `validate_process_devices`: the
/// registry of [`Harness::context`] and the execution devices its process
/// definitions name.
pub const EXTRA_KNOWN_DEVICES: [&str; 2] = ["test-device@1.0", "process@1.0"];

fn registry() -> DeviceRegistry {
    let mut registry = DeviceRegistry::new();
    registry
        .register(Arc::new(SchedulerDevice))
        .expect("scheduler@1.0 is registered once");
    registry
}

fn build(
    store: &Arc<dyn Store>,
    writer: &Arc<GroupCommit>,
    key: &NodeKey,
    metrics: &Arc<SchedulerMetrics>,
    config: &SchedulerConfig,
    uploader: &Arc<dyn Uploader>,
    clock: &ManualClock,
) -> Scheduler {
    let known = registry();
    SchedulerBuilder::new(Arc::clone(store), key.clone())
        .config(config.clone())
        .group_commit(Arc::clone(writer))
        .metrics(Arc::clone(metrics))
        .uploader(Arc::clone(uploader))
        .clock(Arc::new(clock.clone()))
        .device_check(Arc::new(move |name: &str| {
            known.contains(name) || EXTRA_KNOWN_DEVICES.contains(&name)
        }))
        .start()
        .expect("a scheduler starts on a shared writer")
}
