//! The execution side of a replica: the commands the protocol logic gives it and the events
//! it reports back.
//!
//! The logic never touches the state itself. It emits [`ExecCommand`]s; a driver hands them,
//! in order, to a [`ReplicaExecutor`] (on a dedicated thread in the node, inline in the
//! simulator) and feeds the resulting [`ExecEvent`]s back to the logic. Commands run strictly
//! in the order given, so a `Rollback` issued after an `Execute` applies after it. Commands and
//! events carry the logic's *epoch*, which changes at every rollback, so the logic can ignore
//! results that a rollback made stale.

use crate::journal::Journal;
use crate::message::{Batch, Message, Roots, StateReply};
use crate::node::NodeId;
use eve_exec::{Application, ExecMode, Executor, Token};
use eve_state::{Chunk, ChunkRequest, Delta, Manifest, StateError, StateImport};
use eve_types::limits::{MESSAGE_SIZE_BYTES_MAX, STATE_CHUNK_BYTES_MAX};
use eve_types::{BatchSeq, ClientId, ReplicaId, Reply, RequestNo, View};

/// Largest delta a replica serves before it falls back to a chunked transfer, in bytes of
/// keys and values (half a message, leaving room for framing).
pub const DELTA_BYTES_MAX: usize = MESSAGE_SIZE_BYTES_MAX / 2;

/// Largest chunk a replica asks for, in bytes of keys and values.
pub const CHUNK_BYTES: usize = STATE_CHUNK_BYTES_MAX / 2;

/// What the logic asks the execution side to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecCommand {
    /// Execute a batch (which must follow the last executed one) and report its token.
    Execute {
        /// The logic's epoch when it asked.
        epoch: u64,
        /// The batch.
        batch: Batch,
    },
    /// Roll the state back to `to`.
    Rollback {
        /// The version to restore.
        to: BatchSeq,
    },
    /// Mark `seq` stable: the state can no longer roll back below it.
    MarkStable {
        /// The checkpoint.
        seq: BatchSeq,
    },
    /// Answer a peer's state request: a delta from `base` to `target`, or a manifest (always
    /// without a base).
    ServeState {
        /// The peer.
        to: ReplicaId,
        /// The version asked for, which this replica holds.
        target: BatchSeq,
        /// The peer's last committed version, when its state is that version's.
        base: Option<BatchSeq>,
        /// The roots of `target`, as this replica computed them.
        roots: Roots,
    },
    /// Answer a peer's chunk request.
    ServeChunk {
        /// The peer.
        to: ReplicaId,
        /// What it asked for.
        request: ChunkRequest,
    },
    /// Apply a delta received from a peer (its roots already checked against the agreed
    /// token), landing on version `delta.to`.
    ImportDelta {
        /// The logic's epoch.
        epoch: u64,
        /// The agreed roots of the target version.
        roots: Roots,
        /// The delta.
        delta: Delta,
    },
    /// Answer a client's retransmitted request from the reply cache of the committed state,
    /// if the cache holds that very request (a replica that caught up by state transfer does
    /// not have the reply in memory).
    AnswerFromCache {
        /// The request.
        client: ClientId,
        /// Its number.
        request_no: RequestNo,
        /// The replica's last committed version.
        committed: BatchSeq,
        /// The replica's view, for the reply.
        view: View,
    },
    /// Start a full transfer of `manifest` from `peer`; a transfer of the same version and
    /// roots already in progress resumes with `peer`, keeping the chunks it verified.
    StartImport {
        /// The logic's epoch.
        epoch: u64,
        /// Where chunks come from.
        peer: ReplicaId,
        /// The agreed roots of the target version.
        roots: Roots,
        /// The target version's manifest.
        manifest: Manifest,
    },
    /// A chunk of the transfer in progress arrived.
    ImportChunk {
        /// The logic's epoch.
        epoch: u64,
        /// The peer it came from.
        peer: ReplicaId,
        /// The chunk.
        chunk: Chunk,
    },
}

