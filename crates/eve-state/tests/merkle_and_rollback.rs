//! Properties of the incremental root and of rollback.

mod common;

use bytes::Bytes;
use common::{Op, apply, key, map_bytes, ops, small_store, value};
use eve_state::{StateConfig, StateError, StateStore};
use eve_types::BatchSeq;
use proptest::prelude::*;

proptest! {
    /// The root maintained incrementally equals the root rebuilt from every object.
    #[test]
    fn incremental_root_equals_rebuilt_root(steps in ops(120)) {
        let mut store = small_store();
        for op in &steps {
            apply(&mut store, std::slice::from_ref(op));
            if matches!(op, Op::Seal) {
                prop_assert_eq!(store.root(), store.rebuild_root());
                prop_assert_eq!(store.bytes(), map_bytes(&store.to_map()));
            }
        }
        store.seal().unwrap();
        prop_assert_eq!(store.root(), store.rebuild_root());
        prop_assert_eq!(store.len(), store.to_map().len());
        prop_assert_eq!(store.bytes(), map_bytes(&store.to_map()));
    }

    /// Rolling back to any held version restores exactly its root and objects.
    #[test]
    fn rollback_restores_every_held_version(before in ops(60), after in ops(60), sealed_after in any::<bool>()) {
        let mut store = small_store();
        apply(&mut store, &before);
        store.seal().unwrap();
        let target = store.sealed_version();
        let root = store.root();
        let objects = store.to_map();
        apply(&mut store, &after);
        if sealed_after {
            store.seal().unwrap();
        }
        store.rollback(target).unwrap();
        prop_assert_eq!(store.root(), root);
        prop_assert_eq!(store.rebuild_root(), root);
        prop_assert_eq!(store.to_map(), objects.clone());
        prop_assert_eq!(store.len(), objects.len());
        prop_assert_eq!(store.bytes(), map_bytes(&objects));
        prop_assert_eq!(store.sealed_version(), target);
    }

    /// Every intermediate version can be restored, newest first, and each keeps its root.
    #[test]
    fn rollback_walks_back_through_versions(steps in ops(150)) {
        let mut store = small_store();
        let mut seen = vec![(store.sealed_version(), store.root(), store.to_map())];
        for op in &steps {
            apply(&mut store, std::slice::from_ref(op));
            if matches!(op, Op::Seal) {
                seen.push((store.sealed_version(), store.root(), store.to_map()));
            }
        }
        for (version, root, objects) in seen.into_iter().rev() {
            store.rollback(version).unwrap();
            prop_assert_eq!(store.root(), root);
            prop_assert_eq!(store.bytes(), map_bytes(&objects));
            prop_assert_eq!(store.to_map(), objects);
        }
    }

    /// Marking a version stable keeps the state and root, and later rollbacks still land on
    /// exact roots.
    #[test]
    fn mark_stable_keeps_later_rollbacks_exact(a in ops(50), b in ops(50), c in ops(50)) {
        let mut store = small_store();
        apply(&mut store, &a);
        store.seal().unwrap();
        let stable = store.sealed_version();
        apply(&mut store, &b);
        store.seal().unwrap();
        let middle = store.sealed_version();
        let middle_root = store.root();
        let middle_objects = store.to_map();
        apply(&mut store, &c);
        store.seal().unwrap();
        store.mark_stable(stable).unwrap();
        prop_assert_eq!(store.root(), store.rebuild_root());
        store.rollback(middle).unwrap();
        prop_assert_eq!(store.root(), middle_root);
        prop_assert_eq!(store.to_map(), middle_objects);
    }
}

#[test]
fn rollback_below_stable_is_refused_and_changes_nothing() {
    let mut store = small_store();
    store.put(b"a", value(1)).unwrap();
    store.seal().unwrap();
    store.put(b"a", value(2)).unwrap();
    store.seal().unwrap();
    store.mark_stable(BatchSeq(2)).unwrap();
    let root = store.root();
    assert_eq!(
        store.rollback(BatchSeq(1)),
        Err(StateError::RollbackBelowStable {
            target: BatchSeq(1),
            stable: BatchSeq(2)
        })
    );
    assert_eq!(
        store.root(),
        root,
        "a refused rollback leaves the state as it was"
    );
    assert_eq!(store.get(b"a"), Some(value(2)));
}

