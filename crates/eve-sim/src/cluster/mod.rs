//! A whole cluster in one process: the real protocol logic, state store, executor and
//! key-value application, a simulated clock and network, driven from one seed.

use crate::app::SimApp;
use crate::checks::Checks;
use crate::network::Network;
use crate::reference::Reference;
use crate::report::RunReport;
use crate::scenario::{Byzantine, FaultKind, Scenario};
use crate::workload::{SimOp, draw_op};

mod power;
use bytes::Bytes;
use eve_agreement::{
    Client, Driver, Effect, Effects, ExecCommand, ExecEvent, Logic, Message, NodeId,
    ReplicaExecutor, ReplicaLogic, StateReply, Time, Verifier,
};
use eve_exec::{Executor, SeededRunner};
use eve_mixer::{FaultyMixer, GreedyMixer, Mixer};
use eve_state::{StateConfig, StateStore};
use eve_types::{BatchSeq, ReplicaId, SplitMix64, ValidConfig, VerifierId, View, splitmix64};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Most events one run may process: a run that has not finished by then is reported as
/// stuck rather than looping forever.
pub const EVENTS_MAX: u64 = 5_000_000;

/// After every client finished and the faults healed, every correct replica must catch up
/// to the highest committed batch within this many milliseconds past the liveness deadline.
const CONVERGE_MS: u64 = 30_000;

/// Simulated time to execute one batch: a fixed cost plus a cost per request, in microseconds.
const EXEC_COST_US: u64 = 30;
const EXEC_COST_PER_REQUEST_US: u64 = 5;
/// Simulated time to import one object of a state-transfer chunk, in microseconds.
const IMPORT_COST_PER_OBJECT_US: u64 = 2;
/// The chunk size the simulated replicas ask for: small, so large states take many chunks.
const SIM_CHUNK_BYTES: usize = 64 * 1024;

/// Batches whose correct tokens the simulator remembers for a Byzantine replica to echo.
const TOKENS_SEEN_MAX: usize = 256;
/// Fault windows last this long at least and at most, in milliseconds; gaps between them are
/// up to `WINDOW_GAP_MS_MAX`.
const WINDOW_MS_MIN: u64 = 100;
const WINDOW_MS_MAX: u64 = 1_200;
const WINDOW_GAP_MS_MAX: u64 = 600;

/// Who a fault slot strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Replica,
    Verifier,
}

/// A fault slot: its role and the window in progress (its kind and the node struck).
#[derive(Clone, Debug)]
struct FaultSlot {
    role: Role,
    active: Option<(FaultKind, NodeId)>,
}

/// Something that happens at a simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Message,
        sent: Time,
    },
    Timer {
        node: NodeId,
    },
    Exec {
        replica: ReplicaId,
        incarnation: u64,
        events: Vec<ExecEvent>,
    },
    Submit {
        client: usize,
    },
    Crash {
        replica: ReplicaId,
    },
    Restart {
        replica: ReplicaId,
    },
    CrashVerifier {
        verifier: VerifierId,
    },
    FaultStart {
        slot: usize,
        kind: FaultKind,
    },
    FaultEnd {
        slot: usize,
    },
    RestartAll,
    PowerFailure,
    PowerRestored,
    Heal,
}

