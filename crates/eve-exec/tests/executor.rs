//! The executor's rules: sequence, duplicates, panics, limits, rollback.

use bytes::Bytes;
use eve_exec::{
    Application, ExecContext, ExecError, ExecMode, Executor, InlineRunner,
    REPLY_APPLICATION_PANICKED, SeededRunner, ThreadPoolRunner, Token,
};
use eve_mixer::{ConflictKeys, GreedyMixer};
use eve_state::{StateConfig, StateError, StateStore};
use eve_types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
use std::sync::atomic::{AtomicU64, Ordering};

/// Appends the operation to the object named by its first byte, counts executions, and panics
/// on the operation `b"panic"`.
#[derive(Default)]
struct Appender {
    executions: AtomicU64,
}

impl Application for Appender {
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
        keys.write(&op[..1.min(op.len())]);
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
        self.executions.fetch_add(1, Ordering::Relaxed);
        assert!(op != b"panic", "asked to panic");
        let key = &op[..1.min(op.len())];
        let mut value = ctx.get(key).map(|v| v.to_vec()).unwrap_or_default();
        value.extend_from_slice(op);
        ctx.put(key, value.clone()).unwrap();
        Bytes::from(value)
    }
}

fn state() -> StateStore {
    StateStore::new(StateConfig::new(6, 4096).unwrap())
}

fn request(client: u64, no: u64, op: &str) -> Request {
    Request::new(ClientId(client), RequestNo(no), op.as_bytes().to_vec()).unwrap()
}

/// Executes batch `seq` in sequential mode.
fn run_sequential<A: Application>(
    executor: &mut Executor<A>,
    seq: u64,
    requests: &[Request],
) -> Result<eve_exec::BatchOutcome, ExecError> {
    executor.execute(BatchSeq(seq), requests, nondet(), ExecMode::Sequential)
}

fn nondet() -> NonDet {
    NonDet {
        time_ms: 1_000,
        seed: 9,
    }
}

#[test]
fn token_binds_the_batch_and_both_roots() {
    let mut executor = Executor::sequential(Appender::default(), state());
    let empty = executor.state().root();
    let outcome = run_sequential(&mut executor, 1, &[request(1, 1, "a1")]).unwrap();
    assert_eq!(outcome.previous_root, empty);
    assert_eq!(outcome.new_root, executor.state().root());
    assert_eq!(
        outcome.token,
        Token::compute(BatchSeq(1), empty, outcome.new_root)
    );
}

#[test]
fn a_duplicate_request_is_answered_from_the_reply_cache_and_not_executed_twice() {
    let mut executor = Executor::sequential(Appender::default(), state());
    let first = run_sequential(&mut executor, 1, &[request(1, 1, "a1")]).unwrap();
    let again = run_sequential(
        &mut executor,
        2,
        &[request(1, 1, "a1"), request(1, 1, "a1")],
    )
    .unwrap();
    assert_eq!(
        executor.app().executions.load(Ordering::Relaxed),
        1,
        "executed once"
    );
    assert_eq!(again.duplicates, 2);
    assert_eq!(again.executed, 0);
    assert_eq!(
        again.replies[0].body, first.replies[0].body,
        "the cached reply"
    );
    assert_eq!(
        again.replies[0].seq,
        BatchSeq(1),
        "the batch that executed it"
    );
    assert_eq!(
        executor.state().get(b"a").unwrap(),
        "a1",
        "state untouched by the duplicate"
    );
}

#[test]
fn a_request_older_than_the_clients_last_gets_no_reply() {
    let mut executor = Executor::sequential(Appender::default(), state());
    run_sequential(&mut executor, 1, &[request(1, 2, "a2")]).unwrap();
    let outcome = run_sequential(&mut executor, 2, &[request(1, 1, "a1")]).unwrap();
    assert!(outcome.replies.is_empty(), "a stale request is dropped");
    assert_eq!(executor.stats().stale_dropped, 1);
}

#[test]
fn requests_of_one_client_in_one_batch_run_in_order_even_in_parallel() {
    let runner = ThreadPoolRunner::new(2).unwrap();
    let mut executor = Executor::new(
        Appender::default(),
        state(),
        Box::new(GreedyMixer),
        Box::new(runner),
    );
    // Different objects, same client: the reply-cache key keeps them apart.
    let requests = [
        request(1, 1, "a1"),
        request(1, 2, "b2"),
        request(1, 3, "c3"),
    ];
    let outcome = executor
        .execute(BatchSeq(1), &requests, nondet(), ExecMode::Parallel)
        .unwrap();
    assert_eq!(
        outcome.parallel_batches, 3,
        "one client's requests never share a parallel batch"
    );
    assert_eq!(
        executor.cached_reply(ClientId(1)).unwrap().request_no,
        RequestNo(3)
    );
}

