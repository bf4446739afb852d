//! Linearizability checking of a recorded history against a sequential specification.
//!
//! A history is a set of [`Call`]s, each with the time its client invoked it and, if it
//! returned, the time it returned and what it returned. Call `a` precedes call `b` in real
//! time iff `a` completed before `b` was invoked. The history is linearizable iff some total
//! order of all completed calls, plus any subset of the pending (never completed) calls, both
//! respects real-time precedence and is a legal run of the [`Model`] in which every completed
//! call returns what was recorded. Pending calls may have taken effect, at any point after their
//! invocation, or never.
//!
//! [`check`] decides this with the Wing-Gong-Lowe search (Wing and Gong, 1993; Lowe,
//! "Testing for linearizability", 2017): depth first, it repeatedly picks a call that no
//! unlinearized completed call precedes and applies it to the model, backtracking on a recorded
//! return the model cannot produce, and it memoizes every (set of linearized calls, model
//! state) it has explored so that no such configuration is explored twice. Two reductions that
//! keep verdicts exact cut the search further: a [read-only](Model::is_read_only) call whose
//! return fits the current state is placed at once, without trying other orders, and a pending
//! call is never placed where it would leave the state unchanged. The search is bounded by a
//! [`SearchBudget`]; running out of it is reported as [`Violation::BudgetExceeded`], which
//! means "unknown", never "linearizable".

mod bitset;
mod search;

use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification. States are hashed into the search's memo table and printed
/// (`Debug`) in counterexamples.
pub trait Model: Clone + Eq + Hash + Debug {
    /// An operation a call performs.
    type Op;
    /// A value a call returns.
    type Ret;
    /// The states this model can be in after `op` takes effect, given its recorded return value
    /// (`Some`) or with the return value unknown because the call never completed (`None`).
    /// An empty result means the recorded return value is impossible from this state.
    fn step(&self, op: &Self::Op, ret: Option<&Self::Ret>) -> Vec<Self>;

    /// Whether `op` with return `ret` changes nothing in any state: from every state, `step`
    /// returns either nothing or exactly that state (a read, a failed compare-and-swap). The
    /// search places such a call as soon as real-time order and its return allow, without
    /// trying other orders — the key to checking read-heavy histories quickly. The default,
    /// `false`, is always correct; `true` for a call that can change some state makes the
    /// checker wrong, so the search asserts it every time it relies on it.
    fn is_read_only(op: &Self::Op, ret: Option<&Self::Ret>) -> bool {
        let _ = (op, ret);
        false
    }
}

/// One call in a history: `invoke` and `complete` are times (any monotone unit, e.g. simulated
/// µs); a call with `complete: None` never returned (it may have taken effect at any point after
/// its invocation, or never).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call<Op, Ret> {
    /// The client that made the call (informational: real-time order alone constrains the
    /// search).
    pub client: u64,
    /// When the client invoked the call.
    pub invoke: u64,
    /// When the call returned, or `None` if it never did.
    pub complete: Option<u64>,
    /// What the call asked for.
    pub op: Op,
    /// What the call returned: `Some` exactly when `complete` is.
    pub ret: Option<Ret>,
}

impl<Op, Ret> Call<Op, Ret> {
    /// Whether this call precedes `other` in real time: it returned before `other` was
    /// invoked. Calls that precede each other in neither direction are concurrent.
    pub fn precedes<O, R>(&self, other: &Call<O, R>) -> bool {
        self.complete
            .is_some_and(|complete| complete < other.invoke)
    }
}

/// The most work [`check`] may do before giving up with [`Violation::BudgetExceeded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchBudget {
    /// The most distinct (linearized calls, model state) configurations the search may explore.
    /// Each costs the memo table a few dozen bytes plus the model state, so the default bounds
    /// memory at around a gigabyte for small states.
    pub states_max: usize,
}

impl SearchBudget {
    /// The default [`SearchBudget::states_max`]: ten million configurations, a few seconds of
    /// search; a linearizable history of tens of thousands of calls per object with a handful
    /// of concurrent clients needs about one configuration per call.
    pub const STATES_MAX_DEFAULT: usize = 10_000_000;
}

