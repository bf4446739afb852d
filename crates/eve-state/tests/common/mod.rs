//! Shared generators for the state store's property tests.

#![allow(dead_code)]

use bytes::Bytes;
use eve_state::{StateConfig, StateStore};
use proptest::prelude::*;

/// One step applied to a store.
#[derive(Clone, Debug)]
pub enum Op {
    Put(u8, u16),
    Delete(u8),
    Seal,
}

pub fn key(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

pub fn value(v: u16) -> Bytes {
    Bytes::from(format!("value-{v}"))
}

/// Steps over a small key space, so that keys are written, overwritten, deleted and
/// re-created.
pub fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            5 => (0u8..48, any::<u16>()).prop_map(|(k, v)| Op::Put(k, v)),
            2 => (0u8..48).prop_map(Op::Delete),
            1 => Just(Op::Seal),
        ],
        0..max_len,
    )
}

pub fn apply(store: &mut StateStore, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put(k, v) => store.put(&key(*k), value(*v)).unwrap(),
            Op::Delete(k) => {
                store.delete(&key(*k)).unwrap();
            }
            Op::Seal => {
                store.seal().unwrap();
            }
        }
    }
}

/// A store with few buckets, so that buckets hold several objects.
pub fn small_store() -> StateStore {
    StateStore::new(StateConfig::new(4, 64).unwrap())
}

/// Key and value bytes of a map of objects, as [`StateStore::bytes`] counts them.
pub fn map_bytes(objects: &std::collections::BTreeMap<Bytes, Bytes>) -> usize {
    objects.iter().map(|(k, v)| k.len() + v.len()).sum()
}
