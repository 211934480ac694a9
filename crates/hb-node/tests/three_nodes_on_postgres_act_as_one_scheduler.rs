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
//!   writes can land: each carries the old fence), its callers get their
//!   acknowledgement or `unavailable` and nothing else, and the chains
//!   and records check as above.
//! - Requests for another node's process are redirected or proxied, as
//!   each node is set; every node names itself and the cluster.
//!
//! Short form by default (lease time 1 s, a few seconds of load); the
//! figures printed (failover time, throughput) go to docs/PERFORMANCE.md
//! from the long form: `HB_CLUSTER_LEASE_MS`, `HB_CLUSTER_LOAD_MS`.

// The tests hold `ONE_AT_A_TIME` across awaits on purpose: each runs on its
// own single-threaded runtime, and the lock only keeps clusters apart.
#![allow(clippy::await_holding_lock)]

mod bench_support;
mod cli_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_support::{check_records, records, schedule_bodies};
use cli_support::{free_port, hb, hb_child, http, Serve};
use hb_message::{Id, Message, NodeKey};
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

/// One cluster at a time: each test runs three nodes and a generator, and
/// on two cores several at once would starve lease renewals.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one still runs alone.
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
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
    /// More flags of each node.
    extra: Vec<Vec<String>>,
}

impl Cluster {
    fn start(work: &Path, database: &TempDatabase, lease_ms: u64) -> Cluster {
        Cluster::start_with(work, database, lease_ms, vec![Vec::new(); 3])
    }

    fn start_with(
        work: &Path,
        database: &TempDatabase,
        lease_ms: u64,
        extra: Vec<Vec<String>>,
    ) -> Cluster {
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
            extra,
        };
        for i in 0..3 {
            let node = cluster.spawn(i);
            cluster.nodes.push(Some(node));
        }
        cluster
    }

    fn spawn(&self, i: usize) -> Serve {
        let node_id = format!("node-{i}");
        let lease = self.lease_ms.to_string();
        let mut flags = vec![
            "--store",
            "postgres",
            "--postgres-url",
            &self.database_url,
            "--scheduler-key-file",
            self.key_file.to_str().expect("a UTF-8 path"),
            "--node-id",
            &node_id,
            "--lease-ttl-ms",
            &lease,
        ];
        flags.extend(self.extra[i].iter().map(String::as_str));
        let node = Serve::start_on_with(&self.work.join(&node_id), self.ports[i], &flags);
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

    /// SIGTERM to every running node; each must exit 0.
    fn stop_all(&mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(n) = node.take() {
                assert_eq!(n.stop(), 0);
            }
        }
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

/// A running `hb bench`, killed if the test ends without stopping it (a
/// failed test must not leave a generator behind).
struct Load(Option<Child>);

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
) -> Load {
    Load(Some(hb_child(
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
    )))
}