impl Default for SearchBudget {
    fn default() -> Self {
        Self {
            states_max: Self::STATES_MAX_DEFAULT,
        }
    }
}

/// What a successful [`check`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStats {
    /// Calls in the history.
    pub calls: usize,
    /// Distinct (linearized calls, model state) configurations the search explored.
    pub states_explored: usize,
}

/// Why a history was not accepted. Only [`Violation::NotLinearizable`] is a verdict against
/// the history; [`Violation::BudgetExceeded`] means the question is still open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// No order of the calls explains the recorded returns.
    #[error(
        "a history of {calls} calls is not linearizable: the longest linearizable prefix found \
         places {} calls ({linearized:?}), after which, from model state {state}, none of the \
         completed calls {unplaced:?} can take effect next",
        linearized.len()
    )]
    NotLinearizable {
        /// Calls in the history.
        calls: usize,
        /// The longest linearizable prefix the search found: indices into the history, in
        /// linearization order.
        linearized: Vec<usize>,
        /// The model state after that prefix (its `Debug` form).
        state: String,
        /// The completed calls that real-time order allowed next after that prefix, none of
        /// which the model accepts there with its recorded return (or each leads only to dead
        /// ends): indices into the history.
        unplaced: Vec<usize>,
    },
    /// The search explored `states_max` configurations without reaching a verdict. The caller
    /// must treat the history as unchecked — neither linearizable nor a violation.
    #[error(
        "the linearizability search explored {states_explored} states, its budget, without a \
         verdict: the history is unchecked, not linearizable"
    )]
    BudgetExceeded {
        /// The configurations explored (the budget's `states_max`).
        states_explored: usize,
    },
    /// A call's record is inconsistent, so the history cannot be judged.
    #[error("call {index} is malformed: {reason}")]
    MalformedCall {
        /// Its index in the history.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Violation {
    /// The same violation with every call index passed through `index_of` (for a checker that
    /// projects a bigger history onto several objects and reports in the bigger one's indices).
    pub fn map_indices(self, index_of: impl Fn(usize) -> usize) -> Self {
        match self {
            Self::NotLinearizable {
                calls,
                linearized,
                state,
                unplaced,
            } => Self::NotLinearizable {
                calls,
                linearized: linearized.into_iter().map(&index_of).collect(),
                state,
                unplaced: unplaced.into_iter().map(&index_of).collect(),
            },
            Self::BudgetExceeded { states_explored } => Self::BudgetExceeded { states_explored },
            Self::MalformedCall { index, reason } => Self::MalformedCall {
                index: index_of(index),
                reason,
            },
        }
    }
}

/// Checks that `calls`, starting from `initial`, are linearizable with respect to `M`.
///
/// Deterministic: the same history and budget give the same result, including the same
/// statistics and the same counterexample.
///
/// # Errors
/// [`Violation::NotLinearizable`] with the longest linearizable prefix found;
/// [`Violation::BudgetExceeded`] if the search needs more than `budget.states_max`
/// configurations (the verdict is then unknown); [`Violation::MalformedCall`] if a call
/// completes before it is invoked, or has a return value exactly when it has no completion.
pub fn check<M: Model>(
    initial: M,
    calls: &[Call<M::Op, M::Ret>],
    budget: SearchBudget,
) -> Result<CheckStats, Violation> {
    validate(calls)?;
    search::Search::new(calls, budget).run(initial)
}

fn validate<Op, Ret>(calls: &[Call<Op, Ret>]) -> Result<(), Violation> {
    for (index, call) in calls.iter().enumerate() {
        let reason = match (call.complete, &call.ret) {
            (Some(complete), _) if complete < call.invoke => "it completes before it is invoked",
            (Some(_), None) => "it completed without a recorded return value",
            (None, Some(_)) => "it has a recorded return value but never completed",
            _ => continue,
        };
        return Err(Violation::MalformedCall { index, reason });
    }
    Ok(())
}
