//! Mutual TLS for QUIC: every node presents a certificate signed by the cluster's CA and
//! checks the peer's the same way (rustls with ring, TLS 1.3 only, ALPN `eve/1`, no 0-RTT,
//! which could be replayed). A connection's identity is the one node its peer's certificate
//! names ([`peer_node`]).

use crate::certs::Credentials;
use crate::identity::{dns_name, parse_dns_name};
use crate::limits::{
    IDLE_TIMEOUT, INITIAL_RTT, KEEP_ALIVE_INTERVAL, RECEIVE_WINDOW, STREAM_RECEIVE_WINDOW,
    UNI_STREAMS_MAX,
};
use eve_agreement::NodeId;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;

/// The application protocol both sides must name.
pub const ALPN: &[u8] = b"eve/1";

/// A node's TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM block did not parse.
    #[error("{what}: {source}")]
    Pem {
        /// Which one.
        what: &'static str,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// The PEM text held no certificate.
    #[error("{0}: no certificate in the PEM text")]
    NoCertificate(&'static str),
    /// The certificate does not name the node it is meant for.
    #[error("the certificate names {found:?}, not {expected}")]
    WrongName {
        /// The DNS name expected.
        expected: String,
        /// The names found.
        found: Vec<String>,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// QUIC needs a TLS 1.3 cipher suite the configuration lacks.
    #[error("QUIC: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// Why a connection's peer has no usable identity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No certificate was presented (cannot happen past the verifier, but checked).
    #[error("the peer presented no certificate")]
    NoCertificate,
    /// The certificate did not parse.
    #[error("the peer's certificate does not parse")]
    Unparsable,
    /// The certificate names no node, or several.
    #[error("the peer's certificate names no single node: {0:?}")]
    NoNode(Vec<String>),
}

/// A node's parsed TLS material.
#[derive(Debug)]
pub struct TlsIdentity {
    node: NodeId,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        Self {
            node: self.node,
            roots: self.roots.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TlsIdentity {
    /// Parses `credentials` for `node`, checking that the certificate names it.
    pub fn new(node: NodeId, credentials: &Credentials) -> Result<Self, TlsError> {
        let ca = certificates(&credentials.ca_pem, "CA certificate")?;
        let chain = certificates(&credentials.cert_pem, "node certificate")?;
        let key =
            PrivateKeyDer::from_pem_slice(credentials.key_pem.as_bytes()).map_err(|source| {
                TlsError::Pem {
                    what: "node key",
                    source,
                }
            })?;
        let names = dns_names(&chain[0]).unwrap_or_default();
        let expected = dns_name(node);
        if !names.contains(&expected) {
            return Err(TlsError::WrongName {
                expected,
                found: names,
            });
        }
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert)?;
        }
        Ok(Self {
            node,
            roots: Arc::new(roots),
            chain,
            key,
        })
    }

    /// The node these credentials are for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The key of the endpoint's stateless resets, derived from the node's private key: a
    /// process restarted with the same credentials answers packets of its previous
    /// incarnation's connections with resets the peers accept, so they notice at once that
    /// the old connection is gone instead of after an idle timeout.
    pub fn reset_key(&self) -> ring::hmac::Key {
        ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &self.derive(b"eve stateless reset key v1"),
        )
    }

    /// The key of the endpoint's connection IDs, derived like [`reset_key`](Self::reset_key):
    /// a restarted process recognizes its previous incarnation's connection IDs as its own,
    /// which it must to answer their packets with a reset.
    pub fn connection_id_key(&self) -> u64 {
        let digest = self.derive(b"eve connection id key v1");
        u64::from_le_bytes(digest[..8].try_into().expect("a digest has 32 bytes"))
    }

    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut material = purpose.to_vec();
        material.extend_from_slice(self.key.secret_der());
        let digest = ring::digest::digest(&ring::digest::SHA256, &material);
        digest.as_ref().try_into().expect("SHA-256 has 32 bytes")
    }

    /// The QUIC server configuration: clients must present a certificate of the same CA.
    pub fn server_config(&self) -> Result<quinn::ServerConfig, TlsError> {
        let provider = provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        tls.max_early_data_size = 0;
        let mut config =
            quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
        config.transport_config(transport_config());
        Ok(config)
    }

    /// The QUIC client configuration: the server must present a certificate of the same CA
    /// naming the node dialed.
    pub fn client_config(&self) -> Result<quinn::ClientConfig, TlsError> {
        let mut tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        tls.enable_early_data = false;
        let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
        config.transport_config(transport_config());
        Ok(config)
    }
}

/// The node the peer of `connection` is, from its certificate's one node name.
pub fn peer_node(connection: &quinn::Connection) -> Result<NodeId, IdentityError> {
    let chain = connection
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(IdentityError::NoCertificate)?;
    let leaf = chain.first().ok_or(IdentityError::NoCertificate)?;
    node_of(leaf)
}

/// The one node a certificate names.
pub fn node_of(cert: &CertificateDer<'_>) -> Result<NodeId, IdentityError> {
    let names = dns_names(cert).ok_or(IdentityError::Unparsable)?;
    let nodes: Vec<NodeId> = names.iter().filter_map(|n| parse_dns_name(n)).collect();
    match nodes.as_slice() {
        [node] => Ok(*node),
        _ => Err(IdentityError::NoNode(names)),
    }
}

fn dns_names(cert: &CertificateDer<'_>) -> Option<Vec<String>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    Some(
        san.value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
            .collect(),
    )
}

fn certificates(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { what, source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(what));
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Bounds on what one connection may hold: streams, receive windows, idle time (keep-alive
/// shorter than the idle timeout, so a quiet but live peer is not dropped).
fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config
        .max_concurrent_uni_streams(UNI_STREAMS_MAX.into())
        .max_concurrent_bidi_streams(0u32.into())
        .stream_receive_window(STREAM_RECEIVE_WINDOW.into())
        .receive_window(RECEIVE_WINDOW.into())
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .initial_rtt(INITIAL_RTT)
        .max_idle_timeout(Some(
            IDLE_TIMEOUT
                .try_into()
                .expect("the idle timeout fits QUIC's range"),
        ));
    Arc::new(config)
}
