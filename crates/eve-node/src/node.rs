//! A running node: an execution replica, a verifier, or both in one process, each with its
//! own QUIC endpoint, protocol loop and (for the replica) execution thread.

use crate::clock::NodeClock;
use crate::exec_thread::ExecHandle;
use crate::runner::{Command, Runner};
use crate::storage::{Storage, VerifierStart};
use eve_agreement::journal::Recovered;
use eve_agreement::{NodeId, ReplicaExecutor, ReplicaLogic, Verifier};
use eve_exec::{Application, Executor, ThreadPoolRunner};
use eve_mixer::{GreedyMixer, Mixer, SequentialMixer};
use eve_net::{Credentials, NetCounters, TlsIdentity, Transport, TransportConfig};
use eve_state::{StateConfig, StateStore};
use eve_types::{BatchSeq, ReplicaId, ReplicationMode, ValidConfig, VerifierId, View};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::sync::{mpsc, oneshot, watch};

/// What every node of a cluster agrees on: the configuration and where each node listens.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The validated cluster configuration.
    pub config: ValidConfig,
    /// Every execution replica's and verifier's address.
    pub addresses: BTreeMap<NodeId, SocketAddr>,
}

impl ClusterSpec {
    /// Checks that every replica and verifier of the configuration has an address.
    pub fn new(
        config: ValidConfig,
        addresses: BTreeMap<NodeId, SocketAddr>,
    ) -> Result<Self, NodeError> {
        let spec = Self { config, addresses };
        for node in spec.replicas().chain(spec.verifiers()) {
            if !spec.addresses.contains_key(&node) {
                return Err(NodeError::NoAddress(node));
            }
        }
        Ok(spec)
    }

    /// The execution replicas.
    pub fn replicas(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.config.sizes().n_exec as u32).map(|i| NodeId::Replica(ReplicaId(i)))
    }

    /// The verifiers (none in primary-backup mode).
    pub fn verifiers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let n_ver = match self.config.mode {
            ReplicationMode::PrimaryBackup => 0,
            ReplicationMode::Eve { .. } => self.config.sizes().n_ver as u32,
        };
        (0..n_ver).map(|i| NodeId::Verifier(VerifierId(i)))
    }

    /// The nodes `node` sends to, with their addresses: execution replicas talk to each other
    /// and to verifiers, verifiers to replicas and verifiers, clients to replicas.
    pub fn peers_of(&self, node: NodeId) -> BTreeMap<NodeId, SocketAddr> {
        let targets: Vec<NodeId> = match node {
            NodeId::Client(_) => self.replicas().collect(),
            _ => self.replicas().chain(self.verifiers()).collect(),
        };
        targets
            .into_iter()
            .filter(|&peer| peer != node)
            .map(|peer| (peer, self.addresses[&peer]))
            .collect()
    }
}

/// A node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration names no address for a node it has.
    #[error("no address for {0:?}")]
    NoAddress(NodeId),
    /// A role is outside the cluster's size.
    #[error("{0:?} is not a member of this cluster")]
    NotAMember(NodeId),
    /// Neither a replica nor a verifier was asked for.
    #[error("a node needs an execution replica, a verifier, or both")]
    NoRole,
    /// The executor's worker pool could not start.
    #[error("executor: {0}")]
    Executor(String),
    /// TLS material unusable.
    #[error(transparent)]
    Tls(#[from] eve_net::TlsError),
    /// The transport did not start.
    #[error(transparent)]
    Net(#[from] eve_net::NetError),
    /// The data directory could not be used.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// With `r >= 1` a verifier signs its votes with the key of its certificate, which must
    /// be ed25519.
    #[error(
        "{node:?} cannot sign its votes ({source}); with r >= 1 verifiers need ed25519 \
         certificates: issue new credentials with `eve-node init`"
    )]
    VerifierKey {
        /// The verifier.
        node: NodeId,
        /// Why its key cannot sign.
        source: eve_net::SignerError,
    },
}

/// Starts a replica's execution thread, with its journal when the node keeps its state on
/// disk; returns what the journal's recovery found (none for a new data directory or in
/// memory).
/// How a node's replica executes: what the builder chose.
#[derive(Clone, Copy, Debug)]
struct ExecSetup {
    threads: usize,
    execution: Execution,
    forced_divergence_ppm: u32,
}

