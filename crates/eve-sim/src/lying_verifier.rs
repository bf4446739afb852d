//! What a Byzantine verifier sends instead of what its correct logic would. It holds its own
//! signing secret (so its lies are signed, as a real faulty verifier's would be) and nobody
//! else's: every certificate it forges carries signatures that are not its peers'.

use crate::scenario::ByzantineVerifier;
use eve_agreement::auth::KeyedHashVerifierAuth;
use eve_agreement::certificate::{
    Certificate, Claims, Round, VerifierAuth, view_change_payload, vote_payload,
};
use eve_agreement::{Lock, Message, NodeId, RecoveryState, ViewChangeProof};
use eve_exec::Token;
use eve_types::{BatchSeq, Digest, VerifierId, View};

/// The token a lying verifier votes for: one nobody executed.
const WRONG: Token = Token(Digest([0xbd; 32]));

/// A Byzantine verifier: its kind, its identity, its secret and the cluster it signs in.
pub struct LyingVerifier<'a> {
    /// How it lies.
    pub kind: ByzantineVerifier,
    /// Which verifier it is.
    pub me: VerifierId,
    /// Its own signing secret.
    pub auth: &'a KeyedHashVerifierAuth,
    /// The cluster id it signs under.
    pub cluster: Digest,
    /// Verifiers in the cluster.
    pub n_ver: u32,
}

impl LyingVerifier<'_> {
    /// What it sends to `to` instead of `msg` (nothing, for `None`), and whether that is a
    /// lie.
    pub fn lie(&self, to: NodeId, msg: Message) -> Option<(Message, bool)> {
        // An equivocating verifier lies to the verifiers and replicas of odd number.
        let odd = match to {
            NodeId::Verifier(v) => v.0 % 2 == 1,
            NodeId::Replica(r) => r.0 % 2 == 1,
            NodeId::Client(_) => false,
        };
        let kind = self.kind;
        let lies = match kind {
            ByzantineVerifier::WrongVotes => true,
            ByzantineVerifier::Equivocate => odd,
            _ => false,
        };
        Some(match msg {
            Message::Prepare { view, seq, .. } if lies => (
                self.vote(
                    Round::Prepare,
                    Lock {
                        view,
                        seq,
                        token: WRONG,
                    },
                ),
                true,
            ),
            Message::Commit { view, seq, .. } if lies => (
                self.vote(
                    Round::Commit,
                    Lock {
                        view,
                        seq,
                        token: WRONG,
                    },
                ),
                true,
            ),
            Message::Verified {
                view,
                seq,
                sequential,
                ..
            } if lies => (
                Message::Verified {
                    view,
                    seq,
                    token: WRONG,
                    sequential,
                },
                true,
            ),
            Message::ViewChange { new_view, view, .. }
                if kind == ByzantineVerifier::Equivocate && odd =>
            {
                // Reports nothing committed and no lock: an omission, signed.
                (self.view_change(new_view, view, Claims::default()), true)
            }
            Message::ViewChange {
                new_view,
                view,
                committed,
                ..
            } if kind == ByzantineVerifier::ForgeClaims => (
                self.view_change(new_view, view, self.forged(new_view, committed.0)),
                true,
            ),
            Message::RecoverReply { nonce, state } if kind == ByzantineVerifier::ForgeClaims => {
                let claims = self.forged(state.view.next(), state.committed.0);
                let committed = claims.committed_claim();
                let state = RecoveryState {
                    committed: (committed.seq, committed.token),
                    locked: claims.lock_claim().into_iter().collect(),
                    claims: Some(claims),
                    ..*state
                };
                let state = Box::new(state);
                (Message::RecoverReply { nonce, state }, true)
            }
            Message::NewView {
                view, start, proof, ..
            } if kind == ByzantineVerifier::LyingLeader => (
                // A start its proof does not give.
                Message::NewView {
                    view,
                    start: start.next(),
                    token: WRONG,
                    proof,
                },
                true,
            ),
            Message::ViewChange { .. }
            | Message::NewView { .. }
            | Message::Lagging { .. }
            | Message::Certified(_)
                if kind == ByzantineVerifier::WithholdViewChanges =>
            {
                return None;
            }
            Message::Verified {
                sequential: false, ..
            } if kind == ByzantineVerifier::WithholdViewChanges
                && matches!(to, NodeId::Verifier(_)) =>
            {
                // An answer to a lagging peer.
                return None;
            }
            msg => (msg, false),
        })
    }

    /// Its own vote, signed.
    fn vote(&self, round: Round, vote: Lock) -> Message {
        let signature = Some(self.auth.sign(&vote_payload(&self.cluster, round, &vote)));
        let Lock { view, seq, token } = vote;
        match round {
            Round::Prepare => Message::Prepare {
                view,
                seq,
                token,
                signature,
            },
            Round::Commit => Message::Commit {
                view,
                seq,
                token,
                signature,
            },
        }
    }

    /// A `ViewChange` with `claims`, signed.
    fn view_change(&self, new_view: View, view: View, claims: Claims) -> Message {
        let committed = claims.committed_claim();
        let lock = claims.lock_claim();
        let payload = view_change_payload(&self.cluster, new_view, view, &committed, lock.as_ref());
        let signature = self.auth.sign(&payload);
        Message::ViewChange {
            new_view,
            view,
            committed: (committed.seq, committed.token),
            locked: lock.into_iter().collect(),
            proof: Some(Box::new(ViewChangeProof { claims, signature })),
        }
    }

    /// Claims nobody can prove: a batch committed above `committed` in the view before
    /// `new_view`, and a lock in `new_view` (which wins over every real claim), either above every real batch (a start nobody
    /// holds) or below `committed` (a start that would undo committed batches), by the parity
    /// of the view. The certificates carry its own signature once and copies of it in the
    /// others' names.
    fn forged(&self, new_view: View, committed: BatchSeq) -> Claims {
        let lock_seq = if new_view.0.is_multiple_of(2) {
            BatchSeq(committed.0 + 3)
        } else {
            BatchSeq(committed.0.saturating_sub(1).max(1))
        };
        let certificate = |round, vote: Lock| {
            let own = self.auth.sign(&vote_payload(&self.cluster, round, &vote));
            let signers = (0..self.n_ver).map(|v| (VerifierId((self.me.0 + v) % self.n_ver), own));
            Certificate::new(round, vote, signers)
        };
        Claims {
            committed: Some(certificate(
                Round::Commit,
                Lock {
                    view: View(new_view.0.saturating_sub(1)),
                    seq: BatchSeq(committed.0 + 2),
                    token: WRONG,
                },
            )),
            lock: Some(certificate(
                Round::Prepare,
                Lock {
                    view: new_view,
                    seq: lock_seq,
                    token: WRONG,
                },
            )),
        }
    }
}
