//! SPEC §4.4 Fold, error strategy, info and mode: the rules beyond the
//! examples table, with our own examples.

mod common;

use common::{captured, on_default_stack, stack_context};
use hb_device::test_support::{stack_of, test_context, trail};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hb_device::{DeviceConfig, ErrorStrategy, Outcome, ResolveError, DEFAULT_STACK_MAX_PASSES};
use hb_message::hashpath;
use hb_message::{msg, Message, Value};

async fn fold(stack: Message) -> Message {
    stack_context()
        .resolve(stack, &msg! { "path" => "mark" })
        .await
        .unwrap()
        .ok_message()
        .unwrap()
}

#[tokio::test]
async fn fold_transform_sets_device_key_prefixes_and_previous_values() {
    let mut stack = stack_of(&["capture", "capture", "capture"]);
    stack.insert("input-prefix", "stack-in").unwrap();
    stack
        .insert("input-prefixes", msg! { "2" => "in2" })
        .unwrap();
    stack
        .insert("output-prefixes", Value::List(vec!["out1".into()]))
        .unwrap();
    let m = fold(stack).await;
    let seen = captured(&m);
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0],
        msg! {
            "device" => "capture@test",
            "device-key" => "1",
            "pass" => 1,
            "input-prefix" => "stack-in",
            "output-prefix" => "out1",
            "previous-device" => "stack@1.0",
            "previous-input-prefix" => "stack-in"
        }
    );
    assert_eq!(
        seen[1],
        msg! {
            "device" => "capture@test",
            "device-key" => "2",
            "pass" => 1,
            "input-prefix" => "in2",
            "previous-device" => "capture@test",
            "previous-input-prefix" => "stack-in",
            "previous-output-prefix" => "out1"
        }
    );
    // Device 3 has no entries: the stack-level values, not device 2's.
    assert_eq!(seen[2].get_text("input-prefix"), Some("stack-in"));
    assert_eq!(seen[2].get("output-prefix"), None);
    assert_eq!(seen[2].get_text("previous-input-prefix"), Some("in2"));
}

#[tokio::test]
async fn fold_restores_device_prefixes_and_pass_and_removes_bookkeeping() {
    let mut stack = stack_of(&["capture", "loop"]);
    stack.insert("pass", 7).unwrap();
    stack.insert("input-prefix", "in").unwrap();
    stack
        .insert("output-prefixes", msg! { "1" => "o1", "2" => "o2" })
        .unwrap();
    let m = fold(stack).await;
    // During the fold the pass counter started at 1.
    let passes: Vec<i64> = captured(&m)
        .iter()
        .map(|c| c.get_int("pass").unwrap())
        .collect();
    assert_eq!(passes, vec![1, 2]);
    assert_eq!(m.get_text("device"), Some("stack@1.0"));
    assert_eq!(m.get_int("pass"), Some(7));
    assert_eq!(m.get_text("input-prefix"), Some("in"));
    assert_eq!(m.get("output-prefix"), None);
    for gone in [
        "device-key",
        "previous-device",
        "previous-input-prefix",
        "previous-output-prefix",
    ] {
        assert_eq!(m.get(gone), None, "{gone}");
    }
}

#[tokio::test]
async fn fold_pass_restarts_from_the_first_device() {
    let m = fold(stack_of(&["mark", "loop", "mark"])).await;
    assert_eq!(trail(&m), vec!["1", "p1", "1", "p2", "3"]);
    assert_eq!(m.get("pass"), None);
}

#[tokio::test]
async fn fold_skips_a_device_answering_not_found_with_the_message_unchanged() {
    // absent@test is called (a handler) and answers not-found itself.
    let m = fold(stack_of(&["mark", "absent", "mark"])).await;
    assert_eq!(trail(&m), vec!["1", "3"]);
    // lift@test lacks `mark`: message@1.0 answers not-found for it.
    let m = fold(stack_of(&["lift", "mark"])).await;
    assert_eq!(trail(&m), vec!["2"]);
}

#[tokio::test]
async fn fold_raw_short_circuits_before_later_devices() {
    let out = stack_context()
        .resolve(stack_of(&["seven", "fail"]), &msg! { "path" => "mark" })
        .await
        .unwrap();
    assert_eq!(out, Outcome::Raw(Value::Int(7)));
}

#[tokio::test]
async fn fold_device_stack_may_be_a_list() {
    let mut stack = stack_of(&[]);
    stack
        .insert(
            "device-stack",
            Value::List(vec!["mark@test".into(), "mark@test".into()]),
        )
        .unwrap();
    assert_eq!(trail(&fold(stack).await), vec!["1", "2"]);
}

#[tokio::test]
async fn fold_result_carries_the_stack_hashpath() {
    let stack = stack_of(&["mark", "mark"]);
    let request = msg! { "path" => "mark" };
    let m = fold(stack.clone()).await;
    let hp = m
        .get_private("priv")
        .and_then(Value::as_message)
        .and_then(|p| p.get_text("hashpath"))
        .map(str::to_string);
    assert_eq!(hp, Some(hashpath::hashpath(&stack, &request).unwrap()));
}

