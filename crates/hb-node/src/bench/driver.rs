//! The workers, their setup (the node's address, spawning or reading the
//! processes, preparing the slots to compute) and the monitor that reports
//! progress and reads CPU counters at the window's edges.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Future, StreamExt};
use hb_message::{ErrorCode, Id, Message, NodeKey};
use hb_scheduler::{ScheduleRequest, Scheduler, SchedulerBuilder};

use super::cpu::{self, CpuSnap, Whose};
use super::report::{error_kind, kind_of, Tallies};
use super::{
    BenchError, CpuUse, Event, OnProgress, Operation, Pacing, Progress, Recorder, Report, Settings,
    Signing, Target, Workload, COUNTER_LUA,
};
use crate::client::{Client, ClientError};

/// How long the setup keeps retrying a node that cannot be reached, is
/// busy or fails with a 5xx (a node restarting under the bench).
const SETUP_PATIENCE: Duration = Duration::from_secs(60);
/// How long a worker waits after a connection failure before its next
/// request.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);
/// Setup requests in flight at once.
const SETUP_CONCURRENCY: usize = 32;

/// The processes and, per process, the slot a compute asks for.
struct Plan {
    pids: Vec<Id>,
    prepared: Vec<u64>,
}

/// What every worker shares.
struct Shared {
    settings: Settings,
    key: NodeKey,
    plan: Plan,
    recorder: Recorder,
    pacing: Pacing,
    stop: Arc<AtomicBool>,
    ok: AtomicU64,
    errors: AtomicU64,
    /// Generator threads whose workers are all done.
    threads_done: AtomicU64,
    /// Set once the monitor has read the CPU counters at the end: the
    /// generator threads live until then, so their time counts under
    /// their role.
    counted: AtomicBool,
    /// Makes this run's messages distinct from every other run's.
    nonce: String,
    /// Per worker, its first schedule messages, signed before the load
    /// (`--presign`), with their id(all).
    presigned: Vec<Vec<Presigned>>,
}

/// A message signed before the load, with its id(all).
type Presigned = (Message, Id);

/// A worker's connection.
enum Conn {
    Http(Client),
    Local(Scheduler),
}

pub(super) fn run(
    settings: Settings,
    key: NodeKey,
    stop: Arc<AtomicBool>,
    on_progress: Option<OnProgress>,
) -> Result<Report, BenchError> {
    let recorder = Recorder::open(settings.record.as_deref())?;
    match settings.target.clone() {
        Target::InProcess(_) => {
            actix_rt::System::new().block_on(in_process(settings, key, recorder, stop, on_progress))
        }
        Target::Node(url) => over_http(&url, settings, key, recorder, stop, on_progress),
    }
}

fn shared(
    settings: Settings,
    key: NodeKey,
    plan: Plan,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
) -> Result<Shared, BenchError> {
    let nonce: u64 = rand::random();
    let nonce = format!("{nonce:016x}");
    let presigned = presign(&settings, &key, &plan.pids, &nonce)?;
    // The load starts a moment from now, once every worker is ready.
    let start = Instant::now() + Duration::from_millis(20);
    let pacing = Pacing::new(
        start,
        settings.warmup,
        settings.duration,
        settings.rate,
        settings.connections,
    );
    Ok(Shared {
        settings,
        key,
        plan,
        recorder,
        pacing,
        stop,
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        threads_done: AtomicU64::new(0),
        counted: AtomicBool::new(false),
        nonce,
        presigned,
    })
}

/// Signs `settings.presign` schedule messages, spread over the workers as
/// they will send them (worker `w`'s `k`-th goes to process
/// `index(w, k) mod processes`), on every core.
fn presign(
    settings: &Settings,
    key: &NodeKey,
    pids: &[Id],
    nonce: &str,
) -> Result<Vec<Vec<Presigned>>, BenchError> {
    let workers = settings.connections;
    if settings.presign == 0 || pids.is_empty() {
        return Ok(vec![Vec::new(); workers]);
    }
    let per_worker = settings.presign.div_ceil(workers) as u64;
    let sign_worker = |w: usize| -> Result<Vec<Presigned>, BenchError> {
        (0..per_worker)
            .map(|k| {
                let i = k * workers as u64 + w as u64;
                let pid = &pids[(i % pids.len() as u64) as usize];
                let m = message(
                    pid,
                    "Inc",
                    &anchor(nonce, w, k),
                    Some((key, settings.signing)),
                )?;
                let id = m.id_all()?;
                Ok((m, id))
            })
            .collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<Option<Result<Vec<Presigned>, BenchError>>> =
        (0..workers).map(|_| None).collect();
    std::thread::scope(|scope| {
        for (c, chunk) in out.chunks_mut(workers.div_ceil(cores)).enumerate() {
            let first = c * workers.div_ceil(cores);
            let sign_worker = &sign_worker;
            scope.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = Some(sign_worker(first + j));
                }
            });
        }
    });
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| Ok(Vec::new())))
        .collect()
}

