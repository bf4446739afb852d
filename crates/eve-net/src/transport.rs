//! The transport: one QUIC endpoint per node, carrying protocol messages between replicas,
//! verifiers and clients.
//!
//! Every node dials the nodes it has addresses for as soon as it starts, opens one
//! unidirectional stream per connection and writes a hello frame (its own name), then one
//! frame per message. A node that
//! has no address for a peer (a client) answers over the connection that peer opened. Every
//! received stream is read by its own task: the hello must name the node the peer's
//! certificate names, every frame's length is checked before it is read, and a frame that is
//! too large or does not decode closes that connection (counted) while the node goes on
//! serving everyone else. Queues are bounded: a full send queue drops and counts (the protocol
//! repairs loss by repetition), a full inbound queue stops the readers, and QUIC's flow
//! control then slows the senders. An unreachable peer is redialed with capped exponential
//! backoff.

use crate::frame::{FrameError, LENGTH_BYTES, encode_frame, frame_length};
use crate::identity::{dns_name, parse_dns_name};
use crate::limits::{
    CLOSE_DRAIN_MAX, CONNECT_TIMEOUT, FRAME_BYTES_MAX, INBOUND_QUEUE_MESSAGES_MAX,
    RECONNECT_DELAY_MAX, RECONNECT_DELAY_MIN, SEND_QUEUE_MESSAGES_MAX,
};
use crate::tls::{TlsError, TlsIdentity, peer_node};
use bytes::Bytes;
use eve_agreement::{Message, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// The longest hello frame: a node name.
pub const HELLO_BYTES_MAX: usize = 64;

/// Peers without an address (clients) a node keeps a route to by default: when that many are
/// kept, the routes of those whose connection closed are dropped, and a new peer is refused
/// only if every one is still connected.
pub const ROUTES_MAX: usize = 10_000;

/// QUIC close codes.
const CLOSE_SHUTDOWN: u32 = 0;
const CLOSE_IDENTITY: u32 = 1;
const CLOSE_BAD_FRAME: u32 = 2;
const CLOSE_TOO_MANY_PEERS: u32 = 3;

/// Where a node listens and whom it dials.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Where to accept connections (execution replicas and verifiers); `None` for a node that
    /// only dials (a client).
    pub listen: Option<SocketAddr>,
    /// The nodes this one dials, with their addresses. Messages to any other node go over a
    /// connection it opened.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Most peers without an address (clients) connected at once ([`ROUTES_MAX`] by default).
    pub routes_max: usize,
    /// Where the ed25519 keys of connecting clients' certificates go (a replica that checks
    /// request signatures), if anywhere.
    pub client_keys: Option<crate::ClientKeyring>,
    /// Where the ed25519 keys of verifiers' certificates go, from connections either way (a
    /// verifier that checks its peers' votes, with `r >= 1`), if anywhere.
    pub verifier_keys: Option<crate::VerifierKeyring>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            listen: None,
            peers: BTreeMap::new(),
            routes_max: ROUTES_MAX,
            client_keys: None,
            verifier_keys: None,
        }
    }
}

/// A message that arrived, with the sender its certificate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The sender.
    pub from: NodeId,
    /// The message.
    pub msg: Message,
}

/// The transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The TLS material was unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The peer's queue is full (it is slow or unreachable); the message is dropped.
    #[error("the send queue to {0:?} is full")]
    QueueFull(NodeId),
    /// No address for the peer and no connection from it.
    #[error("no route to {0:?}")]
    NoRoute(NodeId),
    /// The message is larger than a frame may be.
    #[error("a message of {0} bytes exceeds the frame limit")]
    TooLarge(usize),
}

/// What the transport did, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Messages queued to send.
    pub messages_sent: u64,
    /// Messages received and handed to the node.
    pub messages_received: u64,
    /// Messages dropped because a peer's send queue was full.
    pub send_queue_full: u64,
    /// Messages dropped for want of a route.
    pub no_route: u64,
    /// Messages lost on a connection that failed while writing.
    pub lost_in_flight: u64,
    /// Connections closed for a frame too large, empty, truncated or not a message.
    pub bad_frames: u64,
    /// Connections refused because the certificate named no node or the hello named another.
    pub identities_refused: u64,
    /// Incoming handshakes that failed: no certificate or one of another CA, a wrong ALPN,
    /// or a peer that gave up (a restarting peer's half-open attempts land here too).
    pub handshake_failures: u64,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections refused because `routes_max` peers without an address were connected.
    pub routes_refused: u64,
    /// Connections dialed successfully.
    pub connections_dialed: u64,
    /// Dials that failed (unreachable, refused, timed out).
    pub dial_failures: u64,
}