/// SIGTERM to the bench; its JSON report.
fn stop_bench(mut load: Load) -> serde_json::Value {
    let bench = load.0.take().expect("a running bench");
    let (status, out) = bench_support::terminate(bench);
    assert!(
        status.success(),
        "hb bench survives the cluster's troubles: {status:?}"
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn wait_for_pids(work: &Path, load: &mut Load, n: usize) -> Vec<Id> {
    let bench = load.0.as_mut().expect("a running bench");
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
        if since.elapsed() > TAKE_OVER_PATIENCE {
            let mut pending = Vec::new();
            for pid in pids.iter().filter(|p| !taken.contains_key(*p)) {
                let current = client.current_slot(pid).await;
                pending.push(format!(
                    "{pid}: lease {:?}, slot at loss {}, stored {}, current {current:?}",
                    cluster.lease(pid),
                    at_loss[pid],
                    hb_scheduler_latest(cluster, pid)
                ));
            }
            panic!("no take-over after {:?}: {pending:#?}", since.elapsed());
        }
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
    let _alone = one_at_a_time();
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
    cluster.stop_all();
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
async fn a_paused_owner_loses_its_leases_and_answers_only_acknowledged_or_unavailable() {
    let _alone = one_at_a_time();
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
    // What node 0 had taken in when it froze is either acknowledged (and
    // checked below) or refused `unavailable`; which, depends on where each
    // request was at the pause (a request not yet at the scheduler when
    // the lease is found lost is forwarded to the new owner instead).
    let errors = owner_report["errors"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        errors.keys().all(|k| k == "unavailable"),
        "node 0's callers got only unavailable: {owner_report}"
    );
    println!(
        "node 0's callers: {} acknowledged, {} unavailable",
        owner_report["ok"], owner_report["error_total"]
    );
    assert!(others_report["ok"].as_u64() > Some(0), "{others_report}");
    // Still leased elsewhere: node 0 did not take them back by itself.
    for pid in &pids {
        assert_ne!(cluster.lease(pid).expect("a lease").owner, "node-0");
    }
    let checked = check_everything(&cluster, 2, &pids, &["owner.jsonl", "others.jsonl"]).await;
    println!("{checked} acknowledged assignments checked after a pause past the lease");
    cluster.stop_all();
}

/// One closed-loop `hb bench` run of `secs` seconds (after 1 s of warm-up)
/// against `nodes`; its JSON report.
fn measure(
    work: &Path,
    nodes: &str,
    pids_file: &str,
    secs: u64,
    connections: usize,
) -> serde_json::Value {
    let connections = connections.to_string();
    let run = hb(
        work,
        &[
            "bench",
            "--node",
            nodes,
            "--workload",
            "schedule",
            "--processes",
            "48",
            "--connections",
            &connections,
            "--duration",
            &secs.to_string(),
            "--warmup",
            "1",
            "--pids",
            pids_file,
            "--key-file",
            "bench.key",
            "--json",
        ],
    );
    run.json()
}

/// The figures of docs/PERFORMANCE.md ("Clusters"), not a check: durable
/// signed assignments/s over HTTP on one sled node, one PostgreSQL node and
/// three PostgreSQL nodes, in paired rounds (`HB_CLUSTER_ROUNDS`, default
/// 3, of `HB_CLUSTER_SECS`, default 5, each), then the failover time at
/// the default lease (5 s) with the owner SIGKILLed under load.
///
/// `cargo test --release -p hb-node --test three_nodes_on_postgres_act_as_one_scheduler -- --ignored --nocapture`
#[actix_rt::test]
#[ignore = "a benchmark: run by hand for docs/PERFORMANCE.md"]
async fn figures_one_node_against_three_and_failover_at_the_default_lease() {
    let _alone = one_at_a_time();
    let rounds = env_u64("HB_CLUSTER_ROUNDS").unwrap_or(3);
    let secs = env_u64("HB_CLUSTER_SECS").unwrap_or(5);
    let rate = |r: &serde_json::Value| r["throughput"].as_f64().unwrap_or(0.0);
    let mut table = Vec::new();
    for round in 1..=rounds {
        let dir = tempfile::tempdir().expect("tempdir");
        let work = dir.path();
        let sled = Serve::start(&work.join("sled"));
        let on_sled = measure(work, &sled.url, "sled-pids.txt", secs, 64);
        assert_eq!(sled.stop(), 0);

        let one_db = TempDatabase::create();
        let mut one = Cluster::start(work, &one_db, 5_000);
        for i in [1, 2] {
            if let Some(n) = one.nodes[i].take() {
                assert_eq!(n.stop(), 0);
            }
        }
        let on_one = measure(work, &one.urls(&[0]), "one-pids.txt", secs, 64);
        if let Some(n) = one.nodes[0].take() {
            assert_eq!(n.stop(), 0);
        }

        let three_db = TempDatabase::create();
        let mut three = Cluster::start(work, &three_db, 5_000);
        // 64 connections over 48 processes: about two requests in three
        // reach a node that does not own their process and are proxied.
        let on_three = measure(work, &three.urls(&[0, 1, 2]), "three-pids.txt", secs, 64);
        // 48 connections: connection `w` sends only for process `w`, which
        // its node spawned and owns: no request is proxied.
        let local = measure(work, &three.urls(&[0, 1, 2]), "three-pids.txt", secs, 48);
        three.stop_all();
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "round {round}: sled 1 node {:.0}/s, pg 1 node {:.0}/s, pg 3 nodes {:.0}/s, pg 3 nodes owner-local {:.0}/s (errors {}, {}, {}, {}; load {})",
            rate(&on_sled),
            rate(&on_one),
            rate(&on_three),
            rate(&local),
            on_sled["error_total"],
            on_one["error_total"],
            on_three["error_total"],
            local["error_total"],
            loadavg.trim()
        );
        table.push((rate(&on_sled), rate(&on_one), rate(&on_three)));
    }
    let mut ratios: Vec<f64> = table
        .iter()
        .map(|(_, one, three)| three / one.max(1.0))
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "3 nodes / 1 node, median of {rounds}: {:.2}",
        ratios[ratios.len() / 2]
    );

    // Failover at the default lease.
    let database = TempDatabase::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let mut cluster = Cluster::start(work, &database, 5_000);
    let mut load = bench(
        work,
        &cluster.urls(&[0, 1, 2]),
        "schedule",
        6,
        8,
        "record.jsonl",
    );
    let pids = wait_for_pids(work, &mut load, 6);
    std::thread::sleep(Duration::from_secs(2));
    let victims: Vec<Id> = pids
        .iter()
        .filter(|p| cluster.lease(p).is_some_and(|l| l.owner == "node-1"))
        .copied()
        .collect();
    let killed = Instant::now();
    cluster.nodes[1].take().expect("node 1").kill();
    let failover = wait_for_take_over(&cluster, 0, &victims, "node-1", killed).await;
    println!("failover at the default lease (5000 ms): {failover:?}");
    let report = stop_bench(load);
    assert!(report["ok"].as_u64() > Some(0));
    cluster.stop_all();
}

/// POSTs `m` to `url` as JSON without following redirects: the status,
/// the `Location` header and the JSON answer.
async fn post_once(url: &str, m: &Message) -> (u16, Option<String>, serde_json::Value) {
    let client = awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(60))
        .finish();
    let mut res = client
        .post(url)
        .send_json(&hb_message::json::to_json(m))
        .await
        .expect("the node answers");
    let location = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let body = res.body().limit(1 << 22).await.expect("a body");
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (res.status().as_u16(), location, json)
}

