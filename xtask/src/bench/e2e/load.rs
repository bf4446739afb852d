//! The load generator: clients that call a system and time every call.
//!
//! - **Closed loop**: `clients` callers, each with one call outstanding, calling again as soon
//!   as the last call returns. Throughput is what the system sustains at that concurrency; the
//!   latency is each call's own.
//! - **Open loop**: calls are due at a fixed rate whatever the system does (call `i` at
//!   `start + i / rate`), taken by `clients` callers, each with one call outstanding. A call's
//!   latency runs from when it was *due*, not from when a caller got to send it: a system that
//!   stalls delays every call due during the stall, and each of those counts its wait (the
//!   correction for coordinated omission). The time from sending to the answer is kept apart
//!   as the service time.
//!
//! Time is tokio's, so tests run the generator on a paused clock, deterministically.

use bytes::Bytes;
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A caller of the system under test: one per load-generator client, one call at a time.
pub trait Caller: Send + 'static {
    /// Calls `op`; an `Err` is a failed call (counted, not timed).
    fn call(&mut self, op: Bytes) -> impl Future<Output = Result<Bytes, String>> + Send;
}

/// Draws the next operation of a workload for one client.
pub trait Draw: Send + 'static {
    /// The next operation.
    fn next_op(&mut self) -> Bytes;
}

impl Draw for Box<dyn Draw> {
    fn next_op(&mut self) -> Bytes {
        (**self).next_op()
    }
}

/// How calls are offered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// Each client calls again as soon as its last call returned.
    Closed,
    /// Calls are due at `per_second`, spread evenly.
    Open {
        /// Calls due per second.
        per_second: f64,
    },
}

/// The latencies the histograms hold: 1 us to 60 s, 3 significant digits.
const LATENCY_US_MAX: u64 = 60_000_000;

/// What a load run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Calls that returned a reply.
    pub completed: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Calls due that no caller reached before the end (open loop: the system fell behind).
    pub missed: u64,
    /// From the first call to the end of the run.
    pub elapsed: Duration,
    /// Latency in microseconds: from sending (closed loop) or from when the call was due
    /// (open loop) to the reply.
    pub latency_us: Histogram<u64>,
    /// From sending to the reply, in microseconds (equal to `latency_us` in a closed loop).
    pub service_us: Histogram<u64>,
}

impl LoadReport {
    /// Replies per second.
    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The latency at `quantile` (0 to 1), in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, LATENCY_US_MAX)
}

/// Progress shared with whoever watches the run (a progress bar).
#[derive(Debug, Default)]
pub struct Progress {
    /// Calls completed so far.
    pub completed: AtomicU64,
}

