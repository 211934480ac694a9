//! # hb-process: computing process state
//!
//! Owns everything that turns a process's schedule into its state
//! (SPEC §6):
//!
//! - [`Computation`]: a process's state advanced one slot at a time (SPEC
//!   §6.4), with snapshots and restores, as a plain struct;
//! - device swapping ([`run_as`], SPEC §6.2);
//! - the actors: one worker per process (shared computation, deadlines,
//!   `Busy`), found or created atomically by a registry, behind the
//!   [`Processes`] handle that [`ProcessBuilder`] starts on a running
//!   scheduler: `compute`, `now` with freshness hints, `status`;
//! - the `process@1.0` device ([`process_device`]): `compute`, `now`,
//!   `status`, `schedule`, `slot`;
//! - execution devices: [`lua_device`] (`lua@5.3a`, SPEC §6.10, on the
//!   [`lua`] engine), [`test_device`] (`test-device@1.0`, SPEC §6.9) and
//!   [`patch`] (`patch@1.0`, SPEC §6.11, placed after an execution device
//!   in a stack).
//!
//! It does not sequence messages (that is hb-scheduler) and does not speak
//! HTTP (that is hb-node).
//!
//! ## Embedding
//!
//! ```
//! # use std::sync::Arc;
//! # use hb_message::{Message, NodeKey};
//! # use hb_scheduler::{ScheduleRequest, SchedulerBuilder};
//! # use hb_process::ProcessBuilder;
//! # #[actix_rt::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = NodeKey::from_seed(&[1; 32]);
//! let scheduler = SchedulerBuilder::new(Arc::new(hb_store::MemoryStore::new()), key.clone()).start()?;
//! let processes = ProcessBuilder::new(scheduler.clone()).start()?;
//! let process = Message::new().with("type", "Process")?.with("scheduler", key.address())?
//!     .with("execution-device", "test-device@1.0")?;
//! let pid = process.id_all()?;
//! scheduler.schedule(ScheduleRequest { message: process, ..Default::default() }).await?;
//! let add = Message::new().with("target", pid.to_human())?.with("add", 5)?;
//! scheduler.schedule(ScheduleRequest { message: add, ..Default::default() }).await?;
//! assert_eq!(processes.compute(pid, 1).await?.state.get_int("sum"), Some(5));
//! processes.shutdown().await;
//! scheduler.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod computation;
mod error;
pub mod lua;
pub mod lua_device;
pub mod patch;
pub mod process_device;
mod processes;
mod registry;
pub mod run_as;
pub mod test_device;
mod worker;

pub use computation::{Computation, ComputeEnv, Computed, LastError};
pub use error::{ComputeError, Phase};
pub use lua_device::LuaDevice;
pub use process_device::{ProcessDevice, PushDevice};
pub use processes::{Freshness, ProcessBuilder, ProcessConfig, Processes};
pub use worker::{is_idle, ProcessMetrics, WorkerHandle};
