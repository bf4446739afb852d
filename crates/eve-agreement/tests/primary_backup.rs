//! The primary-backup pair (`docs/PROTOCOL.md`, "primary-backup"), in two parts.
//!
//! First, whole runs: two [`PbReplica`]s with their executors and a few [`Client`]s, driven in
//! memory by [`Pair`]: one FIFO message queue, execution inline, and a simulated clock that
//! jumps to the next timeout when nothing is in flight. No threads and no real time, so every
//! run is the same. Then single replicas fed one event at a time, with the exact effects
//! asserted.

use bytes::Bytes;
use eve_agreement::{
    Batch, Client, Completion, ExecCommand, ExecEvent, Message, NodeId, Output, PbReplica,
    ReplicaExecutor, Roots, StateReply, Time,
};
use eve_apps::{KvOp, KvReply, KvStore};
use eve_exec::{Application, ExecContext, Executor, InlineRunner, Token};
use eve_mixer::{ConflictKeys, GreedyMixer};
use eve_state::{Delta, StateConfig, StateStore};
use eve_types::{
    BatchSeq, ClientId, ClusterConfig, Digest, NonDet, ReplicaId, ReplicationMode, Reply, Request,
    RequestNo, SplitMix64, ValidConfig, VerifierId, View, splitmix64,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

const R0: ReplicaId = ReplicaId(0);
const R1: ReplicaId = ReplicaId(1);

/// Most steps (deliveries or clock jumps) a run may take before it counts as stuck.
const STEPS_MAX: usize = 200_000;

const BACKUP_TIMEOUT_MS: u64 = 50;

fn config(batch_requests_max: usize) -> ValidConfig {
    let mut config = ClusterConfig::new(ReplicationMode::PrimaryBackup);
    config.batch_requests_max = batch_requests_max;
    config.batch_timeout_ms = 1;
    config.pipeline_depth = 2;
    config.checkpoint_interval = 4;
    config.backup_timeout_ms = BACKUP_TIMEOUT_MS;
    config.client_retransmit_ms = 100;
    config.merkle_bucket_bits = 6;
    config.object_value_bytes_max = 4096;
    config.validate().expect("a valid test configuration")
}

/// The key-value store, with a knob: the next `skew` increments it executes add one too many.
/// Set on one replica, it makes that replica's token differ, as a concurrency bug would.
#[derive(Default)]
struct TestKv {
    skew: AtomicU64,
}

impl Application for TestKv {
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
        KvStore.conflict_keys(op, keys);
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
        if let Ok(KvOp::Increment { key, delta }) = KvOp::decode(op)
            && self
                .skew
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            let wrong = KvOp::Increment {
                key,
                delta: delta + 1,
            };
            return KvStore.execute(ctx, &wrong.encode());
        }
        KvStore.execute(ctx, op)
    }
}

fn executor() -> ReplicaExecutor<TestKv> {
    let state = StateStore::new(StateConfig::new(6, 4096).expect("a valid state configuration"));
    ReplicaExecutor::new(Executor::new(
        TestKv::default(),
        state,
        Box::new(GreedyMixer),
        Box::new(InlineRunner),
    ))
}

fn increment(key: &str) -> KvOp {
    KvOp::Increment {
        key: Bytes::copy_from_slice(key.as_bytes()),
        delta: 1,
    }
}

fn counter(completion: &Completion) -> i64 {
    match KvReply::decode(&completion.body).expect("a KvReply") {
        KvReply::Counter(value) => value,
        other => panic!("expected a counter, got {other:?}"),
    }
}

struct Node {
    logic: PbReplica,
    exec: ReplicaExecutor<TestKv>,
    up: bool,
}

/// Two replicas, their executors and clients, on one in-memory network.
struct Pair {
    config: ValidConfig,
    now: Time,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    /// Operations each client has yet to submit.
    todo: Vec<VecDeque<KvOp>>,
    done: Vec<Vec<Completion>>,
    /// In flight: (from, to, message), delivered in order.
    queue: VecDeque<(NodeId, NodeId, Message)>,
    /// `Reply` messages each replica sent.
    replies_by: [u64; 2],
    /// Messages delivered, by kind.
    delivered: BTreeMap<&'static str, u64>,
}

impl Pair {
    fn new(clients: usize) -> Self {
        Self::with_config(clients, config(4))
    }

    fn with_config(clients: usize, config: ValidConfig) -> Self {
        let nodes = [R0, R1]
            .into_iter()
            .map(|id| Node {
                logic: PbReplica::new(id, config.clone()),
                exec: executor(),
                up: true,
            })
            .collect();
        Self {
            clients: (1..=clients as u64)
                .map(|c| Client::new(ClientId(c), &config))
                .collect(),
            todo: vec![VecDeque::new(); clients],
            done: vec![Vec::new(); clients],
            config,
            now: Time::ZERO,
            nodes,
            queue: VecDeque::new(),
            replies_by: [0; 2],
            delivered: BTreeMap::new(),
        }
    }

    fn replica(&self, id: ReplicaId) -> &PbReplica {
        &self.nodes[id.0 as usize].logic
    }

