//! The invariants checked while a simulation runs and after it ends.

use crate::kv_history::{KvEvent, check_kv_history};
use crate::linearizability::SearchBudget;
use crate::report::RunReport;
use bytes::Bytes;
use eve_agreement::Time;
use eve_apps::{KvOp, KvReply};
use eve_types::{BatchSeq, ClientId, Digest, ReplicaId, Reply, RequestNo};
use std::collections::BTreeMap;

/// What the checks have seen so far.
#[derive(Default)]
pub struct Checks {
    /// The root every correct replica committed at each batch (the first one seen).
    roots: BTreeMap<BatchSeq, (ReplicaId, Digest)>,
    /// The last committed batch seen per replica (to check each once).
    seen: BTreeMap<ReplicaId, BatchSeq>,
    /// Replies correct replicas released, by request.
    released: BTreeMap<(ClientId, RequestNo), (ReplicaId, Bytes)>,
    /// The key-value history the clients saw.
    history: Vec<KvEvent>,
}

impl Checks {
    /// A replica restarted empty: its next commits are checked afresh.
    pub fn forget_replica(&mut self, replica: ReplicaId) {
        self.seen.remove(&replica);
    }

    /// A correct replica has committed up to `seq` with state `root`: every correct replica
    /// must commit the same state at the same batch.
    pub fn committed(
        &mut self,
        replica: ReplicaId,
        seq: BatchSeq,
        root: Digest,
        report: &mut RunReport,
    ) {
        if self.seen.get(&replica) == Some(&seq) || seq == BatchSeq(0) {
            return;
        }
        self.seen.insert(replica, seq);
        match self.roots.get(&seq) {
            None => {
                self.roots.insert(seq, (replica, root));
            }
            Some((other, expected)) if *expected != root => report.violation(format!(
                "committed roots differ at {seq}: {replica} has {}, {other} has {}",
                root.short(),
                expected.short()
            )),
            Some(_) => {}
        }
    }

    /// Committed states form one chain: the roots a replica holds for its committed batch
    /// `seq` end in the root its store has there, and start at the root every correct replica
    /// committed at `seq - 1` (the token of `seq` binds both).
    pub fn chain(
        &mut self,
        replica: ReplicaId,
        seq: BatchSeq,
        root: Digest,
        roots: eve_agreement::Roots,
        report: &mut RunReport,
    ) {
        if roots.new_root != root {
            report.violation(format!(
                "{replica} committed {seq} with roots ending in {}, but its store holds {}",
                roots.new_root.short(),
                root.short()
            ));
        }
        let Some(prev) = seq.prev() else { return };
        if let Some((other, prev_root)) = self.roots.get(&prev)
            && *prev_root != roots.prev_root
        {
            report.violation(format!(
                "committed states do not chain at {seq}: {replica}'s batch starts from {}, \
                 but {other} committed {} at {prev}",
                roots.prev_root.short(),
                prev_root.short()
            ));
        }
    }

    /// Every reply correct replicas released, by request.
    pub fn released_bodies(&self) -> BTreeMap<(ClientId, RequestNo), Bytes> {
        self.released
            .iter()
            .map(|(key, (_, body))| (*key, body.clone()))
            .collect()
    }

    /// A correct replica released a committed reply: correct replicas must agree on it.
    pub fn released(&mut self, replica: ReplicaId, reply: &Reply, report: &mut RunReport) {
        let key = (reply.client, reply.request_no);
        match self.released.get(&key) {
            None => {
                self.released.insert(key, (replica, reply.body.clone()));
            }
            Some((other, body)) if *body != reply.body => report.violation(format!(
                "{replica} and {other} released different replies to {} {}",
                reply.client, reply.request_no
            )),
            Some(_) => {}
        }
    }

    /// A client accepted a reply: it must be the one the committed state produced.
    pub fn accepted(
        &mut self,
        client: ClientId,
        request_no: RequestNo,
        body: &Bytes,
        report: &mut RunReport,
    ) {
        match self.released.get(&(client, request_no)) {
            Some((_, released)) if released == body => {}
            Some(_) => report.violation(format!(
                "{client} accepted a reply to {request_no} that no correct replica committed"
            )),
            None => report.violation(format!(
                "{client} accepted a reply to {request_no} before any correct replica released one"
            )),
        }
    }

    /// A completed key-value call.
    pub fn history(
        &mut self,
        client: ClientId,
        invoked: Time,
        completed: Time,
        op: KvOp,
        body: &Bytes,
    ) {
        let reply = KvReply::decode(body).unwrap_or_else(|err| KvReply::Error(err.to_string()));
        self.history.push(KvEvent {
            client: client.0,
            invoke: invoked.0,
            complete: Some(completed.0),
            op,
            reply: Some(reply),
        });
    }

    /// A key-value call that never completed.
    pub fn pending(&mut self, client: ClientId, invoked: Time, op: KvOp) {
        self.history.push(KvEvent {
            client: client.0,
            invoke: invoked.0,
            complete: None,
            op,
            reply: None,
        });
    }

    /// Checks the whole history for linearizability, key by key.
    pub fn check_history(&mut self, report: &mut RunReport) {
        report.slowest_call = self
            .history
            .iter()
            .filter_map(|e| Some(((e.complete? - e.invoke) / 1000, e.client, e.invoke / 1000)))
            .max();
        match check_kv_history(&self.history, SearchBudget::default()) {
            Ok(stats) => report.counts.linearizable_calls += stats.calls as u64,
            Err(violation) => report.violation(format!("history is not linearizable: {violation}")),
        }
    }
}
