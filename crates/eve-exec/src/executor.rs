//! The executor: runs a batch the way Eve does and returns its replies and token.
//!
//! For each batch: ask the application for every request's conflict keys (plus the client's
//! reply-cache entry, written by every request), let the mixer cut parallel batches, run them
//! one after another on the runner with a barrier in between, then seal the state into a new
//! version and compute the token. Sequential mode skips the mixer and runs requests in batch
//! order on the calling thread. Driven from outside: the protocol layer decides what to
//! execute, roll back and mark stable.

use crate::app::Application;
use crate::context::ExecContext;
use crate::outcome::{BatchOutcome, ExecMode, ExecStats};
use crate::reply_cache::{self, CachedReply};
use crate::runner::{InlineRunner, ParallelRunner};
use crate::token::Token;
use bytes::Bytes;
use eve_mixer::{ConflictKeys, Mixer, Schedule, SequentialMixer};
use eve_state::{ParallelFor, StateError, StateStore};
use eve_types::limits::{BATCH_REQUESTS_MAX, REPLY_BYTES_MAX};
use eve_types::{BatchSeq, NonDet, Reply, Request};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The reply recorded when the application panicked while executing a request.
pub const REPLY_APPLICATION_PANICKED: &[u8] = b"\xffeve: the application panicked";

/// The reply recorded when the application returned more than
/// [`REPLY_BYTES_MAX`] bytes.
pub const REPLY_TOO_LARGE: &[u8] = b"\xffeve: the reply exceeded REPLY_BYTES_MAX";

/// Why a batch was not executed. The state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// Batches execute in sequence: the next batch must be the state's working version.
    #[error("batch {got} is out of sequence: the next batch to execute is {expected}")]
    OutOfSequence {
        /// The sequence number the state expects.
        expected: BatchSeq,
        /// The one given.
        got: BatchSeq,
    },
    /// More requests than [`BATCH_REQUESTS_MAX`].
    #[error("batch of {requests} requests; the limit is {max}")]
    BatchTooLarge {
        /// Requests in the batch.
        requests: usize,
        /// The limit.
        max: usize,
    },
    /// A state operation failed (sealing past the retained-version limit, a rollback below
    /// the stable version).
    #[error(transparent)]
    State(#[from] StateError),
}

/// What happened to one request.
enum Outcome {
    Executed(Bytes),
    Duplicate(CachedReply),
    Stale,
}

/// Executes batches of requests for one replica.
pub struct Executor<A: Application> {
    app: A,
    state: StateStore,
    mixer: Box<dyn Mixer>,
    runner: Box<dyn ParallelRunner>,
    stats: ExecStats,
    keys: Vec<ConflictKeys>,
    forced_divergence: Option<ForcedDivergence>,
    adaptive: Option<Adaptive>,
}

/// See [`Executor::with_adaptive_inline`]: the caller's clock, and the recent wall time per
/// request of parallel batches run on the pool and run inline, in nanoseconds (moving
/// averages).
#[derive(Clone, Copy, Debug)]
struct Adaptive {
    now_ns: fn() -> u64,
    pool_ns: f64,
    inline_ns: f64,
    /// Parallel batches run since the last time the slower way was tried again.
    since_probe: u32,
}

/// Every this many parallel batches, [`Executor::with_adaptive_inline`] runs one the way it
/// currently judges slower, so that its estimate follows the load.
const ADAPTIVE_PROBE_EVERY: u32 = 16;

/// A benchmark and test knob: see [`Executor::with_forced_divergence`].
#[derive(Clone, Copy, Debug)]
struct ForcedDivergence {
    ppm: u32,
    salt: u64,
}

/// Mixed into a batch's sequence number to draw whether the forced-divergence knob alters it:
/// the draw depends on the batch alone, so every replica alters the same batches.
const FORCED_DIVERGENCE_DRAW: u64 = 0xD17E_26E5;

/// The object a forced divergence writes (a system key: applications cannot touch it).
pub const FORCED_DIVERGENCE_KEY: &[u8] = b"\xffeve/forced-divergence";

