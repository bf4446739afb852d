//! Signing and checking (with `r >= 1`; see `certificate.rs`): this verifier signs its votes
//! and view changes, counts a peer's vote only with the peer's valid signature (a vote it
//! counts may end up in a certificate it shows others), and believes a relayed claim only with
//! its certificate.

use super::{Verifier, Voters};
use crate::certificate::{
    Certificate, Claims, ProofError, Round, VerifierAuth, view_change_payload, vote_payload,
};
use crate::message::{Lock, Message, ProvenViewChange, ViewChangeProof};
use eve_types::{Signature, VerifierId, View};

impl Verifier {
    /// Whether verifiers sign and prove (`r >= 1`).
    pub(super) fn proves(&self) -> bool {
        self.sizes.client_reply_quorum > 1
    }

    fn auth(&self) -> &dyn VerifierAuth {
        self.auth.as_deref().expect(
            "a verifier of a cluster with r >= 1 signs its votes: give it a VerifierAuth \
             (Verifier::with_auth)",
        )
    }

    /// This verifier's signature over `payload`, if verifiers sign.
    fn sign(&self, payload: &[u8]) -> Option<Signature> {
        self.proves().then(|| self.auth().sign(payload))
    }

    /// This verifier's vote of `round` for `vote`, signed if verifiers sign.
    pub(super) fn signed_vote(&self, round: Round, vote: Lock) -> Message {
        let signature = self.sign(&vote_payload(&self.config.cluster_id, round, &vote));
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

    /// Whether `from`'s vote counts: always with `r = 0`; with `r >= 1` only with its valid
    /// signature.
    pub(super) fn vote_is_signed(
        &mut self,
        from: VerifierId,
        round: Round,
        vote: &Lock,
        signature: Option<&Signature>,
    ) -> bool {
        if !self.proves() {
            return true;
        }
        let payload = vote_payload(&self.config.cluster_id, round, vote);
        let valid = signature.is_some_and(|s| self.auth().check(from, &payload, s));
        if !valid {
            self.refused("vote-badly-signed");
        }
        valid
    }

    /// Counts a message refused for its proof.
    pub(super) fn refused(&mut self, reason: &'static str) {
        self.counters.proofs_refused += 1;
        self.counters.drops.count(reason);
    }

    /// The certificate of `vote` from the signed votes gathered for it.
    pub(super) fn certificate(round: Round, vote: Lock, voters: &Voters) -> Certificate {
        Certificate::new(
            round,
            vote,
            voters
                .iter()
                .filter_map(|(v, signature)| signature.map(|s| (*v, s))),
        )
    }

    /// Takes `lock` as this verifier's highest lock if it is higher than the one it holds.
    pub(super) fn raise_lock(&mut self, lock: Certificate) {
        let key = |c: &Certificate| (c.vote.view, c.vote.seq);
        if self
            .lock_cert
            .as_ref()
            .is_none_or(|held| key(&lock) > key(held))
        {
            self.lock_cert = Some(lock);
        }
    }

    /// This verifier's claims with their certificates: its last committed batch and its
    /// highest lock, if that lock is of a later `(view, seq)` (an earlier one is superseded).
    pub(super) fn claims(&self) -> Claims {
        let committed = self.committed_cert.clone();
        let claim = committed
            .as_ref()
            .map_or_else(crate::certificate::genesis, |c| c.vote);
        let lock = self
            .lock_cert
            .clone()
            .filter(|l| (l.vote.view, l.vote.seq) > (claim.view, claim.seq));
        Claims { committed, lock }
    }

    /// The proof of a `ViewChange` for `new_view` from `view` with `claims`.
    pub(super) fn view_change_proof(
        &self,
        new_view: View,
        view: View,
        claims: Claims,
    ) -> Option<Box<ViewChangeProof>> {
        let committed = claims.committed_claim();
        let payload = view_change_payload(
            &self.config.cluster_id,
            new_view,
            view,
            &committed,
            claims.lock_claim().as_ref(),
        );
        let signature = self.sign(&payload)?;
        Some(Box::new(ViewChangeProof { claims, signature }))
    }

    /// Checks a `ViewChange` of `from` for `new_view`, sent from `view`: signed by `from`, with
    /// valid certificates of its claims.
    pub(super) fn check_view_change(
        &self,
        from: VerifierId,
        new_view: View,
        view: View,
        proof: &ViewChangeProof,
    ) -> Result<(), ProofError> {
        let claims = &proof.claims;
        let payload = view_change_payload(
            &self.config.cluster_id,
            new_view,
            view,
            &claims.committed_claim(),
            claims.lock_claim().as_ref(),
        );
        if !self.auth().check(from, &payload, &proof.signature) {
            return Err(ProofError::Unsigned);
        }
        claims.check(self.auth(), &self.config.cluster_id, &self.sizes)
    }

    /// Checks a `NewView` for `view`: a verifier quorum of distinct verifiers' signed
    /// `ViewChange`s for it, and the start they give. Returns that start.
    pub(super) fn check_new_view(
        &self,
        view: View,
        proof: &[ProvenViewChange],
    ) -> Result<Lock, ProofError> {
        if proof.len() > self.sizes.n_ver {
            return Err(ProofError::Missing);
        }
        let senders: std::collections::BTreeSet<VerifierId> =
            proof.iter().map(|p| p.from).collect();
        if senders.len() != proof.len() || senders.len() < self.sizes.verifier_quorum {
            return Err(ProofError::Missing);
        }
        for change in proof {
            self.check_view_change(change.from, view, change.view, &change.proof)?;
        }
        Ok(start_of(proof.iter().map(|p| &p.proof.claims)))
    }

    /// Checks a peer's commit certificate.
    pub(super) fn check_commit(&self, certificate: &Certificate) -> Result<(), ProofError> {
        certificate.check(
            self.auth(),
            &self.config.cluster_id,
            &self.sizes,
            Round::Commit,
        )
    }

    /// Checks the certificates of a recovery answer's claims.
    pub(super) fn check_claims(&self, claims: &Claims) -> Result<(), ProofError> {
        claims.check(self.auth(), &self.config.cluster_id, &self.sizes)
    }
}

/// Where a new view starts, from the claims of a view-change quorum: after the claim with the
/// highest `(view, seq)`. See `docs/PROTOCOL.md`, "Verifier certificates".
pub(super) fn start_of<'a>(claims: impl Iterator<Item = &'a Claims>) -> Lock {
    claims
        .map(Claims::highest)
        .max_by_key(|c| (c.view, c.seq, c.token))
        .unwrap_or_else(crate::certificate::genesis)
}
