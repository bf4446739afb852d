//! Requests and batches: duplicate suppression, forwarding to the primary, cutting batches
//! (primary), accepting batches and handing them to the execution side in order.

use super::{Replica, Slot};
use crate::exec_side::ExecCommand;
use crate::limits::{FORWARDED_MAX, FUTURE_VIEW_BATCHES_MAX, SEQ_WINDOW};
use crate::message::{Batch, Message};
use crate::node::NodeId;
use crate::requests::{Seen, batch_nondet, client_at_limit, drop_reason};
use crate::time::Time;
use eve_types::{BatchSeq, ReplicaId, Request};

impl Replica {
    pub(super) fn on_request(&mut self, now: Time, from: NodeId, request: Request) {
        if let Some(reason) = drop_reason(from, &request) {
            self.counters.drops.count(reason);
            return;
        }
        let key = (request.client, request.request_no);
        match self.last_reply.seen(&request) {
            Seen::Answered(reply) => {
                // Executed and committed before: answer from the reply table.
                let msg = Message::Reply {
                    view: self.view,
                    reply: reply.clone(),
                };
                self.send(NodeId::Client(request.client), msg);
                self.counters.replies_sent += 1;
                return;
            }
            Seen::Stale => {
                self.counters.drops.count("stale-request");
                return;
            }
            Seen::New => {}
        }
        // With r >= 1, whoever relays it: only its client's signature makes a request real (a
        // forged one in a client's name, or one whose operation was rewritten, is dropped).
        if let Some(verdict) = self.signature_refusal(&[&request]) {
            self.counters
                .drops
                .count(verdict.drop_reason().expect("not valid"));
            return;
        }
        // A backup forwards a retransmission even of a request it holds in a batch: that batch
        // may never execute (a primary that left a gap before it), and the watch on the
        // forwarded request is what makes the backup suspect such a primary.
        if self.in_flight.contains(&key) && self.is_primary() {
            return;
        }
        if self.is_primary() {
            if client_at_limit(&self.in_flight, request.client) {
                self.counters.drops.count("client-in-flight-full");
                return;
            }
            if let Err(reason) = self.pending.push(request) {
                self.counters.drops.count(reason);
                return;
            }
            self.in_flight.insert(key);
            if self.batch_deadline.is_none() {
                self.batch_deadline = Some(now.plus_ms(self.config.batch_timeout_ms));
            }
            self.cut_batches(now, false);
        } else if matches!(from, NodeId::Client(_)) {
            // Clients send to the primary first: a request reaching a backup is retransmitted.
            // If it committed already, the committed state's reply cache has the answer.
            self.exec(ExecCommand::AnswerFromCache {
                client: request.client,
                request_no: request.request_no,
                committed: self.committed,
                view: self.view,
            });
            let primary = self.primary();
            self.send(NodeId::Replica(primary), Message::Request(request));
            if self.forwarded.len() < FORWARDED_MAX {
                // A repeated retransmission keeps the first deadline.
                let deadline = now.plus_ms(self.verify_timeout_ms());
                self.forwarded.entry(key).or_insert(deadline);
            }
        } else if !self.in_flight.contains(&key) {
            // Relayed by a replica that takes this one for the primary: it entered a view this
            // one has not entered yet. Dropped, the request would wait for its client's
            // retransmission; kept, entering the view re-issues it (or hands it to the view's
            // primary, with everything else pending).
            if let Err(reason) = self.pending.push(request) {
                self.counters.drops.count(reason);
            }
        }
    }

