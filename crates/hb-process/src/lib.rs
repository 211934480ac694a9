//! # hb-process: computing process state
//!
//! **Status: partial (issue 9 in progress).** What exists is listed in
//! docs/processes.md; what does not yet exist is listed there too.
//!
//! Owns everything that turns a process's schedule into its state
//! (SPEC §6):
//!
//! - execution devices: [`test_device`] (`test-device@1.0`, SPEC §6.9).
//!
//! It does not sequence messages (that is hb-scheduler) and does not speak
//! HTTP (that is hb-node).

#![deny(missing_docs)]

pub mod lua;
pub mod test_device;
