//! Changing view. A verifier that gives up on the current view sends `ViewChange` with its
//! last committed batch and the tokens it is locked on (sent `Commit` for) above it. The
//! leader of the new view (`view mod n_ver`) waits for a verifier quorum of them and announces
//! `NewView`: the view starts after the highest batch that any of them committed or locked
//! (a batch committed anywhere was locked by a commit quorum, which every view-change quorum
//! meets). Verifiers then tell execution replicas, which roll back to that batch and re-execute
//! what follows, sequentially first.

use super::{Changing, Verifier, ViewChangeVote};
use crate::limits::FUTURE_VIEWS_MAX;
use crate::message::Message;
use crate::node::NodeId;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, ReplicaId, VerifierId, View};

impl Verifier {
    pub(super) fn on_suspect(&mut self, now: Time, from: ReplicaId, view: View) {
        if view != self.view || self.changing.is_some() {
            return;
        }
        let suspects = self.suspects.entry(view).or_default();
        suspects.insert(from);
        // r + 1 suspicions: at least one comes from a correct replica.
        if suspects.len() > self.sizes.client_reply_quorum - 1 {
            let next = self.view.next();
            self.start_view_change(now, next);
        }
    }

    /// Gives up on the current view and asks for `target`.
    pub(super) fn start_view_change(&mut self, now: Time, target: View) {
        if self.changing.as_ref().is_some_and(|c| c.target >= target) || target <= self.view {
            return;
        }
        self.counters.view_changes_started += 1;
        self.changing = Some(Changing {
            target,
            deadline: now.plus_ms(2 * self.config.verify_timeout_ms),
        });
        let mut locked = Vec::new();
        let mut seq = self.committed.next();
        while let Some(token) = self.slots.get(&seq).and_then(|s| s.sent_commit) {
            locked.push((seq, token));
            seq = seq.next();
        }
        self.send_verifiers(Message::ViewChange {
            new_view: target,
            committed: (self.committed, self.committed_token),
            locked,
        });
    }

    pub(super) fn on_view_change(
        &mut self,
        now: Time,
        from: VerifierId,
        new_view: View,
        vote: ViewChangeVote,
    ) {
        if new_view <= self.view {
            // A latecomer: if this verifier led the current view in, repeat the announcement.
            if new_view == self.view && self.leader(new_view) == self.id {
                if let Some(announced) = self.announced.clone() {
                    self.send(NodeId::Verifier(from), announced);
                }
            }
            return;
        }
        if !self.view_change_votes.contains_key(&new_view)
            && self.view_change_votes.len() >= FUTURE_VIEWS_MAX
        {
            self.counters.drops.count("too-many-future-views");
            return;
        }
        let votes = self.view_change_votes.entry(new_view).or_default();
        votes.insert(from, vote);
        let count = votes.len();
        // Join a view change that r + 1 verifiers asked for: one of them is correct.
        if count > self.sizes.client_reply_quorum - 1 {
            self.start_view_change(now, new_view);
        }
        if count >= self.sizes.verifier_quorum && self.leader(new_view) == self.id {
            self.announce_new_view(new_view);
        }
    }

    fn leader(&self, view: View) -> VerifierId {
        VerifierId((view.0 % self.sizes.n_ver as u64) as u32)
    }

    fn announce_new_view(&mut self, view: View) {
        if self
            .announced
            .as_ref()
            .is_some_and(|m| matches!(m, Message::NewView { view: v, .. } if *v >= view))
        {
            return;
        }
        let votes = &self.view_change_votes[&view];
        let (mut start, mut token) = votes
            .values()
            .map(|v| v.committed)
            .max_by_key(|(seq, _)| *seq)
            .expect("a quorum is not empty");
        loop {
            let next = start.next();
            // Every token locked for `next` by a voter; with crash faults there is at most one.
            let locked: std::collections::BTreeSet<Token> = votes
                .values()
                .flat_map(|v| v.locked.iter())
                .filter(|(seq, _)| *seq == next)
                .map(|(_, t)| *t)
                .collect();
            match locked.first() {
                Some(&t) => {
                    start = next;
                    token = t;
                }
                None => break,
            }
        }
        let msg = Message::NewView { view, start, token };
        self.announced = Some(msg.clone());
        self.send_verifiers(msg);
    }

    pub(super) fn on_new_view(
        &mut self,
        from: VerifierId,
        view: View,
        start: BatchSeq,
        token: Token,
    ) {
        if view <= self.view || from != self.leader(view) {
            self.counters
                .drops
                .count("new-view-stale-or-not-from-leader");
            return;
        }
        self.view = view;
        self.changing = None;
        if start >= self.committed {
            self.committed = start;
            self.committed_token = token;
        } else {
            self.counters.drops.count("new-view-below-committed");
        }
        self.slots.clear();
        self.view_change_votes.retain(|&v, _| v > view);
        self.suspects.retain(|&v, _| v >= view);
        self.counters.views_entered += 1;
        self.send_replicas(Message::Verified {
            view,
            seq: start,
            token,
            sequential: true,
        });
    }
}
