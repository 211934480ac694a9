//! SPEC §4.2 "Execution": a panic in a device's info is caught like one in
//! its call, as `Panicked { device, key }`, whether the device is the base's
//! own, inside a stack, or being registered.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::context_with;
use hb_device::test_support::{stack_of, test_registry};
use hb_device::{async_trait, Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{msg, Key, Message};

/// `info-panic@test`: a handler whose info panics once armed (after
/// registration, which reads it once).
struct InfoPanicDevice {
    armed: Arc<AtomicBool>,
}

#[async_trait]
impl Device for InfoPanicDevice {
    fn name(&self) -> &str {
        "info-panic@test"
    }
    fn info(&self) -> DeviceInfo {
        if self.armed.load(Ordering::SeqCst) {
            panic!("info-panic@test: info panics on purpose");
        }
        DeviceInfo::handler()
    }
    fn info_for(&self, _base: &Message) -> Option<DeviceInfo> {
        Some(self.info())
    }
    async fn call(
        &self,
        _key: &Key,
        base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        Ok(Outcome::Ok(base))
    }
}

#[tokio::test]
async fn info_panic_a_panic_in_the_base_devices_info_is_panicked() {
    let armed = Arc::new(AtomicBool::new(false));
    let ctx = context_with(vec![Arc::new(InfoPanicDevice {
        armed: Arc::clone(&armed),
    })]);
    armed.store(true, Ordering::SeqCst);
    let err = ctx
        .resolve(
            msg! { "device" => "info-panic@test" },
            &msg! { "path" => "anything" },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ResolveError::Panicked { device, key }
                if device == "info-panic@test" && key == "anything"
        ),
        "{err:?}"
    );
    // The same through resolve_as.
    let err = ctx
        .resolve_as("info-panic@test", Message::new(), &msg! { "path" => "x" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Panicked { .. }), "{err:?}");
}

#[tokio::test]
async fn info_panic_a_panic_in_info_inside_a_stack_names_the_device() {
    let armed = Arc::new(AtomicBool::new(false));
    let ctx = context_with(vec![Arc::new(InfoPanicDevice {
        armed: Arc::clone(&armed),
    })]);
    armed.store(true, Ordering::SeqCst);
    let err = ctx
        .resolve(stack_of(&["info-panic"]), &msg! { "path" => "mark" })
        .await
        .unwrap_err();
    assert_eq!(err.panicked(), Some(("info-panic@test", "mark")), "{err:?}");
}

#[test]
fn info_panic_a_panic_in_info_at_registration_is_a_typed_error() {
    let device = InfoPanicDevice {
        armed: Arc::new(AtomicBool::new(true)),
    };
    let mut registry = test_registry();
    let err = registry.register(Arc::new(device)).unwrap_err();
    assert!(
        matches!(&err, ResolveError::Panicked { device, .. } if device == "info-panic@test"),
        "{err:?}"
    );
    assert!(!registry.contains("info-panic@test"));
}