#[test]
fn a_panicking_request_gets_the_panic_reply_and_the_batch_goes_on() {
    let runner = ThreadPoolRunner::new(2).unwrap();
    let mut executor = Executor::new(
        Appender::default(),
        state(),
        Box::new(GreedyMixer),
        Box::new(runner),
    );
    let requests = [request(1, 1, "panic"), request(2, 1, "b1")];
    let outcome = executor
        .execute(BatchSeq(1), &requests, nondet(), ExecMode::Parallel)
        .unwrap();
    assert_eq!(outcome.replies[0].body, REPLY_APPLICATION_PANICKED);
    assert_eq!(outcome.replies[1].body, "b1");
    assert_eq!(executor.stats().application_panics, 1);
}

#[test]
fn batches_must_come_in_sequence() {
    let mut executor = Executor::sequential(Appender::default(), state());
    let err = run_sequential(&mut executor, 2, &[request(1, 1, "a1")]).unwrap_err();
    assert_eq!(
        err,
        ExecError::OutOfSequence {
            expected: BatchSeq(1),
            got: BatchSeq(2)
        }
    );
    assert_eq!(
        executor.state().sealed_version(),
        BatchSeq(0),
        "nothing executed"
    );
}

#[test]
fn an_oversized_batch_is_refused() {
    let mut executor = Executor::sequential(Appender::default(), state());
    let requests: Vec<Request> = (0..=eve_types::limits::BATCH_REQUESTS_MAX as u64)
        .map(|c| request(c, 1, "a"))
        .collect();
    let err = run_sequential(&mut executor, 1, &requests).unwrap_err();
    assert!(matches!(err, ExecError::BatchTooLarge { .. }), "{err}");
}

#[test]
fn the_application_cannot_write_eves_own_objects() {
    struct Intruder;
    impl Application for Intruder {
        fn conflict_keys(&self, _: &[u8], _: &mut ConflictKeys) {}
        fn execute(&self, ctx: &mut ExecContext<'_>, _: &[u8]) -> Bytes {
            let err = ctx
                .put(&[0xff, b'r', 0, 0, 0, 0, 0, 0, 0, 1], "forged")
                .unwrap_err();
            assert_eq!(err, StateError::ReservedKey);
            Bytes::from_static(b"refused")
        }
    }
    let mut executor = Executor::sequential(Intruder, state());
    let outcome = run_sequential(&mut executor, 1, &[request(7, 1, "x")]).unwrap();
    assert_eq!(outcome.replies[0].body, "refused");
}

#[test]
fn rollback_then_sequential_reexecution_reproduces_the_sequential_result() {
    let requests: Vec<Request> = (0..40)
        .map(|c| request(c, 1, &format!("{}x", c % 3)))
        .collect();
    let mut reference = Executor::sequential(Appender::default(), state());
    let expected = reference
        .execute(BatchSeq(1), &requests, nondet(), ExecMode::Sequential)
        .unwrap();

    let mut executor = Executor::new(
        Appender::default(),
        state(),
        Box::new(eve_mixer::ParallelMixer),
        Box::new(SeededRunner::new(3)),
    );
    let diverged = executor
        .execute(BatchSeq(1), &requests, nondet(), ExecMode::Parallel)
        .unwrap();
    assert_ne!(
        diverged.token, expected.token,
        "an all-parallel mixer reorders conflicting appends"
    );
    executor.rollback(BatchSeq(0)).unwrap();
    let repaired = run_sequential(&mut executor, 1, &requests).unwrap();
    assert_eq!(repaired, expected);
    assert_eq!(executor.stats().rollbacks, 1);
}