impl<A: Application> Executor<A> {
    /// An executor that mixes with `mixer` and runs parallel batches on `runner`.
    pub fn new(
        app: A,
        state: StateStore,
        mixer: Box<dyn Mixer>,
        runner: Box<dyn ParallelRunner>,
    ) -> Self {
        Self {
            app,
            state,
            mixer,
            runner,
            stats: ExecStats::default(),
            keys: Vec::new(),
            forced_divergence: None,
            adaptive: None,
        }
    }

    /// Runs each parallel batch either on the runner's threads or on the calling thread, in
    /// its order, whichever has recently taken less wall time per request (trying the other
    /// way every few batches). Waking other threads for microsecond requests can cost more
    /// than it saves, above all when other processes hold the cores. The outcome is the same
    /// either way (a parallel batch holds no conflicting requests); only the schedule depends
    /// on the clock, so deterministic runs (the simulator) leave this off. `now_ns` is the
    /// caller's monotonic clock in nanoseconds: the executor reads none of its own.
    pub fn with_adaptive_inline(mut self, now_ns: fn() -> u64) -> Self {
        self.adaptive = Some(Adaptive {
            now_ns,
            pool_ns: 0.0,
            inline_ns: 0.0,
            since_probe: 0,
        });
        self
    }

    /// Benchmark and test knob: makes this executor diverge, as a concurrency bug would, in
    /// `ppm` parts per million of the batches it executes in parallel. For those batches
    /// (chosen from their sequence number alone, so every replica picks the same ones) it
    /// writes `salt` into [`FORCED_DIVERGENCE_KEY`] before sealing; replicas given different
    /// salts then hold different states and send different tokens. Executed sequentially
    /// (after the rollback that follows), a batch is never altered, so replicas agree again.
    pub fn with_forced_divergence(mut self, ppm: u32, salt: u64) -> Self {
        self.forced_divergence = (ppm > 0).then_some(ForcedDivergence { ppm, salt });
        self
    }

    /// An executor that runs every batch one request at a time, in order, on the calling
    /// thread: classic sequential state machine replication.
    pub fn sequential(app: A, state: StateStore) -> Self {
        Self::new(
            app,
            state,
            Box::new(SequentialMixer),
            Box::new(InlineRunner),
        )
    }

    /// Executes batch `seq`, which must be the state's working version, and seals it.
    pub fn execute(
        &mut self,
        seq: BatchSeq,
        requests: &[Request],
        nondet: NonDet,
        mode: ExecMode,
    ) -> Result<BatchOutcome, ExecError> {
        if requests.len() > BATCH_REQUESTS_MAX {
            return Err(ExecError::BatchTooLarge {
                requests: requests.len(),
                max: BATCH_REQUESTS_MAX,
            });
        }
        let expected = self.state.working_version();
        if seq != expected || self.state.has_unsealed_writes() {
            return Err(ExecError::OutOfSequence { expected, got: seq });
        }
        let previous_root = self.state.root();
        let slots: Vec<OnceLock<Outcome>> = requests.iter().map(|_| OnceLock::new()).collect();
        let counters = Counters::default();
        let batch = BatchRun {
            app: &self.app,
            state: &self.state,
            seq,
            nondet,
            requests,
            slots: &slots,
            counters: &counters,
        };
        let parallel_batches = match mode {
            ExecMode::Parallel => {
                let schedule = mix(&self.app, self.mixer.as_ref(), &mut self.keys, requests);
                for parallel_batch in schedule.parallel_batches() {
                    let len = parallel_batch.len();
                    let run = |j: usize| batch.run_one(parallel_batch[j] as usize);
                    let Some(adaptive) = &mut self.adaptive else {
                        self.runner.run(len, &run);
                        continue;
                    };
                    if len < 2 {
                        (0..len).for_each(run);
                        continue;
                    }
                    let inline_faster = adaptive.inline_ns < adaptive.pool_ns;
                    adaptive.since_probe += 1;
                    let probe = adaptive.since_probe >= ADAPTIVE_PROBE_EVERY;
                    if probe {
                        adaptive.since_probe = 0;
                    }
                    let inline = inline_faster != probe;
                    let started = (adaptive.now_ns)();
                    if inline {
                        (0..len).for_each(run);
                        self.stats.parallel_batches_inline += 1;
                    } else {
                        self.runner.run(len, &run);
                    }
                    let elapsed = (adaptive.now_ns)().saturating_sub(started);
                    let per_request = elapsed as f64 / len as f64;
                    let average = if inline {
                        &mut adaptive.inline_ns
                    } else {
                        &mut adaptive.pool_ns
                    };
                    *average = if *average == 0.0 {
                        per_request
                    } else {
                        0.8 * *average + 0.2 * per_request
                    };
                }
                schedule.parallel_batch_count()
            }
            ExecMode::Sequential => {
                (0..requests.len()).for_each(|i| batch.run_one(i));
                requests.len()
            }
        };
        if let Some(forced) = self.forced_divergence
            && mode == ExecMode::Parallel
            && eve_types::splitmix64(seq.0 ^ FORCED_DIVERGENCE_DRAW) % 1_000_000
                < u64::from(forced.ppm)
        {
            self.state
                .put(
                    FORCED_DIVERGENCE_KEY,
                    Bytes::copy_from_slice(&forced.salt.to_le_bytes()),
                )
                .expect("an 8-byte system object fits the state limits");
            self.stats.forced_divergences += 1;
        }
        let new_root = match self.state.seal_with(&mut Lend(self.runner.as_mut())) {
            Ok(root) => root,
            Err(err) => {
                self.state
                    .rollback(self.state.sealed_version())
                    .expect("the last sealed version is held");
                return Err(err.into());
            }
        };
        let outcome = self.outcome(
            seq,
            requests,
            slots,
            previous_root,
            new_root,
            parallel_batches,
        );
        self.count(mode, &outcome, &counters);
        Ok(outcome)
    }

