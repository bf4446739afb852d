//! The execution side on its own thread: it applies the replica's commands in order and sends
//! back what they produced, so a long batch or a large state transfer never blocks the
//! protocol loop. A durable replica's journal is synced once per burst of commands (every
//! command queued when the thread gets to it, up to [`GROUP_COMMIT_COMMANDS_MAX`]), and what
//! the burst produced is released only after that sync: group commit.

use eve_agreement::{ExecCommand, ExecEvent, ReplicaExecutor};
use eve_exec::{Application, ExecStats};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Commands queued for the execution thread; when full, the protocol loop waits (the
/// execution side is the bottleneck, and the logic bounds what it has in flight).
pub const EXEC_QUEUE_COMMANDS_MAX: usize = 1024;

/// Commands applied at most between two syncs of the journal.
pub const GROUP_COMMIT_COMMANDS_MAX: usize = 64;

/// Distributions the execution thread records per batch (shared handles: clones observe into
/// the same histogram).
#[derive(Clone, Debug)]
pub struct ExecHistograms {
    /// Requests per executed batch.
    pub batch_requests: Histogram,
    /// Average requests per parallel batch within each executed batch.
    pub parallel_batch_width: Histogram,
}

impl Default for ExecHistograms {
    fn default() -> Self {
        Self {
            batch_requests: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            parallel_batch_width: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
        }
    }
}

/// The size of a replica's state, as of the execution thread's last command.
#[derive(Debug, Default)]
pub struct StateSize {
    objects: AtomicUsize,
    bytes: AtomicUsize,
}

impl StateSize {
    /// Live objects, including writes of a batch being executed.
    pub fn objects(&self) -> usize {
        self.objects.load(Ordering::Relaxed)
    }

    /// Key and value bytes of the last sealed state.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    fn record(&self, state: &eve_state::StateStore) {
        self.objects.store(state.len(), Ordering::Relaxed);
        self.bytes.store(state.bytes(), Ordering::Relaxed);
    }
}

/// The protocol loop's end of the execution thread.
pub struct ExecHandle {
    /// Where commands go.
    pub commands: mpsc::Sender<ExecCommand>,
    /// What comes back. Unbounded: each command yields a bounded number of events and the
    /// command queue is bounded, so this is too; and the execution thread must never wait on
    /// the loop that may be waiting on it.
    pub events: mpsc::UnboundedReceiver<ExecEvent>,
    /// The executor's statistics, as of its last batch.
    pub stats: Arc<Mutex<ExecStats>>,
    /// Per-batch distributions, for metrics.
    pub histograms: ExecHistograms,
    /// The replica's state size, as of its last command.
    pub size: Arc<StateSize>,
    /// The journal's syncs and the batches they covered (durable replicas).
    pub journal: Arc<JournalStats>,
    thread: std::thread::JoinHandle<()>,
}

/// What a durable replica's journal did, as of the execution thread's last burst.
#[derive(Debug, Default)]
pub struct JournalStats {
    syncs: AtomicUsize,
    batches: AtomicUsize,
    halted: Mutex<Option<String>>,
}

impl JournalStats {
    /// Syncs of the log.
    pub fn syncs(&self) -> usize {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Batches logged.
    pub fn batches(&self) -> usize {
        self.batches.load(Ordering::Relaxed)
    }

    /// Why the journal failed, if it did: the replica no longer reports anything.
    pub fn halted(&self) -> Option<String> {
        self.halted.lock().expect("never poisoned").clone()
    }

    fn record<A: Application>(&self, executor: &ReplicaExecutor<A>) {
        if let Some(journal) = executor.journal() {
            let counters = journal.counters();
            self.syncs.store(counters.syncs as usize, Ordering::Relaxed);
            self.batches
                .store(counters.records as usize, Ordering::Relaxed);
        }
        if let Some(why) = executor.halted() {
            let mut halted = self.halted.lock().expect("never poisoned");
            if halted.is_none() {
                tracing::error!(
                    %why,
                    "this replica stops reporting: it cannot persist what it executes (free \
                     disk space and restart it)"
                );
                *halted = Some(why.to_string());
            }
        }
    }
}

/// Applies one command without syncing the journal, and records its batch's figures.
fn apply<A: Application>(
    executor: &mut ReplicaExecutor<A>,
    command: ExecCommand,
    observe: &ExecHistograms,
    shared: &Mutex<ExecStats>,
) -> Vec<ExecEvent> {
    let execute = matches!(command, ExecCommand::Execute { .. });
    let before = executor.executor().stats();
    let events = executor.apply_unsynced(command);
    if execute {
        let after = executor.executor().stats();
        let requests = after.requests_executed - before.requests_executed;
        let parallel = after.parallel_batches - before.parallel_batches;
        observe.batch_requests.observe(requests as f64);
        if parallel > 0 {
            observe
                .parallel_batch_width
                .observe(requests as f64 / parallel as f64);
        }
        *shared.lock().expect("never poisoned") = after;
    }
    events
}

impl ExecHandle {
    /// Starts the execution thread for `executor`.
    pub fn spawn<A: Application>(name: String, mut executor: ReplicaExecutor<A>) -> Self {
        let (commands, mut inbox) = mpsc::channel::<ExecCommand>(EXEC_QUEUE_COMMANDS_MAX);
        let (outbox, events) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(ExecStats::default()));
        let shared = stats.clone();
        let histograms = ExecHistograms::default();
        let observe = histograms.clone();
        let size = Arc::new(StateSize::default());
        let record = size.clone();
        let journal = Arc::new(JournalStats::default());
        let journal_stats = journal.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut burst: Vec<ExecEvent> = Vec::new();
                // Without a journal there is nothing to group: each command's results go out
                // at once.
                let group = if executor.journal().is_some() {
                    GROUP_COMMIT_COMMANDS_MAX
                } else {
                    1
                };
                while let Some(first) = inbox.blocking_recv() {
                    let mut next = Some(first);
                    let mut applied = 0;
                    while let Some(command) = next.take() {
                        burst.extend(apply(&mut executor, command, &observe, &shared));
                        applied += 1;
                        if applied < group {
                            next = inbox.try_recv().ok();
                        }
                    }
                    let synced = executor.sync();
                    journal_stats.record(&executor);
                    record.record(executor.executor().state());
                    if !synced {
                        burst.clear();
                        continue;
                    }
                    for event in burst.drain(..) {
                        if outbox.send(event).is_err() {
                            return;
                        }
                    }
                }
            })
            .expect("the execution thread starts");
        Self {
            commands,
            events,
            stats,
            histograms,
            size,
            journal,
            thread,
        }
    }

    /// Stops the thread after the commands already queued, and waits for it.
    pub fn join(self) {
        let Self {
            commands, thread, ..
        } = self;
        // The thread ends when its queue is closed and drained.
        drop(commands);
        let _ = thread.join();
    }
}
