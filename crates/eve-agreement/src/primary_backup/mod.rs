//! The primary-backup pair: two execution replicas, no verifiers, crash faults only, a
//! synchronous network assumed (the configuration the paper compares with Remus).
//!
//! The primary (`view mod 2`) orders batches, sends each to the backup and executes it; the
//! backup executes it too and returns its token (`Verify`). Equal tokens commit: the primary
//! tells the backup (`Commit`) and replies to clients. Unequal tokens: both roll back to the
//! last committed batch and re-execute that batch sequentially. A backup silent past
//! `backup_timeout_ms`: the primary goes on alone. A primary silent as long: the backup promotes
//! itself in the next view. A backup that fell behind or restarted catches up by state transfer
//! from the primary, checking the transferred roots against the token of the primary's
//! `Commit` (in the crash model the primary's word is the agreed token).
//!
//! Deterministic and free of I/O, like [`Replica`](crate::Replica): messages, execution results
//! and the time come in through `handle_*`, effects go out through [`PbReplica::poll_output`].
//! Each submodule holds one part of the rules: `ordering` (requests and batches), `commit`
//! (tokens, commits, divergence, going alone), `failover` (heartbeats, promotion, views) and
//! `transfer` (state transfer).

mod commit;
mod failover;
mod ordering;
mod transfer;

use crate::exec_side::{ExecCommand, ExecEvent};
use crate::message::{Batch, Message, Roots};
use crate::node::{Drops, NodeId, Output};
use crate::requests::ReplyTable;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{
    BatchSeq, ClientId, ReplicaId, ReplicationMode, Reply, RequestNo, ValidConfig, View,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a replica knows about one batch above its last committed one.
#[derive(Clone, Debug)]
struct Slot {
    batch: Batch,
    /// The outcome of executing it in the current epoch.
    result: Option<Executed>,
    /// Primary only: the backup's token for it, received in the current epoch.
    backup_token: Option<Token>,
    /// Primary only: its result was kept from before a promotion (the old primary may have
    /// committed it and replied), so it stands even if a backup's token disagrees.
    kept: bool,
}

impl Slot {
    fn new(batch: Batch) -> Self {
        Self {
            batch,
            result: None,
            backup_token: None,
            kept: false,
        }
    }
}

#[derive(Clone, Debug)]
struct Executed {
    token: Token,
    replies: Vec<Reply>,
}

/// A state transfer in progress (backup only).
#[derive(Clone, Debug)]
struct Transfer {
    target: BatchSeq,
    token: Token,
    deadline: Time,
}

/// Counters of what a primary-backup replica did, for reports and for checking that tests
/// exercise the protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PbCounters {
    /// Batches this replica ordered as primary (re-issued ones included).
    pub batches_ordered: u64,
    /// Batches executed (re-executions included).
    pub batches_executed: u64,
    /// Batches committed.
    pub batches_committed: u64,
    /// Of those, batches the primary committed alone, without the backup's token.
    pub alone_commits: u64,
    /// Times the primary stopped waiting for a silent backup.
    pub alone_periods: u64,
    /// Token mismatches seen (primary: with the backup's token; backup: with the committed one).
    pub divergences: u64,
    /// Of those, mismatches on a sequentially executed batch: the primary's result stands and
    /// the backup repairs itself by state transfer.
    pub sequential_divergences: u64,
    /// Rollbacks issued.
    pub rollbacks: u64,
    /// Batches executed sequentially.
    pub sequential_executions: u64,
    /// Times this replica promoted itself to primary.
    pub promotions: u64,
    /// Batches a promoted backup kept with its own results (it had executed them).
    pub batches_kept: u64,
    /// Times a silent primary was not replaced because this backup knew it was behind it.
    pub promotions_deferred: u64,
    /// Higher views learned from the other replica.
    pub views_adopted: u64,
    /// State transfers started.
    pub state_transfers: u64,
    /// State transfers completed.
    pub state_transfers_completed: u64,
    /// Transfer attempts that failed or timed out (the primary was asked again).
    pub state_transfer_failures: u64,
    /// Replies sent to clients.
    pub replies_sent: u64,
    /// Heartbeats sent to the backup.
    pub heartbeats_sent: u64,
    /// Messages dropped, by reason.
    pub drops: Drops,
}

