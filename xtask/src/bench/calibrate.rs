//! How many rounds of [`busy_work`] make one microsecond on this machine.

use super::stats::median_f64;
use anyhow::{Result, ensure};
use eve_apps::busy_work;
use std::hint::black_box;
use std::time::Instant;

/// Rounds timed per trial: long enough (milliseconds) that the clock's resolution and the
/// call's overhead vanish, short enough that calibration takes well under a second.
const CALIBRATION_ROUNDS: u32 = 4_000_000;

/// Trials; the median is kept, so a trial disturbed by another process does not count.
const CALIBRATION_TRIALS: usize = 9;

/// The rate of [`busy_work`] on this machine, measured once at startup.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// Rounds of [`busy_work`] per microsecond (median of the trials).
    pub rounds_per_us: f64,
}

impl Calibration {
    /// Times [`CALIBRATION_TRIALS`] runs of [`CALIBRATION_ROUNDS`] rounds on this thread
    /// (after one untimed run) and keeps the median rate.
    pub fn measure() -> Result<Self> {
        black_box(busy_work(black_box(CALIBRATION_ROUNDS)));
        let mut rates: Vec<f64> = (0..CALIBRATION_TRIALS)
            .map(|_| {
                let start = Instant::now();
                black_box(busy_work(black_box(CALIBRATION_ROUNDS)));
                let us = start.elapsed().as_secs_f64() * 1e6;
                f64::from(CALIBRATION_ROUNDS) / us
            })
            .collect();
        let rounds_per_us = median_f64(&mut rates);
        ensure!(
            rounds_per_us.is_finite() && rounds_per_us > 0.0,
            "calibration measured {rounds_per_us} busy-work rounds per microsecond"
        );
        Ok(Self { rounds_per_us })
    }

    /// Rounds of [`busy_work`] that take about `work_us` microseconds.
    pub fn rounds_for(&self, work_us: u64) -> Result<u32> {
        let rounds = (work_us as f64 * self.rounds_per_us).round();
        ensure!(
            rounds <= f64::from(u32::MAX),
            "{work_us} µs of work is {rounds} busy-work rounds, more than a BusyOp holds \
             ({}); ask for less work per request",
            u32::MAX
        );
        Ok(rounds as u32)
    }
}
