//! The errors of the state store. Every operation that fails leaves the state as it was.

use eve_types::{BatchSeq, Digest};

/// Why a state operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// An object key longer than [`eve_types::limits::OBJECT_KEY_BYTES_MAX`].
    #[error("object key is {bytes} bytes; the limit is {max}")]
    KeyTooLarge {
        /// The key's length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// An object value longer than the configured `object_value_bytes_max`.
    #[error("object value is {bytes} bytes; the limit is {max} (object_value_bytes_max)")]
    ValueTooLarge {
        /// The value's length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The application wrote a key in the namespace eve keeps for itself (the reply cache).
    #[error("keys starting with byte 0xff are reserved for eve's own objects")]
    ReservedKey,
    /// A rollback to a version below the stable version, whose undo records are gone.
    #[error(
        "cannot roll back to {target}: versions at or below the stable version {stable} were discarded"
    )]
    RollbackBelowStable {
        /// The version asked for.
        target: BatchSeq,
        /// The stable version.
        stable: BatchSeq,
    },
    /// A version the store does not hold: above the last sealed one, below the stable one, or
    /// skipped (a state transfer jumps over versions).
    #[error(
        "version {version} is not held: the store holds the stable version {stable} and sealed versions up to {sealed}"
    )]
    UnknownVersion {
        /// The version asked for.
        version: BatchSeq,
        /// The stable version.
        stable: BatchSeq,
        /// The last sealed version.
        sealed: BatchSeq,
    },
    /// A new working version must come after the last sealed one.
    #[error("working version {requested} must be above the last sealed version {sealed}")]
    VersionNotAfterSealed {
        /// The version asked for.
        requested: BatchSeq,
        /// The last sealed version.
        sealed: BatchSeq,
    },
    /// The working version can only be renumbered before anything is written to it.
    #[error("the working version {working} already has writes; seal or roll it back first")]
    WorkingVersionDirty {
        /// The working version.
        working: BatchSeq,
    },
    /// Sealing would keep more versions than [`eve_types::limits::RETAINED_VERSIONS_MAX`];
    /// advance the stable version with `mark_stable` first.
    #[error(
        "{retained} versions above the stable one are retained; the limit is {max}: mark a version stable"
    )]
    TooManyRetainedVersions {
        /// Versions retained now.
        retained: usize,
        /// The limit.
        max: usize,
    },
    /// Imported state does not produce the expected root; nothing was changed.
    #[error("imported state has root {actual:?}, expected {expected:?}; the import was undone")]
    RootMismatch {
        /// The agreed root.
        expected: Digest,
        /// The root the import produced.
        actual: Digest,
    },
    /// A delta must be applied to the version it was computed from.
    #[error(
        "the delta starts at version {delta_from}, but this store's last sealed version is {sealed}"
    )]
    DeltaBaseMismatch {
        /// The delta's base version.
        delta_from: BatchSeq,
        /// This store's last sealed version.
        sealed: BatchSeq,
    },
    /// An export would exceed its size limit; fall back to a chunked transfer.
    #[error("the export is {bytes} bytes; the limit is {max}")]
    ExportTooLarge {
        /// Bytes of keys and values the export needs.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Received state-transfer data is malformed (duplicate or unordered keys, a bucket
    /// outside the tree, a chunk that does not continue the transfer).
    #[error("malformed state-transfer data: {reason}")]
    MalformedTransfer {
        /// What was wrong.
        reason: String,
    },
    /// A manifest and a store disagree on the number of Merkle buckets.
    #[error(
        "the manifest has 2^{theirs} buckets; this store has 2^{ours} (merkle_bucket_bits must match)"
    )]
    BucketBitsMismatch {
        /// This store's `merkle_bucket_bits`.
        ours: u8,
        /// The manifest's.
        theirs: u8,
    },
    /// A manifest's bucket hashes do not produce the expected root.
    #[error("the manifest's buckets hash to {actual:?}, expected root {expected:?}")]
    ManifestMismatch {
        /// The agreed root.
        expected: Digest,
        /// The root of the manifest's buckets.
        actual: Digest,
    },
    /// A received bucket does not match its hash in the verified manifest; ask another peer.
    #[error("bucket {bucket} does not match the manifest: the sender's data is wrong")]
    ChunkTampered {
        /// The bucket.
        bucket: u32,
    },
    /// `apply` was called before every needed bucket arrived.
    #[error("{missing} buckets have not arrived yet")]
    ImportIncomplete {
        /// Buckets still missing.
        missing: usize,
    },
}
