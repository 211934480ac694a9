//! Two rules the node's mainnet surface (SPEC §10.5) relies on, through
//! the whole process layer:
//!
//! - `Processes::dry_run_from`: an unsigned dry-run message sees the sender
//!   its caller vouches for as Lua's `msg.From`; a signed one keeps its
//!   first committer, whatever the caller says; plain `dry_run` of an
//!   unsigned message has no sender.
//! - a process whose execution device is not registered (a WASM device)
//!   answers 501 `unsupported-execution-device` naming it, to `compute`,
//!   `now`, `dry_run` and `push`, and no worker starts for it.

use hb_message::{ErrorCode, Id, Message, Value};
use hb_process::{Freshness, ProcessBuilder};
use hb_testkit::Harness;

const ECHO: &str = r#"
function init(process) return {} end
Handlers.add("who", { action = "Who" }, function(msg, state)
  print(tostring(msg.From))
end)
"#;

fn harness() -> Harness {
    Harness::start(hb_scheduler::SchedulerConfig {
        validate_process_devices: false,
        ..Default::default()
    })
}

async fn register(h: &Harness, execution_device: &str) -> anyhow::Result<Id> {
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", execution_device)?
        .with("script", ECHO)?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    Ok(pid)
}

fn output(answer: &Message) -> Option<&str> {
    answer.get_path("results/output").and_then(Value::as_text)
}

#[actix_rt::test]
async fn a_dry_run_sees_the_vouched_sender_only_when_its_message_is_unsigned() -> anyhow::Result<()>
{
    let h = harness();
    let pid = register(&h, "lua@5.3a").await?;
    let layer = ProcessBuilder::new(h.scheduler.clone()).start()?;
    let who = || Message::new().with("action", "Who");

    let vouched = layer
        .dry_run_from(pid, who()?, Some("alice".into()), Freshness::default())
        .await?;
    assert_eq!(output(&vouched), Some("alice\n"));

    let plain = layer.dry_run(pid, who()?, Freshness::default()).await?;
    assert_eq!(output(&plain), Some("nil\n"));

    let signer = Harness::client(2);
    let signed = who()?.commit(&signer, None)?;
    let answer = layer
        .dry_run_from(pid, signed, Some("alice".into()), Freshness::default())
        .await?;
    assert_eq!(
        output(&answer),
        Some(format!("{}\n", signer.address()).as_str())
    );

    // None of it was scheduled.
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(0));
    layer.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn a_process_on_an_unregistered_execution_device_is_refused_with_501() -> anyhow::Result<()> {
    let h = harness();
    let pid = register(&h, "genesis-wasm@1.0").await?;
    let m = Message::new()
        .with("target", pid.to_human())?
        .with("action", "Who")?
        .commit(&Harness::client(1), None)?;
    assert_eq!(h.schedule(m).await?.slot, 1, "it is scheduled");
    let layer = ProcessBuilder::new(h.scheduler.clone()).start()?;

    let refused = |e: hb_process::ComputeError| {
        assert_eq!(
            (e.status(), e.code()),
            (501, "unsupported-execution-device")
        );
        assert!(e.to_string().contains("genesis-wasm@1.0"), "{e}");
    };
    refused(layer.compute(pid, 1).await.expect_err("not computed"));
    refused(
        layer
            .now(pid, Freshness::default())
            .await
            .expect_err("not computed"),
    );
    refused(
        layer
            .dry_run(
                pid,
                Message::new().with("action", "Who")?,
                Freshness::default(),
            )
            .await
            .expect_err("not computed"),
    );
    refused(layer.push(pid, 1, None).await.expect_err("not computed"));

    // No worker started and nothing was computed.
    let status = layer.status(pid).await?;
    assert_eq!(status.get_text("worker"), Some("stopped"));
    assert_eq!(status.get_int("computed-slot"), Some(-1));
    layer.shutdown().await;
    Ok(())
}
