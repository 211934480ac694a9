//! SPEC §4.4 "Examples": one test per row of the table.

use hb_device::test_support::{stack_of, test_context, trail};
use hb_device::Outcome;
use hb_message::{msg, Message, Value};

async fn run(stack: Message, request: Message) -> Outcome {
    test_context().resolve(stack, &request).await.unwrap()
}

async fn fold(stack: Message, request: Message) -> Message {
    run(stack, request).await.ok_message().expect("Ok(message)")
}

#[tokio::test]
async fn row1_mark_mark_appends_each_device_key_and_restores_the_stack() {
    let m = fold(stack_of(&["mark", "mark"]), msg! { "path" => "mark" }).await;
    assert_eq!(trail(&m), vec!["1", "2"]);
    assert_eq!(m.get_text("device"), Some("stack@1.0"));
    assert_eq!(m.get("device-key"), None);
    assert_eq!(m.get("pass"), None);
}

#[tokio::test]
async fn row2_a_device_lacking_the_key_is_skipped() {
    let m = fold(
        stack_of(&["mark", "empty", "mark"]),
        msg! { "path" => "mark" },
    )
    .await;
    assert_eq!(trail(&m), vec!["1", "3"]);
}

#[tokio::test]
async fn row3_skip_stops_the_fold() {
    let m = fold(
        stack_of(&["mark", "halt", "mark"]),
        msg! { "path" => "mark" },
    )
    .await;
    assert_eq!(trail(&m), vec!["1", "h"]);
    assert_eq!(m.get_text("device"), Some("stack@1.0"));
}

#[tokio::test]
async fn row4_pass_restarts_with_the_counter_and_pass_is_removed_after() {
    let m = fold(stack_of(&["loop", "mark"]), msg! { "path" => "mark" }).await;
    assert_eq!(trail(&m), vec!["p1", "p2", "2"]);
    assert_eq!(m.get("pass"), None);
}

#[tokio::test]
async fn row5_a_raw_result_short_circuits() {
    let out = run(
        stack_of(&["mark", "seven", "mark"]),
        msg! { "path" => "mark" },
    )
    .await;
    assert_eq!(out, Outcome::Raw(Value::Int(7)));
}

#[tokio::test]
async fn row6_map_mode_collects_results_by_device_key() {
    let m = fold(
        stack_of(&["mark", "empty", "mark"]),
        msg! { "path" => "mark", "mode" => "Map" },
    )
    .await;
    assert_eq!(
        m.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        vec!["1", "3"]
    );
    assert_eq!(trail(m.get_message("1").unwrap()), vec!["1"]);
    assert_eq!(trail(m.get_message("3").unwrap()), vec!["3"]);
}

#[tokio::test]
async fn row7_transform_runs_one_device_of_the_stack() {
    let m = fold(
        stack_of(&["mark", "mark"]),
        msg! { "path" => "transform/2/mark" },
    )
    .await;
    assert_eq!(trail(&m), vec!["2"]);
}

#[tokio::test]
async fn row8_per_device_prefixes_and_stack_level_passthrough() {
    let mut stack = stack_of(&["lift", "lift"]);
    stack.insert("input-prefixes", msg! { "1" => "a" }).unwrap();
    stack
        .insert("output-prefixes", msg! { "1" => "x", "2" => "y" })
        .unwrap();
    let m = fold(
        stack,
        msg! { "path" => "lift", "a" => msg! { "v" => 5 }, "v" => 6 },
    )
    .await;
    assert_eq!(m.get_path("x/v"), Some(&Value::Int(5)));
    assert_eq!(m.get_path("y/v"), Some(&Value::Int(6)));
}

#[tokio::test]
async fn row9_a_stack_level_output_prefix_passes_through_and_is_restored() {
    let mut stack = stack_of(&["lift", "lift"]);
    stack.insert("output-prefix", "z").unwrap();
    let m = fold(stack, msg! { "path" => "lift", "v" => 6 }).await;
    assert_eq!(m.get_path("z/v"), Some(&Value::Int(6)));
    assert_eq!(m.get_text("output-prefix"), Some("z"));
}

#[tokio::test]
async fn row10_stack_keys_make_other_keys_field_reads() {
    let mut stack = stack_of(&["mark", "mark"]);
    stack
        .insert("stack-keys", Value::List(vec!["mark".into()]))
        .unwrap();
    stack
        .insert("trail", Value::List(vec!["t".into()]))
        .unwrap();
    let out = run(stack.clone(), msg! { "path" => "trail" }).await;
    assert_eq!(out, Outcome::Raw(Value::List(vec!["t".into()])));
    // `mark` is still a stack key.
    let m = fold(stack, msg! { "path" => "mark" }).await;
    assert_eq!(trail(&m), vec!["t", "1", "2"]);
}
