//! A read/write register: the sequential specification the generic checker's tests use, and a
//! seeded generator of linearizable histories of it.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use eve_sim::linearizability::{Call, Model};
use eve_types::SplitMix64;

/// A register holding a small value; it starts at 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Register(pub u8);

/// A register operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegOp {
    Write(u8),
    Read,
}

/// A register operation's return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegRet {
    Written,
    Value(u8),
}

impl Model for Register {
    type Op = RegOp;
    type Ret = RegRet;

    fn step(&self, op: &RegOp, ret: Option<&RegRet>) -> Vec<Self> {
        match (op, ret) {
            (RegOp::Write(v), None | Some(RegRet::Written)) => vec![Register(*v)],
            (RegOp::Read, None) => vec![*self],
            (RegOp::Read, Some(RegRet::Value(v))) if *v == self.0 => vec![*self],
            _ => vec![],
        }
    }

    fn is_read_only(op: &RegOp, _: Option<&RegRet>) -> bool {
        *op == RegOp::Read
    }
}

pub type RegCall = Call<RegOp, RegRet>;

/// A call that returned.
pub fn done(client: u64, invoke: u64, complete: u64, op: RegOp, ret: RegRet) -> RegCall {
    Call {
        client,
        invoke,
        complete: Some(complete),
        op,
        ret: Some(ret),
    }
}

/// A call that never returned.
pub fn pending(client: u64, invoke: u64, op: RegOp) -> RegCall {
    Call {
        client,
        invoke,
        complete: None,
        op,
        ret: None,
    }
}

/// A linearizable history of `clients` clients making `calls_per_client` calls each, one at a
/// time, on one register: every call takes effect at a point strictly inside its interval, and
/// returns are computed by applying the calls in the order of those points. Each client's last
/// call is a write that never returns; half of them took effect.
pub fn linearizable_history(seed: u64, clients: u64, calls_per_client: u64) -> Vec<RegCall> {
    let mut rng = SplitMix64::new(seed);
    // (effect point, client, index into `calls`, whether it takes effect)
    let mut effects = Vec::new();
    let mut calls = Vec::new();
    for client in 0..clients {
        let mut now = rng.below(10);
        for k in 0..calls_per_client {
            let invoke = now;
            let point = invoke + 1 + rng.below(20);
            let complete = point + 1 + rng.below(20);
            now = complete + 1 + rng.below(10);
            let value = rng.below(5) as u8;
            let last = k + 1 == calls_per_client;
            let call = if last {
                pending(client, invoke, RegOp::Write(value))
            } else if rng.below(2) == 0 {
                done(
                    client,
                    invoke,
                    complete,
                    RegOp::Write(value),
                    RegRet::Written,
                )
            } else {
                done(client, invoke, complete, RegOp::Read, RegRet::Value(0))
            };
            let applies = !last || rng.below(2) == 0;
            effects.push((point, client, calls.len(), applies));
            calls.push(call);
        }
    }
    effects.sort_unstable();
    let mut register = 0;
    for (_, _, index, applies) in effects {
        let call: &mut RegCall = &mut calls[index];
        match call.op {
            RegOp::Write(v) if applies => register = v,
            RegOp::Write(_) => {}
            RegOp::Read => call.ret = Some(RegRet::Value(register)),
        }
    }
    calls
}
