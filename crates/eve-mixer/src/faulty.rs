//! A test knob: a mixer that misses conflicts and invents them, at seeded rates.

use crate::keys::{ConflictKey, ConflictKeys};
use crate::mixer::Mixer;
use crate::schedule::Schedule;
use eve_types::splitmix64;
use std::sync::atomic::{AtomicU64, Ordering};

/// Rates are in parts per million: this rate means "always".
pub const FAULT_PPM_MAX: u32 = 1_000_000;

/// Why a [`FaultyMixer`] cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultRateError {
    /// A rate above one million parts per million.
    #[error("{field} is {ppm} parts per million; the allowed range is 0 ..= {FAULT_PPM_MAX}")]
    OutOfRange {
        /// The argument: `missed_conflict_ppm` or `false_conflict_ppm`.
        field: &'static str,
        /// Its value.
        ppm: u32,
    },
}

/// Test knob: wraps a mixer and makes it wrong, deterministically, so that tests and the
/// simulator can exercise divergence (a missed conflict) and lost parallelism (a false one).
///
/// For the `n`-th batch it mixes (counting from 0) and each position `i` it draws, from
/// `(seed, n, i)` alone, whether to inject:
/// - a *missed conflict* (`missed_conflict_ppm`): the request's keys, and its
///   conflicts-with-everything flag, are dropped, so it may join a parallel batch it conflicts
///   with;
/// - a *false conflict* (`false_conflict_ppm`): the request also writes one shared key, so it
///   conflicts with every other request that got a false conflict.
///
/// Both may hit one request; the missed conflict is applied first, so it then writes only the
/// shared key. The inner mixer then runs on the altered keys. The draws use splitmix64 and
/// integer arithmetic only, so a seed gives the same schedule on every machine.
#[derive(Debug)]
pub struct FaultyMixer<M: Mixer> {
    inner: M,
    missed_conflict_ppm: u32,
    false_conflict_ppm: u32,
    seed: u64,
    /// Batches mixed so far: each batch gets its own draws.
    batches: AtomicU64,
}

impl<M: Mixer> FaultyMixer<M> {
    /// Wraps `inner`; each rate is in parts per million, `0 ..= FAULT_PPM_MAX`.
    ///
    /// # Errors
    /// [`FaultRateError::OutOfRange`] naming the first rate above [`FAULT_PPM_MAX`].
    pub fn new(
        inner: M,
        missed_conflict_ppm: u32,
        false_conflict_ppm: u32,
        seed: u64,
    ) -> Result<Self, FaultRateError> {
        for (field, ppm) in [
            ("missed_conflict_ppm", missed_conflict_ppm),
            ("false_conflict_ppm", false_conflict_ppm),
        ] {
            if ppm > FAULT_PPM_MAX {
                return Err(FaultRateError::OutOfRange { field, ppm });
            }
        }
        Ok(Self {
            inner,
            missed_conflict_ppm,
            false_conflict_ppm,
            seed,
            batches: AtomicU64::new(0),
        })
    }

    /// The wrapped mixer.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The keys the inner mixer sees for the request at `position`.
    fn alter(&self, seed: u64, position: usize, keys: &ConflictKeys) -> ConflictKeys {
        let mut keys = keys.clone();
        if draw(seed, position, Fault::Missed) < self.missed_conflict_ppm {
            keys.clear();
        }
        if draw(seed, position, Fault::False) < self.false_conflict_ppm {
            keys.write_key(false_conflict_key());
        }
        keys
    }
}

impl<M: Mixer> Mixer for FaultyMixer<M> {
    fn mix(&self, keys: &[ConflictKeys]) -> Schedule {
        let batch = self.batches.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed ^ splitmix64(batch);
        let altered: Vec<ConflictKeys> = keys
            .iter()
            .enumerate()
            .map(|(position, keys)| self.alter(seed, position, keys))
            .collect();
        let schedule = self.inner.mix(&altered);
        assert_eq!(
            schedule.requests(),
            keys.len(),
            "mixer {:?} must schedule every request of the batch",
            self.inner.name()
        );
        schedule
    }

    fn name(&self) -> &'static str {
        "faulty"
    }
}

/// The key every request with a false conflict writes.
fn false_conflict_key() -> ConflictKey {
    ConflictKey::of(b"eve-mixer/faulty/false-conflict")
}