struct Scheduled {
    at: Time,
    order: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

struct ReplicaNode {
    id: ReplicaId,
    driver: Driver<ReplicaLogic>,
    /// The requests of the batch this incarnation last executed at each position (rolled
    /// back ones dropped), for the reference replay.
    executed: BTreeMap<eve_types::BatchSeq, Vec<eve_types::Request>>,
    exec: ReplicaExecutor<SimApp>,
    up: bool,
    incarnation: u64,
    busy_until: Time,
    byzantine: Option<Byzantine>,
    /// Its disk, in a durable run (the journal's handle is inside `exec`).
    disk: Option<eve_storage::SharedDisk<eve_storage::SimDisk>>,
}

struct VerifierNode {
    driver: Driver<Verifier>,
    up: bool,
    /// Crashed for good: never restarted.
    dead: bool,
    incarnation: u64,
    /// Its disk, in a durable run, and the store of its memory there while it is up.
    disk: Option<eve_storage::SharedDisk<eve_storage::SimDisk>>,
    store: Option<eve_agreement::verifier_store::VerifierStore>,
}

struct ClientNode {
    driver: Driver<Client>,
    rng: SplitMix64,
    remaining: usize,
    current: Option<(SimOp, Time)>,
}

/// The simulated cluster.
pub struct Cluster {
    scenario: Scenario,
    config: ValidConfig,
    now: Time,
    queue: BinaryHeap<Reverse<Scheduled>>,
    order: u64,
    replicas: Vec<ReplicaNode>,
    verifiers: Vec<VerifierNode>,
    clients: Vec<ClientNode>,
    network: Network,
    slots: Vec<FaultSlot>,
    rng: SplitMix64,
    checks: Checks,
    reference: Reference,
    report: RunReport,
    /// Checks the clients' signatures for every replica.
    auth: std::sync::Arc<eve_agreement::auth::KeyedHashAuth>,
    /// Nodes whose disk was lost or damaged and that have not restarted since: faulty,
    /// whatever their logic (which is the one from before) says.
    damaged: std::collections::BTreeSet<NodeId>,
    /// Each verifier's signing secret (used with r >= 1).
    verifier_auth: Vec<std::sync::Arc<eve_agreement::auth::KeyedHashVerifierAuth>>,
    /// The first batch a Byzantine primary withheld that no correct replica has committed
    /// yet, and when (the start of a stall it caused).
    withheld: Option<(eve_types::BatchSeq, Time)>,
    /// The tokens correct replicas sent for recent batches, which a Byzantine replica that
    /// echoes diverged tokens sees (it colludes with the network).
    tokens_sent: BTreeMap<(View, BatchSeq), Vec<(eve_exec::Token, eve_exec::Token)>>,
    trace: blake3::Hasher,
    /// Every event, when the run was asked to keep a log.
    log: Option<Vec<String>>,
    /// Whether log lines show each message and execution result in full.
    log_contents: bool,
}

impl Cluster {
    /// A cluster for `scenario`, with its faults scheduled.
    ///
    /// # Panics
    /// If the scenario's cluster configuration is invalid.
    pub fn new(scenario: Scenario) -> Self {
        let config = scenario
            .cluster
            .validate()
            .expect("scenarios hold valid configurations");
        let sizes = config.sizes();
        let seed = scenario.seed;
        let byzantine_replica = ReplicaId(scenario.faults.byzantine_replica % sizes.n_exec as u32);
        // The clients' signing secrets (used with r >= 1); no replica learns them.
        let auth = std::sync::Arc::new(eve_agreement::auth::KeyedHashAuth::new(
            seed,
            (1..=scenario.clients as u64).map(eve_types::ClientId),
        ));
        let replicas = (0..sizes.n_exec as u32)
            .map(|i| {
                let id = ReplicaId(i);
                let byzantine = (id == byzantine_replica)
                    .then_some(scenario.faults.byzantine)
                    .flatten();
                let mut exec = new_executor(&scenario, &config, id, 0);
                let disk = scenario.faults.durable.then(power::new_disk);
                if let Some(disk) = &disk {
                    let journal = eve_agreement::journal::Journal::create(
                        Box::new(disk.clone()),
                        exec.executor().state(),
                    )
                    .expect("a new simulated disk takes a journal");
                    exec = exec.with_journal(journal);
                }
                ReplicaNode {
                    id,
                    executed: BTreeMap::new(),
                    driver: Driver::new(
                        ReplicaLogic::new(id, &config).with_request_verifier(auth.clone()),
                    ),
                    exec,
                    up: true,
                    incarnation: 0,
                    busy_until: Time::ZERO,
                    byzantine,
                    disk,
                }
            })
            .collect();
        let verifier_auth: Vec<_> = (0..sizes.n_ver as u32)
            .map(|i| {
                std::sync::Arc::new(eve_agreement::auth::KeyedHashVerifierAuth::new(
                    seed,
                    sizes.n_ver,
                    VerifierId(i),
                ))
            })
            .collect();
        let verifiers = (0..sizes.n_ver as u32)
            .map(|i| {
                let id = VerifierId(i);
                let verifier =
                    Verifier::new(id, config.clone()).with_auth(verifier_auth[i as usize].clone());
                let disk = scenario.faults.durable.then(power::new_disk);
                let verifier = if disk.is_some() {
                    verifier.with_durable_memory()
                } else {
                    verifier
                };
                let store = disk.as_ref().map(|disk| {
                    eve_agreement::verifier_store::VerifierStore::create(
                        Box::new(disk.clone()),
                        &verifier.memory(),
                    )
                    .expect("a new simulated disk takes a verifier's memory")
                });
                VerifierNode {
                    driver: Driver::new(verifier),
                    up: true,
                    dead: false,
                    incarnation: 0,
                    disk,
                    store,
                }
            })
            .collect();
        let clients = (0..scenario.clients)
            .map(|i| ClientNode {
                driver: Driver::new({
                    let id = eve_types::ClientId(i as u64 + 1);
                    let signer = auth.signer(id).expect("every client has a secret");
                    Client::new(id, &config).with_signer(std::sync::Arc::new(signer), &config)
                }),
                rng: SplitMix64::new(splitmix64(seed ^ 0xc11e47 ^ i as u64)),
                remaining: scenario.ops_per_client,
                current: None,
            })
            .collect();
        let mut network = Network::new(scenario.faults.network.clone(), splitmix64(seed ^ 0x4e7));
        if scenario.faults.byzantine.is_some() && scenario.faults.colluding {
            network.favour(NodeId::Replica(byzantine_replica));
        }
        let report = RunReport::new(&scenario);
        let mut cluster = Self {
            config,
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            order: 0,
            replicas,
            verifiers,
            clients,
            network,
            slots: Vec::new(),
            rng: SplitMix64::new(splitmix64(seed ^ 0xfa17)),
            checks: Checks::default(),
            reference: Reference::default(),
            report,
            withheld: None,
            damaged: Default::default(),
            tokens_sent: BTreeMap::new(),
            auth,
            verifier_auth,
            trace: blake3::Hasher::new(),
            log: None,
            log_contents: false,
            scenario,
        };
        cluster.schedule_start();
        // Every node's timers run from the start, whether or not a message ever reaches it.
        for node in cluster.all_nodes() {
            if !matches!(node, NodeId::Client(_)) {
                let mut io = cluster.io();
                match node {
                    NodeId::Replica(id) => cluster.replicas[id.0 as usize].driver.start(&mut io),
                    NodeId::Verifier(id) => cluster.verifiers[id.0 as usize].driver.start(&mut io),
                    NodeId::Client(_) => {}
                }
                cluster.carry_out(node, io);
            }
        }
        cluster
    }

    fn schedule_start(&mut self) {
        for client in 0..self.clients.len() {
            let at = Time(self.rng.below(1_000));
            self.schedule(at, Event::Submit { client });
        }
        let faults = self.scenario.faults.clone();
        let heal = Time::ZERO.plus_ms(faults.heal_ms);
        let n_exec = self.replicas.len() as u64;
        let during = |rng: &mut SplitMix64| Time(rng.below(heal.0.max(1)));
        if faults.crash_restart {
            let replica = ReplicaId(self.rng.below(n_exec) as u32);
            let at = during(&mut self.rng);
            self.schedule(at, Event::Crash { replica });
            let back = Time(at.0 + self.rng.below(heal.0.saturating_sub(at.0).max(1)));
            self.schedule(back, Event::Restart { replica });
        }
        if faults.crash_verifier && !self.verifiers.is_empty() {
            let verifier = VerifierId(self.rng.below(self.verifiers.len() as u64) as u32);
            let at = during(&mut self.rng);
            self.schedule(at, Event::CrashVerifier { verifier });
        }
        if faults.restart_all {
            let at = Time(heal.0 / 4 + self.rng.below(heal.0 / 2 + 1));
            self.schedule(at, Event::RestartAll);
        }
        self.schedule_power_failures(heal);
        let roles = std::iter::repeat_n(Role::Replica, faults.replica_slots as usize).chain(
            std::iter::repeat_n(Role::Verifier, faults.verifier_slots as usize),
        );
        for role in roles {
            let slot = self.slots.len();
            self.slots.push(FaultSlot { role, active: None });
            let mut at = Time::ZERO.plus_ms(self.rng.below(WINDOW_GAP_MS_MAX));
            for _ in 0..faults.windows_per_slot {
                if at >= heal {
                    break;
                }
                let kind = match (role, self.rng.below(4)) {
                    (_, 0 | 1) => FaultKind::CrashRestart,
                    (Role::Verifier, _) | (_, 2) => FaultKind::Isolate,
                    _ if self.rng.below(2) == 0 => FaultKind::CutOutgoing,
                    _ => FaultKind::CutIncoming,
                };
                self.schedule(at, Event::FaultStart { slot, kind });
                let length = WINDOW_MS_MIN + self.rng.below(WINDOW_MS_MAX - WINDOW_MS_MIN);
                let end = at.plus_ms(length).min(heal);
                self.schedule(end, Event::FaultEnd { slot });
                at = end.plus_ms(1 + self.rng.below(WINDOW_GAP_MS_MAX));
            }
        }
        self.schedule(heal, Event::Heal);
    }

