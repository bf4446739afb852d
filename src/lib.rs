//! eve: execute-verify replication for multi-core servers.
//!
//! This facade re-exports the layers so that an application can depend on `eve` alone:
//! [`types`] (identifiers, requests, configuration), [`state`] (the versioned object store with
//! its Merkle tree), [`mixer`] (conflict keys and parallel batches), [`exec`] (the
//! [`Application`](exec::Application) trait and the executors) and [`apps`] (the built-in
//! applications), [`agreement`] (the protocol logic: replicas, verifiers, clients, the driver),
//! [`net`] (QUIC with mutual TLS) and [`node`] (running replicas and verifiers, and the client
//! library). It adds no code of its own.

pub use eve_agreement as agreement;
pub use eve_apps as apps;
pub use eve_exec as exec;
pub use eve_mixer as mixer;
pub use eve_net as net;
pub use eve_node as node;
pub use eve_state as state;
pub use eve_types as types;
