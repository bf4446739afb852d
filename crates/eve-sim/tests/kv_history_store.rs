//! Histories recorded from eve's real key-value store: accepted when the recorded timestamps are
//! consistent with the order the store ran the operations in, rejected when a read is corrupted.

use bytes::Bytes;
use eve_apps::{KvOp, KvReply, KvStore};
use eve_exec::{ExecMode, Executor};
use eve_sim::kv_history::{KvEvent, KvViolation, check_kv_history};
use eve_sim::linearizability::{SearchBudget, Violation};
use eve_state::{StateConfig, StateStore};
use eve_types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
use proptest::prelude::*;
use proptest::sample::Index;

/// Time between the effect points of consecutive operations.
const STEP_US: u64 = 100;

fn op() -> impl Strategy<Value = KvOp> {
    let key = (0u8..3).prop_map(|k| Bytes::from(format!("k{k}")));
    // Values are sometimes 8 bytes long (numbers) and sometimes not.
    let value = prop_oneof![
        (0u8..3).prop_map(|v| Bytes::from(format!("v{v}"))),
        (-3i64..6).prop_map(|n| Bytes::copy_from_slice(&n.to_le_bytes())),
    ];
    prop_oneof![
        2 => key.clone().prop_map(|key| KvOp::Get { key }),
        2 => (key.clone(), value.clone()).prop_map(|(key, value)| KvOp::Put { key, value }),
        1 => key.clone().prop_map(|key| KvOp::Delete { key }),
        1 => (key.clone(), proptest::option::of(value.clone()), proptest::option::of(value))
            .prop_map(|(key, expected, new)| KvOp::CompareAndSwap { key, expected, new }),
        1 => (key.clone(), prop_oneof![-3i64..4, Just(i64::MAX), Just(i64::MIN)])
            .prop_map(|(key, delta)| KvOp::Increment { key, delta }),
        1 => (key.clone(), key, -1i64..4)
            .prop_map(|(from, to, amount)| KvOp::Transfer { from, to, amount }),
    ]
}

/// How one operation is recorded around its effect point `t`.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// The call was invoked this long before `t` (overlapping earlier calls when > `STEP_US`).
    before_us: u64,
    /// The reply arrived this long after `t`.
    after_us: u64,
    /// 1: ran, but the client never saw the reply; 2: never ran, and the client never saw a
    /// reply either; anything else: ran and recorded normally.
    fate: u8,
}

fn timing(spread_us: u64) -> impl Strategy<Value = Timing> {
    (0..=spread_us, 0..=spread_us, 0u8..12).prop_map(|(before_us, after_us, fate)| Timing {
        before_us,
        after_us,
        fate,
    })
}

/// Runs `ops` one at a time through the real store and records each as a client saw it.
/// Operation `i` takes effect at `(i + 1) * STEP_US`, inside its recorded interval.
fn record(ops: Vec<KvOp>, timings: &[Timing]) -> Vec<KvEvent> {
    let mut executor =
        Executor::sequential(KvStore, StateStore::new(StateConfig::new(4, 1024).unwrap()));
    let mut events = Vec::new();
    let mut executed = 0;
    for (i, (op, timing)) in ops.into_iter().zip(timings).enumerate() {
        let effect_us = (i as u64 + 1) * STEP_US;
        let reply = if timing.fate == 2 {
            None
        } else {
            executed += 1;
            let seq = executed;
            let request = Request::new(ClientId(1), RequestNo(seq), op.encode()).unwrap();
            let outcome = executor
                .execute(
                    BatchSeq(seq),
                    &[request],
                    NonDet::default(),
                    ExecMode::Sequential,
                )
                .unwrap();
            Some(KvReply::decode(&outcome.replies[0].body).unwrap())
        };
        let seen = timing.fate != 1 && reply.is_some();
        events.push(KvEvent {
            client: i as u64 % 4,
            invoke: effect_us - timing.before_us.min(effect_us),
            complete: seen.then_some(effect_us + timing.after_us),
            op,
            reply: reply.filter(|_| seen),
        });
    }
    events
}

/// For each completed `Get` in a sequential history, a value its key held after some earlier
/// operation that differs from what the `Get` returned.
fn stale_reads(events: &[KvEvent]) -> Vec<(usize, Option<Bytes>)> {
    let mut executor =
        Executor::sequential(KvStore, StateStore::new(StateConfig::new(4, 1024).unwrap()));
    let mut held: Vec<(Bytes, Option<Bytes>)> = Vec::new();
    let mut stale = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if let (KvOp::Get { key }, Some(KvReply::Value(now))) = (&event.op, &event.reply) {
            let earlier = held.iter().find(|(k, v)| k == key && v != now);
            if let Some((_, value)) = earlier {
                stale.push((i, value.clone()));
            }
        }
        let request =
            Request::new(ClientId(1), RequestNo(i as u64 + 1), event.op.encode()).unwrap();
        executor
            .execute(
                BatchSeq(i as u64 + 1),
                &[request],
                NonDet::default(),
                ExecMode::Sequential,
            )
            .unwrap();
        for k in 0u8..3 {
            let key = Bytes::from(format!("k{k}"));
            let value = executor.state().get(&key);
            if !held.contains(&(key.clone(), value.clone())) {
                held.push((key, value));
            }
        }
    }
    stale
}

