//! A whole Eve cluster in memory for directed tests: the real [`Replica`], [`Verifier`],
//! [`Client`] and [`ReplicaExecutor`] over the key-value store, one message pool, and a filter
//! the test sets to lose exactly the messages a schedule needs lost. Time moves only when the
//! test says so; execution runs inline. No threads, no real time: every run is the same.

#![allow(dead_code)]

use bytes::Bytes;
use eve_agreement::{
    Client, Completion, Message, NodeId, Output, Replica, ReplicaExecutor, Time, Verifier,
};
use eve_apps::{KvOp, KvReply, KvStore};
use eve_exec::{Executor, InlineRunner};
use eve_mixer::GreedyMixer;
use eve_state::{StateConfig, StateStore};
use eve_types::{ClientId, ClusterConfig, ReplicaId, ReplicationMode, ValidConfig, VerifierId};
use std::collections::VecDeque;

/// Most deliveries one call to [`Net::run`] makes before it counts as stuck.
const DELIVERIES_MAX: usize = 100_000;

/// What the network does with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Lose,
    /// Keep it aside until [`Net::release_held`].
    Hold,
}

/// What the network does with each message: `(from, to, message) -> fate`.
pub type Filter = Box<dyn Fn(NodeId, NodeId, &Message) -> Fate>;

/// A filter that loses what `lose` picks and delivers the rest.
pub fn lose_if(lose: impl Fn(NodeId, NodeId, &Message) -> bool + 'static) -> Filter {
    Box::new(move |from, to, msg| {
        if lose(from, to, msg) {
            Fate::Lose
        } else {
            Fate::Deliver
        }
    })
}

pub struct ReplicaNode {
    pub logic: Replica,
    pub exec: ReplicaExecutor<KvStore>,
    pub up: bool,
    pub incarnation: u64,
}

pub struct Net {
    pub config: ValidConfig,
    pub now: Time,
    pub replicas: Vec<ReplicaNode>,
    pub verifiers: Vec<Verifier>,
    pub verifier_up: Vec<bool>,
    pub clients: Vec<Client>,
    pub done: Vec<Vec<Completion>>,
    pool: VecDeque<(NodeId, NodeId, Message)>,
    held: Vec<(NodeId, NodeId, Message)>,
    filter: Filter,
}

pub fn config(u: u32, r: u32) -> ValidConfig {
    let mut config = ClusterConfig::new(ReplicationMode::Eve { u, r });
    config.batch_requests_max = 1;
    config.batch_timeout_ms = 1;
    config.pipeline_depth = 4;
    config.checkpoint_interval = 64;
    config.verify_timeout_ms = 100;
    config.client_retransmit_ms = 200;
    config.merkle_bucket_bits = 4;
    // The schedules of these tests have backups learn a commit alone and answer the client.
    config.reply_from_every_replica = true;
    config.validate().expect("a valid test configuration")
}

fn executor(config: &ValidConfig) -> ReplicaExecutor<KvStore> {
    let state = StateStore::new(StateConfig::from_cluster(config));
    ReplicaExecutor::new(Executor::new(
        KvStore,
        state,
        Box::new(GreedyMixer),
        Box::new(InlineRunner),
    ))
}

