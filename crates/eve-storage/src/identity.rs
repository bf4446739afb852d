//! Whose data a directory holds. The first start of a node writes an identity file (the
//! cluster and the node's role); every later start checks it, so that a node pointed at
//! another cluster's or another node's data refuses to start instead of serving it.

use crate::disk::{Disk, DiskError};

/// The identity file's name.
pub const IDENTITY_FILE: &str = "IDENTITY";

/// Why a data directory may not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The directory holds another cluster's or another node's data.
    #[error(
        "the data directory belongs to {found:?}, not to {expected:?}: point storage.dir at \
         this node's own data directory"
    )]
    Foreign {
        /// The identity it should hold.
        expected: String,
        /// The identity it holds.
        found: String,
    },
    /// The disk failed.
    #[error(transparent)]
    Disk(#[from] DiskError),
}

/// Checks that `disk` holds `identity`'s data, writing it (durably) into a directory that
/// holds nothing yet. Returns whether the directory was new.
pub fn check_identity<D: Disk + ?Sized>(
    disk: &mut D,
    identity: &str,
) -> Result<bool, IdentityError> {
    match disk.read(IDENTITY_FILE)? {
        Some(bytes) if bytes == identity.as_bytes() => Ok(false),
        Some(bytes) => Err(IdentityError::Foreign {
            expected: identity.to_string(),
            found: String::from_utf8_lossy(&bytes).into_owned(),
        }),
        None => {
            disk.write_atomic(IDENTITY_FILE, identity.as_bytes())?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimDisk;

    #[test]
    fn a_directory_takes_the_first_identity_and_refuses_any_other() {
        let mut disk = SimDisk::new(1 << 10);
        assert!(check_identity(&mut disk, "cluster a / replica 0").unwrap());
        assert!(!check_identity(&mut disk, "cluster a / replica 0").unwrap());
        let err = check_identity(&mut disk, "cluster b / replica 0").unwrap_err();
        assert!(
            err.to_string().contains("cluster a / replica 0"),
            "the error names whose data it is: {err}"
        );
    }
}
