//! The execution replica: orders (as primary), executes, sends tokens, commits on the
//! verifiers' word, repairs itself by state transfer, and follows view changes.
//!
//! Deterministic and free of I/O: messages, execution results and the time come in through
//! `handle_*`, effects go out through [`Replica::poll_output`]. See `docs/PROTOCOL.md` for the
//! rules; each submodule holds one part of them.

mod commit;
mod ordering;
mod recovery;
mod transfer;
mod view;

use crate::exec_side::{ExecCommand, ExecEvent};
use crate::message::{Batch, Message, Roots};
use crate::node::{Drops, NodeId, Output};
use crate::requests::ReplyTable;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{
    BatchSeq, ClientId, QuorumSizes, ReplicaId, Reply, Request, RequestNo, ValidConfig, VerifierId,
    View,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a replica knows about one batch above its last committed one.
#[derive(Clone, Debug)]
struct Slot {
    batch: Batch,
    /// The epoch in which it was handed to the execution side, while that still stands (a
    /// rollback below the batch clears it; one above it lets the execution finish).
    exec_epoch: Option<u64>,
    /// The outcome of that execution.
    result: Option<Executed>,
}

#[derive(Clone, Debug)]
struct Executed {
    token: Token,
    /// The token of the version it executed on.
    prev: Token,
    replies: Vec<Reply>,
}

/// A state transfer in progress.
#[derive(Clone, Debug)]
struct Transfer {
    target: BatchSeq,
    token: Token,
    /// Which peer is being asked (an index into the other replicas).
    attempt: usize,
    /// Ask for the whole state rather than a delta (a delta import failed).
    full: bool,
    /// When the transfer started.
    started: Time,
    deadline: Time,
    /// Every peer of the last round failed; the timer starts the next round.
    waiting: bool,
}

/// An idle replica asks the verifiers where the cluster stands every this many verification
/// timeouts.
const IDLE_POLL_TIMEOUTS: u64 = 5;

/// After this many rounds in which every peer said it does not hold the transfer's target, a
/// replica reports itself stalled (it keeps asking).
const STALLED_ROUNDS: usize = 3;

/// In which views a replica may act as primary.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LeadFloor {
    /// Any: a replica of a new cluster, which led nothing before.
    Any,
    /// None yet: a replica restarted without memory waits for a verifier quorum to tell it
    /// the highest view it may have led (`nonce` tells fresh answers from old ones).
    Recovering {
        nonce: u64,
        answers: BTreeMap<VerifierId, View>,
    },
    /// Only views above this one: it may have ordered batches in this view or below before it
    /// lost its memory, and ordering again could give one sequence number two batches.
    Above(View),
}

/// Counters of what a replica did, for reports and for checking that tests exercise the
/// protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaCounters {
    /// Batches this replica ordered as primary.
    pub batches_ordered: u64,
    /// Batches executed (including re-executions).
    pub batches_executed: u64,
    /// Batches committed with this replica's own token.
    pub batches_committed: u64,
    /// Batches executed sequentially.
    pub sequential_executions: u64,
    /// Times this replica's token differed from the agreed one.
    pub divergences: u64,
    /// Rollbacks issued.
    pub rollbacks: u64,
    /// State transfers started.
    pub state_transfers: u64,
    /// State transfers completed.
    pub state_transfers_completed: u64,
    /// State transfers that completed more than a verification timeout after they started.
    pub transfers_past_timeout: u64,
    /// Imports that landed on an agreed batch after the transfer's target had moved on: kept,
    /// and the transfer went on from there.
    pub state_transfers_resumed: u64,
    /// Transfers refused (bad data, or a peer that did not hold the state): another peer was
    /// asked.
    pub state_transfer_failures: u64,
    /// View changes followed.
    pub view_changes: u64,
    /// Replies sent to clients.
    pub replies_sent: u64,
    /// Suspicions of the primary sent to verifiers.
    pub suspicions: u64,
    /// Recoveries from a restart completed (a verifier quorum told the replica which views it
    /// may have led).
    pub recoveries: u64,
    /// Views this replica was primary of but could not lead, having restarted in them.
    pub views_declined: u64,
    /// Messages dropped, by reason.
    pub drops: Drops,
}