    /// Cuts batches while there are requests and room in the pipeline: full batches always,
    /// a partial one when the batch timer expired (`timer`) or no batch is uncommitted (see
    /// `PendingQueue::should_cut`).
    pub(super) fn cut_batches(&mut self, now: Time, timer: bool) {
        if !self.is_primary() {
            self.batch_deadline = None;
            return;
        }
        if self.transfer.is_some() || !self.view_started || !self.may_lead() {
            // A primary that is catching up, that does not know after which batch its view
            // starts, or that restarted in this view (see `recovery`), does not know where the
            // order stands; its requests wait (and backups, seeing nothing ordered, suspect it). The batch timer restarts with ordering.
            self.batch_deadline = None;
            return;
        }
        let batch_max = self.config.batch_requests_max;
        let depth = self.config.pipeline_depth as u64;
        let mut timer = timer;
        while self
            .pending
            .should_cut(batch_max, timer, self.next_seq, self.committed, depth)
        {
            let requests = self.pending.take_batch(batch_max);
            let seq = self.next_seq;
            self.next_seq = seq.next();
            let batch = Batch {
                view: self.view,
                seq,
                requests,
                nondet: batch_nondet(self.view, seq, now),
                sequential: std::mem::take(&mut self.sequential_next),
            };
            self.counters.batches_ordered += 1;
            self.send_other_replicas(Message::ExecuteBatch(batch.clone()));
            self.accept_batch(batch);
            timer = false;
        }
        self.batch_deadline = if self.pending.is_empty() {
            None
        } else if self.batch_deadline.is_none_or(|d| d <= now) {
            Some(now.plus_ms(self.config.batch_timeout_ms))
        } else {
            self.batch_deadline
        };
    }

    pub(super) fn on_execute_batch(&mut self, now: Time, from: ReplicaId, batch: Batch) {
        if batch.view > self.view && from == self.primary_of(batch.view) {
            self.keep_future_batch(from, batch);
            return;
        }
        if batch.view != self.view {
            self.counters.drops.count("batch-of-another-view");
            return;
        }
        if from != self.primary() {
            self.counters.drops.count("batch-not-from-primary");
            return;
        }
        let valid = batch.requests.len() <= self.config.batch_requests_max
            && batch.requests.iter().all(|r| r.check().is_ok());
        if !valid {
            self.counters.drops.count("invalid-batch");
            return;
        }
        let requests: Vec<&Request> = batch.requests.iter().collect();
        match self.signature_refusal(&requests) {
            None => {}
            Some(crate::auth::Verdict::UnknownClient) => {
                // Perhaps only this replica lacks the key: it falls behind and catches up.
                self.counters.drops.count("batch-of-an-unknown-client");
                return;
            }
            Some(_) => {
                // A primary ordered a request its client did not sign: it lies.
                self.counters.drops.count("batch-with-a-forged-request");
                self.counters.suspicions += 1;
                self.send_verifiers(Message::Suspect { view: self.view });
                return;
            }
        }
        self.accept_batch(batch);
        self.arm_progress(now);
    }

    /// Stores a batch of the current view and executes what is ready.
    pub(super) fn accept_batch(&mut self, batch: Batch) {
        let seq = batch.seq;
        if seq <= self.committed {
            self.counters.drops.count("batch-already-committed");
            return;
        }
        if seq.0 > self.committed.0 + SEQ_WINDOW {
            self.counters.drops.count("batch-beyond-window");
            return;
        }
        if let Some(existing) = self.slots.get(&seq) {
            if existing.batch == batch {
                return;
            }
            if existing.batch.view >= batch.view {
                self.counters.drops.count("conflicting-batch");
                return;
            }
            // The primary of a newer view ordered this position differently: what the old
            // primary ordered from here on is undone.
            self.discard_from(seq);
        }
        for request in &batch.requests {
            let key = (request.client, request.request_no);
            self.forwarded.remove(&key);
            self.in_flight.insert(key);
        }
        self.slots.insert(
            seq,
            Slot {
                batch,
                exec_epoch: None,
                result: None,
            },
        );
        self.execute_ready();
    }

    /// Drops the batches at `seq` and after, rolling back what was executed of them.
    fn discard_from(&mut self, seq: BatchSeq) {
        for (_, slot) in self.slots.split_off(&seq) {
            for request in &slot.batch.requests {
                self.in_flight.remove(&(request.client, request.request_no));
            }
        }
        if self.executing >= seq {
            let to = seq
                .prev()
                .expect("only batches after the committed one are discarded");
            self.rollback_to(to);
        }
    }

