//! Identifiers, requests, replies, limits and the validated cluster configuration of eve.
//!
//! This crate is the bottom layer: every other eve crate speaks in its types. It owns plain
//! data and the rules that make data valid (configuration ranges, named limits); it performs
//! no I/O, reads no clock, spawns no thread and depends on no other eve crate, so that the
//! state store, the mixer, the executor and the protocol logic can all share it without
//! pulling in anything heavier than `serde` and `bytes`.
//!
//! ```
//! use eve_types::{ClusterConfig, ReplicationMode};
//!
//! let config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 1 }).validate()?;
//! assert_eq!(config.sizes().n_exec, 3);
//! assert_eq!(config.sizes().n_ver, 4);
//! assert_eq!(config.sizes().client_reply_quorum, 2);
//! # Ok::<(), eve_types::ConfigError>(())
//! ```

#![deny(missing_docs)]

mod config;
mod digest;
mod ids;
pub mod limits;
mod request;
mod rng;

pub use config::{ClusterConfig, ConfigError, QuorumSizes, ReplicationMode, ValidConfig};
pub use digest::Digest;
pub use ids::{BatchSeq, ClientId, ReplicaId, RequestNo, VerifierId, View};
pub use request::{NonDet, Reply, Request, RequestError, Signature};
pub use rng::{SplitMix64, splitmix64};