/// How a [`StateReply`] answers a transfer in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateReplyCheck {
    /// The reply's roots hash to the agreed token: import it with this command.
    Import(ExecCommand),
    /// The peer does not hold the version asked for.
    NotHeld(BatchSeq),
    /// The reply does not fit the transfer: roots that do not hash to the agreed token, or
    /// another version or base.
    Mismatch,
}

impl StateReply {
    /// Checks a reply from `peer` to a transfer of `target`, agreed as `token`, from this
    /// replica's `base` version; the import command carries `epoch`.
    pub fn check(
        self,
        target: BatchSeq,
        token: eve_exec::Token,
        base: Option<BatchSeq>,
        epoch: u64,
        peer: ReplicaId,
    ) -> StateReplyCheck {
        match self {
            StateReply::Delta { roots, delta }
                if roots.token(target) == token
                    && delta.to == target
                    && Some(delta.from) == base =>
            {
                StateReplyCheck::Import(ExecCommand::ImportDelta {
                    epoch,
                    roots,
                    delta,
                })
            }
            StateReply::Manifest { roots, manifest }
                if roots.token(target) == token && manifest.version == target =>
            {
                StateReplyCheck::Import(ExecCommand::StartImport {
                    epoch,
                    peer,
                    roots,
                    manifest,
                })
            }
            StateReply::NotHeld { target } => StateReplyCheck::NotHeld(target),
            _ => StateReplyCheck::Mismatch,
        }
    }
}

/// What the execution side reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecEvent {
    /// A batch executed.
    Executed {
        /// The epoch of the command.
        epoch: u64,
        /// The batch.
        seq: BatchSeq,
        /// Its roots; `token` is their hash with `seq`.
        roots: Roots,
        /// The token.
        token: Token,
        /// The replies, released only when the batch commits with this token.
        replies: Vec<Reply>,
    },
    /// A batch could not execute (out of sequence: a bookkeeping error the logic repairs by
    /// state transfer).
    ExecuteFailed {
        /// The epoch of the command.
        epoch: u64,
        /// The batch.
        seq: BatchSeq,
        /// Why.
        error: String,
    },
    /// A state transfer finished: the state is now at `target`, or nothing changed.
    StateApplied {
        /// The epoch of the command.
        epoch: u64,
        /// The version transferred.
        target: BatchSeq,
        /// Its roots.
        roots: Roots,
        /// The outcome.
        result: Result<(), StateError>,
    },
    /// A message to send (state served to a peer, the next chunk request, a cached reply).
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: Message,
    },
}

/// A transfer in progress.
struct Import {
    epoch: u64,
    peer: ReplicaId,
    roots: Roots,
    import: StateImport,
}

/// Runs [`ExecCommand`]s against an [`Executor`], logging what it executes to a [`Journal`]
/// when it has one.
pub struct ReplicaExecutor<A: Application> {
    executor: Executor<A>,
    import: Option<Import>,
    chunk_bytes: usize,
    journal: Option<Journal>,
    /// Why the journal failed: from then on nothing is executed or reported.
    halted: Option<String>,
}

impl<A: Application> ReplicaExecutor<A> {
    /// Wraps an executor (whose state should be empty, or a state this replica held).
    pub fn new(executor: Executor<A>) -> Self {
        Self {
            executor,
            import: None,
            chunk_bytes: CHUNK_BYTES,
            journal: None,
            halted: None,
        }
    }

