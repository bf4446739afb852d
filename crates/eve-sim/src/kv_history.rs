//! Checking a key-value store history, one key at a time.
//!
//! Linearizability is compositional (Herlihy and Wing, 1990): a history of calls on several
//! objects is linearizable iff each object's projection is. Every [`KvOp`] but `Transfer`
//! touches one key, so [`check_kv_history`] splits the history by key and checks each key with
//! the [`crate::linearizability`] search against a model of that key's value
//! under the exact semantics of [`eve_apps::KvStore`].
//!
//! A `Transfer` between two different keys is projected onto both: a debit on `from` and a
//! credit on `to`, each required to agree with the recorded reply as far as its own key can
//! tell (`Transferred { from_balance, to_balance }`: `from` went from `from_balance + amount`
//! to `from_balance` and `to` from `to_balance - amount` to `to_balance`; `InsufficientFunds`:
//! `from` held `balance`, too little, and neither key changed; `NotANumber` and `Overflow`:
//! neither key changed, and each key accepts every value it could have held for the store to
//! answer so). **This projection is necessary, not sufficient**: a multi-key transfer is not an
//! object of its own, so the two halves may be placed at different points of their keys'
//! orders, an ambiguous reply may be blamed on `from` in one key and on `to` in the other, and
//! a pending transfer may be taken as applied on one key and not on the other. A history this
//! module rejects is certainly not linearizable; one it accepts is linearizable per key, and
//! the transfers in it are only known to be individually plausible.

pub(crate) mod key_model;

use crate::linearizability::{self, Call, SearchBudget, Violation};
use bytes::Bytes;
use eve_apps::{KvOp, KvReply};
use key_model::{KeyOp, KeyState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One client call against the key-value store, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEvent {
    /// The calling client.
    pub client: u64,
    /// When the client sent the call (any monotone unit, e.g. simulated µs).
    pub invoke: u64,
    /// When the client accepted a reply, or `None` if it never did (the call may have taken
    /// effect at any point after `invoke`, or never).
    pub complete: Option<u64>,
    /// The operation.
    pub op: KvOp,
    /// The accepted reply: `Some` exactly when `complete` is.
    pub reply: Option<KvReply>,
}

/// What a successful [`check_kv_history`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCheckStats {
    /// Distinct keys the history touches.
    pub keys: usize,
    /// Events in the history.
    pub calls: usize,
    /// Search configurations explored, over all keys.
    pub states_explored: usize,
}

/// The first key (in byte order) whose projection failed the check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key {key:?} ({calls} calls): {violation}")]
pub struct KvViolation {
    /// The key.
    pub key: Bytes,
    /// What was found; every call index in it is an index into the checked `events`.
    pub violation: Violation,
    /// Calls in the key's projection of the history.
    pub calls: usize,
}

/// Checks that `events` are linearizable per key with respect to [`eve_apps::KvStore`], every
/// key starting absent. See the [module documentation](self) for how multi-key transfers are
/// projected, and why that check is necessary but not sufficient.
///
/// Keys are checked in byte order, sharing one budget: each key's search may explore what the
/// keys before it left of `budget.states_max`.
///
/// # Errors
/// A [`KvViolation`] naming the first key whose projection is not linearizable, exhausted the
/// budget (an unknown verdict, not a violation), or holds a malformed event.
pub fn check_kv_history(
    events: &[KvEvent],
    budget: SearchBudget,
) -> Result<KvCheckStats, KvViolation> {
    let per_key = project(events);
    let mut states_explored = 0;
    for (key, projection) in &per_key {
        let remaining = SearchBudget {
            states_max: budget.states_max.saturating_sub(states_explored),
        };
        let stats = linearizability::check(KeyState::default(), &projection.calls, remaining)
            .map_err(|violation| KvViolation {
                key: key.clone(),
                violation: match violation {
                    Violation::BudgetExceeded { .. } => Violation::BudgetExceeded {
                        states_explored: budget.states_max,
                    },
                    other => other.map_indices(|i| projection.events[i]),
                },
                calls: projection.calls.len(),
            })?;
        states_explored += stats.states_explored;
    }
    Ok(KvCheckStats {
        keys: per_key.len(),
        calls: events.len(),
        states_explored,
    })
}

/// One key's share of a history.
#[derive(Default)]
struct Projection {
    calls: Vec<Call<KeyOp, KvReply>>,
    /// For each call, the index of the event it came from.
    events: Vec<usize>,
}

fn project(events: &[KvEvent]) -> BTreeMap<Bytes, Projection> {
    let mut per_key: BTreeMap<Bytes, Projection> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        for (key, op) in key_ops(&event.op) {
            let projection = per_key.entry(key).or_default();
            projection.calls.push(Call {
                client: event.client,
                invoke: event.invoke,
                complete: event.complete,
                op,
                ret: event.reply.clone(),
            });
            projection.events.push(index);
        }
    }
    per_key
}

/// The keys `op` touches, with what it does to each.
pub(crate) fn key_ops(op: &KvOp) -> Vec<(Bytes, KeyOp)> {
    match op {
        KvOp::Get { key } => vec![(key.clone(), KeyOp::Get)],
        KvOp::Put { key, value } => vec![(key.clone(), KeyOp::Put(value.clone()))],
        KvOp::Delete { key } => vec![(key.clone(), KeyOp::Delete)],
        KvOp::CompareAndSwap { key, expected, new } => vec![(
            key.clone(),
            KeyOp::CompareAndSwap {
                expected: expected.clone(),
                new: new.clone(),
            },
        )],
        KvOp::Increment { key, delta } => vec![(key.clone(), KeyOp::Increment(*delta))],
        KvOp::Transfer { from, to, amount } if from == to => {
            vec![(from.clone(), KeyOp::TransferSelf(*amount))]
        }
        KvOp::Transfer { from, to, amount } => vec![
            (from.clone(), KeyOp::TransferOut(*amount)),
            (to.clone(), KeyOp::TransferIn(*amount)),
        ],
    }
}
