//! Catching up with peers. Votes between verifiers travel once; when some are lost, a verifier
//! can be left with a batch it cannot commit although its peers did, and without new batches
//! nothing would ever tell it. So a batch that does not commit in time first makes the verifier
//! ask its peers ([`Message::Lagging`]); each answers with `Verified` for the batches it
//! committed since and repeats its own votes of the view. `r + 1` matching `Verified` for a
//! batch prove it committed (at least one comes from a correct verifier, which saw a commit
//! quorum); a batch committed once stays committed in every later view (`view_change.rs`), so
//! the view they were committed in does not matter. Only if the batch is still not committed
//! half a timeout later does the verifier give up on the view.
//!
//! With `r >= 1` peers answer with the commit certificates of those batches instead
//! ([`Message::Certified`]): one proves the commit on its own, and the verifier needs it to
//! prove its own last committed batch in a later view change.

use super::Verifier;
use crate::certificate::{Certificate, Round};
use crate::limits::SEQ_WINDOW;
use crate::message::{Lock, Message};
use crate::node::NodeId;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, VerifierId, View};

impl Verifier {
    /// The commit timer fired for the batches in `late`. Returns `true` if the verifier asked
    /// its peers (the first expiry for one of them), `false` if it should change view.
    pub(super) fn ask_peers_first(&mut self, now: Time, late: &[BatchSeq]) -> bool {
        if late.iter().all(|seq| self.slots[seq].queried) {
            return false;
        }
        // Half a timeout more: a verifier that is merely behind hears back within it.
        let restart = now.minus_ms(self.config.verify_timeout_ms / 2);
        for seq in late {
            let slot = self.slots.get_mut(seq).expect("late slots exist");
            slot.queried = true;
            slot.first_seen = Some(restart);
        }
        self.ask_peers();
        true
    }

    /// `from` sent a token or vote of this view for a batch beyond this verifier's window.
    /// The window holds no slot for it, so nothing of it would ever time out here: a verifier
    /// left more than a window behind (cut off while the others went on, its messages lost
    /// rather than delayed) would stay behind for good, every token and vote it hears beyond
    /// its window. `r + 1` such nodes (at least one correct) prove that it is behind: it asks
    /// its peers, at most once per half a commit timeout, and their answers carry it to their
    /// last committed batch (`on_vouch`, `on_certified`: beyond the window it jumps there).
    pub(super) fn heard_beyond_window(&mut self, now: Time, from: NodeId) {
        self.beyond_window_from.insert(from);
        if self.beyond_window_from.len() < self.sizes.client_reply_quorum {
            return;
        }
        let pause = self.config.verify_timeout_ms / 2;
        if self
            .window_asked_at
            .is_some_and(|at| now < at.plus_ms(pause))
        {
            return;
        }
        self.window_asked_at = Some(now);
        self.beyond_window_from.clear();
        self.counters.left_a_window_behind += 1;
        self.ask_peers();
    }

    /// Asks every peer what committed after this verifier's last committed batch.
    pub(super) fn ask_peers(&mut self) {
        self.counters.catch_up_queries += 1;
        let msg = Message::Lagging {
            view: self.view,
            committed: self.committed,
        };
        for v in (0..self.sizes.n_ver as u32).map(VerifierId) {
            if v != self.id {
                self.send(NodeId::Verifier(v), msg.clone());
            }
        }
    }

    /// A peer is behind: tell it what was committed after its last committed batch, and repeat
    /// this verifier's votes of the peer's view.
    pub(super) fn answer_lagging(&mut self, peer: VerifierId, view: View, after: BatchSeq) {
        let to = NodeId::Verifier(peer);
        // From `after` on: the peer's last committed batch may be the start of its view,
        // which it must see committed again in the view.
        let committed: Vec<(BatchSeq, Token, Option<Certificate>)> = self
            .recent
            .range(after..)
            .map(|(s, (t, c))| (*s, *t, c.clone()))
            .collect();
        for (seq, token, cert) in committed {
            let msg = match cert {
                Some(cert) => Message::Certified(Box::new(cert)),
                None if self.proves() => continue,
                None => Message::Verified {
                    view: self.view,
                    seq,
                    token,
                    sequential: false,
                },
            };
            self.send(to, msg);
        }
        if view != self.view || self.changing.is_some() {
            return;
        }
        let mut sent: Vec<(Round, Lock)> = self
            .slots
            .iter()
            .filter(|(seq, _)| **seq >= after)
            .flat_map(|(&seq, slot)| {
                let vote = move |token| Lock { view, seq, token };
                let prepare = slot.sent_prepare.map(|t| (Round::Prepare, vote(t)));
                let commit = slot.sent_commit.map(|t| (Round::Commit, vote(t)));
                prepare.into_iter().chain(commit)
            })
            .collect();
        // With `r = 0` the start of the view, once opened here, is known only by its votes
        // (with `r >= 1` its commit certificate went out above): repeat this verifier's.
        if let Some((entered, start, token)) = self.entered
            && entered == view
            && start >= after
            && !self.proves()
            && !self.slots.contains_key(&start)
        {
            sent.push((
                Round::Commit,
                Lock {
                    view,
                    seq: start,
                    token,
                },
            ));
        }
        if !self.may_vote() {
            return;
        }
        let votes: Vec<Message> = sent
            .into_iter()
            .map(|(round, vote)| self.signed_vote(round, vote))
            .collect();
        for msg in votes {
            self.send(to, msg);
        }
    }

