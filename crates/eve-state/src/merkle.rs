//! The live Merkle tree over the state's buckets.
//!
//! A complete binary tree stored level by level: level 0 is the root, level `bits` holds the
//! `2^bits` bucket hashes, and node `i` of level `l` has children `2i` and `2i + 1` on level
//! `l + 1`. After a batch only the buckets that changed and their paths to the root are
//! rehashed, each inner node once, so the cost of a root grows with the number of modified
//! buckets, not with the size of the state. Large updates are split by subtree and hashed on
//! the threads a [`ParallelFor`] lends.

use crate::hash::{empty_bucket_hash, node_hash};
use crate::parallel::ParallelFor;
use eve_types::Digest;
use parking_lot::Mutex;

/// Fewest changed buckets per subtree task worth sending to another thread.
const PARALLEL_UPDATE_CHANGES_MIN: usize = 256;

/// A Merkle tree with `2^bits` leaves (bucket hashes).
#[derive(Clone)]
pub struct MerkleTree {
    bits: u8,
    /// `levels[l]` holds the `2^l` nodes of level `l`.
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    /// A tree whose buckets are all empty.
    pub fn new(bits: u8) -> Self {
        let mut levels = vec![Vec::new(); usize::from(bits) + 1];
        // Every node on one level of an empty tree has the same hash.
        let mut level_hash = empty_bucket_hash();
        for l in (0..=usize::from(bits)).rev() {
            levels[l] = vec![level_hash; 1 << l];
            level_hash = node_hash(&level_hash, &level_hash);
        }
        Self { bits, levels }
    }

    /// A tree built from all its bucket hashes at once.
    ///
    /// # Panics
    /// If `leaves.len()` is not `2^bits`.
    pub fn from_leaves(bits: u8, leaves: &[Digest]) -> Self {
        assert_eq!(leaves.len(), 1usize << bits, "a tree of 2^{bits} buckets");
        let mut levels = vec![Vec::new(); usize::from(bits) + 1];
        levels[usize::from(bits)] = leaves.to_vec();
        for l in (0..usize::from(bits)).rev() {
            levels[l] = levels[l + 1]
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
        }
        Self { bits, levels }
    }

    /// The number of buckets, as a power of two.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// The root hash.
    pub fn root(&self) -> Digest {
        self.levels[0][0]
    }

    /// The hash of bucket `bucket`.
    ///
    /// # Panics
    /// If the bucket is outside the tree.
    pub fn leaf(&self, bucket: u32) -> Digest {
        self.leaves()[bucket as usize]
    }

    /// All bucket hashes, in bucket order.
    pub fn leaves(&self) -> &[Digest] {
        &self.levels[usize::from(self.bits)]
    }

    /// Sets the given bucket hashes and rehashes every inner node above them once.
    /// `changes` may be in any order; a bucket given twice keeps its last hash.
    pub fn update(&mut self, changes: &[(u32, Digest)]) {
        self.update_with(changes, &mut crate::parallel::Serial);
    }

    /// [`update`](Self::update), with the subtrees below the top levels hashed as separate
    /// tasks on `parallel`.
    pub fn update_with(&mut self, changes: &[(u32, Digest)], parallel: &mut dyn ParallelFor) {
        let mut changes = changes.to_vec();
        // Stable, so a bucket given twice keeps its last hash.
        changes.sort_by_key(|&(bucket, _)| bucket);
        let bits = usize::from(self.bits);
        let tasks_wanted = (changes.len() / PARALLEL_UPDATE_CHANGES_MIN)
            .min(parallel.parallelism() * 4)
            .max(1);
        // Split the tree at level `split`: below it, 2^split independent subtrees.
        let split = (tasks_wanted.next_power_of_two().trailing_zeros() as usize).min(bits);
        if split == 0 {
            let mut levels: Vec<&mut [Digest]> =
                self.levels.iter_mut().map(Vec::as_mut_slice).collect();
            update_subtree(&mut levels, &changes, 0);
            return;
        }
        let mut subtrees: Vec<Vec<&mut [Digest]>> =
            (0..1usize << split).map(|_| Vec::new()).collect();
        for (depth, level) in self.levels[split..].iter_mut().enumerate() {
            for (s, part) in level.chunks_mut(1 << depth).enumerate() {
                subtrees[s].push(part);
            }
        }
        let shift = bits - split;
        let mut groups: Vec<&[(u32, Digest)]> = Vec::with_capacity(subtrees.len());
        let mut rest = &changes[..];
        for s in 0..subtrees.len() {
            let end = rest.partition_point(|&(b, _)| (b as usize >> shift) == s);
            let (group, tail) = rest.split_at(end);
            groups.push(group);
            rest = tail;
        }
        assert!(rest.is_empty(), "every changed bucket lies in the tree");
        let subtrees: Vec<Mutex<Vec<&mut [Digest]>>> =
            subtrees.into_iter().map(Mutex::new).collect();
        parallel.parallel_for(subtrees.len(), &|s| {
            let offset = s << shift;
            update_subtree(&mut subtrees[s].lock(), groups[s], offset);
        });
        // The top levels, above the subtree roots.
        let dirty_roots: Vec<(u32, Digest)> = (0..groups.len())
            .filter(|&s| !groups[s].is_empty())
            .map(|s| (s as u32, self.levels[split][s]))
            .collect();
        let mut top: Vec<&mut [Digest]> = self.levels[..=split]
            .iter_mut()
            .map(Vec::as_mut_slice)
            .collect();
        update_subtree(&mut top, &dirty_roots, 0);
    }
}

