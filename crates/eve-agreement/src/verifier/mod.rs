//! The verifier: gathers execution replicas' tokens, agrees with the other verifiers on the
//! token of each batch, tells execution replicas, and changes view when no token can reach a
//! quorum, when a batch does not commit in time, or when replicas suspect the primary.

mod agreement;
mod catch_up;
mod memory;
mod proof;
mod recovery;
mod view_change;

pub use memory::VerifierMemory;

use crate::certificate::{Certificate, VerifierAuth};
use crate::message::{Lock, Message, RecoveryState, ViewChangeProof};
use crate::node::{Drops, NodeId, Output};
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, QuorumSizes, ReplicaId, Signature, ValidConfig, VerifierId, View};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// The voters of one token in one round, with their signatures (with `r >= 1`).
type Voters = BTreeMap<VerifierId, Option<Signature>>;

/// A verifier's record of one batch above its last committed one.
#[derive(Clone, Debug, Default)]
struct VSlot {
    /// Each execution replica's first token for the batch in this view, with the token of the
    /// version it executed the batch on.
    tokens: BTreeMap<ReplicaId, (Token, Token)>,
    prepares: BTreeMap<Token, Voters>,
    commits: BTreeMap<Token, Voters>,
    sent_prepare: Option<Token>,
    /// The token this verifier sent `Commit` for: it is locked on it in this view.
    sent_commit: Option<Token>,
    committed: Option<Token>,
    /// With `r >= 1`: the commit certificate that committed it.
    commit_cert: Option<Certificate>,
    /// When the batch was first known to be real: `r + 1` replicas sent a token, or `r + 1`
    /// verifiers voted for it (the commit timer starts then).
    first_seen: Option<Time>,
    /// Whether the verifier asked its peers about this batch after its timer fired.
    queried: bool,
}

/// A view change in progress.
#[derive(Clone, Debug)]
struct Changing {
    target: View,
    deadline: Time,
    /// Retransmissions of this verifier's `ViewChange` for `target`.
    retransmits: u32,
    /// The `ViewChange` this verifier sent, to retransmit.
    message: Message,
}

/// A view-change message received.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ViewChangeVote {
    view: View,
    committed: (BatchSeq, Token),
    locked: Vec<Lock>,
    /// With `r >= 1`: its certificates and signature, checked before the vote counts.
    proof: Option<Box<ViewChangeProof>>,
}

/// A restart in progress: the verifier lost its memory and gathers what a quorum of its peers
/// know before it takes part again.
#[derive(Clone, Debug)]
struct Recovery {
    nonce: u64,
    answers: BTreeMap<VerifierId, RecoveryState>,
    /// When to ask again (answers get lost).
    retry_at: Time,
}

/// Counters of what a verifier did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifierCounters {
    /// Batches committed.
    pub batches_committed: u64,
    /// Batches for which no token could reach the token quorum.
    pub no_quorum: u64,
    /// Batches that did not commit within the verification timeout.
    pub timeouts: u64,
    /// View changes this verifier started or joined.
    pub view_changes_started: u64,
    /// Views entered.
    pub views_entered: u64,
    /// Recoveries from a restart completed (state gathered from a quorum of peers).
    pub recoveries: u64,
    /// View changes whose quorum reported different tokens locked for one `(view, seq)`:
    /// impossible among correct verifiers, so a sign of a fault beyond the model.
    pub conflicting_locks: u64,
    /// Times this verifier asked its peers what it missed (a batch late to commit, a view
    /// change given up, or left a window behind).
    pub catch_up_queries: u64,
    /// Times tokens or votes from `r + 1` nodes for batches beyond this verifier's window made
    /// it ask its peers: it was left more than a window behind with nothing to time out.
    pub left_a_window_behind: u64,
    /// Batches taken as committed on the word of `r + 1` peers, or (with `r >= 1`) on a
    /// peer's commit certificate.
    pub batches_caught_up: u64,
    /// View changes asked for by peers that this verifier did not join because its own view
    /// was making progress (it told the peer so instead).
    pub view_changes_refused: u64,
    /// View changes this verifier gave up because the leader of its view said that the view
    /// was making progress.
    pub view_changes_abandoned: u64,
    /// Votes, view changes, announcements, certificates and recovery answers refused because
    /// their signature or certificate did not prove what they claim (with `r >= 1`).
    pub proofs_refused: u64,
    /// Messages dropped, by reason.
    pub drops: Drops,
}

