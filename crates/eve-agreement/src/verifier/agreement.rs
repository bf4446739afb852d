//! Agreement on a batch's token: a token that reaches the token quorum (`max(u, r) + 1`
//! matching tokens from execution replicas) is prepared and committed among verifiers with
//! quorum `u + r + 1` (with `r = 0`, a single commit round: crash faults cannot equivocate), and
//! committed batches are announced to execution replicas in order.

use super::{VSlot, Verifier};
use crate::certificate::{Certificate, Round};
use crate::limits::SEQ_WINDOW;
use crate::message::{Lock, Message};
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, ReplicaId, Signature, VerifierId, View};

impl Verifier {
    pub(super) fn on_verify(
        &mut self,
        now: Time,
        from: ReplicaId,
        view: View,
        seq: BatchSeq,
        token: Token,
        prev: Token,
    ) {
        let heard = &mut self.tokens_heard[from.0 as usize];
        *heard = (*heard).max(seq);
        if seq <= self.committed {
            // A replica that missed `Verified` repeats its token: repeat the answer.
            if let Some(&(agreed, _)) = self.recent.get(&seq) {
                let msg = Message::Verified {
                    view: self.view,
                    seq,
                    token: agreed,
                    sequential: false,
                };
                self.send(crate::node::NodeId::Replica(from), msg);
            }
            return;
        }
        if view < self.view && self.changing.is_none() {
            // The replica missed the view change: tell it.
            self.counters.drops.count("verify-of-an-older-view");
            self.tell_where_we_stand(from);
            return;
        }
        if view != self.view || self.changing.is_some() {
            self.counters.drops.count("verify-of-another-view");
            return;
        }
        if self.beyond_window(seq) {
            self.heard_beyond_window(now, crate::node::NodeId::Replica(from));
        }
        let reply_quorum = self.sizes.client_reply_quorum;
        let Some(slot) = self.slot(seq) else {
            return;
        };
        match slot.tokens.get(&from) {
            Some(&(first_prev, first)) if (first_prev, first) == (prev, token) => return,
            // Executed again on another version (it rolled back): the new token replaces the
            // old, one vote per replica still.
            Some(&(first_prev, _)) if first_prev != prev => {}
            Some(_) => {
                self.counters.drops.count("replica-changed-its-token");
                return;
            }
            None => {}
        }
        slot.tokens.insert(from, (prev, token));
        // The commit timer starts once `r + 1` replicas sent a token: then at least one
        // correct replica executed the batch. Fewer could all be lying about a batch nobody
        // ordered, and a view change every `verify_timeout_ms` would be theirs to call.
        if slot.tokens.len() >= reply_quorum {
            slot.first_seen.get_or_insert(now);
        }
        self.evaluate_tokens(now, seq);
    }

    /// The slot of `seq`, unless it is committed or beyond the window (the start of the view
    /// while it is committed again in it, whose slot exists from the view's entry on, always).
    pub(super) fn slot(&mut self, seq: BatchSeq) -> Option<&mut VSlot> {
        if self.opening.is_some_and(|(start, _)| start == seq) {
            return self.slots.get_mut(&seq);
        }
        if seq <= self.window_floor() {
            return None;
        }
        if self.beyond_window(seq) {
            self.counters.drops.count("beyond-window");
            return None;
        }
        Some(self.slots.entry(seq).or_default())
    }

    /// The batch the window of slots starts after: the last committed one, or the start of
    /// the view while it is committed again in it.
    fn window_floor(&self) -> BatchSeq {
        self.opening
            .map_or(self.committed, |(start, _)| start.max(self.committed))
    }

    /// Whether `seq` lies beyond the [`SEQ_WINDOW`] batches this verifier keeps slots for.
    pub(super) fn beyond_window(&self, seq: BatchSeq) -> bool {
        seq.0 > self.window_floor().0 + SEQ_WINDOW
    }

    /// The token this verifier settled on for `seq`, if any: committed, locked, or prepared.
    fn settled_token(&self, seq: BatchSeq) -> Option<Token> {
        if seq == self.committed {
            return Some(self.committed_token);
        }
        let slot = self.slots.get(&seq)?;
        slot.committed.or(slot.sent_commit).or(slot.sent_prepare)
    }

