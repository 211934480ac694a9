//! `hb bench` (the real binary) against a real node (`hb serve` on a
//! temporary data dir), a second or so per workload: the JSON report adds
//! up (requests = answers + errors, overall and per operation; percentiles
//! in order; the record's events as counted), an open-loop run offers
//! exactly rate × duration requests, the processes of `--pids` are reused,
//! and every recorded event is on the node: each acknowledged message at
//! its slot, each answered state recomputed to the same ID.

mod bench_support;
mod cli_support;

use bench_support::{check_records, records};
use cli_support::{hb, Serve};

/// Runs `hb bench --json` with `args` in `work` against `url`.
fn bench(work: &std::path::Path, url: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["bench", "--node", url, "--json", "--key-file", "bench.key"];
    all.extend(args);
    hb(work, &all).json()
}

/// The report's counts add up.
fn assert_consistent(report: &serde_json::Value, workload: &str) {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("a count: {report}"));
    assert_eq!(report["config"]["workload"], workload, "{report}");
    assert_eq!(
        n(&report["requests"]),
        n(&report["ok"]) + n(&report["error_total"]),
        "{report}"
    );
    let errors: u64 = report["errors"]
        .as_object()
        .expect("errors by kind")
        .values()
        .map(n)
        .sum();
    assert_eq!(errors, n(&report["error_total"]), "{report}");
    let ops = report["operations"].as_object().expect("operations");
    let ok: u64 = ops.values().map(|o| n(&o["ok"])).sum();
    let requests: u64 = ops.values().map(|o| n(&o["requests"])).sum();
    assert_eq!(ok, n(&report["ok"]), "{report}");
    assert_eq!(requests, n(&report["requests"]), "{report}");
    assert!(n(&report["ok"]) > 0, "some answers: {report}");
    let l = &report["latency_ms"];
    let f = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{k}: {report}"));
    assert!(
        f("p50") <= f("p90") && f("p90") <= f("p99") && f("p99") <= f("max"),
        "{report}"
    );
    let expected: &[&str] = match workload {
        "mixed" => &["compute", "dry-run", "schedule"],
        other => &[other],
    };
    let names: Vec<&str> = ops.keys().map(String::as_str).collect();
    assert_eq!(names, expected, "{report}");
}

#[actix_rt::test]
async fn bench_reports_add_up_and_every_recorded_event_is_on_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let node = Serve::start(&work.join("hb-data"));
    let common = [
        "--connections",
        "4",
        "--processes",
        "3",
        "--duration",
        "1.5",
        "--warmup",
        "0.3",
        "--pids",
        "pids.txt",
    ];
    let mut first_pids = None;
    let mut scheduled_total = 0;
    for workload in ["schedule", "compute", "dry-run", "mixed"] {
        let record = format!("{workload}.jsonl");
        let mut args = common.to_vec();
        args.extend(["--workload", workload, "--record", record.as_str()]);
        let report = bench(work, &node.url, &args);
        assert_consistent(&report, workload);
        let pids = std::fs::read_to_string(work.join("pids.txt")).expect("the pids file");
        assert_eq!(pids.lines().count(), 3);
        let r = records(&work.join(&record));
        match &first_pids {
            None => {
                assert_eq!(r.spawned.len(), 3, "the first run spawns");
                first_pids = Some(pids);
            }
            Some(first) => {
                assert_eq!(&pids, first, "later runs reuse the processes");
                assert!(r.spawned.is_empty(), "{workload} spawned nothing");
            }
        }
        let events = &report["events"];
        assert_eq!(events["scheduled"], r.scheduled.len() as u64, "{report}");
        assert_eq!(events["computed"], r.computed.len() as u64, "{report}");
        if workload != "dry-run" {
            assert!(
                !r.scheduled.is_empty() || workload == "compute",
                "{workload}"
            );
        }
        if workload == "schedule" {
            // Every answer in the window was recorded (and the warm-up's).
            assert!(r.scheduled.len() as u64 >= report["ok"].as_u64().unwrap_or(0));
        }
        if matches!(workload, "compute" | "mixed") {
            assert!(!r.computed.is_empty(), "{workload}");
        }
        let checked = check_records(&node.url, &r).await;
        assert_eq!(checked.scheduled, r.scheduled.len());
        scheduled_total += checked.scheduled;
    }
    assert!(scheduled_total > 0);

    // Open loop: exactly the requests due in the window are counted, each
    // with its latency from its due time; unsigned messages are accepted.
    let report = bench(
        work,
        &node.url,
        &[
            "--connections",
            "4",
            "--rate",
            "200",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--unsigned",
            "--pids",
            "pids.txt",
            "--processes",
            "3",
        ],
    );
    assert_consistent(&report, "schedule");
    assert_eq!(report["config"]["loop"], "open");
    let requests = report["requests"].as_u64().unwrap_or(0);
    assert!((199..=201).contains(&requests), "200/s × 1 s: {report}");
    assert_eq!(report["error_total"], 0, "{report}");
    assert_eq!(node.stop(), 0);
}

#[test]
fn bench_in_process_schedules_on_its_own_scheduler_and_shows_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = hb(
        dir.path(),
        &[
            "bench",
            "--in-process",
            "--connections",
            "8",
            "--processes",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--json",
            "--key-file",
            "bench.key",
            "--progress",
        ],
    );
    let report = run.json();
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("hb: bench: ") && l.contains(" ok, ")),
        "progress lines on stderr: {run:?}"
    );
    assert_consistent(&report, "schedule");
    assert_eq!(report["config"]["target"], "in-process");
    assert_eq!(report["events"]["spawned"], 2);
    let cpu = report["cpu"].as_array().expect("cpu");
    assert_eq!(cpu.len(), 1, "{report}");
    assert_eq!(cpu[0]["process"], "generator");
}

#[test]
fn bench_in_process_runs_on_a_fjall_store_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = hb(
        dir.path(),
        &[
            "bench",
            "--in-process",
            "--in-process-store",
            "fjall",
            "--connections",
            "8",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--json",
            "--key-file",
            "bench.key",
        ],
    )
    .json();
    assert_consistent(&report, "schedule");
    assert_eq!(report["config"]["target"], "in-process (fjall)");
    assert!(report["ok"].as_u64().is_some_and(|n| n > 0), "{report}");
}

#[test]
fn bench_refuses_settings_that_do_not_fit_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, prefix) in [
        (
            &["bench", "--in-process", "--workload", "compute"][..],
            "hb: invalid-option: --in-process",
        ),
        (&["bench", "--rate", "0"][..], "hb: invalid-option: --rate"),
        (
            &["bench", "--connections", "0"][..],
            "hb: invalid-option: --connections",
        ),
        (&["bench", "--workload", "read"][..], "hb: usage:"),
        // The in-process store needs --in-process, and is sled or fjall.
        (&["bench", "--in-process-store", "fjall"][..], "hb: usage:"),
        (
            &["bench", "--in-process", "--in-process-store", "rocks"][..],
            "hb: usage:",
        ),
        (&["bench", "--node", "https://x"][..], "hb: invalid-url"),
    ] {
        hb(dir.path(), args).fails(2, prefix);
    }
}
