//! A log of checksummed records in one file. Each record is its length (4 bytes, little
//! endian), the first 4 bytes of the blake3 hash of the length (so that a damaged length is
//! told from a short file), the first 8 bytes of the blake3 hash of length and payload, then
//! the payload. Opening a log keeps the longest valid prefix and cuts the rest: a record that is
//! incomplete (a torn write), whose length is damaged or too long, or whose checksum does not
//! match (a corrupted sector) ends the log there, and what follows it is gone, with a
//! [`TailRepair`] saying so and whether it was a torn write or a corruption.

use crate::disk::{Disk, DiskError};

/// Bytes before each record's payload.
pub const RECORD_HEADER_BYTES: usize = 16;

/// The longest payload a record may hold (32 MiB: twice the longest protocol message).
pub const RECORD_BYTES_MAX: usize = 32 << 20;

/// A log open for appending.
#[derive(Debug)]
pub struct RecordLog {
    file: String,
    /// Bytes of whole records written (synced or not).
    len: u64,
    /// Whether records were appended since the last sync.
    dirty: bool,
}

/// A log as opening found it.
#[derive(Debug)]
pub struct Opened {
    /// The log, positioned after its last valid record.
    pub log: RecordLog,
    /// The payloads of its valid records, in order.
    pub records: Vec<Vec<u8>>,
    /// What was cut, if the file did not end on a valid record.
    pub repair: Option<TailRepair>,
}

/// A tail cut when a log was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailRepair {
    /// Bytes of valid records kept.
    pub kept_bytes: u64,
    /// Bytes cut after them.
    pub cut_bytes: u64,
    /// Why the record there is not valid.
    pub reason: &'static str,
    /// Whether the record there was whole but wrong (its checksum does not match, or its
    /// length is impossible): a corruption of bytes once written, not the torn last write of
    /// a crash (a torn write leaves a record cut short, since a crash keeps a prefix of what
    /// was appended). What followed it may have been synced: it is lost.
    pub corrupt: bool,
}

const CORRUPT_LENGTH: &str = "a record length that is damaged or over the limit";
const CORRUPT_CHECKSUM: &str = "a record whose checksum does not match";

fn length_check(len: [u8; 4]) -> [u8; 4] {
    blake3::hash(&len).as_bytes()[..4]
        .try_into()
        .expect("4 of 32 bytes")
}

fn checksum(len: [u8; 4], payload: &[u8]) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&len);
    hasher.update(payload);
    let hash = hasher.finalize();
    hash.as_bytes()[..8].try_into().expect("8 of 32 bytes")
}

/// Splits `bytes` into valid records; returns them, the bytes they span and why the rest (if
/// any) is not a record.
fn parse(bytes: &[u8]) -> (Vec<Vec<u8>>, usize, Option<&'static str>) {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < RECORD_HEADER_BYTES {
            return (records, at, Some("a record header cut short"));
        }
        let len_bytes: [u8; 4] = rest[..4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes(len_bytes) as usize;
        if rest[4..8] != length_check(len_bytes) || len > RECORD_BYTES_MAX {
            return (records, at, Some(CORRUPT_LENGTH));
        }
        let Some(payload) = rest.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len) else {
            return (records, at, Some("a record cut short"));
        };
        if checksum(len_bytes, payload) != rest[8..RECORD_HEADER_BYTES] {
            return (records, at, Some(CORRUPT_CHECKSUM));
        }
        records.push(payload.to_vec());
        at += RECORD_HEADER_BYTES + len;
    }
    (records, at, None)
}

/// The bytes of one record of `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut bytes = Vec::with_capacity(RECORD_HEADER_BYTES + payload.len());
    bytes.extend_from_slice(&len);
    bytes.extend_from_slice(&length_check(len));
    bytes.extend_from_slice(&checksum(len, payload));
    bytes.extend_from_slice(payload);
    bytes
}

impl RecordLog {
    /// Opens the log in `file` (an empty one if there is none), cutting (durably) whatever
    /// follows its last valid record.
    pub fn open<D: Disk + ?Sized>(disk: &mut D, file: &str) -> Result<Opened, DiskError> {
        let bytes = disk.read(file)?.unwrap_or_default();
        let (records, valid, invalid) = parse(&bytes);
        let repair = invalid.map(|reason| TailRepair {
            kept_bytes: valid as u64,
            cut_bytes: (bytes.len() - valid) as u64,
            reason,
            corrupt: reason == CORRUPT_CHECKSUM || reason == CORRUPT_LENGTH,
        });
        if repair.is_some() {
            disk.truncate(file, valid as u64)?;
            disk.sync(file)?;
        }
        let log = RecordLog {
            file: file.to_string(),
            len: valid as u64,
            dirty: false,
        };
        Ok(Opened {
            log,
            records,
            repair,
        })
    }

