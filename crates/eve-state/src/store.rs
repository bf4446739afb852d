//! The versioned object store.
//!
//! Many threads read and write objects at once during a batch (`&self` methods); between
//! batches the owner seals the batch into a version, rolls back to an earlier version, or
//! discards versions at or below the stable point (`&mut self` methods). Objects live in
//! `2^bucket_bits` buckets, each behind its own lock, and the buckets are the leaves of the
//! Merkle tree, so the lock shards and the tree agree on where every key lives.

use crate::bucket::{Bucket, Object};
use crate::config::StateConfig;
use crate::error::StateError;
use crate::hash::{bucket_of, leaf_hash};
use crate::merkle::MerkleTree;
use crate::parallel::{ParallelFor, Serial};
use bytes::Bytes;
use eve_types::limits::{OBJECT_KEY_BYTES_MAX, RETAINED_VERSIONS_MAX};
use eve_types::{BatchSeq, Digest};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fewest buckets per rehash task worth sending to another thread when sealing.
const PARALLEL_REHASH_BUCKETS_MIN: usize = 128;

/// Keys that start with this byte belong to eve itself (the reply cache); applications may not
/// write them. See [`StateError::ReservedKey`].
pub const SYSTEM_KEY_PREFIX: u8 = 0xff;

/// Whether `key` is in the namespace eve keeps for itself.
pub fn is_system_key(key: &[u8]) -> bool {
    key.first() == Some(&SYSTEM_KEY_PREFIX)
}

/// A sealed version above the stable one: its root and the buckets it wrote.
#[derive(Debug)]
struct VersionRecord {
    version: BatchSeq,
    root: Digest,
    touched: Vec<u32>,
}

/// A versioned key-value object store with an incremental Merkle root.
///
/// ```
/// use eve_state::{StateConfig, StateStore};
/// use eve_types::BatchSeq;
///
/// let mut state = StateStore::new(StateConfig::new(8, 1024)?);
/// let empty = state.root();
/// state.put(b"alice", "10".into())?;          // written by version 1 (the working version)
/// let v1 = state.seal()?;                     // version 1 sealed: its root
/// state.put(b"alice", "7".into())?;
/// state.delete(b"missing")?;                  // deleting an absent key changes nothing
/// state.seal()?;                              // version 2
/// state.rollback(BatchSeq(1))?;               // back to version 1, exactly
/// assert_eq!(state.root(), v1);
/// assert_eq!(state.get(b"alice").as_deref(), Some(&b"10"[..]));
/// state.rollback(BatchSeq(0))?;
/// assert_eq!(state.root(), empty);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StateStore {
    config: StateConfig,
    buckets: Box<[RwLock<Bucket>]>,
    /// Buckets written in the working version, each listed once.
    touched: Mutex<Vec<u32>>,
    live_objects: AtomicUsize,
    /// Key and value bytes of the last sealed version's objects.
    sealed_bytes: usize,
    /// Changes whenever the working version starts afresh (seal, rollback); a slot or bucket
    /// marked with the current epoch was already written in the working version.
    epoch: u64,
    working: BatchSeq,
    sealed: BatchSeq,
    stable: BatchSeq,
    stable_root: Digest,
    history: VecDeque<VersionRecord>,
    tree: MerkleTree,
}

impl StateStore {
    /// An empty store at version 0.
    pub fn new(config: StateConfig) -> Self {
        let bucket_count = 1usize << config.bucket_bits();
        let buckets = (0..bucket_count)
            .map(|_| RwLock::new(Bucket::default()))
            .collect();
        let tree = MerkleTree::new(config.bucket_bits());
        Self {
            config,
            buckets,
            touched: Mutex::new(Vec::new()),
            live_objects: AtomicUsize::new(0),
            sealed_bytes: 0,
            epoch: 1,
            working: BatchSeq(1),
            sealed: BatchSeq(0),
            stable: BatchSeq(0),
            stable_root: tree.root(),
            history: VecDeque::new(),
            tree,
        }
    }

