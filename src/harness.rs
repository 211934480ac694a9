//! The actor harness: an hb node graph in-process, for tests.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hb_device::{Context, DeviceRegistry};
use hb_message::{Id, Message, NodeKey, Value};
use hb_scheduler::{
    Assignment, CachedChainTip, LocalChainTip, NoopUploader, ScheduleRequest, Scheduler,
    SchedulerConfig, SchedulerDeps, SchedulerDevice, SchedulerError, SchedulerMetrics, Uploader,
};
use hb_store::{GroupCommit, SledStore, Store};
use tempfile::TempDir;

use crate::faults::FaultyStore;

/// The node key every harness uses (seeded: tests are reproducible).
pub const NODE_SEED: [u8; 32] = [42; 32];

/// A running scheduler graph on a temporary sled store.
pub struct Harness {
    /// The store's directory (removed when the harness is dropped).
    pub dir: TempDir,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Group commit over the store.
    pub writer: Arc<GroupCommit>,
    /// The node key.
    pub key: Arc<NodeKey>,
    /// The scheduler graph.
    pub scheduler: Scheduler,
    /// The scheduler's counters (restarts, assigned, busy…).
    pub metrics: Arc<SchedulerMetrics>,
    config: SchedulerConfig,
    uploader: Arc<dyn Uploader>,
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
        let key = Arc::new(NodeKey::from_seed(&NODE_SEED));
        let metrics = Arc::new(SchedulerMetrics::default());
        let scheduler = Scheduler::start(deps(&store, &writer, &key, &metrics, &config, &uploader));
        Harness {
            dir,
            store,
            writer,
            key,
            scheduler,
            metrics,
            config,
            uploader,
        }
    }

    /// Stops the whole scheduler graph and starts a new one on the same
    /// store: nothing but the store carries over.
    pub async fn restart(&mut self) {
        self.scheduler.shutdown().await;
        self.metrics = Arc::new(SchedulerMetrics::default());
        self.scheduler = Scheduler::start(deps(
            &self.store,
            &self.writer,
            &self.key,
            &self.metrics,
            &self.config,
            &self.uploader,
        ));
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
            let page = self
                .scheduler
                .read_schedule(pid, Some(out.len() as i64), None)
                .await?;
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
        let mut registry = DeviceRegistry::new();
        registry
            .register(Arc::new(SchedulerDevice))
            .expect("scheduler@1.0 is registered once");
        let ctx = Context::builder((*self.key).clone())
            .store(Arc::clone(&self.store))
            .registry(registry)
            .build();
        ctx.insert_extension(Arc::new(self.scheduler.clone()));
        ctx
    }

    /// Scheduler restarts since the graph started.
    pub fn restarts(&self) -> u64 {
        self.metrics.restarts.load(Ordering::Relaxed)
    }

    /// Fails the test if any scheduler actor restarted unexpectedly.
    pub fn assert_no_restarts(&self) {
        assert_eq!(
            self.restarts(),
            0,
            "a scheduler actor restarted unexpectedly"
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

fn deps(
    store: &Arc<dyn Store>,
    writer: &Arc<GroupCommit>,
    key: &Arc<NodeKey>,
    metrics: &Arc<SchedulerMetrics>,
    config: &SchedulerConfig,
    uploader: &Arc<dyn Uploader>,
) -> SchedulerDeps {
    SchedulerDeps {
        store: Arc::clone(store),
        writer: Arc::clone(writer),
        key: Arc::clone(key),
        tip: Arc::new(CachedChainTip::new(Arc::new(LocalChainTip))),
        config: Arc::new(config.clone()),
        metrics: Arc::clone(metrics),
        uploader: Arc::clone(uploader),
    }
}