#[tokio::test]
async fn error_strategy_throw_fails_with_stack_device_failed() {
    let err = test_context()
        .resolve(
            stack_of(&["mark", "fail", "mark"]),
            &msg! { "path" => "mark" },
        )
        .await
        .unwrap_err();
    match &err {
        ResolveError::StackDeviceFailed {
            index,
            device,
            source,
        } => {
            assert_eq!(*index, 2);
            assert_eq!(device, "fail@test");
            assert!(matches!(**source, ResolveError::Device { .. }));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_fatal());
}

#[tokio::test]
async fn error_strategy_stop_returns_stack_call_failed() {
    let ctx = test_context().with_error_strategy(ErrorStrategy::Stop);
    let err = ctx
        .resolve(
            stack_of(&["mark", "fail", "mark"]),
            &msg! { "path" => "mark" },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::StackCallFailed { index: 2, ref device, .. } if device == "fail@test"),
        "{err:?}"
    );
    assert!(!err.is_fatal());
}

#[tokio::test]
async fn error_strategy_throw_propagates_unchanged_through_enclosing_stacks() {
    let mut outer = stack_of(&["mark", "nested"]);
    outer
        .insert(
            "inner-stack",
            msg! { "1" => "mark@test", "2" => "fail@test" },
        )
        .unwrap();
    let err = stack_context()
        .resolve(outer, &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    // The inner stack's failure, not re-wrapped by the outer stack.
    assert!(
        matches!(err, ResolveError::StackDeviceFailed { index: 2, ref device, .. } if device == "fail@test"),
        "{err:?}"
    );
}

#[tokio::test]
async fn error_strategy_stop_is_wrapped_by_each_enclosing_stack() {
    let mut outer = stack_of(&["mark", "nested"]);
    outer
        .insert("inner-stack", msg! { "1" => "fail@test" })
        .unwrap();
    let config = DeviceConfig {
        error_strategy: ErrorStrategy::Stop,
        ..DeviceConfig::default()
    };
    let err = stack_context()
        .with_config(config)
        .resolve(outer, &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    match err {
        ResolveError::StackCallFailed {
            index: 2,
            device,
            source,
        } => {
            assert_eq!(device, "nested@test");
            assert!(
                matches!(*source, ResolveError::StackCallFailed { index: 1, ref device, .. } if device == "fail@test"),
                "{source:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn error_strategy_applies_to_panics_which_stay_identifiable() {
    let err = test_context()
        .resolve(stack_of(&["mark", "panic"]), &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::StackDeviceFailed { index: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.panicked(), Some(("panic@test", "mark")));
}

#[tokio::test]
async fn error_strategy_applies_to_unknown_devices_in_the_stack() {
    let err = test_context()
        .resolve(stack_of(&["mark", "ghost"]), &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    assert!(
        matches!(err.root(), ResolveError::UnknownDevice { name, .. } if name == "ghost@test"),
        "{err:?}"
    );
}

#[tokio::test]
async fn info_excludes_set_and_keys() {
    let ctx = test_context();
    let stack = stack_of(&["mark"]);
    let keys = ctx
        .resolve(stack.clone(), &msg! { "path" => "keys" })
        .await
        .unwrap();
    assert_eq!(
        keys,
        Outcome::Raw(Value::List(vec![
            "device".into(),
            "device-stack".into(),
            "trail".into()
        ]))
    );
    let set = ctx
        .resolve(stack, &msg! { "path" => "set", "x" => 1 })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    // message@1.0 set: the field is set, no device ran.
    assert_eq!(set.get("x"), Some(&Value::Int(1)));
    assert!(trail(&set).is_empty());
}

#[tokio::test]
async fn info_stack_keys_limit_the_exports() {
    let mut stack = stack_of(&["mark"]);
    stack
        .insert("stack-keys", Value::List(vec!["mark".into()]))
        .unwrap();
    let err = test_context()
        .resolve(stack.clone(), &msg! { "path" => "transform/1/mark" })
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    // Without stack-keys every key runs the stack: an unknown key folds
    // through devices that all lack it.
    let m = test_context()
        .resolve(stack_of(&["mark"]), &msg! { "path" => "other" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert!(trail(&m).is_empty());
}

#[tokio::test]
async fn mode_comes_from_the_request_then_the_base_and_is_case_sensitive() {
    let ctx = test_context();
    let mut stack = stack_of(&["mark", "mark"]);
    stack.insert("mode", "Map").unwrap();
    let map = ctx
        .resolve(stack.clone(), &msg! { "path" => "mark" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert!(map.get("1").is_some() && map.get("2").is_some());
    let fold = ctx
        .resolve(stack.clone(), &msg! { "path" => "mark", "mode" => "Fold" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(trail(&fold), vec!["1", "2"]);
    let err = ctx
        .resolve(stack, &msg! { "path" => "mark", "mode" => "fold" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::InvalidInput { .. }), "{err:?}");
}

#[test]
fn fold_a_stack_naming_itself_ends_at_the_depth_limit() {
    // device-stack ["stack@1.0"] recurses into itself; the 256 levels fit
    // on a default-sized (2 MiB) thread, in unoptimised builds too.
    let err = on_default_stack(|| {
        Box::pin(async {
            test_context()
                .resolve(stack_of(&["stack@1.0"]), &msg! { "path" => "mark" })
                .await
                .unwrap_err()
        })
    });
    assert!(
        matches!(err.root(), ResolveError::DepthExceeded { limit: 256 }),
        "{err:?}"
    );
}

/// `liar@test`: says it never declines, then answers not-found.
struct LiarDevice;

#[hb_device::async_trait]
impl hb_device::Device for LiarDevice {
    fn name(&self) -> &str {
        "liar@test"
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
    ) -> Result<Outcome, ResolveError> {
        Err(ResolveError::not_found(key))
    }
}

#[tokio::test]
async fn fold_a_device_that_never_declines_but_does_fails_by_the_error_strategy() {
    let mut registry = hb_device::test_support::test_registry();
    registry.register(std::sync::Arc::new(LiarDevice)).unwrap();
    let ctx = test_context().with_registry(registry);
    let err = ctx
        .resolve(
            stack_of(&["mark", "liar", "mark"]),
            &msg! { "path" => "mark" },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::StackDeviceFailed { index: 2, ref source, .. } if source.is_not_found()),
        "{err:?}"
    );
}

#[tokio::test]
async fn fold_without_a_device_stack_is_invalid_input() {
    let err = test_context()
        .resolve(msg! { "device" => "stack@1.0" }, &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::InvalidInput { .. }), "{err:?}");
    // An empty stack folds to the message itself, restored.
    let m = test_context()
        .resolve(
            msg! { "device" => "stack@1.0", "device-stack" => msg! {}, "x" => 1 },
            &msg! { "path" => "mark" },
        )
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(
        m.without_private(),
        msg! { "device" => "stack@1.0", "device-stack" => msg! {}, "x" => 1 }
    );
}

/// `spin@test`: `mark` counts its calls and always answers Pass, resetting
/// `pass` to 1 as well, so only the stack's own cap can end the fold.
struct SpinDevice {
    calls: Arc<AtomicU64>,
}

#[hb_device::async_trait]
impl hb_device::Device for SpinDevice {
    fn name(&self) -> &str {
        "spin@test"
    }
    fn info(&self) -> hb_device::DeviceInfo {
        hb_device::DeviceInfo::with_functions(["mark"]).never_declines()
    }
    async fn call(
        &self,
        _key: &hb_message::Key,
        mut base: Message,
        _request: &Message,
        _ctx: &hb_device::Context,
    ) -> Result<Outcome, ResolveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        base.insert("pass", 1)?;
        Ok(Outcome::Pass(base))
    }
}

fn spin_context(calls: &Arc<AtomicU64>) -> hb_device::Context {
    common::context_with(vec![Arc::new(SpinDevice {
        calls: Arc::clone(calls),
    })])
}

#[tokio::test]
async fn fold_a_device_that_always_passes_stops_at_the_pass_limit() {
    let calls = Arc::new(AtomicU64::new(0));
    let err = spin_context(&calls)
        .resolve(stack_of(&["mark", "spin"]), &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::StackPassLimit { passes } if passes == DEFAULT_STACK_MAX_PASSES),
        "{err:?}"
    );
    // One call per pass: the 64th pass's Pass is the one refused.
    assert_eq!(calls.load(Ordering::SeqCst), DEFAULT_STACK_MAX_PASSES);
    assert_eq!(err.code(), "stack-pass-limit");
    assert_eq!(err.status(), 500);
}

#[tokio::test]
async fn fold_the_pass_limit_is_the_node_setting() {
    let calls = Arc::new(AtomicU64::new(0));
    let config = DeviceConfig {
        stack_max_passes: 3,
        ..DeviceConfig::default()
    };
    let err = spin_context(&calls)
        .with_config(config.clone())
        .resolve(stack_of(&["spin"]), &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::StackPassLimit { passes: 3 }),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // loop@test passes once (pass 1 → 2): fine with a cap of 2, refused
    // with a cap of 1.
    let two = test_context().with_config(DeviceConfig {
        stack_max_passes: 2,
        ..DeviceConfig::default()
    });
    let m = two
        .resolve(stack_of(&["loop", "mark"]), &msg! { "path" => "mark" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(trail(&m), vec!["p1", "p2", "2"]);
    let one = test_context().with_config(DeviceConfig {
        stack_max_passes: 1,
        ..DeviceConfig::default()
    });
    let err = one
        .resolve(stack_of(&["loop", "mark"]), &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::StackPassLimit { passes: 1 }),
        "{err:?}"
    );
}
