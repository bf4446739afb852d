//! Where a node keeps its state: in memory (state and votes are gone when the process stops;
//! the node says so at start), or on disk, in a data directory with one folder per role
//! (`replica-<i>`, `verifier-<i>`). A role's folder holds its identity (the cluster and the
//! role, checked at every start so that a node pointed at another cluster's data refuses to
//! run), and either a replica's journal (its log of executed batches and its checkpoints) or
//! a verifier's memory. See `eve_agreement::journal` and `eve_agreement::verifier_store`.

use eve_agreement::journal::{Journal, JournalError, Recovered};
use eve_agreement::verifier_store::{OpenedStore, VerifierStore, VerifierStoreError};
use eve_agreement::{NodeId, VerifierMemory};
use eve_exec::{Application, Executor};
use eve_storage::{DiskError, FileDisk, IdentityError, check_identity};
use eve_types::ValidConfig;
use std::path::{Path, PathBuf};

/// Where a node keeps its state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// In memory: a restarted process recovers from its peers, and a cluster whose every node
    /// stops at once loses its state.
    #[default]
    Memory,
    /// On disk, in this data directory.
    Disk(PathBuf),
}

/// Why a role's storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The folder holds another cluster's or another role's data.
    #[error("{dir}: {source}")]
    Identity {
        /// The role's folder.
        dir: PathBuf,
        /// What it holds instead.
        source: IdentityError,
    },
    /// The disk failed.
    #[error("{dir}: {source}")]
    Disk {
        /// The role's folder.
        dir: PathBuf,
        /// What failed.
        source: DiskError,
    },
    /// A replica's journal could not be opened.
    #[error("{dir}: {source}")]
    Journal {
        /// The role's folder.
        dir: PathBuf,
        /// What failed.
        source: JournalError,
    },
    /// A verifier's memory could not be opened.
    #[error("{dir}: {source}")]
    Memory {
        /// The role's folder.
        dir: PathBuf,
        /// What failed.
        source: VerifierStoreError,
    },
}

/// What a verifier's folder held.
pub enum VerifierStart {
    /// Nothing: a new verifier, whose initial memory is now written.
    New(VerifierStore),
    /// Its memory, to resume from.
    Resume(VerifierStore, Box<VerifierMemory>),
    /// No memory it can trust (its data was lost or damaged): it recovers from its peers.
    Lost(VerifierStore),
}

/// The identity written in a role's folder: the cluster's id and the role.
pub fn identity(config: &ValidConfig, node: NodeId) -> String {
    format!(
        "eve cluster {} {}",
        config.cluster_id.short(),
        crate::config::node_name(node)
    )
}

/// The folder of `node`'s data under `dir`, opened and checked against its identity; returns
/// it and whether it was new.
pub(crate) fn role_disk(
    dir: &Path,
    config: &ValidConfig,
    node: NodeId,
) -> Result<(FileDisk, bool), StorageError> {
    let folder = dir.join(crate::config::node_name(node));
    let mut disk = FileDisk::open(&folder).map_err(|source| StorageError::Disk {
        dir: folder.clone(),
        source,
    })?;
    let new = check_identity(&mut disk, &identity(config, node)).map_err(|source| {
        StorageError::Identity {
            dir: folder.clone(),
            source,
        }
    })?;
    Ok((disk, new))
}

/// Opens a replica's journal under `dir`: a new one over `executor`'s initial state, or the
/// one there, recovered into `executor` (with what the recovery found and proved).
pub fn open_replica<A: Application>(
    dir: &Path,
    config: &ValidConfig,
    node: NodeId,
    executor: &mut Executor<A>,
) -> Result<(Journal, Option<Recovered>), StorageError> {
    let (disk, new) = role_disk(dir, config, node)?;
    let folder = disk.dir().to_path_buf();
    if new {
        let journal = Journal::create(Box::new(disk), executor.state()).map_err(|source| {
            StorageError::Journal {
                dir: folder,
                source,
            }
        })?;
        return Ok((journal, None));
    }
    let (journal, recovered) =
        Journal::recover(Box::new(disk), executor).map_err(|source| StorageError::Journal {
            dir: folder,
            source: JournalError::Disk(source),
        })?;
    Ok((journal, Some(recovered)))
}

/// Opens a verifier's memory under `dir`, writing `initial` into a new folder.
pub fn open_verifier(
    dir: &Path,
    config: &ValidConfig,
    node: NodeId,
    initial: &VerifierMemory,
) -> Result<VerifierStart, StorageError> {
    let (disk, new) = role_disk(dir, config, node)?;
    let folder = disk.dir().to_path_buf();
    let NodeId::Verifier(id) = node else {
        unreachable!("open_verifier opens a verifier's memory")
    };
    let memory_error = |source| StorageError::Memory {
        dir: folder.clone(),
        source,
    };
    if new {
        let store = VerifierStore::create(Box::new(disk), initial).map_err(memory_error)?;
        return Ok(VerifierStart::New(store));
    }
    let OpenedStore {
        store,
        memory,
        tail,
    } = VerifierStore::open(Box::new(disk), id).map_err(memory_error)?;
    if let Some(tail) = &tail {
        tracing::warn!(
            dir = %folder.display(),
            cut_bytes = tail.cut_bytes,
            reason = tail.reason,
            "the verifier's memory ended in a damaged record: cut"
        );
    }
    Ok(match memory {
        Some(memory) => VerifierStart::Resume(store, Box::new(memory)),
        None => VerifierStart::Lost(store),
    })
}

/// Logs what a replica's recovery found and proved.
pub fn report_recovery(node: NodeId, recovered: &Recovered) {
    let name = crate::config::node_name(node);
    for refused in &recovered.refused {
        tracing::warn!(node = %name, %refused, "checkpoint refused; falling back to an older one");
    }
    if let Some(tail) = &recovered.tail {
        tracing::warn!(
            node = %name,
            kept_bytes = tail.kept_bytes,
            cut_bytes = tail.cut_bytes,
            reason = tail.reason,
            "the log ended in a torn or damaged record: cut at the last valid one"
        );
    }
    match recovered.checkpoint {
        Some((seq, _)) => tracing::info!(
            node = %name,
            checkpoint = seq.0,
            replayed = recovered.replayed.len(),
            skipped = recovered.skipped,
            "recovered from disk; catching up with the cluster"
        ),
        None => tracing::warn!(
            node = %name,
            "no checkpoint on disk could be loaded: fetching the state from peers"
        ),
    }
}
