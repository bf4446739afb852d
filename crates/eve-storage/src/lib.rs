//! Durable storage for eve nodes, below the protocol: a [`Disk`] (a flat directory of files
//! that may lose what was not synced), with a real one ([`FileDisk`]) and a simulated one
//! ([`SimDisk`]) that crashes the way disks do (unsynced writes lost, a torn last write, a
//! corrupted sector, a full disk), and a [`RecordLog`] of checksummed records on top, which on
//! opening keeps the valid prefix and cuts a torn or corrupted tail.
//!
//! ```
//! use eve_storage::{Disk, RecordLog, SimDisk};
//!
//! let mut disk = SimDisk::new(1 << 20);
//! let mut log = RecordLog::open(&mut disk, "batches.log").unwrap().log;
//! log.append(&mut disk, b"batch 1").unwrap();
//! log.append(&mut disk, b"batch 2").unwrap();
//! log.sync(&mut disk).unwrap(); // one sync covers both (group commit)
//! log.append(&mut disk, b"batch 3").unwrap(); // not synced
//! disk.crash(7);
//! let opened = RecordLog::open(&mut disk, "batches.log").unwrap();
//! assert_eq!(opened.records, vec![b"batch 1".to_vec(), b"batch 2".to_vec()]);
//! ```

#![deny(missing_docs)]

mod checksum;
mod disk;
mod file_disk;
mod identity;
mod log;
mod shared;
mod sim_disk;

pub use checksum::{CHECKSUM_BYTES, ChecksumError, checked, with_checksum};
pub use disk::{Disk, DiskError};
pub use file_disk::FileDisk;
pub use identity::{IDENTITY_FILE, IdentityError, check_identity};
pub use log::{Opened, RECORD_BYTES_MAX, RECORD_HEADER_BYTES, RecordLog, TailRepair};
pub use shared::SharedDisk;
pub use sim_disk::SimDisk;
