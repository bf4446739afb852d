//! State transfer: a replica whose token differs from the agreed one, or that fell behind, or
//! restarted empty, rolls back to its last committed version and fetches the agreed state from
//! a peer. It accepts the peer's roots only if they hash to the agreed token, and the state
//! only if it produces those roots; otherwise it asks the next peer. It releases no reply for
//! a batch it did not execute with the agreed token.

use super::{Replica, Transfer};
use crate::exec_side::{ExecCommand, StateReplyCheck};
use crate::message::{Message, StateReply};
use crate::node::NodeId;
use crate::time::Time;
use eve_exec::Token;
use eve_state::{Chunk, ChunkRequest};
use eve_types::{BatchSeq, ReplicaId};

impl Replica {
    /// Starts fetching the state of `target`, whose agreed token is `token`.
    pub(super) fn start_transfer(&mut self, now: Time, target: BatchSeq, token: Token) {
        self.counters.state_transfers += 1;
        let committed = self.committed;
        self.rollback_to(committed);
        self.transfer = Some(Transfer {
            target,
            token,
            attempt: 0,
            full: false,
            started: now,
            deadline: now,
            waiting: false,
        });
        self.request_state(now);
    }

    /// Catches up to the highest agreed batch, if there is one above the last committed.
    pub(super) fn catch_up(&mut self, now: Time) {
        if self.transfer.is_some() || !self.commit_ready(now) {
            return;
        }
        match self.highest_agreed() {
            Some((target, token)) => self.start_transfer(now, target, token),
            None => self.arm_progress(now),
        }
    }