/// A verifier's protocol logic.
pub struct Verifier {
    id: VerifierId,
    config: ValidConfig,
    sizes: QuorumSizes,
    view: View,
    committed: BatchSeq,
    committed_token: Token,
    slots: BTreeMap<BatchSeq, VSlot>,
    /// Tokens of the latest committed batches, to answer replicas that missed `Verified`, with
    /// (for `r >= 1`) their commit certificates, to answer lagging peers.
    recent: BTreeMap<BatchSeq, (Token, Option<Certificate>)>,
    /// Signs this verifier's votes and checks its peers' (needed with `r >= 1`).
    auth: Option<Arc<dyn VerifierAuth>>,
    /// With `r >= 1`: the commit certificate of `committed` (none for the genesis).
    committed_cert: Option<Certificate>,
    /// With `r >= 1`: the prepared certificate of this verifier's lock with the highest
    /// `(view, seq)`, its own or learned when it recovered; kept across views until a
    /// committed batch of a later `(view, seq)` supersedes it.
    lock_cert: Option<Certificate>,
    /// With `r >= 1`: the start of the current view and its token while the verifiers prepare
    /// and commit it again in this view (its slot is in `slots`); replicas are told of the
    /// view once it commits.
    opening: Option<(BatchSeq, Token)>,
    /// The highest view this verifier asked for. It casts no vote in a lower view: its
    /// `ViewChange` for that view reported its locks, and a vote cast after it would be
    /// missing from the new view's start.
    asked: View,
    /// Peers' word that a batch above the last committed one committed, by token.
    vouches: BTreeMap<BatchSeq, BTreeMap<Token, BTreeSet<VerifierId>>>,
    changing: Option<Changing>,
    /// View-change votes for views above the current one.
    view_change_votes: BTreeMap<View, BTreeMap<VerifierId, ViewChangeVote>>,
    /// The view this verifier entered last, with the batch it started after and its token.
    entered: Option<(View, BatchSeq, Token)>,
    /// The last `NewView` this verifier sent as leader, to resend to latecomers.
    announced: Option<Message>,
    /// When a commit quorum last formed here in the current view (`None` since entering it
    /// or giving it up): while that is recent, the view is making progress and a peer's lone
    /// request for another view is answered instead of joined (`view_change.rs`).
    progressed_at: Option<Time>,
    /// Views tried without entering one since the last view was entered: the view-change
    /// timer doubles with each, so that verifiers that started apart come together.
    failed_views: u32,
    suspects: BTreeMap<View, BTreeSet<ReplicaId>>,
    /// The highest batch each execution replica sent a token for: a replica far below the
    /// last committed batch was cut off or slow, and its suspicions are stale while the view
    /// makes progress (`view_change.rs`).
    tokens_heard: Vec<BatchSeq>,
    /// The highest view each peer voted in, of those above this verifier's view: `r + 1` of
    /// them show that it missed a view change (`view_change.rs`).
    later_votes: BTreeMap<VerifierId, View>,
    /// Nodes that sent a token or vote of this view beyond this verifier's window since it
    /// last asked its peers: `r + 1` of them show that it was left behind (`catch_up.rs`).
    beyond_window_from: BTreeSet<NodeId>,
    /// When it last asked its peers for being left a window behind.
    window_asked_at: Option<Time>,
    /// Set while recovering from a restart: the verifier does nothing else.
    recovery: Option<Recovery>,
    /// After a recovery: the highest view the verifier may have voted in before it lost its
    /// memory. It casts no `Prepare` or `Commit` in that view or below.
    vote_floor: Option<View>,
    /// Locks learned from peers when recovering, reported in view changes like its own.
    learned: Vec<Lock>,
    /// A durable verifier's memory as last taken for its driver to persist (`Some(None)`
    /// before the first); `None` for a verifier that keeps none.
    durable: Option<Option<VerifierMemory>>,
    /// A view change asked for before a restart, to ask for again at the first wake-up.
    resume_change: Option<View>,
    outputs: VecDeque<Output>,
    counters: VerifierCounters,
}