    /// Logs every batch executed, and checkpoints every stable version and every state
    /// transferred, to `journal` (a durable replica; see [`crate::journal`]). Its events are
    /// then released only once what they depend on is durable.
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The journal, if the replica is durable.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Why the journal failed, if it did (a full or failing disk): the replica executes and
    /// reports nothing from then on, so that nothing it could not persist is acknowledged.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    fn halt(&mut self, doing: &str, err: eve_storage::DiskError) {
        if self.halted.is_none() {
            self.halted = Some(format!("the journal failed while {doing}: {err}"));
        }
    }

    /// Makes what the journal logged durable; returns whether the events of the commands
    /// applied since the last call may be released (not if the journal failed).
    pub fn sync(&mut self) -> bool {
        if self.halted.is_some() {
            return false;
        }
        if let Some(journal) = &mut self.journal
            && let Err(err) = journal.sync()
        {
            self.halt("syncing the log", err);
            return false;
        }
        true
    }

    /// Asks for chunks of at most `bytes` (clamped to `1..=CHUNK_BYTES`) in full transfers:
    /// smaller chunks mean more round trips, each within the message limit.
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.clamp(1, CHUNK_BYTES);
        self
    }

    /// The executor, for inspection.
    pub fn executor(&self) -> &Executor<A> {
        &self.executor
    }

    /// The executor, for fault injection in tests and simulations.
    pub fn executor_mut(&mut self) -> &mut Executor<A> {
        &mut self.executor
    }

    /// Runs one command and returns what it produced, once the journal (if any) holds what
    /// that depends on.
    pub fn apply(&mut self, command: ExecCommand) -> Vec<ExecEvent> {
        let events = self.apply_unsynced(command);
        if self.sync() { events } else { Vec::new() }
    }

    /// Runs one command without syncing the journal: its events may be released only after
    /// a [`sync`](Self::sync) that returns `true` (group commit: apply a burst of commands,
    /// sync once, release their events).
    pub fn apply_unsynced(&mut self, command: ExecCommand) -> Vec<ExecEvent> {
        if self.halted.is_some() {
            return Vec::new();
        }
        let events = self.run(command);
        // A journal that failed while it ran: nothing it produced may leave.
        if self.halted.is_some() {
            return Vec::new();
        }
        for event in &events {
            if let ExecEvent::StateApplied {
                target,
                roots,
                result: Ok(()),
                ..
            } = event
                && let Some(journal) = &mut self.journal
                && let Err(err) = journal.imported(self.executor.state(), *target, *roots)
            {
                self.halt("checkpointing a transferred state", err);
                return Vec::new();
            }
        }
        events
    }

    fn run(&mut self, command: ExecCommand) -> Vec<ExecEvent> {
        match command {
            ExecCommand::Execute { epoch, batch } => vec![self.execute(epoch, batch)],
            ExecCommand::Rollback { to } => {
                self.import = None;
                // The logic only rolls back to versions it holds (committed or later); a
                // failure would be a bookkeeping bug, which the next Execute reports.
                if self.executor.rollback(to).is_ok()
                    && let Some(journal) = &mut self.journal
                {
                    journal.rolled_back(to);
                }
                Vec::new()
            }
            ExecCommand::MarkStable { seq } => {
                if self.executor.mark_stable(seq).is_ok()
                    && let Some(journal) = &mut self.journal
                    && let Err(err) = journal.stable(self.executor.state(), seq)
                {
                    self.halt("writing a checkpoint", err);
                }
                Vec::new()
            }
            ExecCommand::ServeState {
                to,
                target,
                base,
                roots,
            } => vec![self.serve_state(to, target, base, roots)],
            ExecCommand::ServeChunk { to, request } => {
                let msg = match self.executor.state().export_chunk(&request) {
                    Ok(chunk) => Message::Chunk(chunk),
                    Err(_) => Message::StateReply(Box::new(StateReply::NotHeld {
                        target: request.version,
                    })),
                };
                vec![ExecEvent::Send {
                    to: NodeId::Replica(to),
                    msg,
                }]
            }
            ExecCommand::AnswerFromCache {
                client,
                request_no,
                committed,
                view,
            } => {
                let state = self.executor.state();
                match eve_exec::reply_cache::lookup_at(state, client, committed) {
                    Ok(Some(cached)) if cached.request_no == request_no => {
                        let reply = Reply {
                            client,
                            request_no,
                            seq: cached.seq,
                            body: cached.body,
                        };
                        vec![ExecEvent::Send {
                            to: NodeId::Client(client),
                            msg: Message::Reply { view, reply },
                        }]
                    }
                    _ => Vec::new(),
                }
            }
            ExecCommand::ImportDelta {
                epoch,
                roots,
                delta,
            } => {
                self.import = None;
                let target = delta.to;
                let result = self
                    .executor
                    .state_mut()
                    .import_delta(&delta, roots.new_root);
                vec![ExecEvent::StateApplied {
                    epoch,
                    target,
                    roots,
                    result,
                }]
            }
            ExecCommand::StartImport {
                epoch,
                peer,
                roots,
                manifest,
            } => {
                let target = manifest.version;
                if let Some(current) = &mut self.import
                    && current.import.version() == target
                    && current.roots == roots
                {
                    // A new round of the same transfer: keep the chunks already verified and
                    // ask the new peer for the rest.
                    current.peer = peer;
                    current.epoch = epoch;
                    return self.continue_import();
                }
                match StateImport::new(self.executor.state(), manifest, roots.new_root) {
                    Ok(import) => {
                        self.import = Some(Import {
                            epoch,
                            peer,
                            roots,
                            import,
                        });
                        self.continue_import()
                    }
                    Err(err) => vec![ExecEvent::StateApplied {
                        epoch,
                        target,
                        roots,
                        result: Err(err),
                    }],
                }
            }
            ExecCommand::ImportChunk { epoch, peer, chunk } => {
                let Some(current) = &mut self.import else {
                    return Vec::new();
                };
                if current.epoch != epoch || current.peer != peer {
                    return Vec::new();
                }
                match current.import.add_chunk(chunk) {
                    Ok(()) => self.continue_import(),
                    Err(err) => {
                        let current = self.import.take().expect("checked above");
                        vec![ExecEvent::StateApplied {
                            epoch,
                            target: current.import.version(),
                            roots: current.roots,
                            result: Err(err),
                        }]
                    }
                }
            }
        }
    }

    fn execute(&mut self, epoch: u64, batch: Batch) -> ExecEvent {
        let mode = if batch.sequential {
            ExecMode::Sequential
        } else {
            ExecMode::Parallel
        };
        match self
            .executor
            .execute(batch.seq, &batch.requests, batch.nondet, mode)
        {
            Ok(outcome) => {
                let roots = Roots {
                    prev_root: outcome.previous_root,
                    new_root: outcome.new_root,
                };
                if let Some(journal) = &mut self.journal
                    && let Err(err) =
                        journal.executed(&batch, roots, &outcome.replies, self.executor.state())
                {
                    self.halt("logging a batch", err);
                }
                ExecEvent::Executed {
                    epoch,
                    seq: batch.seq,
                    roots,
                    token: outcome.token,
                    replies: outcome.replies,
                }
            }
            Err(err) => ExecEvent::ExecuteFailed {
                epoch,
                seq: batch.seq,
                error: err.to_string(),
            },
        }
    }

    fn serve_state(
        &self,
        to: ReplicaId,
        target: BatchSeq,
        base: Option<BatchSeq>,
        roots: Roots,
    ) -> ExecEvent {
        let state = self.executor.state();
        let delta = base.map(|base| state.export_delta(base, target, DELTA_BYTES_MAX));
        let reply = match delta.unwrap_or(Err(StateError::UnknownVersion {
            version: target,
            stable: state.stable_version(),
            sealed: state.sealed_version(),
        })) {
            Ok(delta) => StateReply::Delta { roots, delta },
            Err(_) => match state.manifest(target) {
                Ok(manifest) => StateReply::Manifest { roots, manifest },
                Err(_) => StateReply::NotHeld { target },
            },
        };
        ExecEvent::Send {
            to: NodeId::Replica(to),
            msg: Message::StateReply(Box::new(reply)),
        }
    }

    /// Asks for the next chunk, or applies the finished transfer.
    fn continue_import(&mut self) -> Vec<ExecEvent> {
        let current = self.import.as_ref().expect("an import is in progress");
        if let Some(request) = current.import.next_request(self.chunk_bytes) {
            return vec![ExecEvent::Send {
                to: NodeId::Replica(current.peer),
                msg: Message::ChunkRequest(request),
            }];
        }
        let Import {
            epoch,
            roots,
            import,
            ..
        } = self.import.take().expect("checked above");
        let target = import.version();
        let result = import.apply(self.executor.state_mut());
        vec![ExecEvent::StateApplied {
            epoch,
            target,
            roots,
            result,
        }]
    }
}
