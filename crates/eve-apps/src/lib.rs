//! The built-in applications of eve: [`KvStore`], the replicated key-value store the node
//! serves; [`RacyCounter`], an application with a deliberate concurrency bug, for tests of
//! divergence and recovery; and [`BusyWork`], whose requests burn a chosen amount of CPU, for
//! benchmarks.
//!
//! Each is an ordinary [`Application`](eve_exec::Application), written against the same public
//! API a library user has. This crate does no I/O and starts no thread; it depends on the
//! execution layers below it and on nothing above (no protocol, network or node code), so the
//! simulator, the node and the benchmarks can all use the same applications.
//!
//! ```
//! use eve_apps::{KvOp, KvReply, KvStore};
//! use eve_exec::{ExecMode, Executor};
//! use eve_state::{StateConfig, StateStore};
//! use eve_types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
//!
//! let mut executor = Executor::sequential(KvStore, StateStore::new(StateConfig::default()));
//! let op = KvOp::Increment { key: "visits".into(), delta: 5 };
//! let request = Request::new(ClientId(1), RequestNo(1), op.encode())?;
//! let outcome = executor.execute(BatchSeq(1), &[request], NonDet::default(), ExecMode::Sequential)?;
//! assert_eq!(KvReply::decode(&outcome.replies[0].body)?, KvReply::Counter(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod busy;
mod kv;
mod mixed;
mod racy;

pub use busy::{BusyOp, BusyWork, busy_work};
pub use kv::{KvOp, KvReply, KvStore};
pub use mixed::{KvWithRacy, RACY_OP};
pub use racy::{RACY_COUNTER_KEY, RacyCounter};
