//! Tokens and commits. The backup sends its token of each executed batch to the primary; the
//! primary commits, in order, every batch whose two tokens match, tells the backup and releases
//! the replies. On a mismatch both roll back to the last committed batch and the primary
//! re-issues the batch to be executed sequentially. Without the backup's token in time the
//! primary goes on alone. The backup commits on the primary's `Commit` when its own token
//! matches, and otherwise catches up by state transfer.

use super::{Executed, PbReplica};
use crate::exec_side::ExecCommand;
use crate::limits::SEQ_WINDOW;
use crate::message::{Message, Roots};
use crate::node::NodeId;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, Reply};

impl PbReplica {
    pub(super) fn on_executed(
        &mut self,
        now: Time,
        epoch: u64,
        seq: BatchSeq,
        roots: Roots,
        token: Token,
        replies: Vec<Reply>,
    ) {
        if epoch != self.epoch {
            self.counters.drops.count("stale-execution-result");
            return;
        }
        let Some(slot) = self.slots.get_mut(&seq) else {
            self.counters.drops.count("execution-result-without-batch");
            return;
        };
        slot.result = Some(Executed { token, replies });
        self.roots.insert(seq, roots);
        self.counters.batches_executed += 1;
        if self.is_primary() {
            self.try_commit_primary(now);
        } else {
            let view = self.view;
            let prev = crate::message::base_token(&self.roots, seq);
            self.send_to_peer(
                now,
                Message::Verify {
                    view,
                    seq,
                    token,
                    prev,
                },
            );
            self.try_commit_backup(now);
        }
    }

    pub(super) fn on_execute_failed(&mut self, now: Time, epoch: u64, seq: BatchSeq) {
        if epoch != self.epoch {
            return;
        }
        // The execution side disagrees with this replica's bookkeeping. A primary has no one
        // to ask and keeps the count. A backup forgets the batch and those after it, and
        // redoes the rest: the gap left is repaired by state transfer once a `Commit` shows
        // it (and the primary, meanwhile, goes on alone).
        self.counters.drops.count("execution-failed");
        if self.is_primary() {
            return;
        }
        self.slots.retain(|&s, _| s < seq);
        let committed = self.committed;
        self.rollback_to(committed);
        self.execute_ready();
        self.watch_gap(now);
    }

    /// Primary: the backup's token for `seq`.
    pub(super) fn on_verify(&mut self, now: Time, seq: BatchSeq, token: Token) {
        if seq <= self.committed {
            // Late, or from a backup catching up after the primary committed alone: a token
            // equal to the committed one shows the backup is in step again.
            if self.committed_tokens.get(&seq) == Some(&token) {
                self.alone = false;
            }
            return;
        }
        if let Some(resync) = self.resync {
            if seq > resync {
                self.counters.drops.count("verify-from-before-rollback");
                return;
            }
            self.resync = None;
        }
        let Some(slot) = self.slots.get_mut(&seq) else {
            self.counters.drops.count("verify-for-unknown-batch");
            return;
        };
        slot.backup_token = Some(token);
        self.try_commit_primary(now);
    }

    /// Primary: commits, in order, every batch it executed whose backup token matches (any
    /// batch it executed, while alone); rolls back on a mismatch; watches a silent backup.
    pub(super) fn try_commit_primary(&mut self, now: Time) {
        let mut waiting = false;
        loop {
            let seq = self.committed.next();
            let Some(slot) = self.slots.get(&seq) else {
                break;
            };
            let Some(mine) = slot.result.as_ref().map(|r| r.token) else {
                break;
            };
            match slot.backup_token {
                Some(theirs) if theirs == mine => {
                    // The backup is in step: stop going alone, restart its clock.
                    self.alone = false;
                    self.backup_deadline = None;
                    self.commit_one(now, seq);
                }
                _ if self.alone => {
                    self.counters.alone_commits += 1;
                    self.commit_one(now, seq);
                }
                None => {
                    waiting = true;
                    break;
                }
                Some(_) if slot.batch.sequential || slot.kept => {
                    // Sequential execution is deterministic, so a backup that still disagrees
                    // is broken; a kept result may be what the old primary committed and
                    // replied. In the crash model the primary's result stands, and the backup
                    // repairs itself by state transfer when the `Commit` contradicts it.
                    self.counters.divergences += 1;
                    self.counters.sequential_divergences += 1;
                    self.commit_one(now, seq);
                }
                Some(_) => {
                    self.diverge(now, seq);
                    return;
                }
            }
        }
        if !waiting {
            self.backup_deadline = None;
        } else if self.backup_deadline.is_none() {
            self.backup_deadline = Some(now.plus_ms(self.config.backup_timeout_ms));
        }
        self.cut_batches(now, false);
    }

    /// Primary: the tokens of `seq` differ. Both sides roll back to the last committed batch;
    /// `seq` is re-issued (same requests and non-deterministic inputs) to be executed
    /// sequentially, and the batches after it are executed again after it.
    fn diverge(&mut self, now: Time, seq: BatchSeq) {
        assert_eq!(seq, self.committed.next(), "batches commit in order");
        self.counters.divergences += 1;
        let committed = self.committed;
        self.rollback_to(committed);
        self.resync = Some(seq);
        self.backup_deadline = None;
        let slot = self
            .slots
            .get_mut(&seq)
            .expect("the diverged batch is held");
        slot.batch.sequential = true;
        let batch = slot.batch.clone();
        self.send_to_peer(now, Message::ExecuteBatch(batch));
        self.execute_ready();
    }

