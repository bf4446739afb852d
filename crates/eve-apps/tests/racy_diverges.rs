//! The racy application diverges under parallel execution across repeated runs, and never
//! under sequential execution: the concurrency bug Eve must detect and survive.

use eve_apps::{RACY_COUNTER_KEY, RacyCounter};
use eve_exec::{ExecMode, Executor, ParallelRunner, SeededRunner, ThreadPoolRunner, Token};
use eve_mixer::{GreedyMixer, ParallelMixer};
use eve_state::{StateConfig, StateStore};
use eve_types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
use std::collections::BTreeSet;

const REQUESTS: u64 = 400;

fn batch() -> Vec<Request> {
    (0..REQUESTS)
        .map(|c| Request::new(ClientId(c), RequestNo(1), &b"inc"[..]).unwrap())
        .collect()
}

fn run(app: RacyCounter, runner: Box<dyn ParallelRunner>, mode: ExecMode) -> (Token, u64) {
    let state = StateStore::new(StateConfig::new(6, 64).unwrap());
    let mut executor = Executor::new(app, state, Box::new(GreedyMixer), runner);
    let outcome = executor
        .execute(BatchSeq(1), &batch(), NonDet::default(), mode)
        .unwrap();
    let counter = executor.state().get(RACY_COUNTER_KEY).unwrap();
    (
        outcome.token,
        u64::from_le_bytes(counter[..].try_into().unwrap()),
    )
}

#[test]
fn sequential_execution_never_diverges() {
    let runs: BTreeSet<(Token, u64)> = (0..5)
        .map(|_| {
            run(
                RacyCounter::new(200),
                Box::new(ThreadPoolRunner::new(2).unwrap()),
                ExecMode::Sequential,
            )
        })
        .collect();
    assert_eq!(runs.len(), 1, "sequential execution is deterministic");
    assert_eq!(runs.first().unwrap().1, REQUESTS, "no update is lost");
}

#[test]
fn real_threads_diverge_across_repeated_runs() {
    // Timing decides the outcome, so try until two runs differ; on any machine with two
    // hardware threads the first few runs already do.
    let mut seen = BTreeSet::new();
    for attempt in 0..200 {
        seen.insert(run(
            RacyCounter::new(2_000),
            Box::new(ThreadPoolRunner::new(4).unwrap()),
            ExecMode::Parallel,
        ));
        if seen.len() > 1 {
            return;
        }
        assert!(
            attempt < 199,
            "200 parallel runs of a racy counter all agreed: {seen:?}"
        );
    }
}

#[test]
fn seeded_interleavings_diverge_by_seed() {
    let tokens: BTreeSet<Token> = (0..4)
        .map(|seed| {
            run(
                RacyCounter::new(0),
                Box::new(SeededRunner::new(seed)),
                ExecMode::Parallel,
            )
            .0
        })
        .collect();
    assert_eq!(
        tokens.len(),
        4,
        "each interleaving assigns the replies differently"
    );
}

#[test]
fn an_honest_racy_counter_is_serialized_by_the_mixer() {
    let (token_a, count) = run(
        RacyCounter::honest(0),
        Box::new(SeededRunner::new(1)),
        ExecMode::Parallel,
    );
    let (token_b, _) = run(
        RacyCounter::honest(0),
        Box::new(SeededRunner::new(2)),
        ExecMode::Parallel,
    );
    assert_eq!(
        token_a, token_b,
        "naming the conflict makes any interleaving agree"
    );
    assert_eq!(count, REQUESTS);
    // And the all-parallel mixer, which ignores keys, does not save it.
    let state = StateStore::new(StateConfig::new(6, 64).unwrap());
    let mut executor = Executor::new(
        RacyCounter::honest(0),
        state,
        Box::new(ParallelMixer),
        Box::new(SeededRunner::new(1)),
    );
    let outcome = executor
        .execute(BatchSeq(1), &batch(), NonDet::default(), ExecMode::Parallel)
        .unwrap();
    assert_ne!(outcome.token, token_a);
}