/// Updates one subtree given as its levels (root level first), setting the changed leaves
/// (bucket numbers, minus `offset`, sorted) and rehashing their paths once each.
fn update_subtree(levels: &mut [&mut [Digest]], changes: &[(u32, Digest)], offset: usize) {
    let leaf_level = levels.len() - 1;
    let mut dirty: Vec<usize> = Vec::with_capacity(changes.len());
    for &(bucket, hash) in changes {
        let index = bucket as usize - offset;
        levels[leaf_level][index] = hash;
        if dirty.last() != Some(&index) {
            dirty.push(index);
        }
    }
    for l in (0..leaf_level).rev() {
        // Parents of a sorted list are sorted; equal neighbours are siblings.
        dirty.dedup_by_key(|i| *i / 2);
        for i in dirty.iter_mut() {
            *i /= 2;
        }
        let (upper, lower) = levels.split_at_mut(l + 1);
        let (parents, children) = (&mut upper[l], &lower[0]);
        for &p in &dirty {
            parents[p] = node_hash(&children[2 * p], &children[2 * p + 1]);
        }
    }
}

impl std::fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("bits", &self.bits)
            .field("root", &self.root())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use proptest::prelude::*;

    /// Runs tasks in reverse order, to catch an update that depends on task order.
    struct Backwards(usize);

    impl ParallelFor for Backwards {
        fn parallel_for(&mut self, len: usize, task: &(dyn Fn(usize) + Sync)) {
            (0..len).rev().for_each(task);
        }
        fn parallelism(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn empty_tree_equals_tree_built_from_empty_leaves() {
        let bits = 6;
        let empty = vec![empty_bucket_hash(); 1 << bits];
        assert_eq!(
            MerkleTree::new(bits).root(),
            MerkleTree::from_leaves(bits, &empty).root()
        );
    }

    proptest! {
        #[test]
        fn incremental_updates_equal_a_rebuild(
            bits in 4u8..9,
            rounds in proptest::collection::vec(
                proptest::collection::vec((any::<u32>(), any::<u64>()), 0..40), 1..6),
        ) {
            let mut tree = MerkleTree::new(bits);
            let mut leaves = vec![empty_bucket_hash(); 1 << bits];
            for round in rounds {
                let changes: Vec<(u32, Digest)> = round
                    .iter()
                    .map(|&(b, v)| (b % (1 << bits), leaf_hash(b"k", &v.to_le_bytes())))
                    .collect();
                for &(b, h) in &changes {
                    leaves[b as usize] = h;
                }
                tree.update(&changes);
                prop_assert_eq!(tree.root(), MerkleTree::from_leaves(bits, &leaves).root());
                prop_assert_eq!(tree.leaves(), &leaves[..]);
            }
        }

        #[test]
        fn split_updates_equal_a_rebuild(
            bits in 4u8..12,
            threads in 1usize..9,
            changes in proptest::collection::vec((any::<u32>(), any::<u64>()), 0..3000),
        ) {
            let mut tree = MerkleTree::new(bits);
            let mut leaves = vec![empty_bucket_hash(); 1 << bits];
            let changes: Vec<(u32, Digest)> = changes
                .iter()
                .map(|&(b, v)| (b % (1 << bits), leaf_hash(b"k", &v.to_le_bytes())))
                .collect();
            for &(b, h) in &changes {
                leaves[b as usize] = h;
            }
            tree.update_with(&changes, &mut Backwards(threads));
            prop_assert_eq!(tree.root(), MerkleTree::from_leaves(bits, &leaves).root());
        }
    }
}
