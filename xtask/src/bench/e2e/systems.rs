//! The systems the end-to-end benchmark measures side by side, each started fresh for a point
//! and stopped after it.

use super::alone::Alone;
use super::etcd::{self, Etcd, EtcdCaller};
use super::load::Caller;
use anyhow::Result;
use bytes::Bytes;
use eve_exec::Application;
use eve_node::local::{LocalCluster, LocalOptions};
use eve_node::storage::Storage;
use eve_node::{EveClient, Execution};
use eve_state::StateConfig;
use eve_types::{ClientId, ReplicationMode};
use std::fmt;
use std::path::PathBuf;

/// One system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    /// Eve, u = 1, r = 0, parallel execution.
    Eve,
    /// The same cluster with the sequential mixer: classic sequential-execution replication,
    /// the paper's main baseline.
    EveSequential,
    /// Eve's primary-backup mode, parallel: what the paper compares with Remus.
    PrimaryBackup,
    /// The application alone, unreplicated, parallel: the ceiling.
    Alone,
    /// Eve tolerating one Byzantine fault (u = 1, r = 1: a prepare round, signed votes, four
    /// verifiers): what that costs.
    EveByzantine,
    /// Eve, u = 1, r = 0, every role on disk (a write-ahead log and checkpoints per replica,
    /// a synced memory per verifier): what durability costs.
    EveDisk,
    /// etcd, three members on loopback (always on disk): the peer a user would otherwise pick
    /// for a replicated key-value store. YCSB workloads only.
    Etcd,
}

impl System {
    /// Every system, in report order: the baseline first, so that the others' ratios to it
    /// print as they are measured.
    pub const ALL: [System; 7] = [
        System::EveSequential,
        System::Eve,
        System::PrimaryBackup,
        System::Alone,
        System::EveByzantine,
        System::EveDisk,
        System::Etcd,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            System::Eve => "eve",
            System::EveSequential => "eve-seq",
            System::PrimaryBackup => "pb",
            System::Alone => "alone",
            System::EveByzantine => "eve-r1",
            System::EveDisk => "eve-disk",
            System::Etcd => "etcd",
        }
    }

    /// Parses a name of [`name`](Self::name).
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|s| s.name()).collect();
                anyhow::anyhow!("unknown system {name:?}: one of {}", names.join(", "))
            })
    }

    /// Execution replicas, each with its own copy of the state and its own execution (the
    /// denominator of the machine's limit).
    pub fn replicas(self) -> usize {
        match self {
            System::Eve
            | System::EveSequential
            | System::EveByzantine
            | System::EveDisk
            | System::Etcd => 3,
            System::PrimaryBackup => 2,
            System::Alone => 1,
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A started system.
pub enum Running {
    /// A cluster of nodes on loopback, with the data directory to remove when it stops.
    Cluster(Box<LocalCluster>, Option<PathBuf>),
    /// The unreplicated executor.
    Alone(Alone),
    /// An etcd cluster.
    Etcd(Etcd),
}

/// How a point's systems are set up.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Executor worker threads per replica.
    pub threads: usize,
    /// The first port of a cluster's nodes.
    pub base_port: u16,
    /// Merkle buckets of the state: `2^bucket_bits`.
    pub bucket_bits: u8,
    /// Parts per million of parallel batches every replica is made to diverge on (clusters).
    pub forced_divergence_ppm: u32,
}

impl Running {
    /// Starts `system` running `app` (one instance per replica; etcd serves its own).
    pub async fn start<A: Application>(
        system: System,
        setup: Setup,
        app: impl Fn() -> A,
    ) -> Result<Self> {
        let cluster = |mode, execution, disk: bool| -> Result<Self> {
            let mut options = LocalOptions::new(mode, setup.base_port);
            options.threads = Some(setup.threads);
            options.execution = execution;
            options.bucket_bits = Some(setup.bucket_bits);
            options.forced_divergence_ppm = setup.forced_divergence_ppm;
            let dir = disk.then(|| {
                std::env::temp_dir().join(format!(
                    "eve-bench-{}-{}",
                    std::process::id(),
                    setup.base_port
                ))
            });
            if let Some(dir) = &dir {
                options.storage = Storage::Disk(dir.clone());
            }
            let cluster = LocalCluster::start(&options, |_| app())?;
            Ok(Running::Cluster(Box::new(cluster), dir))
        };
        let eve = ReplicationMode::Eve { u: 1, r: 0 };
        match system {
            System::Eve => cluster(eve, Execution::Parallel, false),
            System::EveSequential => cluster(eve, Execution::Sequential, false),
            System::PrimaryBackup => {
                cluster(ReplicationMode::PrimaryBackup, Execution::Parallel, false)
            }
            System::EveByzantine => cluster(
                ReplicationMode::Eve { u: 1, r: 1 },
                Execution::Parallel,
                false,
            ),
            System::EveDisk => cluster(eve, Execution::Parallel, true),
            System::Alone => {
                let state =
                    StateConfig::new(setup.bucket_bits, eve_types::limits::OBJECT_VALUE_BYTES_MAX)?;
                Ok(Running::Alone(Alone::start(app(), setup.threads, state)?))
            }
            System::Etcd => {
                let binary = etcd::find().ok_or_else(|| anyhow::anyhow!(etcd::MISSING))?;
                let dir = std::env::temp_dir().join(format!(
                    "eve-bench-etcd-{}-{}",
                    std::process::id(),
                    setup.base_port
                ));
                Ok(Running::Etcd(
                    Etcd::start(&binary, setup.base_port, dir).await?,
                ))
            }
        }
    }

    /// A caller for client `id`.
    pub fn caller(&self, id: ClientId) -> Result<SystemCaller> {
        Ok(match self {
            Running::Cluster(cluster, _) => SystemCaller::Eve(cluster.client(id)?),
            Running::Alone(alone) => SystemCaller::Alone(alone.caller(id)),
            Running::Etcd(etcd) => SystemCaller::Etcd(etcd.caller(id.0)),
        })
    }

    /// Stops the system (and removes its data directory).
    pub async fn stop(self) {
        match self {
            Running::Cluster(cluster, dir) => {
                cluster.shutdown().await;
                if let Some(dir) = dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            Running::Alone(alone) => drop(alone),
            Running::Etcd(etcd) => drop(etcd),
        }
    }
}

/// A caller of any system.
pub enum SystemCaller {
    /// A client of a cluster.
    Eve(EveClient),
    /// A client of the unreplicated executor.
    Alone(super::alone::AloneCaller),
    /// A client of an etcd member.
    Etcd(EtcdCaller),
}

impl Caller for SystemCaller {
    async fn call(&mut self, op: Bytes) -> Result<Bytes, String> {
        match self {
            SystemCaller::Eve(client) => client.call(op).await.map_err(|e| e.to_string()),
            SystemCaller::Alone(caller) => caller.call(op).await,
            SystemCaller::Etcd(caller) => caller.call(op).await,
        }
    }
}
