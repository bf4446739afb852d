//! Clients' request signatures in the node (with `r >= 1`): a client signs each request with
//! the ed25519 key its certificate holds, and a replica checks it under the key it learned from
//! that certificate when the client connected. One identity per client: the certificate the
//! cluster CA signed. Requests a replica must check from a client that never connected to it
//! (relayed ones) wait for that client's connection: clients dial every replica at start.
//!
//! Checking costs tens of microseconds a request, too much for the one thread that runs the
//! protocol logic. So the transport checks each request and batch as it arrives, on the
//! connection's own task ([`ClientKeyring::check_ahead`]), and the keyring remembers the
//! signatures it found valid: when the logic asks, a remembered one costs a hash.

use crate::certs::Credentials;
use ed25519_dalek::{Signature as Ed25519Signature, VerifyingKey};
use eve_agreement::auth::{RequestSigner, RequestVerifier, Verdict};
use eve_types::{ClientId, Digest, Request, Signature};
use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls::pki_types::CertificateDer;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

/// Most valid signatures a keyring remembers (the oldest go first): a few seconds of requests
/// at full load, about 4 MB.
pub const CHECKED_SIGNATURES_MAX: usize = 65_536;

/// The object identifier of ed25519 keys (RFC 8410), 1.3.101.112.
const ED25519_OID: &str = "1.3.101.112";

/// The ed25519 public keys of the clients that connected, by client: filled by the transport
/// as clients connect, read by the replica's logic to check signatures. Cheap to clone; every
/// clone is the same keyring.
#[derive(Clone, Debug)]
pub struct ClientKeyring {
    cluster: Digest,
    keys: Arc<RwLock<BTreeMap<ClientId, VerifyingKey>>>,
    checked: Arc<Mutex<Checked>>,
}

/// Signatures found valid, each as the hash of the signed payload and the signature.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Checked {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn contains(&self, digest: &[u8; 32]) -> bool {
        self.set.contains(digest)
    }

    pub(crate) fn insert(&mut self, digest: [u8; 32]) {
        if self.set.insert(digest) {
            self.order.push_back(digest);
        }
        while self.order.len() > CHECKED_SIGNATURES_MAX {
            let oldest = self.order.pop_front().expect("longer than the bound");
            self.set.remove(&oldest);
        }
    }
}

/// What a remembered valid signature is known by: the payload it signs and its bytes.
pub(crate) fn checked_digest(payload: &[u8], signature: &Signature) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(payload);
    hasher.update(&signature.0);
    *hasher.finalize().as_bytes()
}

impl ClientKeyring {
    /// An empty keyring of the cluster whose id is `cluster` (the id requests are signed
    /// under; [`check_ahead`](Self::check_ahead) checks under it).
    pub fn new(cluster: Digest) -> Self {
        Self {
            cluster,
            keys: Arc::default(),
            checked: Arc::default(),
        }
    }

    /// Checks the signed requests `msg` carries (a request, or a batch) and remembers the
    /// valid ones, so that the logic's own check later costs a hash. Called by the transport
    /// as messages arrive, off the protocol's thread; the verdicts that count are the logic's.
    pub fn check_ahead(&self, msg: &eve_agreement::Message) {
        use eve_agreement::Message;
        let requests: Vec<&Request> = match msg {
            Message::Request(request) => vec![request],
            Message::ExecuteBatch(batch) => batch.requests.iter().collect(),
            _ => return,
        };
        if requests.iter().any(|r| r.signature.is_some()) {
            let _ = self.verify(&self.cluster, &requests);
        }
    }

    /// Signatures remembered as valid.
    pub fn checked_len(&self) -> usize {
        self.checked.lock().expect("never poisoned").order.len()
    }

    /// Learns client `id`'s key from its certificate (already checked against the CA by the
    /// TLS handshake). Returns whether the certificate holds an ed25519 key.
    pub fn learn(&self, id: ClientId, cert: &CertificateDer<'_>) -> bool {
        let Some(key) = ed25519_key_of(cert).and_then(|k| VerifyingKey::from_bytes(&k).ok()) else {
            return false;
        };
        self.keys
            .write()
            .expect("the keyring lock is never poisoned")
            .insert(id, key);
        true
    }

    /// Clients whose keys are known.
    pub fn len(&self) -> usize {
        self.keys.read().expect("never poisoned").len()
    }

