//! The Eve protocol as deterministic logic: execution replicas ([`Replica`]), verifiers
//! ([`Verifier`]), clients ([`Client`]) and the primary-backup pair ([`PbReplica`]).
//!
//! Every participant is a state machine: messages, execution results and the time go in
//! through `handle_*` methods; messages to send and commands for the execution side come out
//! through `poll_output`; `next_timeout` says when time next matters. Nothing here reads a
//! clock, spawns a thread, touches a socket or draws unseeded randomness, so the simulator and
//! the node drive exactly the same code, and a seed replays a whole cluster. Execution runs
//! elsewhere, behind [`ReplicaExecutor`]: the logic hands it [`ExecCommand`]s in order and
//! receives [`ExecEvent`]s. This crate depends on the execution layers (`eve-exec`, `eve-state`)
//! for their data types, never on the network, the node or the simulator.

#![deny(missing_docs)]

pub mod auth;
pub mod certificate;
mod client;
mod driver;
mod exec_side;
pub mod journal;
pub mod limits;
mod message;
mod node;
mod pending;
mod primary_backup;
mod replica;
mod requests;
mod time;
mod verifier;
pub mod verifier_store;

pub use client::{Client, ClientError, Completion};
pub use driver::{Driver, Effect, Effects, Io, Logic, ReplicaLogic, TimerStillDue};
pub use eve_exec::Token;
pub use exec_side::{
    CHUNK_BYTES, DELTA_BYTES_MAX, ExecCommand, ExecEvent, ReplicaExecutor, StateReplyCheck,
};
pub use message::{
    Batch, DecodeError, Lock, Message, ProvenViewChange, RecoveryState, Roots, StateReply,
    ViewChangeProof,
};
pub use node::{Drops, NodeId, Output};
pub use primary_backup::{PbCounters, PbReplica};
pub use replica::{Replica, ReplicaCounters};
pub use time::Time;
pub use verifier::{Verifier, VerifierCounters, VerifierMemory};