pub fn put(key: &str, value: &str) -> Bytes {
    KvOp::Put {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
    .encode()
}

pub fn get(key: &str) -> Bytes {
    KvOp::Get {
        key: Bytes::copy_from_slice(key.as_bytes()),
    }
    .encode()
}

/// The value a `get` completion read.
pub fn value(completion: &Completion) -> Option<String> {
    match KvReply::decode(&completion.body).expect("a KvReply") {
        KvReply::Value(v) => v.map(|b| String::from_utf8_lossy(&b).into_owned()),
        other => panic!("expected a value, got {other:?}"),
    }
}

pub const fn replica(i: u32) -> NodeId {
    NodeId::Replica(ReplicaId(i))
}

pub const fn verifier(i: u32) -> NodeId {
    NodeId::Verifier(VerifierId(i))
}

/// The clients' signing secrets in a run with `clients` clients (numbered from 1).
/// Verifier `id`'s signing secret (its votes count with `r >= 1` only signed).
pub fn verifier_auth(
    config: &ValidConfig,
    id: u32,
) -> std::sync::Arc<eve_agreement::auth::KeyedHashVerifierAuth> {
    std::sync::Arc::new(eve_agreement::auth::KeyedHashVerifierAuth::new(
        7,
        config.sizes().n_ver,
        VerifierId(id),
    ))
}

pub fn auth(clients: usize) -> eve_agreement::auth::KeyedHashAuth {
    eve_agreement::auth::KeyedHashAuth::new(7, (1..=clients as u64).map(ClientId))
}

pub fn lose_nothing() -> Filter {
    Box::new(|_, _, _| Fate::Deliver)
}

impl Net {
    pub fn new(config: ValidConfig, client_count: usize) -> Self {
        let sizes = config.sizes();
        let auth = std::sync::Arc::new(auth(client_count));
        let replicas = (0..sizes.n_exec as u32)
            .map(|i| ReplicaNode {
                logic: Replica::new(ReplicaId(i), config.clone())
                    .with_request_verifier(auth.clone()),
                exec: executor(&config),
                up: true,
                incarnation: 0,
            })
            .collect();
        let verifiers = (0..sizes.n_ver as u32)
            .map(|i| {
                Verifier::new(VerifierId(i), config.clone()).with_auth(verifier_auth(&config, i))
            })
            .collect();
        let clients = (0..client_count as u64)
            .map(|i| {
                let signer = auth
                    .signer(ClientId(i + 1))
                    .expect("every client has a secret");
                Client::new(ClientId(i + 1), &config)
                    .with_signer(std::sync::Arc::new(signer), &config)
            })
            .collect();
        let mut net = Self {
            now: Time(1_000),
            replicas,
            verifiers,
            verifier_up: vec![true; sizes.n_ver],
            done: vec![Vec::new(); client_count],
            clients,
            pool: VecDeque::new(),
            held: Vec::new(),
            filter: lose_nothing(),
            config,
        };
        net.drain();
        net
    }

    /// From now on the network loses what `filter` says.
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = filter;
    }

    /// Crashes replica `i`: it loses its memory and its state.
    pub fn crash_replica(&mut self, i: u32) {
        self.replicas[i as usize].up = false;
    }

    /// Restarts replica `i` with empty memory and state, through `logic`.
    pub fn restart_replica(&mut self, i: u32, logic: Replica) {
        let exec = executor(&self.config);
        self.restart_replica_on(i, logic, exec);
    }

    /// Restarts replica `i` like [`restart_replica`](Self::restart_replica), its executor
    /// fetching full transfers in chunks of at most `chunk_bytes`.
    pub fn restart_replica_with_chunks(&mut self, i: u32, logic: Replica, chunk_bytes: usize) {
        let exec = executor(&self.config).with_chunk_bytes(chunk_bytes);
        self.restart_replica_on(i, logic, exec);
    }

    fn restart_replica_on(&mut self, i: u32, logic: Replica, exec: ReplicaExecutor<KvStore>) {
        let verifier = std::sync::Arc::new(auth(self.clients.len()));
        let node = &mut self.replicas[i as usize];
        node.logic = logic.with_request_verifier(verifier);
        node.exec = exec;
        node.up = true;
        node.incarnation += 1;
        self.drain();
    }

    /// Restarts verifier `i` with empty memory, through `logic`.
    pub fn restart_verifier(&mut self, i: u32, logic: Verifier) {
        self.verifiers[i as usize] = logic;
        self.verifier_up[i as usize] = true;
        self.drain();
    }

    pub fn submit(&mut self, client: usize, op: Bytes) {
        self.clients[client].submit(self.now, op).expect("idle");
        self.drain();
    }

    /// Delivers everything in flight (and what that causes), losing what the filter says.
    pub fn run(&mut self) {
        for _ in 0..DELIVERIES_MAX {
            let Some((from, to, msg)) = self.pool.pop_front() else {
                return;
            };
            match (self.filter)(from, to, &msg) {
                Fate::Deliver => self.deliver(from, to, msg),
                Fate::Lose => {}
                Fate::Hold => self.held.push((from, to, msg)),
            }
        }
        panic!("more than {DELIVERIES_MAX} deliveries: the cluster does not settle");
    }

    /// Moves the clock forward `ms` milliseconds, one millisecond at a time, firing timers and
    /// delivering what they send.
    pub fn advance_ms(&mut self, ms: u64) {
        for _ in 0..ms {
            self.now = self.now.plus_ms(1);
            let now = self.now;
            for node in self.replicas.iter_mut().filter(|n| n.up) {
                if node.logic.next_timeout().is_some_and(|t| t <= now) {
                    node.logic.handle_timeout(now);
                }
            }
            for (v, up) in self.verifiers.iter_mut().zip(&self.verifier_up) {
                if *up && v.next_timeout().is_some_and(|t| t <= now) {
                    v.handle_timeout(now);
                }
            }
            for c in &mut self.clients {
                if c.next_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
            self.drain();
            self.run();
        }
    }

    /// Runs, advancing time, until `done` holds or `ms_max` milliseconds passed.
    pub fn run_until(&mut self, ms_max: u64, done: impl Fn(&Net) -> bool) -> bool {
        self.run();
        for _ in 0..ms_max {
            if done(self) {
                return true;
            }
            self.advance_ms(1);
        }
        done(self)
    }

    /// Puts the held messages back in flight, in the order they were held.
    pub fn release_held(&mut self) {
        self.pool.extend(self.held.drain(..));
    }

    /// Delivers the held messages, in the order they were held, past the filter (which
    /// applies again to what they cause).
    pub fn deliver_held(&mut self) {
        for (from, to, msg) in std::mem::take(&mut self.held) {
            self.deliver(from, to, msg);
        }
        self.run();
    }

    pub fn idle(&self, client: usize) -> bool {
        self.clients[client].outstanding().is_none()
    }

    pub fn last_done(&self, client: usize) -> &Completion {
        self.done[client].last().expect("a completed request")
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let now = self.now;
        match to {
            NodeId::Replica(r) => {
                let node = &mut self.replicas[r.0 as usize];
                if node.up {
                    node.logic.handle_message(now, from, msg);
                }
            }
            NodeId::Verifier(v) => {
                if self.verifier_up[v.0 as usize] {
                    self.verifiers[v.0 as usize].handle_message(now, from, msg);
                }
            }
            NodeId::Client(c) => {
                let index = (c.0 - 1) as usize;
                if let Some(done) = self.clients[index].handle_message(from, msg) {
                    self.done[index].push(done);
                }
            }
        }
        self.drain();
    }

    fn drain(&mut self) {
        let now = self.now;
        loop {
            let mut progress = false;
            for (i, node) in self.replicas.iter_mut().enumerate() {
                let from = replica(i as u32);
                while let Some(output) = node.logic.poll_output() {
                    progress = true;
                    if !node.up {
                        continue;
                    }
                    match output {
                        Output::Send { to, msg } => self.pool.push_back((from, to, msg)),
                        Output::Exec(command) => {
                            for event in node.exec.apply(command) {
                                node.logic.handle_exec_event(now, event);
                            }
                        }
                    }
                }
            }
            for (i, v) in self.verifiers.iter_mut().enumerate() {
                while let Some(output) = v.poll_output() {
                    progress = true;
                    if let Output::Send { to, msg } = output
                        && self.verifier_up[i]
                    {
                        self.pool.push_back((verifier(i as u32), to, msg));
                    }
                }
            }
            for c in &mut self.clients {
                while let Some(output) = c.poll_output() {
                    progress = true;
                    if let Output::Send { to, msg } = output {
                        self.pool.push_back((NodeId::Client(c.id()), to, msg));
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }
}

impl Net {
    /// Every node's state in one line each, for a failing test's message.
    pub fn describe(&self) -> String {
        let mut lines: Vec<String> = self.replicas.iter().map(|r| r.logic.describe()).collect();
        lines.extend(self.verifiers.iter().map(Verifier::describe));
        lines.join("\n")
    }
}
