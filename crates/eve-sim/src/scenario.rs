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
    /// As primary, never sends every fourth batch to anyone, but goes on with the later ones:
    /// a gap that stalls every replica unless they suspect it.
    GapBatches,
    /// Sends verifiers its tokens under later sequence numbers inside the window, for batches
    /// nobody ordered.
    FutureTokens,
    /// Forges requests: as primary it rewrites the operation of a request in every batch it
    /// sends; as a backup it relays, in place of a client's request, one in that client's name
    /// with a request number near the top that the client never signed.
    ForgedRequests,
    /// Colluding with the network, sends for each batch, in place of its own token, the token
    /// of a correct replica whose token differs from its own, when one has been sent: a
    /// diverged replica's token, echoed to try to give it the token quorum.
    EchoDiverged,
}

/// How a Byzantine verifier lies: the lies the protocol tolerates without verifier
/// certificates (a wrong vote needs a quorum to count; a view-change quorum holds a correct
/// verifier of every commit quorum, so locks left out are reported by another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByzantineVerifier {
    /// Votes (`Prepare`, `Commit`) for a token nobody executed, and tells replicas and peers
    /// that such tokens committed.
    WrongVotes,
    /// Sends its real votes and view changes to some verifiers, and to the others votes for a
    /// wrong token and view changes that report nothing committed and no lock.
    Equivocate,
    /// Takes part in agreement but never sends a view change, a new view, or an answer to a
    /// lagging peer.
    WithholdViewChanges,
    /// Claims in its view changes and recovery answers a batch committed and a lock that
    /// nobody voted for, with forged certificates (its own signature in the others' names):
    /// believed, they would start a view above every real batch or below committed ones.
    ForgeClaims,
    /// As the leader of a view, announces a start that its proof does not give.
    LyingLeader,
}

/// What a fault window does to the node it strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Crash, then restart with empty memory and state at the window's end.
    CrashRestart,
    /// Cut every link to and from the node.
    Isolate,
    /// Cut the node's outgoing links only.
    CutOutgoing,
    /// Cut the node's incoming links only.
    CutIncoming,
    /// Fill the node's disk (durable runs; a third of the crash windows): it can persist
    /// nothing more, so it stops acknowledging (a replica reports no execution, a verifier
    /// stops); at the window's end space is freed and it restarts from its disk.
    DiskFull,
}

