//! A whole cluster in one test process over real loopback QUIC with mutual TLS: three
//! processes' worth of nodes (replica i and verifier i each), the key-value application, and
//! clients calling through `EveClient`.

use bytes::Bytes;
use eve_agreement::NodeId;
use eve_apps::{KvOp, KvReply, KvStore};
use eve_net::ClusterCa;
use eve_node::storage::Storage;
use eve_node::{ClusterSpec, EveClient, Node, NodeBuilder};
use eve_types::{ClientId, ClusterConfig, ReplicaId, ReplicationMode, VerifierId};
use std::collections::BTreeMap;
use std::time::Duration;

fn free_addr() -> std::net::SocketAddr {
    let port = eve_node::ports::free_loopback_ports(1).unwrap();
    ([127, 0, 0, 1], port).into()
}

fn spec(mode: ReplicationMode) -> ClusterSpec {
    let mut config = ClusterConfig::new(mode);
    config.batch_timeout_ms = 1;
    let config = config.validate().unwrap();
    let sizes = config.sizes();
    let mut addresses = BTreeMap::new();
    for i in 0..sizes.n_exec as u32 {
        addresses.insert(NodeId::Replica(ReplicaId(i)), free_addr());
    }
    if matches!(mode, ReplicationMode::Eve { .. }) {
        for i in 0..sizes.n_ver as u32 {
            addresses.insert(NodeId::Verifier(VerifierId(i)), free_addr());
        }
    }
    ClusterSpec::new(config, addresses).unwrap()
}

/// Starts replica i together with verifier i (where there is one) in one node each.
fn start_cluster(spec: &ClusterSpec, ca: &ClusterCa) -> Vec<Node> {
    start_cluster_with(spec, ca, &Storage::Memory)
}

/// [`start_cluster`], keeping the state where `storage` says.
fn start_cluster_with(spec: &ClusterSpec, ca: &ClusterCa, storage: &Storage) -> Vec<Node> {
    let n_exec = spec.replicas().count() as u32;
    let n_ver = spec.verifiers().count() as u32;
    let issue = |node| ca.issue(node).unwrap();
    (0..n_exec.max(n_ver))
        .map(|i| node_builder(spec, &issue, storage, i).start().unwrap())
        .collect()
}

/// The builder of node `i`: replica i and verifier i, where they exist, with the credentials
/// `issue` gives them.
fn node_builder(
    spec: &ClusterSpec,
    issue: &dyn Fn(NodeId) -> eve_net::Credentials,
    storage: &Storage,
    i: u32,
) -> NodeBuilder {
    let n_exec = spec.replicas().count() as u32;
    let n_ver = spec.verifiers().count() as u32;
    let mut builder = NodeBuilder::new(spec.clone())
        .threads(2)
        .storage(storage.clone());
    if i < n_exec {
        let me = NodeId::Replica(ReplicaId(i));
        builder = builder.replica(ReplicaId(i), issue(me), KvStore);
    }
    if i < n_ver {
        let me = NodeId::Verifier(VerifierId(i));
        builder = builder.verifier(VerifierId(i), issue(me));
    }
    builder
}

/// Starts every node with the credentials in `credentials` (a node keeps its key across
/// restarts: a verifier's memory holds certificates signed with it), retrying a port the
/// operating system has not released yet after a cluster on the same addresses stopped.
async fn start_cluster_again(
    spec: &ClusterSpec,
    credentials: &BTreeMap<NodeId, eve_net::Credentials>,
    storage: &Storage,
) -> Vec<Node> {
    let n = spec.replicas().count().max(spec.verifiers().count()) as u32;
    let issue = |node: NodeId| credentials[&node].clone();
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut tries = 0;
        loop {
            match node_builder(spec, &issue, storage, i).start() {
                Ok(node) => break nodes.push(node),
                // A port not released yet, or the previous attempt's execution thread still
                // letting go of the data directory: try again shortly.
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("node {i} does not start again: {err}"),
            }
        }
    }
    nodes
}

