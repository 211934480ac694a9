//! SPEC §4.2 "Execution": the nesting limit ends deep resolutions before the
//! thread's stack does, on a default-sized (2 MiB) thread in the normal
//! (unoptimised) test build.

mod common;

use common::on_default_stack;
use hb_device::test_support::{stack_of, test_context, test_registry};
use hb_device::{Context, DeviceConfig, ResolveError, DEFAULT_MAX_DEPTH};
use hb_message::msg;

#[test]
fn limits_a_stack_naming_itself_ends_at_the_depth_limit_on_a_default_thread() {
    // device-stack ["stack@1.0"]: every level is a stack inside a stack.
    let err = on_default_stack(|| {
        Box::pin(async {
            test_context()
                .resolve(stack_of(&["stack@1.0"]), &msg! { "path" => "mark" })
                .await
                .unwrap_err()
        })
    });
    assert!(
        matches!(err.root(), ResolveError::DepthExceeded { limit } if *limit == DEFAULT_MAX_DEPTH),
        "{err:?}"
    );
}

#[test]
fn limits_a_stack_naming_itself_under_error_strategy_stop_on_a_default_thread() {
    // Under `stop` every level wraps the error once more: the unwinding of
    // 256 nested wrappers must fit as well.
    let err = on_default_stack(|| {
        Box::pin(async {
            test_context()
                .with_error_strategy(hb_device::ErrorStrategy::Stop)
                .resolve(stack_of(&["stack@1.0"]), &msg! { "path" => "mark" })
                .await
                .unwrap_err()
        })
    });
    assert!(
        matches!(err.root(), ResolveError::DepthExceeded { .. }),
        "{err:?}"
    );
}

#[test]
fn limits_plain_recursion_ends_at_the_depth_limit_on_a_default_thread() {
    let err = on_default_stack(|| {
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

#[test]
fn limits_a_larger_configured_depth_is_still_bounded_by_the_thread_stack() {
    // A node may raise `max_depth`; the engine must still fail with a typed
    // error rather than overflow the thread.
    let err = on_default_stack(|| {
        Box::pin(async {
            let config = DeviceConfig {
                max_depth: 100_000,
                ..DeviceConfig::default()
            };
            Context::new(test_registry(), hb_device::test_support::test_node_key())
                .with_config(config)
                .resolve(stack_of(&["stack@1.0"]), &msg! { "path" => "mark" })
                .await
                .unwrap_err()
        })
    });
    assert!(
        matches!(err.root(), ResolveError::DepthExceeded { .. }),
        "{err:?}"
    );
}

#[test]
fn limits_the_stack_budget_ends_nesting_below_max_depth() {
    // With a small budget the resolution stops early, at the depth reached.
    let err = on_default_stack(|| {
        Box::pin(async {
            let config = DeviceConfig {
                max_stack_bytes: 32 << 10,
                ..DeviceConfig::default()
            };
            test_context()
                .with_config(config)
                .resolve(
                    hb_message::msg! { "device" => "recurse@test" },
                    &msg! { "path" => "recurse" },
                )
                .await
                .unwrap_err()
        })
    });
    assert!(
        matches!(err, ResolveError::DepthExceeded { limit } if limit > 0 && limit < DEFAULT_MAX_DEPTH),
        "{err:?}"
    );
}
