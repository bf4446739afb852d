//! A whole cluster in one test process over real loopback QUIC with mutual TLS: three
//! processes' worth of nodes (replica i and verifier i each), the key-value application, and
//! clients calling through `EveClient`.

use bytes::Bytes;
use eve_agreement::NodeId;
use eve_apps::{KvOp, KvReply, KvStore};
use eve_net::ClusterCa;
use eve_node::{ClusterSpec, EveClient, Node, NodeBuilder};
use eve_types::{ClientId, ClusterConfig, ReplicaId, ReplicationMode, VerifierId};
use std::collections::BTreeMap;
use std::time::Duration;

fn free_addr() -> std::net::SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
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
    let n_exec = spec.replicas().count() as u32;
    let n_ver = spec.verifiers().count() as u32;
    (0..n_exec.max(n_ver))
        .map(|i| {
            let mut builder = NodeBuilder::new(spec.clone()).threads(2);
            if i < n_exec {
                let me = NodeId::Replica(ReplicaId(i));
                builder = builder.replica(ReplicaId(i), ca.issue(me).unwrap(), KvStore);
            }
            if i < n_ver {
                let me = NodeId::Verifier(VerifierId(i));
                builder = builder.verifier(VerifierId(i), ca.issue(me).unwrap());
            }
            builder.start().unwrap()
        })
        .collect()
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
