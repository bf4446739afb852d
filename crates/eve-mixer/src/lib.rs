//! Conflict keys and the mixer of eve: the step that splits a batch into parallel batches.
//!
//! This crate owns the [`ConflictKeys`] an application names for each request, the
//! [`Schedule`] a mixer produces (an ordered list of parallel batches holding every request
//! exactly once), the [`Mixer`] trait with its reference implementation [`GreedyMixer`], the
//! bounds [`SequentialMixer`] and [`ParallelMixer`], the fault-injecting [`FaultyMixer`] for
//! tests, and [`MixerStats`]. It is pure computation: it performs no I/O, reads no clock,
//! spawns no thread, draws no unseeded randomness and uses no floats in a decision, because
//! every replica must compute the same schedule from the same batch. It depends only on
//! `eve-types` (for the limits), never on the executor or the protocol logic that consume
//! schedules.
//!
//! ```
//! use eve_mixer::{ConflictKeys, GreedyMixer, Mixer};
//!
//! let mut deposit = ConflictKeys::new();
//! deposit.write(b"account/1");
//! let mut audit = ConflictKeys::new();
//! audit.read(b"account/1");
//! let mut other = ConflictKeys::new();
//! other.write(b"account/2");
//!
//! let schedule = GreedyMixer.mix(&[deposit, audit, other]);
//! let parallel_batches: Vec<&[u32]> = schedule.parallel_batches().collect();
//! assert_eq!(parallel_batches, vec![&[0, 2][..], &[1][..]]);
//! ```

#![deny(missing_docs)]

mod faulty;
mod greedy;
mod keys;
mod mixer;
mod schedule;
mod stats;

pub use faulty::{FAULT_PPM_MAX, FaultRateError, FaultyMixer};
pub use greedy::GreedyMixer;
pub use keys::{ConflictKey, ConflictKeys};
pub use mixer::{Mixer, ParallelMixer, SequentialMixer};
pub use schedule::{Schedule, ScheduleError};
pub use stats::MixerStats;
