//! Token cost: `StateStore::seal` (which computes the new Merkle root) plus `Token::compute`,
//! after 1,000 distinct existing objects were written, in a state of 10,000 objects and in one
//! of 1,000,000.
//!
//! Sealing rehashes only the buckets written and their paths to the root, so the two should
//! cost about the same: report the large state as a ratio to the small one. The states are
//! built once, outside the timing; each iteration writes its objects untimed, times only seal
//! and token, then marks the version stable so that no undo record accumulates. The 1,000
//! writes themselves are measured apart.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use eve::exec::Token;
use eve::state::{StateConfig, StateStore};
use eve::types::splitmix64;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Objects written before each seal.
const MODIFIED: u64 = 1000;

fn object_key(i: u64) -> [u8; 9] {
    let mut key = [b'o'; 9];
    key[1..].copy_from_slice(&i.to_be_bytes());
    key
}

/// A state of `objects` objects, sealed and marked stable.
fn populated_state(objects: u64) -> StateStore {
    let mut state = StateStore::new(StateConfig::default());
    for i in 0..objects {
        state
            .put(&object_key(i), Bytes::copy_from_slice(&i.to_le_bytes()))
            .expect("small keys and values fit the limits");
    }
    let version = state.working_version();
    state.seal().expect("one version is retained");
    state.mark_stable(version).expect("just sealed");
    state
}

/// The writes of round `round`: `MODIFIED` distinct existing objects (Floyd's algorithm; the
/// set is only looked up), each given a new value.
fn writes(objects: u64, round: u64) -> Vec<([u8; 9], Bytes)> {
    let mut seen = HashSet::with_capacity(MODIFIED as usize);
    let value = Bytes::copy_from_slice(&round.to_le_bytes());
    (objects - MODIFIED..objects)
        .map(|j| {
            let candidate = splitmix64(splitmix64(round) ^ j) % (j + 1);
            let pick = if seen.contains(&candidate) {
                j
            } else {
                candidate
            };
            seen.insert(pick);
            (object_key(pick), value.clone())
        })
        .collect()
}

fn put_all(state: &StateStore, writes: Vec<([u8; 9], Bytes)>) {
    for (key, value) in writes {
        state
            .put(&key, value)
            .expect("small keys and values fit the limits");
    }
}

/// Seals the working version, computes its token and marks it stable; returns the time of
/// seal plus token only.
fn seal_and_token(state: &mut StateStore) -> Duration {
    let seq = state.working_version();
    let previous_root = state.root();
    let start = Instant::now();
    let new_root = state
        .seal()
        .expect("every version is marked stable at once");
    black_box(Token::compute(seq, previous_root, new_root));
    let elapsed = start.elapsed();
    state.mark_stable(seq).expect("just sealed");
    elapsed
}

fn tokens(c: &mut Criterion) {
    let mut group = c.benchmark_group("token");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(MODIFIED));
    for objects in [10_000u64, 1_000_000] {
        let mut state = populated_state(objects);
        let mut round = 0u64;
        group.bench_function(
            BenchmarkId::new("seal_and_token_after_1000_puts", objects),
            |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        put_all(&state, writes(objects, round));
                        timed += seal_and_token(&mut state);
                    }
                    timed
                })
            },
        );
        group.bench_function(BenchmarkId::new("1000_puts", objects), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let writes = writes(objects, round);
                    let start = Instant::now();
                    put_all(&state, writes);
                    timed += start.elapsed();
                    seal_and_token(&mut state);
                }
                timed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
