//! With `process_max_live_workers` 2, computing five processes one after
//! another never leaves more than two workers alive: each new one retires
//! the least recently used idle worker (which stores its snapshot), and a
//! retired process computes again with the same state when asked.

mod http_support;

use std::sync::atomic::Ordering;

use hb_node::NodeConfig;
use http_support::{get, register, send, start_with};

#[actix_rt::test]
async fn a_new_worker_past_the_bound_retires_the_least_recently_used_idle_one() {
    let node = start_with(
        |b| {
            b.config(NodeConfig {
                process_max_live_workers: 2,
                ..http_support::config()
            })
        },
        true,
    );
    let mut pids = Vec::new();
    let mut sums = Vec::new();
    for i in 0..5 {
        let pid = register(&node, &format!("bounded-{i}")).await;
        assert_eq!(send(&node, &pid, i + 10).await, 1);
        let a = get(&node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
        assert_eq!(a.status, 200, "{}", a.json);
        sums.push(a.json["sum"].clone());
        pids.push(pid);
        let live = node.processes().live_workers().await.len();
        assert!(live <= 2, "{live} workers alive after process {i}");
    }
    let metrics = node.processes().metrics();
    assert_eq!(metrics.evicted.load(Ordering::SeqCst), 3);
    // The first process lost its worker; asked again, it answers the same
    // state, from a new worker (which retires another).
    let newer = send(&node, &pids[0], 5).await;
    let a = get(
        &node,
        &format!("/{}~process@1.0/compute?slot={newer}", pids[0]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(
        a.json["sum"].as_i64(),
        sums[0].as_i64().map(|s| s + 5),
        "{}",
        a.json
    );
    assert!(node.processes().live_workers().await.len() <= 2);
    assert_eq!(metrics.evicted.load(Ordering::SeqCst), 4);
}
