//! `NodeBuilder` derives the scheduler's and the process layer's settings
//! from its `NodeConfig`; an explicit `.scheduler_config()` replaces the
//! derived one; and `enable_test_devices` decides whether
//! `test-device@1.0` is registered and accepted in process definitions.

use std::sync::Arc;

use hb_message::{ErrorCode, Message, NodeKey};
use hb_node::{Node, NodeBuilder, NodeConfig};
use hb_scheduler::{ScheduleRequest, SchedulerConfig, SchedulingMode};

fn builder(config: NodeConfig) -> NodeBuilder {
    NodeBuilder::new(
        Arc::new(hb_store::MemoryStore::new()),
        NodeKey::from_seed(&[1; 32]),
    )
    .config(NodeConfig { port: 0, ..config })
}

async fn register_test_device_process(node: &Node) -> Result<(), hb_scheduler::SchedulerError> {
    let def = Message::new()
        .with("type", "Process")
        .and_then(|m| m.with("device", "process@1.0"))
        .and_then(|m| m.with("scheduler", node.scheduler().address()))
        .and_then(|m| m.with("execution-device", "test-device@1.0"))
        .and_then(|m| m.commit(&NodeKey::from_seed(&[2; 32]), None))
        .expect("a literal definition commits");
    node.scheduler()
        .schedule(ScheduleRequest {
            message: def,
            ..Default::default()
        })
        .await
        .map(drop)
}

#[actix_rt::test]
async fn the_scheduler_runs_with_the_node_settings_unless_given_its_own() {
    let config = NodeConfig {
        scheduling_mode: SchedulingMode::Aggressive,
        schedule_page_max: 7,
        scheduler_dedup: hb_scheduler::DedupPolicy::SignedId,
        scheduler_location_url: Some("https://hb.example".into()),
        ..NodeConfig::default()
    };
    let node = builder(config.clone()).start().expect("starts");
    let c = node.scheduler().config();
    assert_eq!(c.mode, SchedulingMode::Aggressive);
    assert_eq!(c.schedule_page_max, 7);
    assert_eq!(c.dedup, hb_scheduler::DedupPolicy::SignedId);
    assert_eq!(c.location_url, "https://hb.example");
    node.shutdown().await;

    let node = builder(config)
        .scheduler_config(SchedulerConfig {
            schedule_page_max: 9,
            ..SchedulerConfig::default()
        })
        .start()
        .expect("starts");
    let c = node.scheduler().config();
    assert_eq!(c.schedule_page_max, 9, "the explicit config wins");
    assert_eq!(c.mode, SchedulingMode::LocalConfirmation, "whole");
    node.shutdown().await;
}

#[actix_rt::test]
async fn test_devices_are_off_unless_enabled() {
    let node = builder(NodeConfig::default()).start().expect("starts");
    let registry = node.processes().context().registry();
    assert!(!registry.contains("test-device@1.0"));
    assert!(registry.contains("lua@5.3a"));
    let err = register_test_device_process(&node).await.unwrap_err();
    assert_eq!(err.code(), "unknown-device", "{err}");
    node.shutdown().await;

    let node = builder(NodeConfig {
        enable_test_devices: true,
        ..NodeConfig::default()
    })
    .start()
    .expect("starts");
    assert!(node
        .processes()
        .context()
        .registry()
        .contains("test-device@1.0"));
    register_test_device_process(&node)
        .await
        .expect("a test-device process is accepted");
    node.shutdown().await;
}
