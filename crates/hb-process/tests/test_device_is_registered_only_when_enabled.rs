//! `ProcessBuilder::test_devices`: `test-device@1.0` is registered by
//! default (tests and embedders use it), and with `test_devices(false)`
//! (what a node does unless `enable_test_devices`) it is not, so a process
//! naming it cannot compute, while the other built-in devices stay.

use hb_message::{ErrorCode, Message};
use hb_process::{ProcessBuilder, Processes};
use hb_scheduler::SchedulerConfig;
use hb_testkit::Harness;

fn harness() -> Harness {
    Harness::start(SchedulerConfig {
        validate_process_devices: false,
        ..SchedulerConfig::default()
    })
}

async fn register_test_device_process(h: &Harness) -> anyhow::Result<hb_message::Id> {
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "test-device@1.0")?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    Ok(pid)
}

fn registered(p: &Processes, name: &str) -> bool {
    p.context().registry().contains(name)
}

#[actix_rt::test]
async fn by_default_the_test_device_is_registered_and_computes() -> anyhow::Result<()> {
    let h = harness();
    let p = ProcessBuilder::new(h.scheduler.clone()).start()?;
    assert!(registered(&p, "test-device@1.0"));
    let pid = register_test_device_process(&h).await?;
    // Slot 0 (the definition) is computed too.
    assert_eq!(p.compute(pid, 0).await?.state.get_int("count"), Some(1));
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn with_test_devices_off_it_is_not_registered_and_its_processes_do_not_compute(
) -> anyhow::Result<()> {
    let h = harness();
    let p = ProcessBuilder::new(h.scheduler.clone())
        .test_devices(false)
        .start()?;
    assert!(!registered(&p, "test-device@1.0"));
    for other in ["process@1.0", "push@1.0", "patch@1.0", "lua@5.3a"] {
        assert!(registered(&p, other), "{other} stays registered");
    }
    let pid = register_test_device_process(&h).await?;
    let err = p.compute(pid, 0).await.unwrap_err();
    assert!(err.to_string().contains("test-device@1.0"), "{err}");
    assert!((400..600).contains(&err.status()), "{err}");
    p.shutdown().await;
    Ok(())
}