type ExecSpawner = Box<
    dyn FnOnce(
            &ValidConfig,
            ExecSetup,
            Option<&std::path::Path>,
        ) -> Result<(ExecHandle, Option<Recovered>), NodeError>
        + Send,
>;

/// Builds a node. Call within a tokio runtime.
///
/// ```no_run
/// # async fn demo(spec: eve_node::ClusterSpec, creds: eve_net::Credentials) -> Result<(), eve_node::NodeError> {
/// use eve_types::ReplicaId;
/// let node = eve_node::NodeBuilder::new(spec)
///     .replica(ReplicaId(0), creds, eve_apps::KvStore)
///     .start()?;
/// // ... serve ...
/// node.shutdown().await;
/// # Ok(()) }
/// ```
pub struct NodeBuilder {
    spec: ClusterSpec,
    replica: Option<(ReplicaId, Credentials, ExecSpawner)>,
    verifier: Option<(VerifierId, Credentials)>,
    threads: usize,
    restarted: Option<u64>,
    storage: Storage,
    execution: Execution,
    forced_divergence_ppm: u32,
}

/// How a replica runs the requests of a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Execution {
    /// Eve: the greedy mixer cuts the batch into parallel batches of requests that do not
    /// conflict, run on the executor's threads.
    #[default]
    Parallel,
    /// One request after another in batch order: classic state machine replication, the
    /// baseline Eve is measured against. Sealing still spreads its hashing over the threads.
    Sequential,
}

impl NodeBuilder {
    /// A node of the cluster `spec`, with no role yet.
    pub fn new(spec: ClusterSpec) -> Self {
        Self {
            spec,
            replica: None,
            verifier: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            restarted: None,
            storage: Storage::Memory,
            execution: Execution::Parallel,
            forced_divergence_ppm: 0,
        }
    }

    /// Runs execution replica `id` of `app`.
    pub fn replica<A: Application>(
        mut self,
        id: ReplicaId,
        credentials: Credentials,
        app: A,
    ) -> Self {
        let spawner: ExecSpawner = Box::new(move |config, setup, dir| {
            let runner = ThreadPoolRunner::new(setup.threads)
                .map_err(|e| NodeError::Executor(e.to_string()))?;
            let state = StateStore::new(StateConfig::from_cluster(config));
            let mixer: Box<dyn Mixer> = match setup.execution {
                Execution::Parallel => Box::new(GreedyMixer),
                Execution::Sequential => Box::new(SequentialMixer),
            };
            let mut executor = Executor::new(app, state, mixer, Box::new(runner))
                .with_forced_divergence(setup.forced_divergence_ppm, u64::from(id.0) + 1)
                .with_adaptive_inline(crate::clock::monotonic_ns);
            let (journal, recovered) = match dir {
                Some(dir) => {
                    let me = NodeId::Replica(id);
                    let (journal, recovered) =
                        crate::storage::open_replica(dir, config, me, &mut executor)?;
                    (Some(journal), recovered)
                }
                None => (None, None),
            };
            let mut executor = ReplicaExecutor::new(executor);
            if let Some(journal) = journal {
                executor = executor.with_journal(journal);
            }
            let handle = ExecHandle::spawn(format!("eve-exec-{}", id.0), executor);
            Ok((handle, recovered))
        });
        self.replica = Some((id, credentials, spawner));
        self
    }

    /// Runs verifier `id`.
    pub fn verifier(mut self, id: VerifierId, credentials: Credentials) -> Self {
        self.verifier = Some((id, credentials));
        self
    }

    /// How the replica runs each batch (default: [`Execution::Parallel`]).
    pub fn execution(mut self, execution: Execution) -> Self {
        self.execution = execution;
        self
    }

    /// Benchmark and test knob: the replica diverges, as a concurrency bug would, in `ppm`
    /// parts per million of the batches it executes in parallel (the same batches on every
    /// replica, each replica differently: no token reaches a quorum, the cluster rolls back
    /// and executes the batch again sequentially). See
    /// [`Executor::with_forced_divergence`](eve_exec::Executor::with_forced_divergence).
    pub fn forced_divergence(mut self, ppm: u32) -> Self {
        self.forced_divergence_ppm = ppm;
        self
    }

