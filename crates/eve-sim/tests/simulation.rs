//! Whole-cluster simulations: fault-free runs of each configuration, determinism, regression
//! seeds, and seed sets that must pass and must exercise every recovery path.

use eve_sim::{RunReport, Scenario, Summary, run_scenario, run_seed};
use eve_types::ReplicationMode;

fn assert_passes(report: &RunReport) {
    assert!(
        report.passed(),
        "seed {} ({}) failed: {:#?}\nfinal state: {:#?}\nreplay: {}",
        report.seed,
        report.description,
        report.violations,
        report.final_state,
        report.replay_command()
    );
}

#[test]
fn fault_free_runs_complete_every_request_in_each_configuration() {
    for mode in eve_sim::scenario::MODES {
        let scenario = Scenario::quiet(7, mode);
        let expected = (scenario.clients * scenario.ops_per_client) as u64;
        let report = run_scenario(scenario);
        assert_passes(&report);
        assert_eq!(
            report.counts.requests_completed, expected,
            "{mode:?}: every request completes"
        );
        assert!(report.counts.batches_committed > 0);
        assert_eq!(
            report.counts.divergences, 0,
            "{mode:?}: a correct mixer never diverges"
        );
        assert_eq!(
            report.counts.view_changes, 0,
            "{mode:?}: no fault, no view change"
        );
        assert_eq!(
            report.counts.state_transfers, 0,
            "{mode:?}: nobody falls behind"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_trace_twice() {
    for seed in [1, 2, 3, 4, 42, 1956] {
        let first = run_seed(seed);
        let second = run_seed(seed);
        assert_eq!(
            first.trace_hash, second.trace_hash,
            "seed {seed} replays exactly"
        );
        assert_eq!(first, second, "seed {seed}: the whole report replays");
    }
    assert_ne!(
        run_seed(1).trace_hash,
        run_seed(2).trace_hash,
        "seeds differ"
    );
}

/// Seeds that once broke an invariant, each a bug fixed since: they must keep passing.
const REGRESSION_SEEDS: [u64; 34] = [
    6,     // a verifier's timer was due while a view change waited: time stood still
    65,    // a catching-up primary's batch timer stayed due
    910,   // view changes never converged (future views dropped, no backoff)
    1956,  // a replica rolled back a batch it had agreed on while adopting a view
    3148,  // a restarted primary kept ordering from batch 1
    3466,  // a lost `Verified` left replicas waiting forever (no token retransmission)
    3892,  // a view started at a batch no replica held any more
    4216,  // locks behind a gap were lost in the view change
    4394,  // replicas abandoned the in-flight execution of the batch a view started at
    42033, // state transfer retried the same peer forever
    42753, // a primary that adopted a view without its start re-ordered committed batches
    55661, // the same, with a Byzantine primary
    2069,  // a restarted replica never learned the current view
    3177,  // a view start no replica held (locks from superseded views)
    // Found by the harsher simulator (overlapping faults, amnesiac restarts, late messages):
    1294,  // restarted verifiers outnumbered the live ones: recovery counted against u
    585,   // the same, u = 1, r = 1
    609,   // verifiers stuck asking for views others had entered and whose leader forgot
    3472,  // a replica isolated from the start never armed its timers (simulator)
    132,   // a replica that missed the last batches never learned it was behind while idle
    3060,  // a transfer whose target no peer held any more never asked for a newer one
    2504,  // a restarted replica asked for a delta from a version 0 it did not hold
    12232, // every replica lost its memory, one after another, within the fault budget
    2861,  // a verifier left behind reported a superseded lock of an older view
    7576,  // both holders of a locked batch lost their memory, one after the other
    83761, // a view learned before its announcement: the new primary's batch was dropped
    47549, // fixed by the same change
    61109, // fixed by the same change
    93193, // fixed by the same change
    73268, // fixed by the same change (u = 1, r = 0)
    82597, // recovered verifiers did not know where their view started: none announced it
    11560, // one verifier entering a view rolled replicas back; a later view never heard of it
    // Found after verifiers stopped joining stale requests of peers left behind:
    34748, // joining a request moved a leader past the view it had a quorum for (a panic)
    68440, // the same
    89864, // the same
];

#[test]
fn regression_seeds_pass() {
    for seed in REGRESSION_SEEDS {
        assert_passes(&run_seed(seed));
    }
}

/// Seeds on disks that once failed, with their configuration: a resumed replica moved back to
/// a lagging verifier's older view and discarded committed batches (76); a replay stopped at a
/// batch logged on a rolled-back version (167); every verifier's first memory record torn, all
/// of them then waiting on each other to recover (49); a verifier that had recovered from its
/// peers after losing its disk crashed before its first memory was synced, and came back as one
/// that lost its disk while another did (12117, 19557 with r = 1). Seed 498 stalls if a
/// verifier that had asked for a view change before a power failure does not ask again when
/// it resumes (the one seed of `--seeds 1000 --mode 1,0` that reaches that path).
const DURABLE_REGRESSION_SEEDS: [(u64, u32); 6] =
    [(49, 0), (76, 0), (167, 0), (498, 0), (12117, 1), (19557, 1)];

#[test]
fn durable_regression_seeds_pass_and_lose_power() {
    for (seed, r) in DURABLE_REGRESSION_SEEDS {
        let scenario = Scenario::from_seed_with_mode(seed, ReplicationMode::Eve { u: 1, r });
        assert!(scenario.faults.durable && scenario.faults.power_failures > 0);
        let report = run_scenario(scenario);
        assert_passes(&report);
        assert!(report.counts.power_failures > 0);
    }
}

/// Runs `count` seeds from `start` and checks each.
fn seed_set(start: u64, count: u64) -> Summary {
    let mut summary = Summary::default();
    for seed in start..start + count {
        let report = run_seed(seed);
        assert_passes(&report);
        summary.add(&report);
    }
    summary
}

// Four sets of 500 seeds (2,000 in all, every configuration in each), so the test harness runs
// them on all cores. `cargo xtask sim --seeds N` runs larger sets.

#[test]
fn seed_set_a_passes() {
    seed_set(0, 500);
}

#[test]
fn seed_set_b_passes() {
    seed_set(500, 500);
}

#[test]
fn seed_set_c_passes() {
    seed_set(1000, 500);
}

#[test]
fn seed_set_d_passes_and_exercises_every_recovery_path() {
    let summary = seed_set(1500, 500);
    assert_eq!(
        summary.unexercised(),
        Vec::<&str>::new(),
        "a seed set must exercise every recovery path: {summary:?}"
    );
    assert!(summary.counts.linearizable_calls > 10_000, "{summary:?}");
    assert!(
        summary.counts.state_transfer_failures > 0,
        "tampered or missing state was refused"
    );
}

#[test]
fn every_configuration_is_covered_by_seed_sets() {
    let modes: std::collections::BTreeSet<String> = (0..8)
        .map(|seed| format!("{:?}", Scenario::from_seed(seed).cluster.mode))
        .collect();
    assert_eq!(modes.len(), eve_sim::scenario::MODES.len());
    assert!(eve_sim::scenario::MODES.contains(&ReplicationMode::PrimaryBackup));
}

#[test]
fn larger_configurations_survive_faults_too() {
    for mode in [
        ReplicationMode::Eve { u: 2, r: 1 },
        ReplicationMode::Eve { u: 2, r: 2 },
        ReplicationMode::Eve { u: 3, r: 0 },
    ] {
        let quiet = run_scenario(Scenario::quiet(3, mode));
        assert_passes(&quiet);
        assert!(quiet.counts.requests_completed > 0);
        let mut summary = Summary::default();
        for seed in 0..100 {
            let report = run_scenario(Scenario::from_seed_with_mode(seed, mode));
            assert_passes(&report);
            summary.add(&report);
        }
        assert!(
            summary.counts.view_changes > 0 && summary.counts.state_transfers > 0,
            "{mode:?}: {summary:?}"
        );
    }
}

#[test]
fn a_replica_restarted_on_a_large_state_catches_up_in_many_chunks() {
    // Finding 3: a full transfer had to finish within one `verify_timeout_ms` (100 ms here),
    // or the next round started it over. 100,000 objects in 64 KiB chunks over links of up to
    // 20 ms take far longer; the restarted replica must still catch up (convergence is checked).
    // This guards convergence on a large state; it passes even without the fix's two
    // mechanisms (a round whose other peer answers "not held" hands the transfer back to the
    // first peer, whose import goes on). `eve-agreement/tests/large_transfer.rs` guards each.
    let mut scenario = Scenario::quiet(11, ReplicationMode::Eve { u: 1, r: 0 });
    scenario.cluster.merkle_bucket_bits = 12;
    scenario.faults.state_objects = 100_000;
    scenario.faults.crash_restart = true;
    scenario.faults.heal_ms = 10_000;
    scenario.faults.network.delay_us_max = 20_000;
    let report = run_scenario(scenario);
    assert_passes(&report);
    assert_eq!(report.counts.restarts, 1);
    assert!(
        report.counts.transfers_past_timeout >= 1,
        "the restarted replica's transfer outlasted the timeout: {:?}",
        report.counts
    );
}

/// A batch that no token quorum accepts costs a view change, a rollback and a sequential
/// re-execution, never a client's timeout: with a tenth of the parallel batches forced to
/// diverge (and nothing else going wrong), no call waits as long as one verifier timeout.
/// Two gaps it found: a request relayed to the new primary before it had heard of its view
/// was dropped (the client retransmitted after `client_retransmit_ms`), and the new primary's
/// first batches, arriving before the view's announcement, were dropped (the replica waited
/// for its catch-up timer and a state transfer).
#[test]
fn forced_divergence_costs_no_call_a_timeout() {
    let modes = [
        ReplicationMode::Eve { u: 1, r: 0 },
        ReplicationMode::Eve { u: 1, r: 1 },
        ReplicationMode::Eve { u: 2, r: 0 },
    ];
    for mode in modes {
        for seed in 0..10 {
            let mut scenario = Scenario::quiet(seed, mode);
            scenario.faults.forced_divergence_ppm = 100_000;
            scenario.clients = 8;
            scenario.ops_per_client = 60;
            let timeout = scenario.cluster.verify_timeout_ms;
            let report = run_scenario(scenario);
            assert_passes(&report);
            assert!(
                report.counts.view_changes > 10,
                "{mode:?} seed {seed}: divergences"
            );
            let (slowest, client, at) = report.slowest_call.expect("calls completed");
            assert!(
                slowest < timeout,
                "{mode:?} seed {seed}: client {client}'s call at {at} ms took {slowest} ms"
            );
        }
    }
}
