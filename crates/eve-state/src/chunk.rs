//! Full state transfer in bounded chunks.
//!
//! The receiver builds a [`StateImport`] from a verified [`Manifest`], asks peers for the
//! buckets it lacks with [`ChunkRequest`]s, and feeds the [`Chunk`]s it gets back to
//! [`StateImport::add_chunk`], which checks every completed bucket against the manifest and
//! rejects a tampered one (so the receiver asks another peer). When every bucket has arrived,
//! [`StateImport::apply`] writes them as one new version and keeps it only if the root is the
//! agreed one. A bucket larger than a chunk is split across chunks.

use crate::config::StateConfig;
use crate::error::StateError;
use crate::hash::{bucket_hash, bucket_of, leaf_hash};
use crate::manifest::Manifest;
use crate::store::StateStore;
use bytes::Bytes;
use eve_types::limits::{OBJECT_KEY_BYTES_MAX, STATE_CHUNK_BYTES_MAX};
use eve_types::{BatchSeq, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most buckets named in one [`ChunkRequest`].
pub const CHUNK_REQUEST_BUCKETS_MAX: usize = 4096;

/// A request for the objects of some buckets at one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRequest {
    /// The version wanted.
    pub version: BatchSeq,
    /// The buckets wanted, in order; at most [`CHUNK_REQUEST_BUCKETS_MAX`].
    pub buckets: Vec<u32>,
    /// Objects of the first bucket the receiver already has (a bucket split across chunks).
    pub first_object: u32,
    /// The most bytes of keys and values to send; at most [`STATE_CHUNK_BYTES_MAX`]. A chunk
    /// always carries at least one object, so a transfer progresses whatever the limit.
    pub max_bytes: usize,
}

/// Objects of one bucket, starting at position `first_object` in key order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketPart {
    /// The bucket.
    pub bucket: u32,
    /// Position of the first object of this part within the bucket.
    pub first_object: u32,
    /// Keys and values in strictly increasing key order.
    pub objects: Vec<(Bytes, Bytes)>,
    /// Whether this part ends the bucket.
    pub last: bool,
}

/// The answer to a [`ChunkRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// The version the objects belong to.
    pub version: BatchSeq,
    /// Parts of consecutive requested buckets.
    pub parts: Vec<BucketPart>,
}

impl StateStore {
    /// Answers a chunk request from this store's state at `request.version`, which must be
    /// held.
    pub fn export_chunk(&self, request: &ChunkRequest) -> Result<Chunk, StateError> {
        self.check_held(request.version)?;
        if request.buckets.len() > CHUNK_REQUEST_BUCKETS_MAX {
            return Err(StateError::MalformedTransfer {
                reason: format!(
                    "chunk request names {} buckets; the limit is {CHUNK_REQUEST_BUCKETS_MAX}",
                    request.buckets.len()
                ),
            });
        }
        let bucket_count = 1u64 << self.config().bucket_bits();
        let max_bytes = request.max_bytes.min(STATE_CHUNK_BYTES_MAX);
        let written_after = self.buckets_written_after(request.version);
        let mut parts = Vec::new();
        let mut bytes = 0usize;
        let mut first_object = request.first_object as usize;
        for &b in &request.buckets {
            if u64::from(b) >= bucket_count {
                return Err(StateError::MalformedTransfer {
                    reason: format!("bucket {b} is outside a tree of {bucket_count} buckets"),
                });
            }
            let guard = self.bucket(b).read();
            let objects: Vec<(Bytes, Bytes)> = if written_after.contains(&b) {
                guard
                    .objects_at(request.version)
                    .into_iter()
                    .map(|(k, o)| (k, o.value))
                    .collect()
            } else {
                guard
                    .live()
                    .map(|(k, v, _)| (k.clone(), v.clone()))
                    .collect()
            };
            drop(guard);
            let mut part = BucketPart {
                bucket: b,
                first_object: first_object as u32,
                objects: Vec::new(),
                last: false,
            };
            let mut next = first_object.min(objects.len());
            while next < objects.len() {
                let size = objects[next].0.len() + objects[next].1.len();
                let empty_chunk = parts.is_empty() && part.objects.is_empty();
                if bytes + size > max_bytes && !empty_chunk {
                    break;
                }
                bytes += size;
                part.objects.push(objects[next].clone());
                next += 1;
            }
            part.last = next == objects.len();
            let full = !part.last;
            parts.push(part);
            if full {
                break;
            }
            first_object = 0;
        }
        Ok(Chunk {
            version: request.version,
            parts,
        })
    }
}

/// A full state transfer in progress, on the receiving side.
#[derive(Debug)]
pub struct StateImport {
    manifest: Manifest,
    root: Digest,
    config: StateConfig,
    /// Buckets whose hash differs from the receiver's, in order.
    wanted: Vec<u32>,
    /// Index in `wanted` of the bucket being received.
    next: usize,
    /// Objects received so far of `wanted[next]`.
    partial: Vec<(Bytes, Bytes)>,
    /// Verified buckets.
    received: BTreeMap<u32, Vec<(Bytes, Bytes)>>,
    objects_received: usize,
}

