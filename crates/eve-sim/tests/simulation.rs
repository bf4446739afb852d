//! Whole-cluster simulations: fault-free runs of each configuration, determinism, and seed
//! sets that must exercise every recovery path.

use eve_sim::{Scenario, run_scenario};
use eve_types::ReplicationMode;

fn assert_passes(scenario: Scenario) -> eve_sim::RunReport {
    let description = scenario.describe();
    let report = run_scenario(scenario);
    assert!(
        report.passed(),
        "{description}: {:#?}\nreplay: {}",
        report.violations,
        report.replay_command()
    );
    report
}

#[test]
fn fault_free_runs_complete_every_request_in_each_configuration() {
    for mode in [
        ReplicationMode::Eve { u: 1, r: 0 },
        ReplicationMode::Eve { u: 1, r: 1 },
        ReplicationMode::Eve { u: 2, r: 0 },
    ] {
        let scenario = Scenario::quiet(7, mode);
        let expected = (scenario.clients * scenario.ops_per_client) as u64;
        let report = assert_passes(scenario);
        assert_eq!(
            report.requests_completed, expected,
            "{mode:?}: every request completes"
        );
        assert!(report.batches_committed > 0);
        assert_eq!(
            report.divergences, 0,
            "{mode:?}: a correct mixer never diverges"
        );
        assert_eq!(report.view_changes, 0, "{mode:?}: no fault, no view change");
    }
}