async fn get_json(url: &str) -> serde_json::Value {
    let mut res = http().get(url).send().await.expect("the node answers");
    let body = res.body().limit(1 << 22).await.expect("a body");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e})"))
}

#[actix_rt::test]
async fn requests_for_another_nodes_process_are_redirected_or_proxied_by_setting() {
    let _alone = one_at_a_time();
    let database = TempDatabase::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let redirect = || -> Vec<String> {
        ["--cluster-routing", "redirect", "--enable-test-devices"]
            .map(String::from)
            .to_vec()
    };
    let proxy = vec!["--enable-test-devices".to_string()];
    let mut cluster =
        Cluster::start_with(work, &database, 1_000, vec![redirect(), redirect(), proxy]);

    // Each node names the cluster's scheduler, itself, and its store.
    for i in 0..3 {
        let info = get_json(&format!("{}/~meta@1.0/info", cluster.url(i))).await;
        assert_eq!(info["address"], cluster.address.as_str(), "{info}");
        assert_eq!(info["node-id"], format!("node-{i}").as_str(), "{info}");
        assert_eq!(info["node-url"], cluster.url(i).as_str(), "{info}");
        assert_eq!(info["store"], "postgres", "{info}");
        assert_ne!(
            info["node-address"],
            cluster.address.as_str(),
            "the node key is its own"
        );
        let health = get_json(&format!("{}/healthz", cluster.url(i))).await;
        assert_eq!(
            (health["status"].as_str(), health["store"].as_str()),
            (Some("ok"), Some("ok"))
        );
    }

    // Node 0 registers a process, so it holds the lease.
    let client = NodeKey::from_seed(&[9; 32]);
    let definition = Message::new()
        .with("type", "Process")
        .and_then(|m| m.with("device", "process@1.0"))
        .and_then(|m| m.with("scheduler", cluster.address.as_str()))
        .and_then(|m| m.with("execution-device", "test-device@1.0"))
        .and_then(|m| m.commit(&client, None))
        .expect("a definition");
    let pid = definition.id_all().expect("an ID");
    let schedule = "/~scheduler@1.0/schedule";
    let (status, _, a0) = post_once(&format!("{}{schedule}", cluster.url(0)), &definition).await;
    assert_eq!((status, a0["slot"].as_i64()), (200, Some(0)), "{a0}");
    assert_eq!(cluster.lease(&pid).expect("a lease").owner, "node-0");
    let message = |n: i64| {
        Message::new()
            .with("target", pid.to_human().as_str())
            .and_then(|m| m.with("add", n))
            .and_then(|m| m.commit(&client, None))
            .expect("a message")
    };

    // Node 1 redirects to the owner, and the owner takes it there.
    let (status, location, answer) =
        post_once(&format!("{}{schedule}", cluster.url(1)), &message(1)).await;
    assert_eq!(status, 307, "{answer}");
    assert_eq!(answer["owner"], "node-0", "{answer}");
    let location = location.expect("a Location header");
    assert_eq!(location, format!("{}{schedule}", cluster.url(0)));
    let (status, _, a1) = post_once(&location, &message(1)).await;
    assert_eq!((status, a1["slot"].as_i64()), (200, Some(1)), "{a1}");

    // Node 2 proxies: the owner's own answer comes back.
    let (status, _, a2) = post_once(&format!("{}{schedule}", cluster.url(2)), &message(2)).await;
    assert_eq!((status, a2["slot"].as_i64()), (200, Some(2)), "{a2}");
    let lease = cluster.lease(&pid).expect("a lease");
    assert_eq!(lease.owner, "node-0", "served by the owner, not taken over");
    let taken = metric(&cluster.url(2), "hb_leases_taken_total").await;
    assert_eq!(taken, 0, "node 2 took no lease");

    // Reads are served by any node from the shared store.
    let current = Client::new(&cluster.url(1))
        .expect("a URL")
        .current_slot(&pid)
        .await
        .expect("a current slot");
    assert_eq!(current, 2);
    cluster.stop_all();
}
