//! SPEC §4.2 step 1: the device is the base's `device`, else `message@1.0`.

use hb_device::test_support::test_context;
use hb_device::{Outcome, ResolveError};
use hb_message::{msg, Value};

#[tokio::test]
async fn device_absent_means_message_device() {
    let ctx = test_context();
    let out = ctx
        .resolve(msg! { "a" => 1 }, &msg! { "path" => "a" })
        .await
        .unwrap();
    assert_eq!(out, Outcome::Raw(Value::Int(1)));
}

#[tokio::test]
async fn device_named_by_the_base_is_used_case_insensitively() {
    let ctx = test_context();
    let out = ctx
        .resolve(
            msg! { "device" => "MARK@test", "device-key" => "k" },
            &msg! { "path" => "mark" },
        )
        .await
        .unwrap();
    let m = out.ok_message().unwrap();
    assert_eq!(m.get("trail"), Some(&Value::List(vec![Value::from("k")])));
}

#[tokio::test]
async fn device_of_a_list_base_is_message_device() {
    let ctx = test_context();
    // `list` resolves to a raw list; the next segment runs on it through
    // message@1.0, whatever the outer device.
    let base = msg! {
        "device" => "mark@test",
        "list" => Value::List(vec![Value::from("a"), Value::from("b")])
    };
    let out = ctx
        .resolve(base, &msg! { "path" => "list/2" })
        .await
        .unwrap();
    assert_eq!(out, Outcome::Raw(Value::from("b")));
}

#[tokio::test]
async fn device_that_is_not_text_is_an_invalid_device_name() {
    let ctx = test_context();
    let err = ctx
        .resolve(msg! { "device" => 5 }, &msg! { "path" => "a" })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::InvalidDeviceName { .. }),
        "{err:?}"
    );
    let err = ctx
        .resolve(msg! { "device" => "no-version" }, &msg! { "path" => "a" })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::InvalidDeviceName { .. }),
        "{err:?}"
    );
}