/// Runs `load` for `warmup` and then `duration` with one task per `(caller, draw)` pair, and
/// gathers what each measured in `duration`: calls sent (closed loop) or due (open loop)
/// during the warm-up are not counted, nor are calls still outstanding at the end (they are
/// awaited).
pub async fn run<C: Caller, D: Draw>(
    clients: Vec<(C, D)>,
    load: Load,
    (warmup, duration): (Duration, Duration),
    progress: Arc<Progress>,
) -> LoadReport {
    let start = Instant::now();
    let measured = start + warmup;
    let deadline = measured + duration;
    let next_due = Arc::new(AtomicU64::new(0));
    let interval = match load {
        Load::Closed => None,
        Load::Open { per_second } => Some(Duration::from_secs_f64(1.0 / per_second.max(1e-9))),
    };
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(mut caller, mut draw)| {
            let (next_due, progress) = (next_due.clone(), progress.clone());
            tokio::spawn(async move {
                let (mut latency, mut service) = (histogram(), histogram());
                let (mut completed, mut failed) = (0u64, 0u64);
                loop {
                    let due = match interval {
                        None => Instant::now(),
                        Some(interval) => {
                            let i = next_due.fetch_add(1, Ordering::Relaxed);
                            let due = start + interval.mul_f64(i as f64);
                            tokio::time::sleep_until(due).await;
                            due
                        }
                    };
                    if due >= deadline {
                        break;
                    }
                    let sent = Instant::now();
                    let result = caller.call(draw.next_op()).await;
                    let answered = Instant::now();
                    if answered > deadline {
                        break;
                    }
                    match result {
                        _ if due < measured => {}
                        Ok(_) => {
                            completed += 1;
                            progress.completed.fetch_add(1, Ordering::Relaxed);
                            latency
                                .record(micros(answered - due))
                                .expect("clamped into range");
                            service
                                .record(micros(answered - sent))
                                .expect("clamped into range");
                        }
                        Err(_) => failed += 1,
                    }
                }
                (latency, service, completed, failed)
            })
        })
        .collect();
    let (mut latency_us, mut service_us) = (histogram(), histogram());
    let (mut completed, mut failed) = (0, 0);
    for task in tasks {
        let (latency, service, c, f) = task.await.expect("a load task does not panic");
        latency_us.add(latency).expect("same bounds");
        service_us.add(service).expect("same bounds");
        completed += c;
        failed += f;
    }
    let missed = match interval {
        None => 0,
        Some(interval) => {
            let due = |d: Duration| (d.as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
            let due_in_window = due(warmup + duration) - due(warmup);
            due_in_window.saturating_sub(completed + failed)
        }
    };
    LoadReport {
        completed,
        failed,
        missed,
        elapsed: duration,
        latency_us,
        service_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system that answers after `service`, except that it stalls once: calls sent between
    /// `stall_from` and `stall_from + stall` wait until the stall is over.
    struct Fake {
        start: Instant,
        service: Duration,
        stall: Option<(Duration, Duration)>,
    }

    impl Caller for Fake {
        async fn call(&mut self, op: Bytes) -> Result<Bytes, String> {
            let now = Instant::now() - self.start;
            if let Some((from, len)) = self.stall
                && now >= from
                && now < from + len
            {
                tokio::time::sleep(from + len - now).await;
            }
            tokio::time::sleep(self.service).await;
            if op.as_ref() == b"fail" {
                return Err("refused".into());
            }
            Ok(op)
        }
    }

    struct Ops(u64);

    impl Draw for Ops {
        fn next_op(&mut self) -> Bytes {
            self.0 += 1;
            if self.0.is_multiple_of(10) {
                Bytes::from_static(b"fail")
            } else {
                Bytes::from_static(b"ok")
            }
        }
    }

    fn clients(n: usize, service_ms: u64, stall: Option<(u64, u64)>) -> Vec<(Fake, Ops)> {
        let start = Instant::now();
        (0..n)
            .map(|_| {
                let fake = Fake {
                    start,
                    service: Duration::from_millis(service_ms),
                    stall: stall.map(|(f, l)| (Duration::from_millis(f), Duration::from_millis(l))),
                };
                (fake, Ops(0))
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_keeps_one_call_per_client_outstanding() {
        let report = run(
            clients(4, 10, None),
            Load::Closed,
            (Duration::ZERO, Duration::from_secs(1)),
            Arc::default(),
        )
        .await;
        // Each client: 100 calls of 10 ms in a second (the last answered at the end), every
        // tenth failing.
        assert_eq!(report.completed + report.failed, 4 * 100);
        assert_eq!(report.failed, 4 * 10);
        assert!(
            (report.latency_ms(0.5) - 10.0).abs() < 0.05,
            "{}",
            report.latency_ms(0.5)
        );
        assert_eq!(report.missed, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_offers_its_rate_and_counts_a_stall_against_every_call_due_in_it() {
        // 100 calls/s over 8 clients, 1 ms each: far below capacity. A 500 ms stall from
        // 200 ms on delays the ~50 calls due in it; timed from when they were due, they show
        // it; timed from sending, only the few that were sent into the stall would.
        let report = run(
            clients(8, 1, Some((200, 500))),
            Load::Open { per_second: 100.0 },
            (Duration::ZERO, Duration::from_secs(2)),
            Arc::default(),
        )
        .await;
        assert_eq!(report.completed + report.failed + report.missed, 200);
        assert_eq!(report.missed, 0, "the system caught up after the stall");
        let late = |h: &Histogram<u64>| h.count_between(100_000, LATENCY_US_MAX);
        assert!(
            late(&report.latency_us) >= 40,
            "{}",
            late(&report.latency_us)
        );
        assert!(
            late(&report.service_us) <= 8,
            "{}",
            late(&report.service_us)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_beyond_capacity_counts_the_calls_it_could_not_offer() {
        // 1,000 calls/s offered to 2 clients of 10 ms each: they manage 200/s.
        let report = run(
            clients(2, 10, None),
            Load::Open { per_second: 1000.0 },
            (Duration::ZERO, Duration::from_secs(1)),
            Arc::default(),
        )
        .await;
        assert!(report.completed + report.failed <= 200);
        assert!(report.missed >= 790, "{}", report.missed);
        // Calls due late in the run waited for most of it.
        assert!(report.latency_ms(0.99) > 500.0);
    }
}
