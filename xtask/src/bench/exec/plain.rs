//! The machine's limit: the sweep's busy work on plain threads, with no executor, mixer or
//! state, so the speedup the hardware allows is measured in the same run as the executor's.

use anyhow::{Context, Result, ensure};
use eve_apps::busy_work;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The plain-thread speedups for one amount of work per request.
#[derive(Debug)]
pub struct PlainLimits {
    rounds: u32,
    /// Requests timed on each thread count: as many as one thread runs in the measurement
    /// time.
    requests: u64,
    /// How long one thread took for them.
    one_thread: Duration,
    /// Speedups measured so far, by thread count.
    speedups: BTreeMap<usize, f64>,
}

impl PlainLimits {
    /// Runs batches of `batch` requests of `rounds` rounds on this thread, one after another,
    /// until `measure` has passed (after `warmup` of the same): the one-thread baseline.
    pub fn measure_one_thread(
        rounds: u32,
        batch: usize,
        warmup: Duration,
        measure: Duration,
    ) -> Self {
        let run_batches = |duration: Duration| {
            let start = Instant::now();
            let mut requests = 0u64;
            loop {
                run_share(rounds, batch as u64);
                requests += batch as u64;
                if start.elapsed() >= duration {
                    return (requests, start.elapsed());
                }
            }
        };
        run_batches(warmup);
        let (requests, one_thread) = run_batches(measure);
        Self {
            rounds,
            requests,
            one_thread,
            speedups: BTreeMap::new(),
        }
    }

    /// Requests per second on one plain thread.
    pub fn one_thread_rate(&self) -> f64 {
        self.requests as f64 / self.one_thread.as_secs_f64()
    }

    /// How much faster `threads` plain threads run the one-thread baseline's requests, split
    /// evenly; measured on first use.
    pub fn speedup(&mut self, threads: usize) -> Result<f64> {
        if let Some(&speedup) = self.speedups.get(&threads) {
            return Ok(speedup);
        }
        let elapsed = run_split(self.rounds, self.requests, threads)?;
        let speedup = self.one_thread.as_secs_f64() / elapsed.as_secs_f64();
        self.speedups.insert(threads, speedup);
        Ok(speedup)
    }
}

/// Runs `requests` requests' busy work split evenly over `threads` scoped threads; returns
/// the time from the first spawn to the last join.
fn run_split(rounds: u32, requests: u64, threads: usize) -> Result<Duration> {
    ensure!(threads >= 1, "at least one thread");
    let shares = (0..threads as u64)
        .map(|i| requests / threads as u64 + u64::from(i < requests % threads as u64));
    let start = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles = shares
            .enumerate()
            .map(|(i, share)| {
                std::thread::Builder::new()
                    .name(format!("plain-{i}"))
                    .spawn_scoped(scope, move || run_share(rounds, share))
                    .with_context(|| format!("spawning plain thread {i} of {threads}"))
            })
            .collect::<Result<Vec<_>>>()?;
        for handle in handles {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Ok(())
    })?;
    Ok(start.elapsed())
}

/// `requests` calls of `busy_work(rounds)`, kept from being optimised away.
fn run_share(rounds: u32, requests: u64) {
    let mut acc = 0u64;
    for _ in 0..requests {
        acc ^= busy_work(black_box(rounds));
    }
    black_box(acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speedups_are_positive_and_memoised() {
        let mut limits =
            PlainLimits::measure_one_thread(10, 10, Duration::ZERO, Duration::from_millis(1));
        assert!(limits.requests >= 10, "at least one batch");
        let first = limits.speedup(2).expect("threads spawn");
        assert!(first > 0.0);
        assert_eq!(limits.speedup(2).expect("memoised"), first, "measured once");
    }
}
