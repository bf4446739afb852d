//! What one simulated run exercised, and whether it found a violation.

use crate::scenario::Scenario;
use eve_agreement::{ReplicaCounters, VerifierCounters};

/// What a run (or a set of runs) exercised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exercised {
    /// The highest batch committed by any replica (summed over runs in a [`Summary`](crate::Summary)).
    pub batches_committed: u64,
    /// Client requests completed.
    pub requests_completed: u64,
    /// Key-value calls checked for linearizability.
    pub linearizable_calls: u64,
    /// Tokens that differed from the agreed one.
    pub divergences: u64,
    /// State transfers completed.
    pub state_transfers: u64,
    /// State transfers refused (tampered or missing data) and retried with another peer.
    pub state_transfer_failures: u64,
    /// Rollbacks.
    pub rollbacks: u64,
    /// Batches executed sequentially.
    pub sequential_executions: u64,
    /// View changes entered by execution replicas (promotions in primary-backup).
    pub view_changes: u64,
    /// Batches for which no token could reach the quorum.
    pub no_quorum: u64,
    /// Replicas and verifiers crashed.
    pub crashes: u64,
    /// Replicas restarted with empty state.
    pub restarts: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Messages dropped by the protocol logic (malformed, stale, unexpected).
    pub messages_dropped: u64,
    /// Node faults that started while another was in progress.
    pub overlapping_faults: u64,
    /// Messages delivered later than the verification timeout after they were sent.
    pub late_deliveries: u64,
    /// Verifiers restarted with empty memory.
    pub verifier_restarts: u64,
    /// Recoveries completed by restarted verifiers (state gathered from a quorum of peers).
    pub verifier_recoveries: u64,
    /// Batches verifiers took as committed on their peers' word, having lost the votes.
    pub verifier_catch_ups: u64,
    /// State transfers that completed more than a verification timeout after they started.
    pub transfers_past_timeout: u64,
    /// Runs in which a Byzantine replica ordered batches as primary.
    pub byzantine_primaries: u64,
    /// Runs with a Byzantine replica.
    pub byzantine_runs: u64,
    /// Batch messages a Byzantine primary withheld while sending later batches (a gap).
    pub batches_withheld: u64,
    /// Tokens a Byzantine replica sent under sequence numbers nobody ordered.
    pub future_tokens: u64,
    /// Messages of a Byzantine replica colluding with the network, delivered first.
    pub colluding_deliveries: u64,
    /// Batches and relayed requests in which a Byzantine replica forged a request.
    pub forged_requests: u64,
    /// Tokens of a diverged correct replica a Byzantine replica sent as its own.
    pub echoed_tokens: u64,
    /// Runs in Eve mode (the others are primary-backup, which has no verifiers, loses no
    /// message and cuts no link by design).
    pub eve_runs: u64,
    /// Runs whose Byzantine replica echoes diverged tokens (drawn only with `u >= 2`).
    pub echo_runs: u64,
    /// Runs with a Byzantine verifier.
    pub byzantine_verifier_runs: u64,
    /// Messages a Byzantine verifier falsified or withheld.
    pub verifier_lies: u64,
    /// Runs whose Byzantine verifier forges certificates or lies as leader.
    pub forging_runs: u64,
    /// Votes, view changes, announcements, certificates and recovery answers verifiers
    /// refused because their proof did not hold.
    pub proofs_refused: u64,
    /// Runs that ended stalled, every replica saying why (the committed state was lost).
    pub stalls_reported: u64,
    /// Released replies judged against a sequential replay of the committed batches.
    pub reference_replies: u64,
    /// Keys the sequential replay stopped judging (too many possible values).
    pub reference_keys_unjudged: u64,
    /// Replicas whose committed object map was compared with another's.
    pub object_maps_compared: u64,
    /// Runs whose nodes kept their state on disks.
    pub durable_runs: u64,
    /// Times the power failed everywhere at once.
    pub power_failures: u64,
    /// Batches replicas replayed from their logs after a restart and proved.
    pub batches_replayed: u64,
    /// Checkpoints loaded by restarted replicas.
    pub checkpoints_loaded: u64,
    /// Torn last writes cut from a log when it was opened.
    pub torn_tails: u64,
    /// Corruptions found by their checksum: logs cut at a damaged record, checkpoints refused.
    pub corruptions_found: u64,
    /// Disks lost entirely (the node recovered from its peers).
    pub disks_lost: u64,
    /// Verifiers that resumed from the memory on their disk.
    pub verifier_resumes: u64,
    /// Syncs of replicas' logs and verifiers' memories.
    pub disk_syncs: u64,
    /// Nodes that stopped acknowledging because their disk was full.
    pub disk_full_halts: u64,
}

