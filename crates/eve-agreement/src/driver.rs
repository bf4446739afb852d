//! The driver: one participant's logic with its effects carried out, the same code in the
//! simulator and in the node.
//!
//! A [`Driver`] feeds its participant messages, execution results and wake-ups, then drains
//! every output into an [`Io`]: messages to send, commands for the execution side (in order),
//! and the time it next wants to be woken. What `Io` does with them is the only difference
//! between the worlds: the simulator schedules deliveries and execution on its simulated
//! clock; the node writes frames to QUIC streams, hands commands to its execution thread and
//! sleeps until the wake-up. Timer bookkeeping (wake only when the logic has work, never wake
//! twice for one deadline, notice a logic that leaves work due after handling it) lives here
//! once.

use crate::client::{Client, Completion};
use crate::exec_side::{ExecCommand, ExecEvent};
use crate::message::Message;
use crate::node::{NodeId, Output};
use crate::primary_backup::PbReplica;
use crate::replica::Replica;
use crate::time::Time;
use crate::verifier::{Verifier, VerifierMemory};
use eve_types::{BatchSeq, ReplicaId, ReplicationMode, ValidConfig, View};

/// Where a driver carries its participant's effects.
pub trait Io {
    /// The current time.
    fn now(&self) -> Time;
    /// Sends `msg` from the driven participant to `to`. Must not block: a transport with a
    /// full queue drops or defers, and the protocol repairs loss by repetition.
    fn send(&mut self, to: NodeId, msg: Message);
    /// Hands `command` to the driven replica's execution side. Commands must be applied in
    /// the order given; their [`ExecEvent`]s come back through [`Driver::on_exec_event`].
    fn execute(&mut self, command: ExecCommand);
    /// Asks to be woken (through [`Driver::on_wake`]) at `at` or soon after. Each call
    /// replaces the previous one: the driver asks again only for an earlier time, or once the
    /// wake-up it asked for has passed. A wake-up with nothing due is harmless, so an `Io`
    /// may also keep every time it was given.
    fn wake_at(&mut self, at: Time);
    /// Persists a durable verifier's `memory`, replacing the one before. It must be durable
    /// before any message handed to [`send`](Io::send) after this call leaves (a node may sync
    /// once for several events, holding their messages until then: group commit).
    fn persist(&mut self, memory: VerifierMemory);
}

/// One effect a driver asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send a message.
    Send(NodeId, Message),
    /// Hand a command to the execution side.
    Exec(ExecCommand),
    /// Wake the driver at this time.
    Wake(Time),
    /// Persist a verifier's memory before carrying out any effect after this one.
    Persist(Box<VerifierMemory>),
}

/// An [`Io`] that buffers one driver call's effects, in order, for the caller to carry out
/// afterwards (with whatever borrows or awaits that takes).
#[derive(Clone, Debug)]
pub struct Effects {
    now: Time,
    list: Vec<Effect>,
}

impl Effects {
    /// An empty buffer at time `now`.
    pub fn new(now: Time) -> Self {
        Self {
            now,
            list: Vec::new(),
        }
    }

    /// The effects, in the order they were asked for.
    pub fn into_effects(self) -> Vec<Effect> {
        self.list
    }
}

impl Io for Effects {
    fn now(&self) -> Time {
        self.now
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.list.push(Effect::Send(to, msg));
    }

    fn execute(&mut self, command: ExecCommand) {
        self.list.push(Effect::Exec(command));
    }

    fn wake_at(&mut self, at: Time) {
        self.list.push(Effect::Wake(at));
    }

    fn persist(&mut self, memory: VerifierMemory) {
        self.list.push(Effect::Persist(Box::new(memory)));
    }
}

/// An execution replica of either mode.
pub enum ReplicaLogic {
    /// Asynchronous Eve.
    Eve(Replica),
    /// One side of a primary-backup pair.
    PrimaryBackup(PbReplica),
}

