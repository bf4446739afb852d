//! Tokens and commits: send the token of each executed batch to the verifiers, gather the
//! verifiers' `Verified` votes, commit in order when `r + 1` of them agree with this replica's
//! token and release the replies; on a mismatch, repair by state transfer.

use super::{Executed, Replica};
use crate::exec_side::ExecCommand;
use crate::limits::SEQ_WINDOW;
use crate::message::{Message, Roots};
use crate::node::NodeId;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, Reply, VerifierId, View};

impl Replica {
    pub(super) fn on_executed(
        &mut self,
        now: Time,
        epoch: u64,
        seq: BatchSeq,
        roots: Roots,
        token: Token,
        replies: Vec<Reply>,
    ) {
        let current = self
            .slots
            .get(&seq)
            .is_some_and(|slot| slot.exec_epoch == Some(epoch));
        if !current {
            self.counters.drops.count("stale-execution-result");
            return;
        }
        let prev = crate::message::base_token(&self.roots, seq);
        let slot = self.slots.get_mut(&seq).expect("found above");
        slot.result = Some(Executed {
            token,
            prev,
            replies,
        });
        // The token names the batch's own view: verifiers lock per (view, seq).
        let view = slot.batch.view;
        self.roots.insert(seq, roots);
        self.counters.batches_executed += 1;
        self.send_verifiers(Message::Verify {
            view,
            seq,
            token,
            prev,
        });
        self.arm_progress(now);
        self.try_commit(now);
    }

    /// Nothing committed for a while. Catch up by state transfer if verifiers agreed on a
    /// batch beyond this replica; otherwise send the tokens of executed batches again (a token
    /// or the verifiers' answer may have been lost; verifiers that committed a batch answer a
    /// repeated token with `Verified`).
    pub(super) fn on_progress_timeout(&mut self, now: Time) {
        self.ask_recovery();
        self.decline_if_primary(now);
        if self.transfer.is_some() {
            return;
        }
        if self.highest_agreed().is_some() {
            self.catch_up(now);
            return;
        }
        self.check_gap(now);
        let executed: Vec<Message> = self
            .slots
            .iter()
            .filter_map(|(&seq, slot)| {
                slot.result.as_ref().map(|r| Message::Verify {
                    view: slot.batch.view,
                    seq,
                    token: r.token,
                    prev: r.prev,
                })
            })
            .collect();
        for msg in &executed {
            self.send_verifiers(msg.clone());
        }
        if executed.is_empty() {
            // Nothing to repeat: ask the verifiers where the cluster stands, in case this
            // replica restarted or missed their word (idle replicas ask at this pace).
            self.send_verifiers(Message::QueryCommitted);
        }
        self.arm_progress(now);
    }

    pub(super) fn on_execute_failed(&mut self, now: Time, epoch: u64, seq: BatchSeq) {
        if self
            .slots
            .get(&seq)
            .is_none_or(|slot| slot.exec_epoch != Some(epoch))
        {
            return;
        }
        // The execution side disagrees with our bookkeeping: start over from a peer's state.
        self.counters.drops.count("execution-failed");
        self.executing = seq.prev().unwrap_or(BatchSeq(0)).min(self.executing);
        self.catch_up(now);
    }

    pub(super) fn on_verified(
        &mut self,
        now: Time,
        from: VerifierId,
        view: View,
        seq: BatchSeq,
        token: Token,
        sequential: bool,
    ) {
        let quorum = self.sizes.client_reply_quorum;
        if sequential {
            if view < self.view || (view == self.view && self.view_started) {
                return;
            }
            let voters = self.new_view_votes.entry((view, seq, token)).or_default();
            voters.insert(from);
            if voters.len() >= quorum {
                self.new_view_votes.retain(|&(v, _, _), _| v > view);
                self.enter_view(now, view, seq, token);
            }
            return;
        }
        if seq <= self.committed {
            return;
        }
        let agreed = if seq.0 <= self.committed.0 + SEQ_WINDOW {
            let voters = self.votes.entry(seq).or_default().entry(token).or_default();
            voters.insert(from);
            voters.len() >= quorum
        } else {
            self.far_vote(from, seq, token) >= quorum
        };
        if !agreed {
            return;
        }
        if seq.0 <= self.committed.0 + SEQ_WINDOW {
            self.agreed.insert(seq, token);
        }
        if view > self.view {
            // The verifiers moved on without this replica hearing the new view: commit what
            // the agreed tokens allow, drop what was executed speculatively, then catch up.
            self.commit_ready(now);
            self.adopt_view(now, view);
            self.catch_up(now);
            return;
        }
        self.arm_progress(now);
        self.try_commit(now);
    }

    /// Records a vote for a batch beyond the window; only the highest such batch is kept.
    fn far_vote(&mut self, from: VerifierId, seq: BatchSeq, token: Token) -> usize {
        match &mut self.far_votes {
            Some((far, _)) if *far > seq => return 0,
            Some((far, votes)) if *far == seq => {
                let voters = votes.entry(token).or_default();
                voters.insert(from);
                return voters.len();
            }
            _ => {}
        }
        let mut votes = std::collections::BTreeMap::new();
        votes.insert(token, std::collections::BTreeSet::from([from]));
        self.far_votes = Some((seq, votes));
        1
    }