impl Exercised {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &Exercised) {
        self.batches_committed += other.batches_committed;
        self.requests_completed += other.requests_completed;
        self.linearizable_calls += other.linearizable_calls;
        self.divergences += other.divergences;
        self.state_transfers += other.state_transfers;
        self.state_transfer_failures += other.state_transfer_failures;
        self.rollbacks += other.rollbacks;
        self.sequential_executions += other.sequential_executions;
        self.view_changes += other.view_changes;
        self.no_quorum += other.no_quorum;
        self.crashes += other.crashes;
        self.restarts += other.restarts;
        self.partitions += other.partitions;
        self.messages_dropped += other.messages_dropped;
        self.overlapping_faults += other.overlapping_faults;
        self.late_deliveries += other.late_deliveries;
        self.verifier_restarts += other.verifier_restarts;
        self.verifier_recoveries += other.verifier_recoveries;
        self.verifier_catch_ups += other.verifier_catch_ups;
        self.transfers_past_timeout += other.transfers_past_timeout;
        self.byzantine_primaries += other.byzantine_primaries;
        self.byzantine_runs += other.byzantine_runs;
        self.batches_withheld += other.batches_withheld;
        self.future_tokens += other.future_tokens;
        self.colluding_deliveries += other.colluding_deliveries;
        self.forged_requests += other.forged_requests;
        self.echoed_tokens += other.echoed_tokens;
        self.eve_runs += other.eve_runs;
        self.echo_runs += other.echo_runs;
        self.byzantine_verifier_runs += other.byzantine_verifier_runs;
        self.verifier_lies += other.verifier_lies;
        self.forging_runs += other.forging_runs;
        self.proofs_refused += other.proofs_refused;
        self.stalls_reported += other.stalls_reported;
        self.reference_replies += other.reference_replies;
        self.reference_keys_unjudged += other.reference_keys_unjudged;
        self.object_maps_compared += other.object_maps_compared;
        self.durable_runs += other.durable_runs;
        self.power_failures += other.power_failures;
        self.batches_replayed += other.batches_replayed;
        self.checkpoints_loaded += other.checkpoints_loaded;
        self.torn_tails += other.torn_tails;
        self.corruptions_found += other.corruptions_found;
        self.disks_lost += other.disks_lost;
        self.verifier_resumes += other.verifier_resumes;
        self.disk_syncs += other.disk_syncs;
        self.disk_full_halts += other.disk_full_halts;
    }
}

/// The result of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// For each gap a Byzantine primary left, the simulated milliseconds from the batch it
    /// withheld to the first correct replica's commit at or past it.
    pub byzantine_stalls_ms: Vec<u64>,
    /// The seed that replays it.
    pub seed: u64,
    /// What the run was.
    pub description: String,
    /// The configuration, as `cargo xtask sim --mode` takes it (`U,R` or `pb`).
    pub mode: String,
    /// Invariants broken, in the order found; empty for a passing run.
    pub violations: Vec<String>,
    /// What the run exercised.
    pub counts: Exercised,
    /// Messages dropped by the protocol logic, by reason.
    pub drops_by_reason: std::collections::BTreeMap<&'static str, u64>,
    /// Messages delivered.
    pub messages_delivered: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated time at the end, in milliseconds.
    pub sim_time_ms: u64,
    /// Why the run ended stalled, when every replica reported it (a run whose committed
    /// state was lost on purpose); not a violation.
    pub stalled: Option<String>,
    /// The completed call that took longest, in simulated time: `(milliseconds, client,
    /// invoked at in milliseconds)`.
    pub slowest_call: Option<(u64, u64, u64)>,
    /// Each node's state at the end of a failed run, to diagnose it.
    pub final_state: Vec<String>,
    /// Every event processed, one line each, when the run kept a log.
    pub log: Vec<String>,
    /// A hash of every event processed, in order: the same seed gives the same hash.
    pub trace_hash: [u8; 32],
}

impl RunReport {
    /// An empty report for a scenario.
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            seed: scenario.seed,
            description: scenario.describe(),
            mode: match scenario.cluster.mode {
                eve_types::ReplicationMode::Eve { u, r } => format!("{u},{r}"),
                eve_types::ReplicationMode::PrimaryBackup => "pb".to_string(),
            },
            counts: Exercised {
                eve_runs: u64::from(matches!(
                    scenario.cluster.mode,
                    eve_types::ReplicationMode::Eve { .. }
                )),
                durable_runs: u64::from(scenario.faults.durable),
                ..Exercised::default()
            },
            ..Self::default()
        }
    }

    /// Records a violation.
    pub fn violation(&mut self, what: String) {
        if self.violations.len() < 20 {
            self.violations.push(what);
        }
    }

    /// Whether the run broke no invariant.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Adds an execution replica's counters.
    pub fn add_replica(&mut self, c: &ReplicaCounters) {
        self.counts.divergences += c.divergences;
        self.counts.state_transfers += c.state_transfers_completed;
        self.counts.state_transfer_failures += c.state_transfer_failures;
        self.counts.rollbacks += c.rollbacks;
        self.counts.sequential_executions += c.sequential_executions;
        self.counts.view_changes += c.view_changes;
        self.counts.transfers_past_timeout += c.transfers_past_timeout;
        self.add_drops(&c.drops);
    }

    /// Adds a primary-backup replica's counters (a promotion counts as a view change).
    pub fn add_pb(&mut self, c: &eve_agreement::PbCounters) {
        self.counts.divergences += c.divergences;
        self.counts.state_transfers += c.state_transfers_completed;
        self.counts.state_transfer_failures += c.state_transfer_failures;
        self.counts.rollbacks += c.rollbacks;
        self.counts.sequential_executions += c.sequential_executions;
        self.counts.view_changes += c.promotions + c.views_adopted;
        self.add_drops(&c.drops);
    }

    /// Adds a verifier's counters.
    pub fn add_verifier(&mut self, c: &VerifierCounters) {
        self.counts.no_quorum += c.no_quorum;
        self.counts.verifier_recoveries += c.recoveries;
        self.counts.verifier_catch_ups += c.batches_caught_up;
        self.counts.proofs_refused += c.proofs_refused;
        self.add_drops(&c.drops);
    }

    fn add_drops(&mut self, drops: &eve_agreement::Drops) {
        self.counts.messages_dropped += drops.total();
        for (reason, n) in drops.iter() {
            *self.drops_by_reason.entry(reason).or_default() += n;
        }
    }

    /// The trace hash in hex (first 16 characters).
    pub fn trace_hex(&self) -> String {
        self.trace_hash[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The command that replays this run exactly, configuration included.
    pub fn replay_command(&self) -> String {
        format!("cargo xtask sim --seed {} --mode {}", self.seed, self.mode)
    }
}