#[derive(Default)]
struct Counters {
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    send_queue_full: AtomicU64,
    no_route: AtomicU64,
    lost_in_flight: AtomicU64,
    bad_frames: AtomicU64,
    identities_refused: AtomicU64,
    handshake_failures: AtomicU64,
    connections_accepted: AtomicU64,
    routes_refused: AtomicU64,
    connections_dialed: AtomicU64,
    dial_failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One peer's outbound path: a bounded queue of frames, and (for a peer without an address)
/// the latest connection it opened to this node.
struct Link {
    queue: mpsc::Sender<Bytes>,
    route: watch::Sender<Option<quinn::Connection>>,
}

struct Inner {
    me: NodeId,
    endpoint: quinn::Endpoint,
    peers: BTreeMap<NodeId, SocketAddr>,
    routes_max: usize,
    client_keys: Option<crate::ClientKeyring>,
    verifier_keys: Option<crate::VerifierKeyring>,
    links: Mutex<BTreeMap<NodeId, Link>>,
    inbound: mpsc::Sender<Inbound>,
    counters: Counters,
    shutdown: watch::Sender<bool>,
}

/// Where a node that only dials (a client) binds: an ephemeral loopback port when every peer
/// is on loopback, otherwise an ephemeral port on every interface of the peers' address family
/// (IPv6 if any peer is), so that a client can reach a cluster on other hosts.
pub fn dial_only_address(peers: &BTreeMap<NodeId, SocketAddr>) -> SocketAddr {
    if peers.values().all(|a| a.ip().is_loopback()) {
        SocketAddr::from(([127, 0, 0, 1], 0))
    } else if peers.values().any(SocketAddr::is_ipv6) {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    }
}

/// A node's transport. Cheap to clone; every clone is the same endpoint.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl Transport {
    /// Starts the endpoint: binds (listening if `config.listen` is set, else on an ephemeral
    /// port, see [`dial_only_address`]) and returns the transport with the receiver of every message that
    /// arrives. Must be called within a tokio runtime.
    pub fn start(
        identity: &TlsIdentity,
        config: TransportConfig,
    ) -> Result<(Self, mpsc::Receiver<Inbound>), NetError> {
        let client = identity.client_config()?;
        let addr = config
            .listen
            .unwrap_or_else(|| dial_only_address(&config.peers));
        let server = match config.listen {
            Some(_) => Some(identity.server_config()?),
            None => None,
        };
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(identity.reset_key()));
        let cid_key = identity.connection_id_key();
        endpoint_config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        let mut endpoint = std::net::UdpSocket::bind(addr)
            .and_then(|socket| {
                quinn::Endpoint::new(
                    endpoint_config,
                    server,
                    socket,
                    Arc::new(quinn::TokioRuntime),
                )
            })
            .map_err(|source| NetError::Bind { addr, source })?;
        endpoint.set_default_client_config(client);
        let (inbound, receiver) = mpsc::channel(INBOUND_QUEUE_MESSAGES_MAX);
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            me: identity.node(),
            endpoint,
            peers: config.peers,
            routes_max: config.routes_max,
            client_keys: config.client_keys,
            verifier_keys: config.verifier_keys,
            links: Mutex::new(BTreeMap::new()),
            inbound,
            counters: Counters::default(),
            shutdown,
        });
        if config.listen.is_some() {
            tokio::spawn(accept_loop(inner.clone()));
        }
        // Dial every peer at once, not at the first message: a peer without this node's
        // address (a client's replica, say) can answer only over a connection this node
        // opened, and a client needs replies from replicas it has not sent to yet.
        {
            let mut links = inner
                .links
                .lock()
                .expect("the links lock is never poisoned");
            for &peer in inner.peers.keys() {
                links.insert(peer, new_link(&inner, peer));
            }
        }
        Ok((Self { inner }, receiver))
    }

    /// This node.
    pub fn node(&self) -> NodeId {
        self.inner.me
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.endpoint.local_addr()
    }

    /// Queues `msg` for `to` without waiting. A full queue or a missing route drops the
    /// message (counted): the protocol repairs loss by repetition.
    pub fn send(&self, to: NodeId, msg: &Message) -> Result<(), SendError> {
        let counters = &self.inner.counters;
        let payload = msg.encode();
        if payload.len() > FRAME_BYTES_MAX {
            return Err(SendError::TooLarge(payload.len()));
        }
        let frame = encode_frame(&payload);
        let queue = {
            let links = self
                .inner
                .links
                .lock()
                .expect("the links lock is never poisoned");
            // Every peer with an address has its link from the start; others have one while
            // they are connected.
            match links.get(&to) {
                Some(link) => link.queue.clone(),
                None => {
                    bump(&counters.no_route);
                    return Err(SendError::NoRoute(to));
                }
            }
        };
        match queue.try_send(frame) {
            Ok(()) => {
                bump(&counters.messages_sent);
                Ok(())
            }
            Err(_) => {
                bump(&counters.send_queue_full);
                Err(SendError::QueueFull(to))
            }
        }
    }

    /// What the transport did so far.
    pub fn counters(&self) -> NetCounters {
        let c = &self.inner.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NetCounters {
            messages_sent: get(&c.messages_sent),
            messages_received: get(&c.messages_received),
            send_queue_full: get(&c.send_queue_full),
            no_route: get(&c.no_route),
            lost_in_flight: get(&c.lost_in_flight),
            bad_frames: get(&c.bad_frames),
            identities_refused: get(&c.identities_refused),
            handshake_failures: get(&c.handshake_failures),
            connections_accepted: get(&c.connections_accepted),
            routes_refused: get(&c.routes_refused),
            connections_dialed: get(&c.connections_dialed),
            dial_failures: get(&c.dial_failures),
        }
    }

    /// Closes every connection and stops every task; messages still queued are dropped. Waits
    /// at most [`CLOSE_DRAIN_MAX`] for the connections to drain.
    pub async fn close(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner
            .endpoint
            .close(CLOSE_SHUTDOWN.into(), b"shutdown");
        let _ = tokio::time::timeout(CLOSE_DRAIN_MAX, self.inner.endpoint.wait_idle()).await;
    }
}

