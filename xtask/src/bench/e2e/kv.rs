//! The key-value workloads, on the key-value store every replica serves:
//! - YCSB's core workloads A (50% reads, 50% updates), B (95% reads) and C (reads only) over
//!   `records` records of `value_bytes` bytes, loaded before the measurement;
//! - transfers: each request moves a small amount between two accounts, a multi-key
//!   transaction (both accounts are read and written, and two transfers that share an account
//!   conflict); the accounts are funded before the measurement.

use super::keys::{KeyDist, Keys, record_key};
use super::load::Draw;
use bytes::Bytes;
use eve_apps::KvOp;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// A YCSB core workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ycsb {
    /// 50% reads, 50% updates.
    A,
    /// 95% reads, 5% updates.
    B,
    /// Reads only.
    C,
}

impl Ycsb {
    /// The name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Ycsb::A => "ycsb-a",
            Ycsb::B => "ycsb-b",
            Ycsb::C => "ycsb-c",
        }
    }

    /// Percent of requests that read.
    pub fn read_pct(self) -> u64 {
        match self {
            Ycsb::A => 50,
            Ycsb::B => 95,
            Ycsb::C => 100,
        }
    }
}

/// The balance each account starts with.
pub const OPENING_BALANCE: i64 = 1_000_000;

/// One client's requests of a key-value workload.
pub struct KvDraw {
    kind: Kind,
    keys: Keys,
    rng: SmallRng,
}

#[derive(Clone, Copy)]
enum Kind {
    Ycsb { read_pct: u64, value_bytes: usize },
    Transfer,
}

impl KvDraw {
    /// YCSB `workload` over `records` records of `value_bytes`, keys drawn by `dist`.
    pub fn ycsb(
        workload: Ycsb,
        dist: KeyDist,
        records: u64,
        value_bytes: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let kind = Kind::Ycsb {
            read_pct: workload.read_pct(),
            value_bytes,
        };
        Self::new(kind, dist, records, seed)
    }

    /// Transfers among `accounts` accounts chosen by `dist`.
    pub fn transfer(dist: KeyDist, accounts: u64, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(accounts >= 2, "transfers need at least two accounts");
        Self::new(Kind::Transfer, dist, accounts, seed)
    }

    fn new(kind: Kind, dist: KeyDist, records: u64, seed: u64) -> anyhow::Result<Self> {
        Ok(Self {
            kind,
            keys: Keys::new(dist, records, seed)?,
            rng: SmallRng::seed_from_u64(seed ^ 0x5EED),
        })
    }

    fn value(&mut self, bytes: usize) -> Bytes {
        let mut value = vec![0u8; bytes];
        self.rng.fill_bytes(&mut value);
        Bytes::from(value)
    }
}

impl Draw for KvDraw {
    fn next_op(&mut self) -> Bytes {
        let op = match self.kind {
            Kind::Ycsb {
                read_pct,
                value_bytes,
            } => {
                let key = record_key(self.keys.next_record());
                if self.rng.next_u64() % 100 < read_pct {
                    KvOp::Get { key }
                } else {
                    KvOp::Put {
                        key,
                        value: self.value(value_bytes),
                    }
                }
            }
            Kind::Transfer => {
                let from = self.keys.next_record();
                let mut to = self.keys.next_record();
                if to == from {
                    to = (from + 1) % self.keys.records();
                }
                KvOp::Transfer {
                    from: record_key(from),
                    to: record_key(to),
                    amount: 1 + (self.rng.next_u64() % 100) as i64,
                }
            }
        };
        op.encode()
    }
}

/// What to load before a key-value workload's measurement: every record with a value of
/// `value_bytes` (YCSB), or every account with its opening balance (transfers).
pub fn preload(transfer: bool, records: u64, value_bytes: usize) -> impl Iterator<Item = Bytes> {
    (0..records).map(move |n| {
        let key = record_key(n);
        let op = if transfer {
            KvOp::Increment {
                key,
                delta: OPENING_BALANCE,
            }
        } else {
            KvOp::Put {
                key,
                value: Bytes::from(vec![b'v'; value_bytes]),
            }
        };
        op.encode()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ycsb_mixes_reads_and_updates_in_its_proportions() {
        let reads = |workload| {
            let mut draw = KvDraw::ycsb(workload, KeyDist::Uniform, 100, 10, 1).unwrap();
            (0..2000)
                .filter(|_| matches!(KvOp::decode(&draw.next_op()), Ok(KvOp::Get { .. })))
                .count()
        };
        assert!((900..1100).contains(&reads(Ycsb::A)), "{}", reads(Ycsb::A));
        assert!((1850..1990).contains(&reads(Ycsb::B)), "{}", reads(Ycsb::B));
        assert_eq!(reads(Ycsb::C), 2000);
    }

    #[test]
    fn a_transfer_moves_money_between_two_different_accounts() {
        let mut draw = KvDraw::transfer(KeyDist::Zipfian, 5, 1).unwrap();
        for _ in 0..500 {
            match KvOp::decode(&draw.next_op()) {
                Ok(KvOp::Transfer { from, to, amount }) => {
                    assert_ne!(from, to);
                    assert!((1..=100).contains(&amount));
                }
                other => panic!("not a transfer: {other:?}"),
            }
        }
        assert_eq!(preload(true, 5, 0).count(), 5);
    }
}