    /// Worker threads of the executor (default: the cores available).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Starts as a process that restarted without its memory (the in-memory mode): the
    /// replica recovers before it leads, the verifier before it votes. `nonce` must differ
    /// from every earlier incarnation's (a random number, or the start time).
    pub fn restarted(mut self, nonce: u64) -> Self {
        self.restarted = Some(nonce);
        self
    }

    /// Keeps the roles' state where `storage` says (default: in memory). On disk, each role
    /// resumes from its folder of the data directory when it starts again, and
    /// [`restarted`](Self::restarted) does not apply.
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Starts every role's endpoint, loop and execution thread.
    pub fn start(mut self) -> Result<Node, NodeError> {
        if self.replica.is_none() && self.verifier.is_none() {
            return Err(NodeError::NoRole);
        }
        let (shutdown, _) = watch::channel(false);
        let clock = NodeClock::start();
        let config = self.spec.config.clone();
        let mut node = Node {
            shutdown,
            tasks: Vec::new(),
            transports: Vec::new(),
            replica: None,
            verifier: None,
            exec_stats: None,
            histograms: None,
            state_size: None,
            journal: None,
        };
        if let Some((id, credentials, spawner)) = self.replica.take() {
            let me = NodeId::Replica(id);
            if !self.spec.replicas().any(|r| r == me) {
                return Err(NodeError::NotAMember(me));
            }
            let keyring = eve_net::ClientKeyring::new(config.cluster_id);
            let dir = match &self.storage {
                Storage::Disk(dir) => Some(dir.as_path()),
                Storage::Memory => None,
            };
            // The data directory first: a node pointed at another cluster's data stops before
            // it takes its port.
            let setup = ExecSetup {
                threads: self.threads,
                execution: self.execution,
                forced_divergence_ppm: self.forced_divergence_ppm,
            };
            let (exec, recovered) = spawner(&config, setup, dir)?;
            let (transport, inbound) =
                self.transport(me, &credentials, Some(keyring.clone()), None)?;
            node.exec_stats = Some(exec.stats.clone());
            node.histograms = Some(exec.histograms.clone());
            node.state_size = Some(exec.size.clone());
            if dir.is_some() {
                node.journal = Some(exec.journal.clone());
            }
            let logic = match (&self.storage, recovered, self.restarted) {
                (Storage::Disk(_), Some(recovered), _) => {
                    crate::storage::report_recovery(me, &recovered);
                    ReplicaLogic::resume(id, &config, incarnation_nonce(), &recovered)
                }
                (Storage::Disk(_), None, _) | (Storage::Memory, _, None) => {
                    ReplicaLogic::new(id, &config)
                }
                (Storage::Memory, _, Some(nonce)) => ReplicaLogic::restart(id, &config, nonce),
            }
            .with_request_verifier(std::sync::Arc::new(keyring));
            let (runner, commands) =
                Runner::new(logic, transport.clone(), inbound, Some(exec), clock);
            node.tasks
                .push(tokio::spawn(runner.run(node.shutdown.subscribe())));
            node.transports.push(transport);
            node.replica = Some(commands);
        }
        if let Some((id, credentials)) = self.verifier.take() {
            let me = NodeId::Verifier(id);
            if !self.spec.verifiers().any(|v| v == me) {
                return Err(NodeError::NotAMember(me));
            }
            // With r >= 1 verifiers sign their votes and check their peers'.
            let signing = if config.sizes().client_reply_quorum > 1 {
                let signer = eve_net::Ed25519Signer::from_credentials(&credentials)
                    .map_err(|source| NodeError::VerifierKey { node: me, source })?;
                let keyring = eve_net::VerifierKeyring::new(config.cluster_id);
                // Its own key too: it checks its own view change and certificates holding its
                // own votes like any other (found when a cluster with r = 1 restarted from
                // disk and changed view: every verifier refused its own proof).
                keyring.learn_key(id, signer.public_key());
                Some((signer, keyring))
            } else {
                None
            };
            let keys = signing.as_ref().map(|(_, keyring)| keyring.clone());
            let (mut logic, store) = match &self.storage {
                Storage::Memory => match self.restarted {
                    Some(nonce) => (Verifier::restart(id, config.clone(), nonce), None),
                    None => (Verifier::new(id, config.clone()), None),
                },
                Storage::Disk(dir) => {
                    let initial = Verifier::new(id, config.clone()).memory();
                    match crate::storage::open_verifier(dir, &config, me, &initial)? {
                        VerifierStart::New(store) => {
                            (Verifier::new(id, config.clone()), Some(store))
                        }
                        VerifierStart::Resume(store, memory) => {
                            tracing::info!(
                                view = memory.view.0,
                                committed = memory.committed.0.0,
                                "verifier resumed from its memory on disk"
                            );
                            let logic = Verifier::resume(id, config.clone(), *memory, clock.now());
                            (logic, Some(store))
                        }
                        VerifierStart::Lost(store) => {
                            tracing::warn!(
                                "the verifier's memory on disk is lost or damaged: recovering from its peers"
                            );
                            (
                                Verifier::restart(id, config.clone(), incarnation_nonce()),
                                Some(store),
                            )
                        }
                    }
                }
            };
            if store.is_some() {
                logic = logic.with_durable_memory();
            }
            let (transport, inbound) = self.transport(me, &credentials, None, keys)?;
            if let Some((signer, keyring)) = signing {
                let auth = eve_net::Ed25519VerifierAuth::new(signer, keyring);
                logic = logic.with_auth(std::sync::Arc::new(auth));
            }
            let (runner, commands) = Runner::new(logic, transport.clone(), inbound, None, clock);
            let runner = runner.with_store(store);
            node.tasks
                .push(tokio::spawn(runner.run(node.shutdown.subscribe())));
            node.transports.push(transport);
            node.verifier = Some(commands);
        }
        Ok(node)
    }

