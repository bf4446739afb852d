//! State transfer, for a backup that diverged from a committed batch, missed batches, or
//! restarted empty. It rolls back to its last committed version and fetches the state of the
//! latest committed batch it heard of from the primary, with the same messages and execution
//! commands as the asynchronous replica. In the crash model the primary's `Commit` is the
//! agreed token: the backup accepts the primary's roots only if they hash to it, and the state
//! only if it produces those roots. Either replica serves committed versions it holds.

use super::{PbReplica, Transfer};
use crate::exec_side::{ExecCommand, StateReplyCheck};
use crate::message::{Message, Roots, StateReply};
use crate::time::Time;
use eve_exec::Token;
use eve_state::{Chunk, ChunkRequest};
use eve_types::BatchSeq;

impl PbReplica {
    /// Backup: starts fetching the state of `target`, whose committed token is `token`.
    pub(super) fn start_transfer(&mut self, now: Time, target: BatchSeq, token: Token) {
        assert!(!self.is_primary(), "the primary's state is the reference");
        if self.transfer.is_some() {
            return;
        }
        self.counters.state_transfers += 1;
        self.gap_deadline = None;
        let committed = self.committed;
        self.rollback_to(committed);
        self.transfer = Some(Transfer {
            target,
            token,
            deadline: now,
        });
        self.request_state(now);
    }

    /// Asks again (after a timeout or a failed import), aiming at the latest commit heard,
    /// from the last committed version (a failed import left the state there; the rollback
    /// also cancels a chunked import still in progress).
    pub(super) fn retry_transfer(&mut self, now: Time) {
        let Some(transfer) = self.transfer.as_mut() else {
            return;
        };
        if let Some((target, token)) = self.commit_heard
            && target > transfer.target
        {
            transfer.target = target;
            transfer.token = token;
        }
        let committed = self.committed;
        self.rollback_to(committed);
        self.request_state(now);
    }

    fn request_state(&mut self, now: Time) {
        let deadline = now.plus_ms(self.config.backup_timeout_ms);
        let base = Some(self.committed);
        let transfer = self.transfer.as_mut().expect("a transfer is in progress");
        transfer.deadline = deadline;
        let target = transfer.target;
        self.send_to_peer(now, Message::StateRequest { target, base });
    }

    /// Whether this replica holds committed version `version` with its roots.
    fn holds(&self, version: BatchSeq) -> Option<Roots> {
        let held = version >= self.stable && version <= self.committed;
        self.roots.get(&version).copied().filter(|_| held)
    }

    pub(super) fn on_state_request(&mut self, now: Time, target: BatchSeq, base: Option<BatchSeq>) {
        match self.holds(target) {
            Some(roots) if base.is_none_or(|b| b <= target) => self.exec(ExecCommand::ServeState {
                to: self.peer(),
                target,
                base,
                roots,
            }),
            _ => {
                let reply = Box::new(StateReply::NotHeld { target });
                self.send_to_peer(now, Message::StateReply(reply));
            }
        }
    }

    pub(super) fn on_chunk_request(&mut self, now: Time, request: ChunkRequest) {
        if self.holds(request.version).is_some() {
            let to = self.peer();
            self.exec(ExecCommand::ServeChunk { to, request });
        } else {
            let reply = Box::new(StateReply::NotHeld {
                target: request.version,
            });
            self.send_to_peer(now, Message::StateReply(reply));
        }
    }

    pub(super) fn on_state_reply(&mut self, now: Time, reply: StateReply) {
        let Some(transfer) = &self.transfer else {
            self.counters.drops.count("state-reply-without-transfer");
            return;
        };
        let (target, token, epoch, peer) =
            (transfer.target, transfer.token, self.epoch, self.peer());
        match reply.check(target, token, Some(self.committed), epoch, peer) {
            StateReplyCheck::Import(command) => self.exec(command),
            StateReplyCheck::NotHeld(asked) if asked == target => {
                // The primary moved its checkpoint past the target: aim at a later commit
                // if one was heard, else wait for the retry timer.
                self.counters.state_transfer_failures += 1;
                if self.commit_heard.is_some_and(|(heard, _)| heard > target) {
                    self.retry_transfer(now);
                }
            }
            _ => {
                // An answer to an earlier request, or roots that do not hash to the committed
                // token (impossible from a correct primary): the retry timer asks again.
                self.counters
                    .drops
                    .count("state-reply-not-matching-transfer");
            }
        }
    }

    pub(super) fn on_chunk(&mut self, chunk: Chunk) {
        if self.transfer.is_none() {
            self.counters.drops.count("chunk-without-transfer");
            return;
        }
        let (epoch, peer) = (self.epoch, self.peer());
        self.exec(ExecCommand::ImportChunk { epoch, peer, chunk });
    }

    pub(super) fn on_state_applied(
        &mut self,
        now: Time,
        epoch: u64,
        target: BatchSeq,
        roots: Roots,
        ok: bool,
    ) {
        if epoch != self.epoch || self.transfer.as_ref().is_none_or(|t| t.target != target) {
            self.counters.drops.count("stale-state-transfer");
            return;
        }
        if !ok {
            self.counters.state_transfer_failures += 1;
            self.retry_transfer(now);
            return;
        }
        let transfer = self.transfer.take().expect("checked above");
        assert_eq!(
            roots.token(target),
            transfer.token,
            "a state transfer lands only on the committed token"
        );
        self.counters.state_transfers_completed += 1;
        self.recovering = false;
        self.committed = target;
        self.executing = target;
        self.roots.insert(target, roots);
        self.remember_token(target, transfer.token);
        self.slots.retain(|&s, _| s > target);
        self.agreed.retain(|&s, _| s > target);
        if self.commit_heard.is_some_and(|(heard, _)| heard <= target) {
            self.commit_heard = None;
        }
        self.execute_ready();
        self.try_commit_backup(now);
    }
}