/// An execution replica's protocol logic.
pub struct Replica {
    id: ReplicaId,
    config: ValidConfig,
    /// Checks clients' signatures; with `r >= 1` a request is accepted only with a valid one
    /// (see [`Replica::with_request_verifier`]), with `r = 0` nothing is checked.
    request_verifier: Option<std::sync::Arc<dyn crate::auth::RequestVerifier>>,
    sizes: QuorumSizes,
    view: View,
    /// In which views this replica may order batches.
    lead_floor: LeadFloor,
    /// Whether this replica knows after which batch the current view starts (it learns a view
    /// without it when it hears the verifiers' ordinary votes before their announcement).
    view_started: bool,
    /// Changes at every rollback; results of older epochs are stale.
    epoch: u64,
    committed: BatchSeq,
    /// The highest batch handed to the execution side in this epoch.
    executing: BatchSeq,
    /// The last checkpoint.
    stable: BatchSeq,
    slots: BTreeMap<BatchSeq, Slot>,
    /// Roots of the versions this replica holds above `stable` (and `stable` itself).
    roots: BTreeMap<BatchSeq, Roots>,
    /// Votes of verifiers: `seq -> token -> verifiers`, within the window.
    votes: BTreeMap<BatchSeq, BTreeMap<Token, BTreeSet<VerifierId>>>,
    /// The highest batch beyond the window that verifiers agreed on, with its votes.
    far_votes: Option<(BatchSeq, BTreeMap<Token, BTreeSet<VerifierId>>)>,
    /// Tokens with `r + 1` matching votes, above `committed`.
    agreed: BTreeMap<BatchSeq, Token>,
    /// Votes for new views: `(view, start, token) -> verifiers`.
    new_view_votes: BTreeMap<(View, BatchSeq, Token), BTreeSet<VerifierId>>,
    // --- ordering (primary) ---
    pending: crate::pending::PendingQueue,
    /// Requests pending or in an uncommitted batch.
    in_flight: BTreeSet<(ClientId, RequestNo)>,
    next_seq: BatchSeq,
    batch_deadline: Option<Time>,
    sequential_next: bool,
    // --- clients ---
    last_reply: ReplyTable,
    /// Forwarded requests and when the primary should have ordered them by.
    forwarded: BTreeMap<(ClientId, RequestNo), Time>,
    /// Batches of a view this replica has not entered, from that view's primary, kept to be
    /// taken up when it enters the view (at most [`FUTURE_VIEW_BATCHES_MAX`], of the highest
    /// such view).
    ///
    /// [`FUTURE_VIEW_BATCHES_MAX`]: crate::limits::FUTURE_VIEW_BATCHES_MAX
    future_batches: Vec<(ReplicaId, Batch)>,
    // --- repair ---
    transfer: Option<Transfer>,
    /// Whether the state holds the committed version's objects: not after a restart, whose
    /// empty state need not be the cluster's version 0 (a service may start with data).
    state_is_committed: bool,
    /// Peers in a row that answered they do not hold the state this replica asked for, across
    /// transfers (a view change starts a new one); reset by any state that arrives.
    unheld_streak: usize,
    /// When to catch up by state transfer if nothing commits.
    progress_deadline: Option<Time>,
    /// The batch missing below batches this replica holds, and since when it has been seen
    /// missing (a primary that leaves a gap is suspected; see `check_gap`).
    gap_since: Option<(BatchSeq, Time)>,
    /// When to ask the verifiers where the cluster stands even though nothing seems amiss: a
    /// replica that missed every message of the last batches has no other way to learn it is
    /// behind while the cluster is idle.
    idle_poll_at: Time,
    outputs: VecDeque<Output>,
    counters: ReplicaCounters,
}

