//! Verifier certificates (with `r >= 1`). A verifier's word about what it voted counts only on a
//! direct, authenticated channel; what one verifier relays about others (a new view's start, a
//! restarted peer's lessons) must carry proof. So verifiers sign their `Prepare` and `Commit`
//! votes and their `ViewChange` messages, and claims come with certificates:
//!
//! - a *prepared certificate* for a lock: `u + r + 1` signed `Prepare` votes for one token at
//!   one `(view, seq)`; two such for different tokens would share `r + 1` signers, one of them
//!   correct, which prepares once per `(view, seq)`;
//! - a *commit certificate* for a committed batch: `u + r + 1` signed `Commit` votes for one
//!   token at one `(view, seq)`, which is what made the batch committed.
//!
//! The logic knows no cryptography: a [`VerifierAuth`] signs and checks (ed25519 under the keys
//! of the verifiers' certificates in the node, keyed hashes in the simulator).

use crate::message::Lock;
use eve_exec::Token;
use eve_types::{BatchSeq, Digest, QuorumSizes, Signature, VerifierId, View};
use serde::{Deserialize, Serialize};

/// Signs this verifier's statements and checks its peers'.
pub trait VerifierAuth: Send + Sync {
    /// This verifier's signature over `payload`.
    fn sign(&self, payload: &[u8]) -> Signature;
    /// Whether `signature` is `signer`'s over `payload`. A signer whose key is not known (yet)
    /// fails the check.
    fn check(&self, signer: VerifierId, payload: &[u8], signature: &Signature) -> bool;
}

/// The two voting rounds among verifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Round {
    /// A token reached the token quorum here.
    Prepare,
    /// A token reached the prepare quorum here: the voter is locked on it.
    Commit,
}

/// What a verifier signs when it votes: the round, and the token it votes for at `(view, seq)`,
/// in cluster `cluster`.
pub fn vote_payload(cluster: &Digest, round: Round, vote: &Lock) -> Vec<u8> {
    let round = match round {
        Round::Prepare => b'p',
        Round::Commit => b'c',
    };
    let mut payload = b"eve verifier vote\0".to_vec();
    payload.extend_from_slice(&cluster.0);
    payload.push(round);
    payload.extend_from_slice(&vote.view.0.to_le_bytes());
    payload.extend_from_slice(&vote.seq.0.to_le_bytes());
    payload.extend_from_slice(&vote.token.0.0);
    payload
}

/// What a verifier signs when it asks for `new_view`: the view it was in and its two claims.
pub fn view_change_payload(
    cluster: &Digest,
    new_view: View,
    view: View,
    committed: &Lock,
    lock: Option<&Lock>,
) -> Vec<u8> {
    let mut payload = b"eve verifier view change\0".to_vec();
    payload.extend_from_slice(&cluster.0);
    payload.extend_from_slice(&new_view.0.to_le_bytes());
    payload.extend_from_slice(&view.0.to_le_bytes());
    for claim in std::iter::once(committed).chain(lock) {
        payload.extend_from_slice(&claim.view.0.to_le_bytes());
        payload.extend_from_slice(&claim.seq.0.to_le_bytes());
        payload.extend_from_slice(&claim.token.0.0);
    }
    payload
}

/// `u + r + 1` signed votes of one round for one token at one `(view, seq)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The round the votes were cast in.
    pub round: Round,
    /// What they voted for.
    pub vote: Lock,
    /// The voters and their signatures, each voter once.
    pub signatures: Vec<(VerifierId, Signature)>,
}

/// Why a certificate or a signed message does not prove what it claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Votes of the other round.
    #[error("a certificate of the wrong round")]
    WrongRound,
    /// Fewer distinct voters than a verifier quorum (or a voter named twice, one that is not
    /// a verifier, or more votes than there are verifiers).
    #[error("a certificate without a verifier quorum of distinct verifiers")]
    TooFewVoters,
    /// A signature that is not its voter's over the vote.
    #[error("a certificate with a bad signature")]
    BadSignature,
    /// The certificate is for another claim than the message states.
    #[error("a certificate of another claim")]
    OtherClaim,
    /// The message's own signature is not its sender's.
    #[error("a message not signed by its sender")]
    Unsigned,
    /// A message that must carry proof carries none, or carries proof of a shape its claims
    /// do not have.
    #[error("claims without the certificates that prove them")]
    Missing,
}

