//! `eve-node run`: one process of a cluster, until SIGINT or SIGTERM.

use anyhow::{Context, Result, bail};
use eve_apps::{KvStore, RacyCounter};
use eve_node::NodeBuilder;
use eve_node::admin;
use eve_node::config::{AppName, LoadedConfig};
use eve_types::{ReplicaId, VerifierId};
use std::path::Path;
use std::sync::Arc;

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
    let nonce = eve_node::incarnation_nonce();
    std::fs::write(&marker, nonce.to_string())
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(restarted.then_some(nonce))
}

pub(crate) async fn run(path: &Path) -> Result<()> {
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
    match loaded.storage() {
        storage @ eve_node::storage::Storage::Disk(_) => builder = builder.storage(storage),
        eve_node::storage::Storage::Memory => {
            tracing::warn!(
                "state kept in memory: a restart of this process loses it (its peers restore \
                 it), and a cluster whose every process stops at once loses everything; \
                 `[storage] mode = \"disk\"` keeps it"
            );
            if let Some(nonce) = incarnation(path)? {
                tracing::warn!(
                    "this process ran before and lost its memory: recovering from its peers"
                );
                builder = builder.restarted(nonce);
            }
        }
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
