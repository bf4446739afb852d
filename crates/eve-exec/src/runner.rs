//! How the requests of one parallel batch are run: on a pool of worker threads, in order on
//! the calling thread, or in a seeded order on the calling thread (for the simulator).
//!
//! Every runner has the same contract, so one executor serves the node, the benchmarks and
//! the deterministic simulator alike.

use eve_state::ParallelFor;
use eve_types::limits::EXECUTOR_THREADS_MAX;
use eve_types::{ConfigError, SplitMix64};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs the requests of one parallel batch.
pub trait ParallelRunner: Send {
    /// Calls `task(i)` exactly once for every `i` in `0..len`, in any order and on any of its
    /// threads, and returns only when every call has returned: the barrier between parallel
    /// batches. `task` does not panic (the executor catches application panics).
    fn run(&mut self, len: usize, task: &(dyn Fn(usize) + Sync));

    /// Threads that run tasks at once.
    fn threads(&self) -> usize;

    /// A short name for logs and reports.
    fn name(&self) -> &'static str;
}

/// A fixed pool of worker threads. The calling thread works too: a runner of `threads`
/// threads keeps `threads - 1` workers, and every thread, the caller included, takes the next
/// task of the parallel batch until none is left. So exactly `threads` threads compete for
/// cores while a batch runs, and the caller never sleeps while others work.
pub struct ThreadPoolRunner {
    /// The workers besides the calling thread; `None` for a single thread.
    workers: Option<rayon::ThreadPool>,
    threads: usize,
}

impl ThreadPoolRunner {
    /// A runner of `threads` threads (1 ..= [`EXECUTOR_THREADS_MAX`]), the caller included.
    pub fn new(threads: usize) -> Result<Self, ConfigError> {
        if !(1..=EXECUTOR_THREADS_MAX).contains(&threads) {
            return Err(ConfigError::new(
                "executor_threads",
                threads,
                format!("1 ..= {EXECUTOR_THREADS_MAX}"),
            ));
        }
        let workers = if threads == 1 {
            None
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads - 1)
                .thread_name(|i| format!("eve-exec-{i}"))
                .build()
                .map_err(|err| {
                    ConfigError::new(
                        "executor_threads",
                        threads,
                        format!("a spawnable count ({err})"),
                    )
                })?;
            Some(pool)
        };
        Ok(Self { workers, threads })
    }
}

impl ParallelRunner for ThreadPoolRunner {
    fn run(&mut self, len: usize, task: &(dyn Fn(usize) + Sync)) {
        let Some(workers) = &self.workers else {
            (0..len).for_each(task);
            return;
        };
        if len <= 1 {
            // A lone request gains nothing from a hop to another thread.
            (0..len).for_each(task);
            return;
        }
        let next = AtomicUsize::new(0);
        let take_tasks = || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= len {
                    break;
                }
                task(i);
            }
        };
        let helpers = (self.threads - 1).min(len - 1);
        workers.in_place_scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|_| take_tasks());
            }
            take_tasks();
        });
    }

    fn threads(&self) -> usize {
        self.threads
    }

    fn name(&self) -> &'static str {
        "thread-pool"
    }
}

/// The pool also lends its threads to the state store for sealing.
impl ParallelFor for ThreadPoolRunner {
    fn parallel_for(&mut self, len: usize, task: &(dyn Fn(usize) + Sync)) {
        self.run(len, task);
    }

    fn parallelism(&self) -> usize {
        self.threads
    }
}

/// Runs every task in order on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct InlineRunner;

impl ParallelRunner for InlineRunner {
    fn run(&mut self, len: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..len).for_each(task);
    }

    fn threads(&self) -> usize {
        1
    }

    fn name(&self) -> &'static str {
        "inline"
    }
}

/// Runs the tasks of each parallel batch in a seeded random order on the calling thread: one
/// of the interleavings real threads could produce, chosen reproducibly. Two replicas with
/// different seeds model two machines whose threads interleave differently.
#[derive(Clone, Debug)]
pub struct SeededRunner {
    rng: SplitMix64,
}

impl SeededRunner {
    /// A runner whose orders follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }
}

impl ParallelRunner for SeededRunner {
    fn run(&mut self, len: usize, task: &(dyn Fn(usize) + Sync)) {
        let mut order: Vec<usize> = (0..len).collect();
        for i in (1..len).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        order.into_iter().for_each(task);
    }

    fn threads(&self) -> usize {
        1
    }

    fn name(&self) -> &'static str {
        "seeded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn calls(runner: &mut dyn ParallelRunner, len: usize) -> Vec<usize> {
        let seen = Mutex::new(Vec::new());
        runner.run(len, &|i| seen.lock().unwrap().push(i));
        seen.into_inner().unwrap()
    }

    #[test]
    fn every_runner_calls_each_task_once() {
        let runners: Vec<Box<dyn ParallelRunner>> = vec![
            Box::new(ThreadPoolRunner::new(3).unwrap()),
            Box::new(InlineRunner),
            Box::new(SeededRunner::new(7)),
        ];
        for mut runner in runners {
            for len in [0, 1, 2, 100] {
                let mut seen = calls(runner.as_mut(), len);
                seen.sort_unstable();
                assert_eq!(seen, (0..len).collect::<Vec<_>>(), "{}", runner.name());
            }
        }
    }

    #[test]
    fn inline_runs_in_order() {
        assert_eq!(calls(&mut InlineRunner, 5), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn seeded_orders_repeat_per_seed_and_differ_across_seeds() {
        let a = calls(&mut SeededRunner::new(1), 50);
        assert_eq!(
            a,
            calls(&mut SeededRunner::new(1), 50),
            "same seed, same order"
        );
        assert_ne!(
            a,
            calls(&mut SeededRunner::new(2), 50),
            "another seed, another order"
        );
        assert_ne!(a, (0..50).collect::<Vec<_>>(), "not the batch order");
    }

    #[test]
    fn zero_threads_is_refused() {
        let err = ThreadPoolRunner::new(0).err().unwrap();
        assert_eq!(err.field, "executor_threads");
    }
}