impl StateImport {
    /// Starts a transfer of the state described by `manifest` into `store`, after checking the
    /// manifest against `expected_root` (the agreed root). Only buckets whose hash differs from
    /// the store's last sealed version will be fetched.
    pub fn new(
        store: &StateStore,
        manifest: Manifest,
        expected_root: Digest,
    ) -> Result<Self, StateError> {
        let ours = store.config().bucket_bits();
        if manifest.bucket_bits != ours {
            return Err(StateError::BucketBitsMismatch {
                ours,
                theirs: manifest.bucket_bits,
            });
        }
        manifest.verify(expected_root)?;
        let wanted = (0..manifest.bucket_hashes.len() as u32)
            .filter(|&b| store.bucket_hash(b) != manifest.bucket_hashes[b as usize])
            .collect();
        Ok(Self {
            manifest,
            root: expected_root,
            config: store.config(),
            wanted,
            next: 0,
            partial: Vec::new(),
            received: BTreeMap::new(),
            objects_received: 0,
        })
    }

    /// The version being fetched.
    pub fn version(&self) -> BatchSeq {
        self.manifest.version
    }

    /// Buckets that differ from the receiver's and must be fetched.
    pub fn wanted(&self) -> &[u32] {
        &self.wanted
    }

    /// Objects received in verified buckets so far.
    pub fn objects_received(&self) -> usize {
        self.objects_received
    }

    /// Whether every wanted bucket has arrived.
    pub fn is_complete(&self) -> bool {
        self.next == self.wanted.len()
    }

    /// The next request to send, or `None` when complete. `max_bytes` bounds the answer.
    pub fn next_request(&self, max_bytes: usize) -> Option<ChunkRequest> {
        if self.is_complete() {
            return None;
        }
        let end = (self.next + CHUNK_REQUEST_BUCKETS_MAX).min(self.wanted.len());
        Some(ChunkRequest {
            version: self.manifest.version,
            buckets: self.wanted[self.next..end].to_vec(),
            first_object: self.partial.len() as u32,
            max_bytes: max_bytes.min(STATE_CHUNK_BYTES_MAX),
        })
    }

    /// Takes a chunk answering [`next_request`](Self::next_request). Buckets it completes are
    /// checked against the manifest; on the first bad one the partial bucket is dropped, the
    /// buckets verified before it are kept, and the error says which bucket (ask another peer).
    pub fn add_chunk(&mut self, chunk: Chunk) -> Result<(), StateError> {
        if chunk.version != self.manifest.version {
            return Err(malformed(format!(
                "chunk of version {} for a transfer of version {}",
                chunk.version, self.manifest.version
            )));
        }
        for part in chunk.parts {
            let result = self.add_part(part);
            if result.is_err() {
                self.partial.clear();
                return result;
            }
        }
        Ok(())
    }

    fn add_part(&mut self, part: BucketPart) -> Result<(), StateError> {
        let Some(&expected_bucket) = self.wanted.get(self.next) else {
            return Err(malformed(
                "chunk continues past the last wanted bucket".into(),
            ));
        };
        if part.bucket != expected_bucket || part.first_object as usize != self.partial.len() {
            return Err(malformed(format!(
                "part (bucket {}, from object {}) does not continue the transfer at (bucket {expected_bucket}, object {})",
                part.bucket,
                part.first_object,
                self.partial.len()
            )));
        }
        let bits = self.manifest.bucket_bits;
        for (key, value) in part.objects {
            if key.len() > OBJECT_KEY_BYTES_MAX || value.len() > self.config.value_limit_for(&key) {
                return Err(malformed(format!("object {key:?} exceeds the size limits")));
            }
            if bucket_of(&key, bits) != part.bucket {
                return Err(malformed(format!(
                    "key {key:?} is not in bucket {}",
                    part.bucket
                )));
            }
            if self.partial.last().is_some_and(|(last, _)| *last >= key) {
                return Err(malformed(format!("keys not increasing at {key:?}")));
            }
            self.partial.push((key, value));
        }
        if part.last {
            let leaves: Vec<Digest> = self.partial.iter().map(|(k, v)| leaf_hash(k, v)).collect();
            if bucket_hash(&leaves) != self.manifest.bucket_hashes[part.bucket as usize] {
                return Err(StateError::ChunkTampered {
                    bucket: part.bucket,
                });
            }
            self.objects_received += self.partial.len();
            self.received
                .insert(part.bucket, std::mem::take(&mut self.partial));
            self.next += 1;
        }
        Ok(())
    }

    /// Writes every received bucket into `store` as version `self.version()` and keeps it only
    /// if the store's root becomes the agreed root. The store must not have sealed a version at
    /// or above the transferred one (roll back first) nor hold unsealed writes. On any error
    /// the store is exactly as before.
    pub fn apply(self, store: &mut StateStore) -> Result<(), StateError> {
        if !self.is_complete() {
            return Err(StateError::ImportIncomplete {
                missing: self.wanted.len() - self.next,
            });
        }
        let base = store.sealed_version();
        store.set_working_version(self.manifest.version)?;
        let applied = self.received.iter().try_for_each(|(&b, objects)| {
            let stale: Vec<Bytes> = store
                .bucket(b)
                .read()
                .live()
                .map(|(k, _, _)| k.clone())
                .filter(|k| objects.binary_search_by(|(key, _)| key.cmp(k)).is_err())
                .collect();
            for key in stale {
                store.delete(&key)?;
            }
            objects
                .iter()
                .try_for_each(|(key, value)| store.put(key, value.clone()))
        });
        store.seal_or_undo(base, applied, self.root)
    }
}

fn malformed(reason: String) -> StateError {
    StateError::MalformedTransfer { reason }
}
