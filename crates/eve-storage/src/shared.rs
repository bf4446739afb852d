//! A disk shared between the node that writes it and whoever pulls its plug: the simulator
//! keeps one handle to crash the disk under a node it has just stopped, and hands the other to
//! the node's storage.

use crate::disk::{Disk, DiskError};
use std::sync::{Arc, Mutex, MutexGuard};

/// A [`Disk`] behind a shared lock: clones are handles to the same disk.
#[derive(Debug, Default)]
pub struct SharedDisk<D> {
    inner: Arc<Mutex<D>>,
}

impl<D> Clone for SharedDisk<D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<D> SharedDisk<D> {
    /// Shares `disk`.
    pub fn new(disk: D) -> Self {
        Self {
            inner: Arc::new(Mutex::new(disk)),
        }
    }

    /// The disk itself, for the duration of the guard (to crash it, corrupt it, or fill it).
    pub fn lock(&self) -> MutexGuard<'_, D> {
        // A panic while the disk was held leaves it as it was: keep using it.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl<D: Disk> Disk for SharedDisk<D> {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        self.lock().append(file, bytes)
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        self.lock().sync(file)
    }

    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, DiskError> {
        self.lock().read(file)
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError> {
        self.lock().truncate(file, len)
    }

    fn write_atomic(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        self.lock().write_atomic(file, bytes)
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        self.lock().remove(file)
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        self.lock().list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimDisk;

    #[test]
    fn a_crash_through_one_handle_is_seen_through_the_other() {
        let plug = SharedDisk::new(SimDisk::new(1 << 10));
        let mut node = plug.clone();
        node.append("f", b"synced").unwrap();
        node.sync("f").unwrap();
        node.append("f", b" and more").unwrap();
        plug.lock().crash(0);
        let after = node.read("f").unwrap().unwrap();
        assert!(
            after.starts_with(b"synced") && after.len() <= 15,
            "{after:?}"
        );
    }
}