    fn transport(
        &self,
        me: NodeId,
        credentials: &Credentials,
        client_keys: Option<eve_net::ClientKeyring>,
        verifier_keys: Option<eve_net::VerifierKeyring>,
    ) -> Result<(Transport, mpsc::Receiver<eve_net::Inbound>), NodeError> {
        let identity = TlsIdentity::new(me, credentials)?;
        let config = TransportConfig {
            listen: Some(self.spec.addresses[&me]),
            peers: self.spec.peers_of(me),
            client_keys,
            verifier_keys,
            ..Default::default()
        };
        Ok(Transport::start(&identity, config)?)
    }
}

/// Where one role stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleStatus {
    /// The role.
    pub node: NodeId,
    /// Its view.
    pub view: View,
    /// The primary it follows (replicas).
    pub primary: Option<ReplicaId>,
    /// The last committed batch.
    pub committed: BatchSeq,
    /// The last checkpoint (replicas).
    pub stable: Option<BatchSeq>,
    /// Whether it is recovering after a restart.
    pub recovering: bool,
    /// The root of its last committed state, where it knows it (Eve replicas), in hex.
    pub state_root: Option<String>,
    /// Requests waiting to be ordered and their operation bytes (replicas; the primary's
    /// queue, empty on a backup).
    pub pending: Option<(usize, usize)>,
    /// A one-line summary of its state.
    pub detail: String,
    /// Its counters, as metrics: `(name, help, value)`.
    pub metrics: Vec<Metric>,
    /// Messages its logic dropped, by reason (`stale-request`, `client-in-flight-full`, ...).
    pub drops: Vec<(&'static str, u64)>,
}

/// One counter of a role, named as it is exported (`eve_..._total`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// The metric's name.
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Its value.
    pub value: u64,
}

fn metric(name: &'static str, help: &'static str, value: u64) -> Metric {
    Metric { name, help, value }
}

/// The counters both kinds of replica keep, in the order [`replica_metrics`] gives them.
const REPLICA_METRICS: [(&str, &str); 8] = [
    ("eve_batches_committed_total", "Batches committed."),
    (
        "eve_batches_executed_total",
        "Batches executed, re-executions included.",
    ),
    ("eve_batches_ordered_total", "Batches ordered as primary."),
    (
        "eve_sequential_executions_total",
        "Batches executed sequentially.",
    ),
    (
        "eve_token_mismatches_total",
        "Batches whose token differed from the agreed one (Eve) or the peer's (primary-backup).",
    ),
    ("eve_rollbacks_total", "Rollbacks."),
    ("eve_state_transfers_total", "State transfers started."),
    ("eve_view_changes_total", "View changes followed."),
];

