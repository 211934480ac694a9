//! Runs N `stack@1.0` folds through 8 `mark@test` devices, the workload of
//! the `resolve` bench, for instruction counting:
//!
//! ```text
//! cargo build --release -p hb-device --example fold_loop
//! valgrind --tool=callgrind target/release/examples/fold_loop 2000 hashpath
//! ```
//!
//! Run it for two values of N and divide the difference of the instruction
//! counts by the difference of N: the per-fold cost without the setup.
//! The second argument is `hashpath` (default) or `no-hashpath`.

use hb_device::test_support::{stack_of, test_context};
use hb_device::HashpathMode;
use hb_message::{msg, Value};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mode = match args.next().as_deref() {
        Some("no-hashpath") => HashpathMode::Ignore,
        _ => HashpathMode::Update,
    };
    let ctx = test_context().with_hashpath(mode);
    let mut stack = stack_of(&["mark"; 8]);
    // The same plain fields as the bench's stack.
    for (k, v) in msg! {
        "type" => "Process",
        "owner" => "x".repeat(43),
        "count" => 12,
        "data" => "some text of a plain message",
        "nested" => msg! { "a" => 1, "b" => "two" }
    } {
        stack.insert_key(k, v);
    }
    let mark = msg! { "path" => "mark" };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let mut trail = 0;
    for _ in 0..n {
        let out = rt
            .block_on(ctx.resolve(stack.clone(), &mark))
            .expect("the fold succeeds");
        trail += out
            .ok_message()
            .and_then(|m| m.get("trail").and_then(Value::as_list).map(<[Value]>::len))
            .unwrap_or(0);
    }
    println!("{n} folds, {trail} trail entries");
}
