//! # hb-node: the node
//!
//! Owns the node's settings ([`config`]: the list of every setting,
//! [`NodeConfig`] loaded from a TOML file, `HB_*` variables and flags,
//! docs/configuration.md), the [`NodeBuilder`] that starts the scheduler,
//! the process layer and the HTTP server on one store and key, the HTTP
//! API ([`http`]: every route of SPEC §7.3, the headers and JSON errors of
//! §7.2–7.4, panics contained as 500 `internal`, a `tracing` span per
//! request), `/metrics` ([`metrics`], SPEC §7.5), the operator dashboard
//! ([`dashboard`], `/~hyperbuddy@1.0/dashboard`), a node-wide bound on
//! requests in flight ([`overload`]), a shutdown that answers
//! every accepted request ([`Node::shutdown`]), the HTTP [`client`], and
//! the `hb` binary (`hb serve` and the client subcommands of SPEC §7.6),
//! and the ao scheduler unit's API for ao's own clients ([`legacy`], SPEC
//! §10.4).
//!
//! Embedding (docs/embedding.md): [`NodeBuilder::http`]`(false)` starts a
//! node without its own HTTP server, [`Node::routes`] mounts hb's routes
//! in the host's actix-web `App` (at the root or under a scope),
//! [`NodeBuilder::device`] registers the host's own devices, and the
//! handle schedules, computes and dry-runs ([`Node::schedule`],
//! [`Node::compute`], [`Node::dry_run`]). [`backup`] makes a running node
//! copy its store (docs/operations.md). [`mainnet`] serves aoconnect's
//! `mainnet` mode: signed ANS-104 items on the routes of SPEC §10.5.
//! [`cluster`] lets several nodes on one PostgreSQL database act as one
//! scheduler (SPEC §11, docs/cluster.md).
//! Not yet: remote scheduler proxying (a redirect is answered, not
//! followed).
//!
//! ```
//! # use std::sync::Arc;
//! # use hb_node::{NodeBuilder, NodeConfig};
//! # #[actix_rt::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(hb_store::MemoryStore::new());
//! let key = hb_message::NodeKey::from_seed(&[1; 32]);
//! let node = NodeBuilder::new(store, key)
//!     .config(NodeConfig { port: 0, ..NodeConfig::default() })
//!     .start()?;
//! println!("listening on {}", node.url());
//! node.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod backup;
pub mod bench;
pub mod client;
pub mod cluster;
pub mod config;
pub mod dashboard;
mod embed;
pub mod http;
pub mod legacy;
pub mod mainnet;
pub mod metrics;
mod node;
pub mod overload;

/// docs/embedding.md, whose Rust blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/embedding.md")]
pub struct EmbeddingDoc;

pub use config::{ClusterRouting, ConfigError, NodeConfig, Setting, StoreKind, SETTINGS};
pub use node::{Node, NodeBuilder, NodeError, BUILT_IN_DEVICES, DEFAULT_SHUTDOWN_GRACE};
