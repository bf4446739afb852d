//! The memoized Wing-Gong-Lowe search behind [`check`](super::check).
//!
//! Calls are renumbered into two ordered lists: completed calls by invocation time, then
//! pending calls by invocation time. A configuration of the search is the set of calls
//! linearized so far (two bitsets) and the model state they lead to. From a configuration, a
//! call may be linearized next iff it is not linearized yet and no unlinearized completed call
//! precedes it, i.e. iff it was invoked no later than the earliest completion among the
//! unlinearized completed calls. The search succeeds once every completed call is linearized:
//! pending calls never have to be.
//!
//! The depth-first search keeps an explicit stack (histories are deeper than a thread's stack
//! allows) and, per frame, cursors that only move forward along a path: the first
//! unlinearized completed call by invocation and by completion, and the end of the linearized
//! completed calls. Memo keys store the linearized set compactly — the length of its
//! all-linearized prefix plus the words from there to its last member, then the pending
//! bitset — so a long history costs memory per configuration in proportion to its concurrency
//! (and its pending calls), not its length.
//!
//! The counterexample is the longest path the search reached. It is copied only where it
//! changed since the last copy (`low_water`), so keeping it costs time in proportion to the
//! search, not to the search times the history's length.

use super::bitset::Bitset;
use super::{Call, CheckStats, Model, SearchBudget, Violation};
use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

/// A call, named by its position in the search's renumbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The `n`th completed call by invocation time.
    Completed(usize),
    /// The `n`th pending call by invocation time.
    Pending(usize),
}

/// A memo entry: a linearized set, canonically compacted, and the model state it led to.
#[derive(Hash, PartialEq, Eq)]
struct Visited<M> {
    /// Every completed call below this position is linearized; this one is not.
    completed_first: usize,
    /// The completed bitset's words from `completed_first` to its last member, then every
    /// word of the pending bitset.
    words: Box<[u64]>,
    state: M,
}

/// One configuration on the search path.
struct Frame<M> {
    state: M,
    /// The call linearized to reach this configuration (`None` at the root).
    via: Option<Slot>,
    /// The first unlinearized completed call.
    completed_first: usize,
    /// One past the last linearized completed call.
    completed_end: usize,
    /// Position in `by_complete` of the unlinearized completed call that completes first.
    by_complete_first: usize,
    /// Successor configurations not yet tried, the next one last.
    successors: Vec<(Slot, M)>,
}

/// One run of the search over one history.
pub(super) struct Search<'h, M: Model> {
    calls: &'h [Call<M::Op, M::Ret>],
    budget: SearchBudget,
    /// History indices of completed calls, by (invoke, index).
    completed: Vec<usize>,
    /// Completed slots, by (complete, index).
    by_complete: Vec<usize>,
    /// History indices of pending calls, by (invoke, index).
    pending: Vec<usize>,
    completed_set: Bitset,
    pending_set: Bitset,
    visited: HashSet<Visited<M>, BuildHasherDefault<DefaultHasher>>,
    /// The calls linearized on the current path, in order.
    path: Vec<Slot>,
    /// The longest path seen, and the state it reached.
    best_path: Vec<Slot>,
    best_state: Option<M>,
    /// `path[..low_water]` is unchanged since `best_path` was last recorded.
    low_water: usize,
}

impl<'h, M: Model> Search<'h, M> {
    pub(super) fn new(calls: &'h [Call<M::Op, M::Ret>], budget: SearchBudget) -> Self {
        let (mut completed, mut pending): (Vec<usize>, Vec<usize>) =
            (0..calls.len()).partition(|&i| calls[i].complete.is_some());
        completed.sort_by_key(|&i| (calls[i].invoke, i));
        pending.sort_by_key(|&i| (calls[i].invoke, i));
        let mut by_complete: Vec<usize> = (0..completed.len()).collect();
        by_complete.sort_by_key(|&slot| (calls[completed[slot]].complete, completed[slot]));
        Self {
            calls,
            budget,
            completed_set: Bitset::new(completed.len()),
            pending_set: Bitset::new(pending.len()),
            completed,
            by_complete,
            pending,
            visited: HashSet::default(),
            path: Vec::new(),
            best_path: Vec::new(),
            best_state: None,
            low_water: 0,
        }
    }

    pub(super) fn run(mut self, initial: M) -> Result<CheckStats, Violation> {
        let mut root = Frame {
            state: initial,
            via: None,
            completed_first: 0,
            completed_end: 0,
            by_complete_first: 0,
            successors: Vec::new(),
        };
        if self.completed.is_empty() {
            return Ok(self.stats(1));
        }
        self.visit(&root)?;
        self.best_state = Some(root.state.clone());
        root.successors = self.successors(&root);
        let mut stack = vec![root];
        while let Some(top) = stack.last_mut() {
            let Some((slot, state)) = top.successors.pop() else {
                let done = stack.pop().expect("the loop holds a frame");
                if let Some(slot) = done.via {
                    self.unlinearize(slot);
                }
                continue;
            };
            let mut next = self.advance(top, slot, state);
            if !self.visit(&next)? {
                self.unlinearize(slot);
                continue;
            }
            if self.path.len() > self.best_path.len() {
                self.record_best(&next.state);
            }
            if next.completed_first == self.completed.len() {
                return Ok(self.stats(self.visited.len()));
            }
            next.successors = self.successors(&next);
            stack.push(next);
        }
        Err(self.not_linearizable())
    }

    fn stats(&self, states_explored: usize) -> CheckStats {
        CheckStats {
            calls: self.calls.len(),
            states_explored,
        }
    }