    /// Rolls the state back to `version` (a held version): the batches after it are undone.
    pub fn rollback(&mut self, version: BatchSeq) -> Result<(), ExecError> {
        self.state.rollback(version)?;
        self.stats.rollbacks += 1;
        Ok(())
    }

    /// Marks `version` stable: the state can no longer roll back below it.
    pub fn mark_stable(&mut self, version: BatchSeq) -> Result<(), ExecError> {
        Ok(self.state.mark_stable(version)?)
    }

    /// The replicated state.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// The replicated state, for state transfer.
    pub fn state_mut(&mut self) -> &mut StateStore {
        &mut self.state
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// Counters since the executor was made.
    pub fn stats(&self) -> ExecStats {
        self.stats
    }

    /// Threads that run a parallel batch.
    pub fn threads(&self) -> usize {
        self.runner.threads()
    }

    /// The client's last executed request and reply, if any.
    pub fn cached_reply(&self, client: eve_types::ClientId) -> Option<CachedReply> {
        reply_cache::lookup(&self.state, client)
    }

    fn outcome(
        &self,
        seq: BatchSeq,
        requests: &[Request],
        slots: Vec<OnceLock<Outcome>>,
        previous_root: eve_types::Digest,
        new_root: eve_types::Digest,
        parallel_batches: usize,
    ) -> BatchOutcome {
        let mut replies = Vec::with_capacity(requests.len());
        let (mut executed, mut duplicates) = (0, 0);
        for (request, slot) in requests.iter().zip(slots) {
            let outcome = slot
                .into_inner()
                .expect("the runner ran every request of every parallel batch");
            let (reply_seq, body) = match outcome {
                Outcome::Executed(body) => {
                    executed += 1;
                    (seq, body)
                }
                Outcome::Duplicate(cached) => {
                    duplicates += 1;
                    (cached.seq, cached.body)
                }
                Outcome::Stale => continue,
            };
            replies.push(Reply {
                client: request.client,
                request_no: request.request_no,
                seq: reply_seq,
                body,
            });
        }
        BatchOutcome {
            seq,
            previous_root,
            new_root,
            token: Token::compute(seq, previous_root, new_root),
            replies,
            parallel_batches,
            executed,
            duplicates,
        }
    }

    fn count(&mut self, mode: ExecMode, outcome: &BatchOutcome, counters: &Counters) {
        let stats = &mut self.stats;
        match mode {
            ExecMode::Parallel => stats.parallel_batches_executed += 1,
            ExecMode::Sequential => stats.sequential_batches_executed += 1,
        }
        stats.parallel_batches += outcome.parallel_batches as u64;
        stats.requests_executed += outcome.executed as u64;
        stats.duplicates_answered += outcome.duplicates as u64;
        stats.stale_dropped += counters.stale.load(Ordering::Relaxed);
        stats.application_panics += counters.panics.load(Ordering::Relaxed);
        stats.replies_too_large += counters.too_large.load(Ordering::Relaxed);
    }
}

impl<A: Application> std::fmt::Debug for Executor<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("app", &self.app.name())
            .field("mixer", &self.mixer.name())
            .field("runner", &self.runner.name())
            .field("state", &self.state)
            .finish()
    }
}

