//! SPEC §4.2 "Key → function": handler, named function, default, then
//! message@1.0, each subject to exports and excludes.

mod common;

use std::sync::Arc;

use common::{context_with, RuleDevice};
use hb_device::{Context, DeviceInfo, Outcome, ResolveError};
use hb_message::{msg, Message, Value};

fn ctx_for(info: DeviceInfo) -> Context {
    context_with(vec![Arc::new(RuleDevice {
        name: "rule@test",
        info,
    })])
}

fn base() -> Message {
    msg! { "device" => "rule@test", "field" => "from-message", "x" => "x-field" }
}

async fn answer(ctx: &Context, key: &str) -> Result<Outcome, ResolveError> {
    ctx.resolve(base(), &msg! { "path" => key }).await
}

fn device_answer(key: &str) -> Outcome {
    Outcome::Raw(Value::from(format!("rule@test:{key}")))
}

#[tokio::test]
async fn rule1_handler_answers_every_exported_key() {
    let ctx = ctx_for(DeviceInfo::handler());
    assert_eq!(
        answer(&ctx, "anything").await.unwrap(),
        device_answer("anything")
    );
    // Even reserved and present keys go to the handler.
    assert_eq!(answer(&ctx, "keys").await.unwrap(), device_answer("keys"));
    assert_eq!(answer(&ctx, "field").await.unwrap(), device_answer("field"));
}

#[tokio::test]
async fn rule1_handler_does_not_answer_excluded_or_unexported_keys() {
    let ctx = ctx_for(
        DeviceInfo::handler()
            .exports(["x", "field"])
            .excludes(["field"]),
    );
    assert_eq!(answer(&ctx, "x").await.unwrap(), device_answer("x"));
    assert_eq!(
        answer(&ctx, "field").await.unwrap(),
        Outcome::Raw(Value::from("from-message"))
    );
    assert!(answer(&ctx, "other").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn rule1_handler_wins_over_named_functions_and_default() {
    // The engine calls the device for every exported key; which of its
    // functions runs is the device's own dispatch. The rule order itself:
    let info = DeviceInfo {
        handler: true,
        default: true,
        functions: vec![hb_message::Key::new("f").unwrap()],
        ..DeviceInfo::default()
    };
    assert_eq!(info.route("f"), hb_device::Route::Handler);
    assert_eq!(info.route("g"), hb_device::Route::Handler);
    let ctx = ctx_for(info);
    assert_eq!(answer(&ctx, "f").await.unwrap(), device_answer("f"));
}

#[tokio::test]
async fn rule2_named_function_answers_its_key_when_exported() {
    let ctx = ctx_for(DeviceInfo::with_functions(["x", "f"]));
    // `x` is also a field: the function wins.
    assert_eq!(answer(&ctx, "x").await.unwrap(), device_answer("x"));
    assert_eq!(answer(&ctx, "f").await.unwrap(), device_answer("f"));
    // Other keys are message@1.0's.
    assert_eq!(
        answer(&ctx, "field").await.unwrap(),
        Outcome::Raw(Value::from("from-message"))
    );
    let ctx = ctx_for(DeviceInfo::with_functions(["x", "f"]).excludes(["x"]));
    assert_eq!(
        answer(&ctx, "x").await.unwrap(),
        Outcome::Raw(Value::from("x-field"))
    );
    let ctx = ctx_for(DeviceInfo::with_functions(["x", "f"]).exports(["f"]));
    assert_eq!(
        answer(&ctx, "x").await.unwrap(),
        Outcome::Raw(Value::from("x-field"))
    );
    assert_eq!(answer(&ctx, "f").await.unwrap(), device_answer("f"));
}

#[tokio::test]
async fn rule3_default_answers_exported_keys_without_a_function() {
    let ctx = ctx_for(DeviceInfo::with_functions(["f"]).with_default());
    assert_eq!(answer(&ctx, "zzz").await.unwrap(), device_answer("zzz"));
    assert_eq!(answer(&ctx, "field").await.unwrap(), device_answer("field"));
    let ctx = ctx_for(DeviceInfo::default().with_default().excludes(["field"]));
    assert_eq!(
        answer(&ctx, "field").await.unwrap(),
        Outcome::Raw(Value::from("from-message"))
    );
}

#[tokio::test]
async fn rule4_message_device_answers_everything_else() {
    let ctx = ctx_for(DeviceInfo::default());
    assert_eq!(
        answer(&ctx, "field").await.unwrap(),
        Outcome::Raw(Value::from("from-message"))
    );
    assert_eq!(
        answer(&ctx, "keys").await.unwrap(),
        Outcome::Raw(Value::List(vec![
            "device".into(),
            "field".into(),
            "x".into()
        ]))
    );
    assert!(answer(&ctx, "absent").await.unwrap_err().is_not_found());
    // A device exporting nothing leaves every key to message@1.0.
    let ctx = ctx_for(DeviceInfo::handler().exports(Vec::<&str>::new()));
    assert_eq!(
        answer(&ctx, "field").await.unwrap(),
        Outcome::Raw(Value::from("from-message"))
    );
}