    /// Whether no key is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RequestVerifier for ClientKeyring {
    /// Checks the signed requests of known clients together (ed25519 batch verification,
    /// about half the cost of checking each); if the batch fails, each one alone, to tell the
    /// forgeries from the rest.
    fn verify(&self, cluster: &Digest, requests: &[&Request]) -> Vec<Verdict> {
        let keys = self.keys.read().expect("never poisoned");
        let mut verdicts = Vec::with_capacity(requests.len());
        // (position, payload, signature, key, digest) of every request left to check.
        let mut pending = Vec::new();
        {
            let checked = self.checked.lock().expect("never poisoned");
            for (i, request) in requests.iter().enumerate() {
                verdicts.push(match (&request.signature, keys.get(&request.client)) {
                    (None, _) => Verdict::Unsigned,
                    (Some(_), None) => Verdict::UnknownClient,
                    (Some(signature), Some(key)) => {
                        let payload = request.signing_payload(cluster);
                        let digest = checked_digest(&payload, signature);
                        if !checked.set.contains(&digest) {
                            let signature = Ed25519Signature::from_bytes(&signature.0);
                            pending.push((i, payload, signature, *key, digest));
                        }
                        Verdict::Valid
                    }
                });
            }
        }
        if pending.is_empty() {
            return verdicts;
        }
        let together = pending.len() > 1 && {
            let payloads: Vec<&[u8]> = pending.iter().map(|p| p.1.as_slice()).collect();
            let signatures: Vec<Ed25519Signature> = pending.iter().map(|p| p.2).collect();
            let keys: Vec<VerifyingKey> = pending.iter().map(|p| p.3).collect();
            ed25519_dalek::verify_batch(&payloads, &signatures, &keys).is_ok()
        };
        if !together {
            for (i, payload, signature, key, _) in &pending {
                if key.verify_strict(payload, signature).is_err() {
                    verdicts[*i] = Verdict::Forged;
                }
            }
        }
        let mut checked = self.checked.lock().expect("never poisoned");
        for (i, _, _, _, digest) in &pending {
            if verdicts[*i] == Verdict::Valid {
                checked.insert(*digest);
            }
        }
        verdicts
    }
}

/// The ed25519 public key a certificate holds, if it holds one.
pub fn ed25519_key_of(cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let spki = parsed.public_key();
    if spki.algorithm.algorithm.to_id_string() != ED25519_OID {
        return None;
    }
    spki.subject_public_key.data.as_ref().try_into().ok()
}

/// Signs with the ed25519 key of a node's credentials: a client's requests, a verifier's
/// votes and view changes.
pub struct Ed25519Signer {
    key: Ed25519KeyPair,
}

/// A node's key cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The key is not PEM-encoded PKCS#8.
    #[error("the key is not a PEM PKCS#8 private key")]
    NotPkcs8,
    /// The key is not ed25519 (clients and verifiers need one when the cluster tolerates
    /// Byzantine replicas; `eve-node init` makes them so).
    #[error("the key is not an ed25519 key: {0}")]
    NotEd25519(String),
}

impl Ed25519Signer {
    /// The signer of the node whose credentials these are (a client's requests, or a
    /// verifier's votes).
    pub fn from_credentials(credentials: &Credentials) -> Result<Self, SignerError> {
        use rustls::pki_types::pem::PemObject;
        let der =
            rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(credentials.key_pem.as_bytes())
                .map_err(|_| SignerError::NotPkcs8)?;
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|e| SignerError::NotEd25519(e.to_string()))?;
        Ok(Self { key })
    }

    /// The public key, as a certificate of this client holds it.
    pub fn public_key(&self) -> [u8; 32] {
        self.key
            .public_key()
            .as_ref()
            .try_into()
            .expect("ed25519 public keys are 32 bytes")
    }
}

impl RequestSigner for Ed25519Signer {
    fn sign(&self, payload: &[u8]) -> Signature {
        let signature = self.key.sign(payload);
        Signature(
            signature
                .as_ref()
                .try_into()
                .expect("ed25519 signatures are 64 bytes"),
        )
    }
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Signer").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClusterCa;
    use eve_agreement::NodeId;
    use eve_types::RequestNo;
    use rustls::pki_types::pem::PemObject;