impl Replica {
    /// A replica of a new cluster: empty state, view 0.
    pub fn new(id: ReplicaId, config: ValidConfig) -> Self {
        let sizes = config.sizes();
        let idle_poll_at = Time::ZERO.plus_ms(IDLE_POLL_TIMEOUTS * config.verify_timeout_ms);
        assert!(
            (id.0 as usize) < sizes.n_exec,
            "replica {id} is not in a cluster of {} execution replicas",
            sizes.n_exec
        );
        Self {
            id,
            config,
            request_verifier: None,
            sizes,
            view: View(0),
            lead_floor: LeadFloor::Any,
            view_started: true,
            epoch: 0,
            committed: BatchSeq(0),
            executing: BatchSeq(0),
            stable: BatchSeq(0),
            slots: BTreeMap::new(),
            roots: BTreeMap::new(),
            votes: BTreeMap::new(),
            far_votes: None,
            agreed: BTreeMap::new(),
            new_view_votes: BTreeMap::new(),
            pending: Default::default(),
            in_flight: BTreeSet::new(),
            next_seq: BatchSeq(1),
            batch_deadline: None,
            sequential_next: false,
            last_reply: ReplyTable::default(),
            forwarded: BTreeMap::new(),
            future_batches: Vec::new(),
            transfer: None,
            state_is_committed: true,
            unheld_streak: 0,
            // At once: a replica that starts (or restarts) asks where the cluster stands.
            progress_deadline: Some(Time::ZERO),
            gap_since: None,
            idle_poll_at,
            outputs: VecDeque::new(),
            counters: ReplicaCounters::default(),
        }
    }

    /// A replica that restarted without memory or state. It catches up by state transfer, and
    /// orders nothing until a verifier quorum told it the highest view it may have led; it
    /// never leads that view or an older one (`docs/PROTOCOL.md`, "Restarts"). `nonce` must
    /// differ from every earlier incarnation's (the driver draws it).
    pub fn restart(id: ReplicaId, config: ValidConfig, nonce: u64) -> Self {
        let mut replica = Self::new(id, config);
        replica.lead_floor = LeadFloor::Recovering {
            nonce,
            answers: BTreeMap::new(),
        };
        replica.state_is_committed = false;
        replica
    }

    /// A durable replica that restarted and recovered from its journal (see
    /// [`crate::journal`]): its state is the checkpoint it loaded with the batches replayed on
    /// it, and it resumes holding the checkpoint as committed and the replayed batches as
    /// executed, with their tokens; the verifiers tell it what of them committed, and it
    /// fetches the rest by state transfer as usual. Like any restarted replica it leads no
    /// view until a verifier quorum told it which it may have led. Without a checkpoint
    /// (`recovered.checkpoint` is `None`) it is a replica restarted without state
    /// ([`restart`](Self::restart)).
    pub fn resume(
        id: ReplicaId,
        config: ValidConfig,
        nonce: u64,
        recovered: &crate::journal::Recovered,
    ) -> Self {
        let mut replica = Self::restart(id, config, nonce);
        let Some((stable, stable_roots)) = recovered.checkpoint else {
            return replica;
        };
        replica.state_is_committed = true;
        replica.committed = stable;
        replica.stable = stable;
        if let Some(roots) = stable_roots {
            replica.roots.insert(stable, roots);
        }
        let mut executing = stable;
        for replayed in &recovered.replayed {
            let seq = replayed.batch.seq;
            assert_eq!(seq, executing.next(), "replayed batches follow each other");
            let prev = crate::message::base_token(&replica.roots, seq);
            replica.roots.insert(seq, replayed.roots);
            for request in &replayed.batch.requests {
                replica
                    .in_flight
                    .insert((request.client, request.request_no));
            }
            replica.slots.insert(
                seq,
                Slot {
                    batch: replayed.batch.clone(),
                    exec_epoch: Some(replica.epoch),
                    result: Some(Executed {
                        token: replayed.roots.token(seq),
                        prev,
                        replies: replayed.replies.clone(),
                    }),
                },
            );
            executing = seq;
        }
        replica.executing = executing;
        replica.next_seq = executing.next();
        // It was in the view of the last batch it executed, at least: a verifier that lags
        // behind must not move it back to an older view, which would discard that batch.
        if let Some(last) = recovered.replayed.last() {
            replica.view = last.batch.view;
            replica.view_started = false;
        }
        replica
    }

