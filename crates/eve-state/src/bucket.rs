//! One Merkle bucket of the store: its live objects in key order and the undo records of the
//! versions that wrote it.

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

/// An entry of the bucket map. `object` is `None` for a key deleted in the working version
/// (a tombstone), which seal removes; `epoch` is the write epoch of the last write, so the
/// first write of an epoch knows to keep an undo record.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub object: Option<Object>,
    pub epoch: u64,
}

/// The value a key had before the first write to it in `version`; `None` if it did not exist.
#[derive(Clone, Debug)]
pub(crate) struct Undo {
    pub version: BatchSeq,
    pub key: Bytes,
    pub old: Option<Object>,
}

/// A bucket: objects, undo records in non-decreasing version order, and the epoch in which it
/// was last listed as touched.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    pub slots: BTreeMap<Bytes, Slot>,
    pub undo: Vec<Undo>,
    pub touched_epoch: u64,
}

impl Bucket {
    /// The hash of the bucket's live objects.
    pub fn hash(&self) -> Digest {
        bucket_hash(self.live().map(|(_, object)| &object.leaf))
    }

    /// Live objects in key order.
    pub fn live(&self) -> impl Iterator<Item = (&Bytes, &Object)> {
        self.slots
            .iter()
            .filter_map(|(key, slot)| slot.object.as_ref().map(|object| (key, object)))
    }

    /// Removes tombstones (keys deleted in the version being sealed).
    pub fn drop_tombstones(&mut self) {
        self.slots.retain(|_, slot| slot.object.is_some());
    }

    /// Undoes every write of versions above `target`, newest first. Returns the change in the
    /// number of live objects.
    pub fn undo_above(&mut self, target: BatchSeq) -> isize {
        let mut live_delta = 0isize;
        while self.undo.last().is_some_and(|u| u.version > target) {
            let undo = self.undo.pop().expect("checked non-empty");
            let was_live = self
                .slots
                .get(&undo.key)
                .is_some_and(|slot| slot.object.is_some());
            let becomes_live = undo.old.is_some();
            match undo.old {
                Some(object) => {
                    self.slots.insert(
                        undo.key,
                        Slot {
                            object: Some(object),
                            epoch: 0,
                        },
                    );
                }
                None => {
                    self.slots.remove(&undo.key);
                }
            }
            live_delta += isize::from(becomes_live) - isize::from(was_live);
        }
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
            .map(|(key, object)| (key.clone(), object.clone()))
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