    /// Gives every client `ops(client index)` to submit, one after the other.
    fn give(&mut self, ops: impl Fn(usize) -> Vec<KvOp>) {
        for c in 0..self.clients.len() {
            self.todo[c].extend(ops(c));
            if self.clients[c].outstanding().is_none() {
                self.submit_next(c);
            }
        }
        self.drain();
    }

    fn submit_next(&mut self, c: usize) {
        if let Some(op) = self.todo[c].pop_front() {
            self.clients[c]
                .submit(self.now, op.encode())
                .expect("one request at a time");
        }
    }

    fn crash(&mut self, id: ReplicaId) {
        self.nodes[id.0 as usize].up = false;
    }

    /// A fresh replica and an empty executor in place of `id`.
    fn restart(&mut self, id: ReplicaId, logic: PbReplica) {
        self.nodes[id.0 as usize] = Node {
            logic,
            exec: executor(),
            up: true,
        };
    }

    /// Carries out every pending effect: sends go on the queue, commands to the executor,
    /// whose events go back to the replica.
    fn drain(&mut self) {
        let now = self.now;
        loop {
            let mut progress = false;
            for (r, node) in self.nodes.iter_mut().enumerate() {
                while let Some(output) = node.logic.poll_output() {
                    progress = true;
                    if !node.up {
                        continue;
                    }
                    match output {
                        Output::Send { to, msg } => {
                            if matches!(msg, Message::Reply { .. }) {
                                self.replies_by[r] += 1;
                            }
                            self.queue
                                .push_back((NodeId::Replica(ReplicaId(r as u32)), to, msg));
                        }
                        Output::Exec(command) => {
                            for event in node.exec.apply(command) {
                                node.logic.handle_exec_event(now, event);
                            }
                        }
                    }
                }
            }
            for client in &mut self.clients {
                while let Some(output) = client.poll_output() {
                    progress = true;
                    if let Output::Send { to, msg } = output {
                        self.queue.push_back((NodeId::Client(client.id()), to, msg));
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg: Message) {
        if let NodeId::Replica(r) = from
            && !self.nodes[r.0 as usize].up
        {
            return;
        }
        *self.delivered.entry(msg.kind()).or_default() += 1;
        match to {
            NodeId::Replica(r) => {
                let node = &mut self.nodes[r.0 as usize];
                if node.up {
                    node.logic.handle_message(self.now, from, msg);
                }
            }
            NodeId::Client(id) => {
                let c = (id.0 - 1) as usize;
                if let Some(completion) = self.clients[c].handle_message(from, msg) {
                    self.done[c].push(completion);
                    self.submit_next(c);
                }
            }
            NodeId::Verifier(_) => panic!("no verifiers in primary-backup"),
        }
        self.drain();
    }

    /// Delivers the next message, or moves the clock to the next timeout. False when there
    /// is nothing left to do at all.
    fn step(&mut self) -> bool {
        if let Some((from, to, msg)) = self.queue.pop_front() {
            self.deliver(from, to, msg);
            return true;
        }
        let next = self
            .nodes
            .iter()
            .filter(|n| n.up)
            .filter_map(|n| n.logic.next_timeout())
            .chain(self.clients.iter().filter_map(Client::next_timeout))
            .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        for node in self.nodes.iter_mut().filter(|n| n.up) {
            node.logic.handle_timeout(self.now);
        }
        for client in &mut self.clients {
            client.handle_timeout(self.now);
        }
        self.drain();
        true
    }

    fn run_until(&mut self, what: &str, done: impl Fn(&Pair) -> bool) {
        for _ in 0..STEPS_MAX {
            if done(self) {
                return;
            }
            assert!(self.step(), "nothing left to do before: {what}");
        }
        panic!("not reached in {STEPS_MAX} steps: {what}");
    }

    /// Runs until every client has no request left, then delivers what is in flight.
    fn complete(&mut self) {
        self.run_until("every request completed", |p| {
            p.todo.iter().all(VecDeque::is_empty)
                && p.clients.iter().all(|c| c.outstanding().is_none())
        });
        self.settle();
    }

    /// Like [`step`](Self::step), on a network that loses, duplicates and reorders.
    fn step_lossy(&mut self, net: &mut Lossy) -> bool {
        if self.queue.is_empty() {
            return self.step();
        }
        let overtaking = if net.reorder { 4 } else { 1 };
        let i = net.rng.below(self.queue.len().min(overtaking) as u64) as usize;
        let (from, to, msg) = self.queue.remove(i).expect("an index within the queue");
        if net.rng.below(1_000_000) < net.drop_ppm {
            return true;
        }
        if net.rng.below(1_000_000) < net.duplicate_ppm {
            self.queue.push_back((from, to, msg.clone()));
        }
        self.deliver(from, to, msg);
        true
    }

    /// Delivers every message in flight without moving the clock.
    fn settle(&mut self) {
        while let Some((from, to, msg)) = self.queue.pop_front() {
            self.deliver(from, to, msg);
        }
    }

    fn completed(&self) -> usize {
        self.done.iter().map(Vec::len).sum()
    }

    fn root_at(&self, id: ReplicaId, seq: BatchSeq) -> Digest {
        let state = self.nodes[id.0 as usize].exec.executor().state();
        state.root_of(seq).expect("the committed version is held")
    }

    fn value(&self, id: ReplicaId, key: &str) -> i64 {
        let state = self.nodes[id.0 as usize].exec.executor().state();
        let bytes = state.get(key.as_bytes()).expect("the key exists");
        i64::from_le_bytes(bytes[..].try_into().expect("an 8-byte counter"))
    }

    /// Both replicas committed the same batches to the same state.
    fn assert_in_step(&self) {
        let committed = self.replica(R0).committed();
        assert_eq!(
            self.replica(R1).committed(),
            committed,
            "both committed as far"
        );
        assert_eq!(
            self.root_at(R0, committed),
            self.root_at(R1, committed),
            "equal roots at the committed batch: the same state and reply cache"
        );
    }
}

/// Network faults the pair tolerates: a few messages lost, duplicated or overtaken (losing
/// several heartbeats in a row would break the synchronous-network assumption).
struct Lossy {
    rng: SplitMix64,
    drop_ppm: u64,
    duplicate_ppm: u64,
    reorder: bool,
}

/// Each client alternates increments of its own key and of a shared one.
fn own_and_shared(c: usize, rounds: usize) -> Vec<KvOp> {
    let own = format!("k{c}");
    (0..rounds)
        .flat_map(|_| [increment(&own), increment("shared")])
        .collect()
}

// ----- whole runs -----

#[test]
fn happy_path_commits_every_increment_and_only_the_primary_replies() {
    let mut pair = Pair::new(3);
    pair.give(|c| own_and_shared(c, 3));
    pair.complete();

    let mut shared: Vec<i64> = Vec::new();
    for (c, done) in pair.done.iter().enumerate() {
        assert_eq!(done.len(), 6, "client {c} completed all its requests");
        let own: Vec<i64> = done.iter().step_by(2).map(counter).collect();
        assert_eq!(own, [1, 2, 3], "client {c}'s key counts its own increments");
        shared.extend(done.iter().skip(1).step_by(2).map(counter));
    }
    shared.sort_unstable();
    assert_eq!(
        shared,
        (1..=9).collect::<Vec<_>>(),
        "each shared increment exactly once"
    );
    pair.assert_in_step();
    assert_eq!(
        pair.value(R1, "shared"),
        9,
        "the backup's state holds every increment"
    );
    assert_eq!(
        pair.replies_by,
        [18, 0],
        "one reply per request, from the primary only"
    );
    for id in [R0, R1] {
        let counters = pair.replica(id).counters();
        assert_eq!(
            counters.divergences + counters.rollbacks,
            0,
            "{id}: no mismatch"
        );
        assert_eq!(counters.alone_commits, 0, "{id}: the backup kept up");
        assert_eq!(
            counters.drops.total(),
            0,
            "{id}: nothing dropped: {:?}",
            counters.drops
        );
    }
    assert_eq!(
        pair.replica(R0).counters().batches_committed,
        pair.replica(R1).counters().batches_committed
    );
}

#[test]
fn token_mismatch_rolls_both_back_and_re_executes_sequentially() {
    let mut pair = Pair::new(2);
    // The backup gets its first increment wrong, in the first batch only.
    pair.nodes[1]
        .exec
        .executor()
        .app()
        .skew
        .store(1, Ordering::SeqCst);
    pair.give(|c| vec![increment(&format!("k{c}")), increment(&format!("k{c}"))]);
    pair.complete();

    let primary = pair.replica(R0).counters();
    assert_eq!(primary.divergences, 1, "the first batch's tokens differed");
    assert_eq!(primary.rollbacks, 1, "the primary rolled back once");
    assert_eq!(
        primary.sequential_executions, 1,
        "and re-executed that batch sequentially"
    );
    let backup = pair.replica(R1).counters();
    assert_eq!(
        backup.rollbacks, 1,
        "the backup rolled back on the re-issued batch"
    );
    assert_eq!(
        backup.sequential_executions, 1,
        "and re-executed it sequentially"
    );
    let stats = pair.nodes[0].exec.executor().stats();
    assert_eq!(stats.sequential_batches_executed, 1);
    for (c, done) in pair.done.iter().enumerate() {
        let values: Vec<i64> = done.iter().map(counter).collect();
        assert_eq!(
            values,
            [1, 2],
            "client {c}: the sequential results, never the skewed 2"
        );
    }
    // The idle primary cut the first request alone: client 0's first increment, re-executed.
    assert_eq!(
        pair.done[0][0].seq,
        BatchSeq(1),
        "the re-executed batch keeps its number"
    );
    assert_eq!(
        pair.replies_by,
        [4, 0],
        "the diverged execution released no reply"
    );
    pair.assert_in_step();
    assert_eq!(
        pair.value(R1, "k0"),
        2,
        "the backup's skewed write was rolled back"
    );
}

#[test]
fn silent_backup_lets_the_primary_go_on_alone() {
    let mut pair = Pair::new(2);
    pair.give(|c| own_and_shared(c, 1));
    pair.complete();
    let together = pair.replica(R0).counters().batches_committed;

    pair.crash(R1);
    pair.give(|c| own_and_shared(c, 2));
    pair.complete();

    assert_eq!(pair.completed(), 2 * 6, "every request completed");
    let primary = pair.replica(R0).counters();
    assert!(pair.replica(R0).is_alone(), "the backup never came back");
    assert_eq!(
        primary.alone_periods, 1,
        "went alone once, after backup_timeout_ms"
    );
    assert_eq!(
        primary.alone_commits,
        primary.batches_committed - together,
        "every batch after the crash committed alone, without waiting"
    );
    assert_eq!(
        pair.value(R0, "shared"),
        6,
        "three shared increments per client, once each"
    );
}

#[test]
fn silent_primary_makes_the_backup_promote_itself() {
    let mut pair = Pair::new(2);
    pair.give(|c| own_and_shared(c, 1));
    pair.complete();
    let executed = pair.replica(R1).counters().batches_executed;

    // The primary crashes just after the backup executed the next batch: nobody committed it.
    pair.give(|c| vec![increment(&format!("k{c}"))]);
    pair.run_until("the backup executed a batch", |p| {
        p.replica(R1).counters().batches_executed > executed
    });
    let held = pair.replica(R1).committed().next();
    pair.crash(R0);
    pair.complete();

    let new_primary = pair.replica(R1);
    assert_eq!(new_primary.view(), View(1), "one view change");
    assert!(new_primary.is_primary());
    assert_eq!(new_primary.counters().promotions, 1);
    let kept = new_primary.counters();
    assert_eq!(
        kept.batches_kept, 1,
        "the batch the backup executed is kept with its result"
    );
    // The idle primary cut client 0's increment alone: that is the batch the backup held.
    // Client 1's waited at the old primary and is ordered anew by the new one: its first
    // batch, sequential as every new view's first is; the held batch is not executed again.
    assert_eq!(kept.sequential_executions, 1);
    assert_eq!(
        pair.done[0][2].seq, held,
        "re-issued under the number the backup held it at"
    );
    for (c, done) in pair.done.iter().enumerate() {
        assert_eq!(
            counter(&done[2]),
            2,
            "client {c}'s second increment counted once"
        );
        assert!(done[2].seq >= held);
    }
    assert!(pair.replies_by[1] >= 2, "the new primary replied");
    assert_eq!(pair.value(R1, "shared"), 2);
}

#[test]
fn a_promoted_backup_keeps_the_result_the_old_primary_committed_and_replied() {
    // Finding 5: the primary commits batch 2 on the backup's matching (parallel) token and
    // replies; its `Commit` is lost and it crashes. Had the backup re-executed batch 2
    // sequentially on promotion, an application that is not deterministic under parallel
    // execution could give another result than the one the client holds: the backup's
    // application here adds one too many on its next increment, which a re-execution hits.
    // (The client's reply is the same either way here: it was released by the old primary.)
    let mut pair = Pair::new(1);
    pair.give(|_| vec![increment("shared")]);
    pair.complete();
    let replied = pair.replies_by[0];
    pair.give(|_| vec![increment("shared")]);
    pair.run_until("the primary committed batch 2 and replied", |p| {
        p.replies_by[0] > replied
    });
    pair.queue.retain(|(from, _, msg)| {
        !(*from == NodeId::Replica(R0) && matches!(msg, Message::Commit { .. }))
    });
    pair.settle();
    assert_eq!(counter(&pair.done[0][1]), 2, "the client holds 2");
    pair.nodes[1]
        .exec
        .executor()
        .app()
        .skew
        .store(1, Ordering::SeqCst);
    pair.crash(R0);
    pair.run_until("the backup promoted itself and committed batch 2", |p| {
        p.replica(R1).is_primary() && p.replica(R1).committed() >= BatchSeq(2)
    });
    assert_eq!(pair.replica(R1).counters().promotions, 1);
    assert_eq!(
        pair.value(R1, "shared"),
        2,
        "the new primary's state is the one the client was told of"
    );
}

/// Crashes the backup, runs the primary alone, restarts the backup empty, and checks that it
/// catches up by state transfer and then verifies every batch with the primary.
fn restarted_backup_catches_up(checkpoint_interval: u64) -> Pair {
    let mut raw = config(4).config().clone();
    raw.checkpoint_interval = checkpoint_interval;
    let config = raw.validate().expect("a valid test configuration");
    let mut pair = Pair::with_config(2, config.clone());
    pair.give(|c| own_and_shared(c, 2));
    pair.complete();
    pair.crash(R1);
    pair.give(|c| own_and_shared(c, 3));
    pair.complete();
    assert!(pair.replica(R0).is_alone());
    pair.restart(R1, PbReplica::new(R1, config));

    // The restarted backup hears of commits it cannot reach and fetches the state; the next
    // batch it executes gives the primary a matching token again.
    pair.give(|c| own_and_shared(c, 1));
    pair.complete();
    pair.run_until("the restarted backup caught up", |p| {
        p.replica(R1).committed() == p.replica(R0).committed()
    });
    pair.give(|c| own_and_shared(c, 1));
    pair.complete();
    let backup = pair.replica(R1).counters();
    assert_eq!(
        backup.state_transfers_completed, 1,
        "caught up by one state transfer"
    );
    assert_eq!(backup.state_transfer_failures, 0);
    assert!(
        !pair.replica(R0).is_alone(),
        "the backup's tokens match again"
    );

    // From now on every batch waits for, and agrees with, the backup.
    let alone = pair.replica(R0).counters().alone_commits;
    let committed = pair.replica(R0).counters().batches_committed;
    pair.give(|c| own_and_shared(c, 2));
    pair.complete();
    let primary = pair.replica(R0).counters();
    assert!(primary.batches_committed > committed);
    assert_eq!(
        primary.alone_commits, alone,
        "no batch committed without the backup"
    );
    assert_eq!(primary.divergences, 0);
    pair.assert_in_step();
    assert_eq!(pair.value(R1, "shared"), 2 * (2 + 3 + 1 + 1 + 2));
    pair
}

#[test]
fn restarted_backup_catches_up_by_delta_while_the_primary_holds_its_base() {
    // No checkpoint yet: the primary still holds version 0, the restarted backup's base.
    let pair = restarted_backup_catches_up(1000);
    assert_eq!(pair.delivered.get("state-reply"), Some(&1), "one delta");
    assert_eq!(pair.delivered.get("chunk"), None, "no chunked transfer");
}

#[test]
fn restarted_backup_catches_up_in_chunks_past_the_primary_checkpoint() {
    // Checkpoints every 4 batches: version 0 is gone, so the whole state comes in chunks.
    let pair = restarted_backup_catches_up(4);
    assert_eq!(pair.delivered.get("state-reply"), Some(&1), "one manifest");
    assert!(
        pair.delivered.get("chunk").is_some_and(|&n| n >= 1),
        "then chunks"
    );
}

#[test]
fn restarted_primary_rejoins_as_backup_of_the_new_view() {
    let mut pair = Pair::new(2);
    pair.give(|c| own_and_shared(c, 1));
    pair.complete();
    pair.crash(R0);
    pair.give(|c| own_and_shared(c, 2));
    pair.complete();
    assert!(pair.replica(R1).is_primary(), "the backup took over");
    let config = pair.config.clone();
    pair.restart(R0, PbReplica::restart(R0, config));

    pair.give(|c| own_and_shared(c, 1));
    pair.complete();
    pair.run_until("the restarted replica caught up", |p| {
        p.replica(R0).committed() == p.replica(R1).committed()
    });
    pair.give(|c| own_and_shared(c, 1));
    pair.complete();
    let rejoined = pair.replica(R0);
    assert_eq!(rejoined.view(), View(1));
    assert!(
        !rejoined.is_primary(),
        "a restarted replica never takes over on its own"
    );
    assert_eq!(
        rejoined.counters().state_transfers_completed,
        1,
        "caught up by transfer"
    );
    assert!(!pair.replica(R1).is_alone());
    pair.assert_in_step();
    assert_eq!(pair.value(R0, "shared"), 2 * 5);
}

#[test]
fn lossy_network_keeps_every_increment_exactly_once() {
    for seed in 0..64 {
        let mut rng = SplitMix64::new(seed);
        let mut net = Lossy {
            drop_ppm: [0, 10_000, 20_000][rng.below(3) as usize],
            duplicate_ppm: [0, 10_000, 50_000][rng.below(3) as usize],
            reorder: rng.below(2) == 1,
            rng,
        };
        let mut pair = Pair::new(3);
        if seed % 2 == 1 {
            // And a backup that gets some increments wrong.
            pair.nodes[1]
                .exec
                .executor()
                .app()
                .skew
                .store(2, Ordering::SeqCst);
        }
        pair.give(|c| own_and_shared(c, 4));
        for _ in 0..STEPS_MAX {
            if pair.clients.iter().all(|c| c.outstanding().is_none()) {
                break;
            }
            assert!(pair.step_lossy(&mut net), "seed {seed}: stuck");
        }
        assert_eq!(
            pair.completed(),
            3 * 8,
            "seed {seed}: every request completed"
        );
        let mut shared: Vec<i64> = Vec::new();
        for (c, done) in pair.done.iter().enumerate() {
            let own: Vec<i64> = done.iter().step_by(2).map(counter).collect();
            assert_eq!(
                own,
                [1, 2, 3, 4],
                "seed {seed}: client {c}'s increments, once each"
            );
            shared.extend(done.iter().skip(1).step_by(2).map(counter));
        }
        shared.sort_unstable();
        assert_eq!(
            shared,
            (1..=12).collect::<Vec<_>>(),
            "seed {seed}: shared, once each"
        );
    }
}

// ----- one replica, exact effects -----

const TO_R0: NodeId = NodeId::Replica(R0);
const TO_R1: NodeId = NodeId::Replica(R1);
const C1: NodeId = NodeId::Client(ClientId(1));

fn request(client: u64, no: u64) -> Request {
    Request::new(ClientId(client), RequestNo(no), increment("k").encode()).expect("a valid request")
}

/// Batch `seq` of `view` as its primary cuts it at `time_ms`.
fn batch(view: u64, seq: u64, requests: Vec<Request>, time_ms: u64) -> Batch {
    let seed = splitmix64(view ^ splitmix64(seq));
    let nondet = NonDet { time_ms, seed };
    let (view, seq, sequential) = (View(view), BatchSeq(seq), false);
    Batch {
        view,
        seq,
        requests,
        nondet,
        sequential,
    }
}

fn token(n: u8) -> Token {
    Token(Digest([n; 32]))
}

fn roots() -> Roots {
    Roots {
        prev_root: Digest::ZERO,
        new_root: Digest([7; 32]),
    }
}

/// Client 1's reply to its request 1, executed in batch 1.
fn reply1() -> Reply {
    let (client, request_no, seq) = (ClientId(1), RequestNo(1), BatchSeq(1));
    Reply {
        client,
        request_no,
        seq,
        body: Bytes::from_static(b"1"),
    }
}

fn executed(epoch: u64, seq: u64, token: Token, replies: Vec<Reply>) -> ExecEvent {
    let (seq, roots) = (BatchSeq(seq), roots());
    ExecEvent::Executed {
        epoch,
        seq,
        roots,
        token,
        replies,
    }
}

fn verify(seq: u64, token: Token) -> Message {
    Message::Verify {
        view: View(0),
        seq: BatchSeq(seq),
        token,
        prev: Token(Digest::ZERO),
    }
}

fn commit(seq: u64, token: Token) -> Message {
    Message::Commit {
        signature: None,
        view: View(0),
        seq: BatchSeq(seq),
        token,
    }
}

fn heartbeat(view: u64) -> Message {
    Message::Heartbeat {
        view: View(view),
        committed: None,
    }
}

fn outputs(replica: &mut PbReplica) -> Vec<Output> {
    std::iter::from_fn(|| replica.poll_output()).collect()
}

fn send(to: NodeId, msg: Message) -> Output {
    Output::Send { to, msg }
}

fn reply_to_c1() -> Output {
    send(
        C1,
        Message::Reply {
            view: View(0),
            reply: reply1(),
        },
    )
}

fn execute(epoch: u64, batch: Batch) -> Output {
    Output::Exec(ExecCommand::Execute { epoch, batch })
}

fn rollback(to: u64) -> Output {
    Output::Exec(ExecCommand::Rollback { to: BatchSeq(to) })
}

/// A primary (batches of one request) that ordered and executed request 1 of client 1 at 5 ms.
fn primary_with_one_executed(token: Token) -> (PbReplica, Batch) {
    let mut primary = PbReplica::new(R0, config(1));
    let now = Time::ZERO.plus_ms(5);
    primary.handle_message(now, C1, Message::Request(request(1, 1)));
    let batch = batch(0, 1, vec![request(1, 1)], 5);
    assert_eq!(
        outputs(&mut primary),
        vec![
            send(TO_R1, Message::ExecuteBatch(batch.clone())),
            execute(0, batch.clone())
        ],
        "a full batch goes to the backup, then to the execution side"
    );
    primary.handle_exec_event(now, executed(0, 1, token, vec![reply1()]));
    assert_eq!(
        outputs(&mut primary),
        [],
        "nothing commits before the backup's token"
    );
    (primary, batch)
}

#[test]
fn matching_tokens_commit_tell_the_backup_and_release_the_reply() {
    let (mut primary, _) = primary_with_one_executed(token(1));
    let now = Time::ZERO.plus_ms(6);
    primary.handle_message(now, TO_R1, verify(1, token(1)));
    assert_eq!(
        outputs(&mut primary),
        vec![send(TO_R1, commit(1, token(1))), reply_to_c1()],
        "equal tokens commit: the backup is told first, then the client gets its reply"
    );
    assert_eq!(primary.committed(), BatchSeq(1));

    primary.handle_message(now, C1, Message::Request(request(1, 1)));
    assert_eq!(
        outputs(&mut primary),
        vec![reply_to_c1()],
        "a retransmitted committed request is answered from the reply table, not re-ordered"
    );
    assert_eq!(primary.counters().batches_ordered, 1);
    assert_eq!(primary.counters().replies_sent, 2);
}

#[test]
fn mismatching_tokens_roll_back_and_reissue_the_batch_sequentially() {
    let (mut primary, batch) = primary_with_one_executed(token(1));
    primary.handle_message(Time::ZERO.plus_ms(6), TO_R1, verify(1, token(2)));
    let sequential = Batch {
        sequential: true,
        ..batch
    };
    assert_eq!(
        outputs(&mut primary),
        vec![
            rollback(0),
            send(TO_R1, Message::ExecuteBatch(sequential.clone())),
            execute(1, sequential),
        ],
        "roll back to the committed batch, re-issue the same batch to run sequentially"
    );
    let counters = primary.counters();
    let counted = (
        counters.divergences,
        counters.rollbacks,
        counters.sequential_executions,
    );
    assert_eq!(counted, (1, 1, 1));
    assert_eq!(
        primary.committed(),
        BatchSeq(0),
        "nothing commits on a mismatch"
    );
    assert_eq!(counters.replies_sent, 0);
}

#[test]
fn silent_backup_gets_heartbeats_then_the_primary_commits_alone() {
    let (mut primary, _) = primary_with_one_executed(token(1));
    let deadline = Time::ZERO.plus_ms(5 + BACKUP_TIMEOUT_MS);
    let mut effects = Vec::new();
    while let Some(next) = primary.next_timeout().filter(|&t| t <= deadline) {
        primary.handle_timeout(next);
        effects.extend(outputs(&mut primary));
    }
    let beat = send(TO_R1, heartbeat(0));
    assert_eq!(
        effects,
        vec![
            beat.clone(),
            beat.clone(),
            beat,
            send(TO_R1, commit(1, token(1))),
            reply_to_c1()
        ],
        "a heartbeat every third of backup_timeout_ms, then the primary commits alone"
    );
    assert!(primary.is_alone());
    assert_eq!(primary.counters().alone_commits, 1);
}

#[test]
fn backup_executes_verifies_and_commits_without_replying() {
    let mut backup = PbReplica::new(R1, config(1));
    let now = Time::ZERO.plus_ms(5);
    let batch = batch(0, 1, vec![request(1, 1)], 5);
    backup.handle_message(now, TO_R0, Message::ExecuteBatch(batch.clone()));
    assert_eq!(outputs(&mut backup), vec![execute(0, batch)]);
    backup.handle_exec_event(now, executed(0, 1, token(1), vec![reply1()]));
    assert_eq!(
        outputs(&mut backup),
        vec![send(TO_R0, verify(1, token(1)))],
        "the backup's token goes to the primary"
    );
    backup.handle_message(now, TO_R0, commit(1, token(1)));
    assert_eq!(
        outputs(&mut backup),
        [],
        "the backup never replies to clients"
    );
    assert_eq!(backup.committed(), BatchSeq(1));
}

/// A backup that received batch 1 (and, if `executed`, executed it), whose primary then fell
/// silent for the backup timeout: it has just promoted itself. Returns it and the batch.
fn backup_promoted_holding_batch_1(executed_it: bool) -> (PbReplica, Batch) {
    let mut backup = PbReplica::new(R1, config(1));
    let now = Time::ZERO.plus_ms(5);
    let held = batch(0, 1, vec![request(1, 1)], 5);
    backup.handle_message(now, TO_R0, Message::ExecuteBatch(held.clone()));
    if executed_it {
        backup.handle_exec_event(now, executed(0, 1, token(1), vec![reply1()]));
    }
    outputs(&mut backup);
    let silent = now.plus_ms(BACKUP_TIMEOUT_MS);
    assert_eq!(
        backup.next_timeout(),
        Some(silent),
        "the primary's deadline"
    );
    backup.handle_timeout(silent);
    (backup, held)
}

#[test]
fn silent_primary_makes_the_backup_promote_and_keep_what_it_executed() {
    let (mut backup, held) = backup_promoted_holding_batch_1(true);
    let kept = Batch {
        view: View(1),
        ..held
    };
    assert_eq!(
        outputs(&mut backup),
        vec![rollback(1), send(TO_R0, Message::ExecuteBatch(kept)),],
        "view 1: the batch it executed is kept with its result (the old primary may have \
         committed it on this very token and replied), not re-executed"
    );
    assert_eq!(backup.view(), View(1));
    assert!(backup.is_primary());
    assert_eq!(backup.counters().promotions, 1);
    assert_eq!(backup.counters().batches_kept, 1);
}

#[test]
fn silent_primary_makes_the_backup_promote_and_reissue_what_it_had_not_executed() {
    let (mut backup, held) = backup_promoted_holding_batch_1(false);
    let reissued = Batch {
        view: View(1),
        sequential: true,
        ..held
    };
    assert_eq!(
        outputs(&mut backup),
        vec![
            rollback(0),
            send(TO_R0, Message::ExecuteBatch(reissued.clone())),
            execute(1, reissued),
        ],
        "view 1: roll back to committed, re-issue the held batch (same seq, requests and \
         inputs) to run sequentially"
    );
    assert_eq!(backup.counters().batches_kept, 0);
}

#[test]
fn old_primary_adopts_a_higher_view_and_hands_its_requests_over() {
    let (mut old, _) = primary_with_one_executed(token(1));
    let now = Time::ZERO.plus_ms(100);
    old.handle_message(now, TO_R1, heartbeat(1));
    assert_eq!(
        outputs(&mut old),
        vec![rollback(0), send(TO_R1, Message::Request(request(1, 1)))],
        "replaced: drop the uncommitted batch and forward its request to the new primary"
    );
    assert_eq!(old.view(), View(1));
    assert!(!old.is_primary());
    assert_eq!(old.counters().views_adopted, 1);
    old.handle_message(now, TO_R1, heartbeat(0));
    assert_eq!(
        old.counters().drops.get("message-of-old-view"),
        1,
        "the old view is over"
    );
}

#[test]
fn backup_with_a_gap_fetches_the_committed_state_and_checks_its_roots() {
    let mut backup = PbReplica::new(R1, config(1));
    let now = Time::ZERO.plus_ms(5);
    let good = roots();
    backup.handle_message(now, TO_R0, commit(3, good.token(BatchSeq(3))));
    assert_eq!(
        outputs(&mut backup),
        [],
        "a missing batch may still arrive: wait a little"
    );
    let later = backup.next_timeout().expect("the gap timer");
    assert!(later < now.plus_ms(BACKUP_TIMEOUT_MS));
    backup.handle_timeout(later);
    let (target, base) = (BatchSeq(3), BatchSeq(0));
    assert_eq!(
        outputs(&mut backup),
        vec![
            rollback(0),
            send(
                TO_R0,
                Message::StateRequest {
                    target,
                    base: Some(base)
                }
            )
        ],
        "batches 1 and 2 never came: fetch the state of the committed batch 3"
    );
    let delta = Delta {
        from: base,
        to: target,
        entries: Vec::new(),
    };
    let forged = Roots {
        new_root: Digest([9; 32]),
        ..good
    };
    let reply = |roots| {
        Message::StateReply(Box::new(StateReply::Delta {
            roots,
            delta: delta.clone(),
        }))
    };
    backup.handle_message(later, TO_R0, reply(forged));
    assert_eq!(
        outputs(&mut backup),
        [],
        "roots that do not hash to the committed token"
    );
    assert_eq!(
        backup
            .counters()
            .drops
            .get("state-reply-not-matching-transfer"),
        1
    );
    backup.handle_message(later, TO_R0, reply(good));
    let import = ExecCommand::ImportDelta {
        epoch: 1,
        roots: good,
        delta: delta.clone(),
    };
    assert_eq!(
        outputs(&mut backup),
        vec![Output::Exec(import)],
        "roots that hash to the committed token are imported"
    );
}

#[test]
fn backup_behind_the_primary_never_promotes_itself() {
    let mut backup = PbReplica::new(R1, config(1));
    let now = Time::ZERO.plus_ms(5);
    backup.handle_message(now, TO_R0, commit(3, roots().token(BatchSeq(3))));
    let mut t = now;
    while t < now.plus_ms(10 * BACKUP_TIMEOUT_MS) {
        t = backup
            .next_timeout()
            .expect("the primary and the transfer are watched");
        backup.handle_timeout(t);
    }
    assert!(
        backup.is_transferring(),
        "still fetching batch 3 from the silent primary"
    );
    assert_eq!(
        backup.counters().promotions,
        0,
        "serving now would lose batches 1 to 3"
    );
    assert!(backup.counters().promotions_deferred >= 9);
    assert_eq!(backup.view(), View(0));
}

#[test]
fn restarted_replica_waits_as_backup_and_never_promotes_before_catching_up() {
    let mut restarted = PbReplica::restart(R0, config(1));
    assert_eq!(
        restarted.view(),
        View(1),
        "the view where the other replica is primary"
    );
    assert!(!restarted.is_primary());
    let now = Time::ZERO.plus_ms(5);
    restarted.handle_message(now, C1, Message::Request(request(1, 1)));
    assert_eq!(
        outputs(&mut restarted),
        vec![send(TO_R1, Message::Request(request(1, 1)))],
        "a backup forwards client requests to the primary"
    );
    let silent = restarted.next_timeout().expect("the primary is watched");
    restarted.handle_timeout(silent);
    assert_eq!(
        outputs(&mut restarted),
        [],
        "no promotion with an empty state"
    );
    assert_eq!(restarted.counters().promotions, 0);
    assert_eq!(restarted.view(), View(1));
}

#[test]
fn strangers_and_misdirected_messages_are_counted_not_obeyed() {
    let mut primary = PbReplica::new(R0, config(1));
    let now = Time::ZERO;
    primary.handle_message(now, NodeId::Verifier(VerifierId(0)), heartbeat(0));
    primary.handle_message(now, TO_R0, heartbeat(0));
    primary.handle_message(now, TO_R1, commit(1, token(1)));
    let forged = Request::new(ClientId(2), RequestNo(1), Bytes::new()).expect("a valid request");
    primary.handle_message(now, C1, Message::Request(forged));
    assert_eq!(outputs(&mut primary), []);
    let drops = &primary.counters().drops;
    assert_eq!(
        drops.get("unknown-sender"),
        2,
        "a verifier, and the replica itself"
    );
    assert_eq!(
        drops.get("message-for-other-role"),
        1,
        "a Commit sent to the primary"
    );
    assert_eq!(drops.get("request-for-another-client"), 1);
}
