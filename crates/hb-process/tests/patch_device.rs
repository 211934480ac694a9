//! SPEC §6.11 `patch@1.0`, run the way a process runs it: in a real
//! `stack@1.0` after an execution device (`test-device@1.0`, which copies
//! the body's `outbox` to `results/outbox`), resolved through
//! `Context::resolve`.

use std::sync::Arc;

use hb_device::{Context, DeviceRegistry, Outcome, ResolveError};
use hb_message::{msg, Message, NodeKey, Value};
use hb_process::patch::{PatchDevice, PROTECTED_KEYS};
use hb_process::test_device::TestDevice;

fn ctx() -> Context {
    let mut registry = DeviceRegistry::new();
    registry
        .register(Arc::new(TestDevice::new(false)))
        .expect("registered once");
    registry
        .register(Arc::new(PatchDevice::new()))
        .expect("registered once");
    Context::new(registry, NodeKey::from_seed(&[3; 32]))
}

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

/// A state whose execution device is `["test-device@1.0", "patch@1.0"]`.
fn stack() -> Message {
    msg! {
        "device" => "stack@1.0",
        "device-stack" => list(vec!["test-device@1.0".into(), "patch@1.0".into()]),
    }
}

async fn resolve(ctx: &Context, base: Message, request: Message) -> Result<Message, ResolveError> {
    match ctx.resolve(base, &request).await? {
        Outcome::Ok(m) => Ok(m),
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn init(ctx: &Context, base: Message) -> Message {
    resolve(ctx, base, msg! { "path" => "init" })
        .await
        .expect("init")
}

/// Runs the slot whose body sends `outbox`.
async fn compute(ctx: &Context, state: Message, slot: i64, outbox: Vec<Value>) -> Message {
    let assignment = msg! {
        "path" => "compute",
        "slot" => slot,
        "body" => msg! { "outbox" => list(outbox) },
    };
    resolve(ctx, state, assignment)
        .await
        .expect("the slot completes")
}

fn outbox(state: &Message) -> Vec<Value> {
    state
        .get_path("results/outbox")
        .and_then(Value::as_list)
        .map(<[Value]>::to_vec)
        .expect("an outbox list")
}

fn patch_errors(state: &Message) -> Vec<Message> {
    state
        .get_path("results/patch-errors")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .map(|v| v.as_message().cloned().expect("records are messages"))
        .collect()
}

#[actix_rt::test]
async fn spec_example_send_a_patch_and_the_state_holds_it() {
    let ctx = ctx();
    let state = init(&ctx, stack()).await;
    // Send({device = "patch@1.0", balances = {alice = 5}}) at slot 1.
    let sent = msg! { "device" => "patch@1.0", "balances" => msg! { "alice" => 5 } };
    let state = compute(&ctx, state, 1, vec![sent.into()]).await;
    assert_eq!(state.get_path("balances/alice"), Some(&Value::Int(5)));
    // The execution device ran first, and the stack restored itself.
    assert_eq!(state.get_int("count"), Some(1));
    assert_eq!(state.get_text("device"), Some("stack@1.0"));
    assert_eq!(state.get("device-key"), None);
    // The patch is not left to be pushed.
    assert!(outbox(&state).is_empty());
    assert!(patch_errors(&state).is_empty());

    // A later slot merges into what earlier slots wrote.
    let more = msg! { "method" => "PATCH", "balances" => msg! { "bob" => 2 } };
    let state = compute(&ctx, state, 2, vec![more.into()]).await;
    assert_eq!(
        state.get("balances"),
        Some(&Value::from(msg! { "alice" => 5, "bob" => 2 }))
    );
}

#[actix_rt::test]
async fn method_and_device_match_case_insensitively_and_other_entries_keep_order() {
    let ctx = ctx();
    let state = init(&ctx, stack()).await;
    let entries = vec![
        msg! { "target" => "p1", "data" => "a" }.into(),
        msg! { "method" => "patch", "x" => 1 }.into(),
        msg! { "method" => "GET", "target" => "p2" }.into(),
        msg! { "device" => "PATCH@1.0", "y" => msg! { "z" => 2 } }.into(),
        msg! { "method" => "Patch", "w" => 3 }.into(),
        msg! { "device" => "patch@2.0", "target" => "p3" }.into(),
    ];
    let state = compute(&ctx, state, 1, entries).await;
    assert_eq!(
        (
            state.get_int("x"),
            state.get_path("y/z"),
            state.get_int("w")
        ),
        (Some(1), Some(&Value::Int(2)), Some(3))
    );
    assert_eq!(
        outbox(&state),
        vec![
            msg! { "target" => "p1", "data" => "a" }.into(),
            msg! { "method" => "GET", "target" => "p2" }.into(),
            msg! { "device" => "patch@2.0", "target" => "p3" }.into(),
        ]
    );
    assert!(patch_errors(&state).is_empty());
}

#[actix_rt::test]
async fn every_protected_key_is_reported_with_its_index_and_left_unchanged() {
    let ctx = ctx();
    let mut base = stack();
    for k in [
        "process",
        "type",
        "snapshot",
        "initialized",
        "at-slot",
        "execution-device",
        "push-device",
    ] {
        base.insert(k, format!("original {k}")).unwrap();
    }
    base.insert("input-prefix", "process").unwrap();
    base.insert("output-prefixes", msg! { "1" => "" }).unwrap();
    let state = init(&ctx, base).await;
    let before = state.clone();

    let mut forged = msg! { "method" => "PATCH", "allowed" => 1 };
    let mut protected: Vec<&str> = PROTECTED_KEYS.to_vec();
    protected.extend(["execution-device", "custom-device"]);
    for k in &protected {
        forged.insert(k, "forged").unwrap();
    }
    let entries = vec![msg! { "target" => "x" }.into(), forged.into()];
    let state = compute(&ctx, state, 1, entries).await;

    assert_eq!(state.get_int("allowed"), Some(1));
    for k in &protected {
        match *k {
            // Written by the slot itself, never by the patch.
            "results" => assert_eq!(state.get_path("results/output"), Some(&Value::from("ok"))),
            "device" => assert_eq!(state.get_text("device"), Some("stack@1.0")),
            _ => assert_eq!(state.get(k), before.get(k), "{k}"),
        }
    }
    let mut reported: Vec<String> = patch_errors(&state)
        .iter()
        .map(|e| {
            assert_eq!(e.get_int("index"), Some(2), "{e:?}");
            assert_eq!(e.get_text("reason"), Some("protected-key"), "{e:?}");
            e.get_text("key").expect("a key").to_string()
        })
        .collect();
    reported.sort();
    // `device` is stripped from a patch before anything is checked.
    let mut expected: Vec<String> = protected
        .iter()
        .filter(|k| **k != "device")
        .map(|k| k.to_string())
        .collect();
    expected.sort();
    assert_eq!(reported, expected);
    assert_eq!(outbox(&state), vec![msg! { "target" => "x" }.into()]);
}

#[actix_rt::test]
async fn an_entry_that_is_not_a_message_is_reported_and_the_slot_completes() {
    let ctx = ctx();
    let state = init(&ctx, stack()).await;
    let entries = vec![
        Value::from("not a message"),
        msg! { "method" => "PATCH", "a" => 1 }.into(),
        Value::Int(9),
    ];
    let state = compute(&ctx, state, 1, entries).await;
    assert_eq!(state.get_int("a"), Some(1));
    assert_eq!(
        patch_errors(&state),
        vec![
            msg! { "index" => 1, "reason" => "not-a-message" },
            msg! { "index" => 3, "reason" => "not-a-message" },
        ]
    );
    assert_eq!(
        outbox(&state),
        vec![Value::from("not a message"), Value::Int(9)]
    );
}

#[actix_rt::test]
async fn patch_from_and_patch_to_are_honoured() {
    let ctx = ctx();
    let mut base = stack();
    base.insert("patch-from", "results/outbox").unwrap();
    base.insert("patch-to", "app/state").unwrap();
    base.insert("app", msg! { "state" => msg! { "kept" => true } })
        .unwrap();
    let state = init(&ctx, base).await;
    let state = compute(
        &ctx,
        state,
        1,
        vec![msg! { "method" => "PATCH", "balances" => msg! { "alice" => 5 } }.into()],
    )
    .await;
    assert_eq!(
        state.get_path("app/state/balances/alice"),
        Some(&Value::Int(5))
    );
    assert_eq!(state.get_path("app/state/kept"), Some(&Value::Bool(true)));
    assert_eq!(state.get("balances"), None);

    // With `patch-from` elsewhere the outbox is not read.
    let mut base = stack();
    base.insert("patch-from", "inbox").unwrap();
    base.insert(
        "inbox",
        list(vec![msg! { "method" => "PATCH", "from-inbox" => 1 }.into()]),
    )
    .unwrap();
    let state = init(&ctx, base).await;
    let state = compute(
        &ctx,
        state,
        1,
        vec![msg! { "method" => "PATCH", "from-outbox" => 1 }.into()],
    )
    .await;
    assert_eq!(state.get_int("from-inbox"), Some(1));
    assert_eq!(state.get("from-outbox"), None);
    assert_eq!(state.get("inbox"), Some(&list(vec![])));
    assert_eq!(outbox(&state).len(), 1);
}

#[actix_rt::test]
async fn nested_messages_merge_and_scalars_replace() {
    let ctx = ctx();
    let mut base = stack();
    base.insert(
        "balances",
        msg! { "alice" => 1, "bob" => 2, "meta" => msg! { "a" => 1 } },
    )
    .unwrap();
    base.insert("name", "old").unwrap();
    base.insert("tags", list(vec!["a".into(), "b".into()]))
        .unwrap();
    let state = init(&ctx, base).await;
    let entries = vec![
        msg! {
            "method" => "PATCH",
            "balances" => msg! { "alice" => 5, "meta" => msg! { "b" => 2 } },
            "name" => "new",
            "tags" => list(vec!["c".into()]),
        }
        .into(),
        msg! { "method" => "PATCH", "balances" => msg! { "bob" => 3 } }.into(),
    ];
    let state = compute(&ctx, state, 1, entries).await;
    assert_eq!(
        state.get("balances"),
        Some(&Value::from(msg! {
            "alice" => 5,
            "bob" => 3,
            "meta" => msg! { "a" => 1, "b" => 2 },
        }))
    );
    assert_eq!(state.get_text("name"), Some("new"));
    assert_eq!(state.get("tags"), Some(&list(vec!["c".into()])));
}

#[actix_rt::test]
async fn init_snapshot_and_normalize_skip_the_patch_device() {
    let ctx = ctx();
    let pending = || {
        msg! {
            "outbox" => list(vec![msg! { "method" => "PATCH", "applied" => true }.into()]),
        }
    };

    // init: the execution device initialises; the pending patch is untouched.
    let mut base = stack();
    base.insert("results", pending()).unwrap();
    let state = init(&ctx, base).await;
    assert_eq!(state.get_int("count"), Some(0));
    assert_eq!(state.get("applied"), None);
    assert_eq!(state.get("results"), Some(&Value::from(pending())));

    // snapshot, as process@1.0 takes it (Map mode): only the execution
    // device answers.
    let snap = resolve(
        &ctx,
        state.clone(),
        msg! { "path" => "snapshot", "mode" => "Map" },
    )
    .await
    .unwrap();
    assert_eq!(
        snap.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        vec!["1"]
    );

    // normalize: the execution device restores; the patch is untouched.
    let mut restored = state.clone();
    restored.insert("snapshot", snap).unwrap();
    let restored = resolve(&ctx, restored, msg! { "path" => "normalize" })
        .await
        .unwrap();
    assert_eq!(restored.get("applied"), None);
    assert_eq!(restored.get("results"), Some(&Value::from(pending())));

    // Any other key (an assignment's path) runs it.
    let assignment = msg! { "path" => "other-key", "slot" => 1, "body" => pending() };
    let ran = resolve(&ctx, state, assignment).await.unwrap();
    assert_eq!(ran.get("applied"), Some(&Value::Bool(true)));
    assert!(outbox(&ran).is_empty());
}

/// SPEC §6.11's example through the whole process layer: a process whose
/// execution device is `stack@1.0` over `test-device@1.0` and `patch@1.0`,
/// computed by its worker, restored from its snapshot by a cold worker.
#[actix_rt::test]
async fn a_process_stack_with_patch_writes_its_state_through_the_worker() -> anyhow::Result<()> {
    use hb_process::{ProcessBuilder, ProcessConfig};
    use hb_testkit::Harness;
    let h = Harness::start(hb_scheduler::SchedulerConfig {
        validate_process_devices: false,
        ..Default::default()
    });
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", h.key.address())?
        .with("execution-device", "stack@1.0")?
        .with(
            "device-stack",
            Value::List(vec!["test-device@1.0".into(), "patch@1.0".into()]),
        )?
        .commit(&Harness::client(1), None)?;
    let pid = def.id_all()?;
    h.schedule(def).await?;
    let patch = Message::new()
        .with("device", "patch@1.0")?
        .with("balances", Message::new().with("alice", 5)?)?;
    let m = Message::new()
        .with("target", pid.to_human())?
        .with("add", 1)?
        .with("outbox", Value::List(vec![Value::Message(patch)]))?
        .commit(&Harness::client(1), None)?;
    let slot = h.schedule(m).await?.slot;
    let p = ProcessBuilder::new(h.scheduler.clone())
        .config(ProcessConfig::default())
        .start()?;
    let state = p.compute(pid, slot).await?.state;
    assert_eq!(state.get_path("balances/alice"), Some(&Value::Int(5)));
    assert_eq!(state.get_int("sum"), Some(1));
    assert_eq!(
        state
            .get_path("results/outbox")
            .and_then(Value::as_list)
            .map(<[Value]>::len),
        Some(0),
        "the patch left the outbox"
    );
    p.shutdown().await;
    Ok(())
}