/// The anchor that makes worker `w`'s `k`-th message distinct.
fn anchor(nonce: &str, w: usize, k: u64) -> String {
    format!("{nonce}-{w}-{k}")
}

fn over_http(
    url: &str,
    settings: Settings,
    key: NodeKey,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    on_progress: Option<OnProgress>,
) -> Result<Report, BenchError> {
    // Several URLs (a cluster's nodes, SPEC §11.5): connections and
    // spawned processes go round-robin over them.
    let urls: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    let setup = urls
        .iter()
        .map(|u| Client::new(u).map(|c| c.with_timeout(settings.timeout)))
        .collect::<Result<Vec<Client>, ClientError>>()?;
    if setup.is_empty() {
        return Err(BenchError::Invalid {
            option: "--node",
            reason: "names no URL".into(),
        });
    }
    let plan = actix_rt::System::new().block_on(setup_http(&setup, &settings, &key, &recorder))?;
    let threads = settings.threads.min(settings.connections);
    let shared = Arc::new(shared(settings, key, plan, recorder, stop)?);
    let mut handles = Vec::new();
    for t in 0..threads {
        let mine = Arc::clone(&shared);
        let urls = urls.clone();
        let handle = std::thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || -> Result<Tallies, BenchError> {
                let s = &mine;
                let outcome = actix_rt::System::new().block_on(async {
                    let mut workers = Vec::new();
                    for w in (t..s.settings.connections).step_by(threads) {
                        let client =
                            Client::new(&urls[w % urls.len()])?.with_timeout(s.settings.timeout);
                        workers.push(worker(s, Conn::Http(client), w));
                    }
                    let mut all = Tallies::default();
                    for t in futures::future::join_all(workers).await {
                        all.merge(&t);
                    }
                    Ok::<_, BenchError>(all)
                });
                // Whatever happened, this thread is done; it lives on until
                // the monitor has read the CPU counters.
                s.threads_done.fetch_add(1, Ordering::Release);
                while !s.counted.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(2));
                }
                outcome
            })
            .map_err(|e| {
                // Let the threads already started go.
                shared.counted.store(true, Ordering::Release);
                BenchError::Thread(e.to_string())
            })?;
        handles.push(handle);
    }
    let mut monitor = Monitor::new(&shared, on_progress);
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        if shared.threads_done.load(Ordering::Acquire) == handles.len() as u64 {
            monitor.end();
        }
        monitor.tick();
    }
    let mut tallies = Tallies::default();
    for h in handles {
        let t = h
            .join()
            .map_err(|_| BenchError::Thread("a generator thread panicked".into()))??;
        tallies.merge(&t);
    }
    monitor.finish(tallies)
}

async fn in_process(
    settings: Settings,
    key: NodeKey,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    on_progress: Option<OnProgress>,
) -> Result<Report, BenchError> {
    let failed = |e: &dyn std::fmt::Display| BenchError::InProcess(e.to_string());
    let dir = tempfile::tempdir().map_err(|e| failed(&e))?;
    let store: Arc<dyn hb_store::Store> = match settings.target {
        Target::InProcess(super::InProcessStore::Fjall) => {
            Arc::new(hb_store::FjallStore::open(dir.path()).map_err(|e| failed(&e))?)
        }
        _ => Arc::new(hb_store::SledStore::open(dir.path()).map_err(|e| failed(&e))?),
    };
    let node_key = NodeKey::generate();
    let address = node_key.address().to_string();
    let scheduler = SchedulerBuilder::new(store, node_key)
        .device_check(Arc::new(|name: &str| {
            crate::BUILT_IN_DEVICES.contains(&name)
        }))
        .start()
        .map_err(|e| failed(&e))?;
    let mut pids = Vec::with_capacity(settings.processes);
    for _ in 0..settings.processes {
        let definition = definition(&address, &key)?;
        let pid = definition.id_all()?;
        scheduler
            .schedule(request(definition))
            .await
            .map_err(|e| failed(&e))?;
        recorder.note(&Event::Spawned { pid })?;
        pids.push(pid);
    }
    let prepared = vec![0; pids.len()];
    let shared = shared(settings, key, Plan { pids, prepared }, recorder, stop)?;
    let mut monitor = Monitor::new(&shared, on_progress);
    let workers = futures::future::join_all(
        (0..shared.settings.connections)
            .map(|w| worker(&shared, Conn::Local(scheduler.clone()), w)),
    );
    let ticking = async {
        loop {
            actix_rt::time::sleep(Duration::from_millis(20)).await;
            monitor.tick();
        }
    };
    let done = tokio::select! {
        done = workers => done,
        _ = ticking => Vec::new(),
    };
    monitor.end();
    let mut tallies = Tallies::default();
    for t in done {
        tallies.merge(&t);
    }
    let report = monitor.finish(tallies);
    scheduler.shutdown().await;
    report
}