impl ReplicaLogic {
    /// A replica of a new cluster, for the configuration's mode.
    pub fn new(id: ReplicaId, config: &ValidConfig) -> Self {
        match config.mode {
            ReplicationMode::PrimaryBackup => {
                Self::PrimaryBackup(PbReplica::new(id, config.clone()))
            }
            ReplicationMode::Eve { .. } => Self::Eve(Replica::new(id, config.clone())),
        }
    }

    /// Checks clients' signatures with `verifier` (Eve with `r >= 1`; see
    /// [`Replica::with_request_verifier`]). Primary-backup (`r = 0`) checks none.
    pub fn with_request_verifier(
        self,
        verifier: std::sync::Arc<dyn crate::auth::RequestVerifier>,
    ) -> Self {
        match self {
            Self::Eve(r) => Self::Eve(r.with_request_verifier(verifier)),
            other => other,
        }
    }

    /// A replica restarted without memory or state; `nonce` must differ from every earlier
    /// incarnation's (see [`Replica::restart`]).
    pub fn restart(id: ReplicaId, config: &ValidConfig, nonce: u64) -> Self {
        match config.mode {
            ReplicationMode::PrimaryBackup => {
                Self::PrimaryBackup(PbReplica::restart(id, config.clone()))
            }
            ReplicationMode::Eve { .. } => Self::Eve(Replica::restart(id, config.clone(), nonce)),
        }
    }

    /// A durable replica that recovered from its journal (see [`Replica::resume`]). A
    /// primary-backup replica keeps no journal: it restarts without memory.
    pub fn resume(
        id: ReplicaId,
        config: &ValidConfig,
        nonce: u64,
        recovered: &crate::journal::Recovered,
    ) -> Self {
        match config.mode {
            ReplicationMode::PrimaryBackup => {
                Self::PrimaryBackup(PbReplica::restart(id, config.clone()))
            }
            ReplicationMode::Eve { .. } => {
                Self::Eve(Replica::resume(id, config.clone(), nonce, recovered))
            }
        }
    }

    /// This replica.
    pub fn id(&self) -> ReplicaId {
        match self {
            Self::Eve(r) => r.id(),
            Self::PrimaryBackup(r) => r.id(),
        }
    }

    /// The current view.
    pub fn view(&self) -> View {
        match self {
            Self::Eve(r) => r.view(),
            Self::PrimaryBackup(r) => r.view(),
        }
    }

    /// The primary of the current view.
    pub fn primary(&self) -> ReplicaId {
        match self {
            Self::Eve(r) => r.primary(),
            Self::PrimaryBackup(r) => r.primary(),
        }
    }

    /// The last committed batch.
    pub fn committed(&self) -> BatchSeq {
        match self {
            Self::Eve(r) => r.committed(),
            Self::PrimaryBackup(r) => r.committed(),
        }
    }

    /// The last checkpoint.
    pub fn stable(&self) -> BatchSeq {
        match self {
            Self::Eve(r) => r.stable(),
            Self::PrimaryBackup(r) => r.stable(),
        }
    }

    /// The highest batch executed or being executed (the committed one in primary-backup,
    /// which executes only what it commits next).
    pub fn executing(&self) -> BatchSeq {
        match self {
            Self::Eve(r) => r.executing(),
            Self::PrimaryBackup(r) => r.committed(),
        }
    }

    /// Batches this replica ordered as primary.
    pub fn batches_ordered(&self) -> u64 {
        match self {
            Self::Eve(r) => r.counters().batches_ordered,
            Self::PrimaryBackup(r) => r.counters().batches_ordered,
        }
    }

    /// Requests waiting to be ordered, and their operation bytes (primary).
    pub fn pending(&self) -> (usize, usize) {
        match self {
            Self::Eve(r) => (r.pending_requests(), r.pending_bytes()),
            Self::PrimaryBackup(r) => (r.pending_requests(), r.pending_bytes()),
        }
    }

    /// Whether the replica restarted and does not yet hold a committed state.
    pub fn lost_state(&self) -> bool {
        match self {
            Self::Eve(r) => !r.holds_committed_state(),
            Self::PrimaryBackup(_) => false,
        }
    }

