//! The `Mixer` trait and the two trivial mixers that bound it: all sequential, all parallel.

use crate::keys::ConflictKeys;
use crate::schedule::Schedule;
use std::sync::Arc;

/// Splits a batch into parallel batches of requests unlikely to conflict.
///
/// A mixer must be deterministic: every replica runs it on the same batch and must get the same
/// schedule, so it may depend on nothing but `keys` (no clock, no thread timing, no randomness
/// that is not seeded from its own configuration). It need not be perfect: a missed conflict
/// costs a divergence and a rollback, a false conflict costs parallelism.
pub trait Mixer: Send + Sync {
    /// Splits a batch, whose requests have the given keys (position `i` = request `i`), into
    /// parallel batches. The schedule holds exactly `keys.len()` requests.
    fn mix(&self, keys: &[ConflictKeys]) -> Schedule;

    /// A short name for logs and benchmark tables ("greedy", "sequential", ...).
    fn name(&self) -> &'static str;
}

impl<M: Mixer + ?Sized> Mixer for Box<M> {
    fn mix(&self, keys: &[ConflictKeys]) -> Schedule {
        (**self).mix(keys)
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

impl<M: Mixer + ?Sized> Mixer for Arc<M> {
    fn mix(&self, keys: &[ConflictKeys]) -> Schedule {
        (**self).mix(keys)
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

/// Runs every request alone, in batch order ([`Schedule::sequential`]): the baseline of
/// traditional state machine replication, never wrong, never parallel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequentialMixer;

impl Mixer for SequentialMixer {
    fn mix(&self, keys: &[ConflictKeys]) -> Schedule {
        Schedule::sequential(keys.len())
    }

    fn name(&self) -> &'static str {
        "sequential"
    }
}

/// Runs the whole batch as one parallel batch ([`Schedule::parallel`]), ignoring keys: the most
/// parallelism, and a divergence whenever requests really conflict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParallelMixer;

impl Mixer for ParallelMixer {
    fn mix(&self, keys: &[ConflictKeys]) -> Schedule {
        Schedule::parallel(keys.len())
    }

    fn name(&self) -> &'static str {
        "parallel"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixers_work_behind_a_box_and_an_arc() {
        let keys = vec![ConflictKeys::new(); 3];
        let boxed: Box<dyn Mixer> = Box::new(SequentialMixer);
        let shared: Arc<dyn Mixer> = Arc::new(ParallelMixer);
        assert_eq!(
            boxed.mix(&keys),
            Schedule::sequential(3),
            "Box<dyn Mixer> forwards"
        );
        assert_eq!(
            shared.mix(&keys),
            Schedule::parallel(3),
            "Arc<dyn Mixer> forwards"
        );
        assert_eq!((boxed.name(), shared.name()), ("sequential", "parallel"));
    }
}