fn replica_metrics(logic: &ReplicaLogic) -> Vec<Metric> {
    let (common, extra) = match logic {
        ReplicaLogic::Eve(r) => {
            let c = r.counters();
            let common = [
                c.batches_committed,
                c.batches_executed,
                c.batches_ordered,
                c.sequential_executions,
                c.divergences,
                c.rollbacks,
                c.state_transfers,
                c.view_changes,
            ];
            let extra = vec![
                metric(
                    "eve_state_transfers_completed_total",
                    "State transfers completed.",
                    c.state_transfers_completed,
                ),
                metric(
                    "eve_replies_sent_total",
                    "Replies sent to clients.",
                    c.replies_sent,
                ),
                metric(
                    "eve_messages_dropped_total",
                    "Messages dropped by the protocol logic.",
                    c.drops.total(),
                ),
            ];
            (common, extra)
        }
        ReplicaLogic::PrimaryBackup(r) => {
            let c = r.counters();
            let common = [
                c.batches_committed,
                c.batches_executed,
                c.batches_ordered,
                c.sequential_executions,
                c.divergences,
                c.rollbacks,
                c.state_transfers,
                c.views_adopted,
            ];
            (common, Vec::new())
        }
    };
    REPLICA_METRICS
        .iter()
        .zip(common)
        .map(|(&(name, help), value)| metric(name, help, value))
        .chain(extra)
        .collect()
}

fn verifier_metrics(logic: &Verifier) -> Vec<Metric> {
    let c = logic.counters();
    vec![
        metric(
            "eve_verifier_batches_committed_total",
            "Batches this verifier committed.",
            c.batches_committed,
        ),
        metric(
            "eve_verifier_no_quorum_total",
            "Batches for which no token could reach the quorum.",
            c.no_quorum,
        ),
        metric(
            "eve_verifier_timeouts_total",
            "Batches that did not commit in time.",
            c.timeouts,
        ),
        metric(
            "eve_verifier_view_changes_total",
            "View changes started or joined.",
            c.view_changes_started,
        ),
        metric(
            "eve_verifier_views_entered_total",
            "Views entered.",
            c.views_entered,
        ),
        metric(
            "eve_verifier_view_changes_refused_total",
            "Stale view-change requests of peers left behind, not joined while the view made progress.",
            c.view_changes_refused,
        ),
        metric(
            "eve_verifier_view_changes_abandoned_total",
            "View changes given up on the word of the view's leader that the view made progress.",
            c.view_changes_abandoned,
        ),
        metric(
            "eve_verifier_catch_up_queries_total",
            "Times the verifier asked its peers what it missed.",
            c.catch_up_queries,
        ),
        metric(
            "eve_verifier_left_a_window_behind_total",
            "Times tokens or votes beyond its window from r + 1 nodes made the verifier ask its peers.",
            c.left_a_window_behind,
        ),
        metric(
            "eve_verifier_recoveries_total",
            "Recoveries after a restart.",
            c.recoveries,
        ),
        metric(
            "eve_verifier_messages_dropped_total",
            "Messages dropped by the protocol logic.",
            c.drops.total(),
        ),
    ]
}

/// What a durable replica's journal did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalReport {
    /// Syncs of its log, each covering every batch logged since the one before.
    pub syncs: usize,
    /// Batches logged.
    pub batches: usize,
    /// Why the journal failed, if it did (a full disk): the replica reports nothing more
    /// until it restarts.
    pub failed: Option<String>,
}

/// A start-time nonce for an incarnation of a process: it must differ from every earlier
/// incarnation's (see [`NodeBuilder::restarted`]), which the wall clock in nanoseconds does.
pub fn incarnation_nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// A running node.
pub struct Node {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    transports: Vec<Transport>,
    replica: Option<mpsc::Sender<Command<ReplicaLogic>>>,
    verifier: Option<mpsc::Sender<Command<Verifier>>>,
    exec_stats: Option<std::sync::Arc<std::sync::Mutex<eve_exec::ExecStats>>>,
    histograms: Option<crate::exec_thread::ExecHistograms>,
    state_size: Option<std::sync::Arc<crate::exec_thread::StateSize>>,
    journal: Option<std::sync::Arc<crate::exec_thread::JournalStats>>,
}