    /// Checks clients' signatures with `verifier`. With `r >= 1` a replica without one
    /// refuses every request (counted as `unknown-client-key`): relayed requests are taken on
    /// no one's word.
    pub fn with_request_verifier(
        mut self,
        verifier: std::sync::Arc<dyn crate::auth::RequestVerifier>,
    ) -> Self {
        self.request_verifier = Some(verifier);
        self
    }

    /// Why `requests` may not be ordered or executed, if one of them may not: with `r >= 1`,
    /// the first verdict that is not [`Verdict::Valid`](crate::auth::Verdict::Valid).
    pub(super) fn signature_refusal(&self, requests: &[&Request]) -> Option<crate::auth::Verdict> {
        if self.sizes.client_reply_quorum == 1 || requests.is_empty() {
            return None;
        }
        let Some(verifier) = &self.request_verifier else {
            return Some(crate::auth::Verdict::UnknownClient);
        };
        verifier
            .verify(&self.config.cluster_id, requests)
            .into_iter()
            .find(|v| *v != crate::auth::Verdict::Valid)
    }

    /// Whether the replica's state is known to be its committed version's (not after a
    /// restart until it caught up).
    pub fn holds_committed_state(&self) -> bool {
        self.state_is_committed
    }

    /// Why this replica cannot make progress on its own, if it knows: every peer answered,
    /// round after round, that it does not hold the agreed state this replica needs (in the
    /// in-memory mode, when every replica that held it lost its memory).
    pub fn stall_reason(&self) -> Option<String> {
        let transfer = self.transfer.as_ref()?;
        let peers = self.sizes.n_exec - 1;
        (self.unheld_streak >= STALLED_ROUNDS * peers).then(|| {
            format!(
                "the agreed state of {} is held by no peer ({} answers in a row said so)",
                transfer.target, self.unheld_streak
            )
        })
    }

    /// Whether this replica still waits to learn which views it may lead after a restart.
    pub fn is_recovering(&self) -> bool {
        matches!(self.lead_floor, LeadFloor::Recovering { .. })
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
        self.primary_of(self.view)
    }

    /// The primary of `view`.
    fn primary_of(&self, view: View) -> ReplicaId {
        ReplicaId((view.0 % self.sizes.n_exec as u64) as u32)
    }

    /// Whether this replica is the primary.
    pub fn is_primary(&self) -> bool {
        self.primary() == self.id
    }

    /// The last committed batch.
    pub fn committed(&self) -> BatchSeq {
        self.committed
    }

    /// The roots (before and after) of the last committed batch, as this replica knows them
    /// (its own execution's, or the agreed ones a transfer brought).
    pub fn committed_roots(&self) -> Option<Roots> {
        self.roots.get(&self.committed).copied()
    }

