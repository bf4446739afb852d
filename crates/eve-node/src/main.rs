//! The `eve-node` command: make a cluster's files (`init`), run one process of it (`run`),
//! see where every node stands (`status`), and call the key-value store (`kv`).

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use eve_apps::{KvOp, KvReply, KvStore, RacyCounter};
use eve_node::admin::{self, RoleReport};
use eve_node::config::{AppName, LoadedConfig, Mode};
use eve_node::init::{InitOptions, init};
use eve_node::{EveClient, NodeBuilder};
use eve_types::{ClientId, ReplicaId, RequestNo, VerifierId};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod demo;

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
struct InitArgs {
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
}

#[derive(Subcommand)]
enum KvCommand {
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
        Command::Init(args) => cmd_init(args),
        Command::Run { config } => runtime().and_then(|rt| rt.block_on(cmd_run(&config))),
        Command::Demo(options) => runtime().and_then(|rt| rt.block_on(demo::run(options))),
        Command::Status { config, json } => {
            runtime().and_then(|rt| rt.block_on(cmd_status(&config, json)))
        }
        Command::Kv {
            config,
            timeout_ms,
            op,
        } => runtime().and_then(|rt| rt.block_on(cmd_kv(&config, timeout_ms, op))),
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

fn cmd_init(args: InitArgs) -> Result<()> {
    let InitArgs {
        out,
        u,
        r,
        replicas,
        primary_backup,
        clients,
        base_port,
        name,
        one_role_per_process,
    } = args;
    let mode = if primary_backup {
        Mode::PrimaryBackup
    } else {
        Mode::Eve
    };
    let expected = match mode {
        Mode::Eve => eve_types::QuorumSizes::eve(u, r).n_exec,
        Mode::PrimaryBackup => 2,
    };
    if let Some(n) = replicas
        && n != expected
    {
        bail!(
            "--replicas {n} does not fit: {} needs {expected} execution replicas",
            match mode {
                Mode::Eve => format!("u = {u}, r = {r}"),
                Mode::PrimaryBackup => "primary-backup".to_owned(),
            }
        );
    }
    let options = InitOptions {
        name,
        mode,
        u,
        r,
        clients,
        base_port,
        one_role_per_process,
        ..InitOptions::default()
    };
    let output = init(&options, &out).map_err(|e| anyhow!(e))?;
    println!("wrote a cluster to {}:", out.display());
    for path in output.nodes.iter().chain(&output.clients) {
        println!("  {}", path.display());
    }
    println!("start each process with: eve-node run --config <process>.toml");
    Ok(())
}

/// A process that ran before from this configuration lost its memory when it stopped: it
/// must recover before it votes or leads (see docs/PROTOCOL.md, "Restarts without memory").
/// Returns the incarnation nonce if this is a restart.
fn incarnation(config: &Path) -> Result<Option<u64>> {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let marker = config
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!(".{stem}.started"));
    let restarted = marker.exists();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    std::fs::write(&marker, nonce.to_string())
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(restarted.then_some(nonce))
}

