//! Mixer throughput: how many requests per second the greedy mixer schedules.
//!
//! Each request names two keys: it reads a key of its own and writes either a key of its own or,
//! for the chosen fraction of "conflicting" requests, one shared hot key. Which requests conflict
//! is drawn from a fixed seed, so every run measures the same batches. The sequential mixer runs
//! on the same batch as a baseline, so that reports can give the greedy mixer's cost as a ratio
//! measured in the same run. Inputs are built outside the timed loop.

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use eve::mixer::{ConflictKeys, GreedyMixer, Mixer, SequentialMixer};
use eve::types::splitmix64;

/// `requests` requests of one read and one write each; `conflict_pct` percent of them write the
/// hot key.
fn batch(requests: usize, conflict_pct: u64) -> Vec<ConflictKeys> {
    (0..requests as u64)
        .map(|i| {
            let mut keys = ConflictKeys::new();
            keys.read(format!("read/{i}").as_bytes());
            if splitmix64(i) % 100 < conflict_pct {
                keys.write(b"hot");
            } else {
                keys.write(format!("write/{i}").as_bytes());
            }
            keys
        })
        .collect()
}

fn mixers(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer");
    let cases = [(1_000, 0), (1_000, 10), (1_000, 50), (8_192, 0)];
    for (requests, conflict_pct) in cases {
        let keys = batch(requests, conflict_pct);
        let parameter = format!("{requests}_requests/{conflict_pct}pct_conflicts");
        group.throughput(Throughput::Elements(requests as u64));
        let candidates: [&dyn Mixer; 2] = [&GreedyMixer, &SequentialMixer];
        for mixer in candidates {
            group.bench_with_input(
                BenchmarkId::new(mixer.name(), &parameter),
                &keys,
                |b, keys| b.iter(|| mixer.mix(black_box(keys))),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, mixers);
criterion_main!(benches);