impl Node {
    /// Where each role stands now.
    pub async fn status(&self) -> Vec<RoleStatus> {
        let mut roles = Vec::new();
        if let Some(commands) = &self.replica {
            let status = query(commands, |logic: &ReplicaLogic| RoleStatus {
                node: NodeId::Replica(logic.id()),
                view: logic.view(),
                primary: Some(logic.primary()),
                committed: logic.committed(),
                stable: Some(logic.stable()),
                recovering: match logic {
                    ReplicaLogic::Eve(r) => r.is_recovering(),
                    ReplicaLogic::PrimaryBackup(_) => false,
                },
                state_root: logic
                    .committed_roots()
                    .map(|roots| roots.new_root.to_string()),
                pending: Some(logic.pending()),
                detail: logic.describe(),
                metrics: replica_metrics(logic),
                drops: match logic {
                    ReplicaLogic::Eve(r) => r.counters().drops.iter().collect(),
                    ReplicaLogic::PrimaryBackup(r) => r.counters().drops.iter().collect(),
                },
            });
            roles.extend(status.await);
        }
        if let Some(commands) = &self.verifier {
            let status = query(commands, |logic: &Verifier| RoleStatus {
                node: NodeId::Verifier(logic.id()),
                view: logic.view(),
                primary: None,
                committed: logic.committed(),
                stable: None,
                recovering: logic.is_recovering(),
                state_root: None,
                pending: None,
                detail: logic.describe(),
                metrics: verifier_metrics(logic),
                drops: logic.counters().drops.iter().collect(),
            });
            roles.extend(status.await);
        }
        roles
    }

    /// The replica's executor statistics (parallel batches, requests executed, duplicates),
    /// as of its last batch.
    pub fn exec_stats(&self) -> Option<eve_exec::ExecStats> {
        self.exec_stats
            .as_ref()
            .map(|stats| *stats.lock().expect("never poisoned"))
    }

    /// Objects in the replica's current state.
    pub fn objects(&self) -> Option<usize> {
        self.state_size.as_ref().map(|size| size.objects())
    }

    /// Key and value bytes of the replica's last sealed state.
    pub fn state_bytes(&self) -> Option<usize> {
        self.state_size.as_ref().map(|size| size.bytes())
    }

    /// What a durable replica's journal did, as of its last burst of commands (`None` in
    /// memory).
    pub fn journal(&self) -> Option<JournalReport> {
        self.journal.as_ref().map(|j| JournalReport {
            syncs: j.syncs(),
            batches: j.batches(),
            failed: j.halted(),
        })
    }

    /// The replica's per-batch histograms (requests per batch, parallel batch width).
    pub fn histograms(&self) -> Option<crate::exec_thread::ExecHistograms> {
        self.histograms.clone()
    }

    /// The addresses the roles' endpoints are bound to.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.transports
            .iter()
            .filter_map(|t| t.local_addr().ok())
            .collect()
    }

    /// What the transports did.
    pub fn net_counters(&self) -> Vec<(NodeId, NetCounters)> {
        self.transports
            .iter()
            .map(|t| (t.node(), t.counters()))
            .collect()
    }

    /// Stops every loop, closes the endpoints and waits for the execution thread.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let closing: Vec<_> = self
            .transports
            .into_iter()
            .map(|transport| tokio::spawn(async move { transport.close().await }))
            .collect();
        for close in closing {
            let _ = close.await;
        }
    }
}

/// Runs `f` on the logic between events and returns its answer (`None` if the loop stopped).
async fn query<L, T>(
    commands: &mpsc::Sender<Command<L>>,
    f: impl FnOnce(&L) -> T + Send + 'static,
) -> Option<T>
where
    L: eve_agreement::Logic + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let command: Command<L> = Box::new(move |driver, _io| {
        let _ = tx.send(f(driver.logic()));
    });
    commands.send(command).await.ok()?;
    rx.await.ok()
}