    /// Primary: the backup's token did not come in time: commit without it from now on.
    pub(super) fn go_alone(&mut self, now: Time) {
        self.backup_deadline = None;
        if self.alone || !self.is_primary() {
            return;
        }
        self.alone = true;
        self.resync = None;
        self.counters.alone_periods += 1;
        self.try_commit_primary(now);
    }

    /// Backup: the primary committed `seq` with `token`.
    pub(super) fn on_commit(&mut self, now: Time, seq: BatchSeq, token: Token) {
        if seq <= self.committed {
            if self.committed_tokens.get(&seq).is_some_and(|t| *t != token) {
                // Two different committed histories: outside the crash model (a partition
                // let both replicas commit). Counted; this replica cannot undo a commit.
                self.counters.drops.count("commit-contradicts-committed");
            }
            return;
        }
        if self.commit_heard.is_none_or(|(heard, _)| heard < seq) {
            self.commit_heard = Some((seq, token));
        }
        if seq.0 <= self.committed.0 + SEQ_WINDOW {
            self.agreed.insert(seq, token);
        }
        self.try_commit_backup(now);
    }

    /// Backup: commits up to every batch whose committed token equals its own. Its token for
    /// a batch binds the root before it, so a match also settles the batches below it whose
    /// `Commit` was lost. A mismatch means its state diverged: catch up by state transfer.
    pub(super) fn try_commit_backup(&mut self, now: Time) {
        if self.transfer.is_some() {
            return;
        }
        while let Some((&seq, &token)) = self.agreed.range(self.committed.next()..).next() {
            let Some(mine) = self.slots.get(&seq).and_then(|s| s.result.as_ref()) else {
                break;
            };
            if mine.token != token {
                self.counters.divergences += 1;
                let (target, token) = self.commit_heard.expect("an agreed token was heard");
                self.start_transfer(now, target, token);
                return;
            }
            while self.committed < seq {
                self.commit_one(now, self.committed.next());
            }
        }
        self.watch_gap(now);
    }

    /// Marks `seq` committed with this replica's own result; the primary tells the backup and
    /// releases the replies, the backup only remembers them (for when it becomes primary).
    fn commit_one(&mut self, now: Time, seq: BatchSeq) {
        let slot = self
            .slots
            .remove(&seq)
            .expect("a batch commits only once it was executed");
        let executed = slot
            .result
            .expect("a batch commits only once it was executed");
        self.committed = seq;
        self.counters.batches_committed += 1;
        // Committed in step with the primary: its state is the committed one.
        self.recovering = false;
        self.remember_token(seq, executed.token);
        self.agreed.retain(|&s, _| s > seq);
        if self.commit_heard.is_some_and(|(heard, _)| heard <= seq) {
            self.commit_heard = None;
        }
        if self.resync.is_some_and(|r| r <= seq) {
            self.resync = None;
        }
        for request in &slot.batch.requests {
            self.in_flight.remove(&(request.client, request.request_no));
        }
        let primary = self.is_primary();
        if primary {
            let (view, token) = (self.view, executed.token);
            self.send_to_peer(
                now,
                Message::Commit {
                    view,
                    seq,
                    token,
                    signature: None,
                },
            );
        }
        let replies = primary || self.config.reply_from_every_replica;
        for reply in executed.replies {
            self.remember_reply(reply.clone());
            if replies {
                self.counters.replies_sent += 1;
                let view = self.view;
                self.send(NodeId::Client(reply.client), Message::Reply { view, reply });
            }
        }
        if seq.0.is_multiple_of(self.config.checkpoint_interval) {
            self.exec(ExecCommand::MarkStable { seq });
            self.stable = seq;
            self.roots.retain(|&s, _| s >= seq);
        }
    }

    /// Remembers the token of a committed batch, keeping the last `SEQ_WINDOW` of them.
    pub(super) fn remember_token(&mut self, seq: BatchSeq, token: Token) {
        self.committed_tokens.insert(seq, token);
        while self.committed_tokens.len() as u64 > SEQ_WINDOW {
            self.committed_tokens.pop_first();
        }
    }

    fn remember_reply(&mut self, reply: Reply) {
        self.last_reply.record(reply);
    }

    /// Backup: whether executing the batches it holds reaches the highest commit heard.
    fn commit_reachable(&self) -> bool {
        let Some((target, _)) = self.commit_heard else {
            return true;
        };
        target.0 <= self.committed.0 + SEQ_WINDOW
            && (self.committed.0 + 1..=target.0).all(|s| self.slots.contains_key(&BatchSeq(s)))
    }

    /// Backup: arms the gap timer when a committed batch cannot be reached by executing (a
    /// batch never arrived, or the backup restarted), and clears it otherwise. The delay lets
    /// a late batch arrive before a transfer is started for it.
    pub(super) fn watch_gap(&mut self, now: Time) {
        if self.is_primary() || self.transfer.is_some() || self.commit_reachable() {
            self.gap_deadline = None;
        } else if self.gap_deadline.is_none() {
            self.gap_deadline = Some(now.plus_us(self.heartbeat_interval_us()));
        }
    }

    /// Backup: the gap timer expired; catch up by state transfer if the gap is still there.
    pub(super) fn check_gap(&mut self, now: Time) {
        if self.is_primary() || self.transfer.is_some() || self.commit_reachable() {
            return;
        }
        let (target, token) = self.commit_heard.expect("an unreachable commit was heard");
        self.start_transfer(now, target, token);
    }
}
