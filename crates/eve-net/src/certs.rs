//! A cluster's certificates: one certificate authority, and a key and certificate per node
//! (execution replicas, verifiers, clients) naming it by [`dns_name`]. Each leaf is valid for
//! both TLS roles, since every node both dials and accepts.

use crate::identity::dns_name;
use eve_agreement::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// How long generated certificates are valid.
pub const CERT_VALIDITY_DAYS: i64 = 3650;

/// What a node needs to join: the cluster's CA certificate, its own certificate and its key,
/// in PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The cluster CA's certificate.
    pub ca_pem: String,
    /// This node's certificate, signed by the CA.
    pub cert_pem: String,
    /// This node's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Certificates could not be made.
#[derive(Debug, thiserror::Error)]
#[error("certificate generation failed: {0}")]
pub struct CertError(#[from] rcgen::Error);

/// A cluster's certificate authority, able to issue node certificates.
pub struct ClusterCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl ClusterCa {
    /// A new CA named `cluster` (a fresh key).
    pub fn generate(cluster: &str) -> Result<Self, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{cluster} cluster CA"));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        set_validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's certificate, in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A key and certificate for `node`, valid as TLS client and server. A client's key is
    /// ed25519, since it also signs the client's requests (see `request_auth`); the others'
    /// are ECDSA P-256.
    pub fn issue(&self, node: NodeId) -> Result<Credentials, CertError> {
        let key = match node {
            // Clients sign requests and verifiers sign votes (with r >= 1) with the key of
            // their certificate.
            NodeId::Client(_) | NodeId::Verifier(_) => KeyPair::generate_for(&rcgen::PKCS_ED25519)?,
            _ => KeyPair::generate()?,
        };
        self.issue_with(&dns_name(node), key)
    }

    /// A key and certificate for an arbitrary DNS name (tests use it for names that name no
    /// node).
    pub fn issue_named(&self, name: &str) -> Result<Credentials, CertError> {
        self.issue_with(name, KeyPair::generate()?)
    }

    fn issue_with(&self, name: &str, key: KeyPair) -> Result<Credentials, CertError> {
        let mut params = CertificateParams::new(vec![name.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        set_validity(&mut params);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Credentials {
            ca_pem: self.cert_pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn set_validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(CERT_VALIDITY_DAYS);
}
