//! Every message of the protocol.
//!
//! Messages are plain data; the transport adds who sent them (`from`), authenticated by the
//! channel, so no message names its own sender.

use crate::certificate::{Certificate, Claims};
use bytes::Bytes;
use eve_exec::Token;
use eve_state::{Chunk, ChunkRequest, Delta, Manifest};
use eve_types::{BatchSeq, Digest, NonDet, Reply, Request, Signature, VerifierId, View};
use serde::{Deserialize, Serialize};

/// A batch as the primary orders it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The view whose primary ordered it.
    pub view: View,
    /// Its position in the order.
    pub seq: BatchSeq,
    /// The requests, at most one per client.
    pub requests: Vec<Request>,
    /// The non-deterministic inputs, chosen once by the primary.
    pub nondet: NonDet,
    /// Execute one request at a time in batch order (the first batch of a view, and
    /// primary-backup re-execution after a token mismatch).
    pub sequential: bool,
}

/// The roots a token binds: `token = H(seq || prev_root || new_root)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roots {
    /// The root before the batch.
    pub prev_root: Digest,
    /// The root after it.
    pub new_root: Digest,
}

impl Roots {
    /// The token of batch `seq` with these roots.
    pub fn token(&self, seq: BatchSeq) -> Token {
        Token::compute(seq, self.prev_root, self.new_root)
    }
}

/// The token of the version batch `seq` executes on, from the roots of the versions a replica
/// holds: the zero token for the first batch (the verifiers' token of the empty start), and
/// the zero token too where the roots are not held (a token that then counts nowhere).
pub fn base_token(roots: &std::collections::BTreeMap<BatchSeq, Roots>, seq: BatchSeq) -> Token {
    match seq.prev() {
        None | Some(BatchSeq(0)) => Token(Digest::ZERO),
        Some(prev) => roots
            .get(&prev)
            .map_or(Token(Digest::ZERO), |r| r.token(prev)),
    }
}

/// A verifier's lock: it sent `Commit` for `token` at batch `seq` in view `view`. A correct
/// verifier holds at most one lock per `(view, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Lock {
    /// The view in which the lock was made (the batch's own view).
    pub view: View,
    /// The batch.
    pub seq: BatchSeq,
    /// The token.
    pub token: Token,
}

impl Lock {
    /// The lock on `token` at batch `seq` made in view `view`.
    pub fn new(view: View, seq: BatchSeq, token: Token) -> Self {
        Self { view, seq, token }
    }
}

/// A verifier's answer to [`Message::Recover`]: what it knows that a participant restarted
/// without memory must not contradict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryState {
    /// The view the verifier entered last.
    pub entered: View,
    /// The batch that view starts after, with its token, where the verifier knows it (not in
    /// view 0, which starts at the beginning).
    pub entered_start: Option<(BatchSeq, Token)>,
    /// The highest view the verifier is in or has asked to move to.
    pub view: View,
    /// Its last committed batch and that batch's token.
    pub committed: (BatchSeq, Token),
    /// Its locks above `committed` made in `entered`, its own and those it learned when it
    /// recovered (with `r >= 1`: its highest lock, whichever view it was made in).
    pub locked: Vec<Lock>,
    /// With `r >= 1`: the certificates of `committed` and `locked`, which the restarted
    /// participant checks before it believes them.
    pub claims: Option<Claims>,
}

/// With `r >= 1`: what proves a `ViewChange`'s claims, and its sender's signature over it
/// ([`view_change_payload`](crate::certificate::view_change_payload)), so that the leader can
/// relay it in its `NewView`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChangeProof {
    /// The certificates of the claims.
    pub claims: Claims,
    /// The sender's signature.
    pub signature: Signature,
}

/// A signed `ViewChange` as a `NewView` relays it (with `r >= 1`): its claims are those of
/// the certificates, and its new view the `NewView`'s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenViewChange {
    /// Its sender.
    pub from: VerifierId,
    /// The view its sender was in.
    pub view: View,
    /// Its claims and signature.
    pub proof: ViewChangeProof,
}