    /// The highest batch handed to the execution side.
    pub fn executing(&self) -> BatchSeq {
        self.executing
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

    /// A one-line summary of the replica's state, for diagnosing a stuck run.
    pub fn describe(&self) -> String {
        format!(
            "{} view {} primary {} committed {} executing {} stable {} slots {:?} agreed {:?} pending {} in-flight {} next-seq {} transfer {:?}",
            self.id,
            self.view,
            self.primary(),
            self.committed,
            self.executing,
            self.stable,
            self.slots
                .iter()
                .map(|(s, slot)| (s.0, slot.result.is_some()))
                .collect::<Vec<_>>(),
            self.agreed.keys().map(|s| s.0).collect::<Vec<_>>(),
            self.pending.len(),
            self.in_flight.len(),
            self.next_seq,
            self.transfer.as_ref().map(|t| (t.target, t.attempt)),
        )
    }

    /// What the replica has done so far.
    pub fn counters(&self) -> &ReplicaCounters {
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
            self.transfer.as_ref().map(|t| t.deadline),
            self.progress_deadline,
            self.forwarded.values().min().copied(),
            Some(self.idle_poll_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles a message from `from`.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        if !self.is_member(from) {
            self.counters.drops.count("unknown-sender");
            return;
        }
        match (from, msg) {
            (NodeId::Client(_) | NodeId::Replica(_), Message::Request(request)) => {
                self.on_request(now, from, request)
            }
            (NodeId::Replica(sender), Message::ExecuteBatch(batch)) => {
                self.on_execute_batch(now, sender, batch)
            }
            (
                NodeId::Verifier(verifier),
                Message::Verified {
                    view,
                    seq,
                    token,
                    sequential,
                },
            ) => self.on_verified(now, verifier, view, seq, token, sequential),
            (NodeId::Replica(peer), Message::StateRequest { target, base }) => {
                self.on_state_request(peer, target, base)
            }
            (NodeId::Replica(peer), Message::StateReply(reply)) => {
                self.on_state_reply(now, peer, *reply)
            }
            (NodeId::Replica(peer), Message::ChunkRequest(request)) => {
                self.on_chunk_request(peer, request)
            }
            (NodeId::Replica(peer), Message::Chunk(chunk)) => self.on_chunk(now, peer, chunk),
            (NodeId::Verifier(verifier), Message::RecoverReply { nonce, state }) => {
                self.on_recover_reply(now, verifier, nonce, state.view)
            }
            _ => self.counters.drops.count("unexpected-message"),
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
            ExecEvent::Send { to, msg } => self.send(to, msg),
        }
    }

    /// Handles the passing of time: batch timer, transfer retries, catch-up, suspicion.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.batch_deadline.is_some_and(|d| d <= now) {
            self.cut_batches(now, true);
        }
        if self.transfer.as_ref().is_some_and(|t| t.deadline <= now) {
            self.ask_next_peer(now);
        }
        if self.progress_deadline.is_some_and(|d| d <= now) {
            self.progress_deadline = None;
            self.on_progress_timeout(now);
        }
        self.check_forwarded(now);
        if self.idle_poll_at <= now {
            self.idle_poll_at = now.plus_ms(IDLE_POLL_TIMEOUTS * self.verify_timeout_ms());
            self.send_verifiers(Message::QueryCommitted);
            // A caught-up replica has no other timer left to repeat a lost `Recover`.
            self.ask_recovery();
        }
    }

    // ----- shared helpers -----

    fn is_member(&self, from: NodeId) -> bool {
        match from {
            NodeId::Replica(id) => (id.0 as usize) < self.sizes.n_exec,
            NodeId::Verifier(id) => (id.0 as usize) < self.sizes.n_ver,
            NodeId::Client(_) => true,
        }
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    fn exec(&mut self, command: ExecCommand) {
        self.outputs.push_back(Output::Exec(command));
    }

    fn send_other_replicas(&mut self, msg: Message) {
        for r in 0..self.sizes.n_exec as u32 {
            if ReplicaId(r) != self.id {
                self.send(NodeId::Replica(ReplicaId(r)), msg.clone());
            }
        }
    }

    fn send_verifiers(&mut self, msg: Message) {
        for v in 0..self.sizes.n_ver as u32 {
            self.send(NodeId::Verifier(VerifierId(v)), msg.clone());
        }
    }

    /// Rolls back to `to`, dropping every execution result above it.
    fn rollback_to(&mut self, to: BatchSeq) {
        self.epoch += 1;
        self.counters.rollbacks += 1;
        self.exec(ExecCommand::Rollback { to });
        self.executing = to;
        for (_, slot) in self.slots.range_mut(to.next()..) {
            slot.result = None;
            slot.exec_epoch = None;
        }
        self.roots.retain(|&seq, _| seq <= to);
    }

    fn verify_timeout_ms(&self) -> u64 {
        self.config.verify_timeout_ms
    }
}
