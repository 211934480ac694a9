//! SPEC §4.1: the device registry.

use std::sync::Arc;

use hb_device::test_support::{test_context, MarkDevice};
use hb_device::{async_trait, Context, Device, DeviceInfo, DeviceRegistry, Outcome, ResolveError};
use hb_message::{msg, Key, Message, NodeKey, Value};

/// A library user's device.
struct Greeter;

#[async_trait]
impl Device for Greeter {
    fn name(&self) -> &str {
        "Greeter@2.0"
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::with_functions(["greet"])
    }
    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "greet" => {
                let who = request.get_text("who").unwrap_or("world").to_string();
                base.insert("greeting", format!("hello, {who}"))?;
                Ok(Outcome::Ok(base))
            }
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

#[test]
fn registry_lookup_is_case_insensitive() {
    let r = DeviceRegistry::new();
    assert_eq!(
        r.lookup("Message@1.0").unwrap().device.name(),
        "message@1.0"
    );
    assert_eq!(r.lookup("STACK@1.0").unwrap().device.name(), "stack@1.0");
    let mut r = DeviceRegistry::new();
    r.register(Arc::new(Greeter)).unwrap();
    assert_eq!(
        r.lookup("greeter@2.0").unwrap().device.name(),
        "Greeter@2.0"
    );
    assert!(r.contains("GREETER@2.0"));
}

#[test]
fn registry_malformed_name_gives_invalid_device_name() {
    let r = DeviceRegistry::new();
    for bad in ["message", "@1.0", "a@", "a b@1", "x@y@z", ""] {
        assert!(
            matches!(r.lookup(bad), Err(ResolveError::InvalidDeviceName { .. })),
            "{bad:?}"
        );
    }
    struct Nameless;
    #[async_trait]
    impl Device for Nameless {
        fn name(&self) -> &str {
            "no-version"
        }
        fn info(&self) -> DeviceInfo {
            DeviceInfo::default()
        }
        async fn call(
            &self,
            key: &Key,
            _: Message,
            _: &Message,
            _: &Context,
        ) -> Result<Outcome, ResolveError> {
            Err(ResolveError::not_found(key))
        }
    }
    let mut r = DeviceRegistry::new();
    assert!(matches!(
        r.register(Arc::new(Nameless)),
        Err(ResolveError::InvalidDeviceName { .. })
    ));
}

#[test]
fn registry_unknown_device_quotes_the_name_and_lists_the_known_ones() {
    let r = DeviceRegistry::new();
    match r.lookup("Nope@9.9") {
        Err(ResolveError::UnknownDevice { name, known }) => {
            assert_eq!(name, "Nope@9.9");
            assert_eq!(known, vec!["message@1.0", "stack@1.0"]);
        }
        other => panic!("{other:?}"),
    }
    let e = r.lookup("Nope@9.9").unwrap_err().to_string();
    assert!(
        e.contains("\"Nope@9.9\"") && e.contains("message@1.0, stack@1.0"),
        "{e}"
    );
}

#[test]
fn registry_refuses_a_second_device_of_the_same_name() {
    let mut r = DeviceRegistry::new();
    r.register(Arc::new(MarkDevice)).unwrap();
    assert!(matches!(
        r.register(Arc::new(MarkDevice)),
        Err(ResolveError::DuplicateDevice { .. })
    ));
}

#[tokio::test]
async fn registry_user_devices_resolve_by_name() {
    let registry = DeviceRegistry::new().with(Arc::new(Greeter)).unwrap();
    let ctx = Context::new(registry, NodeKey::from_seed(&[1; 32]));
    let base = msg! { "device" => "greeter@2.0" };
    let out = ctx
        .resolve(base, &msg! { "path" => "greet", "who" => "ada" })
        .await
        .unwrap();
    let m = out.ok_message().unwrap();
    assert_eq!(m.get_text("greeting"), Some("hello, ada"));
    // Keys the device does not implement are field reads.
    let device = ctx
        .get("device", &msg! { "device" => "Greeter@2.0" }, Value::Int(0))
        .await;
    assert_eq!(device, Value::from("Greeter@2.0"));
}

#[tokio::test]
async fn registry_resolving_an_unknown_device_fails_with_unknown_device() {
    let ctx = test_context();
    let err = ctx
        .resolve(msg! { "device" => "ghost@1.0" }, &msg! { "path" => "x" })
        .await
        .unwrap_err();
    match err {
        ResolveError::UnknownDevice { name, known } => {
            assert_eq!(name, "ghost@1.0");
            assert!(known.contains(&"mark@test".to_string()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn docs_devices_md_shows_the_example_verbatim() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../../docs/devices.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/counter_device.rs")).unwrap();
    assert!(
        doc.contains(&example),
        "docs/devices.md must show examples/counter_device.rs verbatim"
    );
}