    /// The highest batch verifiers agreed on that this replica has not committed, if any.
    pub(super) fn highest_agreed(&self) -> Option<(BatchSeq, Token)> {
        let quorum = self.sizes.client_reply_quorum;
        let far = self.far_votes.as_ref().and_then(|(seq, votes)| {
            votes
                .iter()
                .find(|(_, voters)| voters.len() >= quorum)
                .map(|(token, _)| (*seq, *token))
        });
        let near = self.agreed.iter().next_back().map(|(s, t)| (*s, *t));
        [far, near]
            .into_iter()
            .flatten()
            .filter(|(seq, _)| *seq > self.committed)
            .max_by_key(|(seq, _)| *seq)
    }

    /// Commits what it can, then re-arms the catch-up timer and lets the primary order more.
    /// Only a commit restarts the timer: a replica far behind hears `Verified` for batches
    /// beyond its window every few milliseconds under load, and if each one that committed
    /// nothing pushed the timer out again, it never ran out and the replica never started the
    /// state transfer that catches it up (chaos seed 104 of `--mode 1,1`).
    pub(super) fn try_commit(&mut self, now: Time) {
        if self.transfer.is_some() {
            return;
        }
        let before = self.committed;
        if !self.commit_ready(now) {
            return;
        }
        if self.committed > before {
            self.progress_deadline = None;
        }
        let executed_uncommitted = self.slots.values().any(|slot| slot.result.is_some());
        if self.highest_agreed().is_some() || executed_uncommitted {
            self.arm_progress(now);
        }
        self.cut_batches(now, false);
    }

    /// Commits every batch, in order, whose agreed token equals this replica's. Returns
    /// `false` if it found a mismatch and started a state transfer.
    pub(super) fn commit_ready(&mut self, now: Time) -> bool {
        if self.transfer.is_some() {
            return false;
        }
        loop {
            let seq = self.committed.next();
            let Some(&token) = self.agreed.get(&seq) else {
                if self.fast_forward() {
                    continue;
                }
                break;
            };
            let Some(mine) = self.slots.get(&seq).and_then(|s| s.result.as_ref()) else {
                break;
            };
            if mine.token != token {
                self.counters.divergences += 1;
                self.start_transfer(now, seq, token);
                return false;
            }
            self.commit_one(seq);
        }
        true
    }

    /// When the next batch's agreed token never arrived (lost, or folded into a view change)
    /// but a later batch's did and this replica's own token for it matches, the replica holds
    /// the agreed state there: it commits up to it. Replies of the batches in between are not
    /// released (their tokens were never seen); a client that retransmits is answered from the
    /// reply cache of the committed state.
    fn fast_forward(&mut self) -> bool {
        let matching = self.agreed.iter().rev().find(|(seq, token)| {
            self.slots
                .get(seq)
                .and_then(|slot| slot.result.as_ref())
                .is_some_and(|mine| mine.token == **token)
        });
        let Some((&target, _)) = matching else {
            return false;
        };
        let skipped: Vec<BatchSeq> = self.slots.range(..target).map(|(s, _)| *s).collect();
        for seq in skipped {
            let slot = self.slots.remove(&seq).expect("listed above");
            for request in &slot.batch.requests {
                self.in_flight.remove(&(request.client, request.request_no));
            }
        }
        self.agreed.retain(|&s, _| s >= target);
        self.commit_one(target);
        true
    }

    fn commit_one(&mut self, seq: BatchSeq) {
        let slot = self
            .slots
            .remove(&seq)
            .expect("a batch commits only once it was executed");
        let executed = slot.result.expect("checked by the caller");
        self.committed = seq;
        // Its own token matched the agreed one: the state is the committed version's.
        self.state_is_committed = true;
        self.counters.batches_committed += 1;
        self.agreed.remove(&seq);
        self.votes.retain(|&s, _| s > seq);
        for request in &slot.batch.requests {
            let key = (request.client, request.request_no);
            self.in_flight.remove(&key);
            self.forwarded.remove(&key);
        }
        for reply in executed.replies {
            self.release(reply);
        }
        self.progress_deadline = None;
        if seq.0.is_multiple_of(self.config.checkpoint_interval) {
            self.exec(ExecCommand::MarkStable { seq });
            self.stable = seq;
            self.roots.retain(|&s, _| s >= seq);
        }
    }

    /// Remembers a committed reply for retransmissions, and sends it to its client if this
    /// replica is one of the repliers (see [`Replica::replies_at_commit`]).
    fn release(&mut self, reply: Reply) {
        self.last_reply.record(reply.clone());
        if !self.replies_at_commit() {
            return;
        }
        self.counters.replies_sent += 1;
        let view = self.view;
        self.send(NodeId::Client(reply.client), Message::Reply { view, reply });
    }

    /// Whether this replica sends replies when it commits. A client needs `r + 1` matching
    /// replies: with `r = 0` one is enough, so only the primary sends it (the client sent its
    /// request there), and the others answer only retransmissions, from their reply tables,
    /// unless `reply_from_every_replica` is set; with `r >= 1` every replica replies, since up
    /// to `r` of them may lie.
    pub(super) fn replies_at_commit(&self) -> bool {
        self.config.sizes().client_reply_quorum > 1
            || self.config.reply_from_every_replica
            || self.is_primary()
    }
}
