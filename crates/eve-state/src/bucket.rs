//! One Merkle bucket of the store: its objects in key order and the undo records of the
//! versions that wrote it.
//!
//! Objects are kept as parallel sorted arrays (keys, slots, leaf hashes) rather than a map:
//! buckets hold a handful of objects when `merkle_bucket_bits` is sized to the state, and the
//! leaf hashes then sit in one contiguous run that sealing hashes without chasing pointers.

use crate::hash::bucket_hash;
use bytes::Bytes;
use eve_types::{BatchSeq, Digest};
use std::collections::BTreeMap;

/// An object's value with its leaf hash, computed by the writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Object {
    pub value: Bytes,
    pub leaf: Digest,
}

/// The state of one key. `value` is `None` for a key deleted in the working version (a
/// tombstone), which seal removes; `epoch` is the write epoch of the last write, so the first
/// write of an epoch knows to keep an undo record.
#[derive(Clone, Debug)]
struct Slot {
    value: Option<Bytes>,
    epoch: u64,
}

/// The value a key had before the first write to it in `version`; `None` if it did not exist.
#[derive(Clone, Debug)]
pub(crate) struct Undo {
    pub version: BatchSeq,
    pub key: Bytes,
    pub old: Option<Object>,
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WriteEffect {
    /// The key held a live object before the write.
    pub existed: bool,
    /// The write changed something (deleting an absent key does not).
    pub changed: bool,
}

/// A bucket: objects sorted by key, undo records in non-decreasing version order, and the
/// epoch in which it was last listed as touched.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    keys: Vec<Bytes>,
    /// `prefixes[i]` is [`prefix`] of `keys[i]`: lookups compare these first and the key
    /// bytes only on a tie, which saves a call to compare bytes at most steps.
    prefixes: Vec<u128>,
    slots: Vec<Slot>,
    /// `leaves[i]` is the leaf hash of `keys[i]` when `slots[i]` is live.
    leaves: Vec<Digest>,
    undo: Vec<Undo>,
    pub touched_epoch: u64,
    /// Set when a delete leaves a tombstone, so seal compacts only buckets that have some.
    has_tombstones: bool,
    /// Key and value bytes of the live objects.
    live_bytes: usize,
    /// `live_bytes` when the bucket was last rehashed (sealed or rolled back).
    hashed_bytes: usize,
}

/// The bytes a slot holding `value` for `key` counts for: nothing for a tombstone.
fn live_len(key: &[u8], value: Option<&Bytes>) -> usize {
    value.map_or(0, |v| key.len() + v.len())
}

