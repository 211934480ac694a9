//! The embedding example (examples/embed.rs) runs as docs/embedding.md
//! says: a node without its own HTTP server, on the host's store and key,
//! with the host's own device; its routes mounted under `/hb` in the
//! host's actix-web app beside the host's route; a process on the host's
//! device scheduled, computed and dry-run through the node's handle and
//! read over the host's HTTP server.

#[path = "../examples/embed.rs"]
mod embed;

#[actix_rt::test]
async fn the_example_computes_and_dry_runs_its_own_device_through_the_handle_and_mounted_routes() {
    let dir = tempfile::tempdir().unwrap();
    let report = embed::run(dir.path()).await.unwrap();
    assert_eq!(report.host_route, "hello from the host");
    assert_eq!(report.slots, vec![1, 2, 3]);
    // 1 + 2 + 3, computed by tally@1.0.
    assert_eq!(report.computed_tally, 6);
    // The dry-run adds 10 on the state at slot 3 and schedules nothing.
    assert_eq!(report.dry_run_tally, 16);
    assert_eq!(report.dry_run_at_slot, 3);
    assert_eq!(report.slot_after_dry_run, 3);
    // The same state over the host's server, under /hb.
    assert_eq!(report.http_tally, serde_json::json!(6));
    assert!(report.metrics_count_mounted_routes);
}
