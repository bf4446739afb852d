//! Checks that do not trust the code they judge: the committed batches replayed, request by
//! request, through the key-value store's sequential specification, and the committed object
//! maps of the replicas compared directly.
//!
//! The replicas' own roots and tokens come from the state store and executor under test; a
//! bug shared by every replica (in the store, the executor or the mixer) would make them agree
//! on a wrong state. The reference below knows nothing of them: it takes the requests of each
//! committed batch in order, skips what the reply cache answers (a client's request numbers
//! only grow), and asks the per-key specification of [`eve_apps::KvStore`] (the one the
//! linearizability checker uses) whether each reply a correct replica released is what a
//! sequential execution gives.

use crate::app::RACY_OP;
use crate::kv_history::key_model::KeyState;
use crate::kv_history::key_ops;
use crate::linearizability::Model;
use crate::report::RunReport;
use bytes::Bytes;
use eve_apps::{KvOp, KvReply};
use eve_types::{BatchSeq, ClientId, ReplicaId, Request, RequestNo};
use std::collections::BTreeMap;

/// Most states the reference keeps for one key while replies are unknown (requests whose
/// reply no correct replica released); past it the key is no longer judged, and counted.
const KEY_STATES_MAX: usize = 256;

/// The committed batches seen so far, from the replicas' own executions.
#[derive(Default)]
pub struct Reference {
    /// Each committed batch's requests, and the replica whose execution recorded it.
    committed: BTreeMap<BatchSeq, (ReplicaId, Vec<Request>)>,
}

impl Reference {
    /// `replica` released a reply of `seq`, which it committed with its own token, having
    /// executed these requests there.
    pub fn committed(&mut self, replica: ReplicaId, seq: BatchSeq, requests: &[Request]) {
        // Correct replicas may commit different batches at one position with equal effect
        // (a duplicate that the reply cache answers, commuting requests in another order from
        // a later primary): the roots check judges their states; the replay takes the first.
        self.committed
            .entry(seq)
            .or_insert_with(|| (replica, requests.to_vec()));
    }

    /// Replays the committed batches through the sequential specification and judges every
    /// released reply; returns how many requests were judged.
    pub fn check(
        &self,
        released: &BTreeMap<(ClientId, RequestNo), Bytes>,
        report: &mut RunReport,
    ) -> u64 {
        let mut keys: BTreeMap<Bytes, Option<Vec<KeyState>>> = BTreeMap::new();
        let mut last_no: BTreeMap<ClientId, RequestNo> = BTreeMap::new();
        let mut judged = 0;
        let mut expected = BatchSeq(1);
        for (seq, (_, requests)) in &self.committed {
            if *seq != expected {
                // A batch no correct replica released replies for (every replica that committed
                // it fast-forwarded over it or fetched it): what it did is unknown, so the
                // replay judges nothing from here on.
                report.counts.reference_keys_unjudged += 1;
                return judged;
            }
            expected = seq.next();
            for request in requests {
                if last_no
                    .get(&request.client)
                    .is_some_and(|&n| n >= request.request_no)
                {
                    continue; // answered from the reply cache, never executed again
                }
                last_no.insert(request.client, request.request_no);
                if request.op.first() == Some(&RACY_OP) {
                    continue;
                }
                let Ok(op) = KvOp::decode(&request.op) else {
                    continue;
                };
                let reply = released
                    .get(&(request.client, request.request_no))
                    .map(|body| {
                        KvReply::decode(body).unwrap_or_else(|e| KvReply::Error(e.to_string()))
                    });
                judged += u64::from(reply.is_some());
                for (key, key_op) in key_ops(&op) {
                    let entry = keys
                        .entry(key.clone())
                        .or_insert_with(|| Some(vec![KeyState::default()]));
                    let Some(states) = entry else { continue };
                    let mut next: Vec<KeyState> = states
                        .iter()
                        .flat_map(|s| s.step(&key_op, reply.as_ref()))
                        .collect();
                    next.sort_by(|a, b| a.0.cmp(&b.0));
                    next.dedup();
                    if next.is_empty() {
                        report.violation(format!(
                            "the reply released for {} {} (batch {seq}, key {:?}) is not what a \
                             sequential execution of the committed batches gives",
                            request.client,
                            request.request_no,
                            String::from_utf8_lossy(&key)
                        ));
                        *entry = None;
                    } else if next.len() > KEY_STATES_MAX {
                        report.counts.reference_keys_unjudged += 1;
                        *entry = None;
                    } else {
                        *states = next;
                    }
                }
            }
        }
        judged
    }
}