/// The faults of a run. Faults happen before `heal_ms`; then the network heals, crashed
/// nodes restart, and every pending request must complete within `liveness_ms`.
///
/// Node faults come in *slots*: each slot strikes `windows_per_slot` windows one after
/// another, each window a [`FaultKind`] on a node picked when it starts (often the primary, or
/// the next view's leader). Slots run at the same time, so up to `replica_slots` execution
/// replicas and `verifier_slots` verifiers are faulty at once, and many more over the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// Loss, delay, duplication and late deliveries while faults are on.
    pub network: NetworkFaults,
    /// Primary-backup: crash one replica and restart it empty.
    pub crash_restart: bool,
    /// Crash a verifier for good (it does not come back), on top of the verifier slots.
    pub crash_verifier: bool,
    /// Execution replicas that may be faulty at once (besides a Byzantine or corrupting one).
    pub replica_slots: u32,
    /// Verifiers that may be faulty at once (besides one crashed for good).
    pub verifier_slots: u32,
    /// Fault windows each slot strikes, one after another.
    pub windows_per_slot: u32,
    /// One replica's mixer misses conflicts at this rate (parts per million); replicas also
    /// interleave each parallel batch in their own seeded order.
    pub missed_conflict_ppm: u32,
    /// Requests of the racy counter, in parts per million of requests.
    pub racy_ppm: u32,
    /// One replica corrupts an object after this many parts per million of requests.
    pub corrupt_ppm: u32,
    /// One Byzantine execution replica.
    pub byzantine: Option<Byzantine>,
    /// Which replica is Byzantine (any, the view-0 primary included).
    pub byzantine_replica: u32,
    /// One Byzantine verifier (one of the `u` faulty verifiers), with `r >= 1`.
    pub byzantine_verifier: Option<ByzantineVerifier>,
    /// Which verifier is Byzantine.
    pub byzantine_verifier_id: u32,
    /// The Byzantine replica colludes with the network: its messages are never lost and
    /// arrive first (after the shortest delay), ahead of the correct replicas'.
    pub colluding: bool,
    /// Every execution replica crashes at once, midway, and restarts with empty memory and
    /// state while the verifiers stay up. In the in-memory mode the committed state is then
    /// lost: the run must end with every replica stalled and saying why (or recovered, if
    /// nothing was committed yet), never unsafe.
    pub restart_all: bool,
    /// Objects every replica starts with (a large state makes full transfers take many
    /// chunks); a restarted replica starts empty.
    pub state_objects: u32,
    /// Every replica keeps a journal and every verifier its memory on a simulated disk, and
    /// restarts from it: a crash keeps what was synced and a seeded prefix of the rest (a
    /// torn last write). Eve runs only.
    pub durable: bool,
    /// Times the power fails everywhere at once (durable runs): every replica and verifier
    /// crashes at the same instant and comes back after a short outage.
    pub power_failures: u32,
    /// At each power failure one node, within the faults the configuration tolerates, loses
    /// its disk entirely or finds a corrupted byte in one of its files (durable runs).
    pub disk_faults: bool,
    /// Parts per million of parallel batches every replica is made to diverge on, each
    /// differently (`Executor::with_forced_divergence`): no token reaches a quorum, and the
    /// cluster rolls back and executes the batch again sequentially. Not drawn from seeds.
    pub forced_divergence_ppm: u32,
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
            replica_slots: 0,
            verifier_slots: 0,
            windows_per_slot: 0,
            missed_conflict_ppm: 0,
            racy_ppm: 0,
            corrupt_ppm: 0,
            byzantine: None,
            byzantine_replica: 0,
            byzantine_verifier: None,
            byzantine_verifier_id: 0,
            colluding: false,
            restart_all: false,
            state_objects: 0,
            durable: false,
            power_failures: 0,
            disk_faults: false,
            forced_divergence_ppm: 0,
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
        // Half the seeds have every replica reply at commit, half only the primary (the
        // default); drawn apart from `rng` so that the faults of a seed stay what they were.
        scenario.cluster.reply_from_every_replica =
            eve_types::splitmix64(seed ^ 0x7265_706c_6965_7273) & 1 == 1;
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
                late_ppm: 0,
                late_ms_max: 0,
            };
            faults.racy_ppm = [0, 0, 50_000, 200_000][rng.below(4) as usize];
            faults.missed_conflict_ppm = [0, 0, 20_000, 100_000][rng.below(4) as usize];
            // A replica that corrupts its state is a commission fault, outside the crash model
            // of primary-backup: sequential re-execution cannot settle which side is right.
            faults.corrupt_ppm = 0;
            faults.crash_restart = rng.below(2) == 0;
            return scenario;
        }
        let (u, n_exec) = match mode {
            ReplicationMode::Eve { u, r } => (u, u64::from(u + u.max(r) + 1)),
            ReplicationMode::PrimaryBackup => unreachable!("returned above"),
        };
        faults.heal_ms = 1_000 + rng.below(3_000);
        faults.network = NetworkFaults {
            drop_ppm: [0, 10_000, 50_000][rng.below(3) as usize],
            duplicate_ppm: [0, 10_000, 50_000][rng.below(3) as usize],
            delay_us_min: 50,
            delay_us_max: [200, 2_000, 20_000][rng.below(3) as usize],
            late_ppm: [0, 0, 5_000, 20_000][rng.below(4) as usize],
            late_ms_max: [500, 3_000][rng.below(2) as usize],
        };
        faults.racy_ppm = [0, 0, 50_000, 200_000][rng.below(4) as usize];
        faults.missed_conflict_ppm = [0, 0, 20_000, 100_000][rng.below(4) as usize];
        faults.corrupt_ppm = [0, 0, 0, 20_000][rng.below(4) as usize];
        if r > 0 && rng.below(3) == 0 {
            faults.byzantine = Some(
                [
                    Byzantine::WrongTokens,
                    Byzantine::TamperedState,
                    Byzantine::Equivocate,
                ][rng.below(3) as usize],
            );
            faults.byzantine_replica = rng.below(n_exec) as u32;
            // The later kinds are drawn apart from `rng`, so that the other faults of a seed
            // stay what they were.
            let later = eve_types::splitmix64(seed ^ 0x6279_7a61_6e74_696e) % 6;
            if later >= 3 {
                faults.byzantine = Some(
                    [
                        Byzantine::GapBatches,
                        Byzantine::FutureTokens,
                        Byzantine::ForgedRequests,
                    ][later as usize - 3],
                );
            }
            if eve_types::splitmix64(seed ^ 0x6563_686f_6469_7667).is_multiple_of(8) {
                // Echoing needs correct replicas that diverge: the racy counter makes them.
                faults.byzantine = Some(Byzantine::EchoDiverged);
                faults.racy_ppm = faults.racy_ppm.max(50_000);
            }
            faults.colluding = eve_types::splitmix64(seed ^ 0x636f_6c6c_7564_6573) & 1 == 1;
            // The Byzantine replica is one of the u faulty replicas.
            faults.corrupt_ppm = 0;
            faults.missed_conflict_ppm = 0;
        }
        // A replica that corrupts its state or lies is one of the u faulty ones.
        let fixed = u32::from(faults.byzantine.is_some() || faults.corrupt_ppm > 0);
        faults.crash_verifier = rng.below(6) == 0;
        faults.replica_slots = if rng.below(6) == 0 { 0 } else { u - fixed };
        faults.verifier_slots = if rng.below(4) == 0 {
            0
        } else {
            u - u32::from(faults.crash_verifier)
        };
        // Drawn apart from `rng`, so that the other faults of a seed stay what they were.
        let lying = eve_types::splitmix64(seed ^ 0x6279_7a76_6572_6966);
        if r > 0 && lying.is_multiple_of(4) {
            faults.byzantine_verifier = Some(
                [
                    ByzantineVerifier::WrongVotes,
                    ByzantineVerifier::Equivocate,
                    ByzantineVerifier::WithholdViewChanges,
                    ByzantineVerifier::ForgeClaims,
                    ByzantineVerifier::LyingLeader,
                ][(lying >> 8) as usize % 5],
            );
            let n_ver = 2 * u64::from(u) + u64::from(r) + 1;
            faults.byzantine_verifier_id = ((lying >> 16) % n_ver) as u32;
            // The lying verifier is one of the u faulty verifiers.
            if faults.crash_verifier {
                faults.crash_verifier = false;
            } else {
                faults.verifier_slots = faults.verifier_slots.min(u - 1);
            }
        }
        faults.windows_per_slot = 1 + rng.below(4) as u32;
        faults.restart_all = rng.below(100) == 0;
        if rng.below(40) == 0 {
            faults.state_objects = 100_000;
            scenario.cluster.merkle_bucket_bits = 12;
        }
        // Drawn apart from `rng`, so that the other faults of a seed stay what they were: half
        // the Eve runs keep their state on disks, and most of those lose power everywhere.
        // Runs whose replicas all restart at once stay in memory: they check that a cluster
        // that lost its committed state says so.
        let disk = eve_types::splitmix64(seed ^ 0x6469_736b_706f_7772);
        faults.durable = disk & 1 == 1 && !faults.restart_all;
        if faults.durable {
            faults.power_failures = ((disk >> 8) % 4) as u32;
            faults.disk_faults = !(disk >> 16).is_multiple_of(3);
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
        if f.network.late_ppm > 0 {
            parts.push(format!(
                "late {}ppm up to {}ms",
                f.network.late_ppm, f.network.late_ms_max
            ));
        }
        for (on, name) in [
            (f.crash_restart, "crash-restart"),
            (f.crash_verifier, "crash-verifier"),
        ] {
            if on {
                parts.push(name.to_string());
            }
        }
        if f.replica_slots + f.verifier_slots > 0 {
            parts.push(format!(
                "{}+{} fault slots x{} windows",
                f.replica_slots, f.verifier_slots, f.windows_per_slot
            ));
        }
        if f.restart_all {
            parts.push("every replica restarts at once".to_string());
        }
        if f.durable {
            parts.push("on disk".to_string());
        }
        if f.power_failures > 0 {
            parts.push(format!("{} power failures", f.power_failures));
        }
        if f.disk_faults {
            parts.push("disks lost or corrupted".to_string());
        }
        if f.state_objects > 0 {
            parts.push(format!("{} objects", f.state_objects));
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
        if let Some(b) = f.byzantine_verifier {
            parts.push(format!("byzantine Ver{} {b:?}", f.byzantine_verifier_id));
        }
        if let Some(b) = f.byzantine {
            parts.push(format!("byzantine R{} {b:?}", f.byzantine_replica));
            if f.colluding {
                parts.push("colluding with the network".to_string());
            }
        }
        parts.join(", ")
    }
}
