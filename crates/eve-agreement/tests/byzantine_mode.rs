//! The Byzantine-tolerant configurations (r >= 1) without faults: nothing should need a view
//! change.

mod harness;

use harness::{Net, config, put};

#[test]
fn with_r_1_and_no_fault_requests_commit_in_view_0() {
    let mut net = Net::new(config(1, 1), 3);
    for round in 0..5 {
        for c in 0..3 {
            net.submit(c, put(&format!("k{c}"), &format!("v{round}")));
        }
        assert!(
            net.run_until(50, |n| (0..3).all(|c| n.idle(c))),
            "round {round}: {}",
            net.describe()
        );
    }
    for (i, v) in net.verifiers.iter().enumerate() {
        assert_eq!(
            v.view().0,
            0,
            "verifier {i} changed view: {}",
            net.describe()
        );
    }
}
