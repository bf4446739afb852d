//! Request numbers for a client id used from the command line, where every call is a new
//! process: replicas answer a number they saw from their reply cache and drop a lower one, so
//! each call must use a number above every earlier call's, even if the clock stepped back, and
//! two calls with one id must not overlap.
//!
//! The last number used is kept in a file beside the client's configuration, locked for the
//! whole call: concurrent calls with the same id on this machine run one after the other.

use anyhow::{Context, Result};
use eve_types::RequestNo;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A request number reserved for one call; the lock on its file holds until it is dropped.
pub(crate) struct Reserved {
    /// The number to use.
    pub next: RequestNo,
    _lock: File,
}

/// The file that keeps client `id`'s last request number, in `dir`.
pub(crate) fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!(".client-{id}.last-request"))
}

/// Waits for the lock on client `id`'s file in `dir`, and reserves a number above the last one
/// used and no lower than `clock` (the time in microseconds, so that a file lost or copied to
/// another machine still leaves numbers rising).
pub(crate) fn reserve(dir: &Path, id: u64, clock: u64) -> Result<Reserved> {
    let path = path(dir, id);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    file.lock()
        .with_context(|| format!("{}: cannot lock", path.display()))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let last: u64 = match text.trim() {
        "" => 0,
        number => number.parse().with_context(|| {
            format!(
                "{}: holds {number:?}, not a request number (delete it to start from the clock)",
                path.display()
            )
        })?,
    };
    let next = clock.max(last.saturating_add(1));
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{next}")?;
    file.sync_data()
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(Reserved {
        next: RequestNo(next),
        _lock: file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_rise_even_when_the_clock_steps_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = reserve(dir.path(), 3, 1_000).unwrap().next;
        assert_eq!(first, RequestNo(1_000), "a new id starts from the clock");
        let second = reserve(dir.path(), 3, 500).unwrap().next;
        assert_eq!(
            second,
            RequestNo(1_001),
            "the clock stepped back: one above the last"
        );
        let third = reserve(dir.path(), 3, 5_000).unwrap().next;
        assert_eq!(third, RequestNo(5_000));
        assert_eq!(
            reserve(dir.path(), 4, 10).unwrap().next,
            RequestNo(10),
            "each id has its own"
        );
    }

    #[test]
    fn a_second_call_with_the_same_id_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let held = reserve(dir.path(), 1, 100).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let dir_path = dir.path().to_owned();
        let waiter = std::thread::spawn(move || {
            let next = reserve(&dir_path, 1, 100).unwrap().next;
            tx.send(next).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "the lock is held"
        );
        drop(held);
        assert_eq!(rx.recv().unwrap(), RequestNo(101));
        waiter.join().unwrap();
    }

    #[test]
    fn a_damaged_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path(), 2), "seven\n").unwrap();
        let err = reserve(dir.path(), 2, 1).err().unwrap().to_string();
        assert!(err.contains("not a request number"), "{err}");
    }
}