/// One worker: one connection, requests one after the other until the
/// window closes or the run is stopped.
async fn worker(shared: &Shared, conn: Conn, w: usize) -> Tallies {
    let mut tallies = Tallies::default();
    let mut last_slot: HashMap<usize, u64> = HashMap::new();
    let p = &shared.pacing;
    let processes = shared.plan.pids.len() as u64;
    for k in 0u64.. {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = p.index(w, k);
        let due = p.due(i);
        if let Some(due) = due {
            if p.over(due) {
                break;
            }
            actix_rt::time::sleep_until(due.into()).await;
        }
        let started = Instant::now();
        if due.is_none() && p.over(started) {
            break;
        }
        // Open loop: latency from the due time, however late the send.
        let from = due.unwrap_or(started);
        let op = shared.settings.workload.operation(w, k);
        let process = (i % processes) as usize;
        let outcome = perform(shared, &conn, op, process, &mut last_slot, (w, k)).await;
        let latency = from.elapsed();
        let counted = p.counts(from);
        match outcome {
            Ok(()) => {
                shared.ok.fetch_add(1, Ordering::Relaxed);
                if counted {
                    tallies.of(op).latency.record(latency);
                }
            }
            Err(kind) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                let connect = kind == "connect";
                if counted {
                    tallies.of(op).error(kind);
                }
                if connect {
                    // The node is away (restarting?): try again shortly.
                    actix_rt::time::sleep(RECONNECT_PAUSE).await;
                }
            }
        }
    }
    tallies
}

/// One request; an error is its kind.
async fn perform(
    shared: &Shared,
    conn: &Conn,
    op: Operation,
    process: usize,
    last_slot: &mut HashMap<usize, u64>,
    (w, k): (usize, u64),
) -> Result<(), String> {
    let pid = shared.plan.pids[process];
    let signed = shared.settings.signed;
    let signer = (&shared.key, shared.settings.signing);
    let anchor = || anchor(&shared.nonce, w, k);
    let noted = |e: &Event| {
        shared
            .recorder
            .note(e)
            .map_err(|_| "record-file".to_string())
    };
    match (op, conn) {
        (Operation::Schedule, conn) => {
            let ready = shared.presigned.get(w).and_then(|v| v.get(k as usize));
            let fresh;
            let (m, message_id) = match ready {
                Some((m, id)) => (m, *id),
                None => {
                    fresh = message(&pid, "Inc", &anchor(), signed.then_some(signer))
                        .map_err(|e| format!("message:{}", e.code()))?;
                    let id = fresh
                        .id_all()
                        .map_err(|e| format!("message:{}", e.code()))?;
                    (&fresh, id)
                }
            };
            let slot = match conn {
                Conn::Http(c) => {
                    let a = c.schedule(m).await.map_err(|e| error_kind(&e))?;
                    a.get_int("slot")
                        .and_then(|s| u64::try_from(s).ok())
                        .ok_or_else(|| "unexpected".to_string())?
                }
                Conn::Local(s) => {
                    s.schedule(request(m.clone()))
                        .await
                        .map_err(|e| kind_of(e.status(), e.code()))?
                        .slot
                }
            };
            last_slot.insert(process, slot);
            noted(&Event::Scheduled {
                pid,
                slot,
                message: message_id,
            })
        }
        (Operation::Compute, Conn::Http(c)) => {
            let slot = last_slot
                .get(&process)
                .copied()
                .unwrap_or(shared.plan.prepared[process]);
            let answer = c
                .compute(&pid, slot, "")
                .await
                .map_err(|e| error_kind(&e))?;
            let state = answer
                .value
                .as_message()
                .and_then(|m| m.id_all().ok())
                .ok_or_else(|| "unexpected".to_string())?;
            let at = answer
                .slot
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(slot);
            noted(&Event::Computed {
                pid,
                slot: at,
                state,
            })
        }
        (Operation::DryRun, Conn::Http(c)) => {
            let m = message(&pid, "Get", &anchor(), signed.then_some(signer))
                .map_err(|e| format!("message:{}", e.code()))?;
            c.dry_run(&pid, &m).await.map_err(|e| error_kind(&e))?;
            Ok(())
        }
        // `Settings::validate` keeps these off the in-process target.
        (Operation::Compute | Operation::DryRun, Conn::Local(_)) => Err("unsupported".into()),
    }
}