/// One replica of a primary-backup pair.
pub struct PbReplica {
    id: ReplicaId,
    config: ValidConfig,
    view: View,
    /// Changes at every rollback; results of older epochs are stale.
    epoch: u64,
    committed: BatchSeq,
    /// The highest batch handed to the execution side in this epoch.
    executing: BatchSeq,
    /// The last checkpoint.
    stable: BatchSeq,
    slots: BTreeMap<BatchSeq, Slot>,
    /// Roots of the versions this replica holds from `stable` up.
    roots: BTreeMap<BatchSeq, Roots>,
    /// Tokens of the last committed batches (at most `SEQ_WINDOW`): a backup's token for one
    /// of them shows it is back in step; a `Commit` that contradicts one is counted.
    committed_tokens: BTreeMap<BatchSeq, Token>,
    last_reply: ReplyTable,
    // --- primary ---
    pending: crate::pending::PendingQueue,
    /// Requests pending or in an uncommitted batch.
    in_flight: BTreeSet<(ClientId, RequestNo)>,
    next_seq: BatchSeq,
    batch_deadline: Option<Time>,
    sequential_next: bool,
    /// Committing without the backup.
    alone: bool,
    /// When to go on alone if the backup's token for the next batch has not come.
    backup_deadline: Option<Time>,
    /// After a rollback for a mismatch at this batch, the backup's tokens for later batches
    /// predate its own rollback until its new token for this one arrives.
    resync: Option<BatchSeq>,
    heartbeat_at: Option<Time>,
    // --- backup ---
    /// Tokens of the primary's `Commit`s above `committed`, within the window.
    agreed: BTreeMap<BatchSeq, Token>,
    /// The highest `Commit` heard above `committed`, even beyond the window.
    commit_heard: Option<(BatchSeq, Token)>,
    /// When to promote itself if the primary stays silent.
    primary_deadline: Option<Time>,
    /// When to catch up by state transfer if a committed batch still cannot be reached by
    /// executing (a batch never arrived).
    gap_deadline: Option<Time>,
    /// Restarted without state and not caught up yet: must not become primary.
    recovering: bool,
    transfer: Option<Transfer>,
    outputs: VecDeque<Output>,
    counters: PbCounters,
}

impl PbReplica {
    /// A replica with empty state in view 0, where replica 0 is primary: how a pair starts.
    ///
    /// # Panics
    /// If `config` is not primary-backup or `id` is not 0 or 1.
    pub fn new(id: ReplicaId, config: ValidConfig) -> Self {
        assert_eq!(
            config.mode,
            ReplicationMode::PrimaryBackup,
            "a PbReplica needs a primary-backup configuration"
        );
        assert!(id.0 < 2, "replica {id} is not one of a primary-backup pair");
        Self {
            id,
            config,
            view: View(0),
            epoch: 0,
            committed: BatchSeq(0),
            executing: BatchSeq(0),
            stable: BatchSeq(0),
            slots: BTreeMap::new(),
            roots: BTreeMap::new(),
            committed_tokens: BTreeMap::new(),
            last_reply: ReplyTable::default(),
            pending: Default::default(),
            in_flight: BTreeSet::new(),
            next_seq: BatchSeq(1),
            batch_deadline: None,
            sequential_next: false,
            alone: false,
            backup_deadline: None,
            resync: None,
            heartbeat_at: None,
            agreed: BTreeMap::new(),
            commit_heard: None,
            primary_deadline: None,
            gap_deadline: None,
            recovering: false,
            transfer: None,
            outputs: VecDeque::new(),
            counters: PbCounters::default(),
        }
    }