    /// The roots of the last committed batch, where the replica keeps them (Eve).
    pub fn committed_roots(&self) -> Option<crate::message::Roots> {
        match self {
            Self::Eve(r) => r.committed_roots(),
            Self::PrimaryBackup(_) => None,
        }
    }

    /// Why the replica cannot make progress on its own, if it knows.
    pub fn stall_reason(&self) -> Option<String> {
        match self {
            Self::Eve(r) => r.stall_reason(),
            Self::PrimaryBackup(_) => None,
        }
    }

    /// A one-line summary of the replica's state.
    pub fn describe(&self) -> String {
        match self {
            Self::Eve(r) => r.describe(),
            Self::PrimaryBackup(r) => format!(
                "{} view {} primary {} committed {} stable {} alone {} transferring {} pending {}",
                r.id(),
                r.view(),
                r.primary(),
                r.committed(),
                r.stable(),
                r.is_alone(),
                r.is_transferring(),
                r.pending_requests()
            ),
        }
    }
}

/// A participant's logic, whatever its role: what a [`Driver`] drives.
pub trait Logic {
    /// Who this is.
    fn node_id(&self) -> NodeId;
    /// Handles a message; a client returns the request it completed.
    fn on_message(&mut self, now: Time, from: NodeId, msg: Message) -> Option<Completion>;
    /// Handles an event of the execution side (replicas only).
    fn on_exec_event(&mut self, now: Time, event: ExecEvent);
    /// Handles the passing of time.
    fn on_timeout(&mut self, now: Time);
    /// The earliest time at which [`on_timeout`](Self::on_timeout) has work.
    fn next_timeout(&self) -> Option<Time>;
    /// The next effect to carry out.
    fn poll_output(&mut self) -> Option<Output>;
    /// A durable participant's memory, if it changed since last taken: the driver persists
    /// it before the outputs that depend on it (verifiers; see [`Verifier::take_memory`]).
    fn take_memory(&mut self) -> Option<VerifierMemory> {
        None
    }
}

impl Logic for ReplicaLogic {
    fn node_id(&self) -> NodeId {
        NodeId::Replica(self.id())
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message) -> Option<Completion> {
        match self {
            Self::Eve(r) => r.handle_message(now, from, msg),
            Self::PrimaryBackup(r) => r.handle_message(now, from, msg),
        }
        None
    }

    fn on_exec_event(&mut self, now: Time, event: ExecEvent) {
        match self {
            Self::Eve(r) => r.handle_exec_event(now, event),
            Self::PrimaryBackup(r) => r.handle_exec_event(now, event),
        }
    }

    fn on_timeout(&mut self, now: Time) {
        match self {
            Self::Eve(r) => r.handle_timeout(now),
            Self::PrimaryBackup(r) => r.handle_timeout(now),
        }
    }

    fn next_timeout(&self) -> Option<Time> {
        match self {
            Self::Eve(r) => r.next_timeout(),
            Self::PrimaryBackup(r) => r.next_timeout(),
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        match self {
            Self::Eve(r) => r.poll_output(),
            Self::PrimaryBackup(r) => r.poll_output(),
        }
    }
}

impl Logic for Verifier {
    fn node_id(&self) -> NodeId {
        NodeId::Verifier(self.id())
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message) -> Option<Completion> {
        self.handle_message(now, from, msg);
        None
    }

    fn on_exec_event(&mut self, _now: Time, _event: ExecEvent) {
        // Verifiers execute nothing: no event can be theirs.
    }

    fn on_timeout(&mut self, now: Time) {
        self.handle_timeout(now);
    }

    fn next_timeout(&self) -> Option<Time> {
        Verifier::next_timeout(self)
    }

    fn poll_output(&mut self) -> Option<Output> {
        Verifier::poll_output(self)
    }

    fn take_memory(&mut self) -> Option<VerifierMemory> {
        Verifier::take_memory(self)
    }
}

impl Logic for Client {
    fn node_id(&self) -> NodeId {
        NodeId::Client(self.id())
    }

    fn on_message(&mut self, _now: Time, from: NodeId, msg: Message) -> Option<Completion> {
        self.handle_message(from, msg)
    }

    fn on_exec_event(&mut self, _now: Time, _event: ExecEvent) {
        // Clients execute nothing: no event can be theirs.
    }

