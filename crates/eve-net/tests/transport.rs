//! The transport over real loopback QUIC: messages flow between nodes and back to clients
//! over the connections they opened; peers without a certificate of the cluster's CA, or whose
//! hello claims another node, are refused; a bad frame closes only that connection; a reader
//! that does not keep up slows the sender instead of filling memory.

use eve_agreement::{Message, NodeId};
use eve_net::{
    ClusterCa, Credentials, Inbound, SendError, TlsIdentity, Transport, TransportConfig, dns_name,
    encode_frame, limits::FRAME_BYTES_MAX,
};
use eve_types::{ClientId, ReplicaId, VerifierId, View};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

const R0: NodeId = NodeId::Replica(ReplicaId(0));
const R2: NodeId = NodeId::Replica(ReplicaId(2));
const V0: NodeId = NodeId::Verifier(VerifierId(0));
const C7: NodeId = NodeId::Client(ClientId(7));

/// Long enough for anything on loopback; a test that waits this long has failed.
const PATIENCE: Duration = Duration::from_secs(10);

fn free_addr() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap()
}

fn start(
    ca: &ClusterCa,
    node: NodeId,
    listen: Option<SocketAddr>,
    peers: &[(NodeId, SocketAddr)],
) -> (Transport, mpsc::Receiver<Inbound>) {
    let identity = TlsIdentity::new(node, &ca.issue(node).unwrap()).unwrap();
    let config = TransportConfig {
        listen,
        peers: peers.iter().copied().collect(),
        ..Default::default()
    };
    Transport::start(&identity, config).unwrap()
}

async fn next(inbound: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(PATIENCE, inbound.recv())
        .await
        .expect("a message arrives")
        .expect("the transport is open")
}

/// A small message to pass around, told apart by its view.
fn suspect(view: u64) -> Message {
    Message::Suspect { view: View(view) }
}

