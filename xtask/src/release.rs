//! Re-running xtask in the release profile.
//!
//! `cargo xtask` builds xtask in the dev profile, where the eve crates are optimised but keep
//! their debug assertions and overflow checks: not what a benchmark should measure. A dev
//! build asked to benchmark therefore runs `cargo run --release --quiet -p xtask -- <the same
//! arguments>` and streams its output. The child learns from [`COMMAND_LINE_ENV`] that it is
//! the re-run (so it never re-runs again) and which command line the user typed (so the report
//! can print it).

use anyhow::{Context, Result, bail};
use std::process::Command;

/// Set in the release child: the command line the user typed, for the report's header.
pub const COMMAND_LINE_ENV: &str = "EVE_XTASK_COMMAND_LINE";

/// Whether this process must hand over to a release build: it is a dev build, and not
/// already the re-run of one.
pub fn must_reinvoke() -> bool {
    cfg!(debug_assertions) && std::env::var_os(COMMAND_LINE_ENV).is_none()
}

/// The command line that produced this run: the one the user typed if this is the release
/// re-run, otherwise this process's own (program and arguments).
pub fn command_line() -> String {
    std::env::var(COMMAND_LINE_ENV)
        .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" "))
}

/// Runs the same arguments through `cargo run --release`, with the output going straight to
/// this terminal, and exits with the child's status.
pub fn reinvoke() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cargo = crate::workspace::cargo();
    eprintln!(
        "xtask: benchmarks and simulations run in release: cargo run --release --quiet -p xtask -- {} \
         (the first build takes a while)",
        args.join(" ")
    );
    let status = Command::new(&cargo)
        .current_dir(crate::workspace::root())
        .args(["run", "--release", "--quiet", "-p", "xtask", "--"])
        .args(&args)
        .env(COMMAND_LINE_ENV, format!("cargo xtask {}", args.join(" ")))
        .status()
        .with_context(|| format!("running `{cargo} run --release -p xtask`"))?;
    if !status.success() {
        bail!("the release run of xtask failed ({status})");
    }
    Ok(())
}