#[test]
fn rollback_to_a_future_version_is_refused() {
    let mut store = small_store();
    store.seal().unwrap();
    let err = store.rollback(BatchSeq(5)).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::UnknownVersion {
                version: BatchSeq(5),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rollback_drops_unsealed_writes() {
    let mut store = small_store();
    store.put(b"a", value(1)).unwrap();
    let root = store.seal().unwrap();
    store.put(b"a", value(2)).unwrap();
    store.put(b"b", value(3)).unwrap();
    store.delete(b"a").unwrap();
    store.rollback(BatchSeq(1)).unwrap();
    assert_eq!(store.root(), root);
    assert_eq!(store.get(b"a"), Some(value(1)));
    assert_eq!(store.get(b"b"), None);
    assert!(!store.has_unsealed_writes());
}

#[test]
fn oversized_keys_and_values_are_refused_and_change_nothing() {
    let mut store = StateStore::new(StateConfig::new(4, 8).unwrap());
    assert_eq!(
        store.put(b"a", "123456789".into()),
        Err(StateError::ValueTooLarge { bytes: 9, max: 8 })
    );
    let long_key = vec![b'k'; eve_types::limits::OBJECT_KEY_BYTES_MAX + 1];
    assert!(matches!(
        store.put(&long_key, "v".into()),
        Err(StateError::KeyTooLarge { .. })
    ));
    assert!(matches!(
        store.delete(&long_key),
        Err(StateError::KeyTooLarge { .. })
    ));
    assert!(
        !store.has_unsealed_writes(),
        "a refused write touches nothing"
    );
    assert_eq!(
        store.seal().unwrap(),
        StateStore::new(StateConfig::new(4, 8).unwrap()).root()
    );
}

#[test]
fn deleting_an_absent_key_is_not_a_write() {
    let store = small_store();
    assert_eq!(store.delete(&key(1)), Ok(false));
    assert!(!store.has_unsealed_writes());
    store.put(&key(1), value(1)).unwrap();
    assert_eq!(store.delete(&key(1)), Ok(true));
    assert_eq!(store.get(&key(1)), None);
    assert_eq!(store.len(), 0);
}

#[test]
fn the_root_depends_on_content_not_on_write_order() {
    let mut a = small_store();
    let mut b = small_store();
    for k in 0..30u8 {
        a.put(&key(k), value(u16::from(k))).unwrap();
    }
    for k in (0..30u8).rev() {
        b.put(&key(k), value(u16::from(k))).unwrap();
        b.put(&key(k + 100), value(0)).unwrap();
        b.delete(&key(k + 100)).unwrap();
    }
    assert_eq!(a.seal().unwrap(), b.seal().unwrap());
}

#[test]
fn concurrent_writers_produce_the_sequential_root() {
    let mut parallel = StateStore::new(StateConfig::new(6, 64).unwrap());
    std::thread::scope(|scope| {
        for t in 0..4u16 {
            let store = &parallel;
            scope.spawn(move || {
                for i in 0..500u16 {
                    let k = format!("t{t}-{i}");
                    store.put(k.as_bytes(), value(i)).unwrap();
                    if i % 3 == 0 {
                        store.delete(k.as_bytes()).unwrap();
                    }
                }
            });
        }
    });
    let mut sequential = StateStore::new(StateConfig::new(6, 64).unwrap());
    for t in 0..4u16 {
        for i in 0..500u16 {
            if i % 3 != 0 {
                sequential
                    .put(format!("t{t}-{i}").as_bytes(), value(i))
                    .unwrap();
            }
        }
    }
    assert_eq!(parallel.seal().unwrap(), sequential.seal().unwrap());
    assert_eq!(parallel.len(), sequential.len());
    parallel.rollback(BatchSeq(0)).unwrap();
    assert!(parallel.is_empty());
}

#[test]
fn too_many_retained_versions_is_not_reachable_with_checkpoints() {
    let mut store = small_store();
    for i in 0..100u16 {
        store.put(&key((i % 7) as u8), value(i)).unwrap();
        store.seal().unwrap();
        if i % 10 == 9 {
            store.mark_stable(store.sealed_version()).unwrap();
        }
    }
    assert_eq!(store.retained_versions(), 0);
    assert_eq!(store.stable_version(), BatchSeq(100));
}

#[test]
fn a_single_op_sequence_replays_identically() {
    let steps = vec![
        Op::Put(1, 1),
        Op::Seal,
        Op::Delete(1),
        Op::Put(2, 2),
        Op::Seal,
    ];
    let mut a = small_store();
    let mut b = small_store();
    apply(&mut a, &steps);
    apply(&mut b, &steps);
    assert_eq!(a.root(), b.root());
}

/// Runs tasks in reverse order, standing in for threads that finish in any order.
struct Backwards;

impl eve_state::ParallelFor for Backwards {
    fn parallel_for(&mut self, len: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..len).rev().for_each(task);
    }
    fn parallelism(&self) -> usize {
        8
    }
}

#[test]
fn sealing_in_parallel_tasks_gives_the_serial_root() {
    let mut serial = StateStore::new(StateConfig::new(12, 64).unwrap());
    let mut split = StateStore::new(StateConfig::new(12, 64).unwrap());
    for round in 0..3u16 {
        for k in 0..5000u16 {
            let key = format!("k{}", k.wrapping_mul(round + 7));
            for store in [&serial, &split] {
                if k % 5 == round {
                    store.delete(key.as_bytes()).unwrap();
                } else {
                    store.put(key.as_bytes(), value(k)).unwrap();
                }
            }
        }
        let a = serial.seal().unwrap();
        let b = split.seal_with(&mut Backwards).unwrap();
        assert_eq!(a, b, "round {round}");
        assert_eq!(b, split.rebuild_root());
    }
}

#[test]
fn get_at_reads_a_held_version() {
    let mut store = small_store();
    store.put(b"a", value(1)).unwrap();
    store.seal().unwrap();
    store.put(b"a", value(2)).unwrap();
    store.put(b"b", value(3)).unwrap();
    store.seal().unwrap();
    store.delete(b"a").unwrap();
    assert_eq!(store.get_at(b"a", BatchSeq(1)).unwrap(), Some(value(1)));
    assert_eq!(store.get_at(b"b", BatchSeq(1)).unwrap(), None);
    assert_eq!(store.get_at(b"a", BatchSeq(2)).unwrap(), Some(value(2)));
    assert_eq!(store.get(b"a"), None, "the working version deleted it");
    assert!(matches!(
        store.get_at(b"a", BatchSeq(9)),
        Err(StateError::UnknownVersion { .. })
    ));
}

#[test]
fn a_store_built_with_objects_holds_them_at_version_zero_and_rolls_back_to_it() {
    let config = StateConfig::new(4, 1024).unwrap();
    let objects = (0..500u32).map(|i| {
        (
            Bytes::from(format!("key{i}")),
            Bytes::from(format!("value{i}")),
        )
    });
    let mut store = StateStore::with_objects(config, objects).unwrap();
    assert_eq!(store.len(), 500, "every object is there");
    assert_eq!(store.stable_version(), BatchSeq(0));
    assert_eq!(store.working_version(), BatchSeq(1), "batch 1 writes next");
    let root0 = store.root_of(BatchSeq(0)).unwrap();
    assert_eq!(
        root0,
        store.rebuild_root(),
        "version 0's root covers the objects"
    );
    assert_ne!(
        root0,
        StateStore::new(config).root(),
        "and differs from an empty store's"
    );
    store.put(b"key7", Bytes::from_static(b"changed")).unwrap();
    store.put(b"new", Bytes::from_static(b"object")).unwrap();
    store.seal().unwrap();
    store.rollback(BatchSeq(0)).unwrap();
    assert_eq!(store.root(), root0, "rollback restores version 0");
    assert_eq!(store.get(b"key7"), Some(Bytes::from_static(b"value7")));
    assert_eq!(store.get(b"new"), None);
}
