//! # hb-scheduler: sequencing messages for processes
//!
//! Owns everything that gives a message its place in a process's schedule:
//!
//! - the pure [`Sequencer`] (slot, hash chain, timestamp) and the
//!   [`Assignment`]s it drafts, signed with the node key;
//! - the [`hash_chain`] and the operators' chain verifier ([`verify_chain`]);
//! - schedule [`formats`]: the native bundle and aos-2 JSON, both ways;
//! - the [`ChainTipSource`] trait with the local default;
//! - the actors: one [`SchedulerServer`] per process, found or created
//!   atomically by the [`SchedulerRegistry`], behind the [`Scheduler`] facade
//!   that runs SPEC §5.6.2's checks (signature checks batched on a
//!   [`VerifyPool`]);
//! - the `scheduler@1.0` device ([`SchedulerDevice`]) and location records
//!   ([`location`]).
//!
//! It does not compute process state (that is hb-process) and does not speak
//! HTTP (that is hb-node).

#![deny(missing_docs)]

pub mod assignment;
pub mod chain_tip;
pub mod config;
mod deps;
pub mod device;
mod error;
pub mod formats;
pub mod hash_chain;
pub mod location;
mod registry;
mod schedule_store;
mod scheduler;
pub mod sequencer;
mod server;
pub mod target;
pub mod verify_chain;
mod verify_pool;

pub use assignment::{Assignment, AssignmentDraft};
pub use chain_tip::{CachedChainTip, ChainTip, ChainTipSource, LocalChainTip};
pub use config::{DedupPolicy, SchedulerConfig, SchedulingMode, UnknownSetting};
pub use deps::{NoopUploader, SchedulerDeps, SchedulerMetrics, Uploader};
pub use device::SchedulerDevice;
pub use error::{message_code, SchedulerError};
pub use registry::{SchedulerRegistry, ServerMap};
pub use scheduler::{process_dedup, DeviceCheck, ScheduleRequest, Scheduler};
pub use sequencer::Sequencer;
pub use server::{CurrentSlot, SchedulerServer, ServerHandle};
pub use verify_chain::{verify_chain, ChainFault, ChainReport, ChainVerifier};
pub use verify_pool::{PoolStopped, VerifyPool};
