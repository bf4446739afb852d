//! The `eve-node` command: make a cluster's files (`init`), run one process of it (`run`),
//! see where every node stands (`status`), call the key-value store (`kv`), and run a whole
//! cluster in one process under load (`demo`). One module per command.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod demo;
mod init_cmd;
mod kv_cmd;
mod request_numbers;
mod run_cmd;
mod snapshot_cmd;
mod status_cmd;

#[derive(Parser)]
#[command(
    name = "eve-node",
    version,
    about = "Eve: execute-verify replication for multi-core servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a cluster: a CA, a key and certificate per node and client, one configuration per
    /// process (node-<i>.toml runs replica i and verifier i) and per client.
    Init(InitArgs),
    /// Run one process of a cluster until interrupted.
    Run {
        /// The process's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print every process's roles and where they stand.
    Status {
        /// Any configuration file of the cluster.
        #[arg(long)]
        config: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a cluster in this process over loopback QUIC, drive a key-value workload, and
    /// print throughput, latency, parallel batch width and divergences repaired.
    Demo(demo::DemoOptions),
    /// Move a replica's state to another cluster: save the newest checkpoint of its data
    /// directory to a file, or restore such a file as the initial state of a new data
    /// directory (every replica of the new cluster restores the same file).
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// Call the key-value store.
    Kv {
        /// A client configuration file (client-<n>.toml).
        #[arg(long)]
        config: PathBuf,
        /// How long to wait for the result, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        #[command(subcommand)]
        op: KvCommand,
    },
}

#[derive(clap::Args)]
pub(crate) struct InitArgs {
    /// Where to write the files (must not hold a cluster yet).
    #[arg(long)]
    out: PathBuf,
    /// Failures of any kind tolerated.
    #[arg(long, default_value_t = 1)]
    u: u32,
    /// Byzantine failures tolerated (r <= u).
    #[arg(long, default_value_t = 0)]
    r: u32,
    /// Execution replicas; must equal u + max(u, r) + 1 (or 2 with --primary-backup).
    #[arg(long)]
    replicas: Option<usize>,
    /// A primary-backup pair instead of Eve (no verifiers).
    #[arg(long)]
    primary_backup: bool,
    /// Client identities to make.
    #[arg(long, default_value_t = 4)]
    clients: u64,
    /// The first port; nodes and admin endpoints take consecutive ports.
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
    /// The cluster's name.
    #[arg(long, default_value = "local")]
    name: String,
    /// One process per role (replica-<i>.toml, verifier-<i>.toml) instead of node-<i>.toml
    /// running replica i and verifier i together.
    #[arg(long)]
    one_role_per_process: bool,
    /// Where each process keeps its state: `memory` (lost when the process stops; peers
    /// restore it) or `disk` (in data-<process>/ beside its configuration: the cluster
    /// survives every process stopping at once).
    #[arg(long, default_value = "memory", value_parser = ["memory", "disk"])]
    storage: String,
}

#[derive(Subcommand)]
pub(crate) enum SnapshotAction {
    /// Write the newest sound checkpoint of the replica's data directory to FILE (the process
    /// may run: checkpoints are written atomically).
    Save {
        /// The replica process's configuration (with `[storage] mode = "disk"`).
        #[arg(long)]
        config: PathBuf,
        /// Where to write the snapshot.
        file: PathBuf,
    },
    /// Check FILE (checksum, root) and make it the replica's initial state in a new data
    /// directory of its cluster; refuses a directory that holds state.
    Restore {
        /// The replica process's configuration (with `[storage] mode = "disk"`).
        #[arg(long)]
        config: PathBuf,
        /// The snapshot.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum KvCommand {
    /// Print a key's value.
    Get { key: String },
    /// Set a key; prints the value before.
    Put { key: String, value: String },
    /// Delete a key; prints the value before.
    Delete { key: String },
    /// Set KEY to NEW if it holds EXPECTED ("-" for absent).
    Cas {
        key: String,
        expected: String,
        new: String,
    },
    /// Add DELTA to the counter at KEY.
    Incr {
        key: String,
        #[arg(allow_negative_numbers = true)]
        delta: i64,
    },
    /// Move AMOUNT from the balance at FROM to the balance at TO.
    Transfer {
        from: String,
        to: String,
        amount: i64,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(args) => init_cmd::run(args),
        Command::Run { config } => runtime().and_then(|rt| rt.block_on(run_cmd::run(&config))),
        Command::Demo(options) => runtime().and_then(|rt| rt.block_on(demo::run(options))),
        Command::Snapshot { action } => snapshot_cmd::run(action),
        Command::Status { config, json } => {
            runtime().and_then(|rt| rt.block_on(status_cmd::run(&config, json)))
        }
        Command::Kv {
            config,
            timeout_ms,
            op,
        } => runtime().and_then(|rt| rt.block_on(kv_cmd::run(&config, timeout_ms, op))),
    };
    if let Err(err) = result {
        // One line: the cause chain joined, each cause once (a message may quote its source).
        let mut line = String::new();
        for cause in err.chain().map(|c| c.to_string()) {
            if line.ends_with(&cause) {
                continue;
            }
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&cause);
        }
        eprintln!("error: {line}");
        std::process::exit(1);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
