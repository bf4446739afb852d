//! Catching up with peers. Votes between verifiers travel once; when some are lost, a verifier
//! can be left with a batch it cannot commit although its peers did, and without new batches
//! nothing would ever tell it. So a batch that does not commit in time first makes the verifier
//! ask its peers ([`Message::Lagging`]); each answers with `Verified` for the batches it
//! committed since and repeats its own votes of the view. `r + 1` matching `Verified` for a
//! batch prove it committed (at least one comes from a correct verifier, which saw a commit
//! quorum); a batch committed once stays committed in every later view (`view_change.rs`), so
//! the view they were committed in does not matter. Only if the batch is still not committed
//! half a timeout later does the verifier give up on the view.

use super::Verifier;
use crate::limits::SEQ_WINDOW;
use crate::message::Message;
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
        true
    }

    /// A peer is behind: tell it what was committed after its last committed batch, and repeat
    /// this verifier's votes of the peer's view.
    pub(super) fn answer_lagging(&mut self, peer: VerifierId, view: View, after: BatchSeq) {
        let to = NodeId::Verifier(peer);
        let committed: Vec<(BatchSeq, Token)> = self
            .recent
            .range(after.next()..)
            .map(|(s, t)| (*s, *t))
            .collect();
        for (seq, token) in committed {
            let msg = Message::Verified {
                view: self.view,
                seq,
                token,
                sequential: false,
            };
            self.send(to, msg);
        }
        if view != self.view || self.changing.is_some() {
            return;
        }
        let votes: Vec<Message> = self
            .slots
            .iter()
            .filter(|(seq, _)| **seq > after)
            .flat_map(|(&seq, slot)| {
                let prepare = slot
                    .sent_prepare
                    .map(|token| Message::Prepare { view, seq, token });
                let commit = slot
                    .sent_commit
                    .map(|token| Message::Commit { view, seq, token });
                prepare.into_iter().chain(commit)
            })
            .collect();
        for msg in votes {
            self.send(to, msg);
        }
    }

    /// A peer says `seq` committed with `token`. With `r + 1` such words the verifier takes it
    /// as committed: in order if it lies within its window, by jumping there otherwise.
    pub(super) fn on_vouch(&mut self, now: Time, from: VerifierId, seq: BatchSeq, token: Token) {
        if seq <= self.committed {
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
            self.jump_to(seq, token);
        }
        // The next batch's tokens may have waited for this one's.
        self.evaluate_next(now, seq);
        let committed = self.committed;
        self.vouches.retain(|&s, _| s > committed);
    }

    /// Takes `seq`, committed with `token`, as the last committed batch, skipping the batches
    /// before it (too far behind to hold their slots; execution replicas catch up by state
    /// transfer).
    fn jump_to(&mut self, seq: BatchSeq, token: Token) {
        self.settle_committed(seq, token);
        // Slots just above may have been waiting for this one.
        self.announce_commits();
    }
}
