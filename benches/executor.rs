//! Executor throughput: requests per second of the sequential executor (the baseline, classic
//! SMR) and of the parallel executor on two threads, on the same batches.
//!
//! Requests are [`BusyWork`] operations that burn a calibrated number of microseconds and
//! write one object: their own, or, for the chosen fraction of "conflicting" requests, one
//! shared hot object. Which requests conflict is drawn from a fixed seed. Each iteration
//! executes one batch of 1,000 requests with fresh request numbers (so the reply cache answers
//! none of them) and marks it stable (so the state keeps no undo records and stays the same
//! size). Report the parallel executor as a ratio to the sequential one measured in the same
//! run; `cargo xtask bench exec` does the full sweep, with the machine's own limit.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, black_box, criterion_group, criterion_main,
};
use eve::apps::{BusyOp, BusyWork, busy_work};
use eve::exec::{ExecMode, Executor, ThreadPoolRunner};
use eve::mixer::GreedyMixer;
use eve::state::{StateConfig, StateStore};
use eve::types::splitmix64;
use eve::types::{ClientId, NonDet, Request, RequestNo};
use std::time::{Duration, Instant};

/// Requests per batch.
const BATCH: usize = 1000;

/// Worker threads of the parallel executor.
const THREADS: usize = 2;

/// The object every conflicting request writes.
const HOT_OBJECT: u64 = 0;

/// Rounds of [`busy_work`] per microsecond on this machine: the median of a few timed runs.
fn rounds_per_us() -> f64 {
    const ROUNDS: u32 = 2_000_000;
    black_box(busy_work(black_box(ROUNDS)));
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(busy_work(black_box(ROUNDS)));
            f64::from(ROUNDS) / (start.elapsed().as_secs_f64() * 1e6)
        })
        .collect();
    rates.sort_unstable_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// `BATCH` requests from distinct clients, `conflict_pct` percent of them writing the hot
/// object, the others an object of their own.
fn requests(rounds: u32, conflict_pct: u64) -> Vec<Request> {
    (0..BATCH as u64)
        .map(|i| {
            let object = if splitmix64(i) % 100 < conflict_pct {
                HOT_OBJECT
            } else {
                i + 1
            };
            Request::new(
                ClientId(i + 1),
                RequestNo(1),
                BusyOp { rounds, object }.encode(),
            )
            .expect("a BusyOp is far below the operation size limit")
        })
        .collect()
}

/// An executor with its batch, executing the batch again and again.
struct Workload {
    executor: Executor<BusyWork>,
    mode: ExecMode,
    requests: Vec<Request>,
    round: u64,
}

impl Workload {
    fn new(executor: Executor<BusyWork>, mode: ExecMode, requests: Vec<Request>) -> Self {
        Self {
            executor,
            mode,
            requests,
            round: 0,
        }
    }

    /// Executes the batch once more, renumbered, and marks it stable.
    fn execute_batch(&mut self) {
        self.round += 1;
        for request in &mut self.requests {
            request.request_no = RequestNo(self.round);
        }
        let seq = self.executor.state().working_version();
        let outcome = self
            .executor
            .execute(seq, &self.requests, NonDet::default(), self.mode)
            .expect("batches are executed in sequence");
        assert_eq!(
            outcome.executed, BATCH,
            "fresh request numbers: no duplicates"
        );
        self.executor
            .mark_stable(seq)
            .expect("the batch just sealed is held");
    }
}

fn new_state() -> StateStore {
    StateStore::new(StateConfig::default())
}

fn executors(c: &mut Criterion) {
    let rounds_per_us = rounds_per_us();
    let mut group = c.benchmark_group("executor");
    // Iterations take milliseconds (1 µs of work) to a tenth of a second (100 µs): flat
    // sampling with few samples keeps the run short.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(BATCH as u64));
    for work_us in [1u32, 100] {
        let rounds = (f64::from(work_us) * rounds_per_us).round() as u32;
        for conflict_pct in [0, 50] {
            let parameter = format!("{work_us}us_work/{conflict_pct}pct_conflicts");
            let batch = requests(rounds, conflict_pct);
            let sequential = Executor::sequential(BusyWork, new_state());
            let mut workload = Workload::new(sequential, ExecMode::Sequential, batch.clone());
            group.bench_function(BenchmarkId::new("sequential", &parameter), |b| {
                b.iter(|| workload.execute_batch())
            });
            let runner = ThreadPoolRunner::new(THREADS).expect("two threads are in range");
            let parallel = Executor::new(
                BusyWork,
                new_state(),
                Box::new(GreedyMixer),
                Box::new(runner),
            );
            let mut workload = Workload::new(parallel, ExecMode::Parallel, batch);
            group.bench_function(
                BenchmarkId::new(format!("parallel_{THREADS}_threads"), &parameter),
                |b| b.iter(|| workload.execute_batch()),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, executors);
criterion_main!(benches);
