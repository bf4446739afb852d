//! The real disk: a directory of the local file system.

use crate::disk::{Disk, DiskError, check_name};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory on the local file system. Files are opened per operation: the log appends in
/// batches, so the cost of opening is paid once per group of records.
#[derive(Debug)]
pub struct FileDisk {
    dir: PathBuf,
}

fn io(op: &'static str, file: &Path, source: std::io::Error) -> DiskError {
    let file = file.display().to_string();
    if source.kind() == std::io::ErrorKind::StorageFull {
        return DiskError::Full;
    }
    DiskError::Io { op, file, source }
}

impl FileDisk {
    /// The directory `dir`, created if it does not exist.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, DiskError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, file: &str) -> Result<PathBuf, DiskError> {
        check_name(file)?;
        Ok(self.dir.join(file))
    }

    /// Makes the directory's entries durable (after a rename, a create or a remove).
    fn sync_dir(&self) -> Result<(), DiskError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync the directory", &self.dir, e))
    }
}

impl Disk for FileDisk {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let path = self.path(file)?;
        let created = !path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        f.write_all(bytes).map_err(|e| io("append to", &path, e))?;
        if created {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        let path = self.path(file)?;
        match File::open(&path) {
            Ok(f) => f.sync_data().map_err(|e| io("sync", &path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("open", &path, e)),
        }
    }

    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, DiskError> {
        let path = self.path(file)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path, e)),
        }
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError> {
        let path = self.path(file)?;
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        f.set_len(len).map_err(|e| io("truncate", &path, e))
    }

    fn write_atomic(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let path = self.path(file)?;
        let tmp = self.dir.join(format!(".{file}.tmp"));
        let mut f = File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| io("write", &tmp, e))?;
        f.sync_all().map_err(|e| io("sync", &tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| io("rename", &path, e))?;
        self.sync_dir()
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        let path = self.path(file)?;
        match std::fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path, e)),
        }
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io("list", &self.dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io("list", &self.dir, e))?;
            if let Some(name) = entry.file_name().to_str()
                && check_name(name).is_ok()
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eve-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn files_append_read_truncate_replace_and_list() {
        let dir = temp_dir("files");
        let mut disk = FileDisk::open(&dir).unwrap();
        assert_eq!(disk.read("a.log").unwrap(), None);
        disk.append("a.log", b"one").unwrap();
        disk.append("a.log", b"two").unwrap();
        disk.sync("a.log").unwrap();
        assert_eq!(disk.read("a.log").unwrap().unwrap(), b"onetwo");
        disk.truncate("a.log", 3).unwrap();
        assert_eq!(disk.read("a.log").unwrap().unwrap(), b"one");
        disk.write_atomic("state.ckpt", b"old").unwrap();
        disk.write_atomic("state.ckpt", b"new").unwrap();
        assert_eq!(disk.read("state.ckpt").unwrap().unwrap(), b"new");
        assert_eq!(disk.list().unwrap(), vec!["a.log", "state.ckpt"]);
        disk.remove("a.log").unwrap();
        disk.remove("a.log").unwrap();
        assert_eq!(disk.list().unwrap(), vec!["state.ckpt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_name_that_reaches_outside_the_directory_is_refused() {
        let dir = temp_dir("names");
        let mut disk = FileDisk::open(&dir).unwrap();
        for name in ["../x", "a/b", "", ".hidden", "é"] {
            assert!(
                matches!(disk.append(name, b"x"), Err(DiskError::BadName(_))),
                "{name:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
