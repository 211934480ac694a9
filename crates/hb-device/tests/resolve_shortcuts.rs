//! SPEC §4.2 "Shortcuts": `get`, `find` and `resolve_as` (`set` is in
//! message_device_set.rs).

use hb_device::test_support::{stack_of, test_context, trail};
use hb_device::{Outcome, ResolveError};
use hb_message::{msg, Value};

#[tokio::test]
async fn get_returns_the_value_or_the_default() {
    let ctx = test_context();
    let base = msg! { "a" => msg! { "b" => 2 } };
    assert_eq!(ctx.get("a/b", &base, Value::Int(0)).await, Value::Int(2));
    let Value::Message(a) = ctx.get("a", &base, Value::Int(0)).await else {
        panic!("a nested message comes back as a message")
    };
    assert_eq!(a.without_private(), msg! { "b" => 2 });
    assert_eq!(
        ctx.get("missing", &base, Value::Int(-1)).await,
        Value::Int(-1)
    );
    // Any failure gives the default, not only not-found.
    assert_eq!(
        ctx.get(
            "mark",
            &msg! { "device" => "panic@test" },
            Value::Bool(false)
        )
        .await,
        Value::Bool(false)
    );
}

#[tokio::test]
async fn find_distinguishes_not_found_from_failures() {
    let ctx = test_context();
    let base = msg! { "a" => 1 };
    assert_eq!(ctx.find("a", &base).await.unwrap(), Some(Value::Int(1)));
    assert_eq!(ctx.find("b", &base).await.unwrap(), None);
    let err = ctx
        .find("mark", &msg! { "device" => "fail@test" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Device { .. }), "{err:?}");
}

#[tokio::test]
async fn resolve_as_swaps_the_device_for_one_call() {
    let ctx = test_context();
    // A plain message run as mark@test; the base itself names no device.
    let out = ctx
        .resolve_as(
            "Mark@test",
            msg! { "device-key" => "k" },
            &msg! { "path" => "mark" },
        )
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(trail(&out), vec!["k"]);
    assert_eq!(out.get("device"), None);
    // A stack read as a plain message: a field read, no fold.
    let stack = stack_of(&["mark"]);
    let out = ctx
        .resolve_as("message@1.0", stack.clone(), &msg! { "path" => "mark" })
        .await;
    assert!(out.unwrap_err().is_not_found());
    let out = ctx
        .resolve_as("message@1.0", stack, &msg! { "path" => "device" })
        .await
        .unwrap();
    assert_eq!(out, Outcome::Raw(Value::from("stack@1.0")));
}

#[tokio::test]
async fn resolve_as_stack_restores_the_base_own_device() {
    let ctx = test_context();
    let mut base = stack_of(&["mark", "mark"]);
    base.insert("device", "process@1.0").unwrap();
    let out = ctx
        .resolve_as("stack@1.0", base, &msg! { "path" => "mark" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(trail(&out), vec!["1", "2"]);
    assert_eq!(out.get_text("device"), Some("process@1.0"));
}

#[tokio::test]
async fn resolve_as_an_unknown_device_is_unknown_device() {
    let err = test_context()
        .resolve_as("ghost@1.0", msg! {}, &msg! { "path" => "x" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::UnknownDevice { .. }), "{err:?}");
}