/// A link to `peer` and the task that carries its queue.
fn new_link(inner: &Arc<Inner>, peer: NodeId) -> Link {
    let (queue, frames) = mpsc::channel(SEND_QUEUE_MESSAGES_MAX);
    let (route, routes) = watch::channel(None);
    tokio::spawn(run_link(inner.clone(), peer, frames, routes));
    Link { queue, route }
}

/// Carries `peer`'s queued frames: over a connection it dials (a peer with an address) or over
/// the latest connection the peer opened, re-establishing it whenever it fails.
async fn run_link(
    inner: Arc<Inner>,
    peer: NodeId,
    mut frames: mpsc::Receiver<Bytes>,
    mut routes: watch::Receiver<Option<quinn::Connection>>,
) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut delay = RECONNECT_DELAY_MIN;
    let hello = encode_frame(dns_name(inner.me).as_bytes());
    loop {
        if *shutdown.borrow() {
            return;
        }
        let connection = match inner.peers.get(&peer) {
            Some(&addr) => match dial(&inner, peer, addr).await {
                Some(connection) => {
                    delay = RECONNECT_DELAY_MIN;
                    tokio::spawn(read_connection(inner.clone(), peer, connection.clone()));
                    connection
                }
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return,
                    }
                    delay = (delay * 2).min(RECONNECT_DELAY_MAX);
                    continue;
                }
            },
            None => {
                let open = tokio::select! {
                    open = routes.wait_for(|c| c.as_ref().is_some_and(|c| c.close_reason().is_none())) => open,
                    _ = shutdown.changed() => return,
                };
                match open {
                    Ok(connection) => connection.clone().expect("waited for a connection"),
                    Err(_) => return,
                }
            }
        };
        let Ok(mut stream) = connection.open_uni().await else {
            continue;
        };
        if stream.write_all(&hello).await.is_err() {
            continue;
        }
        loop {
            tokio::select! {
                frame = frames.recv() => {
                    let Some(frame) = frame else { return };
                    if stream.write_all(&frame).await.is_err() {
                        bump(&inner.counters.lost_in_flight);
                        break;
                    }
                }
                _ = connection.closed() => break,
                // A peer without an address opened a newer connection: use that one.
                _ = routes.changed() => break,
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Dials `peer` at `addr`; the server must present a certificate naming `peer`.
async fn dial(inner: &Inner, peer: NodeId, addr: SocketAddr) -> Option<quinn::Connection> {
    let connecting = match inner.endpoint.connect(addr, &dns_name(peer)) {
        Ok(connecting) => connecting,
        Err(err) => {
            tracing::warn!(?peer, %addr, %err, "cannot dial");
            bump(&inner.counters.dial_failures);
            return None;
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(connection)) if peer_node(&connection) == Ok(peer) => {
            bump(&inner.counters.connections_dialed);
            learn_verifier_key(inner, peer, &connection);
            Some(connection)
        }
        Ok(Ok(connection)) => {
            bump(&inner.counters.identities_refused);
            connection.close(CLOSE_IDENTITY.into(), b"certificate names another node");
            None
        }
        Ok(Err(err)) => {
            tracing::debug!(?peer, %addr, %err, "dial failed");
            bump(&inner.counters.dial_failures);
            None
        }
        Err(_) => {
            bump(&inner.counters.dial_failures);
            None
        }
    }
}

/// The certificate the peer of `connection` presented.
fn leaf_certificate(
    connection: &quinn::Connection,
) -> Option<rustls::pki_types::CertificateDer<'static>> {
    connection
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .and_then(|chain| chain.first().cloned())
}

/// Learns a verifier peer's signing key from its certificate, if this node keeps verifier keys.
fn learn_verifier_key(inner: &Inner, peer: NodeId, connection: &quinn::Connection) {
    if let (NodeId::Verifier(verifier), Some(keyring)) = (peer, &inner.verifier_keys)
        && !leaf_certificate(connection).is_some_and(|cert| keyring.learn(verifier, &cert))
    {
        tracing::warn!(
            ?peer,
            "a verifier certificate without an ed25519 key: its votes cannot be checked"
        );
    }
}

async fn accept_loop(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let incoming = tokio::select! {
            incoming = inner.endpoint.accept() => incoming,
            _ = shutdown.changed() => return,
        };
        let Some(incoming) = incoming else { return };
        tokio::spawn(accept_one(inner.clone(), incoming));
    }
}