/// A peer's answer to a [`Message::StateRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateReply {
    /// The objects that changed from the requester's base to the target version.
    Delta {
        /// The roots of the target version, to check against the agreed token.
        roots: Roots,
        /// The changes.
        delta: Delta,
    },
    /// The target version's manifest, for a full transfer in chunks.
    Manifest {
        /// The roots of the target version.
        roots: Roots,
        /// Every bucket hash of the target version.
        manifest: Manifest,
    },
    /// The peer does not hold the version asked for.
    NotHeld {
        /// The version asked for.
        target: BatchSeq,
    },
}

/// A protocol message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Client to replica, and replica to primary (forwarded).
    Request(Request),
    /// Replica to client: the result of a committed request.
    Reply {
        /// The replica's view, so the client learns the primary.
        view: View,
        /// The reply.
        reply: Reply,
    },
    /// Primary to execution replicas.
    ExecuteBatch(Batch),
    /// Execution replica to verifiers (and backup to primary in primary-backup mode).
    Verify {
        /// The replica's view.
        view: View,
        /// The batch.
        seq: BatchSeq,
        /// The replica's token for it.
        token: Token,
        /// The token of the version it executed the batch on (`seq - 1`; zero for the first
        /// batch). Verifiers count a token only if it was executed on the agreed version: a
        /// replica that executed ahead on a version that lost, together with a lying one,
        /// must not agree on a state nobody can fetch.
        prev: Token,
    },
    /// Execution replica to verifiers: requests reached the primary of `view` but were not
    /// ordered in time.
    Suspect {
        /// The view whose primary is suspected.
        view: View,
    },
    /// Execution replica to verifiers: tell me the last committed batch and the current view
    /// (a replica that restarted, or that suspects it missed a view change).
    QueryCommitted,
    /// Verifier to verifiers: a token reached the token quorum (only when `r >= 1`).
    Prepare {
        /// The verifiers' view.
        view: View,
        /// The batch.
        seq: BatchSeq,
        /// The token.
        token: Token,
        /// The sender's signature over the vote (with `r >= 1`), for certificates.
        signature: Option<Signature>,
    },
    /// Verifier to verifiers: ready to commit `token` for `seq`. In primary-backup mode,
    /// primary to backup: the batch committed.
    Commit {
        /// The view.
        view: View,
        /// The batch.
        seq: BatchSeq,
        /// The token.
        token: Token,
        /// The sender's signature over the vote (verifiers with `r >= 1`), for certificates.
        signature: Option<Signature>,
    },
    /// Verifier to a lagging verifier (with `r >= 1`): the commit certificate of a batch it
    /// missed, which proves on its own that the batch committed.
    Certified(Box<Certificate>),
    /// Verifier to execution replicas: `token` is agreed for `seq`. With `sequential`, the
    /// verifiers moved to `view`, whose first batches follow `seq` and execute sequentially.
    Verified {
        /// The verifiers' view.
        view: View,
        /// The batch.
        seq: BatchSeq,
        /// The agreed token.
        token: Token,
        /// A new view starts after `seq`.
        sequential: bool,
    },
    /// Verifier to verifiers: move to `new_view`.
    ViewChange {
        /// The view asked for.
        new_view: View,
        /// The sender's current view, in which it made the locks below.
        view: View,
        /// The sender's last committed batch and its token.
        committed: (BatchSeq, Token),
        /// The sender's locks above `committed`, each with the view it was made in (with
        /// `r >= 1`, only the highest, whichever view it was made in).
        locked: Vec<Lock>,
        /// With `r >= 1`: the certificates of the claims and the sender's signature.
        proof: Option<Box<ViewChangeProof>>,
    },
    /// The leader of `view` to verifiers: the view starts after `start`.
    NewView {
        /// The new view.
        view: View,
        /// The last batch kept.
        start: BatchSeq,
        /// Its token.
        token: Token,
        /// With `r >= 1`: the verifier quorum of signed `ViewChange`s the start was computed
        /// from; every verifier checks them and computes the start again before it follows.
        proof: Vec<ProvenViewChange>,
    },
    /// Execution replica to peer: send state to bring my `base` version to `target`.
    StateRequest {
        /// The version wanted.
        target: BatchSeq,
        /// The requester's last committed version, if its state is that version's: then a
        /// delta from it may do. `None` asks for the whole state (a replica that restarted
        /// empty, or whose delta import failed).
        base: Option<BatchSeq>,
    },
    /// Peer to execution replica.
    StateReply(Box<StateReply>),
    /// Execution replica to peer: objects of some buckets (full transfer).
    ChunkRequest(ChunkRequest),
    /// Peer to execution replica.
    Chunk(Chunk),
    /// A replica or verifier that restarted without memory, to every verifier: tell me what
    /// you know (the answer echoes `nonce`, so answers to an earlier incarnation do not count).
    Recover {
        /// Drawn afresh by the driver at each restart.
        nonce: u64,
    },
    /// Verifier to a restarted participant.
    RecoverReply {
        /// The nonce of the `Recover` answered.
        nonce: u64,
        /// What the verifier knows.
        state: Box<RecoveryState>,
    },
    /// Primary-backup: primary to backup when there is nothing else to send.
    Heartbeat {
        /// The primary's view.
        view: View,
        /// The primary's last committed batch and its token, when it knows the token: a
        /// backup that restarted, or lost the last `Commit`, learns from it that it is behind.
        committed: Option<(BatchSeq, Token)>,
    },
    /// Verifier to verifiers: batches after `committed` did not commit in time here (votes
    /// get lost). Each peer answers with `Verified` for the batches it committed after it,
    /// and repeats its `Prepare` and `Commit` votes of `view`.
    Lagging {
        /// The sender's view.
        view: View,
        /// The sender's last committed batch.
        committed: BatchSeq,
    },
}

