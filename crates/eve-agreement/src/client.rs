//! The client: numbers its requests, sends each to the primary, retransmits to every replica
//! when no result arrives in time, and accepts a result only once `r + 1` replicas sent the
//! same reply (so at least one correct replica vouches for it).

use crate::message::Message;
use crate::node::{Drops, NodeId, Output};
use crate::time::Time;
use bytes::Bytes;
use eve_types::{
    BatchSeq, ClientId, ReplicaId, Request, RequestError, RequestNo, ValidConfig, View,
};
use std::collections::{BTreeMap, VecDeque};

/// The wait between retransmissions doubles at most this many times: up to 8 times
/// `client_retransmit_ms`.
const RETRANSMIT_BACKOFF_DOUBLINGS_MAX: u64 = 3;

/// A request accepted by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The request.
    pub request_no: RequestNo,
    /// The reply `r + 1` replicas agreed on.
    pub body: Bytes,
    /// The batch that executed it.
    pub seq: BatchSeq,
    /// When it was submitted.
    pub submitted: Time,
}

/// Why a request could not be submitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The client has a request outstanding; it sends one at a time.
    #[error("request {0} is still outstanding; a client sends one request at a time")]
    Busy(RequestNo),
    /// The operation is not a valid request.
    #[error(transparent)]
    Invalid(#[from] RequestError),
}

#[derive(Clone, Debug)]
struct Outstanding {
    request: Request,
    submitted: Time,
    retransmit_at: Time,
    retransmits: u64,
    replies: BTreeMap<ReplicaId, (Bytes, BatchSeq)>,
}

/// A client's protocol logic.
pub struct Client {
    id: ClientId,
    n_exec: usize,
    quorum: usize,
    retransmit_ms: u64,
    view: View,
    next_no: RequestNo,
    outstanding: Option<Outstanding>,
    outputs: VecDeque<Output>,
    retransmissions: u64,
    drops: Drops,
    /// Signs requests (with `r >= 1`), under the cluster's id.
    signer: Option<(
        std::sync::Arc<dyn crate::auth::RequestSigner>,
        eve_types::Digest,
    )>,
}

impl Client {
    /// A client whose first request will be number 1.
    pub fn new(id: ClientId, config: &ValidConfig) -> Self {
        Self::resume(id, config, RequestNo(1))
    }

    /// A client that continues numbering at `next` (after a restart of the client).
    pub fn resume(id: ClientId, config: &ValidConfig, next: RequestNo) -> Self {
        let sizes = config.sizes();
        Self {
            id,
            n_exec: sizes.n_exec,
            quorum: sizes.client_reply_quorum,
            retransmit_ms: config.client_retransmit_ms,
            view: View(0),
            next_no: next,
            outstanding: None,
            outputs: VecDeque::new(),
            retransmissions: 0,
            drops: Drops::default(),
            signer: None,
        }
    }

    /// Signs every request with `signer`, for the cluster `config` names: required when the
    /// cluster tolerates Byzantine replicas (`r >= 1`), whose replicas refuse unsigned
    /// requests.
    pub fn with_signer(
        mut self,
        signer: std::sync::Arc<dyn crate::auth::RequestSigner>,
        config: &ValidConfig,
    ) -> Self {
        self.signer = Some((signer, config.cluster_id));
        self
    }

    /// This client.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The request waiting for its result, if any.
    pub fn outstanding(&self) -> Option<&Request> {
        self.outstanding.as_ref().map(|o| &o.request)
    }

    /// Retransmissions so far.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }

    /// Messages dropped, by reason.
    pub fn drops(&self) -> &Drops {
        &self.drops
    }

    /// Submits an operation; it goes to the primary the client believes in.
    pub fn submit(&mut self, now: Time, op: impl Into<Bytes>) -> Result<RequestNo, ClientError> {
        if let Some(outstanding) = &self.outstanding {
            return Err(ClientError::Busy(outstanding.request.request_no));
        }
        let mut request = Request::new(self.id, self.next_no, op)?;
        if let Some((signer, cluster)) = &self.signer {
            request.signature = Some(signer.sign(&request.signing_payload(cluster)));
        }
        self.next_no = self.next_no.next();
        let primary = ReplicaId((self.view.0 % self.n_exec as u64) as u32);
        self.outputs.push_back(Output::Send {
            to: NodeId::Replica(primary),
            msg: Message::Request(request.clone()),
        });
        let request_no = request.request_no;
        self.outstanding = Some(Outstanding {
            request,
            submitted: now,
            retransmit_at: now.plus_ms(self.retransmit_ms),
            retransmits: 0,
            replies: BTreeMap::new(),
        });
        Ok(request_no)
    }

    /// Handles a message; returns the completed request when `r + 1` replies match.
    pub fn handle_message(&mut self, from: NodeId, msg: Message) -> Option<Completion> {
        let (NodeId::Replica(replica), Message::Reply { view, reply }) = (from, msg) else {
            self.drops.count("unexpected-message");
            return None;
        };
        if replica.0 as usize >= self.n_exec || reply.client != self.id {
            self.drops.count("reply-not-for-this-client");
            return None;
        }
        self.view = self.view.max(view);
        let outstanding = self.outstanding.as_mut()?;
        if reply.request_no != outstanding.request.request_no {
            return None;
        }
        outstanding
            .replies
            .insert(replica, (reply.body.clone(), reply.seq));
        let matching = outstanding
            .replies
            .values()
            .filter(|(body, _)| *body == reply.body)
            .count();
        if matching < self.quorum {
            return None;
        }
        let done = self.outstanding.take().expect("checked above");
        Some(Completion {
            request_no: done.request.request_no,
            body: reply.body,
            seq: reply.seq,
            submitted: done.submitted,
        })
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn next_timeout(&self) -> Option<Time> {
        self.outstanding.as_ref().map(|o| o.retransmit_at)
    }

    /// Retransmits the outstanding request to every replica when its time has come.
    pub fn handle_timeout(&mut self, now: Time) {
        let Some(outstanding) = &mut self.outstanding else {
            return;
        };
        if outstanding.retransmit_at > now {
            return;
        }
        outstanding.retransmits += 1;
        let backoff = 1u64
            << outstanding
                .retransmits
                .min(RETRANSMIT_BACKOFF_DOUBLINGS_MAX);
        outstanding.retransmit_at = now.plus_ms(self.retransmit_ms * backoff);
        self.retransmissions += 1;
        for r in 0..self.n_exec as u32 {
            self.outputs.push_back(Output::Send {
                to: NodeId::Replica(ReplicaId(r)),
                msg: Message::Request(outstanding.request.clone()),
            });
        }
    }

    /// The next effect to carry out.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}
