//! Where a durable verifier keeps its memory: a log of [`VerifierMemory`] records on a
//! [`Disk`], the last whole one being the memory. A record is appended for every change the
//! driver hands over and synced before any message that depends on it leaves (one sync for
//! all the changes of a burst of events); every [`MEMORY_RECORDS_MAX`] records the log is
//! replaced atomically by the newest one alone. A verifier's first start writes its initial
//! memory, synced ([`VerifierStore::create`]), and the first memory written to a store that
//! holds none (after a lost disk) is synced at once too, so that a disk without any memory is
//! one that was lost, not one whose first record was torn. A torn tail is cut on opening: what it held
//! was never synced, so nothing that depended on it was sent. A corrupted record is another
//! matter: what followed it may have been synced and acted on, so the memory is not trusted at
//! all, and the verifier recovers from its peers as one that lost its disk.

use crate::verifier::VerifierMemory;
use eve_storage::{Disk, DiskError, RecordLog, TailRepair};
use eve_types::VerifierId;

/// The memory log's file name.
pub const MEMORY_FILE: &str = "verifier.log";

/// Records appended before the log is compacted to its last one.
pub const MEMORY_RECORDS_MAX: u64 = 1024;

/// A durable verifier's memory on disk.
pub struct VerifierStore {
    disk: Box<dyn Disk + Send>,
    log: RecordLog,
    /// Records in the log.
    records: u64,
}

/// What opening a verifier's store found.
pub struct OpenedStore {
    /// The store, ready for the next record.
    pub store: VerifierStore,
    /// The memory to resume from; `None` on a lost (wiped) disk, or when a corrupted record
    /// was found (see [`tail`](Self::tail)): then the verifier must recover from its peers.
    pub memory: Option<VerifierMemory>,
    /// The tail cut, if the log ended in a torn or corrupted record.
    pub tail: Option<TailRepair>,
}

/// Why a verifier's store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum VerifierStoreError {
    /// The disk failed.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The last whole record does not decode: written by another version of eve, or damaged
    /// in a way its checksum did not catch.
    #[error(
        "the verifier's memory does not decode ({0}): move its folder aside and start it again, \
         and it recovers from its peers"
    )]
    Undecodable(String),
    /// A new verifier's store was asked for on a disk that holds a memory.
    #[error("the data directory already holds a verifier's memory: resume from it")]
    NotEmpty,
    /// The memory is another verifier's.
    #[error(
        "the data directory holds the memory of {found}, not of {expected}: point storage.dir at \
         this verifier's own data directory"
    )]
    OtherVerifier {
        /// The verifier starting.
        expected: VerifierId,
        /// The verifier whose memory it is.
        found: VerifierId,
    },
}

impl VerifierStore {
    /// Starts the store of a new verifier on an empty disk, with its initial `memory`
    /// (durable when this returns).
    pub fn create(
        mut disk: Box<dyn Disk + Send>,
        memory: &VerifierMemory,
    ) -> Result<Self, VerifierStoreError> {
        let opened = RecordLog::open(disk.as_mut(), MEMORY_FILE)?;
        if !opened.records.is_empty() {
            return Err(VerifierStoreError::NotEmpty);
        }
        let mut store = VerifierStore {
            disk,
            log: opened.log,
            records: 0,
        };
        // The first memory of a store is synced as it is written.
        store.write(memory)?;
        Ok(store)
    }

    /// Opens verifier `id`'s store on `disk`, cutting a torn tail.
    pub fn open(
        mut disk: Box<dyn Disk + Send>,
        id: VerifierId,
    ) -> Result<OpenedStore, VerifierStoreError> {
        let mut opened = RecordLog::open(disk.as_mut(), MEMORY_FILE)?;
        if opened.repair.as_ref().is_some_and(|r| r.corrupt) {
            // Nothing of it can be trusted: start the log afresh.
            opened.log.rewrite(disk.as_mut(), [])?;
            opened.records.clear();
        }
        let memory = match opened.records.last() {
            None => None,
            Some(bytes) => {
                let memory: VerifierMemory = postcard::from_bytes(bytes)
                    .map_err(|e| VerifierStoreError::Undecodable(e.to_string()))?;
                if memory.id != id {
                    return Err(VerifierStoreError::OtherVerifier {
                        expected: id,
                        found: memory.id,
                    });
                }
                Some(memory)
            }
        };
        let store = VerifierStore {
            disk,
            log: opened.log,
            records: opened.records.len() as u64,
        };
        Ok(OpenedStore {
            store,
            memory,
            tail: opened.repair,
        })
    }

    /// Appends `memory`; durable at the next [`sync`](Self::sync).
    pub fn write(&mut self, memory: &VerifierMemory) -> Result<(), DiskError> {
        let bytes = postcard::to_allocvec(memory).expect("memories encode");
        if self.records == 0 || self.records >= MEMORY_RECORDS_MAX {
            // Compaction, or the first memory of a store that holds none: the log becomes this
            // record alone, replaced atomically and so durable at once. (A store with no memory
            // means a lost disk, so the first memory after a loss, a verifier that recovered
            // from its peers, must be durable whether or not a message follows.)
            self.log.rewrite(self.disk.as_mut(), [&bytes[..]])?;
            self.records = 1;
            return Ok(());
        }
        self.log.append(self.disk.as_mut(), &bytes)?;
        self.records += 1;
        Ok(())
    }

    /// Whether records were appended since the last sync.
    pub fn is_dirty(&self) -> bool {
        self.log.is_dirty()
    }

    /// Makes every record appended so far durable.
    pub fn sync(&mut self) -> Result<(), DiskError> {
        self.log.sync(self.disk.as_mut())
    }
}
