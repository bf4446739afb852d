//! Failover: the primary's heartbeats, the backup promoting itself when the primary is
//! silent, and a replica adopting a higher view announced by the other one (an old primary
//! that learns it was replaced becomes the backup).

use super::{PbReplica, Slot, primary_of};
use crate::message::{Batch, Message};
use crate::time::Time;
use eve_types::{Request, View};

impl PbReplica {
    /// Primary: nothing was sent to the backup for a while; show it the primary is alive.
    pub(super) fn heartbeat(&mut self, now: Time) {
        self.heartbeat_at = None;
        if !self.is_primary() {
            return;
        }
        self.counters.heartbeats_sent += 1;
        let view = self.view;
        let committed = self
            .committed_tokens
            .get(&self.committed)
            .map(|token| (self.committed, *token));
        self.send_to_peer(now, Message::Heartbeat { view, committed });
    }

    /// Backup: no batch, commit or heartbeat from the primary in `backup_timeout_ms`.
    pub(super) fn on_primary_silent(&mut self, now: Time) {
        self.primary_deadline = None;
        if self.is_primary() {
            return;
        }
        if self.behind() {
            // Serving now would lose batches the primary committed (and replied for): wait,
            // as a backup, until it has caught up, however long that takes.
            self.counters.promotions_deferred += 1;
            self.primary_deadline = Some(now.plus_ms(self.config.backup_timeout_ms));
            return;
        }
        self.promote(now);
    }

    /// Whether this backup knows the primary committed more than it holds: it restarted
    /// empty, is fetching state, or heard a `Commit` it has not reached by executing yet.
    fn behind(&self) -> bool {
        self.recovering
            || self.transfer.is_some()
            || self
                .commit_heard
                .is_some_and(|(heard, _)| heard > self.committed)
    }

    /// Becomes the primary of the next view: keeps the batches after the committed one that it
    /// executed, with its own results; rolls back the rest and re-issues the uncommitted batches
    /// it held (the run that follows, with the same requests and non-deterministic inputs), the
    /// first re-executed one sequentially; the requests of any other batch it held are ordered
    /// again.
    ///
    /// The old primary may have committed, and replied for, any batch this backup executed
    /// (it commits only on the backup's token), so those batches keep their number, requests
    /// and inputs, even past the pipeline depth: re-batching them could change the results
    /// clients already hold.
    fn promote(&mut self, now: Time) {
        self.counters.promotions += 1;
        let mut slots = std::mem::take(&mut self.slots);
        self.view = self.view.next();
        assert!(
            self.is_primary(),
            "the backup of view v is the primary of v + 1"
        );
        self.reset_view_state();
        let committed = self.committed;
        // The batches after the committed one that this replica executed are kept with their
        // results: the old primary commits only on a matching backup token, so it may have
        // committed them on this very execution and replied; re-executing them (sequentially)
        // could give an application that is not deterministic under parallel execution
        // another result than the one clients hold.
        let mut kept_to = committed;
        while slots
            .get(&kept_to.next())
            .is_some_and(|slot| slot.result.is_some())
        {
            kept_to = kept_to.next();
        }
        self.rollback_to(kept_to);
        self.next_seq = committed.next();
        while self.next_seq <= kept_to {
            let slot = slots.remove(&self.next_seq).expect("listed above");
            let batch = Batch {
                view: self.view,
                ..slot.batch
            };
            for request in &batch.requests {
                self.in_flight.insert((request.client, request.request_no));
            }
            self.next_seq = batch.seq.next();
            self.counters.batches_ordered += 1;
            self.counters.batches_kept += 1;
            self.send_to_peer(now, Message::ExecuteBatch(batch.clone()));
            let seq = batch.seq;
            self.slots.insert(
                seq,
                Slot {
                    batch,
                    result: slot.result,
                    backup_token: None,
                    kept: true,
                },
            );
        }
        let mut first = true;
        while let Some(slot) = slots.remove(&self.next_seq) {
            let batch = Batch {
                view: self.view,
                sequential: first,
                ..slot.batch
            };
            for request in &batch.requests {
                self.in_flight.insert((request.client, request.request_no));
            }
            self.order(now, batch);
            first = false;
        }
        self.sequential_next = first;
        let rest: Vec<Request> = slots
            .into_values()
            .flat_map(|slot| slot.batch.requests)
            .collect();
        for request in rest {
            self.requeue(request);
        }
        if !self.pending.is_empty() {
            self.cut_batches(now, true);
        }
        // Kept batches commit on the backup's token, or alone once it stays silent.
        self.try_commit_primary(now);
        if self.heartbeat_at.is_none() {
            // Nothing re-issued: announce the view at once all the same, so that an old
            // primary still alive learns it was replaced.
            self.heartbeat(now);
        }
    }

    /// Moves to a higher `view` whose primary is the other replica: drops every uncommitted
    /// batch (rolling back to the last committed one) and hands the requests it knew to the
    /// new primary. A backup left behind catches up by state transfer on the new primary's
    /// `Commit`s.
    pub(super) fn adopt_view(&mut self, now: Time, view: View) {
        assert!(
            view > self.view && primary_of(view) == self.peer(),
            "only a higher view whose primary is the other replica is adopted"
        );
        self.counters.views_adopted += 1;
        let mut requests: Vec<Request> = std::mem::take(&mut self.slots)
            .into_values()
            .flat_map(|slot| slot.batch.requests)
            .collect();
        requests.extend(self.pending.take_all());
        self.view = view;
        self.reset_view_state();
        let committed = self.committed;
        self.rollback_to(committed);
        self.next_seq = committed.next();
        self.primary_deadline = Some(now.plus_ms(self.config.backup_timeout_ms));
        for request in requests {
            if !self.answered(&request) {
                self.send_to_peer(now, Message::Request(request));
            }
        }
    }

    /// Puts a request of a discarded batch back in line (new primary), unless it committed.
    fn requeue(&mut self, request: Request) {
        let key = (request.client, request.request_no);
        if self.answered(&request) || self.in_flight.contains(&key) {
            return;
        }
        // A request that no longer fits is dropped; its client retransmits.
        match self.pending.push(request) {
            Ok(()) => {
                self.in_flight.insert(key);
            }
            Err(reason) => self.counters.drops.count(reason),
        }
    }

    /// Whether the request, or a later one of its client, committed here.
    fn answered(&self, request: &Request) -> bool {
        self.last_reply.answered(request)
    }

    /// Forgets everything of the old view above the last committed batch.
    fn reset_view_state(&mut self) {
        self.slots.clear();
        self.pending.take_all();
        self.in_flight.clear();
        self.batch_deadline = None;
        self.sequential_next = false;
        self.alone = false;
        self.backup_deadline = None;
        self.resync = None;
        self.heartbeat_at = None;
        self.agreed.clear();
        self.commit_heard = None;
        self.primary_deadline = None;
        self.gap_deadline = None;
        self.transfer = None;
    }
}
