//! Home of the workspace's cross-crate integration tests (see `tests/`).
//!
//! This package has no code of its own: it exists so that `cargo test` at the
//! root runs tests that exercise several hb crates together.
