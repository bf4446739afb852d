//! The versioned object store of eve: objects, versions, rollback, the Merkle root, and the
//! building blocks of state transfer.
//!
//! An application's state is a set of objects with stable byte keys. Worker threads read and
//! write them concurrently during a batch; each batch is sealed into a version whose root
//! covers every object (the reply cache included, as objects under [`SYSTEM_KEY_PREFIX`]).
//! The first write to an object in a version keeps its old value, so
//! [`StateStore::rollback`] restores any held version exactly, and versions at or below the
//! stable point can be dropped with [`StateStore::mark_stable`]. The Merkle tree is
//! incremental: sealing rehashes only the buckets written and their paths. State transfer
//! comes as a [`Delta`] (objects changed between two versions) or as a [`Manifest`] plus
//! bounded [`Chunk`]s, and an import is adopted only if it produces the agreed root.
//!
//! This crate owns data and hashing only: it spawns no thread, reads no clock, does no I/O and
//! knows nothing of the protocol, the mixer or the application, so that the executor, the
//! protocol logic, the simulator and the node all share it. It depends on `eve-types` alone
//! among eve crates.

#![deny(missing_docs)]

mod bucket;
mod chunk;
mod config;
mod delta;
mod error;
mod hash;
mod manifest;
mod merkle;
mod parallel;
mod snapshot;
mod store;

pub use chunk::{BucketPart, CHUNK_REQUEST_BUCKETS_MAX, Chunk, ChunkRequest, StateImport};
pub use config::StateConfig;
pub use delta::{Delta, DeltaEntry};
pub use error::StateError;
pub use hash::{bucket_hash, bucket_of, leaf_hash, node_hash};
pub use manifest::Manifest;
pub use merkle::MerkleTree;
pub use parallel::{ParallelFor, Serial};
pub use snapshot::Snapshot;
pub use store::{SYSTEM_KEY_PREFIX, StateStore, is_system_key};
