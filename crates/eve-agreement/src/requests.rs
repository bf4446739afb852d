//! What both kinds of execution replica (Eve and primary-backup) do with client requests
//! before ordering: check them, answer them from the table of committed replies, and cut
//! batches of at most one request per client.

use crate::limits::REPLY_TABLE_MAX;
use crate::node::NodeId;
use crate::time::Time;
use eve_types::{BatchSeq, ClientId, NonDet, Reply, Request, RequestNo, View, splitmix64};
use std::collections::{BTreeMap, BTreeSet};

/// Why a request that arrived must be dropped, if it must: it is invalid, or a client sent it
/// in another client's name.
pub(crate) fn drop_reason(from: NodeId, request: &Request) -> Option<&'static str> {
    if request.check().is_err() {
        return Some("invalid-request");
    }
    match from {
        NodeId::Client(client) if client != request.client => Some("request-for-another-client"),
        _ => None,
    }
}

/// What the reply table knows of a request.
pub(crate) enum Seen<'a> {
    /// Not committed yet, as far as this replica knows.
    New,
    /// Committed: here is its reply.
    Answered(&'a Reply),
    /// Older than the client's last committed request.
    Stale,
}

/// The last committed reply of each client, for answering retransmissions; at most
/// [`REPLY_TABLE_MAX`] clients, the oldest forgotten first (the reply cache in the state still
/// answers them, through a batch).
#[derive(Debug, Default)]
pub(crate) struct ReplyTable {
    replies: BTreeMap<ClientId, Reply>,
}

impl ReplyTable {
    /// What the table knows of `request`.
    pub fn seen(&self, request: &Request) -> Seen<'_> {
        match self.replies.get(&request.client) {
            Some(reply) if reply.request_no == request.request_no => Seen::Answered(reply),
            Some(reply) if reply.request_no > request.request_no => Seen::Stale,
            _ => Seen::New,
        }
    }

    /// Whether `request`, or a later one of its client, committed.
    pub fn answered(&self, request: &Request) -> bool {
        !matches!(self.seen(request), Seen::New)
    }

    /// Remembers a committed reply.
    pub fn record(&mut self, reply: Reply) {
        if self.replies.len() >= REPLY_TABLE_MAX && !self.replies.contains_key(&reply.client) {
            self.replies.pop_first();
        }
        self.replies.insert(reply.client, reply);
    }
}

/// Whether `client` already has [`CLIENT_IN_FLIGHT_MAX`](crate::limits::CLIENT_IN_FLIGHT_MAX)
/// requests in `in_flight` (pending or in uncommitted batches): a range over the set, cut
/// short at the limit.
pub(crate) fn client_at_limit(
    in_flight: &BTreeSet<(ClientId, RequestNo)>,
    client: ClientId,
) -> bool {
    let max = crate::limits::CLIENT_IN_FLIGHT_MAX;
    in_flight
        .range((client, RequestNo(0))..=(client, RequestNo(u64::MAX)))
        .take(max)
        .count()
        >= max
}

/// The non-deterministic inputs a primary attaches to batch `seq` of `view` cut at `now`: its
/// clock, and a seed that differs for every batch.
pub(crate) fn batch_nondet(view: View, seq: BatchSeq, now: Time) -> NonDet {
    NonDet {
        time_ms: now.as_ms(),
        seed: splitmix64(view.0 ^ splitmix64(seq.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_types::RequestNo;

    fn request(client: u64, no: u64) -> Request {
        Request::new(ClientId(client), RequestNo(no), &b"op"[..]).unwrap()
    }

    #[test]
    fn the_reply_table_tells_new_answered_and_stale_apart() {
        let mut table = ReplyTable::default();
        let reply = Reply {
            client: ClientId(1),
            request_no: RequestNo(5),
            seq: BatchSeq(2),
            body: "r".into(),
        };
        table.record(reply.clone());
        assert!(matches!(table.seen(&request(1, 5)), Seen::Answered(r) if *r == reply));
        assert!(matches!(table.seen(&request(1, 4)), Seen::Stale));
        assert!(matches!(table.seen(&request(1, 6)), Seen::New));
        assert!(matches!(table.seen(&request(2, 1)), Seen::New));
        assert!(table.answered(&request(1, 3)) && !table.answered(&request(1, 6)));
    }

    #[test]
    fn requests_in_another_clients_name_are_refused() {
        assert_eq!(
            drop_reason(NodeId::Client(ClientId(2)), &request(1, 1)),
            Some("request-for-another-client")
        );
        assert_eq!(
            drop_reason(NodeId::Client(ClientId(1)), &request(1, 1)),
            None
        );
    }
}
