//! A simulated disk for the simulator and tests: every file has what readers see (the page
//! cache) and what survives a crash (the platter). A crash keeps the synced bytes and, of each
//! file's unsynced appends, a seeded prefix: the torn last write.

use crate::disk::{Disk, DiskError, check_name};
use eve_types::SplitMix64;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
struct SimFile {
    /// What reads see.
    cache: Vec<u8>,
    /// What a crash leaves.
    durable: Vec<u8>,
}

/// An in-memory disk with a capacity, that can crash, tear a write and rot a byte.
#[derive(Clone, Debug)]
pub struct SimDisk {
    files: BTreeMap<String, SimFile>,
    capacity: u64,
    syncs: u64,
}

impl SimDisk {
    /// An empty disk that holds at most `capacity` bytes (counting every file's cached bytes).
    pub fn new(capacity: u64) -> Self {
        Self {
            files: BTreeMap::new(),
            capacity,
            syncs: 0,
        }
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.files.values().map(|f| f.cache.len() as u64).sum()
    }

    /// Syncs done so far (each [`sync`](Disk::sync) and [`write_atomic`](Disk::write_atomic)).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Sets the capacity (a disk that fills up: lower it below [`used`](Self::used)).
    pub fn set_capacity(&mut self, capacity: u64) {
        self.capacity = capacity;
    }

    /// The power fails: every file falls back to its durable bytes plus, where it had unsynced
    /// appends, a prefix of them drawn from `seed` (none, some, or all). Unsynced truncations
    /// are undone the same way.
    pub fn crash(&mut self, seed: u64) {
        let mut rng = SplitMix64::new(seed);
        for file in self.files.values_mut() {
            let extends = file.cache.len() > file.durable.len()
                && file.cache[..file.durable.len()] == file.durable[..];
            if extends {
                let unsynced = (file.cache.len() - file.durable.len()) as u64;
                let kept = rng.below(unsynced + 1) as usize;
                let end = file.durable.len() + kept;
                file.durable = file.cache[..end].to_vec();
            }
            file.cache = file.durable.clone();
        }
    }

    /// Flips the bits of the byte at `offset` of `file`, cached and durable (a sector gone bad).
    /// Returns whether there was such a byte.
    pub fn corrupt(&mut self, file: &str, offset: usize) -> bool {
        let Some(f) = self.files.get_mut(file) else {
            return false;
        };
        let mut hit = false;
        for bytes in [&mut f.cache, &mut f.durable] {
            if let Some(b) = bytes.get_mut(offset) {
                *b ^= 0xff;
                hit = true;
            }
        }
        hit
    }

    /// Everything is gone (the disk was replaced).
    pub fn wipe(&mut self) {
        self.files.clear();
    }

    fn room_for(&self, more: u64) -> Result<(), DiskError> {
        if self.used().saturating_add(more) > self.capacity {
            Err(DiskError::Full)
        } else {
            Ok(())
        }
    }
}

impl Disk for SimDisk {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        check_name(file)?;
        self.room_for(bytes.len() as u64)?;
        self.files
            .entry(file.to_string())
            .or_default()
            .cache
            .extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        check_name(file)?;
        self.syncs += 1;
        if let Some(f) = self.files.get_mut(file) {
            f.durable = f.cache.clone();
        }
        Ok(())
    }

    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, DiskError> {
        check_name(file)?;
        Ok(self.files.get(file).map(|f| f.cache.clone()))
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError> {
        check_name(file)?;
        if let Some(f) = self.files.get_mut(file) {
            f.cache.truncate(len as usize);
        }
        Ok(())
    }

    fn write_atomic(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        check_name(file)?;
        let old = self.files.get(file).map_or(0, |f| f.cache.len() as u64);
        self.room_for((bytes.len() as u64).saturating_sub(old))?;
        self.syncs += 1;
        self.files.insert(
            file.to_string(),
            SimFile {
                cache: bytes.to_vec(),
                durable: bytes.to_vec(),
            },
        );
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        check_name(file)?;
        self.files.remove(file);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.files.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_what_was_synced_and_a_prefix_of_the_rest() {
        let mut torn = 0;
        for seed in 0..64 {
            let mut disk = SimDisk::new(1 << 20);
            disk.append("f", b"synced").unwrap();
            disk.sync("f").unwrap();
            disk.append("f", b"-pending").unwrap();
            disk.crash(seed);
            let after = disk.read("f").unwrap().unwrap();
            assert!(after.starts_with(b"synced"), "{after:?}");
            assert!(b"synced-pending".starts_with(&after), "{after:?}");
            if after.len() > 6 && after.len() < 14 {
                torn += 1;
            }
        }
        assert!(torn > 0, "some crash tears the last write");
    }

    #[test]
    fn atomic_replacement_survives_a_crash_whole_and_a_full_disk_refuses_writes() {
        let mut disk = SimDisk::new(16);
        disk.write_atomic("c", b"checkpoint").unwrap();
        disk.crash(1);
        assert_eq!(disk.read("c").unwrap().unwrap(), b"checkpoint");
        assert!(matches!(
            disk.append("l", b"too long a record"),
            Err(DiskError::Full)
        ));
        assert_eq!(disk.read("l").unwrap(), None, "nothing of a refused write");
        assert!(disk.corrupt("c", 0));
        assert_ne!(disk.read("c").unwrap().unwrap(), b"checkpoint");
    }
}
