//! SPEC §11.5 with the real binary: three `hb serve` processes on one
//! PostgreSQL database (a temporary one of its own), sharing one scheduler
//! key, under load from `hb bench --node <all three>`.
//!
//! - The owner of busy processes is SIGKILLed: the others take its
//!   processes over once its lease runs out; every acknowledged
//!   assignment is in its schedule exactly once, and every chain verifies
//!   from slot 0 with the scheduler key.
//! - An owner is SIGSTOPped past its lease, another node takes over, and
//!   the owner is SIGCONTed: it loses its leases (none of its queued
//!   writes can land: each carries the old fence), its callers get
//!   `unavailable`, and the chains and records check as above.
//!
//! Short form by default (lease time 1 s, a few seconds of load); the
//! figures printed (failover time, throughput) go to docs/PERFORMANCE.md
//! from the long form: `HB_CLUSTER_LEASE_MS`, `HB_CLUSTER_LOAD_MS`.

mod bench_support;
mod cli_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_support::{check_records, records, schedule_bodies};
use cli_support::{free_port, hb, hb_child, http, Serve};
use hb_message::{Id, NodeKey};
use hb_node::client::Client;
use hb_store::pg_testing::TempDatabase;
use hb_store::{LeaseRecord, PgOptions, PgStore, Store};

/// Reads and removes `name` (`hb serve` refuses `HB_*` variables that
/// name no setting).
fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    std::env::remove_var(name);
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
    )
}

/// How long the test waits for a take-over before failing: a liveness
/// bound, far above the lease time (not a timing assertion).
const TAKE_OVER_PATIENCE: Duration = Duration::from_secs(90);

struct Cluster {
    work: std::path::PathBuf,
    database_url: String,
    key_file: std::path::PathBuf,
    lease_ms: u64,
    ports: Vec<u16>,
    nodes: Vec<Option<Serve>>,
    /// The scheduler key's address: every node's `hb node` line.
    address: String,
    /// The store, read directly for leases.
    store: Arc<dyn Store>,
}

impl Cluster {
    fn start(work: &Path, database: &TempDatabase, lease_ms: u64) -> Cluster {
        let key_file = work.join("scheduler.key");
        let key = NodeKey::load_or_create(&key_file).expect("a scheduler key");
        let store: Arc<dyn Store> = Arc::new(
            PgStore::open(database.url(), &PgOptions::default()).expect("the test reads the store"),
        );
        let mut cluster = Cluster {
            work: work.to_path_buf(),
            database_url: database.url().to_string(),
            key_file,
            lease_ms,
            ports: (0..3).map(|_| free_port()).collect(),
            nodes: Vec::new(),
            address: key.address().to_string(),
            store,
        };
        for i in 0..3 {
            let node = cluster.spawn(i);
            cluster.nodes.push(Some(node));
        }
        cluster
    }

