//! The protocol loop of one participant: it feeds the [`Driver`] what arrives (messages from
//! the transport, events from the execution thread, wake-ups, commands from the node's API)
//! and carries out the effects the driver buffered. The same driver runs in the simulator;
//! only this loop and its [`Effects`] handling are the node's own.

use crate::clock::NodeClock;
use crate::exec_thread::ExecHandle;
use eve_agreement::verifier_store::VerifierStore;
use eve_agreement::{Completion, Driver, Effect, Effects, Logic, Message, NodeId, Time};
use eve_net::{Inbound, Transport};
use std::collections::VecDeque;
use tokio::sync::{mpsc, watch};

/// Work the node's API hands the loop: it runs with the driver between events (a client's
/// submit, a status query), then the loop carries out what it buffered.
pub type Command<L> = Box<dyn FnOnce(&mut Driver<L>, &mut Effects) + Send>;

/// Commands queued for one loop.
pub const COMMANDS_MAX: usize = 1024;

/// Messages a durable participant handles at most between two syncs of its memory.
const GROUP_COMMIT_MESSAGES_MAX: usize = 64;

/// Messages a participant sent to itself (a verifier counts its own votes) and handles before
/// anything else; bounded by what one event can produce.
const LOOPBACK_MAX: usize = 4096;

/// What the loop handles next.
enum Step<L> {
    Exec(eve_agreement::ExecEvent),
    Inbound(Inbound),
    Command(Command<L>),
    Wake,
    Stop,
}

/// One participant's loop and what it needs.
pub struct Runner<L: Logic> {
    me: NodeId,
    driver: Driver<L>,
    transport: Transport,
    inbound: mpsc::Receiver<Inbound>,
    exec: Option<ExecHandle>,
    clock: NodeClock,
    wake: Option<Time>,
    commands: mpsc::Receiver<Command<L>>,
    completions: Option<mpsc::UnboundedSender<Completion>>,
    loopback: VecDeque<Message>,
    /// A durable verifier's memory on disk.
    store: Option<VerifierStore>,
    /// Why the store failed, if it did: from then on the participant sends nothing, since it
    /// could not persist what its messages depend on.
    halted: Option<String>,
}

