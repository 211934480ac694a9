//! SPEC §5.6: the `scheduler@1.0` device through the resolution engine —
//! POST and GET `schedule` (page cap, gaps, `continues`, aos-2), `slot`,
//! `status`, `next` with its hash-chain checks, `location`, `checkpoint`.

use hb_device::{Context, Outcome, ResolveError};
use hb_message::ErrorCode;
use hb_message::{Id, Message, NodeKey, Value};
use hb_scheduler::{SchedulerConfig, SchedulerError};
use hb_testkit::Harness;

fn scheduler_base() -> Message {
    Message::new()
        .with("device", "scheduler@1.0")
        .expect("valid key")
}

fn req(pairs: &[(&str, Value)]) -> Message {
    let mut m = Message::new();
    for (k, v) in pairs {
        m.insert(k, v.clone()).expect("valid key");
    }
    m
}

async fn ok(ctx: &Context, base: Message, request: Message) -> Message {
    match ctx.resolve(base, &request).await {
        Ok(Outcome::Ok(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The scheduler error inside a resolution error.
fn scheduler_error(e: &ResolveError) -> &SchedulerError {
    match e {
        ResolveError::Device { .. } => e
            .device_source()
            .and_then(|s| s.downcast_ref::<SchedulerError>())
            .expect("scheduler@1.0 fails with SchedulerError"),
        other => panic!("expected a device error, got {other:?}"),
    }
}

fn definition(h: &Harness, client: &NodeKey) -> Message {
    Message::new()
        .with("type", "Process")
        .and_then(|m| m.with("device", "process@1.0"))
        .and_then(|m| m.with("scheduler", h.key.address()))
        .and_then(|m| m.commit(client, None))
        .expect("a valid definition")
}

#[actix_rt::test]
async fn post_schedule_registers_then_assigns() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let client = Harness::client(1);
    let def = definition(&h, &client);
    let pid = def.id_all()?;
    let post = |body: Message| {
        req(&[
            ("path", "schedule".into()),
            ("method", "POST".into()),
            ("body", body.into()),
        ])
    };
    let a0 = ok(&ctx, scheduler_base(), post(def)).await;
    assert_eq!(a0.get_int("slot"), Some(0));
    assert_eq!(a0.get_text("process"), Some(pid.to_human().as_str()));
    let a1 = ok(
        &ctx,
        scheduler_base(),
        post(Harness::message(&client, &pid, 1)),
    )
    .await;
    assert_eq!(a1.get_int("slot"), Some(1));
    // `init` routes to `schedule`; `checkpoint` returns the base unchanged.
    let a2 = ok(
        &ctx,
        scheduler_base(),
        req(&[
            ("path", "init".into()),
            ("method", "POST".into()),
            ("body", Harness::message(&client, &pid, 2).into()),
        ]),
    )
    .await;
    assert_eq!(a2.get_int("slot"), Some(2));
    let base = scheduler_base().with("marker", 7)?;
    let same = ok(&ctx, base.clone(), req(&[("path", "checkpoint".into())])).await;
    assert_eq!(same.without_private(), base);
    Ok(())
}

#[actix_rt::test]
async fn processes_naming_unknown_devices_are_refused() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let client = Harness::client(2);
    let def = Message::new()
        .with("type", "Process")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "nonexistent@9.9")?
        .commit(&client, None)?;
    let err = ctx
        .resolve(
            scheduler_base(),
            &req(&[
                ("path", "schedule".into()),
                ("method", "POST".into()),
                ("body", def.into()),
            ]),
        )
        .await
        .expect_err("unknown device");
    let e = scheduler_error(&err);
    assert_eq!((e.code(), e.status()), ("unknown-device", 400));
    assert!(e.to_string().contains("nonexistent@9.9"), "{e}");
    assert!(h.scheduler.processes().await?.is_empty());
    Ok(())
}

#[actix_rt::test]
async fn get_schedule_pages_are_capped_and_say_whether_more_follow() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        schedule_page_max: 3,
        ..SchedulerConfig::default()
    });
    let ctx = h.context();
    let client = Harness::client(3);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    for n in 1..=9 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
    }
    let get = |from: i64, to: Option<i64>| {
        let mut r = req(&[
            ("path", "schedule".into()),
            ("target", pid.to_human().into()),
            ("from", Value::from(from.to_string())),
        ]);
        if let Some(t) = to {
            r.insert("to", t).expect("valid key");
        }
        r
    };
    let page = ok(&ctx, scheduler_base(), get(2, None)).await;
    assert_eq!(page.get_text("type"), Some("schedule"));
    let slots: Vec<String> = page
        .get_message("assignments")
        .unwrap()
        .keys()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        slots,
        vec!["2", "3", "4", "5"],
        "to - from is capped at schedule_page_max"
    );
    assert_eq!(page.get("continues"), Some(&Value::Bool(true)));
    let last = ok(&ctx, scheduler_base(), get(8, Some(9))).await;
    assert_eq!(last.get("continues"), Some(&Value::Bool(false)));
    let empty = ok(&ctx, scheduler_base(), get(5, Some(3))).await;
    assert!(empty.get_message("assignments").unwrap().is_empty());
    // Negative `from` counts as 0; a non-integer `from` is invalid-range.
    let from_zero = ok(&ctx, scheduler_base(), get(-5, Some(1))).await;
    assert_eq!(from_zero.get_message("assignments").unwrap().len(), 2);
    let mut bad = get(0, None);
    bad.insert("from", "soon")?;
    let err = ctx
        .resolve(scheduler_base(), &bad)
        .await
        .expect_err("invalid range");
    assert_eq!(scheduler_error(&err).code(), "invalid-range");
    // An unknown process is 404.
    let unknown = req(&[
        ("path", "schedule".into()),
        ("target", Id::hash(b"x").to_human().into()),
    ]);
    let err = ctx
        .resolve(scheduler_base(), &unknown)
        .await
        .expect_err("unknown process");
    assert_eq!(scheduler_error(&err).status(), 404);
    Ok(())
}

