//! SPEC §4.2 step 3: chains.

mod common;

use common::{probe_context, seen};
use hb_device::test_support::test_context;
use hb_device::{Outcome, ResolveError};
use hb_message::{msg, Value};

#[tokio::test]
async fn chain_ok_message_becomes_the_next_base() {
    let ctx = probe_context();
    let out = ctx
        .resolve(
            msg! { "device" => "probe@test" },
            &msg! { "path" => "one/two/three" },
        )
        .await
        .unwrap();
    let m = out.ok_message().unwrap();
    assert_eq!(seen(&m), vec!["one:one", "two:two", "three:three"]);
}

#[tokio::test]
async fn chain_step_request_is_a_copy_with_path_set_to_the_segment() {
    let ctx = probe_context();
    let out = ctx
        .resolve(
            msg! { "device" => "probe@test" },
            &msg! { "path" => "/First/second", "extra" => 1 },
        )
        .await
        .unwrap();
    // Segments are normalised keys; the rest of the request travels along.
    assert_eq!(
        seen(&out.ok_message().unwrap()),
        vec!["first:first", "second:second"]
    );
}

#[tokio::test]
async fn chain_raw_list_continues_through_message_device() {
    let ctx = test_context();
    let base = msg! { "device" => "mark@test", "device-key" => "k" };
    // mark → Ok(message); trail → Raw(list); 1 → its first element.
    let out = ctx
        .resolve(base.clone(), &msg! { "path" => "mark/trail/1" })
        .await
        .unwrap();
    assert_eq!(out, Outcome::Raw(Value::from("k")));
    let keys = ctx
        .resolve(base, &msg! { "path" => "mark/trail/keys" })
        .await
        .unwrap();
    assert_eq!(keys, Outcome::Raw(Value::List(vec![Value::from("1")])));
}

#[tokio::test]
async fn chain_other_raw_with_segments_left_is_not_found_of_the_next_segment() {
    let ctx = test_context();
    let err = ctx
        .resolve(msg! { "a" => 1 }, &msg! { "path" => "a/b/c" })
        .await
        .unwrap_err();
    match err {
        ResolveError::NotFound { key } => assert_eq!(key, "b"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn chain_error_ends_the_chain() {
    let ctx = test_context();
    let err = ctx
        .resolve(msg! { "a" => 1 }, &msg! { "path" => "missing/a" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::NotFound { ref key } if key == "missing"));
    let err = ctx
        .resolve(
            msg! { "device" => "fail@test" },
            &msg! { "path" => "mark/device" },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Device { ref device, .. } if device == "fail@test"));
}

#[tokio::test]
async fn chain_skip_and_pass_end_the_chain_with_their_message() {
    let ctx = test_context();
    let out = ctx
        .resolve(
            msg! { "device" => "halt@test" },
            &msg! { "path" => "mark/trail" },
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Skip(_)), "{out:?}");
    let out = ctx
        .resolve(
            msg! { "device" => "loop@test", "pass" => 1 },
            &msg! { "path" => "mark/trail" },
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Pass(_)), "{out:?}");
}
