//! The release build of `eve-node` that local clusters and chaos runs start: built in the
//! workspace, found in the target directory cargo reports (`CARGO_TARGET_DIR` or
//! `build.target-dir` move it away from `target/`).

use crate::workspace::{cargo, root};
use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `eve-node` in release (quietly: cargo prints only errors) and returns its path.
pub fn build() -> Result<PathBuf> {
    let status = Command::new(cargo())
        .current_dir(root())
        .args(["build", "--release", "--quiet", "-p", "eve-node"])
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "building eve-node failed");
    path()
}

/// Where the release build of `eve-node` lies (whether or not it was built).
pub fn path() -> Result<PathBuf> {
    let out = Command::new(cargo())
        .current_dir(root())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("cargo metadata printed no JSON")?;
    let target = metadata["target_directory"]
        .as_str()
        .context("cargo metadata names no target directory")?;
    let name = format!("eve-node{}", std::env::consts::EXE_SUFFIX);
    Ok(Path::new(target).join("release").join(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_binary_lies_in_cargos_target_directory() {
        let path = super::path().expect("cargo metadata answers");
        let expected = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| crate::workspace::root().join("target"));
        assert_eq!(path.parent().unwrap().parent().unwrap(), expected.as_path());
        assert!(path.ends_with("release/eve-node"));
    }
}
