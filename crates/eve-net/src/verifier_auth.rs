//! Verifiers' signatures in the node (with `r >= 1`): a verifier signs its votes and view
//! changes with the ed25519 key its certificate holds, and checks its peers' under the keys it
//! learned from their certificates when they connected (verifiers dial each other at start, so
//! each learns every peer that is up). As for clients' requests
//! ([`ClientKeyring`](crate::ClientKeyring)), the transport checks each vote as it arrives, on
//! the connection's task ([`VerifierKeyring::check_ahead`]), and the keyring remembers the valid
//! ones, so that the logic's own check (the one that counts) costs a hash.

use crate::Ed25519Signer;
use crate::request_auth::{Checked, checked_digest, ed25519_key_of};
use ed25519_dalek::{Signature as Ed25519Signature, VerifyingKey};
use eve_agreement::auth::RequestSigner;
use eve_agreement::certificate::{Round, VerifierAuth, vote_payload};
use eve_agreement::{Lock, Message, NodeId};
use eve_types::{Digest, Signature, VerifierId};
use rustls::pki_types::CertificateDer;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

/// The ed25519 public keys of the verifiers that connected, by verifier. Cheap to clone; every
/// clone is the same keyring.
#[derive(Clone, Debug)]
pub struct VerifierKeyring {
    cluster: Digest,
    keys: Arc<RwLock<BTreeMap<VerifierId, VerifyingKey>>>,
    checked: Arc<Mutex<Checked>>,
}

impl VerifierKeyring {
    /// An empty keyring of the cluster whose id is `cluster` (the id votes are signed under).
    pub fn new(cluster: Digest) -> Self {
        Self {
            cluster,
            keys: Arc::default(),
            checked: Arc::default(),
        }
    }

    /// Learns verifier `id`'s key from its certificate (already checked against the CA by the
    /// TLS handshake). Returns whether the certificate holds an ed25519 key.
    pub fn learn(&self, id: VerifierId, cert: &CertificateDer<'_>) -> bool {
        let Some(key) = ed25519_key_of(cert).and_then(|k| VerifyingKey::from_bytes(&k).ok()) else {
            return false;
        };
        self.keys.write().expect("never poisoned").insert(id, key);
        true
    }

    /// Learns verifier `id`'s ed25519 public key directly: a verifier's own key, which no
    /// connection teaches it (it checks its own signature like any other, in its own view
    /// change and in the certificates it gathers). Returns whether the bytes are a key.
    pub fn learn_key(&self, id: VerifierId, key: [u8; 32]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&key) else {
            return false;
        };
        self.keys.write().expect("never poisoned").insert(id, key);
        true
    }

    /// Verifiers whose keys are known.
    pub fn len(&self) -> usize {
        self.keys.read().expect("never poisoned").len()
    }

    /// Whether no key is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the vote `msg` carries, if it is a signed vote of verifier `from`, and remembers
    /// it if valid. Called by the transport as messages arrive, off the protocol's thread.
    pub fn check_ahead(&self, from: NodeId, msg: &Message) {
        let NodeId::Verifier(voter) = from else {
            return;
        };
        let (round, vote, signature) = match msg {
            Message::Prepare {
                view,
                seq,
                token,
                signature: Some(signature),
            } => (Round::Prepare, Lock::new(*view, *seq, *token), signature),
            Message::Commit {
                view,
                seq,
                token,
                signature: Some(signature),
            } => (Round::Commit, Lock::new(*view, *seq, *token), signature),
            _ => return,
        };
        let payload = vote_payload(&self.cluster, round, &vote);
        let _ = self.check(voter, &payload, signature);
    }

    /// Whether `signature` is `signer`'s over `payload`, remembering a valid one.
    fn check(&self, signer: VerifierId, payload: &[u8], signature: &Signature) -> bool {
        // The signer is part of what is remembered: a signature valid under one verifier's key
        // proves nothing of another's.
        let mut named = payload.to_vec();
        named.extend_from_slice(&signer.0.to_le_bytes());
        let digest = checked_digest(&named, signature);
        if self
            .checked
            .lock()
            .expect("never poisoned")
            .contains(&digest)
        {
            return true;
        }
        let Some(key) = self
            .keys
            .read()
            .expect("never poisoned")
            .get(&signer)
            .copied()
        else {
            return false;
        };
        let valid = key
            .verify_strict(payload, &Ed25519Signature::from_bytes(&signature.0))
            .is_ok();
        if valid {
            self.checked.lock().expect("never poisoned").insert(digest);
        }
        valid
    }
}

/// A verifier's [`VerifierAuth`] in the node: it signs with its own key and checks its peers'
/// signatures under the keys of its [`VerifierKeyring`].
pub struct Ed25519VerifierAuth {
    signer: Ed25519Signer,
    keyring: VerifierKeyring,
}

impl Ed25519VerifierAuth {
    /// Signs with `signer` (the verifier's own key) and checks under `keyring`.
    pub fn new(signer: Ed25519Signer, keyring: VerifierKeyring) -> Self {
        Self { signer, keyring }
    }
}

impl VerifierAuth for Ed25519VerifierAuth {
    fn sign(&self, payload: &[u8]) -> Signature {
        RequestSigner::sign(&self.signer, payload)
    }

    fn check(&self, signer: VerifierId, payload: &[u8], signature: &Signature) -> bool {
        self.keyring.check(signer, payload, signature)
    }
}

impl std::fmt::Debug for Ed25519VerifierAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519VerifierAuth")
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClusterCa;
    use eve_types::{BatchSeq, View};
    use rustls::pki_types::pem::PemObject;

    fn cert_der(credentials: &crate::Credentials) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_vote_is_valid_only_under_its_own_verifiers_key_and_is_remembered_so() {
        let cluster = Digest([4; 32]);
        let ca = ClusterCa::generate("test").unwrap();
        let v0 = ca.issue(NodeId::Verifier(VerifierId(0))).unwrap();
        let v1 = ca.issue(NodeId::Verifier(VerifierId(1))).unwrap();
        let keyring = VerifierKeyring::new(cluster);
        for (id, credentials) in [(0, &v0), (1, &v1)] {
            assert!(keyring.learn(VerifierId(id), &cert_der(credentials)));
        }
        let signer = Ed25519Signer::from_credentials(&v0).unwrap();
        let auth = Ed25519VerifierAuth::new(signer, keyring.clone());
        let vote = Lock::new(View(1), BatchSeq(2), eve_agreement::Token(Digest([9; 32])));
        let payload = vote_payload(&cluster, Round::Prepare, &vote);
        let signature = auth.sign(&payload);
        assert!(auth.check(VerifierId(0), &payload, &signature));
        assert!(
            !auth.check(VerifierId(1), &payload, &signature),
            "the remembered signature is v0's, not v1's"
        );
        assert!(
            !auth.check(VerifierId(2), &payload, &signature),
            "unknown key"
        );
        let commit = vote_payload(&cluster, Round::Commit, &vote);
        assert!(
            !auth.check(VerifierId(0), &commit, &signature),
            "another round"
        );
        // Checked ahead from the message as it arrives.
        let other = Lock::new(View(1), BatchSeq(3), eve_agreement::Token(Digest([9; 32])));
        let signed = auth.sign(&vote_payload(&cluster, Round::Commit, &other));
        let msg = Message::Commit {
            view: other.view,
            seq: other.seq,
            token: other.token,
            signature: Some(signed),
        };
        let before = keyring.checked.lock().unwrap().len();
        keyring.check_ahead(NodeId::Verifier(VerifierId(0)), &msg);
        assert_eq!(keyring.checked.lock().unwrap().len(), before + 1);
    }
}
