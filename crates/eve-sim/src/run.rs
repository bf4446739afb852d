//! Running seeds: one, or a whole set, with the summary a seed set must show.

use crate::cluster::Cluster;
use crate::report::{Exercised, RunReport};
use crate::scenario::Scenario;

/// Runs the scenario of `seed`.
pub fn run_seed(seed: u64) -> RunReport {
    Cluster::new(Scenario::from_seed(seed)).run()
}

/// Runs the scenario of `seed`, keeping a line per event in the report's `log`.
pub fn run_seed_with_log(seed: u64) -> RunReport {
    Cluster::new(Scenario::from_seed(seed)).with_log().run()
}

/// Runs a scenario, keeping a line per event in the report's `log`.
pub fn run_scenario_with_log(scenario: Scenario) -> RunReport {
    Cluster::new(scenario).with_log().run()
}

/// Runs a scenario, keeping a line per event in the report's `log` with every message and
/// execution result in full.
pub fn run_scenario_with_contents_log(scenario: Scenario) -> RunReport {
    Cluster::new(scenario).with_contents_log().run()
}

/// Runs a scenario; a panic inside the run becomes that run's violation, named with its
/// seed, instead of ending the whole seed set.
pub fn run_scenario_caught(scenario: Scenario) -> RunReport {
    let blank = RunReport::new(&scenario);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_scenario(scenario))) {
        Ok(report) => report,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            let mut report = blank;
            report.violation(format!("panicked: {what}"));
            report
        }
    }
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
    /// What the runs exercised, summed.
    pub counts: Exercised,
    /// Every stall a Byzantine primary's gap caused, in simulated milliseconds.
    pub byzantine_stalls_ms: Vec<u64>,
}

/// The exercised counts that only runs with a Byzantine replica can raise.
/// Counted only in seed sets where the echoing replica is drawn.
const ECHOED: &str = "diverged replicas' tokens echoed by a Byzantine one";

/// Counted only in seed sets where a verifier that forges certificates or lies as leader is
/// drawn.
const REFUSED: &str = "forged claims and announcements refused for their proof";

/// Counts that primary-backup runs cannot raise (no verifiers; by design no lost or late
/// message, no fault slots, no restart of every replica): required only when some run was Eve.
const EVE_ONLY_COUNTS: [&str; 6] = [
    "overlapping faults",
    "late deliveries (past a timeout)",
    "verifier restarts",
    "verifier recoveries",
    "transfers that outlasted a timeout",
    "stalls reported after every replica lost its state",
];

/// Counts only runs on disks can raise: required only when some run was on disk.
const DURABLE_COUNTS: [&str; 8] = [
    "power failures everywhere at once",
    "batches replayed from logs",
    "checkpoints loaded",
    "torn log tails cut",
    "corruptions found by their checksum",
    "disks lost",
    "verifiers resumed from their memory",
    "nodes stopped by a full disk",
];

const BYZANTINE_COUNTS: [&str; 7] = [
    "Byzantine primaries",
    "batches withheld by a Byzantine primary (gaps)",
    "tokens for batches nobody ordered",
    "messages of a colluding Byzantine replica delivered first",
    "batches and relayed requests with a forged request",
    ECHOED,
    "messages a Byzantine verifier falsified or withheld",
];

impl Summary {
    /// Adds a run.
    pub fn add(&mut self, report: &RunReport) {
        self.runs += 1;
        if !report.passed() {
            self.failed.push(report.seed);
        }
        self.counts.add(&report.counts);
        self.byzantine_stalls_ms
            .extend_from_slice(&report.byzantine_stalls_ms);
    }

    /// The `p`-th percentile (0 ..= 100) of the stalls Byzantine primaries caused, and the
    /// longest, in simulated milliseconds; `None` without any.
    pub fn byzantine_stall_ms(&self, p: f64) -> Option<(u64, u64)> {
        let mut stalls = self.byzantine_stalls_ms.clone();
        stalls.sort_unstable();
        let last = *stalls.last()?;
        let at = ((p / 100.0) * (stalls.len() - 1) as f64).round() as usize;
        Some((stalls[at], last))
    }