/// A key's first 16 bytes, big-endian, padded with zeros: if two keys' prefixes differ, they
/// order as the keys do (a shorter key's padding is below any byte that a longer key has there,
/// or equal to it, and then the prefixes tie); on a tie the keys must be compared whole.
fn prefix(key: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    let n = key.len().min(16);
    bytes[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(bytes)
}

impl Bucket {
    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        let wanted = prefix(key);
        let (mut low, mut high) = (0, self.keys.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let order = self.prefixes[mid]
                .cmp(&wanted)
                .then_with(|| self.keys[mid].as_ref().cmp(key));
            match order {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(low)
    }

    /// The change in live bytes since the last call: the store calls it when it rehashes the
    /// bucket, so its total follows the sealed state without a shared counter on every write.
    pub fn take_bytes_delta(&mut self) -> isize {
        let delta = self.live_bytes as isize - self.hashed_bytes as isize;
        self.hashed_bytes = self.live_bytes;
        delta
    }

    /// The live value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        let i = self.find(key).ok()?;
        self.slots[i].value.as_ref()
    }

    /// Writes (`Some`) or deletes (`None`) `key` in the working `version`, whose write epoch is
    /// `epoch`, keeping an undo record on the first write of the epoch.
    pub fn write(
        &mut self,
        key: &[u8],
        object: Option<Object>,
        epoch: u64,
        version: BatchSeq,
    ) -> WriteEffect {
        match self.find(key) {
            Ok(i) => {
                let existed = self.slots[i].value.is_some();
                if !existed && object.is_none() {
                    return WriteEffect {
                        existed,
                        changed: false,
                    };
                }
                let old_leaf = self.leaves[i];
                let (value, leaf) = match object {
                    Some(Object { value, leaf }) => (Some(value), leaf),
                    None => {
                        self.has_tombstones = true;
                        (None, Digest::ZERO)
                    }
                };
                self.leaves[i] = leaf;
                let slot = &mut self.slots[i];
                let old_value = std::mem::replace(&mut slot.value, value);
                self.live_bytes = self.live_bytes - live_len(&self.keys[i], old_value.as_ref())
                    + live_len(&self.keys[i], slot.value.as_ref());
                if slot.epoch != epoch {
                    slot.epoch = epoch;
                    self.undo.push(Undo {
                        version,
                        key: self.keys[i].clone(),
                        old: old_value.map(|value| Object {
                            value,
                            leaf: old_leaf,
                        }),
                    });
                }
                WriteEffect {
                    existed,
                    changed: true,
                }
            }
            Err(_) if object.is_none() => WriteEffect {
                existed: false,
                changed: false,
            },
            Err(i) => {
                let key = Bytes::copy_from_slice(key);
                let Object { value, leaf } = object.expect("checked above");
                self.undo.push(Undo {
                    version,
                    key: key.clone(),
                    old: None,
                });
                self.insert_at(i, key, Some(value), leaf, epoch);
                WriteEffect {
                    existed: false,
                    changed: true,
                }
            }
        }
    }

    fn insert_at(&mut self, i: usize, key: Bytes, value: Option<Bytes>, leaf: Digest, epoch: u64) {
        self.live_bytes += live_len(&key, value.as_ref());
        self.prefixes.insert(i, prefix(&key));
        self.keys.insert(i, key);
        self.slots.insert(i, Slot { value, epoch });
        self.leaves.insert(i, leaf);
    }

    fn remove_at(&mut self, i: usize) {
        self.live_bytes -= live_len(&self.keys[i], self.slots[i].value.as_ref());
        self.keys.remove(i);
        self.prefixes.remove(i);
        self.slots.remove(i);
        self.leaves.remove(i);
    }

    /// The hash of the bucket's live objects. Call after [`drop_tombstones`](Self::drop_tombstones)
    /// for the fast path.
    pub fn hash(&self) -> Digest {
        if self.has_tombstones {
            bucket_hash(self.live().map(|(_, _, leaf)| leaf))
        } else {
            bucket_hash(&self.leaves)
        }
    }

    /// Live objects in key order: key, value, leaf hash.
    pub fn live(&self) -> impl Iterator<Item = (&Bytes, &Bytes, &Digest)> {
        self.keys
            .iter()
            .zip(&self.slots)
            .zip(&self.leaves)
            .filter_map(|((key, slot), leaf)| slot.value.as_ref().map(|value| (key, value, leaf)))
    }

    /// Removes tombstones (keys deleted in the version being sealed).
    pub fn drop_tombstones(&mut self) {
        if !std::mem::take(&mut self.has_tombstones) {
            return;
        }
        let mut i = 0;
        while i < self.keys.len() {
            if self.slots[i].value.is_none() {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
    }

    /// Undoes every write of versions above `target`, newest first. Returns the change in the
    /// number of live objects.
    pub fn undo_above(&mut self, target: BatchSeq) -> isize {
        let mut live_delta = 0isize;
        while self.undo.last().is_some_and(|u| u.version > target) {
            let undo = self.undo.pop().expect("checked non-empty");
            let position = self.find(&undo.key);
            let was_live = position.is_ok_and(|i| self.slots[i].value.is_some());
            live_delta += isize::from(undo.old.is_some()) - isize::from(was_live);
            match (position, undo.old) {
                (Ok(i), Some(Object { value, leaf })) => {
                    self.live_bytes = self.live_bytes
                        - live_len(&self.keys[i], self.slots[i].value.as_ref())
                        + live_len(&self.keys[i], Some(&value));
                    self.slots[i] = Slot {
                        value: Some(value),
                        epoch: 0,
                    };
                    self.leaves[i] = leaf;
                }
                (Err(i), Some(Object { value, leaf })) => {
                    self.insert_at(i, undo.key, Some(value), leaf, 0);
                }
                (Ok(i), None) => self.remove_at(i),
                (Err(_), None) => {}
            }
        }
        // Every tombstone belongs to the working version, whose writes were all undone.
        self.has_tombstones = false;
        live_delta
    }

    /// Drops the undo records of versions at or below `stable`.
    pub fn discard_undo_through(&mut self, stable: BatchSeq) {
        let keep_from = self.undo.partition_point(|u| u.version <= stable);
        self.undo.drain(..keep_from);
    }

    /// The bucket's live objects as they were at `version` (which must be held): the current
    /// objects with every later write undone, without changing the bucket.
    pub fn objects_at(&self, version: BatchSeq) -> BTreeMap<Bytes, Object> {
        let mut objects: BTreeMap<Bytes, Object> = self
            .live()
            .map(|(key, value, leaf)| {
                let object = Object {
                    value: value.clone(),
                    leaf: *leaf,
                };
                (key.clone(), object)
            })
            .collect();
        for undo in self.undo.iter().rev().take_while(|u| u.version > version) {
            match &undo.old {
                Some(object) => {
                    objects.insert(undo.key.clone(), object.clone());
                }
                None => {
                    objects.remove(&undo.key);
                }
            }
        }
        objects
    }

    /// Keys written by versions in `(from, to]`.
    pub fn keys_written_between(
        &self,
        from: BatchSeq,
        to: BatchSeq,
    ) -> impl Iterator<Item = &Bytes> {
        self.undo
            .iter()
            .filter(move |u| u.version > from && u.version <= to)
            .map(|u| &u.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_tie_on_their_prefix_are_found_and_kept_in_byte_order() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"\0",
            b"a",
            b"a\0",
            b"a\0\0",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
            b"abcdefgg\xff\xff",
            b"abcdefgi",
            b"abcdefghijklmnop",
            b"abcdefghijklmnop\0",
            b"abcdefghijklmnopq",
            b"abcdefghijklmnoo\xff",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            b"b",
        ];
        let mut bucket = Bucket::default();
        let mut model = std::collections::BTreeSet::new();
        // Inserted in an order unrelated to theirs.
        for (n, key) in keys.iter().rev().chain(keys.iter()).enumerate() {
            let value = Bytes::from(vec![n as u8]);
            let object = Object {
                leaf: crate::hash::leaf_hash(key, &value),
                value,
            };
            bucket.write(key, Some(object), 1, BatchSeq(1));
            model.insert(key.to_vec());
        }
        for key in &keys {
            assert!(bucket.get(key).is_some(), "{key:?} is found");
        }
        assert!(bucket.get(b"a\0\0\0").is_none());
        assert!(bucket.get(b"abcdefgh\0\0").is_none());
        assert!(bucket.get(b"abcdefghijklmnop\0\0").is_none());
        let order: Vec<Vec<u8>> = bucket.live().map(|(k, _, _)| k.to_vec()).collect();
        assert_eq!(order, model.into_iter().collect::<Vec<_>>());
    }
}