    /// The transfer timer: after a round of failed peers, start the next round; after a
    /// silent peer, ask the next one.
    pub(super) fn ask_next_peer(&mut self, now: Time) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        if !std::mem::take(&mut transfer.waiting) {
            transfer.attempt += 1;
        }
        self.request_state(now);
    }

    /// The peer could not help (it does not hold the version, or its data was wrong; a failed
    /// import leaves the state as it was). Ask the next peer at once, but after a whole round
    /// of peers failed, wait for the transfer timer: the agreed state may not be held by
    /// anyone yet, and newer agreed batches may arrive meanwhile.
    fn transfer_failed(&mut self, now: Time) {
        self.counters.state_transfer_failures += 1;
        let others = self.sizes.n_exec - 1;
        let deadline = now.plus_ms(self.verify_timeout_ms());
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        transfer.attempt += 1;
        if transfer.attempt % others == 0 {
            transfer.deadline = deadline;
            transfer.waiting = true;
            // No peer holds the target any more, perhaps: the cluster may have moved on
            // (peers keep versions only from their last checkpoint). Ask where it stands, so
            // that the next round asks for a newer agreed batch.
            self.send_verifiers(Message::QueryCommitted);
        } else {
            self.request_state(now);
        }
    }

    fn current_peer(&self) -> Option<ReplicaId> {
        let transfer = self.transfer.as_ref()?;
        let others = self.sizes.n_exec as u32 - 1;
        let offset = 1 + (transfer.attempt as u32 % others);
        Some(ReplicaId((self.id.0 + offset) % self.sizes.n_exec as u32))
    }

    /// Asks the current peer for the highest agreed batch known by now.
    fn request_state(&mut self, now: Time) {
        let deadline = now.plus_ms(self.verify_timeout_ms());
        let Some(peer) = self.current_peer() else {
            return;
        };
        let newer = self.highest_agreed();
        let transfer = self.transfer.as_mut().expect("a transfer is in progress");
        if let Some((target, token)) = newer
            && target > transfer.target
        {
            transfer.target = target;
            transfer.token = token;
        }
        transfer.deadline = deadline;
        let base = (self.state_is_committed && !transfer.full).then_some(self.committed);
        let msg = Message::StateRequest {
            target: transfer.target,
            base,
        };
        self.send(NodeId::Replica(peer), msg);
    }

    pub(super) fn on_state_request(
        &mut self,
        peer: ReplicaId,
        target: BatchSeq,
        base: Option<BatchSeq>,
    ) {
        let held = target <= self.executing && target >= self.stable;
        match self.roots.get(&target) {
            Some(&roots) if held && base.is_none_or(|b| b <= target) => {
                self.exec(ExecCommand::ServeState {
                    to: peer,
                    target,
                    base,
                    roots,
                })
            }
            _ => {
                let reply = Box::new(StateReply::NotHeld { target });
                self.send(NodeId::Replica(peer), Message::StateReply(reply));
            }
        }
    }

    pub(super) fn on_chunk_request(&mut self, peer: ReplicaId, request: ChunkRequest) {
        if request.version >= self.stable && self.roots.contains_key(&request.version) {
            self.exec(ExecCommand::ServeChunk { to: peer, request });
        } else {
            let reply = Box::new(StateReply::NotHeld {
                target: request.version,
            });
            self.send(NodeId::Replica(peer), Message::StateReply(reply));
        }
    }

    pub(super) fn on_state_reply(&mut self, now: Time, peer: ReplicaId, reply: StateReply) {
        if self.current_peer() != Some(peer) {
            self.counters.drops.count("state-reply-from-unasked-peer");
            return;
        }
        let transfer = self
            .transfer
            .as_ref()
            .expect("a peer is asked only during a transfer");
        let (target, token, epoch) = (transfer.target, transfer.token, self.epoch);
        let base = (self.state_is_committed && !transfer.full).then_some(self.committed);
        match reply.check(target, token, base, epoch, peer) {
            StateReplyCheck::Import(command) => {
                self.unheld_streak = 0;
                if !self.extends_committed(target, &command) {
                    // The agreed roots of the next batch must start where this replica's
                    // committed state ends: otherwise committed states would not form one
                    // chain, and something beyond the fault model happened.
                    self.counters.drops.count("state-breaks-the-chain");
                    self.transfer_failed(now);
                    return;
                }
                self.exec(command)
            }
            StateReplyCheck::NotHeld(_) => {
                self.unheld_streak += 1;
                self.transfer_failed(now)
            }
            StateReplyCheck::Mismatch => {
                // Roots that do not hash to the agreed token: a faulty or diverged peer.
                self.counters.drops.count("state-reply-not-matching-token");
                self.transfer_failed(now);
            }
        }
    }

    pub(super) fn on_chunk(&mut self, now: Time, peer: ReplicaId, chunk: Chunk) {
        if self.current_peer() != Some(peer) {
            self.counters.drops.count("chunk-from-unasked-peer");
            return;
        }
        // The transfer makes progress: its deadline moves with every chunk (a bad chunk ends
        // the attempt with this peer), so a large state never has to arrive within one timeout.
        let deadline = now.plus_ms(self.verify_timeout_ms());
        if let Some(transfer) = &mut self.transfer {
            transfer.deadline = deadline;
        }
        let epoch = self.epoch;
        self.exec(ExecCommand::ImportChunk { epoch, peer, chunk });
    }

    pub(super) fn on_state_applied(
        &mut self,
        now: Time,
        epoch: u64,
        target: BatchSeq,
        roots: crate::message::Roots,
        ok: bool,
    ) {
        let current = self.transfer.as_ref().map(|t| t.target);
        let fits = current.is_some_and(|c| target <= c) && target > self.committed;
        if epoch != self.epoch || !fits || (!ok && current != Some(target)) {
            self.counters.drops.count("stale-state-transfer");
            return;
        }
        if !ok {
            // Perhaps this replica's state is not its committed version's after all: the
            // next rounds fetch the whole state (only the buckets that differ travel).
            if let Some(transfer) = &mut self.transfer {
                transfer.full = true;
            }
            self.transfer_failed(now);
            return;
        }
        if current != Some(target) {
            // The target moved on while this import ran, but the store sealed an agreed
            // version: keep it and fetch the rest from there.
            self.counters.state_transfers_resumed += 1;
            self.settle_at(target, roots);
            self.request_state(now);
            return;
        }
        let transfer = self.transfer.take().expect("checked above");
        if transfer.started.plus_ms(self.verify_timeout_ms()) < now {
            self.counters.transfers_past_timeout += 1;
        }
        self.counters.state_transfers_completed += 1;
        self.settle_at(target, roots);
        self.progress_deadline = None;
        self.execute_ready();
        self.try_commit(now);
        if self.highest_agreed().is_some() {
            self.arm_progress(now);
        }
    }

    /// The store holds the agreed state of `target`: it is this replica's committed batch.
    fn settle_at(&mut self, target: BatchSeq, roots: crate::message::Roots) {
        self.state_is_committed = true;
        self.committed = target;
        self.executing = target;
        self.roots.insert(target, roots);
        // Batches up to the target are settled without this replica's own execution: a
        // replier answers their requests from the transferred reply cache instead, so that
        // its clients do not wait for a retransmission.
        let settled: Vec<BatchSeq> = self.slots.range(..=target).map(|(s, _)| *s).collect();
        let answer = self.replies_at_commit();
        let view = self.view;
        for seq in settled {
            let slot = self.slots.remove(&seq).expect("listed above");
            for request in &slot.batch.requests {
                self.in_flight.remove(&(request.client, request.request_no));
                self.forwarded.remove(&(request.client, request.request_no));
                if answer {
                    self.exec(ExecCommand::AnswerFromCache {
                        client: request.client,
                        request_no: request.request_no,
                        committed: target,
                        view,
                    });
                }
            }
        }
        self.agreed.retain(|&s, _| s > target);
        self.votes.retain(|&s, _| s > target);
        if self.far_votes.as_ref().is_some_and(|(s, _)| *s <= target) {
            self.far_votes = None;
        }
        if self.next_seq <= target {
            self.next_seq = target.next();
        }
    }

    /// Whether importing `command` (for `target`) extends this replica's committed state: when
    /// the target is the next batch, its roots must start from the committed root.
    fn extends_committed(&self, target: BatchSeq, command: &ExecCommand) -> bool {
        let roots = match command {
            ExecCommand::ImportDelta { roots, .. } | ExecCommand::StartImport { roots, .. } => {
                roots
            }
            _ => return true,
        };
        let mine = self.roots.get(&self.committed);
        target != self.committed.next()
            || !self.state_is_committed
            || mine.is_none_or(|m| m.new_root == roots.prev_root)
    }
}