impl Message {
    /// A short name, for counters and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Request(_) => "request",
            Message::Reply { .. } => "reply",
            Message::ExecuteBatch(_) => "execute-batch",
            Message::Verify { .. } => "verify",
            Message::Suspect { .. } => "suspect",
            Message::QueryCommitted => "query-committed",
            Message::Prepare { .. } => "prepare",
            Message::Commit { .. } => "commit",
            Message::Certified(_) => "certified",
            Message::Verified { .. } => "verified",
            Message::ViewChange { .. } => "view-change",
            Message::NewView { .. } => "new-view",
            Message::StateRequest { .. } => "state-request",
            Message::StateReply(_) => "state-reply",
            Message::ChunkRequest(_) => "chunk-request",
            Message::Chunk(_) => "chunk",
            Message::Recover { .. } => "recover",
            Message::RecoverReply { .. } => "recover-reply",
            Message::Heartbeat { .. } => "heartbeat",
            Message::Lagging { .. } => "lagging",
        }
    }

    /// The wire form (postcard).
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a message cannot fail"))
    }

    /// Decodes a message, refusing anything longer than
    /// [`MESSAGE_SIZE_BYTES_MAX`](eve_types::limits::MESSAGE_SIZE_BYTES_MAX).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > eve_types::limits::MESSAGE_SIZE_BYTES_MAX {
            return Err(DecodeError::TooLarge { bytes: bytes.len() });
        }
        postcard::from_bytes(bytes).map_err(|err| DecodeError::Malformed(err.to_string()))
    }
}

/// Why bytes did not decode into a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than the message limit.
    #[error("message of {bytes} bytes exceeds MESSAGE_SIZE_BYTES_MAX")]
    TooLarge {
        /// Its length.
        bytes: usize,
    },
    /// Not a message.
    #[error("malformed message: {0}")]
    Malformed(String),
}
