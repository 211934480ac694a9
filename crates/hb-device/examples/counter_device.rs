//! Writing, registering and using a device (docs/devices.md).
//!
//! Run with `cargo run -p hb-device --example counter_device`.

use std::sync::Arc;

use hb_device::{async_trait, Context, Device, DeviceInfo, DeviceRegistry, Outcome, ResolveError};
use hb_message::{msg, Key, Message, NodeKey, Value};

/// `counter@1.0`: `increment` adds the request's `by` (default 1) to
/// `count`; `reset` sets it to 0. Every other key is a field read through
/// `message@1.0`.
struct Counter;

#[async_trait]
impl Device for Counter {
    fn name(&self) -> &str {
        "counter@1.0"
    }

    fn info(&self) -> DeviceInfo {
        // The keys this device implements; it always answers them.
        DeviceInfo::with_functions(["increment", "reset"]).never_declines()
    }

    async fn call(
        &self,
        key: &Key,
        mut base: Message,
        request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "increment" => {
                let by = request
                    .get("by")
                    .and_then(Value::to_int_lenient)
                    .unwrap_or(1);
                let count = base.get_int("count").unwrap_or(0);
                let next = count
                    .checked_add(by)
                    .ok_or_else(|| ResolveError::invalid_input(key, "count overflows"))?;
                base.insert("count", next)?;
                Ok(Outcome::Ok(base))
            }
            "reset" => {
                base.insert("count", 0)?;
                Ok(Outcome::Ok(base))
            }
            _ => Err(ResolveError::not_found(key)),
        }
    }
}

async fn demo() -> Result<(), ResolveError> {
    // Register the device beside message@1.0 and stack@1.0.
    let registry = DeviceRegistry::new().with(Arc::new(Counter))?;
    let ctx = Context::new(registry, NodeKey::from_seed(&[42; 32]));

    // Call a key of the device.
    let base = msg! { "device" => "counter@1.0", "count" => 1 };
    let out = ctx
        .resolve(base, &msg! { "path" => "increment", "by" => 41 })
        .await?;
    let counted = out.ok_message().expect("increment answers a message");
    assert_eq!(counted.get_int("count"), Some(42));

    // A chain: increment, then read `count` (a field read by message@1.0).
    let n = ctx.get("increment/count", &counted, Value::Int(-1)).await;
    assert_eq!(n, Value::Int(43));

    // In a stack, each device gets the key in turn.
    let stack = msg! {
        "device" => "stack@1.0",
        "device-stack" => msg! { "1" => "counter@1.0", "2" => "counter@1.0" },
        "count" => 0
    };
    let folded = ctx
        .resolve(stack, &msg! { "path" => "increment" })
        .await?
        .ok_message()
        .expect("a fold answers a message");
    assert_eq!(folded.get_int("count"), Some(2));
    assert_eq!(folded.get_text("device"), Some("stack@1.0"));

    println!("count after the fold: {:?}", folded.get("count"));
    Ok(())
}

fn main() {
    futures::executor::block_on(demo()).expect("the example runs");
}