    fn on_timeout(&mut self, now: Time) {
        self.handle_timeout(now);
    }

    fn next_timeout(&self) -> Option<Time> {
        Client::next_timeout(self)
    }

    fn poll_output(&mut self) -> Option<Output> {
        Client::poll_output(self)
    }
}

/// A logic that handled its timeout but still reports work due: time would stand still for it
/// (a bug in the logic). The driver stops waking it and says so once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{node:?}: a timeout was handled but is still due at {at:?}")]
pub struct TimerStillDue {
    /// The participant.
    pub node: NodeId,
    /// When.
    pub at: Time,
}

/// One participant's logic and the bookkeeping of carrying out its effects.
pub struct Driver<L> {
    logic: L,
    /// The wake-up asked of the `Io` and not yet seen.
    wake: Option<Time>,
    /// Set when the logic left work due after a timeout: it is not woken again.
    stuck: bool,
}

impl<L: Logic> Driver<L> {
    /// Drives `logic`. Call [`start`](Self::start) before anything else, so that the effects
    /// the logic has from its construction go out and its first wake-up is asked for.
    pub fn new(logic: L) -> Self {
        Self {
            logic,
            wake: None,
            stuck: false,
        }
    }

    /// Carries out what the logic has to do from the start.
    pub fn start(&mut self, io: &mut impl Io) {
        self.flush(io);
    }

    /// The driven logic.
    pub fn logic(&self) -> &L {
        &self.logic
    }

    /// The driven logic, for calls that are not events (a client's `submit`); call
    /// [`flush`](Self::flush) afterwards.
    pub fn logic_mut(&mut self) -> &mut L {
        &mut self.logic
    }

    /// Replaces the logic (a restart): the old one's wake-up no longer counts.
    pub fn replace(&mut self, logic: L, io: &mut impl Io) {
        self.logic = logic;
        self.wake = None;
        self.stuck = false;
        self.flush(io);
    }

    /// Delivers a message; returns what a client completed.
    pub fn on_message(
        &mut self,
        io: &mut impl Io,
        from: NodeId,
        msg: Message,
    ) -> Option<Completion> {
        let done = self.logic.on_message(io.now(), from, msg);
        self.flush(io);
        done
    }

    /// Delivers an event of the execution side.
    pub fn on_exec_event(&mut self, io: &mut impl Io, event: ExecEvent) {
        self.logic.on_exec_event(io.now(), event);
        self.flush(io);
    }

    /// The wake-up asked for came (or any other): handles the logic's timeout if it is due.
    pub fn on_wake(&mut self, io: &mut impl Io) -> Result<(), TimerStillDue> {
        let now = io.now();
        if self.wake.is_some_and(|at| at <= now) {
            self.wake = None;
        }
        if self.stuck || self.logic.next_timeout().is_none_or(|at| at > now) {
            self.flush(io);
            return Ok(());
        }
        self.logic.on_timeout(now);
        let result = match self.logic.next_timeout() {
            Some(at) if at <= now => {
                self.stuck = true;
                Err(TimerStillDue {
                    node: self.logic.node_id(),
                    at: now,
                })
            }
            _ => Ok(()),
        };
        self.flush(io);
        result
    }

    /// Carries out every output of the logic, in order, then asks for the next wake-up. A
    /// durable participant's memory goes first: every output depends on it.
    pub fn flush(&mut self, io: &mut impl Io) {
        if let Some(memory) = self.logic.take_memory() {
            io.persist(memory);
        }
        while let Some(output) = self.logic.poll_output() {
            match output {
                Output::Send { to, msg } => io.send(to, msg),
                Output::Exec(command) => io.execute(command),
            }
        }
        if self.stuck {
            return;
        }
        let Some(at) = self.logic.next_timeout() else {
            return;
        };
        let at = at.max(io.now());
        // A wake-up already asked for, due no later and not yet past, will do.
        if self.wake.is_some_and(|w| w <= at && w >= io.now()) {
            return;
        }
        self.wake = Some(at);
        io.wake_at(at);
    }
}
