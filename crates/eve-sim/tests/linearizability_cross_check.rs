//! The memoized search agrees with a brute-force enumeration of orders on every small history.

mod register;

use eve_sim::linearizability::{Call, Model, SearchBudget, Violation, check};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use register::{RegCall, RegOp, RegRet, Register};

/// The definition, executed literally: some subset of the pending calls, together with every
/// completed call, has an order that respects real-time precedence and in which each call's
/// recorded return (or any return, for pending calls) is produced by the model.
fn brute_force<M: Model>(initial: M, calls: &[Call<M::Op, M::Ret>]) -> bool {
    let pending: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].complete.is_none())
        .collect();
    (0u32..1 << pending.len()).any(|mask| {
        let chosen: Vec<usize> = (0..calls.len())
            .filter(|&i| match pending.iter().position(|&p| p == i) {
                None => true,
                Some(bit) => mask & (1 << bit) != 0,
            })
            .collect();
        some_order_works(
            initial.clone(),
            calls,
            &chosen,
            &mut vec![false; chosen.len()],
        )
    })
}

/// Tries every permutation of `chosen`, extended one call at a time; a call may come next only
/// if no chosen call still to come precedes it in real time.
fn some_order_works<M: Model>(
    state: M,
    calls: &[Call<M::Op, M::Ret>],
    chosen: &[usize],
    used: &mut [bool],
) -> bool {
    if used.iter().all(|&u| u) {
        return true;
    }
    for k in 0..chosen.len() {
        if used[k] {
            continue;
        }
        let call = &calls[chosen[k]];
        let blocked =
            (0..chosen.len()).any(|j| !used[j] && j != k && calls[chosen[j]].precedes(call));
        if blocked {
            continue;
        }
        used[k] = true;
        let works = state
            .step(&call.op, call.ret.as_ref())
            .into_iter()
            .any(|next| some_order_works(next, calls, chosen, used));
        used[k] = false;
        if works {
            return true;
        }
    }
    false
}

/// A counter modulo 4 whose increments return the new value. Unlike a register write, applying
/// an increment twice differs from applying it once, so this model catches a search that lets a
/// pending call take effect more than once (for instance through a memo key that forgets which
/// pending calls were placed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Counter(u8);

/// A counter operation: add (returning the new value), or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CountOp {
    Add(u8),
    Read,
}

impl Model for Counter {
    type Op = CountOp;
    type Ret = u8;

    fn step(&self, op: &CountOp, ret: Option<&u8>) -> Vec<Self> {
        let next = match op {
            CountOp::Add(d) => Counter((self.0 + d) % 4),
            CountOp::Read => *self,
        };
        if ret.is_none_or(|&r| r == next.0) {
            vec![next]
        } else {
            vec![]
        }
    }

    fn is_read_only(op: &CountOp, _: Option<&u8>) -> bool {
        *op == CountOp::Read
    }
}

/// Up to 7 calls on the counter, built like [`small_history`]'s.
fn small_counter_history() -> impl Strategy<Value = Vec<Call<CountOp, u8>>> {
    let call = (0u64..16, 0u64..10, any::<bool>(), 0u8..3, 1u8..3, 0u8..4).prop_map(
        |(invoke, length, add, fate, delta, ret)| {
            let completed = fate != 0;
            Call {
                client: u64::from(fate),
                invoke,
                complete: completed.then_some(invoke + length),
                op: if add {
                    CountOp::Add(delta)
                } else {
                    CountOp::Read
                },
                ret: completed.then_some(ret),
            }
        },
    );
    proptest::collection::vec(call, 0..=7)
}

/// Up to 7 calls on a register with values 0..3, on overlapping random intervals, a quarter of
/// them pending, reads returning random values: roughly half the histories are violations.
fn small_history() -> impl Strategy<Value = Vec<RegCall>> {
    let call = (0u64..16, 0u64..10, any::<bool>(), 0u8..3, 0u8..3, 0u8..3).prop_map(
        |(invoke, length, write, fate, written, read)| {
            let (op, ret) = if write {
                (RegOp::Write(written), RegRet::Written)
            } else {
                (RegOp::Read, RegRet::Value(read))
            };
            let completed = fate != 0;
            Call {
                client: u64::from(fate),
                invoke,
                complete: completed.then_some(invoke + length),
                op,
                ret: completed.then_some(ret),
            }
        },
    );
    proptest::collection::vec(call, 0..=7)
}

fn search_accepts<M: Model>(initial: M, calls: &[Call<M::Op, M::Ret>]) -> bool {
    match check(initial, calls, SearchBudget::default()) {
        Ok(_) => true,
        Err(Violation::NotLinearizable { .. }) => false,
        Err(other) => panic!("a tiny history cannot exhaust the budget or be malformed: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn search_agrees_with_brute_force(calls in small_history()) {
        prop_assert_eq!(
            search_accepts(Register(0), &calls),
            brute_force(Register(0), &calls),
            "the memoized search and the enumeration of every order disagree"
        );
    }

    #[test]
    fn search_agrees_with_brute_force_on_a_counter(calls in small_counter_history()) {
        prop_assert_eq!(
            search_accepts(Counter(0), &calls),
            brute_force(Counter(0), &calls),
            "the memoized search and the enumeration of every order disagree"
        );
    }
}

#[test]
fn the_generators_yield_both_verdicts_often() {
    let mut runner = TestRunner::deterministic();
    let registers = small_history();
    let counters = small_counter_history();
    let accepted = (0..1_000)
        .filter(|_| {
            brute_force(
                Register(0),
                &registers.new_tree(&mut runner).unwrap().current(),
            )
        })
        .count();
    assert!(
        (200..=800).contains(&accepted),
        "a cross-check that sees almost only one verdict tests little: {accepted} of 1000 register histories accepted"
    );
    let accepted = (0..1_000)
        .filter(|_| {
            brute_force(
                Counter(0),
                &counters.new_tree(&mut runner).unwrap().current(),
            )
        })
        .count();
    assert!(
        (200..=800).contains(&accepted),
        "a cross-check that sees almost only one verdict tests little: {accepted} of 1000 counter histories accepted"
    );
}
