//! The Lua counter (examples/lua/counter.lua) through the Rust API: a
//! scheduler and a process layer on an in-memory store, a process
//! registered with the script, three `Inc` and a `Get`, and the state read
//! back. Run with `cargo run --example lua_counter`.

use std::sync::Arc;

use hb_message::{Message, NodeKey, Value};
use hb_process::{Freshness, ProcessBuilder};
use hb_scheduler::{ScheduleRequest, SchedulerBuilder};

const COUNTER: &str = include_str!("lua/counter.lua");

fn main() -> anyhow::Result<()> {
    actix::System::new().block_on(async {
        let key = NodeKey::from_seed(&[7; 32]);
        let store = Arc::new(hb_store::MemoryStore::new());
        let scheduler = SchedulerBuilder::new(store, key.clone()).start()?;
        let processes = ProcessBuilder::new(scheduler.clone()).start()?;
        let schedule = |message: Message| {
            let scheduler = scheduler.clone();
            async move {
                scheduler
                    .schedule(ScheduleRequest {
                        message,
                        ..Default::default()
                    })
                    .await
            }
        };
        let process = Message::new()
            .with("type", "Process")?
            .with("device", "process@1.0")?
            .with("scheduler", key.address())?
            .with("execution-device", "lua@5.3a")?
            .with("script", COUNTER)?;
        let pid = process.id_all()?;
        schedule(process).await?;
        for action in ["Inc", "Inc", "Inc", "Get"] {
            let m = Message::new()
                .with("target", pid.to_human())?
                .with("action", action)?;
            schedule(m).await?;
        }
        let state = processes.now(pid, Freshness::default()).await?.state;
        let count = state
            .get_path("state/count")
            .and_then(Value::to_int_lenient);
        let output = state.get_path("results/output").and_then(Value::as_text);
        println!("process {pid}: count = {count:?}, last output = {output:?}");
        processes.shutdown().await;
        scheduler.shutdown().await;
        Ok(())
    })
}