#[test]
fn every_request_gets_its_own_deterministic_time_and_random_value() {
    struct Stamp;
    impl Application for Stamp {
        fn conflict_keys(&self, _: &[u8], _: &mut ConflictKeys) {}
        fn execute(&self, ctx: &mut ExecContext<'_>, _: &[u8]) -> Bytes {
            Bytes::from(format!("{}:{}", ctx.time_ms(), ctx.random()))
        }
    }
    let requests: Vec<Request> = (0..3).map(|c| request(c, 1, "s")).collect();
    let run = |runner: Box<dyn eve_exec::ParallelRunner>| {
        let mut executor = Executor::new(Stamp, state(), Box::new(GreedyMixer), runner);
        executor
            .execute(BatchSeq(1), &requests, nondet(), ExecMode::Parallel)
            .unwrap()
    };
    let a = run(Box::new(InlineRunner));
    let b = run(Box::new(SeededRunner::new(5)));
    assert_eq!(
        a, b,
        "time and random values do not depend on execution order"
    );
    assert_ne!(a.replies[0].body, a.replies[1].body);
    assert!(a.replies[0].body.starts_with(b"1000:"));
}

/// The forced-divergence knob: replicas with different salts agree on nothing they execute in
/// parallel at the chosen rate, agree again when they execute sequentially, and a rate of 0
/// changes nothing.
#[test]
fn forced_divergence_splits_parallel_executions_only() {
    let executor = |ppm, salt| {
        Executor::new(
            Appender::default(),
            state(),
            Box::new(GreedyMixer),
            Box::new(InlineRunner),
        )
        .with_forced_divergence(ppm, salt)
    };
    let batch = [request(1, 1, "a1"), request(2, 1, "b1")];
    let root = |mut e: Executor<Appender>, mode| {
        e.execute(BatchSeq(1), &batch, nondet(), mode)
            .unwrap()
            .new_root
    };
    let always = 1_000_000;
    assert_ne!(
        root(executor(always, 1), ExecMode::Parallel),
        root(executor(always, 2), ExecMode::Parallel)
    );
    assert_eq!(
        root(executor(always, 1), ExecMode::Sequential),
        root(executor(always, 2), ExecMode::Sequential)
    );
    assert_eq!(
        root(executor(0, 1), ExecMode::Parallel),
        root(executor(0, 2), ExecMode::Parallel)
    );
    let mut counted = executor(always, 1);
    counted
        .execute(BatchSeq(1), &batch, nondet(), ExecMode::Parallel)
        .unwrap();
    assert_eq!(counted.stats().forced_divergences, 1);
    // About the asked share of batches is chosen, the same ones whatever the salt.
    let mut one_percent = executor(10_000, 1);
    for seq in 1..=2000 {
        one_percent
            .execute(
                BatchSeq(seq),
                &[request(1, seq, "a")],
                nondet(),
                ExecMode::Parallel,
            )
            .unwrap();
    }
    let forced = one_percent.stats().forced_divergences;
    assert!((8..=35).contains(&forced), "{forced} of 2000");
}

fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

/// Adaptive inline execution changes where a parallel batch runs, never what it produces:
/// the same roots and replies as on the pool alone, batch after batch, and both ways are used
/// (the slower one is tried again every few batches).
#[test]
fn adaptive_inline_runs_batches_both_ways_with_the_same_outcome() {
    let executor = |adaptive: bool| {
        let runner = ThreadPoolRunner::new(2).unwrap();
        let executor = Executor::new(
            Appender::default(),
            state(),
            Box::new(GreedyMixer),
            Box::new(runner),
        );
        if adaptive {
            executor.with_adaptive_inline(monotonic_ns)
        } else {
            executor
        }
    };
    let (mut plain, mut adaptive) = (executor(false), executor(true));
    for seq in 1..=100u64 {
        let batch: Vec<Request> = (0..10u64)
            .map(|c| {
                let key = (b'a' + (c % 5) as u8) as char;
                request(c + 1, seq, &format!("{key}{seq}"))
            })
            .collect();
        let a = plain
            .execute(BatchSeq(seq), &batch, nondet(), ExecMode::Parallel)
            .unwrap();
        let b = adaptive
            .execute(BatchSeq(seq), &batch, nondet(), ExecMode::Parallel)
            .unwrap();
        assert_eq!(
            (a.new_root, a.replies),
            (b.new_root, b.replies),
            "batch {seq}"
        );
        plain.mark_stable(BatchSeq(seq)).unwrap();
        adaptive.mark_stable(BatchSeq(seq)).unwrap();
    }
    let stats = adaptive.stats();
    assert!(stats.parallel_batches_inline > 0, "{stats:?}");
    assert!(
        stats.parallel_batches_inline < stats.parallel_batches,
        "the pool was tried too: {stats:?}"
    );
    assert_eq!(plain.stats().parallel_batches_inline, 0);
}