/// The two independent draws made for each position.
#[derive(Clone, Copy)]
enum Fault {
    Missed = 0,
    False = 1,
}

/// A number in `0 .. FAULT_PPM_MAX` that depends only on `(seed, position, fault)`; a fault is
/// injected when it is below the rate.
fn draw(seed: u64, position: usize, fault: Fault) -> u32 {
    let stream = ((position as u64) << 1) | fault as u64;
    let bits = splitmix64(seed ^ splitmix64(stream)) >> 32;
    // Scale 32 random bits to 0 .. FAULT_PPM_MAX by a multiply and shift (no floats).
    ((bits * u64::from(FAULT_PPM_MAX)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::greedy::GreedyMixer;

    fn all_write(key: &[u8], n: usize) -> Vec<ConflictKeys> {
        let mut keys = ConflictKeys::new();
        keys.write(key);
        vec![keys; n]
    }

    #[test]
    fn rates_above_one_million_ppm_are_refused() {
        assert_eq!(
            FaultyMixer::new(GreedyMixer, FAULT_PPM_MAX + 1, 0, 0).err(),
            Some(FaultRateError::OutOfRange {
                field: "missed_conflict_ppm",
                ppm: FAULT_PPM_MAX + 1
            }),
            "the error names the field"
        );
        assert_eq!(
            FaultyMixer::new(GreedyMixer, 0, u32::MAX, 0).err(),
            Some(FaultRateError::OutOfRange {
                field: "false_conflict_ppm",
                ppm: u32::MAX
            }),
        );
        assert!(FaultyMixer::new(GreedyMixer, FAULT_PPM_MAX, FAULT_PPM_MAX, 0).is_ok());
    }

    #[test]
    fn all_missed_conflicts_put_a_conflicting_batch_in_one_parallel_batch() {
        let faulty = FaultyMixer::new(GreedyMixer, FAULT_PPM_MAX, 0, 7).unwrap();
        assert_eq!(
            faulty.mix(&all_write(b"x", 5)),
            Schedule::parallel(5),
            "with every conflict missed nothing is ordered"
        );
    }

    #[test]
    fn all_false_conflicts_make_a_keyless_batch_sequential() {
        let faulty = FaultyMixer::new(GreedyMixer, 0, FAULT_PPM_MAX, 7).unwrap();
        assert_eq!(
            faulty.mix(&vec![ConflictKeys::new(); 5]),
            Schedule::sequential(5),
            "every request writes the shared key"
        );
    }

    #[test]
    fn missed_conflicts_also_drop_the_everything_flag() {
        let mut everything = ConflictKeys::new();
        everything.conflict_with_everything();
        let faulty = FaultyMixer::new(GreedyMixer, FAULT_PPM_MAX, 0, 7).unwrap();
        assert_eq!(faulty.mix(&vec![everything; 3]), Schedule::parallel(3));
    }

    #[test]
    fn draws_cover_the_whole_range_without_floats() {
        let draws: Vec<u32> = (0..10_000).map(|i| draw(1, i, Fault::Missed)).collect();
        assert!(
            draws.iter().all(|&d| d < FAULT_PPM_MAX),
            "below the maximum"
        );
        let below_half = draws.iter().filter(|&&d| d < FAULT_PPM_MAX / 2).count();
        assert!(
            (4_500..5_500).contains(&below_half),
            "about half of 10,000 draws fall below 500,000 ppm, got {below_half}"
        );
    }

    #[test]
    fn successive_batches_get_their_own_draws() {
        let mixer = FaultyMixer::new(GreedyMixer, 500_000, 0, 3).unwrap();
        let mut keys = vec![ConflictKeys::new(); 64];
        for k in &mut keys {
            k.write(b"hot");
        }
        let schedules: Vec<Schedule> = (0..4).map(|_| mixer.mix(&keys)).collect();
        assert!(
            schedules.windows(2).any(|w| w[0] != w[1]),
            "the same batch mixed again is perturbed differently"
        );
        let again = FaultyMixer::new(GreedyMixer, 500_000, 0, 3).unwrap();
        let replay: Vec<Schedule> = (0..4).map(|_| again.mix(&keys)).collect();
        assert_eq!(
            schedules, replay,
            "the same seed and call sequence replays exactly"
        );
    }
}