    fn schedule(&mut self, at: Time, event: Event) {
        self.order += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            order: self.order,
            event,
        }));
    }

    /// Keeps a line for every event processed, returned in the report's `log`.
    pub fn with_log(mut self) -> Self {
        self.log = Some(Vec::new());
        self
    }

    /// Like [`with_log`](Self::with_log), with every delivered message and every execution
    /// result written out in full (the lines a diagnosis of a failing seed needs).
    pub fn with_contents_log(mut self) -> Self {
        self.log = Some(Vec::new());
        self.log_contents = true;
        self
    }

    /// Runs until every client finished, the liveness deadline passed, or the event budget
    /// ran out, checking the invariants at every step.
    pub fn run(mut self) -> RunReport {
        let deadline = Time::ZERO
            .plus_ms(self.scenario.faults.heal_ms)
            .plus_ms(self.scenario.faults.liveness_ms);
        let heal = Time::ZERO.plus_ms(self.scenario.faults.heal_ms);
        let mut events = 0u64;
        while let Some(Reverse(next)) = self.queue.pop() {
            // Clients must finish by the deadline; then every correct replica must catch up.
            let done = self.all_clients_done();
            let limit = if done {
                deadline.plus_ms(CONVERGE_MS)
            } else {
                deadline
            };
            if (done && next.at > heal && self.converged()) || next.at > limit {
                break;
            }
            events += 1;
            if events > EVENTS_MAX {
                self.report.violation(format!(
                    "more than {EVENTS_MAX} events: the run did not settle"
                ));
                break;
            }
            self.now = next.at;
            self.trace_event(&next.event);
            self.process(next.event);
        }
        let stalled = self.stalled();
        if let Some(reason) = stalled.filter(|_| self.scenario.faults.restart_all) {
            // The committed state was lost on purpose: stalling is the right outcome, as long
            // as every replica says why (safety was checked all along).
            self.report.counts.stalls_reported += 1;
            self.report.stalled = Some(reason);
        } else if !self.all_clients_done() {
            let pending: usize = self
                .clients
                .iter()
                .map(|c| c.remaining + usize::from(c.current.is_some()))
                .sum();
            self.report.violation(format!(
                "liveness: {pending} operations still pending {} ms after the faults healed",
                self.scenario.faults.liveness_ms
            ));
        } else if !self.converged() {
            let lagging: Vec<String> = self
                .replicas
                .iter()
                .filter(|r| r.up && r.byzantine.is_none())
                .filter(|r| r.driver.logic().committed() < self.highest_committed())
                .map(|r| format!("{} at {}", r.id, r.driver.logic().committed()))
                .collect();
            self.report.violation(format!(
                "convergence: {} never caught up to {} after the faults healed",
                lagging.join(", "),
                self.highest_committed()
            ));
        }
        self.finish(events)
    }

    /// The independent checks at the end of a run: released replies against a sequential
    /// replay of the committed batches (when the mixer is correct, so that parallel execution
    /// must equal sequential execution), and the committed object maps of the replicas that
    /// hold exactly their committed version, compared directly.
    fn check_against_reference(&mut self) {
        if self.scenario.faults.missed_conflict_ppm == 0 {
            let released = self.checks.released_bodies();
            self.report.counts.reference_replies +=
                self.reference.check(&released, &mut self.report);
        }
        let mut first: Option<(ReplicaId, eve_types::BatchSeq, BTreeMap<Bytes, Bytes>)> = None;
        for node in &self.replicas {
            let state = node.exec.executor().state();
            let committed = node.driver.logic().committed();
            let exact = state.sealed_version() == committed && !state.has_unsealed_writes();
            if !node.up || node.byzantine.is_some() || !exact || committed.0 == 0 {
                continue;
            }
            let map = state.to_map();
            self.report.counts.object_maps_compared += 1;
            match &first {
                None => first = Some((node.id, committed, map)),
                Some((other, seq, theirs)) if *seq == committed && *theirs != map => {
                    let differing = map
                        .iter()
                        .filter(|(k, v)| theirs.get(*k) != Some(*v))
                        .count()
                        + theirs.keys().filter(|k| !map.contains_key(*k)).count();
                    self.report.violation(format!(
                        "{} and {other} committed {committed} with different objects ({differing} differ)",
                        node.id
                    ));
                }
                Some(_) => {}
            }
        }
    }

    /// Why the cluster cannot go on, when every correct replica that is up says so.
    fn stalled(&self) -> Option<String> {
        let mut reasons = self
            .replicas
            .iter()
            .filter(|r| r.up && r.byzantine.is_none())
            .map(|r| {
                r.driver
                    .logic()
                    .stall_reason()
                    .map(|why| format!("{}: {why}", r.id))
            });
        let first = reasons.next()??;
        reasons.all(|r| r.is_some()).then_some(first)
    }

    /// The highest batch any correct replica or verifier committed.
    fn highest_committed(&self) -> eve_types::BatchSeq {
        let replicas = self
            .replicas
            .iter()
            .filter(|r| r.byzantine.is_none())
            .map(|r| r.driver.logic().committed());
        let verifiers = self.verifiers.iter().map(|v| v.driver.logic().committed());
        replicas.chain(verifiers).max().unwrap_or_default()
    }

    /// Whether every correct replica that is up committed the highest batch committed.
    fn converged(&self) -> bool {
        let highest = self.highest_committed();
        self.replicas
            .iter()
            .filter(|r| r.up && r.byzantine.is_none())
            .all(|r| r.driver.logic().committed() >= highest)
    }

    fn all_clients_done(&self) -> bool {
        self.clients
            .iter()
            .all(|c| c.remaining == 0 && c.current.is_none())
    }

    /// Adds a line to the log, when the run keeps one.
    fn note(&mut self, line: String) {
        if let Some(log) = &mut self.log {
            log.push(format!("{:?} {line}", self.now));
        }
    }

    fn trace_event(&mut self, event: &Event) {
        self.trace.update(&self.now.0.to_le_bytes());
        let line = match event {
            Event::Deliver { from, to, msg, .. } => {
                format!("d{from:?}>{to:?}:{}", msg.kind())
            }
            Event::Exec {
                replica, events, ..
            } => format!("x{replica}:{}", events.len()),
            other => format!("{other:?}"),
        };
        self.trace.update(line.as_bytes());
        if let Some(log) = &mut self.log {
            let contents = match event {
                Event::Deliver { msg, .. } if self.log_contents => format!(" {msg:?}"),
                Event::Exec { events, .. } if self.log_contents => format!(" {events:?}"),
                _ => String::new(),
            };
            log.push(format!("{:?} {line}{contents}", self.now));
        }
    }

    fn process(&mut self, event: Event) {
        match event {
            Event::Deliver {
                from,
                to,
                msg,
                sent,
            } => {
                if self.now.0 - sent.0 > self.config.verify_timeout_ms * 1000 {
                    self.report.counts.late_deliveries += 1;
                }
                self.deliver(from, to, msg)
            }
            Event::Timer { node } => self.timer(node),
            Event::Exec {
                replica,
                incarnation,
                events,
            } => {
                let node = &mut self.replicas[replica.0 as usize];
                if !node.up || node.incarnation != incarnation {
                    return;
                }
                // The log's sync completes now: only then may the results leave.
                let synced = node.exec.journal().map(|j| j.counters().syncs);
                if !node.exec.sync() {
                    return;
                }
                if node.exec.journal().map(|j| j.counters().syncs) != synced {
                    self.report.counts.disk_syncs += 1;
                }
                for event in events {
                    self.replica_exec_event(replica, event);
                }
            }
            Event::Submit { client } => self.submit(client),
            Event::Crash { replica } => self.take_down(NodeId::Replica(replica)),
            Event::Restart { replica } => self.restart(replica),
            Event::CrashVerifier { verifier } => {
                self.take_down(NodeId::Verifier(verifier));
                self.verifiers[verifier.0 as usize].dead = true;
            }
            Event::FaultStart { slot, kind } => self.fault_start(slot, kind),
            Event::FaultEnd { slot } => self.fault_end(slot),
            Event::RestartAll => {
                for i in 0..self.replicas.len() as u32 {
                    if self.replicas[i as usize].up {
                        self.take_down(NodeId::Replica(ReplicaId(i)));
                    }
                    self.restart(ReplicaId(i));
                }
            }
            Event::PowerFailure => self.power_failure(),
            Event::PowerRestored => self.power_restored(),
            Event::Heal => {
                for slot in 0..self.slots.len() {
                    self.fault_end(slot);
                }
                self.network.heal();
                for i in 0..self.replicas.len() {
                    if !self.replicas[i].up {
                        self.restart(ReplicaId(i as u32));
                    }
                }
            }
        }
    }

    /// Starts a fault window of `slot`: picks its node (often the primary, or the leader of
    /// the next view), never one that another slot holds or a fixed faulty replica.
    fn fault_start(&mut self, slot: usize, kind: FaultKind) {
        if self.slots[slot].active.is_some() {
            return;
        }
        let held: Vec<NodeId> = self
            .slots
            .iter()
            .filter_map(|s| s.active.map(|(_, node)| node))
            .collect();
        if !held.is_empty() {
            self.report.counts.overlapping_faults += 1;
        }
        let (candidates, preferred): (Vec<NodeId>, Option<NodeId>) = match self.slots[slot].role {
            Role::Replica => {
                let view = self.replicas.iter().map(|r| r.driver.logic().view()).max();
                let n = self.replicas.len() as u64;
                let primary = view.map(|v| NodeId::Replica(ReplicaId((v.0 % n) as u32)));
                let candidates = (0..self.replicas.len() as u32)
                    .filter(|&i| self.replicas[i as usize].up && !self.is_fixed_faulty(i as usize))
                    .map(|i| NodeId::Replica(ReplicaId(i)))
                    .collect();
                (candidates, primary)
            }
            Role::Verifier => {
                let view = self.verifiers.iter().map(|v| v.driver.logic().view()).max();
                let n = self.verifiers.len() as u64;
                let leader = view.map(|v| NodeId::Verifier(VerifierId(((v.0 + 1) % n) as u32)));
                let candidates = (0..self.verifiers.len() as u32)
                    .filter(|&i| self.verifiers[i as usize].up)
                    .map(|i| NodeId::Verifier(VerifierId(i)))
                    .collect();
                (candidates, leader)
            }
        };
        let candidates: Vec<NodeId> = candidates
            .into_iter()
            .filter(|c| !held.contains(c))
            .collect();
        if candidates.is_empty() || self.over_budget(slot) {
            return;
        }
        let target = match preferred {
            Some(p) if candidates.contains(&p) && self.rng.below(2) == 0 => p,
            _ => candidates[self.rng.below(candidates.len() as u64) as usize],
        };
        // In a durable run a third of the crash windows fill the disk instead (drawn apart from
        // `rng`, so that the other faults of a seed stay what they were).
        let kind = match kind {
            FaultKind::CrashRestart
                if self.scenario.faults.durable
                    && splitmix64(self.scenario.seed ^ 0x6675_6c6c ^ self.now.0)
                        .is_multiple_of(3) =>
            {
                FaultKind::DiskFull
            }
            other => other,
        };
        self.slots[slot].active = Some((kind, target));
        let all = self.all_nodes();
        match kind {
            FaultKind::DiskFull => self.fill_disk(target),
            FaultKind::CrashRestart => self.take_down(target),
            FaultKind::Isolate => {
                self.report.counts.partitions += 1;
                self.network.partition(&[target], &all);
            }
            FaultKind::CutOutgoing => {
                self.report.counts.partitions += 1;
                self.network.cut_one_way(&[target], &all);
            }
            FaultKind::CutIncoming => {
                self.report.counts.partitions += 1;
                self.network.cut_one_way(&all, &[target]);
            }
        }
    }

    /// Whether striking another node for `slot` would exceed what the configuration
    /// tolerates: a verifier that restarted is still faulty until it has recovered, so it
    /// counts against the verifier slots until then.
    fn over_budget(&self, slot: usize) -> bool {
        !self.may_strike(self.slots[slot].role)
    }

    /// Whether one more node of `role` may be struck: the nodes slots of that role hold and
    /// those still recovering from an earlier fault stay below the role's budget.
    fn may_strike(&self, role: Role) -> bool {
        let held: Vec<NodeId> = self
            .slots
            .iter()
            .filter(|s| s.role == role)
            .filter_map(|s| s.active.map(|(_, node)| node))
            .collect();
        // A restarted node is faulty until it has recovered: a verifier until a quorum
        // answered it, a replica until it holds the latest committed state again, and the
        // latest executed one (a view may start at a batch only a token quorum executed).
        let highest_executed = self
            .replicas
            .iter()
            .filter(|r| r.up)
            .map(|r| r.driver.logic().executing())
            .max()
            .unwrap_or_default();
        let recovering = match role {
            Role::Verifier => (0..self.verifiers.len() as u32)
                .filter(|&i| self.verifiers[i as usize].driver.logic().is_recovering())
                .map(|i| NodeId::Verifier(VerifierId(i)))
                .filter(|node| !held.contains(node))
                .count(),
            // In the in-memory mode a replica that restarted holds nothing until it catches
            // up to the latest committed batch: until then, losing another replica's memory
            // could lose the only copies of a committed state.
            Role::Replica => (0..self.replicas.len() as u32)
                .filter(|&i| {
                    let node = &self.replicas[i as usize];
                    let behind =
                        node.incarnation > 0 && node.driver.logic().executing() < highest_executed;
                    node.driver.logic().lost_state()
                        || node.driver.logic().committed() < self.highest_committed()
                        || behind
                })
                .map(|i| NodeId::Replica(ReplicaId(i)))
                .filter(|node| !held.contains(node))
                .count(),
        };
        let budget = match role {
            Role::Verifier => self.scenario.faults.verifier_slots,
            Role::Replica => self.scenario.faults.replica_slots,
        };
        let damaged = self
            .damaged
            .iter()
            .filter(|node| {
                matches!(
                    (role, node),
                    (Role::Replica, NodeId::Replica(_)) | (Role::Verifier, NodeId::Verifier(_))
                )
            })
            .filter(|node| !held.contains(node))
            .count();
        held.len() + recovering + damaged < budget as usize
    }

    /// Ends the window of `slot`: restarts the node it crashed (with empty memory), or
    /// removes its cuts.
    fn fault_end(&mut self, slot: usize) {
        let Some((kind, target)) = self.slots[slot].active.take() else {
            return;
        };
        let all = self.all_nodes();
        match (kind, target) {
            (FaultKind::CrashRestart, NodeId::Replica(id)) => self.restart(id),
            (FaultKind::CrashRestart, NodeId::Verifier(id)) => self.restart_verifier(id),
            (FaultKind::CrashRestart, NodeId::Client(_)) => {}
            (FaultKind::DiskFull, _) => self.free_disk(target),
            (FaultKind::Isolate, _) => {
                self.network.restore_one_way(&[target], &all);
                self.network.restore_one_way(&all, &[target]);
            }
            (FaultKind::CutOutgoing, _) => self.network.restore_one_way(&[target], &all),
            (FaultKind::CutIncoming, _) => self.network.restore_one_way(&all, &[target]),
        }
    }

    /// Restarts a verifier with empty memory: it recovers from its peers before it votes.
    fn restart_verifier(&mut self, id: VerifierId) {
        let node = &mut self.verifiers[id.0 as usize];
        if node.dead || node.up {
            return;
        }
        node.incarnation += 1;
        let nonce =
            splitmix64(self.scenario.seed ^ 0x7e51 ^ (u64::from(id.0) << 40) ^ node.incarnation);
        self.report.add_verifier(node.driver.logic().counters());
        node.up = true;
        self.report.counts.verifier_restarts += 1;
        self.damaged.remove(&NodeId::Verifier(id));
        let logic = match self.recover_verifier(id, nonce) {
            Some(logic) => logic,
            None => Verifier::restart(id, self.config.clone(), nonce)
                .with_auth(self.verifier_auth[id.0 as usize].clone()),
        };
        let mut io = self.io();
        self.verifiers[id.0 as usize].driver.replace(logic, &mut io);
        self.carry_out(NodeId::Verifier(id), io);
    }

    fn all_nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = (0..self.replicas.len() as u32)
            .map(|i| NodeId::Replica(ReplicaId(i)))
            .collect();
        nodes.extend((0..self.verifiers.len() as u32).map(|i| NodeId::Verifier(VerifierId(i))));
        nodes.extend(self.clients.iter().map(|c| c.driver.logic().node_id()));
        nodes
    }

    /// Restarts a replica: from its disk in a durable run, else with empty memory and state.
    fn restart(&mut self, replica: ReplicaId) {
        let incarnation = self.replicas[replica.0 as usize].incarnation + 1;
        report_replica(
            self.replicas[replica.0 as usize].driver.logic(),
            &mut self.report,
        );
        let nonce = splitmix64(self.scenario.seed ^ (u64::from(replica.0) << 40) ^ incarnation);
        let (exec, logic, executed) = match self.recover_replica(replica, incarnation, nonce) {
            Some(recovered) => recovered,
            None => (
                new_executor(&self.scenario, &self.config, replica, incarnation),
                ReplicaLogic::restart(replica, &self.config, nonce)
                    .with_request_verifier(self.auth.clone()),
                BTreeMap::new(),
            ),
        };
        self.damaged.remove(&NodeId::Replica(replica));
        let node = &mut self.replicas[replica.0 as usize];
        node.executed = executed;
        node.exec = exec;
        node.up = true;
        node.incarnation = incarnation;
        node.busy_until = self.now;
        self.report.counts.restarts += 1;
        self.checks.forget_replica(replica);
        let mut io = self.io();
        self.replicas[replica.0 as usize]
            .driver
            .replace(logic, &mut io);
        self.carry_out(NodeId::Replica(replica), io);
    }

    /// Whether `node` is running (clients always are).
    fn is_up(&self, node: NodeId) -> bool {
        match node {
            NodeId::Replica(id) => self.replicas[id.0 as usize].up,
            NodeId::Verifier(id) => self.verifiers[id.0 as usize].up,
            NodeId::Client(_) => true,
        }
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg: Message) {
        self.report.messages_delivered += 1;
        if !self.is_up(to) {
            return;
        }
        let mut io = self.io();
        let done = match to {
            NodeId::Replica(id) => self.replicas[id.0 as usize]
                .driver
                .on_message(&mut io, from, msg),
            NodeId::Verifier(id) => self.verifiers[id.0 as usize]
                .driver
                .on_message(&mut io, from, msg),
            NodeId::Client(id) => self.clients[(id.0 - 1) as usize]
                .driver
                .on_message(&mut io, from, msg),
        };
        self.carry_out(to, io);
        if let (NodeId::Client(id), Some(done)) = (to, done) {
            self.complete((id.0 - 1) as usize, done);
        }
    }

    fn timer(&mut self, node: NodeId) {
        if !self.is_up(node) {
            return;
        }
        let mut io = self.io();
        let woken = match node {
            NodeId::Replica(id) => self.replicas[id.0 as usize].driver.on_wake(&mut io),
            NodeId::Verifier(id) => self.verifiers[id.0 as usize].driver.on_wake(&mut io),
            NodeId::Client(id) => self.clients[(id.0 - 1) as usize].driver.on_wake(&mut io),
        };
        self.carry_out(node, io);
        if let Err(stuck) = woken {
            // handle_timeout must consume the work that was due, or time stands still.
            self.report.violation(stuck.to_string());
        }
    }

    /// A buffer for the effects of one driver call, at the current time.
    fn io(&self) -> Effects {
        Effects::new(self.now)
    }

    /// Carries out, in order, the effects `node`'s driver asked for: sends, execution
    /// commands and its next wake-up.
    fn carry_out(&mut self, node: NodeId, io: Effects) {
        for effect in io.into_effects() {
            match effect {
                Effect::Send(to, msg) => {
                    // What a verifier wrote down is durable before anything it sends.
                    if let NodeId::Verifier(id) = node
                        && !self.sync_memory(id)
                    {
                        return;
                    }
                    self.send(node, to, msg)
                }
                Effect::Exec(command) => {
                    let NodeId::Replica(id) = node else {
                        unreachable!("only replicas execute")
                    };
                    self.execute(id, command);
                }
                Effect::Wake(at) => self.schedule(at, Event::Timer { node }),
                Effect::Persist(memory) => {
                    let NodeId::Verifier(id) = node else {
                        unreachable!("only verifiers keep a memory")
                    };
                    if !self.persist(id, &memory) {
                        // It could not write down what its next messages depend on: it stops
                        // here, and sends none of them.
                        return;
                    }
                }
            }
        }
        if let NodeId::Replica(id) = node {
            self.observe_replica(id);
        }
    }

    fn replica_exec_event(&mut self, id: ReplicaId, event: ExecEvent) {
        let mut io = self.io();
        self.replicas[id.0 as usize]
            .driver
            .on_exec_event(&mut io, event);
        self.carry_out(NodeId::Replica(id), io);
    }

    fn execute(&mut self, id: ReplicaId, command: ExecCommand) {
        let node = &mut self.replicas[id.0 as usize];
        match &command {
            ExecCommand::Execute { batch, .. } => {
                node.executed.insert(batch.seq, batch.requests.clone());
            }
            ExecCommand::Rollback { to } => {
                node.executed.retain(|seq, _| seq <= to);
            }
            _ => {}
        }
        let cost_us = match &command {
            ExecCommand::Execute { batch, .. } => {
                EXEC_COST_PER_REQUEST_US * batch.requests.len() as u64
            }
            ExecCommand::ImportChunk { chunk, .. } => {
                let objects: usize = chunk.parts.iter().map(|p| p.objects.len()).sum();
                IMPORT_COST_PER_OBJECT_US * objects as u64
            }
            _ => 0,
        };
        // The journal is synced when the results are handed back (`Event::Exec`): a crash
        // before then loses the batches logged since the last sync, or tears the last one.
        let logged = node.exec.journal().map(|j| j.counters().records);
        let events = node.exec.apply_unsynced(command);
        if events.is_empty() {
            return;
        }
        let sync_us = if node.exec.journal().map(|j| j.counters().records) != logged {
            power::SYNC_COST_US
        } else {
            0
        };
        let start = node.busy_until.max(self.now);
        let done = start.plus_us(EXEC_COST_US + cost_us + sync_us);
        node.busy_until = done;
        let incarnation = node.incarnation;
        let mut exec_events = Vec::new();
        for event in events {
            match event {
                // State served to a peer leaves at once (the execution side sends it, through
                // the logic, which may note it).
                send @ ExecEvent::Send { .. } => self.replica_exec_event(id, send),
                other => exec_events.push(other),
            }
        }
        if !exec_events.is_empty() {
            self.schedule(
                done,
                Event::Exec {
                    replica: id,
                    incarnation,
                    events: exec_events,
                },
            );
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let msg = match from {
            NodeId::Replica(id) => {
                let byzantine = self.replicas[id.0 as usize].byzantine;
                if let Message::Reply { reply, .. } = &msg
                    && byzantine.is_none()
                {
                    self.checks.released(id, reply, &mut self.report);
                    // A reply is released only for a batch committed with this replica's own
                    // token: the batch it executed there is the committed one.
                    let executed = self.replicas[id.0 as usize].executed.get(&reply.seq);
                    if let Some(requests) = executed.filter(|requests| {
                        requests
                            .iter()
                            .any(|r| (r.client, r.request_no) == (reply.client, reply.request_no))
                    }) {
                        self.reference.committed(id, reply.seq, requests);
                    }
                }
                let n = self.replicas.len() as u32;
                let mut msg = msg;
                if let Message::Verify {
                    view,
                    seq,
                    token,
                    prev,
                } = &mut msg
                {
                    match byzantine {
                        None => self.saw_token(*view, *seq, (*prev, *token)),
                        Some(Byzantine::EchoDiverged) => {
                            // The diverged replica's token, with the version it executed on
                            // (a claim on the agreed version would match no correct replica's).
                            let diverged = self
                                .tokens_sent
                                .get(&(*view, *seq))
                                .and_then(|tokens| tokens.iter().find(|t| **t != (*prev, *token)))
                                .copied();
                            if let Some((p, t)) = diverged {
                                self.report.counts.echoed_tokens += 1;
                                (*prev, *token) = (p, t);
                            }
                        }
                        Some(_) => {}
                    }
                }
                match byzantine {
                    Some(kind) => {
                        let is_token = matches!(msg, Message::Verify { .. });
                        let is_forgeable =
                            matches!(msg, Message::ExecuteBatch(_) | Message::Request(_));
                        // The batch a withheld message would have carried (no copy of it).
                        let batch_seq = match &msg {
                            Message::ExecuteBatch(batch) => Some(batch.seq),
                            _ => None,
                        };
                        match tamper(kind, id, n, to, msg, &mut self.rng) {
                            Some(msg) => {
                                if kind == Byzantine::FutureTokens && is_token {
                                    self.report.counts.future_tokens += 1;
                                }
                                if kind == Byzantine::ForgedRequests && is_forgeable {
                                    self.report.counts.forged_requests += 1;
                                }
                                msg
                            }
                            None => {
                                self.report.counts.batches_withheld += 1;
                                if let (None, Some(seq)) = (self.withheld, batch_seq) {
                                    self.withheld = Some((seq, self.now));
                                }
                                return;
                            }
                        }
                    }
                    None => msg,
                }
            }
            NodeId::Verifier(id)
                if from != to
                    && self.scenario.faults.byzantine_verifier.is_some()
                    && id.0 == self.scenario.faults.byzantine_verifier_id =>
            {
                let liar = crate::lying_verifier::LyingVerifier {
                    kind: self.scenario.faults.byzantine_verifier.expect("checked"),
                    me: id,
                    auth: &self.verifier_auth[id.0 as usize],
                    cluster: self.config.cluster_id,
                    n_ver: self.verifiers.len() as u32,
                };
                match liar.lie(to, msg) {
                    Some(lie) => {
                        if lie.1 {
                            self.report.counts.verifier_lies += 1;
                        }
                        lie.0
                    }
                    None => {
                        self.report.counts.verifier_lies += 1;
                        return;
                    }
                }
            }
            _ => msg,
        };
        let sent = self.now;
        if self.network.favours(from) && from != to {
            self.report.counts.colluding_deliveries += 1;
        }
        for at in self.network.deliveries(self.now, from, to) {
            self.schedule(
                at,
                Event::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                    sent,
                },
            );
        }
    }

    /// Records a token a correct replica sent, with the token of the version it executed on,
    /// keeping the latest batches only.
    fn saw_token(&mut self, view: View, seq: BatchSeq, token: (eve_exec::Token, eve_exec::Token)) {
        let tokens = self.tokens_sent.entry((view, seq)).or_default();
        if !tokens.contains(&token) {
            tokens.push(token);
        }
        while self.tokens_sent.len() > TOKENS_SEEN_MAX {
            self.tokens_sent.pop_first();
        }
    }

    /// Checks a replica's newly committed batches against every other correct replica's.
    fn observe_replica(&mut self, id: ReplicaId) {
        let node = &self.replicas[id.0 as usize];
        if node.byzantine.is_some() || !node.up {
            return;
        }
        let committed = node.driver.logic().committed();
        if let Some((seq, since)) = self.withheld
            && committed >= seq
        {
            // The stall a Byzantine primary's gap caused ended with this commit.
            self.report
                .byzantine_stalls_ms
                .push((self.now.0 - since.0) / 1_000);
            self.withheld = None;
        }
        let node = &self.replicas[id.0 as usize];
        let state = node.exec.executor().state();
        match state.root_of(committed) {
            Ok(root) => {
                let roots = node.driver.logic().committed_roots();
                self.checks.committed(id, committed, root, &mut self.report);
                if let Some(roots) = roots {
                    self.checks
                        .chain(id, committed, root, roots, &mut self.report);
                }
            }
            // A check that cannot run is a failure, not a skip.
            Err(err) => self.report.violation(format!(
                "{id} committed {committed} but its store cannot give that version's root: {err}"
            )),
        }
    }

    fn submit(&mut self, index: usize) {
        let faults = &self.scenario.faults;
        let client = &mut self.clients[index];
        if client.remaining == 0 || client.current.is_some() {
            return;
        }
        client.remaining -= 1;
        let op = draw_op(&mut client.rng, self.scenario.keys, faults.racy_ppm);
        client
            .driver
            .logic_mut()
            .submit(self.now, op.encode())
            .expect("a client submits only when idle, and operations are small");
        client.current = Some((op, self.now));
        let mut io = Effects::new(self.now);
        client.driver.flush(&mut io);
        let id = client.driver.logic().node_id();
        self.carry_out(id, io);
    }

    fn complete(&mut self, index: usize, done: eve_agreement::Completion) {
        let client = &mut self.clients[index];
        let Some((op, invoked)) = client.current.take() else {
            return;
        };
        let id = client.driver.logic().id();
        self.report.counts.requests_completed += 1;
        self.checks
            .accepted(id, done.request_no, &done.body, &mut self.report);
        if let SimOp::Kv(op) = op {
            self.checks.history(id, invoked, self.now, op, &done.body);
        }
        let think = Time(self.now.0 + self.rng.below(500));
        self.schedule(think, Event::Submit { client: index });
    }

    fn finish(mut self, events: u64) -> RunReport {
        let lying_verifier = self.scenario.faults.byzantine_verifier.is_some();
        self.report.counts.echo_runs =
            u64::from(self.scenario.faults.byzantine == Some(Byzantine::EchoDiverged));
        self.report.counts.byzantine_verifier_runs = u64::from(lying_verifier);
        self.report.counts.forging_runs = u64::from(matches!(
            self.scenario.faults.byzantine_verifier,
            Some(crate::ByzantineVerifier::ForgeClaims | crate::ByzantineVerifier::LyingLeader)
        ));
        self.report.counts.byzantine_runs =
            u64::from(self.replicas.iter().any(|r| r.byzantine.is_some()) || lying_verifier);
        for client in &mut self.clients {
            if let Some((SimOp::Kv(op), invoked)) = client.current.take() {
                self.checks.pending(client.driver.logic().id(), invoked, op);
            }
        }
        self.checks.check_history(&mut self.report);
        self.check_against_reference();
        for node in &self.replicas {
            report_replica(node.driver.logic(), &mut self.report);
            if node.byzantine.is_some() && node.driver.logic().batches_ordered() > 0 {
                self.report.counts.byzantine_primaries = 1;
            }
        }
        for node in &self.verifiers {
            self.report.add_verifier(node.driver.logic().counters());
        }
        if !self.report.passed() {
            for node in &self.replicas {
                let up = if node.up { "" } else { " (down)" };
                self.report
                    .final_state
                    .push(format!("{}{up}", node.driver.logic().describe()));
            }
            for node in &self.verifiers {
                let up = if node.up { "" } else { " (down)" };
                self.report
                    .final_state
                    .push(format!("{}{up}", node.driver.logic().describe()));
            }
            for client in &self.clients {
                self.report.final_state.push(format!(
                    "{} outstanding {:?} remaining {}",
                    client.driver.logic().id(),
                    client.driver.logic().outstanding().map(|r| r.request_no),
                    client.remaining
                ));
            }
        }
        self.report.log = self.log.take().unwrap_or_default();
        self.report.events = events;
        self.report.sim_time_ms = self.now.as_ms();
        self.report.trace_hash = *self.trace.finalize().as_bytes();
        self.report.counts.batches_committed = self
            .replicas
            .iter()
            .map(|r| r.driver.logic().committed().0)
            .max()
            .unwrap_or(0);
        self.report
    }
}

