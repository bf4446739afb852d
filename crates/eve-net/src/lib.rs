//! Eve's transport: QUIC (quinn) with mutual TLS (rustls, ring), one certificate per node.
//!
//! - [`ClusterCa`] makes a cluster's certificates: a CA, and per node a key and a certificate
//!   naming it (`replica-N.eve`, `verifier-N.eve`, `client-N.eve`, see [`dns_name`]).
//! - [`TlsIdentity`] turns a node's [`Credentials`] into QUIC client and server configurations
//!   that accept only peers of the same CA.
//! - [`Transport`] carries [`eve_agreement::Message`]s between nodes in length-checked frames
//!   over bounded queues; every message that arrives names its sender by the sender's
//!   certificate, never by what the sender claims.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use eve_agreement::{Message, NodeId};
//! use eve_net::{ClusterCa, TlsIdentity, Transport, TransportConfig};
//! use eve_types::{ReplicaId, VerifierId};
//!
//! let ca = ClusterCa::generate("demo")?;
//! let me = NodeId::Replica(ReplicaId(0));
//! let identity = TlsIdentity::new(me, &ca.issue(me)?)?;
//! let verifier = NodeId::Verifier(VerifierId(0));
//! let config = TransportConfig {
//!     listen: Some("127.0.0.1:7000".parse()?),
//!     peers: [(verifier, "127.0.0.1:7100".parse()?)].into(),
//!     ..Default::default()
//! };
//! let (transport, mut inbound) = Transport::start(&identity, config)?;
//! transport.send(verifier, &Message::QueryCommitted)?;
//! if let Some(arrived) = inbound.recv().await {
//!     println!("{:?} sent {}", arrived.from, arrived.msg.kind());
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod certs;
mod frame;
mod identity;
pub mod limits;
mod request_auth;
mod tls;
mod transport;
mod verifier_auth;

pub use certs::{CERT_VALIDITY_DAYS, CertError, ClusterCa, Credentials};
pub use frame::{FrameError, LENGTH_BYTES, encode_frame, frame_length};
pub use identity::{DOMAIN, dns_name, parse_dns_name};
pub use request_auth::{
    CHECKED_SIGNATURES_MAX, ClientKeyring, Ed25519Signer, SignerError, ed25519_key_of,
};
pub use tls::{ALPN, IdentityError, TlsError, TlsIdentity, node_of, peer_node};
pub use transport::{
    HELLO_BYTES_MAX, Inbound, NetCounters, NetError, ROUTES_MAX, SendError, Transport,
    TransportConfig,
};
pub use verifier_auth::{Ed25519VerifierAuth, VerifierKeyring};
