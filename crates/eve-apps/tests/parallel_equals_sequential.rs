//! With a correct mixer, parallel execution gives the same replies and root as sequential
//! execution, whatever the interleaving.

use eve_apps::{KvOp, KvStore};
use eve_exec::{ExecMode, Executor, ParallelRunner, SeededRunner, ThreadPoolRunner};
use eve_mixer::GreedyMixer;
use eve_state::{StateConfig, StateStore};
use eve_types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
use proptest::prelude::*;

fn kv_op() -> impl Strategy<Value = KvOp> {
    let key = (0u8..12).prop_map(|k| bytes::Bytes::from(format!("k{k}")));
    let value = (0u8..4).prop_map(|v| bytes::Bytes::from(format!("v{v}")));
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
        (key.clone(), -5i64..5).prop_map(|(key, delta)| KvOp::Increment { key, delta }),
        (key.clone(), key, 0i64..4).prop_map(|(from, to, amount)| KvOp::Transfer {
            from,
            to,
            amount
        }),
    ]
}

/// Batches of requests from a few clients, each client numbering its requests in order.
fn batches() -> impl Strategy<Value = Vec<Vec<Request>>> {
    proptest::collection::vec(proptest::collection::vec((0u64..6, kv_op()), 1..60), 1..5).prop_map(
        |batches| {
            let mut next = [0u64; 6];
            batches
                .into_iter()
                .map(|batch| {
                    batch
                        .into_iter()
                        .map(|(client, op)| {
                            next[client as usize] += 1;
                            Request::new(
                                ClientId(client),
                                RequestNo(next[client as usize]),
                                op.encode(),
                            )
                            .unwrap()
                        })
                        .collect()
                })
                .collect()
        },
    )
}

fn run_all(
    executor: &mut Executor<KvStore>,
    batches: &[Vec<Request>],
    mode: ExecMode,
) -> Vec<eve_exec::BatchOutcome> {
    batches
        .iter()
        .enumerate()
        .map(|(i, batch)| {
            let nondet = NonDet {
                time_ms: i as u64,
                seed: i as u64 * 31,
            };
            executor
                .execute(BatchSeq(i as u64 + 1), batch, nondet, mode)
                .unwrap()
        })
        .collect()
}

fn state() -> StateStore {
    StateStore::new(StateConfig::new(5, 1024).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seeded_interleavings_match_sequential(batches in batches(), seed in any::<u64>()) {
        let mut sequential = Executor::sequential(KvStore, state());
        let expected = run_all(&mut sequential, &batches, ExecMode::Sequential);
        let runner: Box<dyn ParallelRunner> = Box::new(SeededRunner::new(seed));
        let mut parallel = Executor::new(KvStore, state(), Box::new(GreedyMixer), runner);
        let got = run_all(&mut parallel, &batches, ExecMode::Parallel);
        for (got, expected) in got.iter().zip(&expected) {
            prop_assert_eq!(&got.replies, &expected.replies);
            prop_assert_eq!(got.token, expected.token);
        }
    }

    #[test]
    fn thread_pool_matches_sequential(batches in batches()) {
        let mut sequential = Executor::sequential(KvStore, state());
        let expected = run_all(&mut sequential, &batches, ExecMode::Sequential);
        let runner: Box<dyn ParallelRunner> = Box::new(ThreadPoolRunner::new(3).unwrap());
        let mut parallel = Executor::new(KvStore, state(), Box::new(GreedyMixer), runner);
        let got = run_all(&mut parallel, &batches, ExecMode::Parallel);
        for (got, expected) in got.iter().zip(&expected) {
            prop_assert_eq!(&got.replies, &expected.replies);
            prop_assert_eq!(got.token, expected.token);
        }
    }
}
