//! SPEC §4.2 "HashPath" inside SPEC §4.4 Fold: every device step of a fold
//! is a resolution, so each `Ok(Message)` step records its HashPath, and the
//! next device's base arrives with it. Whatever the engine shares between
//! the steps of one request (its path, its part of the HashPath) must give
//! exactly the HashPaths of resolving each step on its own.

mod common;

use common::stack_context;
use hb_device::test_support::stack_of;
use hb_device::HashpathMode;
use hb_message::hashpath;
use hb_message::{msg, Message, Value};

/// The HashPaths the recorder devices saw, in order.
fn recorded(m: &Message) -> Vec<String> {
    m.get("hashpaths")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_text().map(str::to_string))
        .collect()
}

/// The base of the first device step: the stack after its transform.
fn first_step_base(stack: &Message) -> Message {
    let mut base = stack.clone();
    base.insert("pass", 1).unwrap();
    base.insert("device", "hashpaths@test").unwrap();
    base.insert("device-key", "1").unwrap();
    base.insert("previous-device", "stack@1.0").unwrap();
    base
}

/// The HashPaths three recorders see for `request`: none for the first,
/// then hashpath(first base, request), then that combined with the
/// request's part again.
async fn check_fold_hashpaths(request: Message) {
    let stack = stack_of(&["hashpaths", "hashpaths", "hashpaths"]);
    let m = stack_context()
        .resolve(stack.clone(), &request)
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    let part = hashpath::request_part(&request).unwrap();
    let first = hashpath::hashpath(&first_step_base(&stack), &request).unwrap();
    let second = hashpath::combine(&first, &part).unwrap();
    assert_eq!(recorded(&m), vec!["none".to_string(), first, second]);
    // The fold's own result carries the stack's HashPath.
    let own = m
        .get_private("priv")
        .and_then(Value::as_message)
        .and_then(|p| p.get_text("hashpath"))
        .map(str::to_string);
    assert_eq!(own, Some(hashpath::hashpath(&stack, &request).unwrap()));
}

#[tokio::test]
async fn fold_steps_record_hashpaths_for_a_path_only_request() {
    check_fold_hashpaths(msg! { "path" => "mark" }).await;
}

#[tokio::test]
async fn fold_steps_record_hashpaths_for_a_request_with_a_body() {
    // Not path-only: the request's part is id(request), the same at every
    // step, since every device resolves this same request.
    check_fold_hashpaths(msg! { "path" => "mark", "amount" => 5, "note" => "x" }).await;
}

#[tokio::test]
async fn fold_steps_record_no_hashpath_when_ignored() {
    let stack = stack_of(&["hashpaths", "hashpaths"]);
    let m = stack_context()
        .with_hashpath(HashpathMode::Ignore)
        .resolve(stack, &msg! { "path" => "mark" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(recorded(&m), vec!["none", "none"]);
    assert!(m.get_private("priv").is_none());
}
