//! A whole cluster in one process: the real protocol logic, state store, executor and
//! key-value application, a simulated clock and network, driven from one seed.

use crate::app::SimApp;
use crate::checks::Checks;
use crate::logic::Logic;
use crate::network::Network;
use crate::report::RunReport;
use crate::scenario::{Byzantine, Scenario};
use crate::workload::{SimOp, draw_op};
use bytes::Bytes;
use eve_agreement::{
    Client, ExecEvent, Message, NodeId, Output, ReplicaExecutor, StateReply, Time, Verifier,
};
use eve_exec::{Executor, SeededRunner};
use eve_mixer::{FaultyMixer, GreedyMixer, Mixer};
use eve_state::{StateConfig, StateStore};
use eve_types::{ReplicaId, SplitMix64, ValidConfig, VerifierId, splitmix64};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Most events one run may process: a run that has not finished by then is reported as
/// stuck rather than looping forever.
pub const EVENTS_MAX: u64 = 5_000_000;

/// Simulated time to execute one batch: a fixed cost plus a cost per request, in microseconds.
const EXEC_COST_US: u64 = 30;
const EXEC_COST_PER_REQUEST_US: u64 = 5;

/// Something that happens at a simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Message,
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
    Isolate {
        replica: ReplicaId,
    },
    CutOutgoing {
        replica: ReplicaId,
    },
    HealPartitions,
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
    logic: Logic,
    exec: ReplicaExecutor<SimApp>,
    up: bool,
    incarnation: u64,
    busy_until: Time,
    byzantine: Option<Byzantine>,
}

struct VerifierNode {
    logic: Verifier,
    up: bool,
}