    fn cert_der(credentials: &Credentials) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_request_signed_with_a_clients_key_checks_under_its_certificate_only() {
        let ca = ClusterCa::generate("test").unwrap();
        let c1 = ca.issue(NodeId::Client(ClientId(1))).unwrap();
        let c2 = ca.issue(NodeId::Client(ClientId(2))).unwrap();
        let cluster = Digest([9; 32]);
        let keyring = ClientKeyring::new(cluster);
        assert!(keyring.learn(ClientId(1), &cert_der(&c1)));
        let signer = Ed25519Signer::from_credentials(&c1).unwrap();
        assert_eq!(Some(signer.public_key()), ed25519_key_of(&cert_der(&c1)));
        let mut request = Request::new(ClientId(1), RequestNo(3), &b"op"[..]).unwrap();
        let verdict = |r: &Request| keyring.verify(&cluster, &[r])[0];
        assert_eq!(verdict(&request), Verdict::Unsigned);
        request.signature = Some(signer.sign(&request.signing_payload(&cluster)));
        assert_eq!(verdict(&request), Verdict::Valid);
        let mut altered = request.clone();
        altered.request_no = RequestNo(u64::MAX);
        assert_eq!(verdict(&altered), Verdict::Forged);
        let mut other = request.clone();
        other.client = ClientId(2);
        assert_eq!(verdict(&other), Verdict::UnknownClient);
        assert!(keyring.learn(ClientId(2), &cert_der(&c2)));
        assert_eq!(
            verdict(&other),
            Verdict::Forged,
            "signed by client 1, not 2"
        );
    }

    #[test]
    fn a_replica_certificate_holds_no_client_signing_key() {
        let ca = ClusterCa::generate("test").unwrap();
        let replica = ca.issue(NodeId::Replica(eve_types::ReplicaId(0))).unwrap();
        assert_eq!(ed25519_key_of(&cert_der(&replica)), None);
        assert!(matches!(
            Ed25519Signer::from_credentials(&replica),
            Err(SignerError::NotEd25519(_))
        ));
    }

    #[test]
    fn a_batch_with_one_forgery_is_told_apart_request_by_request() {
        let ca = ClusterCa::generate("test").unwrap();
        let cluster = Digest([1; 32]);
        let keyring = ClientKeyring::new(cluster);
        let mut requests = Vec::new();
        for c in 1..=8 {
            let credentials = ca.issue(NodeId::Client(ClientId(c))).unwrap();
            assert!(keyring.learn(ClientId(c), &cert_der(&credentials)));
            let signer = Ed25519Signer::from_credentials(&credentials).unwrap();
            let mut request = Request::new(ClientId(c), RequestNo(c), &b"op"[..]).unwrap();
            request.signature = Some(signer.sign(&request.signing_payload(&cluster)));
            requests.push(request);
        }
        let all: Vec<&Request> = requests.iter().collect();
        assert_eq!(keyring.verify(&cluster, &all), vec![Verdict::Valid; 8]);
        requests[5].op = bytes::Bytes::from_static(b"rewritten");
        requests[2].signature = None;
        let all: Vec<&Request> = requests.iter().collect();
        let mut expected = vec![Verdict::Valid; 8];
        expected[5] = Verdict::Forged;
        expected[2] = Verdict::Unsigned;
        assert_eq!(keyring.verify(&cluster, &all), expected);
    }

    /// A batch checked ahead is remembered: the logic's check finds it valid without
    /// verifying again; a request altered after its signature was remembered is still a
    /// forgery, and so is a valid signature presented under another cluster's id.
    #[test]
    fn signatures_checked_ahead_are_remembered_and_nothing_else_is() {
        let ca = ClusterCa::generate("test").unwrap();
        let cluster = Digest([4; 32]);
        let keyring = ClientKeyring::new(cluster);
        let credentials = ca.issue(NodeId::Client(ClientId(1))).unwrap();
        assert!(keyring.learn(ClientId(1), &cert_der(&credentials)));
        let signer = Ed25519Signer::from_credentials(&credentials).unwrap();
        let mut request = Request::new(ClientId(1), RequestNo(1), &b"op"[..]).unwrap();
        request.signature = Some(signer.sign(&request.signing_payload(&cluster)));
        keyring.check_ahead(&eve_agreement::Message::Request(request.clone()));
        assert_eq!(keyring.checked_len(), 1);
        assert_eq!(keyring.verify(&cluster, &[&request]), vec![Verdict::Valid]);
        assert_eq!(keyring.checked_len(), 1, "found among the remembered");
        let mut rewritten = request.clone();
        rewritten.op = bytes::Bytes::from_static(b"another op");
        assert_eq!(
            keyring.verify(&cluster, &[&rewritten]),
            vec![Verdict::Forged]
        );
        assert_eq!(
            keyring.verify(&Digest([5; 32]), &[&request]),
            vec![Verdict::Forged],
            "signed for another cluster"
        );
        assert_eq!(keyring.checked_len(), 1, "forgeries are not remembered");
    }
}
