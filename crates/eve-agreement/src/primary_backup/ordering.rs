//! Requests and batches: duplicate suppression and cutting batches (primary), forwarding
//! requests to the primary and accepting its batches (backup), handing batches to the
//! execution side in order (both).

use super::{PbReplica, Slot};
use crate::exec_side::ExecCommand;
use crate::limits::SEQ_WINDOW;
use crate::message::{Batch, Message};
use crate::node::NodeId;
use crate::requests::{Seen, batch_nondet, client_at_limit, drop_reason};
use crate::time::Time;
use eve_types::Request;

impl PbReplica {
    pub(super) fn on_request(&mut self, now: Time, from: NodeId, request: Request) {
        if let Some(reason) = drop_reason(from, &request) {
            self.counters.drops.count(reason);
            return;
        }
        if !self.is_primary() {
            if matches!(from, NodeId::Client(_)) {
                // Only the primary orders and replies. A client that turns to the backup has
                // waited long enough to doubt the primary: watch it from now on.
                if self.primary_deadline.is_none() {
                    self.primary_deadline = Some(now.plus_ms(self.config.backup_timeout_ms));
                }
                self.send_to_peer(now, Message::Request(request));
            } else {
                self.counters.drops.count("request-to-backup");
            }
            return;
        }
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
        if self
            .in_flight
            .contains(&(request.client, request.request_no))
        {
            return;
        }
        if client_at_limit(&self.in_flight, request.client) {
            self.counters.drops.count("client-in-flight-full");
            return;
        }
        let key = (request.client, request.request_no);
        if let Err(reason) = self.pending.push(request) {
            self.counters.drops.count(reason);
            return;
        }
        self.in_flight.insert(key);
        if self.batch_deadline.is_none() {
            self.batch_deadline = Some(now.plus_ms(self.config.batch_timeout_ms));
        }
        self.cut_batches(now, false);
    }

    /// Cuts batches while there are requests and room in the pipeline: full batches always,
    /// a partial one when the batch timer expired (`timer`) or no batch is uncommitted (see
    /// `PendingQueue::should_cut`). Each goes to the backup (even
    /// while alone: it may come back) and to the execution side.
    pub(super) fn cut_batches(&mut self, now: Time, timer: bool) {
        if !self.is_primary() {
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
            let batch = Batch {
                view: self.view,
                seq,
                requests,
                nondet: batch_nondet(self.view, seq, now),
                sequential: std::mem::take(&mut self.sequential_next),
            };
            self.order(now, batch);
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

    /// Sends a batch the primary ordered to the backup and executes it.
    pub(super) fn order(&mut self, now: Time, batch: Batch) {
        assert!(self.is_primary(), "only the primary orders");
        assert_eq!(batch.seq, self.next_seq, "batches are ordered without gaps");
        self.next_seq = batch.seq.next();
        self.counters.batches_ordered += 1;
        self.send_to_peer(now, Message::ExecuteBatch(batch.clone()));
        self.slots.insert(batch.seq, Slot::new(batch));
        self.execute_ready();
    }

    /// Backup: a batch of the current view from the primary.
    pub(super) fn on_execute_batch(&mut self, now: Time, batch: Batch) {
        let valid = batch.requests.len() <= self.config.batch_requests_max
            && batch.requests.iter().all(|r| r.check().is_ok());
        if !valid {
            self.counters.drops.count("invalid-batch");
            return;
        }
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
            // The primary re-issued the batch (to re-execute it sequentially after a
            // mismatch): redo it, and the batches after it, from `seq - 1`.
            if self.transfer.is_none() && self.executing >= seq {
                let base = seq.prev().expect("a batch above committed is above 0");
                self.rollback_to(base);
            }
        }
        self.slots.insert(seq, Slot::new(batch));
        self.execute_ready();
        self.watch_gap(now);
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
            self.exec(ExecCommand::Execute { epoch, batch });
        }
    }
}