struct ClientNode {
    logic: Client,
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
    timers: BTreeMap<NodeId, Time>,
    /// Nodes whose timer stopped advancing (a violation already reported): not re-armed.
    stuck_timers: std::collections::BTreeSet<NodeId>,
    replicas: Vec<ReplicaNode>,
    verifiers: Vec<VerifierNode>,
    clients: Vec<ClientNode>,
    network: Network,
    rng: SplitMix64,
    checks: Checks,
    report: RunReport,
    trace: blake3::Hasher,
    /// Every event, when the run was asked to keep a log.
    log: Option<Vec<String>>,
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
        let byzantine_replica = ReplicaId(1 % sizes.n_exec as u32);
        let replicas = (0..sizes.n_exec as u32)
            .map(|i| {
                let id = ReplicaId(i);
                let byzantine = (id == byzantine_replica)
                    .then_some(scenario.faults.byzantine)
                    .flatten();
                ReplicaNode {
                    logic: Logic::new(id, &config),
                    exec: new_executor(&scenario, &config, id, 0),
                    up: true,
                    incarnation: 0,
                    busy_until: Time::ZERO,
                    byzantine,
                }
            })
            .collect();
        let verifiers = (0..sizes.n_ver as u32)
            .map(|i| VerifierNode {
                logic: Verifier::new(VerifierId(i), config.clone()),
                up: true,
            })
            .collect();
        let clients = (0..scenario.clients)
            .map(|i| ClientNode {
                logic: Client::new(eve_types::ClientId(i as u64 + 1), &config),
                rng: SplitMix64::new(splitmix64(seed ^ 0xc11e47 ^ i as u64)),
                remaining: scenario.ops_per_client,
                current: None,
            })
            .collect();
        let network = Network::new(scenario.faults.network.clone(), splitmix64(seed ^ 0x4e7));
        let report = RunReport::new(&scenario);
        let mut cluster = Self {
            config,
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            order: 0,
            timers: BTreeMap::new(),
            stuck_timers: Default::default(),
            replicas,
            verifiers,
            clients,
            network,
            rng: SplitMix64::new(splitmix64(seed ^ 0xfa17)),
            checks: Checks::default(),
            report,
            trace: blake3::Hasher::new(),
            log: None,
            scenario,
        };
        cluster.schedule_start();
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
        if faults.partition || faults.one_way {
            let replica = ReplicaId(self.rng.below(n_exec) as u32);
            let at = during(&mut self.rng);
            let event = if faults.partition {
                Event::Isolate { replica }
            } else {
                Event::CutOutgoing { replica }
            };
            self.schedule(at, event);
            let end = Time(at.0 + self.rng.below(heal.0.saturating_sub(at.0).max(1)));
            self.schedule(end, Event::HealPartitions);
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

    /// Runs until every client finished, the liveness deadline passed, or the event budget
    /// ran out, checking the invariants at every step.
    pub fn run(mut self) -> RunReport {
        let deadline = Time::ZERO
            .plus_ms(self.scenario.faults.heal_ms)
            .plus_ms(self.scenario.faults.liveness_ms);
        let mut events = 0u64;
        while let Some(Reverse(next)) = self.queue.pop() {
            if self.all_clients_done() || next.at > deadline {
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
        if !self.all_clients_done() {
            let pending: usize = self
                .clients
                .iter()
                .map(|c| c.remaining + usize::from(c.current.is_some()))
                .sum();
            self.report.violation(format!(
                "liveness: {pending} operations still pending {} ms after the faults healed",
                self.scenario.faults.liveness_ms
            ));
        }
        self.finish(events)
    }

    fn all_clients_done(&self) -> bool {
        self.clients
            .iter()
            .all(|c| c.remaining == 0 && c.current.is_none())
    }

    fn trace_event(&mut self, event: &Event) {
        self.trace.update(&self.now.0.to_le_bytes());
        let line = match event {
            Event::Deliver { from, to, msg } => format!("d{from:?}>{to:?}:{}", msg.kind()),
            Event::Exec {
                replica, events, ..
            } => format!("x{replica}:{}", events.len()),
            other => format!("{other:?}"),
        };
        self.trace.update(line.as_bytes());
        if let Some(log) = &mut self.log {
            log.push(format!("{:?} {line}", self.now));
        }
    }

    fn process(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, msg } => self.deliver(from, to, msg),
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
                for event in events {
                    node.logic.handle_exec_event(self.now, event);
                }
                self.drain(NodeId::Replica(replica));
            }
            Event::Submit { client } => self.submit(client),
            Event::Crash { replica } => {
                self.replicas[replica.0 as usize].up = false;
                self.report.counts.crashes += 1;
            }
            Event::Restart { replica } => self.restart(replica),
            Event::CrashVerifier { verifier } => {
                self.verifiers[verifier.0 as usize].up = false;
                self.report.counts.crashes += 1;
            }
            Event::Isolate { replica } => {
                let all = self.all_nodes();
                self.network.partition(&[NodeId::Replica(replica)], &all);
                self.report.counts.partitions += 1;
            }
            Event::CutOutgoing { replica } => {
                let all = self.all_nodes();
                self.network.cut_one_way(&[NodeId::Replica(replica)], &all);
                self.report.counts.partitions += 1;
            }
            Event::HealPartitions => self.network.heal_partitions(),
            Event::Heal => {
                self.network.heal();
                for i in 0..self.replicas.len() {
                    if !self.replicas[i].up {
                        self.restart(ReplicaId(i as u32));
                    }
                }
            }
        }
    }

