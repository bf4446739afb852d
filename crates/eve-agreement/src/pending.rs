//! The primary's queue of requests waiting for a batch, bounded in requests and in bytes.

use crate::limits::{PENDING_REQUEST_BYTES_MAX, PENDING_REQUESTS_MAX};
use eve_types::limits::BATCH_OP_BYTES_MAX;
use eve_types::{BatchSeq, Request};
use std::collections::{BTreeSet, VecDeque};

/// Requests waiting for a batch, in arrival order, with the bytes their operations hold.
/// Neither bound can be passed: a request that does not fit is refused (its client
/// retransmits), so a flood of large requests cannot exhaust memory.
#[derive(Debug, Default)]
pub(crate) struct PendingQueue {
    requests: VecDeque<Request>,
    bytes: usize,
}

impl PendingQueue {
    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Operation bytes of the requests waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a full batch waits: `max` requests, or [`BATCH_OP_BYTES_MAX`] bytes.
    pub fn holds_full_batch(&self, max: usize) -> bool {
        self.requests.len() >= max || self.bytes >= BATCH_OP_BYTES_MAX
    }

    /// Whether a primary cuts a batch now, with `next` the batch it would cut and
    /// `committed` the last committed one: never past the pipeline's `depth`; otherwise when a
    /// full batch waits, when the batch timer fired (`timer`), or at once when no batch is
    /// uncommitted, so that an idle cluster does not wait for the timer and a busy one
    /// gathers requests while its batches are in flight.
    pub fn should_cut(
        &self,
        batch_max: usize,
        timer: bool,
        next: BatchSeq,
        committed: BatchSeq,
        depth: u64,
    ) -> bool {
        let idle = next.0 <= committed.0 + 1;
        !self.is_empty()
            && next.0 <= committed.0 + depth
            && (self.holds_full_batch(batch_max) || timer || idle)
    }