    /// A peer says `seq` committed with `token`. With `r + 1` such words the verifier takes it
    /// as committed: in order if it lies within its window, by jumping there otherwise.
    pub(super) fn on_vouch(&mut self, now: Time, from: VerifierId, seq: BatchSeq, token: Token) {
        if self.proves() {
            // Words without proof: with `r >= 1` only a certificate counts.
            self.counters.drops.count("vouch-without-certificate");
            return;
        }
        if seq <= self.committed {
            return;
        }
        if self.opening.is_some_and(|(start, _)| start == seq) {
            // The start opens this view only once it is committed in this view: the peer may
            // have committed it in an older one (see `begin_opening`). Peers repeat their
            // votes for the start instead.
            self.counters
                .drops
                .count("vouch-for-the-start-of-an-opening-view");
            return;
        }
        let voters = self
            .vouches
            .entry(seq)
            .or_default()
            .entry(token)
            .or_default();
        voters.insert(from);
        let proven = voters.len() >= self.sizes.client_reply_quorum;
        // Bounded: only the highest batches vouched for are kept.
        while self.vouches.len() > 2 * SEQ_WINDOW as usize {
            self.vouches.pop_first();
        }
        if !proven {
            return;
        }
        self.counters.batches_caught_up += 1;
        if seq.0 <= self.committed.0 + SEQ_WINDOW {
            let slot = self.slots.entry(seq).or_default();
            if slot.committed.is_none() {
                slot.committed = Some(token);
            }
            self.announce_commits();
        } else {
            self.jump_to(seq, token, None);
        }
        // The next batch's tokens may have waited for this one's.
        self.evaluate_next(now, seq);
        let committed = self.committed;
        self.vouches.retain(|&s, _| s > committed);
    }

    /// Takes `seq`, committed with `token`, as the last committed batch, skipping the batches
    /// before it (too far behind to hold their slots; execution replicas catch up by state
    /// transfer).
    fn jump_to(&mut self, seq: BatchSeq, token: Token, cert: Option<Certificate>) {
        self.settle_committed(seq, token, cert);
        // Slots just above may have been waiting for this one.
        self.announce_commits();
    }

    /// A peer's commit certificate (with `r >= 1`): the batch committed, whoever says so.
    pub(super) fn on_certified(&mut self, now: Time, certificate: Certificate) {
        if !self.proves() {
            self.counters.drops.count("unexpected-message");
            return;
        }
        let Lock { view, seq, token } = certificate.vote;
        let opening = self.opening.is_some_and(|(start, _)| start == seq);
        if opening && view != self.view {
            // The start committed in an older view, but it opens this view only once it is
            // committed in this one: then this verifier's claims are of this view, and a lock
            // of an older view above the start, which replicas gave up when they followed this
            // view, can never again outrank them (seed 323 of `--mode 1,1`).
            self.counters
                .drops
                .count("certificate-of-the-start-from-an-older-view");
            return;
        }
        if seq <= self.committed && !opening {
            return;
        }
        if self.check_commit(&certificate).is_err() {
            self.refused("certificate-refused");
            return;
        }
        if self
            .opening
            .is_some_and(|(start, t)| start == seq && t != token)
        {
            // Two committed tokens for one batch: more faulty verifiers than the model allows.
            self.counters
                .drops
                .count("certificate-contradicts-view-start");
            return;
        }
        let beyond = self.beyond_window(seq);
        self.counters.batches_caught_up += 1;
        if beyond {
            self.jump_to(seq, token, Some(certificate));
            self.evaluate_next(now, seq);
            return;
        }
        let Some(slot) = self.slot(seq) else {
            // Below the start of this view: the start covers it.
            return;
        };
        if slot.committed.is_none() {
            slot.committed = Some(token);
            slot.commit_cert = Some(certificate);
        }
        self.on_slot_committed(now, seq);
    }
}