    /// A replica restarted with empty state while the other one serves: it starts as the
    /// backup (of view 0 or 1, whichever makes the other replica primary; a higher view is
    /// adopted from the primary's first message), catches up by state transfer, and never
    /// promotes itself before it has caught up, since it holds nothing committed.
    pub fn restart(id: ReplicaId, config: ValidConfig) -> Self {
        let mut replica = Self::new(id, config);
        replica.view = View(u64::from(1 - id.0));
        replica.recovering = true;
        replica
    }

    /// This replica.
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// The primary of the current view.
    pub fn primary(&self) -> ReplicaId {
        primary_of(self.view)
    }

    /// Whether this replica is the primary.
    pub fn is_primary(&self) -> bool {
        self.primary() == self.id
    }

    /// Whether this replica, as primary, commits without waiting for the backup.
    pub fn is_alone(&self) -> bool {
        self.is_primary() && self.alone
    }

    /// The last committed batch.
    pub fn committed(&self) -> BatchSeq {
        self.committed
    }

    /// The last checkpoint.
    pub fn stable(&self) -> BatchSeq {
        self.stable
    }

    /// Whether a state transfer is in progress.
    pub fn is_transferring(&self) -> bool {
        self.transfer.is_some()
    }

    /// Requests waiting to be ordered (primary).
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Operation bytes of the requests waiting to be ordered (primary).
    pub fn pending_bytes(&self) -> usize {
        self.pending.bytes()
    }

    /// What the replica has done so far.
    pub fn counters(&self) -> &PbCounters {
        &self.counters
    }

    /// The next effect to carry out, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn next_timeout(&self) -> Option<Time> {
        [
            self.batch_deadline,
            self.backup_deadline,
            self.heartbeat_at,
            self.primary_deadline,
            self.gap_deadline,
            self.transfer.as_ref().map(|t| t.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles a message from `from`: requests from clients, everything else from the other
    /// replica of the pair.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        match (from, msg) {
            (NodeId::Client(_), Message::Request(request)) => self.on_request(now, from, request),
            (NodeId::Replica(peer), msg) if peer == self.peer() => self.on_peer_message(now, msg),
            (NodeId::Client(_), _) => self.counters.drops.count("unexpected-message"),
            _ => self.counters.drops.count("unknown-sender"),
        }
    }

    /// Handles what the execution side reported.
    pub fn handle_exec_event(&mut self, now: Time, event: ExecEvent) {
        match event {
            ExecEvent::Executed {
                epoch,
                seq,
                roots,
                token,
                replies,
            } => self.on_executed(now, epoch, seq, roots, token, replies),
            ExecEvent::ExecuteFailed { epoch, seq, .. } => self.on_execute_failed(now, epoch, seq),
            ExecEvent::StateApplied {
                epoch,
                target,
                roots,
                result,
            } => self.on_state_applied(now, epoch, target, roots, result.is_ok()),
            ExecEvent::Send { to, msg } if to == NodeId::Replica(self.peer()) => {
                self.send_to_peer(now, msg)
            }
            ExecEvent::Send { to, msg } => self.outputs.push_back(Output::Send { to, msg }),
        }
    }

    /// Handles the passing of time: batch timer, the silent backup or primary, heartbeats,
    /// gaps and transfer retries.
    pub fn handle_timeout(&mut self, now: Time) {
        let due = |deadline: Option<Time>| deadline.is_some_and(|d| d <= now);
        if due(self.batch_deadline) {
            self.cut_batches(now, true);
        }
        if due(self.backup_deadline) {
            self.go_alone(now);
        }
        if due(self.heartbeat_at) {
            self.heartbeat(now);
        }
        if due(self.primary_deadline) {
            self.on_primary_silent(now);
        }
        if due(self.gap_deadline) {
            self.gap_deadline = None;
            self.check_gap(now);
        }
        if due(self.transfer.as_ref().map(|t| t.deadline)) {
            self.counters.state_transfer_failures += 1;
            self.retry_transfer(now);
        }
    }

    // ----- dispatch -----

