//! The benchmark harness: `cargo xtask bench exec` (the executor sweep),
//! `cargo xtask bench token` (the cost of a token as the state grows) and
//! `cargo xtask bench e2e` (the replicated service end to end against its baselines).
//!
//! Every number the harness reports is paired with a baseline measured in the same run, so a
//! reader compares ratios rather than absolute speeds of different machines (STYLE.md,
//! point 11). The harness prints as it goes and can also write its tables to a Markdown and a
//! CSV file.

mod calibrate;
mod e2e;
mod exec;
mod report;
mod stats;
mod token;

use anyhow::Result;
use clap::Subcommand;

/// The benchmarks `cargo xtask bench` runs.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Executor throughput: sequential against parallel, against the machine's limit, over
    /// threads, work per request and conflict rate.
    Exec(exec::ExecArgs),
    /// Seal and token cost after a batch of writes, for a small and a large state.
    Token(token::TokenArgs),
    /// The replicated service end to end against sequential replication, primary-backup and
    /// the application alone, on the same machine and workload.
    E2e(e2e::E2eArgs),
}

/// Runs one benchmark. The caller has made sure this is an optimised build.
pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Exec(args) => exec::run(&args),
        BenchCommand::Token(args) => token::run(&args),
        BenchCommand::E2e(args) => e2e::run(&args),
    }
}
