//! # hb-process: computing process state
//!
//! **Status: partial (issue 9 in progress).** What exists is listed in
//! docs/processes.md; what does not yet exist is listed there too.
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
//! - execution devices: [`test_device`] (`test-device@1.0`, SPEC §6.9).
//!
//! It does not sequence messages (that is hb-scheduler) and does not speak
//! HTTP (that is hb-node).

#![deny(missing_docs)]

pub mod computation;
mod error;
mod processes;
mod registry;
pub mod run_as;
pub mod test_device;
mod worker;

pub use computation::{Computation, ComputeEnv, Computed, LastError};
pub use error::{ComputeError, Phase};
pub use processes::{Freshness, ProcessBuilder, ProcessConfig, Processes};
pub use worker::WorkerHandle;
