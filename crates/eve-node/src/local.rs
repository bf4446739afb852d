//! A whole cluster in this process, every node on its own loopback QUIC endpoint with mutual
//! TLS: what `eve-node demo` and the end-to-end benchmark run, and a quick way to try an
//! application replicated.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use eve_node::local::{LocalCluster, LocalOptions};
//! use eve_types::{ClientId, ReplicationMode};
//! let options = LocalOptions::new(ReplicationMode::Eve { u: 1, r: 0 }, 7700);
//! let cluster = LocalCluster::start(&options, |_| eve_apps::KvStore)?;
//! let client = cluster.client(ClientId(1))?;
//! let op = eve_apps::KvOp::Get { key: bytes::Bytes::from_static(b"k") }.encode();
//! let reply = client.call(op).await?;
//! # let _ = reply;
//! client.close().await;
//! cluster.shutdown().await;
//! # Ok(()) }
//! ```

use crate::storage::Storage;
use crate::{ClusterSpec, EveClient, Execution, Node, NodeBuilder};
use anyhow::{Context, Result};
use eve_agreement::NodeId;
use eve_exec::Application;
use eve_net::ClusterCa;
use eve_types::{ClientId, ClusterConfig, ReplicaId, ReplicationMode, VerifierId};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A loopback address whose port is free (see [`crate::ports`]).
fn free_port() -> Result<SocketAddr> {
    let port = crate::ports::free_loopback_ports(1).context("finding a free port")?;
    Ok(([127, 0, 0, 1], port).into())
}

/// What a local cluster runs.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Eve with its `u` and `r`, or primary-backup.
    pub mode: ReplicationMode,
    /// The first port; the nodes take the ports from it on, one each. `0`: each node takes
    /// a free port below the ephemeral range ([`crate::ports`]).
    pub base_port: u16,
    /// Where the nodes keep their state (each role in its own folder of a disk directory).
    pub storage: Storage,
    /// Executor worker threads per replica (`None`: the cores available).
    pub threads: Option<usize>,
    /// Parallel (Eve) or sequential execution.
    pub execution: Execution,
    /// The state tree's buckets, `2^bits` (`None`: the configuration's default).
    pub bucket_bits: Option<u8>,
    /// Parts per million of parallel batches every replica is made to diverge on (see
    /// [`NodeBuilder::forced_divergence`]); 0 in any real deployment.
    pub forced_divergence_ppm: u32,
}

impl LocalOptions {
    /// A cluster of `mode` from `base_port` on, in memory, parallel, with every core.
    pub fn new(mode: ReplicationMode, base_port: u16) -> Self {
        Self {
            mode,
            base_port,
            storage: Storage::Memory,
            threads: None,
            execution: Execution::Parallel,
            bucket_bits: None,
            forced_divergence_ppm: 0,
        }
    }
}

/// A running local cluster (see the module documentation).
pub struct LocalCluster {
    spec: ClusterSpec,
    ca: ClusterCa,
    nodes: Vec<Node>,
}

/// Counters summed over a cluster's nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterTotals {
    /// Replicas' tokens that differed from the agreed one.
    pub token_mismatches: u64,
    /// State transfers completed.
    pub state_transfers: u64,
    /// Rollbacks.
    pub rollbacks: u64,
    /// Batches executed again sequentially.
    pub sequential_executions: u64,
    /// The most views any verifier entered.
    pub views_entered: u64,
    /// Requests the replicas executed, over all replicas.
    pub requests_executed: u64,
    /// Parallel batches the replicas ran, over all replicas.
    pub parallel_batches: u64,
    /// Log syncs, over all replicas on disk.
    pub log_syncs: u64,
    /// Batches logged, over all replicas on disk.
    pub batches_logged: u64,
}

impl LocalCluster {
    /// Starts every node of a cluster of `options.mode` on loopback, each replica `i` running
    /// `app(i)`. A node hosts replica `i` and verifier `i` where both exist.
    pub fn start<A: Application>(
        options: &LocalOptions,
        app: impl Fn(ReplicaId) -> A,
    ) -> Result<Self> {
        let mut config = ClusterConfig::new(options.mode);
        if let Some(bits) = options.bucket_bits {
            config.merkle_bucket_bits = bits;
        }
        let config = config.validate()?;
        let sizes = config.sizes();
        let nodes_wanted = (0..sizes.n_exec as u32)
            .map(|i| NodeId::Replica(ReplicaId(i)))
            .chain((0..sizes.n_ver as u32).map(|i| NodeId::Verifier(VerifierId(i))));
        let addresses: BTreeMap<_, SocketAddr> = match options.base_port {
            0 => nodes_wanted
                .map(|node| Ok((node, free_port()?)))
                .collect::<Result<_>>()?,
            base => nodes_wanted
                .zip(base..)
                .map(|(node, port)| (node, ([127, 0, 0, 1], port).into()))
                .collect(),
        };
        let spec = ClusterSpec::new(config, addresses)?;
        let ca = ClusterCa::generate("local")?;
        let mut nodes = Vec::new();
        for i in 0..sizes.n_exec.max(sizes.n_ver) as u32 {
            let mut builder = NodeBuilder::new(spec.clone())
                .storage(options.storage.clone())
                .execution(options.execution)
                .forced_divergence(options.forced_divergence_ppm);
            if let Some(threads) = options.threads {
                builder = builder.threads(threads);
            }
            if (i as usize) < sizes.n_exec {
                let creds = ca.issue(NodeId::Replica(ReplicaId(i)))?;
                builder = builder.replica(ReplicaId(i), creds, app(ReplicaId(i)));
            }
            if (i as usize) < sizes.n_ver {
                let creds = ca.issue(NodeId::Verifier(VerifierId(i)))?;
                builder = builder.verifier(VerifierId(i), creds);
            }
            nodes.push(builder.start().context("starting a node")?);
        }
        Ok(Self { spec, ca, nodes })
    }

    /// A client of the cluster, with credentials of this cluster's authority.
    pub fn client(&self, id: ClientId) -> Result<EveClient> {
        let credentials = self.ca.issue(NodeId::Client(id))?;
        Ok(EveClient::connect(&self.spec, id, &credentials)?)
    }

    /// The cluster's description.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The nodes, for status and metrics.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Counters summed over the nodes.
    pub async fn totals(&self) -> ClusterTotals {
        let mut totals = ClusterTotals::default();
        for node in &self.nodes {
            for role in node.status().await {
                for m in &role.metrics {
                    match m.name {
                        "eve_token_mismatches_total" => totals.token_mismatches += m.value,
                        "eve_state_transfers_completed_total" => totals.state_transfers += m.value,
                        "eve_rollbacks_total" => totals.rollbacks += m.value,
                        "eve_sequential_executions_total" => {
                            totals.sequential_executions += m.value
                        }
                        "eve_verifier_views_entered_total" => {
                            totals.views_entered = totals.views_entered.max(m.value)
                        }
                        _ => {}
                    }
                }
            }
            if let Some(journal) = node.journal() {
                totals.log_syncs += journal.syncs as u64;
                totals.batches_logged += journal.batches as u64;
            }
            if let Some(stats) = node.exec_stats() {
                totals.requests_executed += stats.requests_executed;
                totals.parallel_batches += stats.parallel_batches;
            }
        }
        totals
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}