    fn all_nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = (0..self.replicas.len() as u32)
            .map(|i| NodeId::Replica(ReplicaId(i)))
            .collect();
        nodes.extend((0..self.verifiers.len() as u32).map(|i| NodeId::Verifier(VerifierId(i))));
        nodes.extend(self.clients.iter().map(|c| NodeId::Client(c.logic.id())));
        nodes
    }

    fn restart(&mut self, replica: ReplicaId) {
        let incarnation = self.replicas[replica.0 as usize].incarnation + 1;
        let exec = new_executor(&self.scenario, &self.config, replica, incarnation);
        self.replicas[replica.0 as usize]
            .logic
            .report_to(&mut self.report);
        let nonce = splitmix64(self.scenario.seed ^ (u64::from(replica.0) << 40) ^ incarnation);
        let node = &mut self.replicas[replica.0 as usize];
        node.logic = Logic::restart(replica, &self.config, nonce);
        node.exec = exec;
        node.up = true;
        node.incarnation = incarnation;
        node.busy_until = self.now;
        self.report.counts.restarts += 1;
        self.checks.forget_replica(replica);
        self.drain(NodeId::Replica(replica));
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg: Message) {
        self.report.messages_delivered += 1;
        match to {
            NodeId::Replica(id) => {
                let node = &mut self.replicas[id.0 as usize];
                if !node.up {
                    return;
                }
                node.logic.handle_message(self.now, from, msg);
            }
            NodeId::Verifier(id) => {
                let node = &mut self.verifiers[id.0 as usize];
                if !node.up {
                    return;
                }
                node.logic.handle_message(self.now, from, msg);
            }
            NodeId::Client(id) => {
                let index = (id.0 - 1) as usize;
                if let Some(done) = self.clients[index].logic.handle_message(from, msg) {
                    self.complete(index, done);
                }
            }
        }
        self.drain(to);
    }

    fn timer(&mut self, node: NodeId) {
        if self.timers.get(&node) == Some(&self.now) {
            self.timers.remove(&node);
        }
        let now = self.now;
        if self.next_timeout(node).is_none_or(|t| t > now) {
            return self.arm_timer(node);
        }
        match node {
            NodeId::Replica(id) => self.replicas[id.0 as usize].logic.handle_timeout(now),
            NodeId::Verifier(id) => self.verifiers[id.0 as usize].logic.handle_timeout(now),
            NodeId::Client(id) => self.clients[(id.0 - 1) as usize].logic.handle_timeout(now),
        }
        if self.next_timeout(node).is_some_and(|t| t <= now) {
            // handle_timeout must consume the work that was due, or time stands still.
            self.report.violation(format!(
                "{node:?}: a timeout was handled but is still due at {now:?}"
            ));
            self.stuck_timers.insert(node);
        }
        self.drain(node);
    }

    fn next_timeout(&self, node: NodeId) -> Option<Time> {
        match node {
            NodeId::Replica(id) => {
                let n = &self.replicas[id.0 as usize];
                n.up.then(|| n.logic.next_timeout()).flatten()
            }
            NodeId::Verifier(id) => {
                let n = &self.verifiers[id.0 as usize];
                n.up.then(|| n.logic.next_timeout()).flatten()
            }
            NodeId::Client(id) => self.clients[(id.0 - 1) as usize].logic.next_timeout(),
        }
    }

    fn arm_timer(&mut self, node: NodeId) {
        let Some(at) = self.next_timeout(node) else {
            return;
        };
        if self.stuck_timers.contains(&node) {
            return;
        }
        let at = at.max(self.now);
        if self
            .timers
            .get(&node)
            .is_some_and(|&t| t <= at && t >= self.now)
        {
            return;
        }
        self.timers.insert(node, at);
        self.schedule(at, Event::Timer { node });
    }

    /// Carries out every output of `node`, then re-arms its timer.
    fn drain(&mut self, node: NodeId) {
        loop {
            let output = match node {
                NodeId::Replica(id) => self.replicas[id.0 as usize].logic.poll_output(),
                NodeId::Verifier(id) => self.verifiers[id.0 as usize].logic.poll_output(),
                NodeId::Client(id) => self.clients[(id.0 - 1) as usize].logic.poll_output(),
            };
            let Some(output) = output else { break };
            match output {
                Output::Send { to, msg } => self.send(node, to, msg),
                Output::Exec(command) => {
                    let NodeId::Replica(id) = node else {
                        unreachable!("only replicas execute")
                    };
                    self.execute(id, command);
                }
            }
        }
        if let NodeId::Replica(id) = node {
            self.observe_replica(id);
        }
        self.arm_timer(node);
    }

    fn execute(&mut self, id: ReplicaId, command: eve_agreement::ExecCommand) {
        let node = &mut self.replicas[id.0 as usize];
        let requests = match &command {
            eve_agreement::ExecCommand::Execute { batch, .. } => batch.requests.len() as u64,
            _ => 0,
        };
        let events = node.exec.apply(command);
        if events.is_empty() {
            return;
        }
        let start = node.busy_until.max(self.now);
        let done = start.plus_us(EXEC_COST_US + EXEC_COST_PER_REQUEST_US * requests);
        node.busy_until = done;
        let incarnation = node.incarnation;
        let mut exec_events = Vec::new();
        for event in events {
            match event {
                // State served to a peer leaves at once (the execution side sends it).
                ExecEvent::Send { to, msg } => self.send(NodeId::Replica(id), to, msg),
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
                }
                match byzantine {
                    Some(kind) => tamper(kind, to, msg, &mut self.rng),
                    None => msg,
                }
            }
            _ => msg,
        };
        for at in self.network.deliveries(self.now, from, to) {
            self.schedule(
                at,
                Event::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
    }

    /// Checks a replica's newly committed batches against every other correct replica's.
    fn observe_replica(&mut self, id: ReplicaId) {
        let node = &self.replicas[id.0 as usize];
        if node.byzantine.is_some() || !node.up {
            return;
        }
        let committed = node.logic.committed();
        let state = node.exec.executor().state();
        if let Ok(root) = state.root_of(committed) {
            self.checks.committed(id, committed, root, &mut self.report);
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
            .logic
            .submit(self.now, op.encode())
            .expect("a client submits only when idle, and operations are small");
        client.current = Some((op, self.now));
        let id = client.logic.id();
        self.drain(NodeId::Client(id));
    }

    fn complete(&mut self, index: usize, done: eve_agreement::Completion) {
        let client = &mut self.clients[index];
        let Some((op, invoked)) = client.current.take() else {
            return;
        };
        let id = client.logic.id();
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
        for client in &mut self.clients {
            if let Some((SimOp::Kv(op), invoked)) = client.current.take() {
                self.checks.pending(client.logic.id(), invoked, op);
            }
        }
        self.checks.check_history(&mut self.report);
        for node in &self.replicas {
            node.logic.report_to(&mut self.report);
        }
        for node in &self.verifiers {
            self.report.add_verifier(node.logic.counters());
        }
        if !self.report.passed() {
            for node in &self.replicas {
                let up = if node.up { "" } else { " (down)" };
                self.report
                    .final_state
                    .push(format!("{}{up}", node.logic.describe()));
            }
            for node in &self.verifiers {
                let up = if node.up { "" } else { " (down)" };
                self.report
                    .final_state
                    .push(format!("{}{up}", node.logic.describe()));
            }
            for client in &self.clients {
                self.report.final_state.push(format!(
                    "{} outstanding {:?} remaining {}",
                    client.logic.id(),
                    client.logic.outstanding().map(|r| r.request_no),
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
            .map(|r| r.logic.committed().0)
            .max()
            .unwrap_or(0);
        self.report
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
    let state = StateStore::new(StateConfig::from_cluster(config));
    let executor = Executor::new(app, state, mixer, Box::new(SeededRunner::new(seed)));
    ReplicaExecutor::new(executor)
}

/// What a Byzantine replica sends instead of `msg`.
fn tamper(kind: Byzantine, to: NodeId, msg: Message, rng: &mut SplitMix64) -> Message {
    match (kind, msg) {
        (Byzantine::WrongTokens, Message::Verify { view, seq, .. }) => Message::Verify {
            view,
            seq,
            token: eve_exec::Token(eve_types::Digest([rng.below(256) as u8; 32])),
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
        (Byzantine::Equivocate, Message::ExecuteBatch(mut batch)) if matches!(to, NodeId::Replica(r) if r.0 % 2 == 0) =>
        {
            // A different batch: the last request left out.
            batch.requests.pop();
            Message::ExecuteBatch(batch)
        }
        (_, msg) => msg,
    }
}