#[actix_rt::test]
async fn get_schedule_as_json_text_is_the_json_of_the_bundle() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        schedule_page_max: 3,
        ..SchedulerConfig::default()
    });
    let ctx = h.context();
    let client = Harness::client(5);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    for n in 1..=9 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
    }
    // Written back from the stored records (and so refused by their
    // checks) or encoded from the decoded bundle: the same JSON value,
    // up to the time each page was read.
    let without_time = |mut j: serde_json::Value| {
        let t = j.as_object_mut().and_then(|o| o.remove("timestamp"));
        assert!(t.as_ref().is_some_and(serde_json::Value::is_i64), "{t:?}");
        j
    };
    for (from, to) in [
        (2, None),
        (8, Some(9)),
        (5, Some(3)),
        (-5, Some(1)),
        (0, Some(50)),
    ] {
        let mut r = req(&[
            ("path", "schedule".into()),
            ("target", pid.to_human().into()),
            ("from", Value::from(from)),
        ]);
        if let Some(t) = to {
            r.insert("to", t)?;
        }
        let bundle = ok(&ctx, scheduler_base(), r.clone()).await;
        r.insert("accept", "application/json")?;
        let text = ok(&ctx, scheduler_base(), r).await;
        assert_eq!(text.get_text("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_str(text.get_text("body").unwrap())?;
        assert_eq!(
            without_time(json),
            without_time(hb_message::json::to_json(&bundle)),
            "from {from}, to {to:?}"
        );
    }
    Ok(())
}

#[actix_rt::test]
async fn aos2_is_returned_as_json_when_asked_for() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let client = Harness::client(4);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    h.schedule(Harness::message(&client, &pid, 1)).await?;
    let r = req(&[
        ("path", "schedule".into()),
        ("target", pid.to_human().into()),
        ("accept", "application%2Faos-2".into()),
    ]);
    let out = ok(&ctx, scheduler_base(), r).await;
    assert_eq!(out.get_text("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(out.get_text("body").unwrap())?;
    assert_eq!(json["edges"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        json["page_info"]["process"],
        serde_json::Value::String(pid.to_human())
    );
    let back = hb_scheduler::formats::aos2_to_assignments(&json, |_| None)?;
    assert_eq!(back.assignments.len(), 2);
    Ok(())
}

#[actix_rt::test]
async fn slot_and_status_report_the_current_state() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let client = Harness::client(5);
    let (pid, _) = h.spawn_process(&client, 0).await?;
    h.schedule(Harness::message(&client, &pid, 1)).await?;
    let slot = ok(
        &ctx,
        scheduler_base(),
        req(&[("path", "slot".into()), ("target", pid.to_human().into())]),
    )
    .await;
    assert_eq!(slot.get_int("current"), Some(1));
    assert_eq!(slot.get_int("block-height"), Some(0));
    assert_eq!(slot.get_text("block-hash"), Some("A".repeat(43).as_str()));
    assert_eq!(slot.get_text("cache-control"), Some("no-store"));
    assert_eq!(slot.get_text("wallet-address"), Some(h.key.address()));
    let current = ctx
        .resolve(
            scheduler_base(),
            &req(&[
                ("path", "slot/current".into()),
                ("target", pid.to_human().into()),
            ]),
        )
        .await?;
    assert_eq!(current, Outcome::Raw(Value::Int(1)));
    let status = ok(&ctx, scheduler_base(), req(&[("path", "status".into())])).await;
    assert_eq!(status.get_text("address"), Some(h.key.address()));
    assert_eq!(
        status.get("processes"),
        Some(&Value::List(vec![pid.to_human().into()]))
    );
    let err = ctx
        .resolve(
            scheduler_base(),
            &req(&[
                ("path", "slot".into()),
                ("target", Id::hash(b"none").to_human().into()),
            ]),
        )
        .await
        .expect_err("unknown");
    assert_eq!(scheduler_error(&err).code(), "unknown-process");
    Ok(())
}

#[actix_rt::test]
async fn next_walks_the_schedule_and_checks_the_chain() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig {
        paranoid_verify: true,
        ..SchedulerConfig::default()
    });
    let ctx = h.context();
    let client = Harness::client(6);
    let def = definition(&h, &client);
    let pid = def.id_all()?;
    h.schedule(def.clone()).await?;
    for n in 1..=20 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
    }
    // A process state: the definition under `process`, at-slot -1.
    let mut state = scheduler_base().with("process", def)?.with("at-slot", -1)?;
    for expected in 0..=20i64 {
        let reply = ok(&ctx, state.clone(), req(&[("path", "next".into())])).await;
        let a = reply.get_message("body").expect("an assignment");
        assert_eq!(a.get_int("slot"), Some(expected));
        let mut next_state = reply.get_message("state").expect("the state").clone();
        next_state.insert("at-slot", expected)?;
        state = next_state;
    }
    let err = ctx
        .resolve(state, &req(&[("path", "next".into())]))
        .await
        .expect_err("past the end");
    match scheduler_error(&err) {
        SchedulerError::SlotNotAvailable { requested, latest } => {
            assert_eq!((*requested, *latest), (21, 20))
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[actix_rt::test]
async fn next_halts_on_a_broken_chain() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let client = Harness::client(7);
    let def = definition(&h, &client);
    let pid = def.id_all()?;
    h.schedule(def.clone()).await?;
    h.schedule(Harness::message(&client, &pid, 1)).await?;
    // Forge slot 2 with a wrong chain, signed by the node key itself.
    let body = Harness::message(&client, &pid, 2);
    let forged = Message::new()
        .with("process", pid.to_human())?
        .with("slot", 2)?
        .with("hash-chain", hb_scheduler::hash_chain::to_text(&[7; 32]))?
        .with("body", body)?
        .commit(&h.key, None)?;
    hb_store::SchedulerCache::new(h.store.clone()).write(&hb_store::AssignmentRecord {
        pid,
        slot: 2,
        hash_chain: vec![7; 32],
        assignment_id: forged.id_all()?,
        assignment: forged,
    })?;
    let state = scheduler_base().with("process", def)?.with("at-slot", 1)?;
    let err = ctx
        .resolve(state, &req(&[("path", "next".into())]))
        .await
        .expect_err("broken chain");
    match scheduler_error(&err) {
        SchedulerError::HashChainMismatch { slot, .. } => assert_eq!(*slot, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(scheduler_error(&err).code(), "hash-chain-mismatch");
    Ok(())
}

#[actix_rt::test]
async fn locations_register_with_rising_nonces() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let get = |address: Option<&str>| {
        let mut r = req(&[("path", "location".into())]);
        if let Some(a) = address {
            r.insert("address", a).expect("valid key");
        }
        r
    };
    let err = ctx
        .resolve(scheduler_base(), &get(None))
        .await
        .expect_err("nothing yet");
    let e = scheduler_error(&err);
    assert_eq!((e.code(), e.status()), ("location-not-found", 404));
    assert!(
        e.to_string().starts_with("No location found for address: "),
        "{e}"
    );

    // Self-registration: the body is signed by the node key.
    let body = Message::new()
        .with("url", "http://node.example:8734")?
        .commit(&h.key, None)?;
    let post = |body: Message| {
        req(&[
            ("path", "location".into()),
            ("method", "POST".into()),
            ("body", body.into()),
        ])
    };
    let rec = ok(&ctx, scheduler_base(), post(body.clone())).await;
    assert_eq!(rec.get_int("nonce"), Some(0));
    assert_eq!(rec.get_text("type"), Some("scheduler-location"));
    assert_eq!(rec.committers()?, vec![h.key.address().to_string()]);
    let got = ok(&ctx, scheduler_base(), get(None)).await;
    assert_eq!(got.get_message("body"), Some(&rec.without_private()));
    // The same nonce again is stale; the next one is accepted.
    let stale = Message::new().with("nonce", 0)?.commit(&h.key, None)?;
    let err = ctx
        .resolve(scheduler_base(), &post(stale))
        .await
        .expect_err("stale");
    assert_eq!(scheduler_error(&err).code(), "stale-nonce");
    let rec1 = ok(&ctx, scheduler_base(), post(body)).await;
    assert_eq!(rec1.get_int("nonce"), Some(1));

    // A third party's own signed record is stored under its address.
    let other = Harness::client(8);
    let theirs = Message::new()
        .with("type", "scheduler-location")?
        .with("url", "http://other:1")?
        .with("nonce", 5)?
        .commit(&other, None)?;
    ok(&ctx, scheduler_base(), post(theirs.clone())).await;
    let got = ok(&ctx, scheduler_base(), get(Some(other.address()))).await;
    assert_eq!(got.get_message("body"), Some(&theirs));
    // Unsigned or tampered records are refused.
    let unsigned = Message::new().with("url", "http://x")?;
    let err = ctx
        .resolve(scheduler_base(), &post(unsigned))
        .await
        .expect_err("unsigned");
    assert_eq!(scheduler_error(&err).code(), "invalid-location");
    let mut tampered = theirs.clone();
    tampered.insert("url", "http://evil")?;
    let err = ctx
        .resolve(scheduler_base(), &post(tampered))
        .await
        .expect_err("tampered");
    assert_eq!(scheduler_error(&err).code(), "invalid-location");
    Ok(())
}

#[actix_rt::test]
async fn a_process_on_a_registered_remote_scheduler_is_redirected() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let remote = Harness::client(9);
    register_remote(&ctx, &remote).await?;
    let def = Message::new()
        .with("type", "Process")?
        .with("scheduler", remote.address())?
        .commit(&Harness::client(1), None)?;
    let err = h.schedule(def).await.expect_err("remote");
    match err {
        SchedulerError::Redirect { url, .. } => assert_eq!(url, "http://remote:8734"),
        other => panic!("{other:?}"),
    }
    Ok(())
}

/// Stores `remote`'s own location record: `http://remote:8734`, nonce 1,
/// time-to-live 60 s.
async fn register_remote(ctx: &Context, remote: &NodeKey) -> anyhow::Result<()> {
    let record = Message::new()
        .with("type", "scheduler-location")?
        .with("url", "http://remote:8734")?
        .with("nonce", 1)?
        .with("time-to-live", 60_000)?
        .commit(remote, None)?;
    ok(ctx, scheduler_base(), post_location(record)).await;
    Ok(())
}

fn post_location(body: Message) -> Message {
    req(&[
        ("path", "location".into()),
        ("method", "POST".into()),
        ("body", body.into()),
    ])
}

#[actix_rt::test]
async fn location_get_refuses_malformed_addresses_with_400() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    for bad in [
        Value::from("zzz"),
        Value::Int(5),
        Value::from("!".repeat(43)),
    ] {
        let r = req(&[("path", "location".into()), ("address", bad.clone())]);
        let err = ctx
            .resolve(scheduler_base(), &r)
            .await
            .expect_err("malformed address");
        let e = scheduler_error(&err);
        assert_eq!(
            (e.code(), e.status()),
            ("invalid-address", 400),
            "{bad:?}: {e}"
        );
    }
    Ok(())
}

