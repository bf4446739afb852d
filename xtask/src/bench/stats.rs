//! Small statistics and a seeded generator for the harness.

use std::time::Duration;

/// The `pct`-th percentile of `samples` (nearest rank), or zero for no samples. Sorts
/// `samples` in place.
pub fn percentile(samples: &mut [Duration], pct: u32) -> Duration {
    assert!(pct <= 100, "a percentile is at most 100, got {pct}");
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    // Nearest rank: the smallest sample with at least pct% of the samples at or below it.
    let rank = (samples.len() * pct as usize).div_ceil(100).max(1);
    samples[rank - 1]
}

/// The median of `samples` (the lower middle for an even count). Sorts `samples` in place.
pub fn median(samples: &mut [Duration]) -> Duration {
    percentile(samples, 50)
}

/// The median of floats; sorts `values` in place. Zero for no values.
pub fn median_f64(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

pub use eve_types::splitmix64;

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples = ms(&[5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
        assert_eq!(
            median(&mut samples),
            Duration::from_millis(5),
            "lower middle of 10"
        );
        assert_eq!(percentile(&mut samples, 90), Duration::from_millis(9));
        assert_eq!(percentile(&mut samples, 100), Duration::from_millis(10));
        assert_eq!(percentile(&mut samples, 0), Duration::from_millis(1));
        assert_eq!(median(&mut []), Duration::ZERO, "no samples");
    }

    #[test]
    fn median_of_floats() {
        assert_eq!(median_f64(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_f64(&mut []), 0.0);
    }

    #[test]
    fn splitmix_spreads_neighbours() {
        assert_ne!(splitmix64(1), splitmix64(2));
        assert_eq!(splitmix64(7), splitmix64(7), "a pure function");
    }
}
