//! The key-value store matches a plain sequential model of itself, operation by operation.

use bytes::Bytes;
use eve_apps::{KvOp, KvReply, KvStore};
use eve_exec::{ExecMode, Executor};
use eve_state::{StateConfig, StateStore};
use eve_types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// The specification: a map, and each operation's meaning written as directly as possible.
#[derive(Default)]
struct Model {
    map: BTreeMap<Bytes, Bytes>,
}

impl Model {
    fn number(&self, key: &Bytes) -> Option<i64> {
        match self.map.get(key) {
            None => Some(0),
            Some(v) if v.len() == 8 => Some(i64::from_le_bytes(v[..].try_into().unwrap())),
            Some(_) => None,
        }
    }

    fn apply(&mut self, op: KvOp) -> KvReply {
        match op {
            KvOp::Get { key } => KvReply::Value(self.map.get(&key).cloned()),
            KvOp::Put { key, value } => KvReply::Value(self.map.insert(key, value)),
            KvOp::Delete { key } => KvReply::Value(self.map.remove(&key)),
            KvOp::CompareAndSwap { key, expected, new } => {
                let current = self.map.get(&key).cloned();
                if current != expected {
                    return KvReply::CasFailed { current };
                }
                match new {
                    Some(v) => self.map.insert(key, v),
                    None => self.map.remove(&key),
                };
                KvReply::Swapped
            }
            KvOp::Increment { key, delta } => match self.number(&key) {
                None => KvReply::NotANumber,
                Some(n) => match n.checked_add(delta) {
                    None => KvReply::Overflow,
                    Some(sum) => {
                        self.map
                            .insert(key, Bytes::copy_from_slice(&sum.to_le_bytes()));
                        KvReply::Counter(sum)
                    }
                },
            },
            KvOp::Transfer { from, to, amount } => {
                let Some(balance) = self.number(&from) else {
                    return KvReply::NotANumber;
                };
                if amount < 0 || balance < amount {
                    return KvReply::InsufficientFunds { balance };
                }
                if from == to {
                    return KvReply::Transferred {
                        from_balance: balance,
                        to_balance: balance,
                    };
                }
                let Some(to_balance) = self.number(&to) else {
                    return KvReply::NotANumber;
                };
                let Some(credited) = to_balance.checked_add(amount) else {
                    return KvReply::Overflow;
                };
                self.map
                    .insert(to, Bytes::copy_from_slice(&credited.to_le_bytes()));
                self.map.insert(
                    from,
                    Bytes::copy_from_slice(&(balance - amount).to_le_bytes()),
                );
                KvReply::Transferred {
                    from_balance: balance - amount,
                    to_balance: credited,
                }
            }
        }
    }
}

fn op() -> impl Strategy<Value = KvOp> {
    let key = (0u8..6).prop_map(|k| Bytes::from(format!("k{k}")));
    // Values are sometimes 8 bytes long (numbers) and sometimes not.
    let value = prop_oneof![
        (0u8..3).prop_map(|v| Bytes::from(format!("v{v}"))),
        (-3i64..3).prop_map(|n| Bytes::copy_from_slice(&n.to_le_bytes())),
    ];
    prop_oneof![
        key.clone().prop_map(|key| KvOp::Get { key }),
        (key.clone(), value.clone()).prop_map(|(key, value)| KvOp::Put { key, value }),
        key.clone().prop_map(|key| KvOp::Delete { key }),
        (
            key.clone(),
            proptest::option::of(value.clone()),
            proptest::option::of(value)
        )
            .prop_map(|(key, expected, new)| KvOp::CompareAndSwap { key, expected, new }),
        (
            key.clone(),
            prop_oneof![-3i64..3, Just(i64::MAX), Just(i64::MIN)]
        )
            .prop_map(|(key, delta)| KvOp::Increment { key, delta }),
        (key.clone(), key, -1i64..4).prop_map(|(from, to, amount)| KvOp::Transfer {
            from,
            to,
            amount
        }),
    ]
}

proptest! {
    #[test]
    fn kv_store_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut executor = Executor::sequential(KvStore, StateStore::new(StateConfig::new(4, 1024).unwrap()));
        let mut model = Model::default();
        for (i, op) in ops.into_iter().enumerate() {
            let request = Request::new(ClientId(1), RequestNo(i as u64 + 1), op.encode()).unwrap();
            let outcome = executor
                .execute(BatchSeq(i as u64 + 1), &[request], NonDet::default(), ExecMode::Sequential)
                .unwrap();
            let got = KvReply::decode(&outcome.replies[0].body).unwrap();
            prop_assert_eq!(got, model.apply(op));
        }
        let state: BTreeMap<Bytes, Bytes> = executor
            .state()
            .to_map()
            .into_iter()
            .filter(|(k, _)| !eve_state::is_system_key(k))
            .collect();
        prop_assert_eq!(state, model.map);
    }
}

#[test]
fn undecodable_and_reserved_operations_get_error_replies() {
    let mut executor =
        Executor::sequential(KvStore, StateStore::new(StateConfig::new(4, 1024).unwrap()));
    let garbage = Request::new(ClientId(1), RequestNo(1), vec![0xff, 0xff, 0xff]).unwrap();
    let reserved = KvOp::Put {
        key: Bytes::from_static(b"\xffmine"),
        value: Bytes::from_static(b"x"),
    };
    let reserved = Request::new(ClientId(2), RequestNo(1), reserved.encode()).unwrap();
    let outcome = executor
        .execute(
            BatchSeq(1),
            &[garbage, reserved],
            NonDet::default(),
            ExecMode::Sequential,
        )
        .unwrap();
    for reply in &outcome.replies {
        assert!(
            matches!(KvReply::decode(&reply.body).unwrap(), KvReply::Error(_)),
            "{reply:?}"
        );
    }
}