    /// A store at version 0 that already holds `objects`: the initial state of a service that
    /// starts with data (every replica must start from the same objects, or their first tokens
    /// differ). No batch wrote them, so version 0 is stable and nothing rolls back below it.
    pub fn with_objects(
        config: StateConfig,
        objects: impl IntoIterator<Item = (Bytes, Bytes)>,
    ) -> Result<Self, StateError> {
        let mut store = Self::new(config);
        for (key, value) in objects {
            store.put(&key, value)?;
        }
        store.seal()?;
        store.mark_stable(BatchSeq(1))?;
        // Renumber the sealed version as version 0: it holds no undo records any more.
        store.stable = BatchSeq(0);
        store.sealed = BatchSeq(0);
        store.working = BatchSeq(1);
        store.stable_root = store.tree.root();
        store.epoch += 1;
        Ok(store)
    }

    /// Renumbers a store that holds only its stable version 0 (as [`with_objects`] made it)
    /// so that this version is `version`.
    ///
    /// [`with_objects`]: Self::with_objects
    pub(crate) fn renumber_stable(&mut self, version: BatchSeq) {
        debug_assert!(self.history.is_empty() && self.sealed == BatchSeq(0));
        self.stable = version;
        self.sealed = version;
        self.working = version.next();
        self.epoch += 1;
    }

    /// The store's settings.
    pub fn config(&self) -> StateConfig {
        self.config
    }

