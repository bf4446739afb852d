//! What executing a batch produces, and the running counters of an executor.

use crate::token::Token;
use eve_types::{BatchSeq, Digest, Reply};

/// How a batch is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecMode {
    /// Mixed into parallel batches and run on the executor's runner.
    Parallel,
    /// One request at a time in batch order on the calling thread: the deterministic mode used
    /// to re-execute a batch whose parallel executions diverged.
    Sequential,
}

/// The result of executing one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The batch.
    pub seq: BatchSeq,
    /// The root of the state before the batch.
    pub previous_root: Digest,
    /// The root after it.
    pub new_root: Digest,
    /// `H(seq || previous_root || new_root)`, sent to the verifiers.
    pub token: Token,
    /// Replies in batch order: one for every request executed, or answered from the reply
    /// cache because it was executed before. Requests older than the client's last executed
    /// one get no reply.
    pub replies: Vec<Reply>,
    /// Parallel batches the mixer made (the batch size, in sequential mode).
    pub parallel_batches: usize,
    /// Requests executed by the application.
    pub executed: usize,
    /// Requests answered from the reply cache without executing.
    pub duplicates: usize,
}

/// Counters over the life of an executor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Batches executed in parallel mode.
    pub parallel_batches_executed: u64,
    /// Batches executed in sequential mode.
    pub sequential_batches_executed: u64,
    /// Parallel batches run, over all batches.
    pub parallel_batches: u64,
    /// Requests executed by the application.
    pub requests_executed: u64,
    /// Requests answered from the reply cache.
    pub duplicates_answered: u64,
    /// Requests older than their client's last executed one, dropped.
    pub stale_dropped: u64,
    /// Executions in which the application panicked.
    pub application_panics: u64,
    /// Replies replaced because they exceeded the reply limit.
    pub replies_too_large: u64,
    /// Rollbacks.
    pub rollbacks: u64,
    /// Batches altered by [`Executor::with_forced_divergence`](crate::Executor::with_forced_divergence).
    pub forced_divergences: u64,
    /// Parallel batches of two or more requests run on the calling thread by
    /// [`Executor::with_adaptive_inline`](crate::Executor::with_adaptive_inline).
    pub parallel_batches_inline: u64,
}