async fn accept_one(inner: Arc<Inner>, incoming: quinn::Incoming) {
    // A peer without a certificate of the cluster's CA fails here, in the handshake.
    let Ok(connection) = incoming.await else {
        bump(&inner.counters.handshake_failures);
        return;
    };
    let peer = match peer_node(&connection) {
        Ok(peer) => peer,
        Err(err) => {
            tracing::warn!(%err, "connection refused");
            bump(&inner.counters.identities_refused);
            connection.close(CLOSE_IDENTITY.into(), b"the certificate names no node");
            return;
        }
    };
    bump(&inner.counters.connections_accepted);
    learn_verifier_key(&inner, peer, &connection);
    if let (NodeId::Client(client), Some(keyring)) = (peer, &inner.client_keys) {
        let leaf = leaf_certificate(&connection);
        if !leaf.is_some_and(|cert| keyring.learn(client, &cert)) {
            tracing::warn!(
                ?peer,
                "a client certificate without an ed25519 key: its requests cannot be checked"
            );
        }
    }
    if !inner.peers.contains_key(&peer) && !route_to(&inner, peer, &connection) {
        tracing::warn!(?peer, "connection refused: too many clients connected");
        bump(&inner.counters.routes_refused);
        connection.close(CLOSE_TOO_MANY_PEERS.into(), b"too many peers");
        return;
    }
    read_connection(inner, peer, connection).await;
}

/// Makes `connection` the way to reach `peer` (which has no address). At `routes_max` routes
/// it first drops the routes whose connection closed (their tasks end with them); false when
/// every one is still connected.
fn route_to(inner: &Arc<Inner>, peer: NodeId, connection: &quinn::Connection) -> bool {
    let mut links = inner
        .links
        .lock()
        .expect("the links lock is never poisoned");
    if !links.contains_key(&peer) {
        let routed = |links: &BTreeMap<NodeId, Link>| {
            links
                .keys()
                .filter(|node| !inner.peers.contains_key(node))
                .count()
        };
        if routed(&links) >= inner.routes_max {
            links.retain(|node, link| {
                inner.peers.contains_key(node)
                    || link
                        .route
                        .borrow()
                        .as_ref()
                        .is_some_and(|c| c.close_reason().is_none())
            });
            if routed(&links) >= inner.routes_max {
                return false;
            }
        }
        links.insert(peer, new_link(inner, peer));
    }
    links[&peer].route.send_replace(Some(connection.clone()));
    true
}