fn put(key: &str, value: &str) -> Bytes {
    KvOp::Put {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
    .encode()
}

fn get(key: &str) -> Bytes {
    KvOp::Get {
        key: Bytes::copy_from_slice(key.as_bytes()),
    }
    .encode()
}

fn value(reply: &[u8]) -> Option<String> {
    match KvReply::decode(reply).unwrap() {
        KvReply::Value(v) => v.map(|b| String::from_utf8_lossy(&b).into_owned()),
        other => panic!("expected a value, got {other:?}"),
    }
}

async fn serves_writes_and_reads(mode: ReplicationMode) {
    let spec = spec(mode);
    let ca = ClusterCa::generate("test").unwrap();
    let nodes = start_cluster(&spec, &ca);
    let clients: Vec<EveClient> = (1..=3)
        .map(|i| {
            let id = ClientId(i);
            EveClient::connect(&spec, id, &ca.issue(NodeId::Client(id)).unwrap()).unwrap()
        })
        .collect();
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..20 {
                let key = format!("k{i}");
                let before = client.call(put(&key, &format!("v{n}"))).await.unwrap();
                let expected = (n > 0).then(|| format!("v{}", n - 1));
                assert_eq!(
                    value(&before),
                    expected,
                    "a put returns the value before it"
                );
            }
            let read = client.call(get(&format!("k{i}"))).await.unwrap();
            assert_eq!(value(&read), Some("v19".to_owned()));
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register(
                "eve_client_request_duration_seconds",
                "Call durations.",
                client.request_durations(),
            );
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            assert!(
                text.contains("eve_client_request_duration_seconds_count 21"),
                "every successful call is timed:\n{text}"
            );
            client.close().await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Every replica commits the same batches (the client needed only r + 1).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut committed = Vec::new();
        for node in &nodes {
            for role in node.status().await {
                if let NodeId::Replica(_) = role.node {
                    committed.push(role.committed);
                }
            }
        }
        if committed.iter().all(|c| *c == committed[0]) && committed[0].0 > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas never agreed: {committed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eve_cluster_on_loopback_serves_writes_and_reads() {
    serves_writes_and_reads(ReplicationMode::Eve { u: 1, r: 0 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byzantine_tolerant_cluster_on_loopback_serves_writes_and_reads() {
    serves_writes_and_reads(ReplicationMode::Eve { u: 1, r: 1 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_backup_pair_on_loopback_serves_writes_and_reads() {
    serves_writes_and_reads(ReplicationMode::PrimaryBackup).await;
}

/// A client that floods the primary with requests over the real transport: its own send
/// queue fills (the transport refuses more than it can carry), the primary holds at most
/// `CLIENT_IN_FLIGHT_MAX` of its requests and drops the rest (counted), and another client is
/// served all the while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_held_back_while_others_are_served() {
    use eve_agreement::{Message, limits::CLIENT_IN_FLIGHT_MAX};
    use eve_net::{SendError, TlsIdentity, Transport, TransportConfig};
    use eve_types::{Request, RequestNo};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let spec = spec(ReplicationMode::Eve { u: 1, r: 0 });
    let ca = ClusterCa::generate("test").unwrap();
    let nodes = start_cluster(&spec, &ca);
    let flooder = NodeId::Client(ClientId(66));
    let identity = TlsIdentity::new(flooder, &ca.issue(flooder).unwrap()).unwrap();
    let (transport, _replies) = Transport::start(
        &identity,
        TransportConfig {
            listen: None,
            peers: spec.peers_of(flooder),
            ..Default::default()
        },
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        let primary = NodeId::Replica(ReplicaId(0));
        tokio::spawn(async move {
            let (mut queued, mut refused) = (0u64, 0u64);
            let mut no = 0;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..512 {
                    no += 1;
                    let op = put(&format!("flood{}", no % 64), &"x".repeat(1024));
                    let request = Request::new(ClientId(66), RequestNo(no), op).unwrap();
                    match transport.send(primary, &Message::Request(request)) {
                        Ok(()) => queued += 1,
                        Err(SendError::QueueFull(_)) => refused += 1,
                        Err(other) => panic!("unexpected: {other}"),
                    }
                }
                tokio::task::yield_now().await;
            }
            transport.close().await;
            (queued, refused)
        })
    };

    let id = ClientId(1);
    let client = EveClient::connect(&spec, id, &ca.issue(NodeId::Client(id)).unwrap()).unwrap();
    let mut most_pending = 0;
    for n in 0..30 {
        client.call(put("good", &format!("v{n}"))).await.unwrap();
        let primary = nodes[0].status().await;
        let (pending, _) = primary[0].pending.expect("a replica reports its queue");
        most_pending = most_pending.max(pending);
    }
    let read = client.call(get("good")).await.unwrap();
    assert_eq!(
        value(&read),
        Some("v29".to_owned()),
        "the other client is served"
    );
    stop.store(true, Ordering::Relaxed);
    let (queued, refused) = flood.await.unwrap();
    assert!(
        refused > 0,
        "the flooder's queue filled: {queued} queued, {refused} refused"
    );
    assert!(
        most_pending <= CLIENT_IN_FLIGHT_MAX + 1,
        "the primary held at most CLIENT_IN_FLIGHT_MAX of the flooder's requests, saw {most_pending}"
    );
    let dropped: u64 = nodes[0].status().await[0]
        .metrics
        .iter()
        .filter(|m| m.name == "eve_messages_dropped_total")
        .map(|m| m.value)
        .sum();
    assert!(dropped > 0, "the primary dropped and counted the excess");
    let metrics = eve_node::admin::metrics_text(&nodes[0]).await;
    assert!(
        metrics.contains("eve_replica_0_dropped_total{reason=\"client-in-flight-full\"}"),
        "drops are exported by reason:\n{metrics}"
    );
    assert!(
        metrics.lines().all(|line| !line.ends_with("..")),
        "help texts end with one period:\n{metrics}"
    );
    client.close().await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// With r = 1 a request counts only with its client's signature: a Byzantine replica (here a
/// process holding replica 1's certificate) relays a request in client 1's name with a request
/// number near the top. The primary drops it (counted), and client 1's own requests, signed
/// with the key its certificate holds, still commit: nothing made them stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_r_1_a_relayed_request_its_client_did_not_sign_is_dropped() {
    use eve_agreement::Message;
    use eve_net::{TlsIdentity, Transport, TransportConfig};
    use eve_types::{Request, RequestNo};

    let spec = spec(ReplicationMode::Eve { u: 1, r: 1 });
    let ca = ClusterCa::generate("test").unwrap();
    let nodes = start_cluster(&spec, &ca);
    let liar = NodeId::Replica(ReplicaId(1));
    let identity = TlsIdentity::new(liar, &ca.issue(liar).unwrap()).unwrap();
    let primary = NodeId::Replica(ReplicaId(0));
    let (transport, _inbound) = Transport::start(
        &identity,
        TransportConfig {
            listen: None,
            peers: [(primary, spec.addresses[&primary])].into(),
            ..Default::default()
        },
    )
    .unwrap();
    let forged = Request::new(ClientId(1), RequestNo(u64::MAX - 1), put("k", "forged")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let dropped = loop {
        let _ = transport.send(primary, &Message::Request(forged.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let status = nodes[0].status().await;
        let unsigned = status[0]
            .drops
            .iter()
            .find(|(reason, _)| *reason == "unsigned-request")
            .map_or(0, |(_, n)| *n);
        if unsigned > 0 {
            break unsigned;
        }
        assert!(tokio::time::Instant::now() < deadline, "never dropped");
    };
    assert!(dropped > 0);
    let id = ClientId(1);
    let client = EveClient::connect(&spec, id, &ca.issue(NodeId::Client(id)).unwrap()).unwrap();
    client.call(put("k", "real")).await.unwrap();
    let read = client.call(get("k")).await.unwrap();
    assert_eq!(
        value(&read),
        Some("real".to_owned()),
        "the forgery never ran"
    );
    client.close().await;
    transport.close().await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// With r = 1 a verifier signs its votes with the key of its certificate: one whose certificate
/// holds no ed25519 key (credentials made before verifiers signed) does not start, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_r_1_a_verifier_without_an_ed25519_key_refuses_to_start() {
    let spec = spec(ReplicationMode::Eve { u: 1, r: 1 });
    let ca = ClusterCa::generate("test").unwrap();
    let me = NodeId::Verifier(VerifierId(0));
    let old = ca.issue_named(&eve_net::dns_name(me)).unwrap();
    let err = NodeBuilder::new(spec.clone())
        .verifier(VerifierId(0), old)
        .start()
        .err()
        .expect("a verifier that cannot sign");
    assert!(
        matches!(err, eve_node::NodeError::VerifierKey { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ed25519"), "{err}");
    let started = NodeBuilder::new(spec)
        .verifier(VerifierId(0), ca.issue(me).unwrap())
        .start();
    assert!(started.is_ok(), "a verifier with an ed25519 key starts");
}

/// Client `id` of the cluster, with a long timeout: after a whole cluster restarts, the first
/// call waits for a view change, which a loaded machine slows down.
fn patient_client(spec: &ClusterSpec, ca: &ClusterCa, id: u64) -> EveClient {
    let id = ClientId(id);
    EveClient::connect(spec, id, &ca.issue(NodeId::Client(id)).unwrap())
        .unwrap()
        .with_timeout(Duration::from_secs(60))
}

/// Every node of a cluster on disk stops at once and starts again from its data directory:
/// every acknowledged write is still there, and the cluster goes on serving.
async fn survives_stopping_everywhere(mode: ReplicationMode) {
    let spec = spec(mode);
    let ca = ClusterCa::generate("test").unwrap();
    let data = tempfile::tempdir().unwrap();
    let storage = Storage::Disk(data.path().to_path_buf());
    let credentials: BTreeMap<NodeId, eve_net::Credentials> = spec
        .replicas()
        .chain(spec.verifiers())
        .map(|node| (node, ca.issue(node).unwrap()))
        .collect();
    let nodes = start_cluster_again(&spec, &credentials, &storage).await;
    let client = patient_client(&spec, &ca, 1);
    for n in 0..30 {
        client
            .call(put(&format!("k{}", n % 7), &format!("v{n}")))
            .await
            .unwrap();
    }
    client.close().await;
    let journaled: usize = nodes
        .iter()
        .filter_map(|node| node.journal())
        .map(|journal| {
            assert_eq!(journal.failed, None);
            journal.batches
        })
        .sum();
    assert!(journaled > 0, "replicas on disk log their batches");
    for node in nodes {
        node.shutdown().await;
    }
    // Everything stopped; the same data directories, a new start (on new ports: the old ones
    // may not be released yet, or taken by another test).
    let addresses = spec
        .addresses
        .keys()
        .map(|&node| (node, free_addr()))
        .collect();
    let spec = ClusterSpec::new(spec.config.clone(), addresses).unwrap();
    let nodes = start_cluster_again(&spec, &credentials, &storage).await;
    let client = patient_client(&spec, &ca, 2);
    for k in 0..7 {
        let last = (0..30).rev().find(|n| n % 7 == k).unwrap();
        let read = match client.call(get(&format!("k{k}"))).await {
            Ok(read) => read,
            Err(err) => {
                let mut states = Vec::new();
                for node in &nodes {
                    for role in node.status().await {
                        states.push(format!("{} drops {:?}", role.detail, role.drops));
                    }
                }
                panic!(
                    "{err}: the cluster after its restart:\n{}",
                    states.join("\n")
                );
            }
        };
        assert_eq!(
            value(&read),
            Some(format!("v{last}")),
            "an acknowledged write survives every node stopping at once"
        );
    }
    let before = client.call(put("k0", "after")).await.unwrap();
    assert_eq!(value(&before), Some("v28".to_owned()));
    client.close().await;
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eve_cluster_on_disk_keeps_every_acknowledged_write_when_every_node_stops() {
    survives_stopping_everywhere(ReplicationMode::Eve { u: 1, r: 0 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byzantine_tolerant_cluster_on_disk_keeps_every_acknowledged_write_when_every_node_stops()
{
    survives_stopping_everywhere(ReplicationMode::Eve { u: 1, r: 1 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_another_cluster_is_refused_naming_whose_it_is() {
    let spec = spec(ReplicationMode::Eve { u: 1, r: 0 });
    let data = tempfile::tempdir().unwrap();
    let storage = Storage::Disk(data.path().to_path_buf());
    let first = ClusterCa::generate("first").unwrap();
    let node = NodeBuilder::new(spec.clone())
        .storage(storage.clone())
        .verifier(
            VerifierId(0),
            first.issue(NodeId::Verifier(VerifierId(0))).unwrap(),
        )
        .start()
        .unwrap();
    node.shutdown().await;
    // Another cluster (another CA, so another cluster id) pointed at the same directory.
    let mut other = ClusterConfig::clone(&spec.config);
    other.cluster_id = eve_types::Digest([7; 32]);
    let other = ClusterSpec::new(other.validate().unwrap(), spec.addresses.clone()).unwrap();
    let second = ClusterCa::generate("second").unwrap();
    let refused = NodeBuilder::new(other)
        .storage(storage)
        .verifier(
            VerifierId(0),
            second.issue(NodeId::Verifier(VerifierId(0))).unwrap(),
        )
        .start();
    let err = refused
        .err()
        .expect("the node refuses to start")
        .to_string();
    assert!(
        err.contains("belongs to") && err.contains("verifier-0"),
        "one clear line: {err}"
    );
}

/// A replica's state moved to a new cluster: saved from a cluster on disk, checked and
/// restored as the initial state of every replica of another cluster (another CA), which then
/// serves it. A damaged snapshot and a data directory that holds state are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_moves_a_state_to_a_new_cluster_and_a_damaged_one_is_refused() {
    let spec = spec(ReplicationMode::Eve { u: 1, r: 0 });
    let ca = ClusterCa::generate("old").unwrap();
    let data = tempfile::tempdir().unwrap();
    let storage = Storage::Disk(data.path().to_path_buf());
    let nodes = start_cluster_with(&spec, &ca, &storage);
    let client = patient_client(&spec, &ca, 1);
    for n in 0..80 {
        client
            .call(put(&format!("k{n}"), &format!("v{n}")))
            .await
            .unwrap();
    }
    client.close().await;
    for node in nodes {
        node.shutdown().await;
    }
    let file = data.path().join("state.snapshot");
    let replica0 = NodeId::Replica(ReplicaId(0));
    let saved = eve_node::snapshot::save(data.path(), &spec.config, replica0, &file).unwrap();
    assert!(
        saved.version >= 64,
        "a checkpoint every 64 batches: {saved:?}"
    );

    // Another cluster: another CA, other addresses, empty data directories.
    let new_spec = self::spec(ReplicationMode::Eve { u: 1, r: 0 });
    let mut config = ClusterConfig::clone(&new_spec.config);
    config.cluster_id = eve_types::Digest([9; 32]);
    let new_spec = ClusterSpec::new(config.validate().unwrap(), new_spec.addresses).unwrap();
    let new_ca = ClusterCa::generate("new").unwrap();
    let new_data = tempfile::tempdir().unwrap();
    let mut damaged = std::fs::read(&file).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let damaged_file = data.path().join("damaged.snapshot");
    std::fs::write(&damaged_file, damaged).unwrap();
    let err =
        eve_node::snapshot::restore(new_data.path(), &new_spec.config, replica0, &damaged_file)
            .unwrap_err()
            .to_string();
    assert!(err.contains("checksum"), "{err}");
    for i in 0..3 {
        let node = NodeId::Replica(ReplicaId(i));
        let restored =
            eve_node::snapshot::restore(new_data.path(), &new_spec.config, node, &file).unwrap();
        assert_eq!(restored, saved);
    }
    let again = eve_node::snapshot::restore(new_data.path(), &new_spec.config, replica0, &file)
        .unwrap_err()
        .to_string();
    assert!(again.contains("already holds"), "{again}");

    let nodes = start_cluster_with(&new_spec, &new_ca, &Storage::Disk(new_data.path().into()));
    let client = patient_client(&new_spec, &new_ca, 9);
    for n in [0, 31, 63] {
        let read = client.call(get(&format!("k{n}"))).await.unwrap();
        assert_eq!(
            value(&read),
            Some(format!("v{n}")),
            "the moved state serves k{n}"
        );
    }
    let read = client.call(get("k79")).await.unwrap();
    assert_eq!(
        value(&read),
        None,
        "written after the checkpoint: not in the snapshot"
    );
    client.close().await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// The baseline Eve is measured against: replicas that run each batch one request after
/// another (`Execution::Sequential`) serve the same calls, in parallel batches one request
/// wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_cluster_with_sequential_execution_runs_one_request_at_a_time() {
    use eve_node::Execution;
    use eve_node::local::{LocalCluster, LocalOptions};
    let options = LocalOptions {
        execution: Execution::Sequential,
        threads: Some(2),
        ..LocalOptions::new(ReplicationMode::Eve { u: 1, r: 0 }, 0)
    };
    let cluster = LocalCluster::start(&options, |_| KvStore).unwrap();
    let mut clients = Vec::new();
    for c in 1..=4u64 {
        let client = cluster.client(ClientId(c)).unwrap();
        clients.push(tokio::spawn(async move {
            for i in 0..20 {
                let key = format!("k{c}-{i}");
                client.call(put(&key, "v")).await.unwrap();
                let reply = client.call(get(&key)).await.unwrap();
                assert_eq!(value(&reply).as_deref(), Some("v"));
            }
            client.close().await;
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let totals = cluster.totals().await;
    assert!(totals.requests_executed >= 3 * 160, "{totals:?}");
    assert_eq!(
        totals.parallel_batches, totals.requests_executed,
        "one request per parallel batch"
    );
    cluster.shutdown().await;
}
