//! SPEC §4.4 Map and Transform.

use hb_device::test_support::{stack_of, test_context, trail};
use hb_device::{Outcome, ResolveError};
use hb_message::{msg, Message, Value};

async fn map(stack: Message) -> Message {
    test_context()
        .resolve(stack, &msg! { "path" => "mark", "mode" => "Map" })
        .await
        .unwrap()
        .ok_message()
        .unwrap()
}

#[tokio::test]
async fn map_runs_each_device_on_its_own_copy() {
    let m = map(stack_of(&["mark", "mark", "mark"])).await;
    for k in ["1", "2", "3"] {
        let r = m.get_message(k).unwrap();
        assert_eq!(trail(r), vec![k]);
        assert_eq!(r.get_text("device-key"), Some(k));
    }
}

#[tokio::test]
async fn map_drops_errors_and_keeps_raw_values() {
    let m = map(stack_of(&["mark", "fail", "seven", "panic", "halt"])).await;
    assert_eq!(
        m.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        vec!["1", "3"]
    );
    assert_eq!(m.get("3"), Some(&Value::Int(7)));
}

#[tokio::test]
async fn map_uses_named_device_stack_keys_except_path_and_hashpath() {
    let mut stack = stack_of(&[]);
    stack
        .insert(
            "device-stack",
            msg! { "alpha" => "mark@test", "path" => "mark@test", "hashpath" => "mark@test" },
        )
        .unwrap();
    let m = map(stack).await;
    assert_eq!(
        m.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        vec!["alpha"]
    );
    assert_eq!(trail(m.get_message("alpha").unwrap()), vec!["alpha"]);
}

#[tokio::test]
async fn transform_swaps_in_one_device_with_the_stack_transform() {
    let mut stack = stack_of(&["mark", "lift"]);
    stack
        .insert("output-prefixes", msg! { "2" => "o" })
        .unwrap();
    let out = test_context()
        .resolve(
            stack.clone(),
            &msg! { "path" => "transform/2/lift", "v" => 1 },
        )
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(out.get_path("o/v"), Some(&Value::Int(1)));
    // Only device 2 ran, and the message is left as that device's.
    assert!(trail(&out).is_empty());
    assert_eq!(out.get_text("device"), Some("lift@test"));
    assert_eq!(out.get_text("device-key"), Some("2"));
    // `transform/D` alone gives the swapped-in message.
    let swapped = test_context()
        .resolve(stack, &msg! { "path" => "transform/1" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(swapped.get_text("device"), Some("mark@test"));
    assert_eq!(swapped.get_text("previous-device"), Some("stack@1.0"));
}

#[tokio::test]
async fn transform_of_a_missing_device_is_not_found() {
    let err = test_context()
        .resolve(stack_of(&["mark"]), &msg! { "path" => "transform/9/mark" })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::NotFound { ref key } if key == "9"),
        "{err:?}"
    );
    let out = test_context()
        .resolve(stack_of(&["seven"]), &msg! { "path" => "transform/1/mark" })
        .await
        .unwrap();
    assert_eq!(out, Outcome::Raw(Value::Int(7)));
}
