//! The requests of the executor sweep.

use crate::bench::stats::splitmix64;
use anyhow::{Context, Result};
use eve_apps::BusyOp;
use eve_types::{ClientId, Request, RequestNo};

/// The object every conflicting request writes.
pub const HOT_OBJECT: u64 = 0;

/// One batch of busy-work requests, re-sent round after round with fresh request numbers.
///
/// Request `i` comes from client `i + 1` and writes either its own object `i + 1` or, for the
/// chosen percentage of positions, [`HOT_OBJECT`]. Which positions conflict follows from the
/// seed alone. Every round renumbers the requests, so the reply cache answers none of them,
/// and every round writes the same objects, so the state holds at most one object per
/// position, the hot object, and one reply-cache entry per client.
#[derive(Debug)]
pub struct Workload {
    requests: Vec<Request>,
    round: u64,
    hot: usize,
}

impl Workload {
    /// `batch` requests of `rounds` busy-work rounds each, `conflict_pct` percent of which
    /// (drawn from `seed`) write the hot object.
    pub fn new(batch: usize, rounds: u32, conflict_pct: u32, seed: u64) -> Result<Self> {
        let mut hot = 0;
        let requests = (0..batch as u64)
            .map(|i| {
                let conflicts = splitmix64(seed ^ splitmix64(i)) % 100 < u64::from(conflict_pct);
                hot += usize::from(conflicts);
                let object = if conflicts { HOT_OBJECT } else { i + 1 };
                let op = BusyOp { rounds, object }.encode();
                Request::new(ClientId(i + 1), RequestNo(1), op)
                    .with_context(|| format!("building busy-work request {i}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            requests,
            round: 0,
            hot,
        })
    }

    /// The next round's batch: the same operations, each client's request number one higher.
    pub fn next_batch(&mut self) -> &[Request] {
        self.round += 1;
        for request in &mut self.requests {
            request.request_no = RequestNo(self.round);
        }
        &self.requests
    }

    /// Requests per batch.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Requests per batch that write the hot object.
    pub fn hot(&self) -> usize {
        self.hot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_rate_is_close_to_the_asked_percentage_and_repeats_per_seed() {
        let none = Workload::new(1000, 1, 0, 1).expect("valid workload");
        assert_eq!(none.hot(), 0);
        let all = Workload::new(1000, 1, 100, 1).expect("valid workload");
        assert_eq!(all.hot(), 1000);
        let half = Workload::new(1000, 1, 50, 1).expect("valid workload");
        assert!((400..600).contains(&half.hot()), "{} of 1000", half.hot());
        let again = Workload::new(1000, 1, 50, 1).expect("valid workload");
        assert_eq!(half.requests, again.requests, "same seed, same batch");
    }

    #[test]
    fn each_round_renumbers_every_request() {
        let mut workload = Workload::new(3, 1, 0, 1).expect("valid workload");
        assert!(
            workload
                .next_batch()
                .iter()
                .all(|r| r.request_no == RequestNo(1))
        );
        assert!(
            workload
                .next_batch()
                .iter()
                .all(|r| r.request_no == RequestNo(2))
        );
    }
}