fn request(message: Message) -> ScheduleRequest {
    ScheduleRequest {
        message,
        ..ScheduleRequest::default()
    }
}

/// A message `action` to `pid`, distinct by its anchor, signed by `key`
/// with the given commitment device if given.
fn message(
    pid: &Id,
    action: &str,
    anchor: &str,
    key: Option<(&NodeKey, Signing)>,
) -> Result<Message, hb_message::MessageError> {
    let m = Message::new()
        .with("target", pid.to_human())?
        .with("action", action)?
        .with("anchor", anchor)?;
    match key {
        Some((key, Signing::Ed25519)) => m.commit(key, None),
        Some((key, signing)) => m.commit_with(signing.device(), key, None),
        None => Ok(m),
    }
}

/// A counter process's definition scheduled on `scheduler`, signed by
/// `key`; a random anchor makes each one a new process.
fn definition(scheduler: &str, key: &NodeKey) -> Result<Message, hb_message::MessageError> {
    let anchor: [u8; 32] = rand::random();
    Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", scheduler)?
        .with("execution-device", "lua@5.3a")?
        .with("script", COUNTER_LUA)?
        .with("anchor", hb_message::human(&anchor))?
        .commit(key, None)
}

/// Whether a setup request is worth retrying: the node is away, busy or
/// failing.
fn transient(e: &ClientError) -> bool {
    matches!(
        error_kind(e).as_str(),
        "connect" | "timeout" | "busy" | "unavailable" | "http-5xx"
    )
}

