//! Execution for eve: the [`Application`] trait a library user implements, the [`Executor`]
//! that runs a batch through the mixer and a [`ParallelRunner`], and the [`Token`] that
//! replicas compare.
//!
//! The executor is driven from outside: the protocol layer hands it a batch and gets back the
//! replies and the token; it rolls back and marks versions stable when told. Its parallelism
//! lives behind [`ParallelRunner`], which has three implementations: a fixed pool of worker
//! threads ([`ThreadPoolRunner`], for the node and benchmarks), in order on the calling
//! thread ([`InlineRunner`]), and in a seeded order on the calling thread ([`SeededRunner`],
//! for the deterministic simulator). The runners are the only place this crate starts
//! threads; it does no I/O, reads no clock and knows nothing of the protocol or the network.
//! It depends on `eve-types`, `eve-state` and `eve-mixer` only.
//!
//! ```
//! use bytes::Bytes;
//! use eve_exec::{Application, ExecContext, ExecMode, Executor, ThreadPoolRunner};
//! use eve_mixer::{ConflictKeys, GreedyMixer};
//! use eve_state::{StateConfig, StateStore};
//! use eve_types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
//!
//! /// Counts hits per page: the operation is the page name.
//! struct Hits;
//!
//! impl Application for Hits {
//!     fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
//!         keys.write(op);
//!     }
//!     fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
//!         let hits = ctx.get(op).map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()));
//!         ctx.put(op, (hits + 1).to_le_bytes().to_vec()).unwrap();
//!         Bytes::from((hits + 1).to_string())
//!     }
//! }
//!
//! let state = StateStore::new(StateConfig::default());
//! let runner = ThreadPoolRunner::new(2)?;
//! let mut executor = Executor::new(Hits, state, Box::new(GreedyMixer), Box::new(runner));
//! let requests: Vec<Request> = (1..=4)
//!     .map(|c| Request::new(ClientId(c), RequestNo(1), &b"/index"[..]).unwrap())
//!     .collect();
//! let outcome = executor.execute(BatchSeq(1), &requests, NonDet::default(), ExecMode::Parallel)?;
//! assert_eq!(outcome.replies.len(), 4);
//! assert_eq!(outcome.replies[3].body, "4", "conflicting requests run in batch order");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod app;
mod context;
mod executor;
mod outcome;
pub mod reply_cache;
mod runner;
mod token;

pub use app::Application;
pub use context::ExecContext;
pub use executor::{
    ExecError, Executor, FORCED_DIVERGENCE_KEY, REPLY_APPLICATION_PANICKED, REPLY_TOO_LARGE,
};
pub use outcome::{BatchOutcome, ExecMode, ExecStats};
pub use runner::{InlineRunner, ParallelRunner, SeededRunner, ThreadPoolRunner};
pub use token::Token;
