//! A deterministic cluster simulator for eve, and the checkers that judge its runs. This part
//! is the linearizability checker: [`linearizability`] decides whether a recorded history of
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

pub mod kv_history;
pub mod linearizability;