impl Certificate {
    /// The certificate of `vote` from the signed votes gathered for it.
    pub fn new(
        round: Round,
        vote: Lock,
        signatures: impl IntoIterator<Item = (VerifierId, Signature)>,
    ) -> Self {
        Self {
            round,
            vote,
            signatures: signatures.into_iter().collect(),
        }
    }

    /// Checks that the certificate is of `round` and holds a verifier quorum of distinct
    /// verifiers' valid signatures.
    pub fn check(
        &self,
        auth: &dyn VerifierAuth,
        cluster: &Digest,
        sizes: &QuorumSizes,
        round: Round,
    ) -> Result<(), ProofError> {
        if self.round != round {
            return Err(ProofError::WrongRound);
        }
        if self.signatures.len() > sizes.n_ver {
            // More votes than verifiers: refused before any work is spent on them.
            return Err(ProofError::TooFewVoters);
        }
        let voters: std::collections::BTreeSet<VerifierId> =
            self.signatures.iter().map(|(v, _)| *v).collect();
        if voters.len() != self.signatures.len()
            || voters.len() < sizes.verifier_quorum
            || voters.iter().any(|v| v.0 as usize >= sizes.n_ver)
        {
            return Err(ProofError::TooFewVoters);
        }
        let payload = vote_payload(cluster, round, &self.vote);
        if self
            .signatures
            .iter()
            .all(|(voter, signature)| auth.check(*voter, &payload, signature))
        {
            Ok(())
        } else {
            Err(ProofError::BadSignature)
        }
    }
}

/// The start of every history: batch 0 with the zero token, in view 0. Needs no proof.
pub fn genesis() -> Lock {
    Lock {
        view: View(0),
        seq: BatchSeq(0),
        token: Token(Digest::ZERO),
    }
}

/// A verifier's two claims, with their proof: its last committed batch (with the commit
/// certificate that committed it, none for the genesis) and its highest lock (with its prepared
/// certificate), whichever views they were made in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The commit certificate of the last committed batch; `None` for the genesis.
    pub committed: Option<Certificate>,
    /// The prepared certificate of the lock with the highest `(view, seq)` above it, if any.
    pub lock: Option<Certificate>,
}

impl Claims {
    /// The committed claim: the certificate's vote, or the genesis.
    pub fn committed_claim(&self) -> Lock {
        self.committed.as_ref().map_or_else(genesis, |c| c.vote)
    }

    /// The lock claim.
    pub fn lock_claim(&self) -> Option<Lock> {
        self.lock.as_ref().map(|c| c.vote)
    }

    /// The claim a new view starts after: the one with the highest `(view, seq)` (ties by
    /// token, so that every verifier computes the same). See `docs/PROTOCOL.md`, "Verifier
    /// certificates".
    pub fn highest(&self) -> Lock {
        let committed = self.committed_claim();
        self.lock_claim()
            .into_iter()
            .chain(std::iter::once(committed))
            .max_by_key(|c| (c.view, c.seq, c.token))
            .expect("not empty")
    }

    /// Checks both certificates, and that they are of the rounds their claims need.
    pub fn check(
        &self,
        auth: &dyn VerifierAuth,
        cluster: &Digest,
        sizes: &QuorumSizes,
    ) -> Result<(), ProofError> {
        if let Some(committed) = &self.committed {
            committed.check(auth, cluster, sizes, Round::Commit)?;
        }
        if let Some(lock) = &self.lock {
            lock.check(auth, cluster, sizes, Round::Prepare)?;
        }
        Ok(())
    }

