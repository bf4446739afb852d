//! Restarting without memory (the recovery protocol of Viewstamped Replication Revisited,
//! adapted to verifiers). The in-memory mode keeps no disk, so a restarted verifier knows
//! nothing of the votes it cast. Voting again in a view it already voted in could lock a second
//! token for one `(view, seq)`, and reporting no locks in a view change could drop a committed
//! batch. So it first asks every peer for its [`RecoveryState`] and waits for a verifier quorum
//! (`u + r + 1`) of fresh answers from others: any commit quorum and any view-change quorum
//! meets that set in a verifier that answered, so the highest view among the answers is at
//! least any view it voted in, and the answers carry every lock a committed batch left. It
//! then adopts the highest committed batch and the reported locks, and casts no `Prepare` or
//! `Commit` in the views it may have voted in; it takes part from the next view change on.
//!
//! With `r >= 1` an answer counts only with the certificates of its committed batch and lock
//! (a lying peer could otherwise hand it a batch nobody committed); it adopts the highest
//! proven committed batch and the highest proven lock.

use super::{Recovery, Verifier};
use crate::message::{Lock, Message, RecoveryState};
use crate::node::NodeId;
use crate::time::Time;
use eve_types::{BatchSeq, VerifierId, View};

impl Verifier {
    /// Whether this verifier may cast `Prepare` and `Commit` votes in its current view: not
    /// while recovering, not in a view it may have voted in before a restart, and not in a
    /// view below one it asked for (its `ViewChange` for that one reported its locks as they
    /// stood; a vote cast afterwards in a lower view would be missing from them).
    pub(super) fn may_vote(&self) -> bool {
        self.recovery.is_none()
            && self.vote_floor.is_none_or(|floor| self.view > floor)
            && self.view >= self.asked
    }

    /// This verifier's locks above its last committed batch: its own in the current view and
    /// those learned when it recovered.
    pub(super) fn locks(&self) -> Vec<Lock> {
        let view = self.view;
        let mut locks: Vec<Lock> = self
            .slots
            .iter()
            .filter_map(|(&seq, slot)| slot.sent_commit.map(|token| Lock { view, seq, token }))
            .chain(self.learned.iter().copied())
            .filter(|lock| lock.seq > self.committed && lock.view == view)
            .collect();
        locks.sort_unstable();
        locks.dedup();
        locks
    }

    /// What this verifier tells a participant that restarted.
    fn recovery_state(&self) -> RecoveryState {
        let view = self.changing.as_ref().map_or(self.view, |c| c.target);
        if self.proves() {
            let claims = self.claims();
            return RecoveryState {
                entered: self.view,
                entered_start: self
                    .entered
                    .filter(|(view, _, _)| *view == self.view)
                    .map(|(_, start, token)| (start, token)),
                view: view.max(self.view),
                committed: (self.committed, self.committed_token),
                locked: claims.lock_claim().into_iter().collect(),
                claims: Some(claims),
            };
        }
        RecoveryState {
            entered: self.view,
            entered_start: self
                .entered
                .filter(|(view, _, _)| *view == self.view)
                .map(|(_, start, token)| (start, token)),
            view: view.max(self.view),
            committed: (self.committed, self.committed_token),
            locked: self.locks(),
            claims: None,
        }
    }

    pub(super) fn answer_recovery(&mut self, to: NodeId, nonce: u64) {
        let state = Box::new(self.recovery_state());
        self.send(to, Message::RecoverReply { nonce, state });
    }

    /// While recovering, only fresh answers from other verifiers count; everything else is
    /// dropped (the sender retransmits).
    pub(super) fn handle_while_recovering(&mut self, now: Time, from: NodeId, msg: Message) {
        let quorum = self.sizes.verifier_quorum;
        let n_ver = self.sizes.n_ver;
        let me = self.id;
        match (from, msg) {
            (NodeId::Verifier(v), Message::RecoverReply { nonce, state })
                if (v.0 as usize) < n_ver && v != me =>
            {
                if self.proves() {
                    let proven = state.claims.as_ref().is_some_and(|claims| {
                        claims.state(state.committed, &state.locked).is_ok()
                            && self.check_claims(claims).is_ok()
                    });
                    if !proven {
                        self.refused("recovery-answer-unproven");
                        return;
                    }
                }
                let recovery = self.recovery.as_mut().expect("called while recovering");
                if nonce != recovery.nonce {
                    self.counters
                        .drops
                        .count("recovery-answer-of-another-incarnation");
                    return;
                }
                recovery.answers.insert(v, *state);
                if recovery.answers.len() >= quorum {
                    self.finish_recovery(now);
                }
            }
            _ => self.counters.drops.count("recovering"),
        }
    }

    /// Asks every other verifier again.
    pub(super) fn recovery_timeout(&mut self, now: Time) {
        let retry_at = now.plus_ms(self.config.verify_timeout_ms);
        let me = self.id;
        let recovery = self.recovery.as_mut().expect("called while recovering");
        recovery.retry_at = retry_at;
        let msg = Message::Recover {
            nonce: recovery.nonce,
        };
        for v in 0..self.sizes.n_ver as u32 {
            if VerifierId(v) != me {
                self.send(NodeId::Verifier(VerifierId(v)), msg.clone());
            }
        }
    }

    fn finish_recovery(&mut self, _now: Time) {
        let Recovery { answers, .. } = self.recovery.take().expect("called while recovering");
        let view = answers.values().map(|a| a.view).max().unwrap_or(View(0));
        let entered = answers.values().map(|a| a.entered).max().unwrap_or(View(0));
        let (seq, token) = answers
            .values()
            .map(|a| a.committed)
            .max_by_key(|(seq, _)| *seq)
            .unwrap_or((BatchSeq(0), self.committed_token));
        if self.proves() {
            // Every answer was checked: take the highest proven commit and lock.
            self.committed_cert = answers
                .values()
                .filter_map(|a| a.claims.as_ref()?.committed.clone())
                .max_by_key(|c| c.vote.seq);
            let locks: Vec<_> = answers
                .values()
                .filter_map(|a| a.claims.as_ref()?.lock.clone())
                .collect();
            for lock in locks {
                self.raise_lock(lock);
            }
        }
        self.view = entered;
        // Where that view starts, so that this verifier can tell replicas that missed the
        // announcement (they need `r + 1` verifiers saying so).
        self.entered = answers
            .values()
            .filter(|a| a.entered == entered)
            .find_map(|a| a.entered_start)
            .map(|(start, token)| (entered, start, token));
        self.vote_floor = Some(view);
        self.committed = seq;
        self.committed_token = token;
        self.remember(seq, token, self.committed_cert.clone());
        let mut learned: Vec<Lock> = answers
            .into_values()
            .filter(|a| a.entered == entered)
            .flat_map(|a| a.locked)
            .filter(|lock| lock.seq > seq && lock.view == entered)
            .collect();
        learned.sort_unstable();
        learned.dedup();
        self.learned = learned;
        self.counters.recoveries += 1;
    }
}