    fn on_peer_message(&mut self, now: Time, msg: Message) {
        if let Some(view) = view_of(&msg) {
            if view > self.view {
                if primary_of(view) != self.peer() || matches!(msg, Message::Verify { .. }) {
                    // Only the primary of a view announces it; a backup's `Verify` never does.
                    self.counters
                        .drops
                        .count("higher-view-not-from-its-primary");
                    return;
                }
                self.adopt_view(now, view);
            } else if view < self.view {
                self.counters.drops.count("message-of-old-view");
                return;
            }
        }
        let from_primary = matches!(
            msg,
            Message::ExecuteBatch(_)
                | Message::Commit { .. }
                | Message::Heartbeat { .. }
                | Message::StateReply(_)
                | Message::Chunk(_)
        );
        if from_primary && !self.is_primary() {
            self.primary_deadline = Some(now.plus_ms(self.config.backup_timeout_ms));
        }
        match msg {
            Message::Request(request) => {
                self.on_request(now, NodeId::Replica(self.peer()), request)
            }
            Message::ExecuteBatch(batch) if !self.is_primary() => self.on_execute_batch(now, batch),
            Message::Verify { seq, token, .. } if self.is_primary() => {
                self.on_verify(now, seq, token)
            }
            Message::Commit { seq, token, .. } if !self.is_primary() => {
                self.on_commit(now, seq, token)
            }
            Message::Heartbeat { committed, .. } if !self.is_primary() => {
                if let Some((seq, token)) = committed {
                    self.on_commit(now, seq, token);
                }
            }
            Message::StateRequest { target, base } => self.on_state_request(now, target, base),
            Message::StateReply(reply) => self.on_state_reply(now, *reply),
            Message::ChunkRequest(request) => self.on_chunk_request(now, request),
            Message::Chunk(chunk) => self.on_chunk(chunk),
            Message::ExecuteBatch(_)
            | Message::Verify { .. }
            | Message::Commit { .. }
            | Message::Heartbeat { .. } => self.counters.drops.count("message-for-other-role"),
            _ => self.counters.drops.count("unexpected-message"),
        }
    }

    // ----- shared helpers -----

    /// The other replica of the pair.
    fn peer(&self) -> ReplicaId {
        ReplicaId(1 - self.id.0)
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    /// Sends to the other replica; as primary, this also postpones the next heartbeat.
    fn send_to_peer(&mut self, now: Time, msg: Message) {
        if self.is_primary() {
            self.heartbeat_at = Some(now.plus_us(self.heartbeat_interval_us()));
        }
        self.send(NodeId::Replica(self.peer()), msg);
    }

    fn exec(&mut self, command: ExecCommand) {
        self.outputs.push_back(Output::Exec(command));
    }

    /// Rolls back to `to`, dropping every execution result (and backup token) above it.
    fn rollback_to(&mut self, to: BatchSeq) {
        self.epoch += 1;
        self.counters.rollbacks += 1;
        self.exec(ExecCommand::Rollback { to });
        self.executing = to;
        for slot in self.slots.range_mut(to.next()..).map(|(_, slot)| slot) {
            slot.result = None;
            slot.backup_token = None;
        }
        self.roots.retain(|&seq, _| seq <= to);
    }

    /// A third of the backup timeout, so that one lost heartbeat does not cost a promotion.
    fn heartbeat_interval_us(&self) -> u64 {
        (self.config.backup_timeout_ms * 1000 / 3).max(1)
    }
}

/// The primary of `view`: replica `view mod 2`.
fn primary_of(view: View) -> ReplicaId {
    ReplicaId((view.0 % 2) as u32)
}

/// The view a message of the pair names, if any.
fn view_of(msg: &Message) -> Option<View> {
    match msg {
        Message::ExecuteBatch(batch) => Some(batch.view),
        Message::Verify { view, .. }
        | Message::Commit { view, .. }
        | Message::Heartbeat { view, .. } => Some(*view),
        _ => None,
    }
}
