//! Which record a key-value request touches: uniform over the records, or Zipfian with
//! YCSB's constant (0.99), scrambled so that the popular records are spread over the key space
//! rather than bunched at its start.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Uniform, Zipf};

/// YCSB's Zipfian constant.
pub const ZIPF_EXPONENT: f64 = 0.99;

/// How keys are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDist {
    /// Every record equally likely.
    Uniform,
    /// Zipfian over the records' popularity ranks, exponent [`ZIPF_EXPONENT`].
    Zipfian,
}

impl KeyDist {
    /// The name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KeyDist::Uniform => "uniform",
            KeyDist::Zipfian => "zipfian",
        }
    }

    /// Parses a [`name`](Self::name).
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "uniform" => Ok(KeyDist::Uniform),
            "zipfian" => Ok(KeyDist::Zipfian),
            other => anyhow::bail!("unknown key distribution {other:?}: uniform or zipfian"),
        }
    }
}

/// Draws record numbers in `0..records`.
pub struct Keys {
    records: u64,
    draw: Draw,
    rng: SmallRng,
}

enum Draw {
    Uniform(Uniform<u64>),
    Zipfian(Zipf<f64>),
}

impl Keys {
    /// Records `0..records` (at least one) drawn by `dist` from `seed`.
    pub fn new(dist: KeyDist, records: u64, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(records >= 1, "a workload needs at least one record");
        let draw = match dist {
            KeyDist::Uniform => Draw::Uniform(Uniform::new(0, records)?),
            KeyDist::Zipfian => Draw::Zipfian(Zipf::new(records as f64, ZIPF_EXPONENT)?),
        };
        Ok(Self {
            records,
            draw,
            rng: SmallRng::seed_from_u64(seed),
        })
    }

    /// How many records there are.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The next record.
    pub fn next_record(&mut self) -> u64 {
        match &self.draw {
            Draw::Uniform(uniform) => uniform.sample(&mut self.rng),
            Draw::Zipfian(zipf) => {
                // Ranks 1..=records; rank r is the r-th most popular record.
                let rank = (zipf.sample(&mut self.rng) as u64).clamp(1, self.records);
                scramble(rank - 1, self.records)
            }
        }
    }
}

/// Where the record of popularity rank `rank` lives: a fixed pseudo-random spread over
/// `0..records` (two ranks may share a record, as with YCSB's hashed scrambling).
fn scramble(rank: u64, records: u64) -> u64 {
    eve_types::splitmix64(rank) % records
}

/// The key of record `n`: `user` and the number, zero-padded, as YCSB names them.
pub fn record_key(n: u64) -> bytes::Bytes {
    bytes::Bytes::from(format!("user{n:012}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(dist: KeyDist) -> Vec<u64> {
        let mut keys = Keys::new(dist, 1000, 3).unwrap();
        let mut counts = vec![0u64; 1000];
        for _ in 0..100_000 {
            counts[keys.next_record() as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts
    }

    #[test]
    fn zipfian_keys_crowd_onto_few_records_and_uniform_ones_do_not() {
        let zipf = counts(KeyDist::Zipfian);
        let uniform = counts(KeyDist::Uniform);
        let top_ten = |c: &[u64]| c[..10].iter().sum::<u64>();
        // With 0.99 over 1,000 records the ten most popular draw about 39% of requests; ten
        // uniform ones about 1%.
        assert!(top_ten(&zipf) > 30_000, "{}", top_ten(&zipf));
        assert!(top_ten(&uniform) < 2_000, "{}", top_ten(&uniform));
    }

    #[test]
    fn draws_stay_in_range_and_repeat_for_a_seed() {
        let draw = |seed| {
            let mut keys = Keys::new(KeyDist::Zipfian, 7, seed).unwrap();
            (0..50).map(|_| keys.next_record()).collect::<Vec<_>>()
        };
        assert!(draw(1).iter().all(|&r| r < 7));
        assert_eq!(draw(1), draw(1));
        assert_eq!(record_key(42).as_ref(), b"user000000000042");
    }
}