impl Verifier {
    /// A verifier of a new cluster: view 0, nothing committed.
    pub fn new(id: VerifierId, config: ValidConfig) -> Self {
        let sizes = config.sizes();
        assert!(
            (id.0 as usize) < sizes.n_ver,
            "verifier {id} is not in a cluster of {} verifiers",
            sizes.n_ver
        );
        Self {
            id,
            config,
            sizes,
            view: View(0),
            committed: BatchSeq(0),
            committed_token: view_change::GENESIS.1,
            slots: BTreeMap::new(),
            recent: BTreeMap::new(),
            auth: None,
            committed_cert: None,
            lock_cert: None,
            opening: None,
            asked: View(0),
            vouches: BTreeMap::new(),
            changing: None,
            view_change_votes: BTreeMap::new(),
            entered: None,
            announced: None,
            progressed_at: None,
            failed_views: 0,
            suspects: BTreeMap::new(),
            tokens_heard: vec![BatchSeq(0); sizes.n_exec],
            later_votes: BTreeMap::new(),
            beyond_window_from: BTreeSet::new(),
            window_asked_at: None,
            recovery: None,
            vote_floor: None,
            learned: Vec::new(),
            durable: None,
            resume_change: None,
            outputs: VecDeque::new(),
            counters: VerifierCounters::default(),
        }
    }

