//! The reference mixer: greedy in batch order, computed in one pass as conflict levels.

use crate::keys::{ConflictKey, ConflictKeys};
use crate::mixer::Mixer;
use crate::schedule::Schedule;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The reference mixer: greedy in batch order (PROTOCOL.md, "The mixer"), with the correction
/// that keeps conflicting requests in batch order.
///
/// # The rule, round by round
///
/// Each round builds one parallel batch from the requests not yet placed, in batch order: a
/// request joins unless it conflicts (see [`ConflictKeys::conflicts`]) with a request already in
/// the parallel batch *or with an earlier request skipped in this round*; skipped requests wait
/// for the next round. PROTOCOL.md states only the first half. Taken literally it can run two
/// conflicting requests out of batch order: A is skipped because it conflicts with the parallel
/// batch, then B, which conflicts with A but not with the parallel batch, joins and runs a whole
/// parallel batch before A. Every replica would agree on that order, but it is not the order the
/// batch was agreed in, and the sequential re-execution after a rollback would run A first.
///
/// Requests with no keys conflict with nothing, so they join the first parallel batch, except
/// when an earlier request conflicts with everything: such a request is ordered against every
/// other request, keyless ones included, so a keyless request after it waits for the next
/// parallel batch.
///
/// # The same rule in one pass
///
/// Define the level of request `i`: 0 if no earlier request conflicts with it, otherwise one
/// more than the highest level of the earlier requests that conflict with it. The round rule
/// puts exactly the requests of level `k` in parallel batch `k`. By induction on `k`: when round
/// `k` starts, the requests left are those of level `k` or more. A request of level `k` has all
/// its earlier conflicting requests at levels below `k`, already placed, so nothing before it
/// in the round stops it and it joins. A request of level more than `k` has an earlier
/// conflicting request of level `k` or more, which is still in the round before it (joined or
/// skipped), so it is skipped.
///
/// Levels need one pass over the keys, `O(total keys)` expected time. For each key the pass
/// keeps one more than the highest level of an earlier writer and of an earlier reader. A
/// request's level is the largest of: those numbers for the writers of the keys it reads or
/// writes, those numbers for the readers of the keys it writes, and a running *barrier*, one
/// more than the level of the last request that conflicts with everything (0 before any). A
/// request that conflicts with everything takes one more than the highest level so far (0 if it
/// is first) and raises the barrier past itself. That is the level definition term by term: the
/// barrier stands for the earlier everything requests, whose levels only grow along the batch,
/// and the per-key numbers for the earlier requests that share a key with a write on one side.
/// Parallel batch `k` then holds the positions of level `k`, in batch order. The property tests
/// check this against a direct round-by-round implementation.
///
/// The hash map is only looked up, never iterated, so its order cannot reach the schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GreedyMixer;

impl Mixer for GreedyMixer {
    fn mix(&self, keys: &[ConflictKeys]) -> Schedule {
        Schedule::from_levels(&levels(keys))
    }

    fn name(&self) -> &'static str {
        "greedy"
    }
}

/// For one key, the lowest level a later request may take if it conflicts with the earlier
/// requests that touched the key. 0 means no such request.
#[derive(Clone, Copy, Default)]
struct After {
    /// One more than the highest level of an earlier writer of the key.
    writers: u32,
    /// One more than the highest level of an earlier reader of the key.
    readers: u32,
}

/// The level of every request (see [`GreedyMixer`]), in one pass.
fn levels(keys: &[ConflictKeys]) -> Vec<u32> {
    let keys_total = keys
        .iter()
        .map(|k| k.reads().len() + k.writes().len())
        .sum();
    let mut after: HashMap<ConflictKey, After, KeyHashBuilder> =
        HashMap::with_capacity_and_hasher(keys_total, KeyHashBuilder::default());
    // The lowest level any later request may take: one past the last everything request.
    let mut barrier = 0u32;
    // One more than the highest level so far.
    let mut level_count = 0u32;
    let mut levels = Vec::with_capacity(keys.len());
    for request in keys {
        let level = if request.conflicts_with_everything() {
            barrier = level_count + 1;
            level_count
        } else {
            let mut level = barrier;
            for key in request.reads() {
                if let Some(after) = after.get(key) {
                    level = level.max(after.writers);
                }
            }
            for key in request.writes() {
                if let Some(after) = after.get(key) {
                    level = level.max(after.writers).max(after.readers);
                }
            }
            for key in request.reads() {
                let after = after.entry(*key).or_default();
                after.readers = after.readers.max(level + 1);
            }
            for key in request.writes() {
                let after = after.entry(*key).or_default();
                after.writers = after.writers.max(level + 1);
            }
            level
        };
        level_count = level_count.max(level + 1);
        levels.push(level);
    }
    levels
}