    /// Appends a record of `payload`; it is durable after the next [`sync`](Self::sync). A
    /// write that fails leaves the log as it was.
    ///
    /// # Panics
    /// If `payload` is longer than [`RECORD_BYTES_MAX`].
    pub fn append<D: Disk + ?Sized>(
        &mut self,
        disk: &mut D,
        payload: &[u8],
    ) -> Result<(), DiskError> {
        assert!(
            payload.len() <= RECORD_BYTES_MAX,
            "a record of {} bytes exceeds RECORD_BYTES_MAX",
            payload.len()
        );
        let bytes = frame(payload);
        if let Err(err) = disk.append(&self.file, &bytes) {
            // Whatever part of it reached the file is cut again.
            let _ = disk.truncate(&self.file, self.len);
            return Err(err);
        }
        self.len += bytes.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Makes every record appended so far durable: one sync for any number of records (group
    /// commit). Does nothing if none was appended since the last.
    pub fn sync<D: Disk + ?Sized>(&mut self, disk: &mut D) -> Result<(), DiskError> {
        if self.dirty {
            disk.sync(&self.file)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Replaces the whole log with `records`, atomically (to drop the records a checkpoint
    /// made unnecessary).
    pub fn rewrite<'a, D: Disk + ?Sized>(
        &mut self,
        disk: &mut D,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), DiskError> {
        let bytes: Vec<u8> = records.into_iter().flat_map(frame).collect();
        disk.write_atomic(&self.file, &bytes)?;
        self.len = bytes.len() as u64;
        self.dirty = false;
        Ok(())
    }

    /// Bytes of records in the log.
    pub fn len_bytes(&self) -> u64 {
        self.len
    }

    /// Whether records were appended since the last sync.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimDisk;
    use proptest::prelude::*;

    fn records(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8; i * 7 % 50]).collect()
    }

    proptest! {
        /// After any crash the log holds a prefix of what was appended, at least everything
        /// synced, and opening it again finds the same.
        #[test]
        fn a_crash_keeps_a_prefix_holding_every_synced_record(
            n in 1usize..40, synced in 0usize..40, seed in any::<u64>()
        ) {
            let synced = synced.min(n);
            let all = records(n);
            let mut disk = SimDisk::new(1 << 20);
            let mut log = RecordLog::open(&mut disk, "l").unwrap().log;
            for (i, r) in all.iter().enumerate() {
                log.append(&mut disk, r).unwrap();
                if i + 1 == synced {
                    log.sync(&mut disk).unwrap();
                }
            }
            disk.crash(seed);
            let opened = RecordLog::open(&mut disk, "l").unwrap();
            prop_assert!(opened.records.len() >= synced);
            prop_assert_eq!(&opened.records[..], &all[..opened.records.len()]);
            if let Some(repair) = &opened.repair {
                prop_assert!(!repair.corrupt, "a crash only tears: {:?}", repair);
            }
            let again = RecordLog::open(&mut disk, "l").unwrap();
            prop_assert_eq!(again.records, opened.records);
            prop_assert_eq!(again.repair, None, "the first opening cut the tail for good");
        }

        /// A corrupted byte anywhere ends the log at the record it lies in.
        #[test]
        fn a_corrupted_byte_ends_the_log_at_its_record(n in 1usize..20, at in any::<usize>()) {
            let all = records(n);
            let mut disk = SimDisk::new(1 << 20);
            let mut log = RecordLog::open(&mut disk, "l").unwrap().log;
            let mut starts = Vec::new();
            for r in &all {
                starts.push(log.len_bytes() as usize);
                log.append(&mut disk, r).unwrap();
            }
            log.sync(&mut disk).unwrap();
            let offset = at % log.len_bytes() as usize;
            prop_assert!(disk.corrupt("l", offset));
            let hit = starts.iter().rposition(|&s| s <= offset).unwrap();
            let opened = RecordLog::open(&mut disk, "l").unwrap();
            prop_assert_eq!(&opened.records[..], &all[..hit]);
            let repair = opened.repair.unwrap();
            prop_assert_eq!(repair.kept_bytes as usize, starts[hit]);
            prop_assert!(repair.corrupt, "a flipped byte is told from a tear: {:?}", repair);
        }
    }

    #[test]
    fn a_full_disk_refuses_the_record_and_the_log_stays_whole() {
        let mut disk = SimDisk::new(64);
        let mut log = RecordLog::open(&mut disk, "l").unwrap().log;
        log.append(&mut disk, b"fits").unwrap();
        assert!(matches!(
            log.append(&mut disk, &[0; 60]),
            Err(DiskError::Full)
        ));
        log.sync(&mut disk).unwrap();
        let opened = RecordLog::open(&mut disk, "l").unwrap();
        assert_eq!(opened.records, vec![b"fits".to_vec()]);
        assert_eq!(opened.repair, None);
    }

    #[test]
    fn a_rewrite_replaces_the_log_atomically() {
        let mut disk = SimDisk::new(1 << 20);
        let mut log = RecordLog::open(&mut disk, "l").unwrap().log;
        for r in records(5) {
            log.append(&mut disk, &r).unwrap();
        }
        log.rewrite(&mut disk, [&b"kept"[..]]).unwrap();
        log.append(&mut disk, b"after").unwrap();
        disk.crash(3);
        let opened = RecordLog::open(&mut disk, "l").unwrap();
        assert_eq!(opened.records[0], b"kept".to_vec());
        assert!(opened.records.len() <= 2);
    }
}