async fn cmd_run(path: &Path) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let loaded = LoadedConfig::load(path)?;
    let file = &loaded.file;
    if file.replica.is_none() && file.verifier.is_none() {
        bail!(
            "{}: names neither [replica] nor [verifier]: nothing to run",
            path.display()
        );
    }
    let mut builder = NodeBuilder::new(loaded.spec.clone());
    if file.app.threads > 0 {
        builder = builder.threads(file.app.threads);
    }
    if let Some(role) = &file.replica {
        let credentials = loaded.credentials(role, "replica")?;
        let id = ReplicaId(role.id as u32);
        builder = match file.app.name {
            AppName::Kv => builder.replica(id, credentials, KvStore),
            AppName::Racy => builder.replica(id, credentials, RacyCounter::new(2_000)),
        };
    }
    if let Some(role) = &file.verifier {
        let credentials = loaded.credentials(role, "verifier")?;
        builder = builder.verifier(VerifierId(role.id as u32), credentials);
    }
    let restarted = incarnation(path)?;
    if let Some(nonce) = restarted {
        tracing::warn!("this process ran before and lost its memory: recovering from its peers");
        builder = builder.restarted(nonce);
    }
    let node = Arc::new(builder.start()?);
    let roles: Vec<String> = node
        .status()
        .await
        .iter()
        .map(|s| eve_node::config::node_name(s.node))
        .collect();
    tracing::info!(roles = ?roles, cluster = %file.cluster.name, "running");
    let admin_task = file.admin.listen.map(|listen| {
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(err) = admin::serve(node, listen).await {
                tracing::error!(%listen, %err, "admin endpoint failed");
            }
        })
    });
    shutdown_signal().await;
    tracing::info!("shutting down");
    if let Some(task) = admin_task {
        task.abort();
        let _ = task.await;
    }
    match Arc::try_unwrap(node) {
        Ok(node) => node.shutdown().await,
        Err(_) => tracing::warn!("admin requests still running; exiting without a clean close"),
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn cmd_status(path: &Path, json: bool) -> Result<()> {
    let loaded = LoadedConfig::load(path)?;
    let admin = &loaded.file.cluster.admin;
    if admin.is_empty() {
        bail!("{}: cluster.admin lists no admin endpoints", path.display());
    }
    let mut rows: Vec<(String, Result<Vec<RoleReport>>)> = Vec::new();
    for (process, addr) in admin {
        rows.push((process.clone(), fetch_status(*addr).await));
    }
    if json {
        let value: Vec<serde_json::Value> = rows
            .iter()
            .map(|(process, result)| match result {
                Ok(roles) => serde_json::json!({ "process": process, "roles": roles }),
                Err(err) => serde_json::json!({ "process": process, "error": err.to_string() }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!(
        "{:<8} {:<12} {:>6} {:>8} {:>10} {:>8} {:<18} {:>8} {:>8}  error",
        "process",
        "role",
        "view",
        "primary",
        "committed",
        "stable",
        "state root",
        "dropped",
        "refused"
    );
    for (process, result) in &rows {
        match result {
            Ok(roles) => {
                for role in roles {
                    println!(
                        "{:<8} {:<12} {:>6} {:>8} {:>10} {:>8} {:<18} {:>8} {:>8} {:>8}  {}",
                        process,
                        role.node,
                        role.view,
                        role.primary
                            .map_or("-".to_owned(), |p| format!("replica-{p}")),
                        role.committed,
                        role.stable.map_or("-".to_owned(), |s| s.to_string()),
                        role.state_root
                            .as_deref()
                            .map_or("-", |r| &r[..r.len().min(16)]),
                        role.objects.map_or("-".to_owned(), |n| n.to_string()),
                        role.dropped,
                        role.refused,
                        if role.recovering { "recovering" } else { "" }
                    );
                }
            }
            Err(err) => println!("{process:<8} {:<12} {err:#}", "-"),
        }
    }
    Ok(())
}

async fn fetch_status(addr: std::net::SocketAddr) -> Result<Vec<RoleReport>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /status HTTP/1.1\r\nhost: eve\r\nconnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream
            .take(16 * 1024 * 1024)
            .read_to_end(&mut response)
            .await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(std::time::Duration::from_secs(3), fetch)
        .await
        .map_err(|_| anyhow!("{addr}: no answer within 3 s"))?
        .with_context(|| format!("{addr}: unreachable"))?;
    let text = String::from_utf8_lossy(&response);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or_else(|| anyhow!("{addr}: not an HTTP response"))?;
    serde_json::from_str(body).with_context(|| format!("{addr}: not a status report"))
}

async fn cmd_kv(path: &Path, timeout_ms: u64, op: KvCommand) -> Result<()> {
    let loaded = LoadedConfig::load(path)?;
    let role = loaded
        .file
        .client
        .as_ref()
        .ok_or_else(|| anyhow!("{}: has no [client] section", path.display()))?;
    let credentials = loaded.credentials(role, "client")?;
    let bytes = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let optional = |s: &str| (s != "-").then(|| bytes(s));
    let op = match &op {
        KvCommand::Get { key } => KvOp::Get { key: bytes(key) },
        KvCommand::Put { key, value } => KvOp::Put {
            key: bytes(key),
            value: bytes(value),
        },
        KvCommand::Delete { key } => KvOp::Delete { key: bytes(key) },
        KvCommand::Cas { key, expected, new } => KvOp::CompareAndSwap {
            key: bytes(key),
            expected: optional(expected),
            new: optional(new),
        },
        KvCommand::Incr { key, delta } => KvOp::Increment {
            key: bytes(key),
            delta: *delta,
        },
        KvCommand::Transfer { from, to, amount } => KvOp::Transfer {
            from: bytes(from),
            to: bytes(to),
            amount: *amount,
        },
    };
    // Each invocation is a new process with the same client id: number requests by the
    // clock, so every call's number is higher than the last one's and none runs twice.
    let next = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1);
    let client = EveClient::connect_resuming(
        &loaded.spec,
        ClientId(role.id),
        &credentials,
        RequestNo(next),
    )?
    .with_timeout(std::time::Duration::from_millis(timeout_ms));
    let result = client.call(op.encode()).await;
    client.close().await;
    let reply =
        KvReply::decode(&result?).context("the cluster's reply is not a key-value reply")?;
    let show = |v: &Option<Bytes>| match v {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "(none)".to_owned(),
    };
    match reply {
        KvReply::Value(v) => println!("{}", show(&v)),
        KvReply::Swapped => println!("swapped"),
        KvReply::CasFailed { current } => bail!("not swapped: the value is {}", show(&current)),
        KvReply::Counter(n) => println!("{n}"),
        KvReply::Transferred {
            from_balance,
            to_balance,
        } => println!("transferred: {from_balance} left, {to_balance} at the destination"),
        KvReply::InsufficientFunds { balance } => {
            bail!("insufficient funds: the balance is {balance}")
        }
        KvReply::NotANumber => bail!("the key does not hold a counter"),
        KvReply::Overflow => bail!("the counter would overflow"),
        KvReply::Error(e) => bail!("refused by the store: {e}"),
    }
    Ok(())
}
