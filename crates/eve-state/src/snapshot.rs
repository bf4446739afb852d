//! A whole version of the state as one list of objects: what a durable replica writes as its
//! checkpoint, and the store it loads again from one after a restart, checked against the
//! version's agreed root.

use crate::config::StateConfig;
use crate::error::StateError;
use crate::store::StateStore;
use bytes::Bytes;
use eve_types::{BatchSeq, Digest};
use serde::{Deserialize, Serialize};

/// Every object of one version, buckets in order and keys in order within each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The version.
    pub version: BatchSeq,
    /// Its root, as the store that took the snapshot computed it.
    pub root: Digest,
    /// Its objects (the reply cache's included).
    pub objects: Vec<(Bytes, Bytes)>,
}

impl StateStore {
    /// Every object of `version`, which must be held (the last sealed version, or one above
    /// the stable version). Costs a pass over the whole state.
    pub fn snapshot(&self, version: BatchSeq) -> Result<Snapshot, StateError> {
        let root = self.root_of(version)?;
        let written = self.buckets_written_after(version);
        let mut objects = Vec::with_capacity(self.len());
        for b in 0..1u32 << self.config().bucket_bits() {
            let bucket = self.bucket(b).read();
            if written.contains(&b) {
                let at = bucket.objects_at(version);
                objects.extend(at.into_iter().map(|(key, object)| (key, object.value)));
            } else {
                objects.extend(
                    bucket
                        .live()
                        .map(|(key, value, _)| (key.clone(), value.clone())),
                );
            }
        }
        Ok(Snapshot {
            version,
            root,
            objects,
        })
    }

    /// A store holding exactly `snapshot`, as its stable (and last sealed) version, if its
    /// objects hash to `expected_root`; nothing rolls back below it.
    pub fn restore(
        config: StateConfig,
        snapshot: &Snapshot,
        expected_root: Digest,
    ) -> Result<Self, StateError> {
        let mut store = Self::with_objects(config, snapshot.objects.iter().cloned())?;
        let actual = store.root();
        if actual != expected_root {
            return Err(StateError::RootMismatch {
                expected: expected_root,
                actual,
            });
        }
        store.renumber_stable(snapshot.version);
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> StateConfig {
        StateConfig::new(4, 1 << 16).unwrap()
    }

    proptest! {
        /// A snapshot of any held version restores that version's objects and root, and the
        /// restored store goes on from there.
        #[test]
        fn a_snapshot_restores_its_version(
            writes in proptest::collection::vec((0u8..20, proptest::option::of(any::<u8>())), 1..60),
            versions in 1usize..6,
            pick in any::<usize>(),
        ) {
            let mut store = StateStore::new(config());
            let mut maps = vec![store.to_map()];
            for chunk in writes.chunks(writes.len().div_ceil(versions)) {
                for &(key, value) in chunk {
                    match value {
                        Some(v) => store.put(&[key], Bytes::from(vec![v])).unwrap(),
                        None => { store.delete(&[key]).unwrap(); }
                    }
                }
                store.seal().unwrap();
                maps.push(store.to_map());
            }
            let version = BatchSeq((pick % maps.len()) as u64);
            let snapshot = store.snapshot(version).unwrap();
            let root = store.root_of(version).unwrap();
            prop_assert_eq!(snapshot.root, root);
            let restored = StateStore::restore(config(), &snapshot, root).unwrap();
            prop_assert_eq!(restored.to_map(), maps[version.0 as usize].clone());
            prop_assert_eq!(restored.root(), root);
            prop_assert_eq!(restored.stable_version(), version);
            prop_assert_eq!(restored.sealed_version(), version);
            let mut restored = restored;
            restored.put(b"next", Bytes::from_static(b"v")).unwrap();
            prop_assert!(restored.seal().is_ok());
            prop_assert_eq!(restored.sealed_version(), version.next());
        }
    }

    #[test]
    fn a_snapshot_with_a_changed_object_is_refused() {
        let mut store = StateStore::new(config());
        store.put(b"a", Bytes::from_static(b"1")).unwrap();
        store.seal().unwrap();
        let mut snapshot = store.snapshot(BatchSeq(1)).unwrap();
        snapshot.objects[0].1 = Bytes::from_static(b"2");
        let err = StateStore::restore(config(), &snapshot, snapshot.root).unwrap_err();
        assert!(matches!(err, StateError::RootMismatch { .. }), "{err}");
    }

    #[test]
    fn a_version_no_longer_held_has_no_snapshot() {
        let mut store = StateStore::new(config());
        for i in 0..3u8 {
            store.put(&[i], Bytes::from_static(b"v")).unwrap();
            store.seal().unwrap();
        }
        store.mark_stable(BatchSeq(2)).unwrap();
        assert!(store.snapshot(BatchSeq(1)).is_err());
        assert!(store.snapshot(BatchSeq(2)).is_ok());
    }
}
