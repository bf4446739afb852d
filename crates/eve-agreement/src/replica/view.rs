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
        let base = start.max(self.committed);
        let kept = self.own_view_run(view, base);
        let reissue = self.leave_view(view, base, kept);
        if start <= self.committed {
            if start < self.committed {
                // Verifiers never start a view below a batch a replica committed on their
                // word; a lower start means a faulty verifier quorum. Keep what is committed.
                self.counters.drops.count("new-view-below-committed");
            }
            self.keep_up_to(base, kept);
        } else if self.executing >= start && self.slots.contains_key(&start) {
            // This replica executed (or is executing) the start batch: keep it and let its
            // token decide. A match commits it (fast forward); a mismatch is repaired by state
            // transfer when the catch-up timer fires.
            self.keep_up_to(base, kept);
            self.arm_progress(now);
        } else {
            self.start_transfer(now, start, token);
        }
        self.finish_view_change(now, start, kept, reissue);
        self.decline_if_primary(now);
        self.take_up_future_batches(now);
    }

    /// The last batch of the unbroken run above `base` that the primary of `view` ordered, or
    /// `base`. Only a replica that already follows `view` holds such batches: it learned the
    /// view from the verifiers' ordinary votes before the announcement of its start, and
    /// accepted the new primary's batches meanwhile. They belong to the view being entered and
    /// stay; the verifiers may commit them with this replica's token among the quorum.
    fn own_view_run(&self, view: View, base: BatchSeq) -> BatchSeq {
        let mut end = base;
        while self
            .slots
            .get(&end.next())
            .is_some_and(|slot| slot.batch.view == view)
        {
            end = end.next();
        }
        end
    }

    /// Rolls back what was executed above `kept` (everything above `base` when nothing of the
    /// new view is kept).
    fn keep_up_to(&mut self, base: BatchSeq, kept: BatchSeq) {
        if kept == base || self.executing > kept {
            self.rollback_to(kept);
        }
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
            for request in self.pending.take_all() {
                self.in_flight.remove(&(request.client, request.request_no));
                self.send(NodeId::Replica(primary), Message::Request(request));
            }
        }
        self.arm_progress(now);
        self.decline_if_primary(now);
        self.take_up_future_batches(now);
    }

    /// Switches to `view` and returns the requests of the batches it does not keep (all but
    /// those of the new view in `(base, kept]`), in order.
    fn leave_view(&mut self, view: View, base: BatchSeq, kept: BatchSeq) -> Vec<Request> {
        self.view = view;
        self.view_started = true;
        self.forwarded.clear();
        let mut reissue: Vec<Request> = Vec::new();
        for (&seq, slot) in &self.slots {
            if seq <= base || seq > kept {
                reissue.extend(slot.batch.requests.iter().cloned());
            }
        }
        reissue.extend(self.pending.take_all());
        reissue
    }

    /// After the state is settled at `start`: clears the old view's batches and votes (keeping
    /// the new view's own batches up to `kept`), and hands the discarded requests to the new
    /// primary (or, as the new primary, re-issues them, the first batch sequentially).
    fn finish_view_change(
        &mut self,
        now: Time,
        start: BatchSeq,
        kept: BatchSeq,
        reissue: Vec<Request>,
    ) {
        let base = start.max(self.committed);
        let kept = kept.max(base);
        self.slots.retain(|&s, _| s <= kept);
        // Kept: the start's agreed token, which the start slot's execution must match before
        // it commits, what was agreed and voted on the new view's kept batches, and the target
        // of a transfer in progress.
        let committed = self.committed;
        self.agreed.retain(|&s, _| {
            (s == start && s > committed)
                || (s > base && s <= kept)
                || (s > base && self.transfer.as_ref().is_some_and(|t| t.target == s))
        });
        self.votes.retain(|&s, _| s > base && s <= kept);
        self.far_votes = None;
        self.in_flight.clear();
        for slot in self.slots.range(base.next()..) {
            for request in &slot.1.batch.requests {
                self.in_flight.insert((request.client, request.request_no));
            }
        }
        self.next_seq = kept.next();
        self.batch_deadline = None;
        if self.is_primary() {
            self.sequential_next = true;
            for request in reissue {
                let key = (request.client, request.request_no);
                if self.last_reply.answered(&request) || self.in_flight.contains(&key) {
                    continue;
                }
                // A re-issued request that no longer fits is dropped; its client retransmits.
                match self.pending.push(request) {
                    Ok(()) => {
                        self.in_flight.insert(key);
                    }
                    Err(reason) => self.counters.drops.count(reason),
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
