//! What one simulated run does: the cluster, the workload, and the faults, all drawn from a
//! seed.

use crate::network::NetworkFaults;
use eve_types::{ClusterConfig, ReplicationMode, SplitMix64};

/// Misbehaviour of a Byzantine execution replica (only with `r >= 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Byzantine {
    /// Sends verifiers a wrong token for every batch, and clients wrong replies.
    WrongTokens,
    /// Serves tampered state to replicas that fetch from it.
    TamperedState,
    /// As primary, sends some replicas a different batch than others.
    Equivocate,
}

/// The faults of a run. Faults happen before `heal_ms`; then the network heals, crashed
/// replicas restart, and every pending request must complete within `liveness_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// Loss, delay, duplication while faults are on.
    pub network: NetworkFaults,
    /// Crash execution replicas and restart them with empty state.
    pub crash_restart: bool,
    /// Crash a verifier for good (it does not come back: its state would be lost).
    pub crash_verifier: bool,
    /// Isolate one execution replica for a while, both ways.
    pub partition: bool,
    /// Cut one replica's outgoing links for a while.
    pub one_way: bool,
    /// One replica's mixer misses conflicts at this rate (parts per million); replicas also
    /// interleave each parallel batch in their own seeded order.
    pub missed_conflict_ppm: u32,
    /// Requests of the racy counter, in parts per million of requests.
    pub racy_ppm: u32,
    /// One replica corrupts an object after this many parts per million of requests.
    pub corrupt_ppm: u32,
    /// One Byzantine execution replica.
    pub byzantine: Option<Byzantine>,
    /// When faults stop.
    pub heal_ms: u64,
    /// How long after healing every pending request has to complete.
    pub liveness_ms: u64,
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Self {
        Self {
            network: NetworkFaults::reliable(),
            crash_restart: false,
            crash_verifier: false,
            partition: false,
            one_way: false,
            missed_conflict_ppm: 0,
            racy_ppm: 0,
            corrupt_ppm: 0,
            byzantine: None,
            heal_ms: 0,
            liveness_ms: 30_000,
        }
    }
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Everything random in the run follows from it.
    pub seed: u64,
    /// The cluster configuration.
    pub cluster: ClusterConfig,
    /// Clients, each running operations one at a time.
    pub clients: usize,
    /// Operations per client.
    pub ops_per_client: usize,
    /// Distinct keys the operations touch.
    pub keys: usize,
    /// What goes wrong.
    pub faults: Faults,
}

/// The configurations every seed set covers, in turn.
pub const MODES: [ReplicationMode; 4] = [
    ReplicationMode::Eve { u: 1, r: 0 },
    ReplicationMode::Eve { u: 1, r: 1 },
    ReplicationMode::Eve { u: 2, r: 0 },
    ReplicationMode::PrimaryBackup,
];

impl Scenario {
    /// A small fault-free run of `mode`.
    pub fn quiet(seed: u64, mode: ReplicationMode) -> Self {
        let mut cluster = ClusterConfig::new(mode);
        cluster.merkle_bucket_bits = 6;
        cluster.batch_requests_max = 8;
        cluster.batch_timeout_ms = 2;
        cluster.pipeline_depth = 4;
        cluster.checkpoint_interval = 8;
        cluster.verify_timeout_ms = 100;
        cluster.client_retransmit_ms = 200;
        cluster.backup_timeout_ms = 100;
        Self {
            seed,
            cluster,
            clients: 4,
            ops_per_client: 20,
            keys: 6,
            faults: Faults::none(),
        }
    }

    /// The run for `seed`: the mode cycles through [`MODES`], and the faults are drawn from
    /// the seed.
    pub fn from_seed(seed: u64) -> Self {
        Self::from_seed_with_mode(seed, MODES[(seed % MODES.len() as u64) as usize])
    }

