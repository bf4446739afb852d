use eve_sim::*;
#[test]
fn scratch() {
    let mut n = 0;
    for seed in 0..4000u64 {
        let s = Scenario::from_seed(seed);
        if s.faults.state_objects == 0 || s.faults.replica_slots == 0 {
            continue;
        }
        let r = run_scenario(s);
        println!(
            "{seed} {} | transfers {} past {} | {:?}",
            r.description,
            r.counts.state_transfers,
            r.counts.transfers_past_timeout,
            r.drops_by_reason
                .iter()
                .filter(|(k, _)| k.contains("chunk")
                    || k.contains("stale-state")
                    || k.contains("state-reply"))
                .collect::<Vec<_>>()
        );
        n += 1;
        if n > 12 {
            break;
        }
    }
}
