//! Every hard limit of eve, in one place.
//!
//! A limit here is an upper bound that no configuration may exceed; the configuration chooses
//! values within these bounds (see [`crate::ClusterConfig`]). Data that crosses a boundary (a
//! request from a client, a message from a peer, an object written by the application) is
//! checked against these numbers where it enters, so that no queue, message or loop grows
//! without bound.

/// Largest encoded message, in bytes, accepted from any peer or client.
pub const MESSAGE_SIZE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Largest operation a client may submit, in bytes.
pub const OP_BYTES_MAX: usize = 64 * 1024;

/// Largest reply an application may return, in bytes. Longer replies are replaced by an error
/// reply so that the reply cache stays bounded.
pub const REPLY_BYTES_MAX: usize = 64 * 1024;

/// Largest object key the state store accepts, in bytes.
pub const OBJECT_KEY_BYTES_MAX: usize = 1024;

/// Largest object value the state store can be configured to accept, in bytes.
pub const OBJECT_VALUE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Largest number of requests in one batch.
pub const BATCH_REQUESTS_MAX: usize = 8192;

/// Most operation bytes a primary puts in one batch (a single request always fits), so that a
/// batch of [`BATCH_REQUESTS_MAX`] requests, with their headers, stays under
/// [`MESSAGE_SIZE_BYTES_MAX`] and can be sent.
pub const BATCH_OP_BYTES_MAX: usize = MESSAGE_SIZE_BYTES_MAX / 2;

/// Largest number of batches that may be executed but not yet committed.
pub const PIPELINE_DEPTH_MAX: usize = 64;

/// Largest number of batches between two checkpoints.
pub const CHECKPOINT_INTERVAL_MAX: u64 = 100_000;

/// Fewest and most Merkle buckets, as powers of two: 2^4 = 16 buckets up to 2^22 = 4 million
/// (whose tree takes 256 MiB of digests).
pub const MERKLE_BUCKET_BITS_MIN: u8 = 4;
/// See [`MERKLE_BUCKET_BITS_MIN`].
pub const MERKLE_BUCKET_BITS_MAX: u8 = 22;

/// Most sealed versions the state store keeps undo records for (those above the stable
/// version). Checkpoints advance the stable version long before this is reached.
pub const RETAINED_VERSIONS_MAX: usize = 1 << 20;

/// Largest state-transfer chunk, in bytes of object keys and values.
pub const STATE_CHUNK_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Largest `u` (tolerated failures of any kind) a configuration may ask for.
pub const FAULTS_U_MAX: u32 = 8;

/// Largest number of keys the mixer accepts for one request (reads and writes together);
/// a request naming more is treated as conflicting with everything.
pub const CONFLICT_KEYS_PER_REQUEST_MAX: usize = 256;

/// Largest number of worker threads an executor may run.
pub const EXECUTOR_THREADS_MAX: usize = 1024;

/// Shortest and longest protocol timeout, in milliseconds.
pub const TIMEOUT_MS_MIN: u64 = 1;
/// See [`TIMEOUT_MS_MIN`].
pub const TIMEOUT_MS_MAX: u64 = 600_000;