/// Calls `f` until it succeeds, fails for good, or [`SETUP_PATIENCE`] is
/// spent on transient failures.
async fn patiently<T, F, Fut>(f: F) -> Result<T, ClientError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + SETUP_PATIENCE;
    loop {
        match f().await {
            Err(e) if transient(&e) && Instant::now() < deadline => {
                actix_rt::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Registers one counter process; after a transient failure a refusal
/// may mean the first attempt went through, which the slot query tells.
async fn spawn_one(
    client: &Client,
    address: &str,
    key: &NodeKey,
    recorder: &Recorder,
) -> Result<Id, BenchError> {
    let definition = definition(address, key)?;
    let pid = definition.id_all()?;
    let deadline = Instant::now() + SETUP_PATIENCE;
    let mut retried = false;
    loop {
        match client.schedule(&definition).await {
            Ok(_) => break,
            Err(e) if transient(&e) && Instant::now() < deadline => {
                retried = true;
                actix_rt::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) if retried => {
                patiently(|| client.current_slot(&pid))
                    .await
                    .map_err(|_| BenchError::Setup(e))?;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    recorder.note(&Event::Spawned { pid })?;
    Ok(pid)
}

/// Schedules one `Inc` on `pid` and computes its slot: the slot computes
/// of the `compute` workload ask for (answered from the cache).
async fn prepare_cached(
    client: &Client,
    pid: Id,
    key: &NodeKey,
    recorder: &Recorder,
) -> Result<u64, BenchError> {
    let assignment = patiently(move || async move {
        let anchor: [u8; 32] = rand::random();
        let m = message(
            &pid,
            "Inc",
            &hb_message::human(&anchor),
            Some((key, Signing::Ed25519)),
        )?;
        let a = client.schedule(&m).await?;
        Ok::<_, ClientError>((m.id_all()?, a))
    })
    .await?;
    let (message_id, a) = assignment;
    let slot = a
        .get_int("slot")
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| BenchError::InProcess("an assignment without a slot".into()))?;
    recorder.note(&Event::Scheduled {
        pid,
        slot,
        message: message_id,
    })?;
    let answer = patiently(|| client.compute(&pid, slot, "")).await?;
    if let Some(state) = answer.value.as_message().and_then(|m| m.id_all().ok()) {
        recorder.note(&Event::Computed {
            pid,
            slot: answer
                .slot
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(slot),
            state,
        })?;
    }
    Ok(slot)
}

async fn setup_http(
    clients: &[Client],
    settings: &Settings,
    key: &NodeKey,
    recorder: &Recorder,
) -> Result<Plan, BenchError> {
    let client = &clients[0];
    let address = patiently(|| client.address()).await?;
    for other in &clients[1..] {
        let theirs = patiently(|| other.address()).await?;
        if theirs != address {
            return Err(BenchError::Invalid {
                option: "--node",
                reason: format!(
                    "the nodes sign with different scheduler keys ({address} and {theirs}): not one cluster"
                ),
            });
        }
    }
    let mut pids = match &settings.pids {
        Some(path) => read_pids(path)?,
        None => Vec::new(),
    };
    pids.truncate(settings.processes);
    let missing = settings.processes - pids.len();
    if missing > 0 {
        let spawned: Vec<Result<Id, BenchError>> = futures::stream::iter(0..missing)
            .map(|i| spawn_one(&clients[i % clients.len()], &address, key, recorder))
            .buffered(SETUP_CONCURRENCY)
            .collect()
            .await;
        for pid in spawned {
            pids.push(pid?);
        }
        if let Some(path) = &settings.pids {
            write_pids(path, &pids)?;
        }
    }
    let prepared = match settings.workload {
        Workload::Compute => {
            let slots: Vec<Result<u64, BenchError>> = futures::stream::iter(pids.iter())
                .map(|pid| prepare_cached(client, *pid, key, recorder))
                .buffered(SETUP_CONCURRENCY)
                .collect()
                .await;
            slots
                .into_iter()
                .collect::<Result<Vec<u64>, BenchError>>()?
        }
        Workload::Mixed => {
            let slots: Vec<Result<i64, ClientError>> = futures::stream::iter(pids.iter())
                .map(|pid| patiently(move || client.current_slot(pid)))
                .buffered(SETUP_CONCURRENCY)
                .collect()
                .await;
            let mut out = Vec::with_capacity(slots.len());
            for s in slots {
                out.push(u64::try_from(s?).unwrap_or(0));
            }
            out
        }
        Workload::Schedule | Workload::DryRun => vec![0; pids.len()],
    };
    recorder.flush()?;
    Ok(Plan { pids, prepared })
}

/// The process IDs in `path`, one a line (none if it does not exist).
fn read_pids(path: &Path) -> Result<Vec<Id>, BenchError> {
    let bad = |detail: String| BenchError::File {
        option: "--pids",
        path: path.to_path_buf(),
        detail,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(bad(e.to_string())),
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(n, l)| {
            if !hb_message::is_id_shaped(l) {
                return Err(bad(format!("line {}: {l:?} is not a process ID", n + 1)));
            }
            Id::parse(l).map_err(|e| bad(format!("line {}: {e}", n + 1)))
        })
        .collect()
}

fn write_pids(path: &Path, pids: &[Id]) -> Result<(), BenchError> {
    let text: String = pids.iter().map(|p| format!("{}\n", p.to_human())).collect();
    std::fs::write(path, text).map_err(|e| BenchError::File {
        option: "--pids",
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Progress, the recorder's flushes and the CPU counters at the window's
/// edges.
struct Monitor<'a> {
    shared: &'a Shared,
    on_progress: Option<OnProgress>,
    last_progress: Instant,
    whose: Vec<Whose>,
    cpu_from: Option<Vec<Option<CpuSnap>>>,
    cpu_to: Option<Vec<Option<CpuSnap>>>,
    stopped_at: Option<Instant>,
}

impl<'a> Monitor<'a> {
    fn new(shared: &'a Shared, on_progress: Option<OnProgress>) -> Monitor<'a> {
        let mut whose = vec![Whose::Generator];
        if let Some(pid) = shared.settings.node_pid {
            whose.push(Whose::Node(pid));
        }
        Monitor {
            shared,
            on_progress,
            last_progress: Instant::now(),
            whose,
            cpu_from: None,
            cpu_to: None,
            stopped_at: None,
        }
    }

    fn snapshots(&self) -> Vec<Option<CpuSnap>> {
        self.whose.iter().map(|w| cpu::snapshot(*w)).collect()
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let p = &self.shared.pacing;
        if self.stopped_at.is_none() && self.shared.stop.load(Ordering::Relaxed) {
            self.stopped_at = Some(now);
        }
        if self.cpu_from.is_none() && now >= p.measure_from {
            self.cpu_from = Some(self.snapshots());
        }
        if self.cpu_to.is_none() && (now >= p.end || self.stopped_at.is_some()) {
            self.cpu_to = Some(self.snapshots());
        }
        if now.duration_since(self.last_progress) >= Duration::from_secs(1) {
            self.last_progress = now;
            // A failed flush shows again, as an error, in `finish`.
            let _ = self.shared.recorder.flush();
            if let Some(f) = &self.on_progress {
                f(Progress {
                    elapsed: now.saturating_duration_since(p.start),
                    planned: p.end - p.start,
                    ok: self.shared.ok.load(Ordering::Relaxed),
                    errors: self.shared.errors.load(Ordering::Relaxed),
                });
            }
        }
    }

    /// Every worker is done: reads the CPU counters now if the window's
    /// end has not, and lets the generator threads go.
    fn end(&mut self) {
        self.tick();
        if self.cpu_to.is_none() {
            self.cpu_to = Some(self.snapshots());
        }
        self.shared.counted.store(true, Ordering::Release);
    }

    fn finish(mut self, tallies: Tallies) -> Result<Report, BenchError> {
        self.end();
        self.shared.recorder.flush()?;
        let p = &self.shared.pacing;
        let closed = self.stopped_at.unwrap_or(p.end).min(p.end);
        let window = closed.saturating_duration_since(p.measure_from);
        let cpu: Vec<CpuUse> = match (&self.cpu_from, &self.cpu_to) {
            (Some(from), Some(to)) => self
                .whose
                .iter()
                .zip(from.iter().zip(to))
                .filter_map(|(w, (a, b))| Some(cpu::delta(*w, a.as_ref()?, b.as_ref()?)))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Report {
            settings: self.shared.settings.clone(),
            window,
            tallies,
            events: self.shared.recorder.counts(),
            cpu,
            baseline: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::MAX_PRESIGN;
    use super::*;

    #[test]
    fn presigned_messages_are_the_ones_the_workers_would_sign() {
        let key = NodeKey::from_seed(&[7; 32]);
        let pids: Vec<Id> = (0..3u8).map(|i| Id::hash(&[i])).collect();
        let settings = Settings {
            connections: 4,
            presign: 10,
            ..Settings::default()
        };
        let ready = presign(&settings, &key, &pids, "n").unwrap();
        assert_eq!(ready.len(), 4, "one list per worker");
        let total: usize = ready.iter().map(Vec::len).sum();
        assert!(total >= 10, "at least the asked number: {total}");
        for (w, list) in ready.iter().enumerate() {
            for (k, (m, id)) in list.iter().enumerate() {
                let i = k as u64 * 4 + w as u64;
                let pid = &pids[(i % 3) as usize];
                let expected = message(
                    pid,
                    "Inc",
                    &anchor("n", w, k as u64),
                    Some((&key, Signing::Ed25519)),
                )
                .unwrap();
                assert_eq!(m, &expected, "worker {w}, message {k}");
                assert_eq!(*id, expected.id_all().unwrap());
            }
        }
    }

    #[test]
    fn ans104_messages_are_items_the_node_verifies() {
        let key = NodeKey::from_seed(&[6; 32]);
        let pid = Id::hash(b"p");
        let m = message(&pid, "Inc", "a-1", Some((&key, Signing::Ans104))).unwrap();
        let commitments = m.commitments().expect("signed");
        let (id, body) = commitments.iter().next().expect("one commitment");
        assert_eq!(
            body.as_message()
                .and_then(|b| b.get_text("commitment-device")),
            Some("ans104@1.0")
        );
        assert_eq!(
            m.id_all().unwrap().to_human(),
            id.as_str(),
            "id(all) is the item ID"
        );
        assert!(m.verify(&hb_message::IdSelector::All).unwrap().is_valid());
    }

    #[test]
    fn presigning_applies_to_signed_schedules_only() {
        let base = Settings {
            presign: 100,
            ..Settings::default()
        };
        assert!(base.validate().is_ok());
        for wrong in [
            Settings {
                signed: false,
                ..base.clone()
            },
            Settings {
                workload: Workload::Compute,
                ..base.clone()
            },
            Settings {
                presign: MAX_PRESIGN + 1,
                ..base.clone()
            },
        ] {
            assert!(matches!(
                wrong.validate(),
                Err(BenchError::Invalid {
                    option: "--presign",
                    ..
                })
            ));
        }
    }
}
