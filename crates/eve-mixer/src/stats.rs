//! Running statistics over the schedules a mixer produced.

use crate::schedule::Schedule;

/// Running statistics over schedules: how much parallelism a mixer found.
///
/// Counters are integers and saturate rather than wrap; the ratios are floats and are for
/// reports only, never for a decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixerStats {
    /// Schedules recorded (one per batch).
    pub batches: u64,
    /// Requests in them.
    pub requests: u64,
    /// Parallel batches in them.
    pub parallel_batches: u64,
    /// The most requests in any one parallel batch recorded.
    pub widest: u64,
}

impl MixerStats {
    /// Adds one batch's schedule.
    pub fn record(&mut self, schedule: &Schedule) {
        self.batches = self.batches.saturating_add(1);
        self.requests = self.requests.saturating_add(schedule.requests() as u64);
        self.parallel_batches = self
            .parallel_batches
            .saturating_add(schedule.parallel_batch_count() as u64);
        self.widest = self.widest.max(schedule.widest() as u64);
    }

    /// Mean parallel batches per batch (barriers per batch); 0 before any batch.
    pub fn parallel_batches_per_batch(&self) -> f64 {
        ratio(self.parallel_batches, self.batches)
    }

    /// Mean requests per parallel batch; 0 before any parallel batch.
    pub fn mean_width(&self) -> f64 {
        ratio(self.requests, self.parallel_batches)
    }
}

/// `numerator / denominator`, 0 when the denominator is.
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_report_zero_rather_than_nan() {
        let stats = MixerStats::default();
        assert_eq!(stats.parallel_batches_per_batch(), 0.0, "no batch yet");
        assert_eq!(stats.mean_width(), 0.0, "no parallel batch yet");
    }

    #[test]
    fn record_adds_counts_and_keeps_the_widest() {
        let mut stats = MixerStats::default();
        stats.record(&Schedule::parallel(6));
        stats.record(&Schedule::sequential(3));
        stats.record(&Schedule::from_parallel_batches(vec![vec![0, 1], vec![2]]).unwrap());
        assert_eq!(
            stats,
            MixerStats {
                batches: 3,
                requests: 12,
                parallel_batches: 1 + 3 + 2,
                widest: 6,
            },
            "counts add up; widest is a maximum, not a sum"
        );
        assert_eq!(
            stats.parallel_batches_per_batch(),
            2.0,
            "6 parallel batches / 3 batches"
        );
        assert_eq!(stats.mean_width(), 2.0, "12 requests / 6 parallel batches");
    }

    #[test]
    fn an_empty_batch_counts_as_a_batch_with_no_parallel_batch() {
        let mut stats = MixerStats::default();
        stats.record(&Schedule::parallel(0));
        assert_eq!(
            stats,
            MixerStats {
                batches: 1,
                ..MixerStats::default()
            },
            "an empty batch adds one batch and nothing else"
        );
        assert_eq!(stats.mean_width(), 0.0);
    }
}
