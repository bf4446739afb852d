//! What a node needs of a disk: a flat directory of named files, appended to and synced, read
//! whole, cut short, replaced atomically.

/// Why a disk operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// No space left: nothing of the write can be counted on.
    #[error("the disk is full")]
    Full,
    /// A file name that is not a plain name in the directory.
    #[error("{0:?} is not a plain file name (letters, digits, '.', '-', '_')")]
    BadName(String),
    /// The operating system refused.
    #[error("{op} {file}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which file.
        file: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// A flat directory of files. Appends and truncations reach the disk only at the next
/// [`sync`](Disk::sync) of that file; [`write_atomic`](Disk::write_atomic) and
/// [`remove`](Disk::remove) are durable when they return.
pub trait Disk {
    /// Appends `bytes` to `file`, creating it if needed.
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError>;
    /// Makes everything written to `file` so far durable (fsync).
    fn sync(&mut self, file: &str) -> Result<(), DiskError>;
    /// The whole content of `file`, or `None` if there is no such file.
    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, DiskError>;
    /// Cuts `file` to its first `len` bytes.
    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError>;
    /// Replaces `file` with `bytes` as one durable step: after a crash the file holds either
    /// its old content or all of `bytes` (a temporary file, fsync, rename, fsync of the
    /// directory).
    fn write_atomic(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError>;
    /// Removes `file` if it exists, durably.
    fn remove(&mut self, file: &str) -> Result<(), DiskError>;
    /// The names of the files, sorted.
    fn list(&self) -> Result<Vec<String>, DiskError>;
}

/// Checks that `name` is a plain file name, so that no name reaches outside the directory.
pub(crate) fn check_name(name: &str) -> Result<(), DiskError> {
    let plain = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if plain {
        Ok(())
    } else {
        Err(DiskError::BadName(name.to_string()))
    }
}
