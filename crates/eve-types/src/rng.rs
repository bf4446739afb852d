//! A small seeded generator for everything in eve that must be random yet reproducible:
//! per-request random values, seeded interleavings, injected faults, simulations, workloads.

/// splitmix64 (Steele, Lea and Flood): a fixed, well-mixed hash of `x`. Hashing a seed plus a
/// counter gives a stream that is the same on every machine.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded stream of 64-bit values (splitmix64 over a counter).
///
/// ```
/// use eve_types::SplitMix64;
///
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    counter: u64,
}

impl SplitMix64 {
    /// A stream determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { counter: seed }
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.counter)
    }

    /// A value in `0..bound` (`bound` > 0), by multiply-shift: no division, no floats.
    ///
    /// # Panics
    /// If `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "an empty range has no value");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// `true` with probability `ppm` parts per million.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        self.below(1_000_000) < u64::from(ppm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::new(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = rng.below(7);
            seen[v as usize] = true;
        }
        assert!(
            seen.iter().all(|&s| s),
            "every value of a small range comes up"
        );
    }

    #[test]
    fn chance_extremes() {
        let mut rng = SplitMix64::new(2);
        assert!((0..100).all(|_| !rng.chance_ppm(0)));
        assert!((0..100).all(|_| rng.chance_ppm(1_000_000)));
    }
}