/// Lends the runner's threads to the state store for sealing.
struct Lend<'a>(&'a mut dyn ParallelRunner);

impl ParallelFor for Lend<'_> {
    fn parallel_for(&mut self, len: usize, task: &(dyn Fn(usize) + Sync)) {
        self.0.run(len, task);
    }

    fn parallelism(&self) -> usize {
        self.0.threads()
    }
}

/// Asks the application for every request's conflict keys, adds the client's reply-cache
/// entry (written by every request), and mixes. `keys` is scratch space kept between batches.
fn mix<A: Application>(
    app: &A,
    mixer: &dyn Mixer,
    keys: &mut Vec<ConflictKeys>,
    requests: &[Request],
) -> Schedule {
    keys.resize_with(requests.len(), ConflictKeys::new);
    for (keys, request) in keys.iter_mut().zip(requests) {
        keys.clear();
        app.conflict_keys(&request.op, keys);
        keys.write_key(reply_cache::reply_cache_conflict_key(request.client));
    }
    let schedule = mixer.mix(&keys[..requests.len()]);
    assert_eq!(
        schedule.requests(),
        requests.len(),
        "the mixer must place every request of the batch exactly once"
    );
    schedule
}

#[derive(Default)]
struct Counters {
    stale: AtomicU64,
    panics: AtomicU64,
    too_large: AtomicU64,
}

/// Everything one request's execution needs, shared by the runner's threads.
struct BatchRun<'a, A> {
    app: &'a A,
    state: &'a StateStore,
    seq: BatchSeq,
    nondet: NonDet,
    requests: &'a [Request],
    slots: &'a [OnceLock<Outcome>],
    counters: &'a Counters,
}

impl<A: Application> BatchRun<'_, A> {
    /// Executes request `i` unless its client's reply cache already holds it (or a later
    /// one), and records the reply in the cache.
    fn run_one(&self, i: usize) {
        let request = &self.requests[i];
        let last = reply_cache::last_request_no(self.state, request.client);
        let outcome = match last {
            Some(last) if last == request.request_no => {
                Outcome::Duplicate(reply_cache::lookup(self.state, request.client).expect(
                    "the entry just read is still there: only the thread running this client's \
                     request writes it",
                ))
            }
            Some(last) if last > request.request_no => {
                self.counters.stale.fetch_add(1, Ordering::Relaxed);
                Outcome::Stale
            }
            _ => {
                let body = self.execute(i, request);
                reply_cache::record(
                    self.state,
                    request.client,
                    request.request_no,
                    self.seq,
                    &body,
                );
                Outcome::Executed(body)
            }
        };
        if self.slots[i].set(outcome).is_err() {
            panic!("request {i} ran twice in one batch: the runner broke its contract");
        }
    }

    fn execute(&self, i: usize, request: &Request) -> Bytes {
        let mut ctx = ExecContext::new(
            self.state,
            self.seq,
            request.client,
            request.request_no,
            self.nondet.time_ms,
            self.nondet.random_for(i),
        );
        match catch_unwind(AssertUnwindSafe(|| self.app.execute(&mut ctx, &request.op))) {
            Ok(body) if body.len() <= REPLY_BYTES_MAX => body,
            Ok(_) => {
                self.counters.too_large.fetch_add(1, Ordering::Relaxed);
                Bytes::from_static(REPLY_TOO_LARGE)
            }
            Err(_) => {
                self.counters.panics.fetch_add(1, Ordering::Relaxed);
                Bytes::from_static(REPLY_APPLICATION_PANICKED)
            }
        }
    }
}
