//! Restores a Lua process's heap N times, the work of every Lua dry-run,
//! for instruction counting:
//!
//! ```text
//! cargo build --release -p hb-process --example restore_loop
//! valgrind --tool=callgrind target/release/examples/restore_loop 200
//! valgrind --tool=callgrind target/release/examples/restore_loop 600
//! ```
//!
//! The difference of the two counts divided by 400 is one restore without
//! the setup. The process is the `lua_engine` bench's ledger-like script
//! after 100 slots.

use std::hint::black_box;

use hb_message::{msg, Message};
use hb_process::lua::{LuaLimits, LuaProcess};

const SCRIPT: &str = include_str!("../benches/ledger_like.lua");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let (mut p, mut s) = LuaProcess::init(&msg! { "script" => SCRIPT }, LuaLimits::default())?;
    for i in 0..100 {
        let body: Message = msg! { "action" => "Transfer", "who" => format!("user-{}", i % 50) };
        let a = msg! { "slot" => i as i64, "body" => body };
        s = p
            .handle("compute", &s, &a, "pid", "node")?
            .ok_or_else(|| format!("slot {i}: no compute handler"))?
            .state;
    }
    let snap = p.snapshot()?;
    let heap = snap
        .get("heap")
        .and_then(|v| v.as_bytes())
        .ok_or("no heap in the snapshot")?
        .to_vec();
    for _ in 0..n {
        black_box(LuaProcess::restore(&heap, &s, LuaLimits::default())?);
    }
    Ok(())
}
