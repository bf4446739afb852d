//! An Eve node: execution replicas and verifiers serving over QUIC with mutual TLS, and the
//! client library.
//!
//! - [`NodeBuilder`] turns an [`eve_exec::Application`] into a running replica (and/or a
//!   verifier) of a cluster described by a [`ClusterSpec`]; [`Node`] reports status and shuts
//!   down.
//! - [`EveClient`] calls operations on a cluster.
//!
//! Each role runs the protocol logic of `eve-agreement` through its `Driver`, the same code
//! the simulator tests, in a loop that carries the driver's effects out over `eve-net` and a
//! dedicated execution thread.

#![deny(missing_docs)]

pub mod admin;
mod client;
mod clock;
pub mod config;
mod exec_thread;
pub mod init;
pub mod local;
mod node;
pub mod ports;
mod runner;
pub mod snapshot;
pub mod storage;

pub use client::{CALL_TIMEOUT, CallError, ConnectError, EveClient};
pub use clock::NodeClock;
pub use exec_thread::{EXEC_QUEUE_COMMANDS_MAX, ExecHistograms};
pub use node::{
    ClusterSpec, Execution, JournalReport, Metric, Node, NodeBuilder, NodeError, RoleStatus,
    incarnation_nonce,
};
pub use runner::COMMANDS_MAX;
