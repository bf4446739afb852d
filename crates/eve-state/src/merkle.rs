//! The live Merkle tree over the state's buckets.
//!
//! A complete binary tree stored flat: node 1 is the root, node `i` has children `2i` and
//! `2i + 1`, and the `2^bits` buckets are the leaves at `2^bits ..`. After a batch only the
//! buckets that changed and their paths to the root are rehashed, each inner node once, so the
//! cost of a root grows with the number of modified buckets, not with the size of the state.

use crate::hash::{empty_bucket_hash, node_hash};
use eve_types::Digest;

/// A Merkle tree with `2^bits` leaves (bucket hashes).
#[derive(Clone)]
pub struct MerkleTree {
    bits: u8,
    nodes: Vec<Digest>,
}

impl MerkleTree {
    /// A tree whose buckets are all empty.
    pub fn new(bits: u8) -> Self {
        let leaves = 1usize << bits;
        let mut nodes = vec![Digest::ZERO; 2 * leaves];
        // Every node on one level of an empty tree has the same hash.
        let mut level_hash = empty_bucket_hash();
        let mut width = leaves;
        while width >= 1 {
            nodes[width..2 * width].fill(level_hash);
            level_hash = node_hash(&level_hash, &level_hash);
            width /= 2;
        }
        Self { bits, nodes }
    }

    /// A tree built from all its bucket hashes at once.
    ///
    /// # Panics
    /// If `leaves.len()` is not `2^bits`.
    pub fn from_leaves(bits: u8, leaves: &[Digest]) -> Self {
        let width = 1usize << bits;
        assert_eq!(leaves.len(), width, "a tree of 2^{bits} buckets");
        let mut nodes = vec![Digest::ZERO; 2 * width];
        nodes[width..].copy_from_slice(leaves);
        for i in (1..width).rev() {
            nodes[i] = node_hash(&nodes[2 * i], &nodes[2 * i + 1]);
        }
        Self { bits, nodes }
    }

    /// The number of buckets, as a power of two.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// The root hash.
    pub fn root(&self) -> Digest {
        self.nodes[1]
    }

    /// The hash of bucket `bucket`.
    pub fn leaf(&self, bucket: u32) -> Digest {
        self.nodes[self.leaf_index(bucket)]
    }

    /// All bucket hashes, in bucket order.
    pub fn leaves(&self) -> &[Digest] {
        &self.nodes[1usize << self.bits..]
    }

    /// Sets the given bucket hashes and rehashes every inner node above them once.
    /// `changes` may be in any order; a bucket given twice keeps its last hash.
    pub fn update(&mut self, changes: &[(u32, Digest)]) {
        let mut dirty: Vec<usize> = Vec::with_capacity(changes.len());
        for &(bucket, hash) in changes {
            let index = self.leaf_index(bucket);
            self.nodes[index] = hash;
            dirty.push(index);
        }
        dirty.sort_unstable();
        dirty.dedup();
        while dirty.first().is_some_and(|&i| i > 1) {
            // Parents of a sorted list are sorted; equal neighbours are siblings.
            let mut write = 0;
            for read in 0..dirty.len() {
                let parent = dirty[read] / 2;
                if write == 0 || dirty[write - 1] != parent {
                    dirty[write] = parent;
                    write += 1;
                }
            }
            dirty.truncate(write);
            for &parent in &dirty {
                self.nodes[parent] =
                    node_hash(&self.nodes[2 * parent], &self.nodes[2 * parent + 1]);
            }
        }
    }

    fn leaf_index(&self, bucket: u32) -> usize {
        let width = 1usize << self.bits;
        let index = width + bucket as usize;
        assert!(
            index < 2 * width,
            "bucket {bucket} is outside a tree of 2^{} buckets",
            self.bits
        );
        index
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
    }
}
