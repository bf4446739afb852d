//! Development automation for eve, run as `cargo xtask <command>` (the alias lives in
//! `.cargo/config.toml`).
//!
//! A plain binary with few dependencies, in the cargo-xtask tradition: it owns the benchmark
//! harness (`cargo xtask bench exec`, `cargo xtask bench token`), the simulation runner
//! (`cargo xtask sim`), local clusters of real processes (`cargo xtask cluster ...`), chaos
//! runs of real processes in network namespaces (`cargo xtask chaos`) and
//! nothing the replicated
//! service needs. Benchmarks must run optimised, while the alias builds xtask in the dev
//! profile, so a benchmark command started from a dev build re-runs itself in release (see
//! [`release`]). The harness reports every speed as a ratio against a baseline measured in
//! the same run (STYLE.md, point 11).

mod bench;
mod chaos;
mod cluster;
mod fuzz;
mod node_binary;
mod release;
mod sim;
mod workspace;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The command line of `cargo xtask`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Development automation for eve")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks of the executor and the token, built and run in release.
    Bench {
        #[command(subcommand)]
        which: bench::BenchCommand,
    },
    /// Simulated clusters from seeds: `--seed S` replays one, `--seeds N` runs a set.
    Sim(sim::SimArgs),
    /// Real eve-node processes in network namespaces under load and a seeded schedule of
    /// faults; every client call recorded and the history checked (needs root).
    Chaos(chaos::ChaosArgs),
    /// The cargo-fuzz targets in fuzz/: write their seed corpora, or run each for a number
    /// of inputs (nightly and cargo-fuzz needed).
    Fuzz {
        #[command(subcommand)]
        which: fuzz::FuzzCommand,
    },
    /// A local cluster of real eve-node processes: up, status, kill, restart, logs, down.
    Cluster {
        #[command(subcommand)]
        which: cluster::ClusterCommand,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { which } => {
            if release::must_reinvoke() {
                return release::reinvoke();
            }
            bench::run(which)
        }
        Command::Cluster { which } => cluster::run(which),
        Command::Chaos(args) => chaos::run(&args),
        Command::Fuzz { which } => fuzz::run(which),
        Command::Sim(args) => {
            if release::must_reinvoke() {
                return release::reinvoke();
            }
            sim::run(&args)
        }
    }
}
