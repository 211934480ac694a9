//! SPEC §4.2 "Execution": the context reaches handlers, nesting is limited,
//! panics are caught.

mod common;

use std::sync::Arc;

use common::probe_context;
use hb_device::test_support::{test_context, test_node_key};
use hb_device::{DeviceConfig, ResolveError, DEFAULT_MAX_DEPTH};
use hb_message::{msg, Value};

#[tokio::test]
async fn execution_context_reaches_handlers() {
    let ctx = probe_context();
    let m = ctx
        .resolve(msg! { "device" => "probe@test" }, &msg! { "path" => "x" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(m.get_text("node"), Some(test_node_key().address()));
    // The top-level call runs one level below the caller.
    assert_eq!(m.get_int("depth"), Some(1));
    assert_eq!(m.get("hashpath-ignored"), Some(&Value::Bool(false)));
}

#[tokio::test]
async fn execution_extensions_reach_handlers_by_type() {
    #[derive(Debug, PartialEq)]
    struct SchedulerAddress(&'static str);
    let ctx = test_context();
    ctx.insert_extension(Arc::new(SchedulerAddress("addr-1")));
    // Every clone (and so every nested call) sees it.
    let nested = ctx.clone();
    assert_eq!(
        *nested.extension::<SchedulerAddress>().unwrap(),
        SchedulerAddress("addr-1")
    );
    assert!(nested.extension::<String>().is_none());
}

/// Runs `f` on a current-thread runtime in a thread with a roomy stack:
/// unoptimised builds take about 10 KiB of stack per nesting level (release
/// builds about 1.2 KiB), more than a test thread's 2 MiB for 256 levels.
pub fn on_big_stack<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            rt.block_on(f())
        })
        .expect("thread")
        .join()
        .expect("no panic")
}

#[test]
fn execution_nesting_beyond_the_limit_is_depth_exceeded() {
    let err = on_big_stack(|| {
        Box::pin(async {
            test_context()
                .resolve(
                    msg! { "device" => "recurse@test" },
                    &msg! { "path" => "recurse" },
                )
                .await
                .unwrap_err()
        })
    });
    assert!(
        matches!(err, ResolveError::DepthExceeded { limit } if limit == DEFAULT_MAX_DEPTH),
        "{err:?}"
    );
}

#[tokio::test]
async fn execution_depth_limit_is_configurable_and_counts_nesting_not_chains() {
    let config = DeviceConfig {
        max_depth: 3,
        ..DeviceConfig::default()
    };
    let ctx = probe_context().with_config(config);
    // A chain of many steps is one level.
    let m = ctx
        .resolve(
            msg! { "device" => "probe@test" },
            &msg! { "path" => "a/b/c/d/e/f/g/h" },
        )
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(m.get_int("depth"), Some(1));
    let err = ctx
        .resolve(
            msg! { "device" => "recurse@test" },
            &msg! { "path" => "recurse" },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::DepthExceeded { limit: 3 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn execution_panic_in_a_device_is_caught_as_panicked() {
    let ctx = test_context();
    let err = ctx
        .resolve(
            msg! { "device" => "panic@test" },
            &msg! { "path" => "mark" },
        )
        .await
        .unwrap_err();
    match &err {
        ResolveError::Panicked { device, key } => {
            assert_eq!(device, "panic@test");
            assert_eq!(key, "mark");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.panicked(), Some(("panic@test", "mark")));
    // The context keeps working.
    let ok = ctx
        .resolve(msg! { "a" => 1 }, &msg! { "path" => "a" })
        .await
        .unwrap();
    assert_eq!(ok.into_value(), Value::Int(1));
}
