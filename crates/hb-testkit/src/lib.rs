//! # hb-testkit: the actor harness as a library
//!
//! Starts hb's scheduler graph in-process the way its tests, hb-process,
//! hb-node and embedding applications need it:
//!
//! - a temporary sled store with a seeded node key ([`Harness::start`]),
//!   or a [`FaultyStore`] around it whose flushes wait at a [`Gate`] and
//!   whose writes can be made to fail ([`Harness::start_faulty`]);
//! - a [`ManualClock`](hb_scheduler::ManualClock) every graph reads, so
//!   time-to-live and idle stops are tested by moving time, not sleeping;
//! - whole-graph restarts on the same store ([`Harness::restart`]);
//! - restart accounting that is not opt-in: restarts a test causes are
//!   declared up front ([`Harness::expect_restarts`]), and dropping the
//!   harness fails the test on any other;
//! - [`wait_until`] for state that changes on other threads, asserting
//!   outcomes, never durations.
//!
//! It depends on hb-scheduler's `test-support` feature (injected panics and
//! fault points), which production builds never enable.
//!
//! ```
//! use hb_testkit::Harness;
//! # #[actix_rt::main]
//! # async fn main() {
//! let h = Harness::start(Default::default());
//! let (pid, zero) = h.spawn_process(&Harness::client(1), 0).await.unwrap();
//! let one = h.schedule(Harness::message(&Harness::client(1), &pid, 1)).await.unwrap();
//! assert_eq!((zero.slot, one.slot), (0, 1));
//! h.scheduler.shutdown().await;
//! # }
//! ```

#![deny(missing_docs)]

pub mod faults;
pub mod harness;

pub use faults::{FaultyStore, Gate};
pub use harness::{wait_until, Harness, CLOCK_START_MS, NODE_SEED};