impl<L: Logic + Send + 'static> Runner<L> {
    /// A loop for `logic`, receiving from `inbound` and sending through `transport`, with the
    /// execution thread `exec` for a replica. Returns it with the sender of its commands.
    pub fn new(
        logic: L,
        transport: Transport,
        inbound: mpsc::Receiver<Inbound>,
        exec: Option<ExecHandle>,
        clock: NodeClock,
    ) -> (Self, mpsc::Sender<Command<L>>) {
        let (commands_tx, commands) = mpsc::channel(COMMANDS_MAX);
        let runner = Self {
            me: logic.node_id(),
            driver: Driver::new(logic),
            transport,
            inbound,
            exec,
            clock,
            wake: None,
            commands,
            completions: None,
            loopback: VecDeque::new(),
            store: None,
            halted: None,
        };
        (runner, commands_tx)
    }

    /// Persists the memory its durable verifier hands over in `store`, synced before any
    /// message leaves.
    pub fn with_store(mut self, store: Option<VerifierStore>) -> Self {
        self.store = store;
        self
    }

    fn halt(&mut self, doing: &str, err: eve_storage::DiskError) {
        if self.halted.is_none() {
            tracing::error!(
                %err,
                "{doing} failed: this node stops sending, since it cannot persist what its \
                 messages promise (free disk space and restart it)"
            );
            self.halted = Some(format!("{doing}: {err}"));
        }
    }

    /// Syncs the memory written since the last sync, before a message leaves; returns
    /// whether messages may leave.
    fn sync_store(&mut self) -> bool {
        if self.halted.is_some() {
            return false;
        }
        if let Some(store) = &mut self.store
            && store.is_dirty()
            && let Err(err) = store.sync()
        {
            self.halt("syncing the verifier's memory", err);
            return false;
        }
        true
    }

    /// Where a client's completed requests go.
    pub fn with_completions(mut self, completions: mpsc::UnboundedSender<Completion>) -> Self {
        self.completions = Some(completions);
        self
    }

    /// Runs until `shutdown` turns true or every input closed; then stops the execution
    /// thread.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut io = Effects::new(self.clock.now());
        self.driver.start(&mut io);
        self.carry_out(io).await;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let step = self.next_step(&mut shutdown).await;
            let mut io = Effects::new(self.clock.now());
            match step {
                Step::Stop => break,
                Step::Exec(event) => self.driver.on_exec_event(&mut io, event),
                Step::Inbound(Inbound { from, msg }) => {
                    let done = self.driver.on_message(&mut io, from, msg);
                    self.complete(done);
                }
                Step::Command(command) => {
                    command(&mut self.driver, &mut io);
                    self.driver.flush(&mut io);
                }
                Step::Wake => {
                    self.wake = None;
                    if let Err(stuck) = self.driver.on_wake(&mut io) {
                        tracing::error!(%stuck, "protocol logic left its timeout due");
                    }
                }
            }
            // A durable participant handles the messages already waiting along with this
            // one, so that one sync covers the memory all of them changed (group commit).
            if self.store.is_some() {
                for _ in 1..GROUP_COMMIT_MESSAGES_MAX {
                    let Ok(Inbound { from, msg }) = self.inbound.try_recv() else {
                        break;
                    };
                    let done = self.driver.on_message(&mut io, from, msg);
                    self.complete(done);
                }
            }
            self.carry_out(io).await;
        }
        if let Some(exec) = self.exec.take() {
            let _ = tokio::task::spawn_blocking(move || exec.join()).await;
        }
    }

    /// Waits for the next thing to handle.
    async fn next_step(&mut self, shutdown: &mut watch::Receiver<bool>) -> Step<L> {
        let wake = self.wake.map(|at| self.clock.instant(at));
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let exec_events = self.exec.as_mut().map(|exec| &mut exec.events);
        let exec_event = async {
            match exec_events {
                Some(events) => events.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.changed() => Step::Stop,
            event = exec_event => event.map_or(Step::Stop, Step::Exec),
            // The node's own commands (a status query, a client's submit) before messages: a
            // peer that floods the loop must not starve them.
            command = self.commands.recv() => command.map_or(Step::Stop, Step::Command),
            inbound = self.inbound.recv() => inbound.map_or(Step::Stop, Step::Inbound),
            () = sleep => Step::Wake,
        }
    }

    fn complete(&mut self, done: Option<Completion>) {
        if let (Some(done), Some(completions)) = (done, &self.completions) {
            let _ = completions.send(done);
        }
    }

    /// Carries out buffered effects in order; messages to itself are handled at once, with
    /// what they cause.
    async fn carry_out(&mut self, io: Effects) {
        let mut effects = io.into_effects();
        loop {
            // Only the newest memory is written: it covers what every message of these events
            // depends on (a verifier that resumed from it would not contradict any of them),
            // and one sync before the first message makes it durable.
            if let Some(last) = effects
                .iter()
                .rposition(|effect| matches!(effect, Effect::Persist(_)))
                && let Effect::Persist(memory) = effects.remove(last)
            {
                let written = match &mut self.store {
                    Some(store) => store.write(&memory),
                    None => {
                        tracing::error!("a verifier kept a memory without a store");
                        Ok(())
                    }
                };
                if let Err(err) = written {
                    self.halt("writing the verifier's memory", err);
                }
            }
            for effect in effects {
                match effect {
                    Effect::Send(to, msg) if to == self.me => {
                        if self.loopback.len() < LOOPBACK_MAX {
                            self.loopback.push_back(msg);
                        }
                    }
                    Effect::Send(to, msg) => {
                        if !self.sync_store() {
                            continue;
                        }
                        if let Err(err) = self.transport.send(to, &msg) {
                            tracing::debug!(%err, kind = msg.kind(), "message not sent");
                        }
                    }
                    Effect::Exec(command) => {
                        let Some(exec) = &self.exec else {
                            tracing::error!("a participant without an execution side executed");
                            continue;
                        };
                        if exec.commands.send(command).await.is_err() {
                            tracing::error!("the execution thread stopped");
                        }
                    }
                    // The driver asks only when the time must change (see `Io::wake_at`).
                    Effect::Wake(at) => self.wake = Some(at),
                    // An older memory than the one written above.
                    Effect::Persist(_) => {}
                }
            }
            let Some(msg) = self.loopback.pop_front() else {
                return;
            };
            let mut io = Effects::new(self.clock.now());
            let me = self.me;
            let done = self.driver.on_message(&mut io, me, msg);
            self.complete(done);
            effects = io.into_effects();
        }
    }
}