    /// Linearizes `slot` after `parent`, giving the child configuration (without successors).
    fn advance(&mut self, parent: &Frame<M>, slot: Slot, state: M) -> Frame<M> {
        let mut child = Frame {
            state,
            via: Some(slot),
            completed_first: parent.completed_first,
            completed_end: parent.completed_end,
            by_complete_first: parent.by_complete_first,
            successors: Vec::new(),
        };
        match slot {
            Slot::Completed(c) => {
                self.completed_set.insert(c);
                child.completed_end = child.completed_end.max(c + 1);
                while self.completed_set.contains(child.completed_first) {
                    child.completed_first += 1;
                }
                while child.by_complete_first < self.by_complete.len()
                    && self
                        .completed_set
                        .contains(self.by_complete[child.by_complete_first])
                {
                    child.by_complete_first += 1;
                }
            }
            Slot::Pending(p) => self.pending_set.insert(p),
        }
        self.path.push(slot);
        child
    }

    /// Undoes the linearization of `slot`, the last call on the path.
    fn unlinearize(&mut self, slot: Slot) {
        match slot {
            Slot::Completed(c) => self.completed_set.remove(c),
            Slot::Pending(p) => self.pending_set.remove(p),
        }
        let popped = self.path.pop();
        assert_eq!(popped, Some(slot), "calls are undone in reverse order");
        self.low_water = self.low_water.min(self.path.len());
    }

    /// Records `frame` in the memo: `false` if it was already explored.
    fn visit(&mut self, frame: &Frame<M>) -> Result<bool, Violation> {
        let mut words = self
            .completed_set
            .words_covering(frame.completed_first..frame.completed_end)
            .to_vec();
        words.extend_from_slice(self.pending_set.words());
        let key = Visited {
            completed_first: frame.completed_first,
            words: words.into_boxed_slice(),
            state: frame.state.clone(),
        };
        if self.visited.contains(&key) {
            return Ok(false);
        }
        if self.visited.len() >= self.budget.states_max {
            return Err(Violation::BudgetExceeded {
                states_explored: self.visited.len(),
            });
        }
        self.visited.insert(key);
        Ok(true)
    }

    fn record_best(&mut self, state: &M) {
        self.best_path.truncate(self.low_water);
        self.best_path
            .extend_from_slice(&self.path[self.low_water..]);
        self.low_water = self.path.len();
        self.best_state = Some(state.clone());
    }

    /// The completion time before which every next call must have been invoked.
    fn horizon(&self, by_complete_first: usize) -> u64 {
        let slot = self.by_complete[by_complete_first];
        self.calls[self.completed[slot]]
            .complete
            .expect("completed calls have a completion time")
    }

    /// Every call that may be linearized next from `frame`, with each state it may lead to:
    /// completed calls before pending ones, each group by invocation time.
    ///
    /// If some completed call may go next, is [read-only](Model::is_read_only) and its return
    /// fits the current state, it is the only successor: any linearization from `frame` stays
    /// one when that call is moved to its front, because no unlinearized call precedes it and
    /// it changes no state, here or where it was. This keeps reads from multiplying the search.
    fn successors(&self, frame: &Frame<M>) -> Vec<(Slot, M)> {
        let horizon = self.horizon(frame.by_complete_first);
        let mut out = Vec::new();
        for c in frame.completed_first..self.completed.len() {
            let call = &self.calls[self.completed[c]];
            if call.invoke > horizon {
                break;
            }
            if !self.completed_set.contains(c) {
                let states = frame.state.step(&call.op, call.ret.as_ref());
                if M::is_read_only(&call.op, call.ret.as_ref()) {
                    assert!(
                        states.iter().all(|state| *state == frame.state),
                        "Model::is_read_only holds for {call_index}, yet its step changes the state",
                        call_index = self.completed[c],
                    );
                    if !states.is_empty() {
                        return vec![(Slot::Completed(c), frame.state.clone())];
                    }
                }
                out.extend(states.into_iter().map(|state| (Slot::Completed(c), state)));
            }
        }
        for (p, &index) in self.pending.iter().enumerate() {
            let call = &self.calls[index];
            if call.invoke > horizon {
                break;
            }
            if !self.pending_set.contains(p) {
                // A pending call that leaves the state as it was is never worth linearizing:
                // leaving it out reaches the same state with fewer calls to place.
                for state in frame.state.step(&call.op, None) {
                    if state != frame.state {
                        out.push((Slot::Pending(p), state));
                    }
                }
            }
        }
        out.reverse();
        out
    }

    fn index(&self, slot: Slot) -> usize {
        match slot {
            Slot::Completed(c) => self.completed[c],
            Slot::Pending(p) => self.pending[p],
        }
    }

    /// The counterexample: the longest path found and the completed calls that could come next.
    fn not_linearizable(mut self) -> Violation {
        for &slot in &self.best_path {
            match slot {
                Slot::Completed(c) => self.completed_set.insert(c),
                Slot::Pending(p) => self.pending_set.insert(p),
            }
        }
        let completed_first = (0..self.completed.len())
            .find(|&c| !self.completed_set.contains(c))
            .expect("a failed search leaves a completed call unlinearized");
        let by_complete_first = (0..self.by_complete.len())
            .find(|&j| !self.completed_set.contains(self.by_complete[j]))
            .expect("a failed search leaves a completed call unlinearized");
        let horizon = self.horizon(by_complete_first);
        let unplaced = (completed_first..self.completed.len())
            .take_while(|&c| self.calls[self.completed[c]].invoke <= horizon)
            .filter(|&c| !self.completed_set.contains(c))
            .map(|c| self.completed[c])
            .collect();
        Violation::NotLinearizable {
            calls: self.calls.len(),
            linearized: self.best_path.iter().map(|&s| self.index(s)).collect(),
            state: format!("{:?}", self.best_state.expect("the root is recorded")),
            unplaced,
        }
    }
}