/// A hasher for keys that are already hashes: one folded multiply, no random seed.
///
/// `ConflictKey::of` keys are XXH3 outputs, but [`ConflictKeys::write_key`] accepts any `u64`,
/// so the hasher still mixes high bits into low ones (the full 128-bit product folded), lest keys
/// like `i << 40` all land in one bucket.
#[derive(Default)]
struct KeyHasher(u64);

type KeyHashBuilder = BuildHasherDefault<KeyHasher>;

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // `ConflictKey` hashes through `write_u64`; this path only serves other types.
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
        let product = u128::from(self.0 ^ value) * u128::from(MULTIPLIER);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(key: &[u8]) -> ConflictKeys {
        let mut keys = ConflictKeys::new();
        keys.read(key);
        keys
    }

    fn writes(list: &[&[u8]]) -> ConflictKeys {
        let mut keys = ConflictKeys::new();
        for key in list {
            keys.write(key);
        }
        keys
    }

    fn everything() -> ConflictKeys {
        let mut keys = ConflictKeys::new();
        keys.conflict_with_everything();
        keys
    }

    fn mix(keys: &[ConflictKeys]) -> Vec<Vec<u32>> {
        GreedyMixer
            .mix(keys)
            .parallel_batches()
            .map(<[u32]>::to_vec)
            .collect()
    }

    #[test]
    fn an_empty_batch_has_no_parallel_batch() {
        assert_eq!(mix(&[]), Vec::<Vec<u32>>::new());
    }

    #[test]
    fn independent_requests_share_one_parallel_batch() {
        let keys = [
            writes(&[b"a"]),
            writes(&[b"b"]),
            reads(b"c"),
            ConflictKeys::new(),
        ];
        assert_eq!(
            mix(&keys),
            vec![vec![0, 1, 2, 3]],
            "no shared key, no conflict"
        );
    }

    #[test]
    fn readers_of_one_key_run_together_and_its_writer_after_them() {
        let keys = [reads(b"x"), reads(b"x"), writes(&[b"x"]), reads(b"x")];
        assert_eq!(
            mix(&keys),
            vec![vec![0, 1], vec![2], vec![3]],
            "the writer waits for both readers; the last reader waits for the writer"
        );
    }

    #[test]
    fn skipped_requests_wait_for_the_next_parallel_batch() {
        let keys = [
            writes(&[b"x"]),
            writes(&[b"x"]),
            writes(&[b"y"]),
            writes(&[b"x"]),
        ];
        assert_eq!(
            mix(&keys),
            vec![vec![0, 2], vec![1], vec![3]],
            "each writer of x gets its own parallel batch; the writer of y joins the first"
        );
    }

    #[test]
    fn a_request_conflicting_with_a_skipped_request_waits_behind_it() {
        // 1 is skipped (x); 2 conflicts only with 1 (y). Read literally, PROTOCOL.md lets 2 join
        // the first parallel batch and run before 1.
        let keys = [writes(&[b"x"]), writes(&[b"x", b"y"]), writes(&[b"y"])];
        assert_eq!(
            mix(&keys),
            vec![vec![0], vec![1], vec![2]],
            "conflicting requests keep batch order"
        );
    }

    #[test]
    fn an_everything_request_is_a_barrier_for_keyless_requests_too() {
        let keys = [
            writes(&[b"a"]),
            ConflictKeys::new(),
            everything(),
            ConflictKeys::new(),
            writes(&[b"b"]),
        ];
        assert_eq!(
            mix(&keys),
            vec![vec![0, 1], vec![2], vec![3, 4]],
            "everything before the barrier, the barrier alone, everything after it"
        );
    }

    #[test]
    fn consecutive_everything_requests_run_one_after_the_other() {
        let keys = [everything(), everything(), ConflictKeys::new()];
        assert_eq!(
            mix(&keys),
            vec![vec![0], vec![1], vec![2]],
            "each is a barrier"
        );
    }

    #[test]
    fn a_later_request_is_not_held_back_by_a_barrier_it_precedes() {
        let keys = [
            writes(&[b"x"]),
            writes(&[b"x"]),
            writes(&[b"x"]),
            everything(),
        ];
        assert_eq!(
            mix(&keys),
            vec![vec![0], vec![1], vec![2], vec![3]],
            "the everything request goes after the highest parallel batch so far"
        );
    }

    #[test]
    fn key_hasher_separates_keys_that_differ_only_in_high_bits() {
        let hash = |key: u64| {
            let mut hasher = KeyHasher::default();
            hasher.write_u64(key);
            hasher.finish()
        };
        let low_bits: std::collections::BTreeSet<u64> =
            (0..64u64).map(|i| hash(i << 40) & 0xff).collect();
        assert!(
            low_bits.len() > 32,
            "high bits reach the bucket index: {low_bits:?}"
        );
    }
}