    /// The run for `seed` with the configuration given instead of drawn: faults are drawn
    /// from the seed as for [`from_seed`](Self::from_seed).
    pub fn from_seed_with_mode(seed: u64, mode: ReplicationMode) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut scenario = Self::quiet(seed, mode);
        scenario.clients = 2 + rng.below(5) as usize;
        scenario.ops_per_client = 10 + rng.below(30) as usize;
        scenario.keys = 2 + rng.below(8) as usize;
        let r = match mode {
            ReplicationMode::Eve { r, .. } => r,
            ReplicationMode::PrimaryBackup => 0,
        };
        let pb = mode == ReplicationMode::PrimaryBackup;
        let faults = &mut scenario.faults;
        if pb {
            // Primary-backup assumes a synchronous network (messages arrive, in bounded time):
            // a backup that hears nothing from a live primary takes over (split brain by
            // design), and a backup that lost batches when the primary crashes has lost them
            // for good (two faults). Its runs delay and duplicate but neither lose messages
            // nor cut links.
            faults.heal_ms = 500 + rng.below(2_000);
            faults.network = NetworkFaults {
                drop_ppm: 0,
                duplicate_ppm: [0, 10_000, 50_000][rng.below(3) as usize],
                delay_us_min: 50,
                delay_us_max: [200, 2_000][rng.below(2) as usize],
            };
            faults.racy_ppm = [0, 0, 50_000, 200_000][rng.below(4) as usize];
            faults.missed_conflict_ppm = [0, 0, 20_000, 100_000][rng.below(4) as usize];
            // A replica that corrupts its state is a commission fault, outside the crash model
            // of primary-backup: sequential re-execution cannot settle which side is right.
            faults.corrupt_ppm = 0;
            faults.crash_restart = rng.below(2) == 0;
            return scenario;
        }
        faults.heal_ms = 500 + rng.below(2_000);
        faults.network = NetworkFaults {
            drop_ppm: [0, 10_000, 50_000][rng.below(3) as usize],
            duplicate_ppm: [0, 10_000, 50_000][rng.below(3) as usize],
            delay_us_min: 50,
            delay_us_max: [200, 2_000, 20_000][rng.below(3) as usize],
        };
        faults.racy_ppm = [0, 0, 50_000, 200_000][rng.below(4) as usize];
        faults.missed_conflict_ppm = [0, 0, 20_000, 100_000][rng.below(4) as usize];
        faults.corrupt_ppm = [0, 0, 0, 20_000][rng.below(4) as usize];
        // One fault of a replica at a time: u = 1 tolerates exactly one.
        match rng.below(if r > 0 { 6 } else { 5 }) {
            0 => {}
            1 => faults.crash_restart = true,
            2 => faults.partition = true,
            3 => faults.one_way = true,
            4 => faults.crash_verifier = !pb,
            _ => {
                faults.byzantine = Some(
                    [
                        Byzantine::WrongTokens,
                        Byzantine::TamperedState,
                        Byzantine::Equivocate,
                    ][rng.below(3) as usize],
                )
            }
        }
        if faults.byzantine.is_some() {
            // The Byzantine replica is the one faulty replica u = 1 allows.
            faults.corrupt_ppm = 0;
            faults.missed_conflict_ppm = 0;
        }
        scenario
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        let mode = match self.cluster.mode {
            ReplicationMode::Eve { u, r } => format!("eve u={u} r={r}"),
            ReplicationMode::PrimaryBackup => "primary-backup".to_string(),
        };
        let f = &self.faults;
        let mut parts = vec![
            mode,
            format!("{}x{} ops", self.clients, self.ops_per_client),
        ];
        if f.network.drop_ppm > 0 {
            parts.push(format!("drop {}ppm", f.network.drop_ppm));
        }
        if f.network.duplicate_ppm > 0 {
            parts.push(format!("dup {}ppm", f.network.duplicate_ppm));
        }
        for (on, name) in [
            (f.crash_restart, "crash-restart"),
            (f.crash_verifier, "crash-verifier"),
            (f.partition, "partition"),
            (f.one_way, "one-way"),
        ] {
            if on {
                parts.push(name.to_string());
            }
        }
        if f.racy_ppm > 0 {
            parts.push(format!("racy {}ppm", f.racy_ppm));
        }
        if f.missed_conflict_ppm > 0 {
            parts.push(format!("missed-conflicts {}ppm", f.missed_conflict_ppm));
        }
        if f.corrupt_ppm > 0 {
            parts.push(format!("corrupt {}ppm", f.corrupt_ppm));
        }
        if let Some(b) = f.byzantine {
            parts.push(format!("byzantine {b:?}"));
        }
        parts.join(", ")
    }
}