    /// Why `request` cannot join the queue now, if it cannot: the drop reason to count.
    pub fn refusal(&self, request: &Request) -> Option<&'static str> {
        if self.requests.len() >= PENDING_REQUESTS_MAX {
            Some("pending-full")
        } else if self.bytes + request.op.len() > PENDING_REQUEST_BYTES_MAX {
            Some("pending-bytes-full")
        } else {
            None
        }
    }

    /// Adds `request` at the end, or gives the reason it does not fit.
    pub fn push(&mut self, request: Request) -> Result<(), &'static str> {
        if let Some(reason) = self.refusal(&request) {
            return Err(reason);
        }
        self.bytes += request.op.len();
        self.requests.push_back(request);
        Ok(())
    }

    /// Takes up to `max` requests and at most [`BATCH_OP_BYTES_MAX`] operation bytes (always
    /// at least one request), at most one request per client (so every reply of a batch is
    /// covered by the reply cache, and so by the token); later requests of a client wait in
    /// order.
    pub fn take_batch(&mut self, max: usize) -> Vec<Request> {
        let mut clients = BTreeSet::new();
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut kept = VecDeque::new();
        while let Some(request) = self.requests.pop_front() {
            let op = request.op.len();
            if !batch.is_empty() && batch_bytes + op > BATCH_OP_BYTES_MAX {
                // Full in bytes: this request and every later one wait, in order.
                self.requests.push_front(request);
                break;
            }
            if clients.insert(request.client) {
                self.bytes -= op;
                batch_bytes += op;
                batch.push(request);
            } else {
                kept.push_back(request);
            }
            if batch.len() == max {
                break;
            }
        }
        kept.append(&mut self.requests);
        self.requests = kept;
        batch
    }

    /// Takes every request, in order, leaving the queue empty.
    pub fn take_all(&mut self) -> VecDeque<Request> {
        self.bytes = 0;
        std::mem::take(&mut self.requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_types::{ClientId, RequestNo};

    fn request(client: u64, no: u64) -> Request {
        Request::new(ClientId(client), RequestNo(no), &b"op"[..]).unwrap()
    }

    fn queue(requests: impl IntoIterator<Item = Request>) -> PendingQueue {
        let mut queue = PendingQueue::default();
        for request in requests {
            queue.push(request).unwrap();
        }
        queue
    }

    #[test]
    fn a_batch_takes_one_request_per_client_and_keeps_the_rest_in_order() {
        let mut pending = queue([
            request(1, 1),
            request(1, 2),
            request(2, 1),
            request(3, 1),
            request(1, 3),
        ]);
        let batch = pending.take_batch(10);
        assert_eq!(batch, vec![request(1, 1), request(2, 1), request(3, 1)]);
        assert_eq!(pending.bytes(), 4, "the bytes of what is left");
        assert_eq!(
            pending.take_all(),
            VecDeque::from([request(1, 2), request(1, 3)])
        );
        assert_eq!((pending.len(), pending.bytes()), (0, 0));
        let mut pending = queue([request(1, 1), request(2, 1)]);
        assert_eq!(
            pending.take_batch(1),
            vec![request(1, 1)],
            "the size limit holds"
        );
        assert_eq!(pending.bytes(), 2);
    }

    #[test]
    fn a_batch_is_cut_when_idle_full_or_timed_out_and_never_past_the_pipeline() {
        let (seq, depth) = (BatchSeq, 4);
        let empty = PendingQueue::default();
        assert!(
            !empty.should_cut(10, true, seq(1), seq(0), depth),
            "nothing to cut"
        );
        let one = queue([request(1, 1)]);
        assert!(
            one.should_cut(10, false, seq(1), seq(0), depth),
            "idle: at once"
        );
        assert!(
            !one.should_cut(10, false, seq(2), seq(0), depth),
            "busy: it waits"
        );
        assert!(
            one.should_cut(10, true, seq(2), seq(0), depth),
            "until the timer fires"
        );
        assert!(
            one.should_cut(1, false, seq(2), seq(0), depth),
            "or the batch is full"
        );
        assert!(
            !one.should_cut(1, true, seq(5), seq(0), depth),
            "never past the pipeline's depth"
        );
        assert!(one.should_cut(1, true, seq(5), seq(1), depth));
    }

    #[test]
    fn a_batch_of_large_requests_fits_in_one_message() {
        use eve_types::limits::{BATCH_REQUESTS_MAX, MESSAGE_SIZE_BYTES_MAX, OP_BYTES_MAX};
        let mut pending = PendingQueue::default();
        for client in 0..BATCH_REQUESTS_MAX as u64 {
            let op = vec![1u8; if client % 2 == 0 { OP_BYTES_MAX } else { 1 }];
            if pending
                .push(Request::new(ClientId(client), RequestNo(u64::MAX), op).unwrap())
                .is_err()
            {
                break;
            }
        }
        let before = pending.len();
        let requests = pending.take_batch(BATCH_REQUESTS_MAX);
        assert!(
            requests.len() < before,
            "the byte bound cut the batch short"
        );
        let bytes: usize = requests.iter().map(|r| r.op.len()).sum();
        assert!(bytes <= BATCH_OP_BYTES_MAX);
        let batch = crate::message::Batch {
            view: eve_types::View(u64::MAX),
            seq: eve_types::BatchSeq(u64::MAX),
            requests,
            nondet: eve_types::NonDet {
                time_ms: u64::MAX,
                seed: u64::MAX,
            },
            sequential: true,
        };
        let encoded = crate::message::Message::ExecuteBatch(batch).encode();
        assert!(
            encoded.len() <= MESSAGE_SIZE_BYTES_MAX,
            "{} bytes",
            encoded.len()
        );
    }

    #[test]
    fn a_batch_full_in_bytes_keeps_the_order_of_what_waits() {
        let big = vec![0u8; eve_types::limits::OP_BYTES_MAX];
        let mut pending = PendingQueue::default();
        let fits = BATCH_OP_BYTES_MAX / big.len();
        for client in 0..fits as u64 + 2 {
            pending
                .push(Request::new(ClientId(client), RequestNo(1), big.clone()).unwrap())
                .unwrap();
        }
        pending.push(request(0, 2)).unwrap();
        let batch = pending.take_batch(usize::MAX);
        assert_eq!(batch.len(), fits);
        let rest: Vec<(u64, u64)> = pending
            .take_all()
            .iter()
            .map(|r| (r.client.0, r.request_no.0))
            .collect();
        assert_eq!(rest, vec![(fits as u64, 1), (fits as u64 + 1, 1), (0, 2)]);
    }

    #[test]
    fn large_requests_are_refused_once_the_bytes_are_spent() {
        let big = vec![0u8; eve_types::limits::OP_BYTES_MAX];
        let mut pending = PendingQueue::default();
        let mut no = 0;
        loop {
            no += 1;
            let request = Request::new(ClientId(no), RequestNo(1), big.clone()).unwrap();
            match pending.push(request) {
                Ok(()) => assert!(pending.bytes() <= PENDING_REQUEST_BYTES_MAX),
                Err(reason) => {
                    assert_eq!(reason, "pending-bytes-full");
                    break;
                }
            }
        }
        assert_eq!(
            pending.len(),
            PENDING_REQUEST_BYTES_MAX / eve_types::limits::OP_BYTES_MAX
        );
        assert_eq!(
            pending.push(request(0, 1)),
            Err("pending-bytes-full"),
            "the bytes are spent exactly"
        );
        pending.take_batch(1);
        assert!(
            pending
                .push(Request::new(ClientId(0), RequestNo(2), big).unwrap())
                .is_ok(),
            "a batch frees its requests' bytes"
        );
    }
}
