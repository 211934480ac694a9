//! # hb-tests: the cross-crate integration tests
//!
//! The tests in `tests/` start hb's actor graph through
//! [hb-testkit](../hb_testkit/index.html)'s harness; each file is named after
//! the behaviour it proves. This library is empty.

#![deny(missing_docs)]
