//! # hb-tests: the actor harness and the cross-crate integration tests
//!
//! The library is the **actor harness** ([`harness`]): it starts hb's actor
//! graph in-process on a temporary sled store with seeded keys, lets tests
//! observe actor state through messages instead of sleeping, injects panics,
//! restarts the whole graph on the same store, and counts unexpected
//! restarts. The integration tests in `tests/` use it; each file is named
//! after the behaviour it proves.

#![deny(missing_docs)]

pub mod faults;
pub mod harness;
