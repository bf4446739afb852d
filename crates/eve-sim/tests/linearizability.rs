//! Exact verdicts of the generic checker on small register histories, and a long generated one.

mod register;

use eve_sim::linearizability::{CheckStats, Model, SearchBudget, Violation, check};
use register::{RegCall, RegOp, RegRet, Register, done, linearizable_history, pending};

const W1: RegOp = RegOp::Write(1);
const R: RegOp = RegOp::Read;
const OK: RegRet = RegRet::Written;

fn value(v: u8) -> RegRet {
    RegRet::Value(v)
}

fn verdict(calls: &[RegCall]) -> Result<CheckStats, Violation> {
    check(Register(0), calls, SearchBudget::default())
}

#[test]
fn a_stale_read_after_a_completed_write_is_a_violation() {
    let calls = [done(1, 0, 10, W1, OK), done(2, 20, 30, R, value(0))];
    assert_eq!(
        verdict(&calls),
        Err(Violation::NotLinearizable {
            calls: 2,
            linearized: vec![0],
            state: "Register(1)".into(),
            unplaced: vec![1],
        }),
        "the write returned before the read began, so the read must see 1"
    );
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [0, 1] {
        let calls = [done(1, 0, 10, W1, OK), done(2, 5, 15, R, value(seen))];
        assert!(
            verdict(&calls).is_ok(),
            "the read overlaps the write, so it may be ordered before or after: saw {seen}"
        );
    }
}

#[test]
fn calls_that_touch_at_one_instant_are_concurrent() {
    let calls = [done(1, 0, 10, W1, OK), done(2, 10, 20, R, value(0))];
    assert!(
        verdict(&calls).is_ok(),
        "precedence needs the write to complete strictly before the read is invoked"
    );
}

#[test]
fn a_pending_write_may_or_may_not_take_effect() {
    for seen in [0, 1] {
        let calls = [pending(1, 0, W1), done(2, 5, 10, R, value(seen))];
        assert!(
            verdict(&calls).is_ok(),
            "a write that never returned may have been applied or lost: saw {seen}"
        );
    }
}

#[test]
fn a_pending_write_once_seen_stays_applied() {
    let calls = [
        pending(1, 0, W1),
        done(2, 5, 10, R, value(1)),
        done(2, 20, 30, R, value(0)),
    ];
    assert!(
        matches!(verdict(&calls), Err(Violation::NotLinearizable { .. })),
        "a write takes effect at most once, so 0 cannot come back after 1 was read"
    );
}

#[test]
fn a_pending_write_cannot_explain_a_read_that_ended_before_it_began() {
    let calls = [done(2, 0, 10, R, value(1)), pending(1, 20, W1)];
    assert!(
        matches!(verdict(&calls), Err(Violation::NotLinearizable { .. })),
        "a call takes effect after its invocation, never before"
    );
}

#[test]
fn a_read_of_a_value_never_written_is_a_violation() {
    let calls = [done(1, 0, 10, W1, OK), done(2, 0, 10, R, value(7))];
    assert_eq!(
        verdict(&calls).map_err(|v| match v {
            Violation::NotLinearizable { unplaced, .. } => unplaced,
            other => panic!("expected NotLinearizable, got {other}"),
        }),
        Err(vec![1]),
        "no order makes the read return 7; it is the call left unplaced"
    );
}

#[test]
fn an_empty_history_is_linearizable_after_exploring_only_the_start() {
    assert_eq!(
        verdict(&[]),
        Ok(CheckStats {
            calls: 0,
            states_explored: 1
        }),
        "nothing to order"
    );
}

#[test]
fn a_search_that_runs_out_of_budget_says_so_instead_of_accepting() {
    let calls = [done(1, 0, 10, W1, OK), done(2, 20, 30, R, value(1))];
    assert_eq!(
        check(Register(0), &calls, SearchBudget { states_max: 2 }),
        Err(Violation::BudgetExceeded { states_explored: 2 }),
        "three configurations are needed (start, after the write, after the read)"
    );
    assert!(
        check(Register(0), &calls, SearchBudget { states_max: 3 }).is_ok(),
        "the same history fits a budget of three"
    );
}

#[test]
fn malformed_calls_are_refused_before_searching() {
    let backwards = done(1, 10, 5, W1, OK);
    assert_eq!(
        verdict(&[backwards]),
        Err(Violation::MalformedCall {
            index: 0,
            reason: "it completes before it is invoked"
        }),
        "a call cannot return before it was made"
    );
    let mut unfinished_with_a_return = pending(1, 0, R);
    unfinished_with_a_return.ret = Some(value(0));
    assert!(
        matches!(
            verdict(&[unfinished_with_a_return]),
            Err(Violation::MalformedCall { index: 0, .. })
        ),
        "a return value without a completion time is contradictory"
    );
}

#[test]
fn concurrent_reads_that_fit_are_placed_without_trying_their_orders() {
    let mut calls = vec![done(1, 0, 10, W1, OK)];
    calls.extend((0..40).map(|client| done(client + 2, 20, 30, R, value(1))));
    assert_eq!(
        verdict(&calls).map(|stats| stats.states_explored),
        Ok(42),
        "one configuration per call plus the start, not one per subset of the 40 reads"
    );
}

/// A register whose model wrongly claims that writes are read-only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LyingRegister(Register);

impl Model for LyingRegister {
    type Op = RegOp;
    type Ret = RegRet;

    fn step(&self, op: &RegOp, ret: Option<&RegRet>) -> Vec<Self> {
        self.0
            .step(op, ret)
            .into_iter()
            .map(LyingRegister)
            .collect()
    }

    fn is_read_only(_: &RegOp, _: Option<&RegRet>) -> bool {
        true
    }
}

#[test]
#[should_panic(expected = "is_read_only")]
fn a_model_that_calls_a_write_read_only_is_caught() {
    let _ = check(
        LyingRegister(Register(0)),
        &[done(1, 0, 10, W1, OK)],
        SearchBudget::default(),
    );
}

#[test]
fn a_long_linearizable_history_is_accepted_in_a_few_states_per_call() {
    let calls = linearizable_history(7, 8, 2_000);
    let stats = verdict(&calls).expect("the history was generated from a sequential run");
    assert_eq!(stats.calls, 16_000, "8 clients x 2,000 calls");
    assert!(
        stats.states_explored < 10 * stats.calls,
        "memoization keeps the search near-linear in a history with 8 concurrent clients: {stats:?}"
    );
}

#[test]
fn a_long_history_with_one_stale_read_is_rejected_within_the_budget() {
    let mut calls = linearizable_history(8, 8, 2_000);
    // Make a read late in the history return a value no write ever wrote.
    let target = (calls.len() * 3 / 4..calls.len())
        .find(|&i| calls[i].op == R && calls[i].ret.is_some())
        .expect("half the calls are reads");
    calls[target].ret = Some(value(9));
    match verdict(&calls) {
        Err(Violation::NotLinearizable { unplaced, .. }) => assert!(
            unplaced.contains(&target),
            "the corrupted read {target} is among the calls that could not be placed: {unplaced:?}"
        ),
        other => panic!("a read of a value never written must be a violation, got {other:?}"),
    }
}

#[test]
fn the_verdict_and_its_counterexample_are_deterministic() {
    let mut calls = linearizable_history(9, 4, 200);
    let read = calls
        .iter()
        .position(|c| c.op == R && c.ret.is_some())
        .unwrap();
    calls[read].ret = Some(value(9));
    assert_eq!(
        verdict(&calls),
        verdict(&calls),
        "the same history gives the same counterexample"
    );
}
