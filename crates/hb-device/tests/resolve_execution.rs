//! SPEC §4.2 "Execution": the context reaches handlers, nesting is limited,
//! panics are caught.

mod common;

use std::sync::Arc;

use common::{on_default_stack, probe_context};
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

#[test]
fn execution_nesting_beyond_the_limit_is_depth_exceeded() {
    // On a default-sized (2 MiB) thread, in unoptimised builds too.
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

/// `store@test`: `save` writes the request's `value` under key `k` of the
/// node's store, `load` reads it back.
struct StoreDevice;

#[hb_device::async_trait]
impl hb_device::Device for StoreDevice {
    fn name(&self) -> &str {
        "store@test"
    }
    fn info(&self) -> hb_device::DeviceInfo {
        hb_device::DeviceInfo::with_functions(["save", "load"])
    }
    async fn call(
        &self,
        key: &hb_message::Key,
        mut base: hb_message::Message,
        request: &hb_message::Message,
        ctx: &hb_device::Context,
    ) -> Result<hb_device::Outcome, ResolveError> {
        let store = ctx
            .store()
            .ok_or_else(|| ResolveError::invalid_input(key, "no store"))?;
        let fail = |e: hb_store::StoreError| ResolveError::device("store@test", "store", e);
        match key.as_str() {
            "save" => {
                let v = request.get_text("value").unwrap_or_default();
                store.put(b"k", v.as_bytes()).map_err(fail)?;
                Ok(hb_device::Outcome::Ok(base))
            }
            "load" => {
                let v = store.get(b"k").map_err(fail)?.unwrap_or_default();
                base.insert("loaded", String::from_utf8_lossy(&v).into_owned())?;
                Ok(hb_device::Outcome::Ok(base))
            }
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

#[tokio::test]
async fn execution_the_store_reaches_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let store = hb_store::SledStore::open(dir.path().join("db")).unwrap();
    let mut registry = hb_device::test_support::test_registry();
    registry.register(Arc::new(StoreDevice)).unwrap();
    let ctx = hb_device::Context::builder(test_node_key())
        .registry(registry)
        .store(Arc::new(store))
        .build();
    let base = msg! { "device" => "store@test" };
    ctx.resolve(base.clone(), &msg! { "path" => "save", "value" => "kept" })
        .await
        .unwrap();
    let m = ctx
        .resolve(base.clone(), &msg! { "path" => "load" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(m.get_text("loaded"), Some("kept"));
    // Without a store the device says so.
    let err = test_context()
        .with_registry({
            let mut r = hb_device::test_support::test_registry();
            r.register(Arc::new(StoreDevice)).unwrap();
            r
        })
        .resolve(base, &msg! { "path" => "load" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::InvalidInput { .. }), "{err:?}");
}
