//! SPEC §5.6.2: POST schedule's checks run in order, each failure is a
//! typed 4xx error naming the check, and a refused request changes nothing.

use hb_message::ErrorCode;
use hb_message::{Id, Message, NodeKey};
use hb_scheduler::{DedupPolicy, ScheduleRequest, SchedulerConfig, SchedulerError};
use hb_testkit::Harness;

fn code(r: Result<impl Sized, SchedulerError>) -> (&'static str, u16) {
    let e = r.err().expect("the request is refused");
    (e.code(), e.status())
}

#[actix_rt::test]
async fn each_bad_input_fails_its_own_check_and_changes_nothing() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(1);
    let (pid, _) = h.spawn_process(&client, 0).await?;

    // 2. Target.
    let untargeted = Message::new().with("action", "x")?;
    assert_eq!(code(h.schedule(untargeted).await), ("missing-target", 400));
    let bad_target = Message::new().with("target", "not-an-id")?;
    assert_eq!(code(h.schedule(bad_target).await), ("invalid-target", 400));
    let mismatch = ScheduleRequest {
        message: Harness::message(&client, &pid, 1),
        request_target: Some(Id::hash(b"elsewhere").to_human()),
        ..ScheduleRequest::default()
    };
    assert_eq!(
        code(h.scheduler.schedule(mismatch).await),
        ("target-mismatch", 400)
    );

    // 3. Commitments that name absent keys.
    let mut broken = Harness::message(&client, &pid, 2);
    broken.remove("action");
    assert_eq!(code(h.schedule(broken).await), ("invalid-commitments", 400));

    // 5. A signature that does not verify.
    let mut tampered = Harness::message(&client, &pid, 3);
    tampered.insert("n", 4)?;
    assert_eq!(code(h.schedule(tampered).await), ("invalid-signature", 400));

    // 6. A process without a scheduler, and a message to an unknown process.
    let orphan = Message::new()
        .with("type", "Process")?
        .commit(&client, None)?;
    assert_eq!(code(h.schedule(orphan).await), ("missing-scheduler", 400));
    let stray = Harness::message(&client, &Id::hash(b"nobody"), 1);
    assert_eq!(code(h.schedule(stray).await), ("unknown-process", 404));

    // Nothing above was assigned.
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(0));
    assert_eq!(h.scheduler.processes().await?, vec![pid]);
    assert_eq!(
        h.schedule(Harness::message(&client, &pid, 5)).await?.slot,
        1
    );
    Ok(())
}

#[actix_rt::test]
async fn signed_only_nodes_refuse_unsigned_messages() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        require_signed: true,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(2);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let unsigned = Message::new().with("target", pid.to_human())?;
    assert_eq!(code(h.schedule(unsigned).await), ("unsigned-message", 400));
    assert_eq!(h.scheduler.current(pid).await?.map(|c| c.slot), Some(0));
    Ok(())
}

#[actix_rt::test]
async fn unsigned_messages_are_accepted_by_default_and_never_deduplicated() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        dedup: DedupPolicy::SignedId,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(3);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let unsigned = Message::new().with("target", pid.to_human())?;
    assert_eq!(h.schedule(unsigned.clone()).await?.slot, 1);
    assert_eq!(h.schedule(unsigned).await?.slot, 2);
    Ok(())
}

#[actix_rt::test]
async fn a_remote_scheduler_is_not_assigned_here() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(4);
    let elsewhere = NodeKey::from_seed(&[9; 32]);
    let remote = Message::new()
        .with("type", "Process")?
        .with("scheduler", elsewhere.address())?
        .commit(&client, None)?;
    assert_eq!(
        code(h.schedule(remote).await),
        ("scheduler-location-unknown", 404)
    );
    assert!(h.scheduler.processes().await?.is_empty());
    Ok(())
}

#[actix_rt::test]
async fn only_committed_keys_are_scheduled() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(5);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    let mut m = Harness::message(&client, &pid, 1);
    m.insert("smuggled", "not signed")?;
    let a = h.schedule(m).await?;
    let body = a.body().expect("a body");
    assert!(body.get("smuggled").is_none());
    assert!(body.get("n").is_some());
    Ok(())
}