    fn spawn(&self, i: usize) -> Serve {
        let node = Serve::start_on_with(
            &self.work.join(format!("node-{i}")),
            self.ports[i],
            &[
                "--store",
                "postgres",
                "--postgres-url",
                &self.database_url,
                "--scheduler-key-file",
                self.key_file.to_str().expect("a UTF-8 path"),
                "--node-id",
                &format!("node-{i}"),
                "--lease-ttl-ms",
                &self.lease_ms.to_string(),
            ],
        );
        assert_eq!(
            node.address, self.address,
            "node {i} signs with the scheduler key"
        );
        node
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn urls(&self, which: &[usize]) -> String {
        which
            .iter()
            .map(|i| self.url(*i))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn node(&self, i: usize) -> &Serve {
        self.nodes[i].as_ref().expect("node running")
    }

    fn lease(&self, pid: &Id) -> Option<LeaseRecord> {
        LeaseRecord::read(self.store.as_ref(), pid)
            .expect("the lease reads")
            .map(|(record, _)| record)
    }
}

/// `hb bench` against `nodes` until stopped.
fn bench(
    work: &Path,
    nodes: &str,
    workload: &str,
    processes: usize,
    conns: usize,
    record: &str,
) -> Child {
    hb_child(
        work,
        &[
            "bench",
            "--node",
            nodes,
            "--workload",
            workload,
            "--processes",
            &processes.to_string(),
            "--connections",
            &conns.to_string(),
            "--duration",
            "100000",
            "--warmup",
            "0",
            "--timeout",
            "60",
            "--record",
            record,
            "--pids",
            "pids.txt",
            "--key-file",
            "bench.key",
            "--json",
        ],
    )
}

/// SIGTERM to the bench; its JSON report.
fn stop_bench(mut bench: Child) -> serde_json::Value {
    let term = std::process::Command::new("kill")
        .args(["-TERM", &bench.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let mut out = String::new();
    bench
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("the report");
    let status = bench.wait().expect("hb bench exits");
    assert!(
        status.success(),
        "hb bench survives the cluster's troubles: {status:?}"
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn wait_for_pids(work: &Path, bench: &mut Child, n: usize) -> Vec<Id> {
    loop {
        if let Ok(text) = std::fs::read_to_string(work.join("pids.txt")) {
            let pids: Vec<Id> = text.lines().filter_map(|l| Id::parse(l).ok()).collect();
            if pids.len() == n {
                return pids;
            }
        }
        assert!(
            bench.try_wait().expect("hb bench runs").is_none(),
            "hb bench stopped during its setup"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every process of `pids` is sequenced again by a node other
/// than `gone` (its lease is someone else's) and has a slot past the one
/// it had when `gone` went away; the time from `since` to the first such
/// assignment of each.
async fn wait_for_take_over(
    cluster: &Cluster,
    via: usize,
    pids: &[Id],
    gone: &str,
    since: Instant,
) -> Vec<Duration> {
    let client = Client::new(&cluster.url(via)).expect("a node URL");
    let mut at_loss = BTreeMap::new();
    for pid in pids {
        let latest = hb_scheduler_latest(cluster, pid);
        at_loss.insert(*pid, latest);
    }
    let mut taken = BTreeMap::new();
    while taken.len() < pids.len() {
        assert!(
            since.elapsed() < TAKE_OVER_PATIENCE,
            "no take-over of {} process(es) after {:?}",
            pids.len() - taken.len(),
            since.elapsed()
        );
        for pid in pids {
            if taken.contains_key(pid) {
                continue;
            }
            let lease = cluster.lease(pid);
            let moved = lease.as_ref().is_some_and(|l| l.owner != gone);
            let current = client.current_slot(pid).await.unwrap_or(-1);
            if moved && current > at_loss[pid] {
                taken.insert(*pid, since.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    taken.into_values().collect()
}

/// The latest stored slot of `pid` (-1: none), from the store itself.
fn hb_scheduler_latest(cluster: &Cluster, pid: &Id) -> i64 {
    let prefix = hb_store::keys::sched_prefix(pid);
    cluster
        .store
        .last_with_prefix(&prefix)
        .expect("the schedule reads")
        .and_then(|(key, _)| hb_store::keys::parse_sched(&key).map(|(_, slot)| slot as i64))
        .unwrap_or(-1)
}

/// Every chain verifies from slot 0 with the scheduler key; every
/// acknowledged event of the records is where it was acknowledged; no
/// message is scheduled twice.
async fn check_everything(
    cluster: &Cluster,
    via: usize,
    pids: &[Id],
    record_files: &[&str],
) -> usize {
    let url = cluster.url(via);
    for pid in pids {
        let verified = hb(
            &cluster.work,
            &[
                "verify-chain",
                &pid.to_human(),
                "--node",
                &url,
                "--scheduler",
                &cluster.address,
                "--json",
            ],
        )
        .json();
        assert_eq!(verified["valid"], true, "{verified}");
        assert_eq!(verified["signer"], cluster.address.as_str());
    }
    let client = Client::new(&url).expect("a node URL");
    for pid in pids {
        let bodies = schedule_bodies(&client, pid).await;
        let distinct: BTreeSet<&String> = bodies.values().collect();
        assert_eq!(distinct.len(), bodies.len(), "no message twice in {pid}");
    }
    let mut checked = 0;
    for file in record_files {
        let r = records(&cluster.work.join(file));
        checked += check_records(&url, &r).await.scheduled;
    }
    checked
}

fn settings() -> (u64, u64) {
    let lease_ms = env_u64("HB_CLUSTER_LEASE_MS").unwrap_or(1_000);
    let load_ms = env_u64("HB_CLUSTER_LOAD_MS").unwrap_or(1_500);
    (lease_ms, load_ms)
}

#[actix_rt::test]
async fn a_killed_owners_processes_move_to_the_others_losing_nothing_acknowledged() {
    let (lease_ms, load_ms) = settings();
    let database = TempDatabase::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let mut cluster = Cluster::start(work, &database, lease_ms);
    // Connection `w` goes to node `w mod 3` and sends for processes
    // `w + 8k mod 6`: every process is asked for through every node, so
    // the living ones are asked for the dead node's processes.
    let processes = 6;
    let mut load = bench(
        work,
        &cluster.urls(&[0, 1, 2]),
        "mixed",
        processes,
        8,
        "record.jsonl",
    );
    let pids = wait_for_pids(work, &mut load, processes);
    std::thread::sleep(Duration::from_millis(load_ms));

    // Spread: every node sequences some of the processes.
    let owners: BTreeMap<Id, String> = pids
        .iter()
        .map(|pid| (*pid, cluster.lease(pid).expect("a lease").owner))
        .collect();
    let distinct: BTreeSet<&String> = owners.values().collect();
    println!("owners before: {owners:?}");
    assert_eq!(
        distinct.len(),
        3,
        "the processes are spread over the nodes: {owners:?}"
    );

    // Kill node 1, the owner of some busy processes.
    let victims: Vec<Id> = owners
        .iter()
        .filter(|(_, o)| o.as_str() == "node-1")
        .map(|(p, _)| *p)
        .collect();
    let killed = Instant::now();
    cluster.nodes[1].take().expect("node 1").kill();
    let failover = wait_for_take_over(&cluster, 0, &victims, "node-1", killed).await;
    let worst = failover.iter().max().copied().unwrap_or_default();
    println!(
        "failover at lease {lease_ms} ms: {} processes, first assignment by a successor after {:?} (worst {:?})",
        victims.len(),
        failover,
        worst
    );

    // The killed node comes back and rejoins; more load.
    cluster.nodes[1] = Some(cluster.spawn(1));
    std::thread::sleep(Duration::from_millis(load_ms));
    let report = stop_bench(load);
    println!("bench report: {report}");
    assert!(report["ok"].as_u64() > Some(0), "{report}");

    let checked = check_everything(&cluster, 2, &pids, &["record.jsonl"]).await;
    assert!(checked > 0);
    println!("{checked} acknowledged assignments checked after one owner's death");
    for node in cluster.nodes.iter_mut() {
        if let Some(n) = node.take() {
            assert_eq!(n.stop(), 0);
        }
    }
}

/// The counter `name` in a node's `/metrics` text.
async fn metric(url: &str, name: &str) -> u64 {
    let mut res = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics answer");
    let body = res.body().limit(1 << 22).await.expect("metrics body");
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[actix_rt::test]
async fn an_owner_paused_past_its_lease_lands_no_write_and_answers_unavailable() {
    let (lease_ms, load_ms) = settings();
    let database = TempDatabase::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let mut cluster = Cluster::start(work, &database, lease_ms);
    // Node 0 spawns and sequences both processes; 16 connections keep
    // requests inside its pipeline at any moment.
    let mut to_owner = bench(work, &cluster.urls(&[0]), "schedule", 2, 16, "owner.jsonl");
    let pids = wait_for_pids(work, &mut to_owner, 2);
    std::thread::sleep(Duration::from_millis(load_ms));
    let before: Vec<LeaseRecord> = pids
        .iter()
        .map(|p| cluster.lease(p).expect("a lease"))
        .collect();
    assert!(before.iter().all(|l| l.owner == "node-0"), "{before:?}");

    cluster.node(0).signal("STOP");
    let paused = Instant::now();
    // The others are asked meanwhile: once node 0's lease runs out, they
    // take the processes over.
    let to_others = bench(
        work,
        &cluster.urls(&[1, 2]),
        "schedule",
        2,
        4,
        "others.jsonl",
    );
    let failover = wait_for_take_over(&cluster, 1, &pids, "node-0", paused).await;
    println!("pause: successors assigned after {failover:?} (lease {lease_ms} ms)");
    for (pid, old) in pids.iter().zip(&before) {
        let now = cluster.lease(pid).expect("a lease");
        assert_ne!(now.owner, "node-0");
        assert!(now.epoch > old.epoch, "a new epoch: {old:?} → {now:?}");
    }
    std::thread::sleep(Duration::from_millis(lease_ms));
    cluster.node(0).signal("CONT");
    std::thread::sleep(Duration::from_millis(load_ms));

    // Node 0 lost both leases; what it had queued was refused.
    let lost = metric(&cluster.url(0), "hb_leases_lost_total").await;
    assert!(lost >= 2, "node 0 lost its leases: {lost}");
    let owner_report = stop_bench(to_owner);
    let others_report = stop_bench(to_others);
    println!("bench to node 0: {owner_report}");
    println!("bench to nodes 1, 2: {others_report}");
    assert!(
        owner_report["errors"]["unavailable"].as_u64() > Some(0),
        "node 0's callers got unavailable: {owner_report}"
    );
    assert!(others_report["ok"].as_u64() > Some(0), "{others_report}");
    // Still leased elsewhere: node 0 did not take them back by itself.
    for pid in &pids {
        assert_ne!(cluster.lease(pid).expect("a lease").owner, "node-0");
    }
    let checked = check_everything(&cluster, 2, &pids, &["owner.jsonl", "others.jsonl"]).await;
    println!("{checked} acknowledged assignments checked after a pause past the lease");
    for node in cluster.nodes.iter_mut() {
        if let Some(n) = node.take() {
            assert_eq!(n.stop(), 0);
        }
    }
}
