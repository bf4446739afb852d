//! A deterministic cluster simulator for eve, and the checkers that judge its runs.
//!
//! [`Cluster`] runs a whole cluster in one process from one seed: the real protocol logic
//! (`eve-agreement`), state store, executor and key-value application, over a simulated clock
//! and a [`network::Network`] that loses, delays, reorders and duplicates messages and cuts
//! links; replicas crash and restart empty; replicas diverge on purpose (their own seeded
//! interleavings, a racy application, a mixer that misses conflicts, a replica that corrupts
//! state) or, with `r >= 1`, lie ([`scenario::Byzantine`]). Every step checks that correct
//! replicas commit equal roots and release equal replies, and that clients accept only what
//! was committed; at the end each key's history is checked for linearizability, and every
//! pending request must have completed after the faults healed. The simulator reads no clock
//! and spawns no thread: a seed replays a run exactly, down to the trace hash.
//!
//! The checkers: [`linearizability`] decides whether a recorded history of
//! calls against any sequential specification (a [`linearizability::Model`]) could have come
//! from an atomic object, with a memoized Wing-Gong-Lowe search under an explicit
//! [`linearizability::SearchBudget`]; [`kv_history`] splits a key-value store history per key
//! and checks each key against the exact semantics of [`eve_apps::KvStore`]. The checkers are
//! pure functions of the history they are given: they perform no I/O, read no clock, spawn no
//! thread and draw no randomness, so a verdict replays exactly from the same history. They
//! depend on `eve-apps` only for the operation and reply types whose meaning they check, and
//! never on the protocol, network or node code whose output they judge — a checker that shared
//! code with what it checks could share its bugs.
//!
//! ```
//! use bytes::Bytes;
//! use eve_apps::{KvOp, KvReply};
//! use eve_sim::kv_history::{KvEvent, check_kv_history};
//! use eve_sim::linearizability::SearchBudget;
//!
//! let key = Bytes::from_static(b"k");
//! let put = KvEvent {
//!     client: 1,
//!     invoke: 0,
//!     complete: Some(10),
//!     op: KvOp::Put { key: key.clone(), value: Bytes::from_static(b"v") },
//!     reply: Some(KvReply::Value(None)),
//! };
//! // A read that starts after the write was acknowledged, yet does not see it: a lost write.
//! let get = KvEvent {
//!     client: 2,
//!     invoke: 20,
//!     complete: Some(30),
//!     op: KvOp::Get { key: key.clone() },
//!     reply: Some(KvReply::Value(None)),
//! };
//! let verdict = check_kv_history(&[put, get], SearchBudget::default());
//! assert_eq!(verdict.unwrap_err().key, key);
//! ```

#![deny(missing_docs)]

mod app;
mod checks;
mod cluster;
pub mod kv_history;
pub mod linearizability;
mod lying_verifier;
pub mod network;
mod reference;
mod report;
mod run;
pub mod scenario;
mod workload;

pub use app::{CORRUPTED_KEY, RACY_OP, SimApp};
pub use cluster::{Cluster, EVENTS_MAX};
pub use report::{Exercised, RunReport};
pub use run::{
    Summary, run_scenario, run_scenario_caught, run_scenario_with_contents_log,
    run_scenario_with_log, run_seed, run_seed_with_log,
};
pub use scenario::{Byzantine, ByzantineVerifier, FaultKind, Faults, Scenario};
pub use workload::{SimOp, draw_op};
