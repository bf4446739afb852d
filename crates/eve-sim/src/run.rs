//! Running seeds: one, or a whole set, with the summary a seed set must show.

use crate::cluster::Cluster;
use crate::report::RunReport;
use crate::scenario::Scenario;

/// Runs the scenario of `seed`.
pub fn run_seed(seed: u64) -> RunReport {
    Cluster::new(Scenario::from_seed(seed)).run()
}

/// Runs the scenario of `seed`, keeping a line per event in the report's `log`.
pub fn run_seed_with_log(seed: u64) -> RunReport {
    Cluster::new(Scenario::from_seed(seed)).with_log().run()
}

/// Runs a scenario.
pub fn run_scenario(scenario: Scenario) -> RunReport {
    Cluster::new(scenario).run()
}

/// Totals over a set of runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Runs.
    pub runs: u64,
    /// Runs that broke an invariant, with their seeds.
    pub failed: Vec<u64>,
    /// Batches committed.
    pub batches_committed: u64,
    /// Requests completed.
    pub requests_completed: u64,
    /// Key-value calls checked for linearizability.
    pub linearizable_calls: u64,
    /// Divergences detected.
    pub divergences: u64,
    /// State transfers completed.
    pub state_transfers: u64,
    /// State transfers refused and retried.
    pub state_transfer_failures: u64,
    /// Rollbacks.
    pub rollbacks: u64,
    /// Sequential re-executions.
    pub sequential_executions: u64,
    /// View changes.
    pub view_changes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Crashes.
    pub crashes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Messages dropped by the logic.
    pub messages_dropped: u64,
}

impl Summary {
    /// Adds a run.
    pub fn add(&mut self, report: &RunReport) {
        self.runs += 1;
        if !report.passed() {
            self.failed.push(report.seed);
        }
        self.batches_committed += report.batches_committed;
        self.requests_completed += report.requests_completed;
        self.linearizable_calls += report.linearizable_calls;
        self.divergences += report.divergences;
        self.state_transfers += report.state_transfers;
        self.state_transfer_failures += report.state_transfer_failures;
        self.rollbacks += report.rollbacks;
        self.sequential_executions += report.sequential_executions;
        self.view_changes += report.view_changes;
        self.restarts += report.restarts;
        self.crashes += report.crashes;
        self.partitions += report.partitions;
        self.messages_dropped += report.messages_dropped;
    }

    /// The exercised counts that must all be non-zero for a seed set to test the protocol,
    /// by name.
    pub fn exercised(&self) -> [(&'static str, u64); 7] {
        [
            ("batches committed", self.batches_committed),
            ("divergences detected", self.divergences),
            ("state transfers", self.state_transfers),
            ("rollbacks", self.rollbacks),
            ("sequential re-executions", self.sequential_executions),
            ("view changes", self.view_changes),
            ("restarts", self.restarts),
        ]
    }

    /// The names of exercised counts that stayed zero.
    pub fn unexercised(&self) -> Vec<&'static str> {
        self.exercised()
            .into_iter()
            .filter(|(_, n)| *n == 0)
            .map(|(name, _)| name)
            .collect()
    }
}