/// Replies a single-key operation could plausibly have been recorded with, other than `actual`.
fn other_replies(actual: &KvReply) -> Vec<KvReply> {
    let number = |n: i64| Some(Bytes::copy_from_slice(&n.to_le_bytes()));
    [
        KvReply::Value(None),
        KvReply::Value(Some(Bytes::from_static(b"v0"))),
        KvReply::Value(number(0)),
        KvReply::Value(number(1)),
        KvReply::Swapped,
        KvReply::CasFailed { current: None },
        KvReply::CasFailed {
            current: Some(Bytes::from_static(b"v0")),
        },
        KvReply::Counter(0),
        KvReply::Counter(1),
        KvReply::Counter(-1),
        KvReply::NotANumber,
        KvReply::Overflow,
    ]
    .into_iter()
    .filter(|reply| reply != actual)
    .collect()
}

/// The single key `op` touches, if it touches one.
fn single_key(op: &KvOp) -> Option<&Bytes> {
    match op {
        KvOp::Get { key }
        | KvOp::Put { key, .. }
        | KvOp::Delete { key }
        | KvOp::CompareAndSwap { key, .. }
        | KvOp::Increment { key, .. } => Some(key),
        KvOp::Transfer { .. } => None,
    }
}

/// Checks that `events` are rejected on the key of event `target`, with `target` among the
/// calls left unplaced.
fn rejected_at(events: &[KvEvent], target: usize) -> Result<(), TestCaseError> {
    let key = single_key(&events[target].op).expect("a single-key call was corrupted");
    match check_kv_history(events, SearchBudget::default()) {
        Err(KvViolation {
            key: rejected,
            violation: Violation::NotLinearizable { unplaced, .. },
            ..
        }) => {
            prop_assert_eq!(&rejected, key, "the corrupted call's key is named");
            prop_assert!(
                unplaced.contains(&target),
                "the corrupted call is left unplaced: {:?}",
                unplaced
            );
        }
        other => prop_assert!(
            false,
            "a sequential history allows one order, in which call {} returns something else: {:?}",
            target,
            other
        ),
    }
    Ok(())
}

/// Intervals 20 µs wide around effect points 100 µs apart: real time orders every call, and
/// every call returns.
const SEQUENTIAL: [Timing; 80] = [Timing {
    before_us: 10,
    after_us: 10,
    fate: 3,
}; 80];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_024))]

    #[test]
    fn histories_recorded_from_the_real_store_are_accepted(
        ops in proptest::collection::vec(op(), 1..80),
        timings in proptest::collection::vec(timing(3 * STEP_US), 80),
    ) {
        let events = record(ops, &timings);
        let verdict = check_kv_history(&events, SearchBudget::default());
        prop_assert!(
            verdict.is_ok(),
            "every call took effect inside its interval (or, pending, maybe never): {:?}",
            verdict
        );
    }

    #[test]
    fn a_stale_read_in_a_sequential_history_is_rejected_on_its_key(
        ops in proptest::collection::vec(op(), 10..80),
        pick in any::<Index>(),
    ) {
        let mut events = record(ops, &SEQUENTIAL);
        let stale = stale_reads(&events);
        prop_assume!(!stale.is_empty(), "no Get of a key after it changed");
        let (target, value) = stale[pick.index(stale.len())].clone();
        events[target].reply = Some(KvReply::Value(value));
        rejected_at(&events, target)?;
    }

    #[test]
    fn any_other_reply_to_a_single_key_operation_is_rejected(
        ops in proptest::collection::vec(op(), 1..80),
        pick_call in any::<Index>(),
        pick_reply in any::<Index>(),
    ) {
        // Given its key's value, a single-key operation has exactly one possible reply, and in
        // a sequential history with no pending call every key's value is determined.
        let mut events = record(ops, &SEQUENTIAL);
        let candidates: Vec<usize> = (0..events.len())
            .filter(|&i| single_key(&events[i].op).is_some())
            .collect();
        prop_assume!(!candidates.is_empty(), "only transfers");
        let target = candidates[pick_call.index(candidates.len())];
        let others = other_replies(events[target].reply.as_ref().unwrap());
        events[target].reply = Some(others[pick_reply.index(others.len())].clone());
        rejected_at(&events, target)?;
    }
}
