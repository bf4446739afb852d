//! Who wrote a request. With `r >= 1` a replica accepts a request, whoever relays it, only if
//! it carries a valid signature of its client over [`Request::signing_payload`]; with `r = 0`
//! requests are not signed and nothing is checked. The logic knows no cryptography: it asks a
//! [`RequestVerifier`] (the node's checks ed25519 signatures under the keys the clients'
//! certificates hold), and a client signs through a [`RequestSigner`]. Verifiers sign their
//! votes through a [`VerifierAuth`](crate::certificate::VerifierAuth) (see `certificate.rs`).

use eve_types::{ClientId, Digest, Request, Signature, VerifierId};
use std::collections::BTreeMap;

/// Signs a client's requests.
pub trait RequestSigner: Send + Sync {
    /// The signature of `payload` (a request's signing payload).
    fn sign(&self, payload: &[u8]) -> Signature;
}

/// What a verifier found of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by its client.
    Valid,
    /// No signature.
    Unsigned,
    /// A signature that is not its client's over this request: a forgery, or a request
    /// altered after it was signed.
    Forged,
    /// The verifier does not know the client's key (yet).
    UnknownClient,
}

impl Verdict {
    /// The reason a replica counts when it drops a request with this verdict.
    pub fn drop_reason(self) -> Option<&'static str> {
        match self {
            Self::Valid => None,
            Self::Unsigned => Some("unsigned-request"),
            Self::Forged => Some("forged-request"),
            Self::UnknownClient => Some("unknown-client-key"),
        }
    }
}

/// Checks clients' signatures.
pub trait RequestVerifier: Send + Sync {
    /// One verdict per request, in order, for requests of the cluster `cluster` (an
    /// implementation may check them together, as ed25519 batch verification does).
    fn verify(&self, cluster: &Digest, requests: &[&Request]) -> Vec<Verdict>;
}

/// A signer and verifier from one secret per client, for the simulator and tests: a keyed
/// hash (blake3), not a signature scheme, since whoever can verify could sign. A simulated
/// Byzantine replica is never given the secrets, which is the property the protocol needs of
/// real signatures.
#[derive(Clone, Debug, Default)]
pub struct KeyedHashAuth {
    secrets: BTreeMap<ClientId, [u8; 32]>,
}

impl KeyedHashAuth {
    /// Secrets for clients `ids`, derived from `seed`.
    pub fn new(seed: u64, ids: impl IntoIterator<Item = ClientId>) -> Self {
        let secrets = ids
            .into_iter()
            .map(|id| {
                let mut material = seed.to_le_bytes().to_vec();
                material.extend_from_slice(&id.0.to_le_bytes());
                (
                    id,
                    blake3::derive_key("eve keyed-hash client secret", &material),
                )
            })
            .collect();
        Self { secrets }
    }

    /// The signer of client `id`, if it has a secret.
    pub fn signer(&self, id: ClientId) -> Option<KeyedHashSigner> {
        self.secrets
            .get(&id)
            .map(|&secret| KeyedHashSigner { secret })
    }

    fn tag(secret: &[u8; 32], payload: &[u8]) -> Signature {
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(blake3::keyed_hash(secret, payload).as_bytes());
        Signature(signature)
    }
}

impl RequestVerifier for KeyedHashAuth {
    fn verify(&self, cluster: &Digest, requests: &[&Request]) -> Vec<Verdict> {
        requests
            .iter()
            .map(
                |request| match (&request.signature, self.secrets.get(&request.client)) {
                    (None, _) => Verdict::Unsigned,
                    (Some(_), None) => Verdict::UnknownClient,
                    (Some(signature), Some(secret)) => {
                        if Self::tag(secret, &request.signing_payload(cluster)) == *signature {
                            Verdict::Valid
                        } else {
                            Verdict::Forged
                        }
                    }
                },
            )
            .collect()
    }
}

/// A verifier's signer and checker from one secret per verifier, for the simulator and tests
/// (a keyed hash: see [`KeyedHashAuth`]). Each verifier is given its own; a simulated Byzantine
/// verifier signs its lies with its own secret and cannot sign for the others.
#[derive(Clone, Debug)]
pub struct KeyedHashVerifierAuth {
    me: VerifierId,
    secrets: Vec<[u8; 32]>,
}

impl KeyedHashVerifierAuth {
    /// Verifier `me`'s, in a cluster of `n_ver` verifiers whose secrets derive from `seed`.
    pub fn new(seed: u64, n_ver: usize, me: VerifierId) -> Self {
        let secrets = (0..n_ver as u32)
            .map(|v| {
                let mut material = seed.to_le_bytes().to_vec();
                material.extend_from_slice(&v.to_le_bytes());
                blake3::derive_key("eve keyed-hash verifier secret", &material)
            })
            .collect();
        Self { me, secrets }
    }
}

impl crate::certificate::VerifierAuth for KeyedHashVerifierAuth {
    fn sign(&self, payload: &[u8]) -> Signature {
        KeyedHashAuth::tag(&self.secrets[self.me.0 as usize], payload)
    }

    fn check(&self, signer: VerifierId, payload: &[u8], signature: &Signature) -> bool {
        self.secrets
            .get(signer.0 as usize)
            .is_some_and(|secret| KeyedHashAuth::tag(secret, payload) == *signature)
    }
}

/// One client's [`KeyedHashAuth`] signer.
#[derive(Clone, Debug)]
pub struct KeyedHashSigner {
    secret: [u8; 32],
}

impl RequestSigner for KeyedHashSigner {
    fn sign(&self, payload: &[u8]) -> Signature {
        KeyedHashAuth::tag(&self.secret, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_types::RequestNo;

    #[test]
    fn only_the_clients_own_signature_over_the_unaltered_request_is_valid() {
        let auth = KeyedHashAuth::new(1, [ClientId(1), ClientId(2)]);
        let cluster = Digest([3; 32]);
        let mut request = Request::new(ClientId(1), RequestNo(4), &b"put a 1"[..]).unwrap();
        let check = |r: &Request| auth.verify(&cluster, &[r])[0];
        assert_eq!(check(&request), Verdict::Unsigned);
        let signer = auth.signer(ClientId(1)).unwrap();
        request.signature = Some(signer.sign(&request.signing_payload(&cluster)));
        assert_eq!(check(&request), Verdict::Valid);
        let mut altered = request.clone();
        altered.op = bytes::Bytes::from_static(b"put a 2");
        assert_eq!(
            check(&altered),
            Verdict::Forged,
            "the operation was rewritten"
        );
        let mut renamed = request.clone();
        renamed.client = ClientId(2);
        assert_eq!(check(&renamed), Verdict::Forged, "another client's name");
        let mut stranger = request.clone();
        stranger.client = ClientId(3);
        assert_eq!(check(&stranger), Verdict::UnknownClient);
        assert_eq!(
            auth.verify(&Digest([4; 32]), &[&request])[0],
            Verdict::Forged,
            "signed for another cluster"
        );
    }
}
