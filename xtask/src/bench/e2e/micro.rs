//! The paper's microbenchmark: each request burns a set amount of CPU and writes one object;
//! a set share of requests write one shared hot object instead of their client's own, and
//! conflict with each other.

use super::load::Draw;
use bytes::Bytes;
use eve_apps::BusyOp;
use eve_types::SplitMix64;

/// The hot object every conflicting request writes.
pub const HOT_OBJECT: u64 = 0;

/// Objects each client cycles through (its requests never conflict with another client's).
pub const OBJECTS_PER_CLIENT: u64 = 64;

/// One client's requests.
pub struct Micro {
    rounds: u32,
    conflict_pct: u64,
    first_object: u64,
    next: u64,
    rng: SplitMix64,
}

impl Micro {
    /// Requests of `rounds` busy-work rounds for client number `client` (from 0); `conflict_pct`
    /// percent of them write the hot object. The draw follows from `seed` and `client`.
    pub fn new(client: u64, rounds: u32, conflict_pct: u64, seed: u64) -> Self {
        Self {
            rounds,
            conflict_pct,
            first_object: 1 + client * OBJECTS_PER_CLIENT,
            next: 0,
            rng: SplitMix64::new(seed ^ client.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        }
    }
}

impl Draw for Micro {
    fn next_op(&mut self) -> Bytes {
        let object = if self.rng.below(100) < self.conflict_pct {
            HOT_OBJECT
        } else {
            self.next = (self.next + 1) % OBJECTS_PER_CLIENT;
            self.first_object + self.next
        };
        BusyOp {
            rounds: self.rounds,
            object,
        }
        .encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(op: &Bytes) -> u64 {
        postcard::from_bytes::<BusyOp>(op).unwrap().object
    }

    #[test]
    fn clients_write_their_own_objects_and_the_asked_share_writes_the_hot_one() {
        let mut a = Micro::new(0, 10, 20, 7);
        let mut b = Micro::new(1, 10, 20, 7);
        let (ops_a, ops_b): (Vec<_>, Vec<_>) =
            (0..1000).map(|_| (a.next_op(), b.next_op())).unzip();
        let hot = ops_a.iter().filter(|op| object(op) == HOT_OBJECT).count();
        assert!((150..250).contains(&hot), "{hot} of 1000");
        let own_a: std::collections::BTreeSet<u64> = ops_a
            .iter()
            .map(object)
            .filter(|&o| o != HOT_OBJECT)
            .collect();
        let own_b: std::collections::BTreeSet<u64> = ops_b
            .iter()
            .map(object)
            .filter(|&o| o != HOT_OBJECT)
            .collect();
        assert!(own_a.is_disjoint(&own_b));
        assert_eq!(own_a.len() as u64, OBJECTS_PER_CLIENT);
    }
}
