//! SPEC §6.12 through the `Processes` handle and `process@1.0`'s `push`:
//! outbox entries targeting processes scheduled here are signed by the
//! node, scheduled on their targets, recorded, and never scheduled twice,
//! even when the records were lost after scheduling (a crash between the
//! two); entries without a target or with a target elsewhere are skipped
//! with the reason; the depth is bounded.

use std::sync::Arc;

use hb_device::Outcome;
use hb_message::{Id, Message, Value};
use hb_process::{ProcessBuilder, ProcessConfig, Processes};
use hb_testkit::Harness;

async fn register(h: &Harness, nonce: i64) -> anyhow::Result<Id> {
    let (pid, _) = h.spawn_process(&Harness::client(1), nonce).await?;
    Ok(pid)
}

fn start(h: &Harness) -> Processes {
    ProcessBuilder::new(h.scheduler.clone())
        .config(ProcessConfig::default())
        .start()
        .expect("the process layer starts")
}

fn pushed(reply: &Message) -> Vec<Message> {
    reply
        .get("pushed")
        .and_then(Value::as_list)
        .map(|l| l.iter().filter_map(Value::as_message).cloned().collect())
        .unwrap_or_default()
}

#[actix_rt::test]
async fn an_outbox_is_delivered_once_and_skips_are_explained() -> anyhow::Result<()> {
    let h = Harness::start(Default::default());
    let p = start(&h);
    let a = register(&h, 1).await?;
    let b = register(&h, 2).await?;
    let outbox = vec![
        Value::from(
            Message::new()
                .with("target", b.to_human())?
                .with("add", 7)?,
        ),
        Value::from(Message::new().with("add", 1)?),
        Value::from(Message::new().with("target", Id::hash(b"elsewhere").to_human())?),
    ];
    let m = Message::new()
        .with("target", a.to_human())?
        .with("outbox", Value::List(outbox))?
        .commit(&Harness::client(1), None)?;
    let slot = h.schedule(m).await?.slot;
    let reply = p.push(a, slot, None).await?;
    let entries = pushed(&reply);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].get_text("status"), Some("delivered"));
    assert_eq!(entries[0].get_text("target"), Some(b.to_human().as_str()));
    assert_eq!(entries[0].get_int("slot"), Some(1));
    assert_eq!(entries[1].get_text("reason"), Some("no-target"));
    assert_eq!(entries[2].get_text("reason"), Some("remote-target"));
    // B computed the pushed message, from A, signed by the node.
    let at_b = p.compute(b, 1).await?;
    assert_eq!(at_b.state.get_int("sum"), Some(7));
    let delivered = h.scheduler.assignment(b, 1).await?.expect("slot 1 of B");
    let body = delivered.get_message("body").expect("a body");
    assert_eq!(body.get_text("from-process"), Some(a.to_human().as_str()));
    assert_eq!(body.committers()?, vec![h.key.address().to_string()]);
    // Pushing again, even with the records lost, schedules nothing twice.
    let again = p.push(a, slot, None).await?;
    assert_eq!(pushed(&again)[0].get_int("slot"), Some(1));
    for index in 1..=3u64 {
        h.store.delete(&hb_store::keys::push(&a, slot, index))?;
    }
    let after_crash = p.push(a, slot, None).await?;
    assert_eq!(pushed(&after_crash)[0].get_int("slot"), Some(1));
    assert_eq!(
        h.scheduler.current(b).await?.map(|c| c.slot),
        Some(1),
        "B has one delivery"
    );
    // Records are durable per entry.
    let records = hb_store::PushCache::new(Arc::clone(&h.store)).list(&a, slot)?;
    assert_eq!(records.len(), 3);
    p.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn push_through_the_device_needs_a_slot_or_a_body_and_bounds_depth() -> anyhow::Result<()> {
    let h = Harness::start(Default::default());
    let p = start(&h);
    let a = register(&h, 1).await?;
    let base = Message::new().with("device", "process@1.0")?.with(
        "process",
        h.scheduler
            .assignment(a, 0)
            .await?
            .and_then(|x| x.get_message("body").cloned())
            .expect("definition"),
    )?;
    let call = |req: Message| {
        let ctx = p.context().clone();
        let base = base.clone();
        async move { ctx.resolve(base, &req).await }
    };
    let err = call(Message::new().with("path", "push")?)
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("missing-slot", 400), "{err}");
    let err = call(
        Message::new()
            .with("path", "push")?
            .with("slot", 0)?
            .with("max-depth", 9)?,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "invalid-slot", "{err}");
    // With a body: scheduled on the process first, then pushed.
    let body = Message::new()
        .with("add", 2)?
        .commit(&Harness::client(1), None)?;
    let reply = call(Message::new().with("path", "push")?.with("body", body)?).await?;
    let Outcome::Ok(reply) = reply else {
        panic!("a message")
    };
    assert_eq!(reply.get_int("slot"), Some(1));
    assert_eq!(p.compute(a, 1).await?.state.get_int("sum"), Some(2));
    p.shutdown().await;
    Ok(())
}

/// A push device of a process's own choosing.
struct Custom;

#[hb_device::async_trait]
impl hb_device::Device for Custom {
    fn name(&self) -> &str {
        "custom-push@1.0"
    }
    fn info(&self) -> hb_device::DeviceInfo {
        hb_device::DeviceInfo::handler().never_declines()
    }
    async fn call(
        &self,
        key: &hb_message::Key,
        _base: Message,
        _request: &Message,
        _ctx: &hb_device::Context,
    ) -> Result<Outcome, hb_device::ResolveError> {
        Ok(Outcome::Ok(
            Message::new()
                .with("pushed-by", "custom")?
                .with("key", key.as_str())?,
        ))
    }
}

#[actix_rt::test]
async fn push_runs_as_the_push_device_the_definition_names() -> anyhow::Result<()> {
    let h = Harness::start(hb_scheduler::SchedulerConfig {
        validate_process_devices: false,
        ..Default::default()
    });
    let p = ProcessBuilder::new(h.scheduler.clone())
        .device(Arc::new(Custom))?
        .start()?;
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "test-device@1.0")?
        .with("push-device", "custom-push@1.0")?
        .commit(&Harness::client(1), None)?;
    h.schedule(def.clone()).await?;
    let req = Message::new().with("path", "push")?.with("slot", 0)?;
    let Outcome::Ok(reply) = p.context().resolve(def, &req).await? else {
        panic!("a message")
    };
    assert_eq!(reply.get_text("pushed-by"), Some("custom"));
    assert_eq!(reply.get_text("key"), Some("push"));
    p.shutdown().await;
    Ok(())
}