    /// The exercised counts that must all be non-zero for a seed set to test the protocol,
    /// by name.
    pub fn exercised(&self) -> [(&'static str, u64); 31] {
        [
            ("batches committed", self.counts.batches_committed),
            ("divergences detected", self.counts.divergences),
            ("state transfers", self.counts.state_transfers),
            ("rollbacks", self.counts.rollbacks),
            (
                "sequential re-executions",
                self.counts.sequential_executions,
            ),
            ("view changes", self.counts.view_changes),
            ("restarts", self.counts.restarts),
            ("overlapping faults", self.counts.overlapping_faults),
            (
                "late deliveries (past a timeout)",
                self.counts.late_deliveries,
            ),
            ("verifier restarts", self.counts.verifier_restarts),
            ("verifier recoveries", self.counts.verifier_recoveries),
            (
                "transfers that outlasted a timeout",
                self.counts.transfers_past_timeout,
            ),
            ("Byzantine primaries", self.counts.byzantine_primaries),
            (
                "batches withheld by a Byzantine primary (gaps)",
                self.counts.batches_withheld,
            ),
            (
                "tokens for batches nobody ordered",
                self.counts.future_tokens,
            ),
            (
                "messages of a colluding Byzantine replica delivered first",
                self.counts.colluding_deliveries,
            ),
            (
                "batches and relayed requests with a forged request",
                self.counts.forged_requests,
            ),
            (ECHOED, self.counts.echoed_tokens),
            (
                "messages a Byzantine verifier falsified or withheld",
                self.counts.verifier_lies,
            ),
            (REFUSED, self.counts.proofs_refused),
            (
                "stalls reported after every replica lost its state",
                self.counts.stalls_reported,
            ),
            (
                "replies judged by a sequential replay",
                self.counts.reference_replies,
            ),
            (
                "committed object maps compared",
                self.counts.object_maps_compared,
            ),
            (DURABLE_COUNTS[0], self.counts.power_failures),
            (DURABLE_COUNTS[1], self.counts.batches_replayed),
            (DURABLE_COUNTS[2], self.counts.checkpoints_loaded),
            (DURABLE_COUNTS[3], self.counts.torn_tails),
            (DURABLE_COUNTS[4], self.counts.corruptions_found),
            (DURABLE_COUNTS[5], self.counts.disks_lost),
            (DURABLE_COUNTS[6], self.counts.verifier_resumes),
            (DURABLE_COUNTS[7], self.counts.disk_full_halts),
        ]
    }

    /// The names of exercised counts that stayed zero. The Byzantine ones count only when
    /// some run had a Byzantine replica or verifier (never with `r = 0`), the echoed tokens
    /// only when some run drew the replica that echoes them, the refused proofs only when some
    /// run drew a verifier that forges them, the counts primary-backup
    /// cannot raise only when some run was Eve, and those of disks only when some run kept
    /// its state on disks.
    pub fn unexercised(&self) -> Vec<&'static str> {
        let durable = self.counts.durable_runs > 0;
        let byzantine = self.counts.byzantine_runs > 0;
        let echo = self.counts.echo_runs > 0;
        let forging = self.counts.forging_runs > 0;
        let eve = self.counts.eve_runs > 0;
        self.exercised()
            .into_iter()
            .filter(|(name, n)| *n == 0 && (byzantine || !BYZANTINE_COUNTS.contains(name)))
            .filter(|(name, _)| echo || *name != ECHOED)
            .filter(|(name, _)| forging || *name != REFUSED)
            .filter(|(name, _)| eve || !EVE_ONLY_COUNTS.contains(name))
            .filter(|(name, _)| durable || !DURABLE_COUNTS.contains(name))
            .map(|(name, _)| name)
            .collect()
    }
}
