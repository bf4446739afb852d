//! View changes, as execution replicas see them: when `r + 1` verifiers announce a new view
//! that starts after batch `start`, every replica rolls back to `start` (fetching it by state
//! transfer if it does not hold it with the agreed token), discards its speculative batches,
//! and the new primary re-issues their requests, the first batch executing sequentially.

use super::Replica;
use crate::message::Message;
use crate::node::NodeId;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, Request, View};

impl Replica {
    pub(super) fn enter_view(&mut self, now: Time, view: View, start: BatchSeq, token: Token) {
        if view > self.view {
            self.counters.view_changes += 1;
        }
        // Commit first what the agreed tokens allow: executed batches up to `start` are kept.
        if start > self.committed {
            self.agreed.insert(start, token);
        }
        self.commit_ready(now);
        let reissue = self.leave_view(view);
        if start <= self.committed {
            if start < self.committed {
                // Verifiers never start a view below a batch a replica committed on their
                // word; a lower start means a faulty verifier quorum. Keep what is committed.
                self.counters.drops.count("new-view-below-committed");
            }
            let committed = self.committed;
            self.rollback_to(committed);
        } else if self.executing >= start && self.slots.contains_key(&start) {
            // This replica executed (or is executing) the start batch: keep it and let its
            // token decide. A match commits it (fast forward); a mismatch is repaired by state
            // transfer when the catch-up timer fires.
            self.rollback_to(start);
            self.arm_progress(now);
        } else {
            self.start_transfer(now, start, token);
        }
        self.finish_view_change(now, start, reissue);
        self.decline_if_primary(now);
    }

    /// Moves to a view learned from ordinary `Verified` votes, without its start. What was
    /// executed stays (the new view may well start after it); batches of the new primary
    /// replace those of the old one as they arrive, and the catch-up timer fetches what the
    /// verifiers agreed on.
    pub(super) fn adopt_view(&mut self, now: Time, view: View) {
        self.counters.view_changes += 1;
        self.view = view;
        self.view_started = false;
        self.forwarded.clear();
        self.batch_deadline = None;
        if !self.is_primary() {
            let primary = self.primary();
            for request in std::mem::take(&mut self.pending) {
                self.in_flight.remove(&(request.client, request.request_no));
                self.send(NodeId::Replica(primary), Message::Request(request));
            }
        }
        self.arm_progress(now);
        self.decline_if_primary(now);
    }

    /// Switches to `view` and returns the requests of the discarded batches, in order.
    fn leave_view(&mut self, view: View) -> Vec<Request> {
        self.view = view;
        self.view_started = true;
        self.forwarded.clear();
        let mut reissue: Vec<Request> = Vec::new();
        for slot in self.slots.values() {
            reissue.extend(slot.batch.requests.iter().cloned());
        }
        reissue.extend(self.pending.drain(..));
        reissue
    }

    /// After the state is settled at `start`: clears the old view's batches and votes, and
    /// hands the discarded requests to the new primary (or, as the new primary, re-issues
    /// them, the first batch sequentially).
    fn finish_view_change(&mut self, now: Time, start: BatchSeq, reissue: Vec<Request>) {
        let base = start.max(self.committed);
        self.slots.retain(|&s, _| s <= base);
        // Kept: the start's agreed token, which the start slot's execution must match before
        // it commits, and the target of a transfer in progress.
        let committed = self.committed;
        self.agreed.retain(|&s, _| {
            (s == start && s > committed)
                || (s > base && self.transfer.as_ref().is_some_and(|t| t.target == s))
        });
        self.votes.clear();
        self.far_votes = None;
        self.in_flight.clear();
        self.next_seq = base.next();
        self.batch_deadline = None;
        if self.is_primary() {
            self.sequential_next = true;
            for request in reissue {
                let key = (request.client, request.request_no);
                if !self.last_reply.answered(&request) && self.in_flight.insert(key) {
                    self.pending.push_back(request);
                }
            }
            if !self.pending.is_empty() {
                self.cut_batches(now, true);
            }
        } else {
            let primary = self.primary();
            for request in reissue {
                self.send(NodeId::Replica(primary), Message::Request(request));
            }
        }
    }
}
