//! The manifest of a full state transfer: every bucket hash of one version.
//!
//! A receiver checks the manifest against the agreed root once, then checks every bucket it
//! receives against the manifest as it arrives, and fetches only the buckets whose hash
//! differs from its own: Merkle subtree comparison at the bucket level.

use crate::error::StateError;
use crate::hash::bucket_hash;
use crate::merkle::MerkleTree;
use crate::store::StateStore;
use eve_types::limits::{MERKLE_BUCKET_BITS_MAX, MERKLE_BUCKET_BITS_MIN};
use eve_types::{BatchSeq, Digest};
use serde::{Deserialize, Serialize};

/// The bucket hashes of one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The version described.
    pub version: BatchSeq,
    /// The tree has `2^bucket_bits` buckets.
    pub bucket_bits: u8,
    /// The hash of every bucket, in bucket order.
    pub bucket_hashes: Vec<Digest>,
}

impl Manifest {
    /// The root of the manifest's buckets; fails if the manifest is malformed.
    pub fn root(&self) -> Result<Digest, StateError> {
        if !(MERKLE_BUCKET_BITS_MIN..=MERKLE_BUCKET_BITS_MAX).contains(&self.bucket_bits)
            || self.bucket_hashes.len() != 1usize << self.bucket_bits
        {
            return Err(StateError::MalformedTransfer {
                reason: format!(
                    "manifest with {} bucket hashes for 2^{} buckets",
                    self.bucket_hashes.len(),
                    self.bucket_bits
                ),
            });
        }
        Ok(MerkleTree::from_leaves(self.bucket_bits, &self.bucket_hashes).root())
    }

    /// Fails unless the manifest's buckets produce `expected_root`.
    pub fn verify(&self, expected_root: Digest) -> Result<(), StateError> {
        let actual = self.root()?;
        if actual != expected_root {
            return Err(StateError::ManifestMismatch {
                expected: expected_root,
                actual,
            });
        }
        Ok(())
    }
}

impl StateStore {
    /// The manifest of a held version. Buckets written since that version are rehashed as they
    /// were then; the others are read from the tree.
    pub fn manifest(&self, version: BatchSeq) -> Result<Manifest, StateError> {
        self.check_held(version)?;
        let mut bucket_hashes = self.tree().leaves().to_vec();
        for b in self.buckets_written_after(version) {
            let objects = self.bucket(b).read().objects_at(version);
            bucket_hashes[b as usize] = bucket_hash(objects.values().map(|o| &o.leaf));
        }
        Ok(Manifest {
            version,
            bucket_bits: self.config().bucket_bits(),
            bucket_hashes,
        })
    }

    /// The hash of one bucket in the last sealed version.
    pub fn bucket_hash(&self, bucket: u32) -> Digest {
        self.tree().leaf(bucket)
    }
}
