//! The operations simulated clients run: a seeded mix over a few keys, and the history each
//! client records of what it invoked and what it was answered.

use crate::app::RACY_OP;
use bytes::Bytes;
use eve_apps::KvOp;
use eve_types::SplitMix64;

/// One operation a client will submit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimOp {
    /// A key-value operation (checked for linearizability).
    Kv(KvOp),
    /// A racy-counter increment (checked only against what replicas committed).
    Racy,
}

impl SimOp {
    /// The operation's bytes, as the client sends them.
    pub fn encode(&self) -> Bytes {
        match self {
            SimOp::Kv(op) => op.encode(),
            SimOp::Racy => Bytes::from_static(&[RACY_OP]),
        }
    }
}

/// Draws operations over `keys` keys; `racy_ppm` of them are racy-counter increments.
pub fn draw_op(rng: &mut SplitMix64, keys: usize, racy_ppm: u32) -> SimOp {
    if rng.chance_ppm(racy_ppm) {
        return SimOp::Racy;
    }
    let key = |rng: &mut SplitMix64| Bytes::from(format!("k{}", rng.below(keys as u64)));
    let small = |rng: &mut SplitMix64| Bytes::from(format!("v{}", rng.below(1000)));
    let op = match rng.below(100) {
        0..30 => KvOp::Get { key: key(rng) },
        30..50 => KvOp::Put {
            key: key(rng),
            value: small(rng),
        },
        50..75 => KvOp::Increment {
            key: key(rng),
            delta: rng.below(10) as i64 - 3,
        },
        75..85 => KvOp::CompareAndSwap {
            key: key(rng),
            expected: if rng.chance_ppm(500_000) {
                None
            } else {
                Some(small(rng))
            },
            new: Some(small(rng)),
        },
        85..95 => KvOp::Transfer {
            from: key(rng),
            to: key(rng),
            amount: rng.below(5) as i64,
        },
        _ => KvOp::Delete { key: key(rng) },
    };
    SimOp::Kv(op)
}
