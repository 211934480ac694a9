//! # hb-node: the node
//!
//! **Status: a first slice of issue 10.** Owns the node's settings
//! ([`config`]: the list of every setting, [`NodeConfig`] loaded from a
//! TOML file, `HB_*` variables and flags, docs/configuration.md), the
//! [`NodeBuilder`] that starts the scheduler, the process layer and the
//! HTTP server on one store and key, the HTTP API ([`http`]: the
//! resolution routes of SPEC §7.2–7.3, JSON errors of §7.4, `/healthz`,
//! `/~meta@1.0/info`), and the `hb` binary with `hb serve` and the client subcommands, which use
//! the HTTP [`client`]. Not yet: `/metrics`, aos-2 content negotiation beyond the
//! scheduler device's own, and docs/http-api.md.
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

pub mod client;
pub mod config;
pub mod http;
mod node;

pub use config::{ConfigError, NodeConfig, Setting, SETTINGS};
pub use node::{Node, NodeBuilder, NodeError, BUILT_IN_DEVICES};
