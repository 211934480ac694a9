//! The real `hb` binary killed under load (docs/crash-testing.md): `hb
//! serve` on a temporary data dir and a fixed port, `hb bench --workload
//! mixed --record … --pids …` against it, and the node SIGKILLed at random
//! moments (a seeded RNG; the seed is printed) and restarted on the same
//! data dir and port each time. Then, with the load stopped: `hb
//! verify-chain` passes on every process (gapless, valid chain, signed by
//! the node), every `scheduled` event of the record is in the schedule at
//! its slot with its message, and every `computed` state recomputes to the
//! same ID at the same slot.
//!
//! Short form by default (10 kills about a second apart); the long form
//! takes `HB_CRASH_KILLS`, `HB_CRASH_SEED` and `HB_CRASH_MS` (the mean
//! time between kills).

mod bench_support;
mod cli_support;

use std::time::Duration;

use bench_support::{check_records, records};
use cli_support::{free_port, hb, hb_child, Serve};
use rand::{Rng, SeedableRng};

/// Reads and removes `name`: `hb serve` takes every `HB_*` variable for
/// a setting and refuses the ones it does not know.
fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    std::env::remove_var(name);
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
    )
}

#[actix_rt::test]
async fn sigkill_under_load_loses_no_acknowledged_schedule_or_computed_state() {
    let kills = env_u64("HB_CRASH_KILLS").unwrap_or(10);
    let mean_ms = env_u64("HB_CRASH_MS").unwrap_or(1_000).max(2);
    let seed = env_u64("HB_CRASH_SEED").unwrap_or_else(rand::random);
    println!("crash test: HB_CRASH_SEED={seed} HB_CRASH_KILLS={kills} HB_CRASH_MS={mean_ms}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let data_dir = work.join("hb-data");
    let port = free_port();
    let mut node = Serve::start_on(&data_dir, port);
    let url = node.url.clone();
    let address = node.address.clone();
    let mut bench = hb_child(
        work,
        &[
            "bench",
            "--node",
            &url,
            "--workload",
            "mixed",
            "--processes",
            "4",
            "--connections",
            "8",
            "--duration",
            "100000",
            "--warmup",
            "0",
            "--timeout",
            "20",
            "--record",
            "record.jsonl",
            "--pids",
            "pids.txt",
            "--key-file",
            "bench.key",
            "--json",
        ],
    );
    // The first kill comes once the processes exist.
    while !work.join("pids.txt").exists() {
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            bench.try_wait().expect("hb bench runs").is_none(),
            "hb bench stopped during its setup"
        );
    }
    for kill in 1..=kills {
        let wait = rng.gen_range(mean_ms / 2..=mean_ms * 3 / 2);
        std::thread::sleep(Duration::from_millis(wait));
        node.kill();
        println!("kill {kill}/{kills} after {wait} ms");
        node = Serve::start_on(&data_dir, port);
        assert_eq!(node.address, address, "the same node comes back");
    }
    // Some load on the last incarnation, then stop the generator.
    std::thread::sleep(Duration::from_millis(mean_ms));
    let (status, out) = bench_support::terminate(bench);
    assert!(
        status.success(),
        "hb bench survives the restarts: {status:?}"
    );
    let report: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    println!("bench report: {report}");
    assert!(report["ok"].as_u64() > Some(0), "{report}");

    // Every process: a valid, gapless chain signed by the node.
    let pids = std::fs::read_to_string(work.join("pids.txt")).expect("the pids file");
    let pids: Vec<&str> = pids.lines().collect();
    assert_eq!(pids.len(), 4);
    for pid in &pids {
        let verified = hb(
            work,
            &[
                "verify-chain",
                pid,
                "--node",
                &url,
                "--scheduler",
                &address,
                "--json",
            ],
        )
        .json();
        assert_eq!(verified["valid"], true, "seed {seed}: {verified}");
        assert_eq!(verified["signer"], address.as_str(), "seed {seed}");
    }
    let r = records(&work.join("record.jsonl"));
    assert!(
        !r.scheduled.is_empty() && !r.computed.is_empty(),
        "{report}"
    );
    let checked = check_records(&url, &r).await;
    println!(
        "seed {seed}: {} acknowledged schedules and {} computed states checked after {kills} kills",
        checked.scheduled, checked.computed
    );
    assert_eq!(node.stop(), 0);
}