/// Adds a replica's counters to a report.
fn report_replica(logic: &ReplicaLogic, report: &mut RunReport) {
    match logic {
        ReplicaLogic::Eve(r) => report.add_replica(r.counters()),
        ReplicaLogic::PrimaryBackup(r) => report.add_pb(r.counters()),
    }
}

/// A fresh, empty executor for replica `id`: its own seeded interleaving of parallel batches,
/// and, when the scenario says so, a mixer that misses conflicts or an application that
/// corrupts state (on replica 0 only, so one replica is faulty).
fn new_executor(
    scenario: &Scenario,
    config: &ValidConfig,
    id: ReplicaId,
    incarnation: u64,
) -> ReplicaExecutor<SimApp> {
    let seed = splitmix64(scenario.seed ^ (u64::from(id.0) << 32) ^ incarnation);
    let faulty = id == ReplicaId(0);
    let faults = &scenario.faults;
    let mixer: Box<dyn Mixer> = if faulty && faults.missed_conflict_ppm > 0 {
        Box::new(
            FaultyMixer::new(GreedyMixer, faults.missed_conflict_ppm, 0, seed)
                .expect("scenario rates are in range"),
        )
    } else {
        Box::new(GreedyMixer)
    };
    let app = if faulty && faults.corrupt_ppm > 0 {
        SimApp::corrupting(faults.corrupt_ppm, seed)
    } else {
        SimApp::correct()
    };
    let state_config = StateConfig::from_cluster(config);
    // Replicas start with the scenario's objects; a restarted one starts empty.
    let state = if faults.state_objects > 0 && incarnation == 0 {
        let objects = (0..faults.state_objects).map(|i| {
            (
                Bytes::from(format!("object-{i:08}")),
                Bytes::from(format!("initial value {i}")),
            )
        });
        StateStore::with_objects(state_config, objects).expect("scenario objects fit the state")
    } else {
        StateStore::new(state_config)
    };
    let executor = Executor::new(app, state, mixer, Box::new(SeededRunner::new(seed)))
        .with_forced_divergence(faults.forced_divergence_ppm, u64::from(id.0) + 1);
    ReplicaExecutor::new(executor).with_chunk_bytes(SIM_CHUNK_BYTES)
}