/// Waits until `check` holds on the transport's counters.
async fn eventually(transport: &Transport, check: impl Fn(&eve_net::NetCounters) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check(&transport.counters()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "counters never got there: {:?}",
            transport.counters()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_exchange_messages_and_answer_clients_over_their_connections() {
    let ca = ClusterCa::generate("test").unwrap();
    let (r0_addr, v0_addr) = (free_addr(), free_addr());
    let (r0, mut r0_in) = start(&ca, R0, Some(r0_addr), &[(V0, v0_addr)]);
    let (v0, mut v0_in) = start(&ca, V0, Some(v0_addr), &[(R0, r0_addr)]);

    r0.send(V0, &suspect(1)).unwrap();
    let got = next(&mut v0_in).await;
    assert_eq!(
        (got.from, got.msg),
        (R0, suspect(1)),
        "the sender is the certificate's node"
    );
    v0.send(R0, &suspect(2)).unwrap();
    let got = next(&mut r0_in).await;
    assert_eq!((got.from, got.msg), (V0, suspect(2)));

    // The replica has no address for a client: no route until the client connected (asked
    // before the client starts, since a client dials at once and may be connected by the
    // time a later check runs).
    assert_eq!(
        r0.send(C7, &suspect(3)),
        Err(SendError::NoRoute(C7)),
        "no route before the client connected"
    );
    // A client dials; the replica answers over its connection.
    let (client, mut client_in) = start(&ca, C7, None, &[(R0, r0_addr)]);
    client.send(R0, &suspect(4)).unwrap();
    let got = next(&mut r0_in).await;
    assert_eq!((got.from, got.msg), (C7, suspect(4)));
    r0.send(C7, &suspect(5)).unwrap();
    let got = next(&mut client_in).await;
    assert_eq!((got.from, got.msg), (R0, suspect(5)));

    for t in [&r0, &v0, &client] {
        t.close().await;
    }
}

#[test]
fn credentials_for_another_node_are_refused_at_load() {
    let ca = ClusterCa::generate("test").unwrap();
    let err = TlsIdentity::new(R0, &ca.issue(R2).unwrap()).unwrap_err();
    assert!(err.to_string().contains("replica-0.eve"), "{err}");
}

/// A raw QUIC connection to `addr` with `credentials` (or none), as `server_name`.
async fn raw_connect(
    client_node: NodeId,
    credentials: Option<&Credentials>,
    ca: &ClusterCa,
    addr: SocketAddr,
) -> Result<quinn::Connection, String> {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = match credentials {
        Some(credentials) if parse_ok(client_node, credentials) => {
            TlsIdentity::new(client_node, credentials)
                .unwrap()
                .client_config()
                .unwrap()
        }
        other => raw_client_config(ca, other),
    };
    endpoint.set_default_client_config(config);
    let connecting = endpoint
        .connect(addr, &dns_name(R0))
        .map_err(|e| e.to_string())?;
    let connection = connecting.await.map_err(|e| e.to_string())?;
    // The server checks the client's certificate after the handshake's last flight: a
    // refused client sees its connection closed at once.
    match tokio::time::timeout(Duration::from_millis(500), connection.closed()).await {
        Ok(reason) => Err(reason.to_string()),
        Err(_) => Ok(connection),
    }
}

fn parse_ok(node: NodeId, credentials: &Credentials) -> bool {
    TlsIdentity::new(node, credentials).is_ok()
}

/// A client configuration trusting `ca`, presenting `credentials` as they are (no check that
/// they name a node), or no certificate at all.
fn raw_client_config(ca: &ClusterCa, credentials: Option<&Credentials>) -> quinn::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots);
    let mut tls = match credentials {
        None => tls.with_no_client_auth(),
        Some(credentials) => tls
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(credentials.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    tls.alpn_protocols = vec![eve_net::ALPN.to_vec()];
    quinn::ClientConfig::new(std::sync::Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_a_certificate_of_the_cluster_ca_are_refused() {
    let ca = ClusterCa::generate("test").unwrap();
    let addr = free_addr();
    let (r0, _r0_in) = start(&ca, R0, Some(addr), &[]);

    let refused = raw_connect(C7, None, &ca, addr).await;
    assert!(refused.is_err(), "no client certificate: refused");

    let other = ClusterCa::generate("other").unwrap();
    let foreign = other.issue(C7).unwrap();
    let foreign = Credentials {
        ca_pem: ca.cert_pem().to_owned(),
        ..foreign
    };
    let refused = raw_connect(C7, Some(&foreign), &ca, addr).await;
    assert!(refused.is_err(), "a certificate of another CA: refused");

    let nameless = ca.issue_named("backup.example.org").unwrap();
    let refused = raw_connect(C7, Some(&nameless), &ca, addr).await;
    assert!(
        refused.is_err(),
        "a certificate of the CA that names no node: refused"
    );
    eventually(&r0, |c| {
        c.handshake_failures >= 2 && c.identities_refused >= 1
    })
    .await;
    assert_eq!(r0.counters().connections_accepted, 0);
    r0.close().await;
}

/// Opens a stream on `connection`, writes `hello` and then `frames`, and leaves it open (so
/// that only the receiver's checks, not the end of the stream, can close the connection).
async fn raw_stream(connection: &quinn::Connection, hello: &str, frames: &[&[u8]]) {
    let mut stream = connection.open_uni().await.unwrap();
    let _ = stream.write_all(&encode_frame(hello.as_bytes())).await;
    for frame in frames {
        let _ = stream.write_all(frame).await;
    }
    // Kept open until the connection closes.
    std::mem::forget(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_claiming_another_node_is_refused() {
    let ca = ClusterCa::generate("test").unwrap();
    let addr = free_addr();
    let (r0, mut r0_in) = start(&ca, R0, Some(addr), &[]);
    // A valid certificate of replica 2, claiming to be verifier 0.
    let r2 = ca.issue(R2).unwrap();
    let connection = raw_connect(R2, Some(&r2), &ca, addr).await.unwrap();
    let message = encode_frame(&suspect(9).encode());
    raw_stream(&connection, &dns_name(V0), &[&message]).await;
    let closed = tokio::time::timeout(PATIENCE, connection.closed()).await;
    assert!(closed.is_ok(), "the connection is closed");
    eventually(&r0, |c| c.identities_refused == 1).await;
    assert!(r0_in.try_recv().is_err(), "nothing was delivered");
    r0.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_closes_only_its_connection() {
    let ca = ClusterCa::generate("test").unwrap();
    let addr = free_addr();
    let (r0, mut r0_in) = start(&ca, R0, Some(addr), &[]);
    let (honest, _honest_in) = start(&ca, V0, None, &[(R0, addr)]);
    honest.send(R0, &suspect(1)).unwrap();
    assert_eq!(next(&mut r0_in).await.from, V0);

    let r2 = ca.issue(R2).unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("not a message", encode_frame(&[0xff; 40]).to_vec()),
        (
            "longer than the limit",
            ((FRAME_BYTES_MAX + 1) as u32).to_be_bytes().to_vec(),
        ),
        ("empty", 0u32.to_be_bytes().to_vec()),
    ];
    for (i, (what, frame)) in cases.iter().enumerate() {
        let connection = raw_connect(R2, Some(&r2), &ca, addr).await.unwrap();
        raw_stream(&connection, &dns_name(R2), &[frame]).await;
        let closed = tokio::time::timeout(PATIENCE, connection.closed()).await;
        assert!(closed.is_ok(), "{what}: the connection is closed");
        eventually(&r0, |c| c.bad_frames == i as u64 + 1).await;
        // Everyone else is still served.
        honest.send(R0, &suspect(10 + i as u64)).unwrap();
        let got = next(&mut r0_in).await;
        assert_eq!((got.from, got.msg), (V0, suspect(10 + i as u64)), "{what}");
    }
    r0.close().await;
    honest.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_does_not_keep_up_slows_the_sender() {
    let ca = ClusterCa::generate("test").unwrap();
    let addr = free_addr();
    // The replica never takes its inbound messages.
    let (r0, _r0_in) = start(&ca, R0, Some(addr), &[]);
    let (flooder, _flooder_in) = start(&ca, C7, None, &[(R0, addr)]);
    let big = Message::Request(
        eve_types::Request::new(ClientId(7), eve_types::RequestNo(1), vec![7u8; 60_000]).unwrap(),
    );
    let mut refused = 0;
    for _ in 0..20_000 {
        if flooder.send(R0, &big).is_err() {
            refused += 1;
        }
        tokio::task::yield_now().await;
    }
    eventually(&r0, |c| {
        c.messages_received >= eve_net::limits::INBOUND_QUEUE_MESSAGES_MAX as u64 / 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = r0.counters().messages_received;
    assert!(
        received <= eve_net::limits::INBOUND_QUEUE_MESSAGES_MAX as u64 + 64,
        "the replica holds at most its inbound queue (plus what readers hold): {received}"
    );
    assert!(
        refused > 0,
        "the sender's queue filled and refused messages"
    );
    assert_eq!(flooder.counters().send_queue_full, refused);
    r0.close().await;
    flooder.close().await;
}

/// A node keeps routes to at most `routes_max` clients: one more is refused (counted) while
/// they are all connected, and admitted once one of them has gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_past_the_route_limit_are_refused_until_one_leaves() {
    let ca = ClusterCa::generate("test").unwrap();
    let r0_addr = free_addr();
    let identity = TlsIdentity::new(R0, &ca.issue(R0).unwrap()).unwrap();
    let config = TransportConfig {
        listen: Some(r0_addr),
        routes_max: 2,
        ..Default::default()
    };
    let (r0, mut r0_in) = Transport::start(&identity, config).unwrap();
    let client = |n: u64| start(&ca, NodeId::Client(ClientId(n)), None, &[(R0, r0_addr)]);
    let (c1, _c1_in) = client(1);
    let (c2, mut c2_in) = client(2);
    for (c, view) in [(&c1, 1), (&c2, 2)] {
        c.send(R0, &suspect(view)).unwrap();
        assert_eq!(next(&mut r0_in).await.msg, suspect(view));
    }
    let (c3, mut c3_in) = client(3);
    c3.send(R0, &suspect(3)).unwrap();
    eventually(&r0, |c| c.routes_refused >= 1).await;
    assert!(
        r0.send(NodeId::Client(ClientId(3)), &suspect(9)).is_err(),
        "no route to the refused client"
    );

    c1.close().await;
    // The refused client redials and is admitted in the place of the one that left; its
    // message was lost with the refused connection, so it sends again.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let _ = c3.send(R0, &suspect(3));
        if let Ok(Some(got)) = tokio::time::timeout(Duration::from_millis(100), r0_in.recv()).await
        {
            assert_eq!(got.from, NodeId::Client(ClientId(3)));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never admitted");
    }
    r0.send(NodeId::Client(ClientId(3)), &suspect(10)).unwrap();
    assert_eq!(next(&mut c3_in).await.msg, suspect(10));
    r0.send(NodeId::Client(ClientId(2)), &suspect(11)).unwrap();
    assert_eq!(
        next(&mut c2_in).await.msg,
        suspect(11),
        "the others keep theirs"
    );
}

/// A node dials its peers as soon as it starts, not at its first message: a replica can
/// answer a client that has sent it nothing yet (a client needs replies from replicas other
/// than the primary it sent to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_reachable_from_every_replica_before_it_sends() {
    let ca = ClusterCa::generate("test").unwrap();
    let r0_addr = free_addr();
    let (r0, _r0_in) = start(&ca, R0, Some(r0_addr), &[]);
    let (_c7, mut c7_in) = start(&ca, C7, None, &[(R0, r0_addr)]);
    eventually(&r0, |c| c.connections_accepted >= 1).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while r0.send(C7, &suspect(4)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no route to the client"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(next(&mut c7_in).await.msg, suspect(4));
}

/// A replica that checks client signatures learns a client's key when it connects, and checks
/// each signed request as it arrives, before the logic sees it: when the message is handed on,
/// the keyring already remembers its signature as valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_is_checked_as_it_arrives() {
    use eve_agreement::auth::{RequestSigner, RequestVerifier, Verdict};
    let ca = ClusterCa::generate("test").unwrap();
    let cluster = eve_types::Digest([3; 32]);
    let keyring = eve_net::ClientKeyring::new(cluster);
    let r0_addr = free_addr();
    let identity = TlsIdentity::new(R0, &ca.issue(R0).unwrap()).unwrap();
    let config = TransportConfig {
        listen: Some(r0_addr),
        client_keys: Some(keyring.clone()),
        ..Default::default()
    };
    let (_r0, mut r0_in) = Transport::start(&identity, config).unwrap();
    let credentials = ca.issue(C7).unwrap();
    let (client, _client_in) = {
        let identity = TlsIdentity::new(C7, &credentials).unwrap();
        let config = TransportConfig {
            peers: [(R0, r0_addr)].into_iter().collect(),
            ..Default::default()
        };
        Transport::start(&identity, config).unwrap()
    };
    let signer = eve_net::Ed25519Signer::from_credentials(&credentials).unwrap();
    let mut request =
        eve_types::Request::new(ClientId(7), eve_types::RequestNo(1), &b"op"[..]).unwrap();
    request.signature = Some(signer.sign(&request.signing_payload(&cluster)));
    client.send(R0, &Message::Request(request.clone())).unwrap();
    let got = next(&mut r0_in).await;
    assert_eq!(got.msg, Message::Request(request.clone()));
    assert_eq!(keyring.checked_len(), 1, "checked before it was handed on");
    assert_eq!(keyring.verify(&cluster, &[&request]), vec![Verdict::Valid]);
}