/// Reads every stream `peer` opens on `connection`.
async fn read_connection(inner: Arc<Inner>, peer: NodeId, connection: quinn::Connection) {
    while let Ok(stream) = connection.accept_uni().await {
        tokio::spawn(read_stream(inner.clone(), peer, connection.clone(), stream));
    }
}

/// Reads one stream: the hello, then messages, until it ends or misbehaves.
async fn read_stream(
    inner: Arc<Inner>,
    peer: NodeId,
    connection: quinn::Connection,
    mut stream: quinn::RecvStream,
) {
    let refuse = |counter: &AtomicU64, code: u32, reason: &'static [u8]| {
        bump(counter);
        connection.close(code.into(), reason);
    };
    match read_payload(&mut stream, HELLO_BYTES_MAX).await {
        Ok(Some(hello)) => {
            let named = std::str::from_utf8(&hello).ok().and_then(parse_dns_name);
            if named != Some(peer) {
                tracing::warn!(
                    ?peer,
                    ?named,
                    "hello names another node than the certificate"
                );
                return refuse(
                    &inner.counters.identities_refused,
                    CLOSE_IDENTITY,
                    b"hello names another node",
                );
            }
        }
        Ok(None) | Err(FrameError::Read(_)) => return,
        Err(_) => return refuse(&inner.counters.bad_frames, CLOSE_BAD_FRAME, b"bad hello"),
    }
    loop {
        match read_payload(&mut stream, FRAME_BYTES_MAX).await {
            Ok(Some(payload)) => match Message::decode(&payload) {
                Ok(msg) => {
                    bump(&inner.counters.messages_received);
                    // Client signatures are checked here, on this connection's task, so that
                    // the logic's own check finds them remembered.
                    if let Some(keyring) = &inner.client_keys {
                        keyring.check_ahead(&msg);
                    }
                    if let Some(keyring) = &inner.verifier_keys {
                        keyring.check_ahead(peer, &msg);
                    }
                    if inner
                        .inbound
                        .send(Inbound { from: peer, msg })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(?peer, %err, "closing a connection that sent a bad message");
                    return refuse(
                        &inner.counters.bad_frames,
                        CLOSE_BAD_FRAME,
                        b"not a message",
                    );
                }
            },
            Ok(None) | Err(FrameError::Read(_)) => return,
            Err(err) => {
                tracing::warn!(?peer, %err, "closing a connection that sent a bad frame");
                return refuse(&inner.counters.bad_frames, CLOSE_BAD_FRAME, b"bad frame");
            }
        }
    }
}

/// Reads a frame of at most `max` bytes (checked before allocating); `None` at a clean end.
async fn read_payload(
    stream: &mut quinn::RecvStream,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; LENGTH_BYTES];
    match stream.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(FrameError::Truncated),
        Err(quinn::ReadExactError::ReadError(err)) => {
            return Err(FrameError::Read(err.to_string()));
        }
    }
    let length = frame_length(header)?;
    if length > max {
        return Err(FrameError::TooLarge { bytes: length });
    }
    let mut payload = vec![0u8; length];
    match stream.read_exact(&mut payload).await {
        Ok(()) => Ok(Some(payload)),
        Err(quinn::ReadExactError::FinishedEarly(_)) => Err(FrameError::Truncated),
        Err(quinn::ReadExactError::ReadError(err)) => Err(FrameError::Read(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_types::{ReplicaId, VerifierId};

    #[test]
    fn a_client_binds_where_it_can_reach_its_peers() {
        let peers = |a: &str, b: &str| {
            BTreeMap::from([
                (NodeId::Replica(ReplicaId(0)), a.parse().unwrap()),
                (NodeId::Verifier(VerifierId(0)), b.parse().unwrap()),
            ])
        };
        let on_loopback = dial_only_address(&peers("127.0.0.1:7400", "127.0.0.1:7401"));
        assert_eq!(on_loopback, "127.0.0.1:0".parse().unwrap());
        // A cluster on other hosts is not reachable from a loopback socket.
        let remote = dial_only_address(&peers("10.77.0.1:7400", "127.0.0.1:7401"));
        assert_eq!(remote, "0.0.0.0:0".parse().unwrap());
        let v6 = dial_only_address(&peers("[fd00::1]:7400", "10.0.0.1:7401"));
        assert_eq!(v6, "[::]:0".parse().unwrap());
    }
}