    /// Checks that these claims are the ones a message states: `committed`, and `locked`
    /// (at most one lock with `r >= 1`).
    pub fn state(&self, committed: (BatchSeq, Token), locked: &[Lock]) -> Result<(), ProofError> {
        let claim = self.committed_claim();
        if (claim.seq, claim.token) != committed {
            return Err(ProofError::OtherClaim);
        }
        match (self.lock_claim(), locked) {
            (None, []) => Ok(()),
            (Some(lock), [stated]) if lock == *stated => Ok(()),
            _ => Err(ProofError::OtherClaim),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeyedHashVerifierAuth;
    use eve_types::{ClusterConfig, ReplicationMode};

    fn sizes() -> QuorumSizes {
        let config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 1 });
        config.validate().unwrap().sizes()
    }

    #[test]
    fn a_certificate_needs_a_quorum_of_distinct_valid_signatures_of_its_round() {
        let sizes = sizes();
        let cluster = Digest([1; 32]);
        let auths: Vec<KeyedHashVerifierAuth> = (0..4)
            .map(|v| KeyedHashVerifierAuth::new(9, sizes.n_ver, VerifierId(v)))
            .collect();
        let vote = Lock {
            view: View(2),
            seq: BatchSeq(5),
            token: Token(Digest([7; 32])),
        };
        let sign = |v: usize, round| {
            (
                VerifierId(v as u32),
                auths[v].sign(&vote_payload(&cluster, round, &vote)),
            )
        };
        let good = Certificate::new(
            Round::Prepare,
            vote,
            (0..3).map(|v| sign(v, Round::Prepare)),
        );
        let check = |c: &Certificate, round| c.check(&auths[3], &cluster, &sizes, round);
        assert_eq!(check(&good, Round::Prepare), Ok(()));
        assert_eq!(check(&good, Round::Commit), Err(ProofError::WrongRound));
        let short = Certificate::new(
            Round::Prepare,
            vote,
            (0..2).map(|v| sign(v, Round::Prepare)),
        );
        assert_eq!(check(&short, Round::Prepare), Err(ProofError::TooFewVoters));
        let padded = Certificate::new(
            Round::Prepare,
            vote,
            (0..5).map(|v| sign(v % 4, Round::Prepare)),
        );
        assert_eq!(
            check(&padded, Round::Prepare),
            Err(ProofError::TooFewVoters)
        );
        let twice = Certificate::new(
            Round::Prepare,
            vote,
            [0, 1, 1].map(|v| sign(v, Round::Prepare)),
        );
        assert_eq!(check(&twice, Round::Prepare), Err(ProofError::TooFewVoters));
        let mut moved = good.clone();
        moved.vote.seq = BatchSeq(6);
        assert_eq!(check(&moved, Round::Prepare), Err(ProofError::BadSignature));
        let other_round =
            Certificate::new(Round::Prepare, vote, (0..3).map(|v| sign(v, Round::Commit)));
        assert_eq!(
            check(&other_round, Round::Prepare),
            Err(ProofError::BadSignature),
            "a commit vote is not a prepare vote"
        );
        let mut impostor = good.clone();
        impostor.signatures[2].0 = VerifierId(3);
        assert_eq!(
            check(&impostor, Round::Prepare),
            Err(ProofError::BadSignature)
        );
        assert_eq!(
            good.check(&auths[3], &Digest([2; 32]), &sizes, Round::Prepare),
            Err(ProofError::BadSignature),
            "signed in another cluster"
        );
    }

    #[test]
    fn the_highest_claim_is_the_one_of_the_highest_view_then_batch() {
        let lock = |view, seq, t| Lock {
            view: View(view),
            seq: BatchSeq(seq),
            token: Token(Digest([t; 32])),
        };
        let cert = |round, vote| Certificate::new(round, vote, []);
        let claims = Claims {
            committed: Some(cert(Round::Commit, lock(3, 10, 1))),
            lock: Some(cert(Round::Prepare, lock(2, 12, 2))),
        };
        assert_eq!(
            claims.highest(),
            lock(3, 10, 1),
            "a later view wins over a higher batch"
        );
        let claims = Claims {
            committed: Some(cert(Round::Commit, lock(3, 10, 1))),
            lock: Some(cert(Round::Prepare, lock(3, 11, 2))),
        };
        assert_eq!(claims.highest(), lock(3, 11, 2));
        assert_eq!(Claims::default().highest(), genesis());
    }
}