#[actix_rt::test]
async fn a_location_nonce_at_i64_max_has_no_successor() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let other = Harness::client(8);
    let record = |nonce: Option<i64>| -> anyhow::Result<Message> {
        let mut m = Message::new()
            .with("type", "scheduler-location")?
            .with("url", "http://other:1")?;
        if let Some(n) = nonce {
            m.insert("nonce", n)?;
        }
        Ok(m.commit(&other, None)?)
    };
    ok(
        &ctx,
        scheduler_base(),
        post_location(record(Some(i64::MAX))?),
    )
    .await;
    // No nonce given: "existing + 1" does not exist; a typed 400, no wrap.
    let err = ctx
        .resolve(scheduler_base(), &post_location(record(None)?))
        .await
        .expect_err("no next nonce");
    let e = scheduler_error(&err);
    assert_eq!((e.code(), e.status()), ("invalid-location", 400), "{e}");
    let err = ctx
        .resolve(scheduler_base(), &post_location(record(Some(i64::MAX))?))
        .await
        .expect_err("the same nonce is stale");
    assert_eq!(scheduler_error(&err).code(), "stale-nonce");
    Ok(())
}

#[actix_rt::test]
async fn an_expired_location_is_not_used_for_routing() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let ctx = h.context();
    let remote = Harness::client(9);
    register_remote(&ctx, &remote).await?;
    let def = Message::new()
        .with("type", "Process")?
        .with("scheduler", remote.address())?
        .commit(&Harness::client(1), None)?;
    // Within its time-to-live (counted from storage) the record routes…
    h.clock.advance(60_000);
    let err = h.schedule(def.clone()).await.expect_err("remote");
    assert_eq!(err.code(), "redirect", "{err}");
    // …and one millisecond later it is ignored.
    h.clock.advance(1);
    let err = h.schedule(def).await.expect_err("remote, location unknown");
    assert_eq!(err.code(), "scheduler-location-unknown", "{err}");
    assert!(err.to_string().contains(remote.address()), "{err}");
    Ok(())
}

#[actix_rt::test]
async fn a_definition_whose_scheduler_carries_a_hint_is_redirected_to_it() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let remote = Harness::client(9);
    let def = Message::new()
        .with("type", "Process")?
        .with(
            "scheduler",
            format!("{}?hint=http://hinted:8734", remote.address()),
        )?
        .commit(&Harness::client(1), None)?;
    match h.schedule(def.clone()).await.expect_err("remote") {
        SchedulerError::Redirect { url, pid } => {
            assert_eq!(url, "http://hinted:8734");
            assert_eq!(pid, def.id_all()?.to_human());
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
    // The same definition in `scheduler-location` is read the same way.
    let def = Message::new()
        .with("type", "Process")?
        .with(
            "scheduler-location",
            format!("{}?hint=http://hinted:1", remote.address()),
        )?
        .commit(&Harness::client(1), None)?;
    let err = h.schedule(def).await.expect_err("remote");
    assert!(matches!(err, SchedulerError::Redirect { ref url, .. } if url == "http://hinted:1"));
    // Nothing was registered here.
    assert!(h.scheduler.processes().await?.is_empty());
    Ok(())
}