    /// Signs this verifier's votes and view changes and checks its peers' with `auth`. Needed
    /// with `r >= 1` (a verifier without it panics when it first votes); ignored with `r = 0`.
    pub fn with_auth(mut self, auth: Arc<dyn VerifierAuth>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// A verifier that restarted without memory. It asks every peer what it knows and takes no
    /// part in the protocol until a quorum of them answered (`docs/PROTOCOL.md`, "Restarts");
    /// `nonce` must differ from every earlier incarnation's (the driver draws it).
    pub fn restart(id: VerifierId, config: ValidConfig, nonce: u64) -> Self {
        let mut verifier = Self::new(id, config);
        verifier.recovery = Some(Recovery {
            nonce,
            answers: BTreeMap::new(),
            retry_at: Time::ZERO,
        });
        verifier
    }

    /// Whether the verifier is still recovering from a restart.
    pub fn is_recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// This verifier.
    pub fn id(&self) -> VerifierId {
        self.id
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// The last committed batch.
    pub fn committed(&self) -> BatchSeq {
        self.committed
    }

    /// The view this verifier entered last and the batch it starts after (`None` in view 0
    /// before any view change).
    pub fn view_start(&self) -> Option<(View, BatchSeq)> {
        self.entered.map(|(view, start, _)| (view, start))
    }

    /// Whether a view change is in progress.
    pub fn is_changing_view(&self) -> bool {
        self.changing.is_some()
    }

    /// A one-line summary of the verifier's state, for diagnosing a stuck run.
    pub fn describe(&self) -> String {
        format!(
            "{} view {} committed {} changing {:?} slots {:?}",
            self.id,
            self.view,
            self.committed,
            self.changing.as_ref().map(|c| (c.target, c.retransmits)),
            self.slots
                .iter()
                .map(|(s, slot)| (
                    s.0,
                    slot.tokens.len(),
                    slot.sent_commit.is_some(),
                    slot.committed.is_some()
                ))
                .collect::<Vec<_>>(),
        )
    }

    /// What the verifier has done so far.
    pub fn counters(&self) -> &VerifierCounters {
        &self.counters
    }

    /// The next effect to carry out.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn next_timeout(&self) -> Option<Time> {
        if let Some(recovery) = &self.recovery {
            return Some(recovery.retry_at);
        }
        if self.resume_change.is_some() {
            return Some(Time::ZERO);
        }
        if let Some(changing) = &self.changing {
            return Some(changing.deadline);
        }
        self.slots
            .values()
            .filter(|slot| slot.committed.is_none())
            .filter_map(|slot| slot.first_seen)
            .min()
            .map(|t| t.plus_ms(self.config.verify_timeout_ms))
    }

    /// Handles a message from `from`.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        if self.recovery.is_some() {
            return self.handle_while_recovering(now, from, msg);
        }
        match (from, msg) {
            (
                NodeId::Replica(r),
                Message::Verify {
                    view,
                    seq,
                    token,
                    prev,
                },
            ) if (r.0 as usize) < self.sizes.n_exec => {
                self.on_verify(now, r, view, seq, token, prev)
            }
            (NodeId::Replica(r), Message::Suspect { view })
                if (r.0 as usize) < self.sizes.n_exec =>
            {
                self.on_suspect(now, r, view)
            }
            (NodeId::Replica(r), Message::QueryCommitted) if (r.0 as usize) < self.sizes.n_exec => {
                self.tell_where_we_stand(r)
            }
            (NodeId::Replica(r), Message::Recover { nonce })
                if (r.0 as usize) < self.sizes.n_exec =>
            {
                self.answer_recovery(NodeId::Replica(r), nonce)
            }
            (NodeId::Verifier(v), msg) if (v.0 as usize) < self.sizes.n_ver => match msg {
                Message::Prepare {
                    view,
                    seq,
                    token,
                    signature,
                } => self.on_prepare(now, v, Lock { view, seq, token }, signature),
                Message::Commit {
                    view,
                    seq,
                    token,
                    signature,
                } => self.on_commit(now, v, Lock { view, seq, token }, signature),
                Message::Certified(certificate) => self.on_certified(now, *certificate),
                Message::Lagging { view, committed } => self.answer_lagging(v, view, committed),
                Message::Verified {
                    seq,
                    token,
                    sequential: false,
                    ..
                } => self.on_vouch(now, v, seq, token),
                Message::ViewChange {
                    new_view,
                    view,
                    committed,
                    locked,
                    proof,
                } => self.on_view_change(
                    now,
                    v,
                    new_view,
                    ViewChangeVote {
                        view,
                        committed,
                        locked,
                        proof,
                    },
                ),
                Message::NewView {
                    view,
                    start,
                    token,
                    proof,
                } => self.on_new_view(now, v, view, (start, token), proof),
                Message::Recover { nonce } => self.answer_recovery(NodeId::Verifier(v), nonce),
                Message::RecoverReply { .. } => {
                    self.counters.drops.count("recovery-answer-unasked")
                }
                _ => self.counters.drops.count("unexpected-message"),
            },
            _ => self.counters.drops.count("unknown-sender-or-message"),
        }
    }

    /// Handles the passing of time: commit and view-change timeouts.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.recovery.is_some() {
            self.recovery_timeout(now);
            return;
        }
        self.resume_view_change(now);
        if self.changing.is_some() {
            self.view_change_timeout(now);
            return;
        }
        let timeout = self.config.verify_timeout_ms;
        let late: Vec<BatchSeq> = self
            .slots
            .iter()
            .filter(|(_, slot)| {
                slot.committed.is_none()
                    && slot.first_seen.is_some_and(|t| t.plus_ms(timeout) <= now)
            })
            .map(|(seq, _)| *seq)
            .collect();
        if !late.is_empty() && !self.ask_peers_first(now, &late) {
            self.counters.timeouts += 1;
            let next = self.view.next();
            self.start_view_change(now, next);
        }
    }

    /// Tells a replica the view (with the batch it started after) and the last committed
    /// batch: for a replica that restarted or missed a view change.
    fn tell_where_we_stand(&mut self, replica: ReplicaId) {
        let to = NodeId::Replica(replica);
        if let Some((view, start, token)) = self.entered {
            let msg = Message::Verified {
                view,
                seq: start,
                token,
                sequential: true,
            };
            self.send(to, msg);
        }
        if self.committed > BatchSeq(0) {
            let msg = Message::Verified {
                view: self.view,
                seq: self.committed,
                token: self.committed_token,
                sequential: false,
            };
            self.send(to, msg);
        }
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    /// Sends to every verifier, this one included (it handles its own copy like any other, so
    /// the driver delivers it back).
    fn send_verifiers(&mut self, msg: Message) {
        for v in 0..self.sizes.n_ver as u32 {
            self.send(NodeId::Verifier(VerifierId(v)), msg.clone());
        }
    }

    fn send_replicas(&mut self, msg: Message) {
        for r in 0..self.sizes.n_exec as u32 {
            self.send(NodeId::Replica(ReplicaId(r)), msg.clone());
        }
    }
}