/// What a Byzantine replica sends instead of `msg` (nothing, for `None`).
fn tamper(
    kind: Byzantine,
    me: ReplicaId,
    n_exec: u32,
    to: NodeId,
    msg: Message,
    rng: &mut SplitMix64,
) -> Option<Message> {
    // An equivocating primary sends the altered batch to the next replica only, so correct
    // replicas split between the two batches.
    let split = NodeId::Replica(ReplicaId((me.0 + 1) % n_exec));
    Some(match (kind, msg) {
        (
            Byzantine::WrongTokens,
            Message::Verify {
                view, seq, prev, ..
            },
        ) => Message::Verify {
            view,
            seq,
            token: eve_exec::Token(eve_types::Digest([rng.below(256) as u8; 32])),
            prev,
        },
        (Byzantine::WrongTokens, Message::Reply { view, mut reply }) => {
            reply.body = Bytes::from_static(b"a lie");
            Message::Reply { view, reply }
        }
        (Byzantine::TamperedState, Message::StateReply(reply)) => {
            Message::StateReply(Box::new(match *reply {
                StateReply::Delta { roots, mut delta } => {
                    for entry in &mut delta.entries {
                        entry.value = Some(Bytes::from_static(b"tampered"));
                    }
                    if delta.entries.is_empty() {
                        delta.entries.push(eve_state::DeltaEntry {
                            key: Bytes::from_static(b"k0"),
                            value: Some(Bytes::from_static(b"tampered")),
                        });
                    }
                    StateReply::Delta { roots, delta }
                }
                other => other,
            }))
        }
        (Byzantine::TamperedState, Message::Chunk(mut chunk)) => {
            for part in &mut chunk.parts {
                for object in &mut part.objects {
                    object.1 = Bytes::from_static(b"tampered");
                }
            }
            Message::Chunk(chunk)
        }
        (Byzantine::Equivocate, Message::ExecuteBatch(mut batch)) if to == split => {
            // A different batch: the last request left out.
            batch.requests.pop();
            Message::ExecuteBatch(batch)
        }
        (Byzantine::GapBatches, Message::ExecuteBatch(batch)) if batch.seq.0 % 4 == 2 => {
            return None;
        }
        (Byzantine::ForgedRequests, Message::ExecuteBatch(mut batch)) => {
            if let Some(request) = batch.requests.last_mut() {
                request.op = Bytes::from_static(b"forged");
            }
            Message::ExecuteBatch(batch)
        }
        (Byzantine::ForgedRequests, Message::Request(mut request)) => {
            request.request_no = eve_types::RequestNo(u64::MAX - 1);
            request.op = Bytes::from_static(b"forged");
            Message::Request(request)
        }
        (
            Byzantine::FutureTokens,
            Message::Verify {
                view,
                seq,
                token,
                prev,
            },
        ) => Message::Verify {
            view,
            seq: eve_types::BatchSeq(seq.0 + 1 + rng.below(eve_agreement::limits::SEQ_WINDOW - 1)),
            token,
            prev,
        },
        (_, msg) => msg,
    })
}