    /// Hands the execution side every stored batch that follows the last one handed over.
    pub(super) fn execute_ready(&mut self) {
        if self.transfer.is_some() {
            return;
        }
        while let Some(slot) = self.slots.get(&self.executing.next()) {
            let batch = slot.batch.clone();
            self.executing = batch.seq;
            if batch.sequential {
                self.counters.sequential_executions += 1;
            }
            let epoch = self.epoch;
            self.slots
                .get_mut(&batch.seq)
                .expect("taken from the slots")
                .exec_epoch = Some(epoch);
            self.exec(ExecCommand::Execute { epoch, batch });
        }
    }

    /// A backup holding batches beyond one it never received suspects the primary once that
    /// gap has lasted `verify_timeout_ms`: nothing executes past it, so no token comes to
    /// start the verifiers' timer. Called at every progress timeout.
    pub(super) fn check_gap(&mut self, now: Time) {
        let missing = self.executing.next();
        let gap = self.transfer.is_none()
            && !self.slots.contains_key(&missing)
            && self.slots.range(missing..).next().is_some();
        if !gap {
            self.gap_since = None;
            return;
        }
        match self.gap_since {
            Some((seq, since)) if seq == missing => {
                if since.plus_ms(self.verify_timeout_ms()) <= now && !self.is_primary() {
                    self.counters.suspicions += 1;
                    self.send_verifiers(Message::Suspect { view: self.view });
                }
            }
            _ => self.gap_since = Some((missing, now)),
        }
    }

    /// Keeps a batch the primary of a view this replica has not entered sent: the new primary's
    /// first batches often arrive before the announcement of the view's start, and dropped,
    /// they would leave a gap that only the catch-up timer and a state transfer close. Only
    /// the highest such view's batches are kept, at most [`FUTURE_VIEW_BATCHES_MAX`].
    fn keep_future_batch(&mut self, from: ReplicaId, batch: Batch) {
        if let Some(kept) = self.future_batches.first().map(|(_, b)| b.view) {
            if batch.view < kept {
                self.counters.drops.count("batch-of-another-view");
                return;
            }
            if batch.view > kept {
                self.future_batches.clear();
            }
        }
        if self.future_batches.len() >= FUTURE_VIEW_BATCHES_MAX {
            self.counters.drops.count("future-view-batches-full");
            return;
        }
        self.future_batches.push((from, batch));
    }

    /// Takes up the kept batches of the view just entered (and forgets those of older views).
    pub(super) fn take_up_future_batches(&mut self, now: Time) {
        let view = self.view;
        let kept = std::mem::take(&mut self.future_batches);
        for (from, batch) in kept {
            if batch.view == view {
                self.on_execute_batch(now, from, batch);
            } else if batch.view > view {
                self.future_batches.push((from, batch));
            }
        }
    }

    /// Suspects the primary if a forwarded request was not ordered in time.
    pub(super) fn check_forwarded(&mut self, now: Time) {
        let overdue = self.forwarded.values().any(|&deadline| deadline <= now);
        if !overdue {
            return;
        }
        self.forwarded.retain(|_, deadline| *deadline > now);
        // Repeated at every overdue round, since a suspicion can be lost. This replica may
        // also have missed a view change: ask the verifiers where they stand.
        self.send_verifiers(Message::QueryCommitted);
        if !self.is_primary() || !self.may_lead() {
            self.counters.suspicions += 1;
            self.send_verifiers(Message::Suspect { view: self.view });
        }
    }

    /// Arms the catch-up timer if it is not armed.
    pub(super) fn arm_progress(&mut self, now: Time) {
        if self.progress_deadline.is_none() {
            self.progress_deadline = Some(now.plus_ms(self.verify_timeout_ms()));
        }
    }
}