    /// The value of `key` now, including writes of the working version.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.read(key, |value| value.cloned())
    }

    /// Reads the value of `key` now in place: `read` sees it (`None` if absent) while the
    /// store holds its bucket's read lock, so a caller that needs a few bytes of a value takes
    /// no share of it. `read` must not write to the store.
    pub fn read<T>(&self, key: &[u8], read: impl FnOnce(Option<&Bytes>) -> T) -> T {
        read(self.buckets[self.bucket_of(key)].read().get(key))
    }

    /// Writes `key` in the working version. The first write to a key in a version keeps the
    /// previous value for rollback. Fails, changing nothing, if the key or value is too large.
    pub fn put(&self, key: &[u8], value: Bytes) -> Result<(), StateError> {
        self.check_key(key)?;
        let max = self.config.value_limit_for(key);
        if value.len() > max {
            return Err(StateError::ValueTooLarge {
                bytes: value.len(),
                max,
            });
        }
        let leaf = leaf_hash(key, &value);
        self.write(key, Some(Object { value, leaf }));
        Ok(())
    }

    /// Deletes `key` in the working version; returns whether it existed.
    pub fn delete(&self, key: &[u8]) -> Result<bool, StateError> {
        self.check_key(key)?;
        Ok(self.write(key, None))
    }

    /// Live objects now, including writes of the working version.
    pub fn len(&self) -> usize {
        self.live_objects.load(Ordering::Relaxed)
    }

    /// Key and value bytes of the live objects of the last sealed version (writes of the
    /// working version count once they are sealed).
    pub fn bytes(&self) -> usize {
        self.sealed_bytes
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root of the last sealed version.
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    /// The root of a held version (the stable one or a sealed one above it).
    pub fn root_of(&self, version: BatchSeq) -> Result<Digest, StateError> {
        if version == self.stable {
            return Ok(self.stable_root);
        }
        self.record(version)
            .map(|record| record.root)
            .ok_or_else(|| self.unknown(version))
    }

    /// The version being written: writes go into it until [`seal`](Self::seal).
    pub fn working_version(&self) -> BatchSeq {
        self.working
    }

    /// The last sealed version.
    pub fn sealed_version(&self) -> BatchSeq {
        self.sealed
    }

    /// The stable version: the lowest one the store can roll back to.
    pub fn stable_version(&self) -> BatchSeq {
        self.stable
    }

    /// Sealed versions above the stable one, whose undo records are kept.
    pub fn retained_versions(&self) -> usize {
        self.history.len()
    }

    /// Whether the working version has writes.
    pub fn has_unsealed_writes(&self) -> bool {
        !self.touched.lock().is_empty()
    }

    /// Renumbers the working version, which must have no writes yet and must come after the
    /// last sealed version. A state transfer uses this to land on the version it fetched.
    pub fn set_working_version(&mut self, version: BatchSeq) -> Result<(), StateError> {
        if !self.touched.get_mut().is_empty() {
            return Err(StateError::WorkingVersionDirty {
                working: self.working,
            });
        }
        if version <= self.sealed {
            return Err(StateError::VersionNotAfterSealed {
                requested: version,
                sealed: self.sealed,
            });
        }
        self.working = version;
        Ok(())
    }

    /// Seals the working version: rehashes the buckets it wrote and their paths, records the
    /// version, and returns its root. The next version becomes the working one.
    pub fn seal(&mut self) -> Result<Digest, StateError> {
        self.seal_with(&mut Serial)
    }

    /// [`seal`](Self::seal), with the rehashing spread over the threads `parallel` lends.
    pub fn seal_with(&mut self, parallel: &mut dyn ParallelFor) -> Result<Digest, StateError> {
        if self.history.len() >= RETAINED_VERSIONS_MAX {
            return Err(StateError::TooManyRetainedVersions {
                retained: self.history.len(),
                max: RETAINED_VERSIONS_MAX,
            });
        }
        let mut touched = std::mem::take(self.touched.get_mut());
        touched.sort_unstable();
        touched.dedup();
        self.rehash(&touched, parallel);
        let root = self.tree.root();
        self.history.push_back(VersionRecord {
            version: self.working,
            root,
            touched,
        });
        self.sealed = self.working;
        self.working = self.working.next();
        self.epoch += 1;
        Ok(root)
    }

    /// Restores exactly the state and root of `target`, which must be held: every object
    /// written after it gets its old value back, objects created after it disappear, and the
    /// working version's writes are dropped. `target` becomes the last sealed version.
    pub fn rollback(&mut self, target: BatchSeq) -> Result<(), StateError> {
        if target < self.stable {
            return Err(StateError::RollbackBelowStable {
                target,
                stable: self.stable,
            });
        }
        let expected_root = self.root_of(target)?;
        let mut buckets: Vec<u32> = std::mem::take(self.touched.get_mut());
        while self.history.back().is_some_and(|r| r.version > target) {
            let record = self.history.pop_back().expect("checked non-empty");
            buckets.extend(record.touched);
        }
        buckets.sort_unstable();
        buckets.dedup();
        let mut live_delta = 0isize;
        for &b in &buckets {
            live_delta += self.buckets[b as usize].get_mut().undo_above(target);
        }
        self.adjust_live(live_delta);
        self.rehash(&buckets, &mut Serial);
        self.sealed = target;
        self.working = target.next();
        self.epoch += 1;
        assert_eq!(
            self.tree.root(),
            expected_root,
            "rollback to {target} must restore that version's root"
        );
        Ok(())
    }

    /// Makes `version` (a held version) the stable one: the undo records of it and every
    /// version below are dropped, so the store can no longer roll back below it.
    pub fn mark_stable(&mut self, version: BatchSeq) -> Result<(), StateError> {
        let root = self.root_of(version)?;
        let mut buckets: Vec<u32> = Vec::new();
        while self.history.front().is_some_and(|r| r.version <= version) {
            let record = self.history.pop_front().expect("checked non-empty");
            if buckets.is_empty() {
                buckets = record.touched;
            } else {
                buckets.extend(record.touched);
            }
        }
        buckets.sort_unstable();
        buckets.dedup();
        for b in buckets {
            self.buckets[b as usize]
                .get_mut()
                .discard_undo_through(version);
        }
        self.stable = version;
        self.stable_root = root;
        Ok(())
    }

    /// The root recomputed from every object, ignoring the incremental tree. Costs a pass over
    /// the whole state; for checks and tests. Covers unsealed writes too.
    pub fn rebuild_root(&self) -> Digest {
        let leaves: Vec<Digest> = self.buckets.iter().map(|b| b.read().hash()).collect();
        MerkleTree::from_leaves(self.config.bucket_bits(), &leaves).root()
    }

    /// The value `key` had in a held version (the stable one or a sealed one above it).
    pub fn get_at(&self, key: &[u8], version: BatchSeq) -> Result<Option<Bytes>, StateError> {
        self.check_held(version)?;
        let bucket = self.buckets[self.bucket_of(key)].read();
        Ok(bucket
            .objects_at(version)
            .remove(key)
            .map(|object| object.value))
    }

    /// Every live object now, in key order. Costs a copy of the whole state; for checks and
    /// tests.
    pub fn to_map(&self) -> BTreeMap<Bytes, Bytes> {
        let mut map = BTreeMap::new();
        for bucket in self.buckets.iter() {
            for (key, value, _) in bucket.read().live() {
                map.insert(key.clone(), value.clone());
            }
        }
        map
    }

    // ----- crate-internal access for state transfer -----

    pub(crate) fn bucket_of(&self, key: &[u8]) -> usize {
        bucket_of(key, self.config.bucket_bits()) as usize
    }

    pub(crate) fn bucket(&self, bucket: u32) -> &RwLock<Bucket> {
        &self.buckets[bucket as usize]
    }

    pub(crate) fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Buckets written by versions above `version`, including the working version.
    pub(crate) fn buckets_written_after(&self, version: BatchSeq) -> BTreeSet<u32> {
        let mut buckets: BTreeSet<u32> = self.touched.lock().iter().copied().collect();
        for record in self
            .history
            .iter()
            .rev()
            .take_while(|r| r.version > version)
        {
            buckets.extend(record.touched.iter().copied());
        }
        buckets
    }

    /// Fails unless `version` is held.
    pub(crate) fn check_held(&self, version: BatchSeq) -> Result<(), StateError> {
        self.root_of(version).map(|_| ())
    }

    // ----- private -----

    fn check_key(&self, key: &[u8]) -> Result<(), StateError> {
        if key.len() > OBJECT_KEY_BYTES_MAX {
            return Err(StateError::KeyTooLarge {
                bytes: key.len(),
                max: OBJECT_KEY_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// Writes (`Some`) or deletes (`None`) one key; returns whether it existed before.
    fn write(&self, key: &[u8], object: Option<Object>) -> bool {
        let index = self.bucket_of(key);
        let creates = object.is_some();
        let mut bucket = self.buckets[index].write();
        let effect = bucket.write(key, object, self.epoch, self.working);
        if !effect.changed {
            return effect.existed;
        }
        if bucket.touched_epoch != self.epoch {
            bucket.touched_epoch = self.epoch;
            self.touched.lock().push(index as u32);
        }
        drop(bucket);
        match (effect.existed, creates) {
            (false, true) => {
                self.live_objects.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.live_objects.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        effect.existed
    }

    /// Drops tombstones in `buckets` (sorted, distinct), rehashes them and updates the tree,
    /// in tasks on `parallel` when there are enough buckets to share.
    fn rehash(&mut self, buckets: &[u32], parallel: &mut dyn ParallelFor) {
        let tasks = (buckets.len() / PARALLEL_REHASH_BUCKETS_MIN)
            .min(parallel.parallelism() * 4)
            .max(1);
        let per_task = buckets.len().div_ceil(tasks).max(1);
        let parts: Vec<&[u32]> = buckets.chunks(per_task).collect();
        // Per task: the new hash of each bucket, and the change in live bytes.
        type Rehashed = (Vec<(u32, Digest)>, isize);
        let results: Vec<Mutex<Rehashed>> =
            parts.iter().map(|_| Mutex::new((Vec::new(), 0))).collect();
        let store_buckets = &self.buckets;
        let rehash_part = |t: usize| {
            let mut bytes_delta = 0isize;
            let hashes: Vec<(u32, Digest)> = parts[t]
                .iter()
                .map(|&b| {
                    let mut bucket = store_buckets[b as usize].write();
                    bucket.drop_tombstones();
                    bytes_delta += bucket.take_bytes_delta();
                    (b, bucket.hash())
                })
                .collect();
            *results[t].lock() = (hashes, bytes_delta);
        };
        if parts.len() > 1 {
            parallel.parallel_for(parts.len(), &rehash_part);
        } else {
            (0..parts.len()).for_each(rehash_part);
        }
        let mut changes: Vec<(u32, Digest)> = Vec::with_capacity(buckets.len());
        for part in results {
            let (hashes, bytes_delta) = part.into_inner();
            changes.extend(hashes);
            self.sealed_bytes = self
                .sealed_bytes
                .checked_add_signed(bytes_delta)
                .expect("live byte count stays non-negative");
        }
        self.tree.update_with(&changes, parallel);
    }

    fn adjust_live(&mut self, delta: isize) {
        let live = self.live_objects.get_mut();
        *live = live
            .checked_add_signed(delta)
            .expect("live object count stays non-negative");
    }

    fn record(&self, version: BatchSeq) -> Option<&VersionRecord> {
        let index = self
            .history
            .binary_search_by_key(&version, |r| r.version)
            .ok()?;
        self.history.get(index)
    }

    fn unknown(&self, version: BatchSeq) -> StateError {
        StateError::UnknownVersion {
            version,
            stable: self.stable,
            sealed: self.sealed,
        }
    }
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("objects", &self.len())
            .field("stable", &self.stable)
            .field("sealed", &self.sealed)
            .field("working", &self.working)
            .field("root", &self.root())
            .finish()
    }
}
