//! # hb-scheduler: sequencing messages for processes
//!
//! Owns everything that gives a message its place in a process's schedule:
//!
//! - the pure domain: the [`Sequencer`] (slot, hash chain, timestamp) and
//!   the [`Assignment`]s it drafts; the [`admission`] checks of SPEC §5.6.2;
//!   a server's decisions in [`ServerCore`] (slot 0 is the definition,
//!   dedup, pending writes, idleness); what a [`definition`] says; the
//!   [`hash_chain`], the chain [`cursor`] that `next` walks with, and the
//!   operators' chain verifier ([`verify_chain`]);
//! - schedule [`formats`]: the native bundle and aos-2 JSON, both ways;
//! - the [`ChainTipSource`] trait with the local default, and the
//!   injectable [`Clock`];
//! - per-process [`lease`]s with fencing epochs, for several nodes on one
//!   store (SPEC §11.2; off unless `SchedulerConfig::node_id` is set);
//! - the actors, as thin shells: one server per process, found or created
//!   atomically by a registry, retired when idle, behind the [`Scheduler`]
//!   handle that [`SchedulerBuilder`] starts;
//! - the `scheduler@1.0` device ([`SchedulerDevice`]) and location records
//!   ([`location`]).
//!
//! It does not compute process state (that is hb-process) and does not speak
//! HTTP (that is hb-node).
//!
//! ## Embedding
//!
//! ```
//! # use std::sync::Arc;
//! # use hb_message::{Message, NodeKey};
//! # use hb_scheduler::{ScheduleRequest, SchedulerBuilder};
//! # #[actix_rt::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = NodeKey::from_seed(&[1; 32]);
//! let store = Arc::new(hb_store::MemoryStore::new());
//! let scheduler = SchedulerBuilder::new(store, key.clone()).start()?;
//! let process = Message::new().with("type", "Process")?.with("scheduler", key.address())?;
//! let pid = process.id_all()?;
//! scheduler.schedule(ScheduleRequest { message: process, ..Default::default() }).await?;
//! let ping = Message::new().with("target", pid.to_human())?.with("action", "Ping")?;
//! let slot1 = scheduler.schedule(ScheduleRequest { message: ping, ..Default::default() }).await?;
//! assert_eq!(slot1.slot, 1);
//! scheduler.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod admission;
pub mod ao_assignment;
pub mod assignment;
mod builder;
pub mod chain_tip;
pub mod clock;
pub mod config;
pub mod cursor;
pub mod definition;
pub mod definition_cache;
mod deps;
pub mod device;
mod error;
pub mod formats;
pub mod hash_chain;
pub mod lease;
mod lease_keeper;
pub mod location;
mod registry;
mod schedule_store;
mod scheduler;
pub mod sequencer;
mod server;
pub mod server_core;
pub mod target;
pub mod verify_chain;
mod verify_pool;

pub use admission::{DeviceCheck, ScheduleRequest};
pub use assignment::{Assignment, AssignmentDraft};
pub use builder::SchedulerBuilder;
pub use chain_tip::{CachedChainTip, ChainTip, ChainTipSource, LocalChainTip};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    DedupPolicy, FaultPoint, SchedulerConfig, SchedulingMode, UnknownSetting, MAX_NODE_ID_LEN,
};
pub use deps::{NoopUploader, SchedulerMetrics, Uploader};
pub use device::SchedulerDevice;
pub use error::{Check, SchedulerError};
pub use formats::SchedulePage;
pub use hb_message::ErrorCode;
pub use scheduler::Scheduler;
pub use sequencer::Sequencer;
pub use server::ServerHandle;
pub use server_core::{CurrentSlot, ServerCore};
pub use verify_chain::{verify_chain, ChainFault, ChainReport, ChainVerifier, ExpectedSigner};
pub use verify_pool::{PoolError, VerifyPool};
