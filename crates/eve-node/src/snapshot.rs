//! Moving a replica's state to another cluster: `eve-node snapshot save` writes the newest
//! sound checkpoint of a replica's data directory to a file; `eve-node snapshot restore`
//! checks such a file (its checksum, and that its objects make its recorded root) and makes it
//! the initial state of a new replica's data directory. Every replica of the new cluster
//! restores the same file, so that they start from the same state (their first tokens would
//! differ otherwise).

use eve_agreement::NodeId;
use eve_agreement::journal::{Journal, newest_snapshot};
use eve_state::{Snapshot, StateConfig, StateStore};
use eve_types::{Digest, ValidConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The first bytes of a snapshot file.
pub const SNAPSHOT_MAGIC: &[u8] = b"eve-snapshot-1\n";

/// A snapshot file's content, after its magic and checksum.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    /// The cluster it was taken from.
    cluster: Digest,
    snapshot: Snapshot,
}

/// What a snapshot holds, for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The version (the batch after which it was taken) in its own cluster.
    pub version: u64,
    /// Its objects.
    pub objects: usize,
    /// Its root.
    pub root: Digest,
}

/// Why a snapshot could not be saved or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The data directory could not be used.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory holds no checkpoint that is whole and makes its root.
    #[error(
        "{dir}: no sound checkpoint to save{}; a replica writes one every checkpoint_interval \
         committed batches, so save again once it has committed that many",
        refused_list(.refused)
    )]
    NoCheckpoint {
        /// The replica's folder.
        dir: String,
        /// Checkpoints refused, with why.
        refused: Vec<String>,
    },
    /// The file is not a whole snapshot.
    #[error("{path}: not a snapshot, or damaged: {why}; save it again from a replica")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The replica's folder already holds state.
    #[error("{dir}: already holds a replica's state; restore into a new data directory")]
    NotEmpty {
        /// The replica's folder.
        dir: String,
    },
}

fn refused_list(refused: &[String]) -> String {
    if refused.is_empty() {
        String::new()
    } else {
        format!(" (refused: {})", refused.join("; "))
    }
}

/// Writes the newest sound checkpoint of replica `node`'s folder under `dir` to `file`.
pub fn save(
    dir: &Path,
    config: &ValidConfig,
    node: NodeId,
    file: &Path,
) -> Result<SnapshotInfo, SnapshotError> {
    let (disk, _) = crate::storage::role_disk(dir, config, node)?;
    let folder = disk.dir().to_path_buf();
    let disk_error = |source| crate::storage::StorageError::Disk {
        dir: folder.clone(),
        source,
    };
    let (snapshot, refused) =
        newest_snapshot(&disk, StateConfig::from_cluster(config)).map_err(disk_error)?;
    let Some(snapshot) = snapshot else {
        return Err(SnapshotError::NoCheckpoint {
            dir: folder.display().to_string(),
            refused,
        });
    };
    let info = SnapshotInfo {
        version: snapshot.version.0,
        objects: snapshot.objects.len(),
        root: snapshot.root,
    };
    let body = postcard::to_allocvec(&SnapshotFile {
        cluster: config.cluster_id,
        snapshot,
    })
    .expect("snapshots encode");
    let mut bytes = SNAPSHOT_MAGIC.to_vec();
    bytes.extend_from_slice(&eve_storage::with_checksum(&body));
    std::fs::write(file, bytes).map_err(|source| SnapshotError::File {
        path: file.display().to_string(),
        source,
    })?;
    Ok(info)
}

/// Checks `file` and makes it the initial state of replica `node`'s new folder under `dir`.
pub fn restore(
    dir: &Path,
    config: &ValidConfig,
    node: NodeId,
    file: &Path,
) -> Result<SnapshotInfo, SnapshotError> {
    let path = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|source| SnapshotError::File {
        path: path.clone(),
        source,
    })?;
    let damaged = |why: String| SnapshotError::Damaged {
        path: path.clone(),
        why,
    };
    let rest = bytes
        .strip_prefix(SNAPSHOT_MAGIC)
        .ok_or_else(|| damaged("it does not start as a snapshot does".into()))?;
    let body = eve_storage::checked(rest).map_err(|e| damaged(e.to_string()))?;
    let file: SnapshotFile =
        postcard::from_bytes(body).map_err(|e| damaged(format!("it does not decode: {e}")))?;
    let state_config = StateConfig::from_cluster(config);
    // The new cluster starts from these objects as its version 0.
    let state = StateStore::with_objects(state_config, file.snapshot.objects.iter().cloned())
        .map_err(|e| damaged(format!("its objects do not fit this cluster: {e}")))?;
    if state.root() != file.snapshot.root {
        return Err(damaged(
            "its objects do not make its recorded root".to_string(),
        ));
    }
    let (disk, new) = crate::storage::role_disk(dir, config, node)?;
    let folder = disk.dir().to_path_buf();
    let not_empty = || SnapshotError::NotEmpty {
        dir: folder.display().to_string(),
    };
    if !new {
        return Err(not_empty());
    }
    Journal::create(Box::new(disk), &state).map_err(|_| not_empty())?;
    Ok(SnapshotInfo {
        version: file.snapshot.version.0,
        objects: file.snapshot.objects.len(),
        root: file.snapshot.root,
    })
}