    /// `seq` got its settled token: the next batch's tokens, which may have waited for it,
    /// can be judged now.
    pub(super) fn evaluate_next(&mut self, now: Time, seq: BatchSeq) {
        let next = seq.next();
        if self.slots.contains_key(&next) {
            self.evaluate_tokens(now, next);
        }
    }

    /// Judges the tokens of `seq`. Only tokens executed on the version this verifier settled
    /// on for `seq - 1` count: a replica that executed ahead on a version that lost sends a
    /// token of a state no correct replica keeps, and with a lying replica's echo it could
    /// reach the token quorum. Until the previous batch is settled the tokens wait.
    fn evaluate_tokens(&mut self, now: Time, seq: BatchSeq) {
        let (n_exec, token_quorum) = (self.sizes.n_exec, self.sizes.token_quorum);
        let Some(base) = seq.prev().and_then(|prev| self.settled_token(prev)) else {
            return;
        };
        let slot = self.slots.get(&seq).expect("evaluated slots exist");
        if slot.sent_prepare.is_some() || slot.sent_commit.is_some() {
            return;
        }
        let mut counts: std::collections::BTreeMap<Token, usize> = Default::default();
        for (prev, token) in slot.tokens.values() {
            if *prev == base {
                *counts.entry(*token).or_default() += 1;
            }
        }
        let best = counts
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(t, n)| (*t, *n));
        // A token executed on another version may still be replaced (the replica rolls back
        // and executes the batch again on the agreed one): it counts as missing.
        let missing = n_exec - counts.values().sum::<usize>();
        match best {
            Some((_, n)) if n >= token_quorum && !self.may_vote() => {
                // Recovered from a restart: this verifier may have voted in this view before.
                self.counters
                    .drops
                    .count("no-vote-in-a-view-voted-before-restart");
            }
            Some((token, n)) if n >= token_quorum => {
                let (view, two_rounds) = (self.view, self.config_r() > 0);
                let slot = self.slots.get_mut(&seq).expect("exists");
                let round = if two_rounds {
                    slot.sent_prepare = Some(token);
                    Round::Prepare
                } else {
                    slot.sent_commit = Some(token);
                    Round::Commit
                };
                let vote = self.signed_vote(round, Lock { view, seq, token });
                self.send_verifiers(vote);
                self.evaluate_next(now, seq);
            }
            Some((_, n)) if n + missing < token_quorum => {
                // No token can reach the quorum: the replicas diverged beyond repair by state
                // transfer. Re-execute sequentially in a new view.
                self.counters.no_quorum += 1;
                let next = self.view.next();
                self.start_view_change(now, next);
            }
            _ => {}
        }
    }

    /// Keeps the tokens (and certificates) of the latest `SEQ_WINDOW` committed batches.
    pub(super) fn remember(&mut self, seq: BatchSeq, token: Token, cert: Option<Certificate>) {
        self.recent.insert(seq, (token, cert));
        while self.recent.len() > SEQ_WINDOW as usize {
            self.recent.pop_first();
        }
    }

    fn config_r(&self) -> usize {
        self.sizes.client_reply_quorum - 1
    }

    pub(super) fn on_prepare(
        &mut self,
        now: Time,
        from: VerifierId,
        vote: Lock,
        signature: Option<Signature>,
    ) {
        let Some(voters) = self.record_vote(now, Round::Prepare, from, vote, signature) else {
            return;
        };
        let may_vote = self.may_vote();
        let proves = self.proves();
        let Lock { seq, token, .. } = vote;
        let slot = self
            .slots
            .get_mut(&seq)
            .expect("a recorded vote has its slot");
        if voters >= self.sizes.verifier_quorum && slot.sent_commit.is_none() && may_vote {
            slot.sent_commit = Some(token);
            if proves {
                let lock = Self::certificate(Round::Prepare, vote, &slot.prepares[&token]);
                self.raise_lock(lock);
            }
            let commit = self.signed_vote(Round::Commit, vote);
            self.send_verifiers(commit);
            self.evaluate_next(now, seq);
        }
    }

    pub(super) fn on_commit(
        &mut self,
        now: Time,
        from: VerifierId,
        vote: Lock,
        signature: Option<Signature>,
    ) {
        let Some(voters) = self.record_vote(now, Round::Commit, from, vote, signature) else {
            return;
        };
        let proves = self.proves();
        let Lock { seq, token, .. } = vote;
        let slot = self
            .slots
            .get_mut(&seq)
            .expect("a recorded vote has its slot");
        if voters >= self.sizes.verifier_quorum && slot.committed.is_none() {
            slot.committed = Some(token);
            if proves {
                slot.commit_cert = Some(Self::certificate(
                    Round::Commit,
                    vote,
                    &slot.commits[&token],
                ));
            }
            // A commit quorum of this view, seen here: the view is making progress.
            self.progressed_at = Some(now);
            self.on_slot_committed(now, seq);
        }
    }

    /// The slot of `seq` just committed: announce it (and what it unblocks), or open the view
    /// if it is the view's start.
    pub(super) fn on_slot_committed(&mut self, now: Time, seq: BatchSeq) {
        if self.opening.is_some_and(|(start, _)| start == seq) {
            self.open_view();
        } else {
            self.announce_commits();
        }
        self.evaluate_next(now, seq);
    }

    /// Records `from`'s vote of `round` for `vote`; returns how many verifiers voted so, or
    /// `None` if the vote does not count (another view, a view change under way, a batch
    /// committed or beyond the window, a vote not signed by its sender with `r >= 1`). `r + 1`
    /// votes start the commit timer: a correct verifier among them saw the token quorum, so
    /// the batch is real.
    fn record_vote(
        &mut self,
        now: Time,
        round: Round,
        from: VerifierId,
        vote: Lock,
        signature: Option<Signature>,
    ) -> Option<usize> {
        if vote.view > self.view {
            self.on_vote_of_a_later_view(now, from, vote.view);
        }
        if vote.view != self.view || self.changing.is_some() {
            self.counters.drops.count(match round {
                Round::Prepare => "prepare-of-another-view",
                Round::Commit => "commit-of-another-view",
            });
            return None;
        }
        if !self.vote_is_signed(from, round, &vote, signature.as_ref()) {
            return None;
        }
        if self.beyond_window(vote.seq) {
            self.heard_beyond_window(now, crate::node::NodeId::Verifier(from));
        }
        let real = self.sizes.client_reply_quorum;
        let slot = self.slot(vote.seq)?;
        let votes = match round {
            Round::Prepare => &mut slot.prepares,
            Round::Commit => &mut slot.commits,
        };
        let voters = votes.entry(vote.token).or_default();
        voters.insert(from, signature);
        let count = voters.len();
        if count >= real {
            slot.first_seen.get_or_insert(now);
        }
        Some(count)
    }

    /// Announces committed batches to execution replicas, in order without gaps.
    /// The start of a view, while it is committed again in the view, is not announced here:
    /// [`open_view`](Self::open_view) does.
    pub(super) fn announce_commits(&mut self) {
        loop {
            let seq = self.committed.next();
            if self.opening.is_some_and(|(start, _)| start == seq) {
                return;
            }
            let Some((token, cert)) = self
                .slots
                .get_mut(&seq)
                .and_then(|slot| Some((slot.committed?, slot.commit_cert.take())))
            else {
                return;
            };
            self.counters.batches_committed += 1;
            self.settle_committed(seq, token, cert);
        }
    }

    /// Takes `seq`, committed with `token` (proven by `cert` with `r >= 1`), as the last
    /// committed batch (dropping the slots up to it) and tells the execution replicas.
    pub(super) fn settle_committed(
        &mut self,
        seq: BatchSeq,
        token: Token,
        cert: Option<Certificate>,
    ) {
        self.settle(seq, token, cert);
        let view = self.view;
        self.send_replicas(Message::Verified {
            view,
            seq,
            token,
            sequential: false,
        });
    }

    /// Moves the last committed batch to `seq` (dropping the slots up to it). A commit past the
    /// view's start proves the start committed too: the view is open.
    pub(super) fn settle(&mut self, seq: BatchSeq, token: Token, cert: Option<Certificate>) {
        self.slots = self.slots.split_off(&seq.next());
        self.committed = seq;
        self.committed_token = token;
        if let Some(cert) = &cert
            && self.lock_cert.as_ref().is_some_and(|lock| {
                (lock.vote.view, lock.vote.seq) <= (cert.vote.view, cert.vote.seq)
            })
        {
            self.lock_cert = None;
        }
        self.committed_cert = cert.clone();
        self.remember(seq, token, cert);
        if let Some((start, start_token)) = self.opening
            && start < seq
        {
            self.opening = None;
            self.entered = Some((self.view, start, start_token));
        }
    }
}
