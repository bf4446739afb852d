//! The admin endpoint: `GET /metrics` in the Prometheus text format (encoded by
//! prometheus-client) and `GET /status` as JSON, on a local TCP port. It answers one small
//! request per connection; anything else is refused.

use crate::node::{Node, RoleStatus};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The longest request head read.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024;

/// How long a connection may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; more wait for the listener.
pub const CONNECTIONS_MAX: usize = 64;

/// One role's status as `/status` serves it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RoleReport {
    /// `replica-0`, `verifier-1`, ...
    pub node: String,
    /// `replica` or `verifier`.
    pub role: String,
    /// The view.
    pub view: u64,
    /// The primary it follows (replicas).
    pub primary: Option<u32>,
    /// The last committed batch.
    pub committed: u64,
    /// The last checkpoint (replicas).
    pub stable: Option<u64>,
    /// The committed state's root, in hex (Eve replicas).
    pub state_root: Option<String>,
    /// Whether it is recovering after a restart.
    pub recovering: bool,
    /// Objects in its state (replicas).
    pub objects: Option<usize>,
    /// Key and value bytes of its last sealed state (replicas).
    pub bytes: Option<usize>,
    /// Messages the logic dropped (stale, unexpected, out of window).
    pub dropped: u64,
    /// Connections the transport refused or closed for bad frames.
    pub refused: u64,
}

impl RoleReport {
    fn new(status: &RoleStatus, refused: u64, node: &Node) -> Self {
        let is_replica = matches!(status.node, eve_agreement::NodeId::Replica(_));
        let dropped = status
            .metrics
            .iter()
            .filter(|m| m.name.ends_with("messages_dropped_total"))
            .map(|m| m.value)
            .sum();
        Self {
            node: crate::config::node_name(status.node),
            role: match status.node {
                eve_agreement::NodeId::Replica(_) => "replica",
                eve_agreement::NodeId::Verifier(_) => "verifier",
                eve_agreement::NodeId::Client(_) => "client",
            }
            .to_owned(),
            view: status.view.0,
            primary: status.primary.map(|p| p.0),
            committed: status.committed.0,
            stable: status.stable.map(|s| s.0),
            state_root: status.state_root.clone(),
            recovering: status.recovering,
            objects: node.objects().filter(|_| is_replica),
            bytes: node.state_bytes().filter(|_| is_replica),
            dropped,
            refused,
        }
    }
}

/// Serves the admin endpoint of `node` on `listen` until the task is dropped.
pub async fn serve(node: Arc<Node>, listen: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    loop {
        let (mut stream, _) = listener.accept().await?;
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let node = node.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let path = match tokio::time::timeout(REQUEST_TIMEOUT, read_path(&mut stream)).await {
                Ok(Ok(Some(path))) => path,
                _ => return,
            };
            let (status, kind, body) = match path.as_str() {
                "/metrics" => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics_text(&node).await,
                ),
                "/status" => ("200 OK", "application/json", status_json(&node).await),
                _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
    }
}

/// Reads a request head and returns the path of a `GET`.
async fn read_path(stream: &mut tokio::net::TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > REQUEST_BYTES_MAX {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) => Ok(Some(path.to_owned())),
        _ => Ok(None),
    }
}

/// Every role's reports.
pub async fn reports(node: &Node) -> Vec<RoleReport> {
    let counters = node.net_counters();
    node.status()
        .await
        .iter()
        .map(|status| {
            let refused = counters
                .iter()
                .find(|(n, _)| *n == status.node)
                .map_or(0, |(_, c)| {
                    c.identities_refused + c.bad_frames + c.routes_refused
                });
            RoleReport::new(status, refused, node)
        })
        .collect()
}

async fn status_json(node: &Node) -> String {
    serde_json::to_string(&reports(node).await).expect("reports serialize")
}

/// Registers `metric` under `name`. prometheus-client ends every help text with a period of
/// its own, so the one ours end with is left out (it printed two).
fn register(
    registry: &mut Registry,
    name: impl Into<String>,
    help: &str,
    metric: impl prometheus_client::registry::Metric,
) {
    registry.register(name, help.strip_suffix('.').unwrap_or(help), metric);
}

/// Every metric of `node` in the Prometheus text format, as `GET /metrics` serves it (for an
/// embedding that serves metrics its own way).
pub async fn metrics_text(node: &Node) -> String {
    let mut registry = Registry::default();
    for status in node.status().await {
        for metric in &status.metrics {
            let counter = Counter::<u64>::default();
            counter.inc_by(metric.value);
            let name = metric.name.strip_suffix("_total").unwrap_or(metric.name);
            register(&mut registry, name, metric.help, counter);
        }
        let role = crate::config::node_name(status.node).replace('-', "_");
        let drops = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        for &(reason, count) in &status.drops {
            drops.get_or_create(&vec![("reason", reason)]).inc_by(count);
        }
        register(
            &mut registry,
            format!("eve_{role}_dropped"),
            "Messages the protocol logic dropped, by reason.",
            drops,
        );
        let view = Gauge::<i64>::default();
        view.set(status.view.0 as i64);
        register(
            &mut registry,
            format!("eve_{role}_view"),
            "The current view.",
            view,
        );
        let committed = Gauge::<i64>::default();
        committed.set(status.committed.0 as i64);
        register(
            &mut registry,
            format!("eve_{role}_committed_seq"),
            "The last committed batch.",
            committed,
        );
        if let Some((requests, bytes)) = status.pending {
            let gauge = Gauge::<i64>::default();
            gauge.set(requests as i64);
            register(
                &mut registry,
                "eve_pending_requests",
                "Requests waiting for a batch at the primary.",
                gauge,
            );
            let gauge = Gauge::<i64>::default();
            gauge.set(bytes as i64);
            register(
                &mut registry,
                "eve_pending_bytes",
                "Operation bytes of the requests waiting for a batch at the primary.",
                gauge,
            );
        }
    }
    let journal = node.journal();
    for (name, help, value) in [
        (
            "eve_state_objects",
            "Objects in the replica's state.",
            node.objects(),
        ),
        (
            "eve_state_bytes",
            "Key and value bytes of the replica's last sealed state.",
            node.state_bytes(),
        ),
        (
            "eve_journal_syncs",
            "Syncs of a durable replica's log (each covering every batch logged since the last).",
            journal.as_ref().map(|j| j.syncs),
        ),
        (
            "eve_journal_batches",
            "Batches a durable replica logged.",
            journal.as_ref().map(|j| j.batches),
        ),
        (
            "eve_journal_failed",
            "1 if a durable replica's journal failed (a full disk): it acknowledges nothing more.",
            journal.as_ref().map(|j| usize::from(j.failed.is_some())),
        ),
    ] {
        if let Some(value) = value {
            let gauge = Gauge::<i64>::default();
            gauge.set(value as i64);
            register(&mut registry, name, help, gauge);
        }
    }
    if let Some(histograms) = node.histograms() {
        register(
            &mut registry,
            "eve_batch_requests",
            "Requests per executed batch.",
            histograms.batch_requests,
        );
        register(
            &mut registry,
            "eve_parallel_batch_width",
            "Average requests per parallel batch, per executed batch.",
            histograms.parallel_batch_width,
        );
    }
    for (peer, counters) in node.net_counters() {
        let role = crate::config::node_name(peer).replace('-', "_");
        for (name, help, value) in [
            (
                "messages_sent",
                "Messages queued to send.",
                counters.messages_sent,
            ),
            (
                "messages_received",
                "Messages received.",
                counters.messages_received,
            ),
            (
                "send_queue_full",
                "Messages dropped at a full send queue.",
                counters.send_queue_full,
            ),
            (
                "bad_frames",
                "Connections closed for bad frames.",
                counters.bad_frames,
            ),
            (
                "identities_refused",
                "Connections refused for their identity.",
                counters.identities_refused,
            ),
            (
                "handshake_failures",
                "Incoming handshakes that failed (no certificate, another CA's, a peer that gave up).",
                counters.handshake_failures,
            ),
            (
                "routes_refused",
                "Client connections refused because the most clients were connected.",
                counters.routes_refused,
            ),
        ] {
            let counter = Counter::<u64>::default();
            counter.inc_by(value);
            register(
                &mut registry,
                format!("eve_net_{role}_{name}"),
                help,
                counter,
            );
        }
    }
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a string cannot fail");
    text
}

/// The longest response read from one admin endpoint.
pub const STATUS_RESPONSE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// How long one admin endpoint may take to answer [`fetch_status`] or [`fetch_metrics`].
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Every role of the process whose admin endpoint is `addr`, from its `/status` (what
/// `eve-node status` prints). The error names the endpoint and what went wrong.
pub async fn fetch_status(addr: SocketAddr) -> anyhow::Result<Vec<RoleReport>> {
    use anyhow::Context;
    let body = fetch_page(addr, "/status").await?;
    serde_json::from_str(&body).with_context(|| format!("{addr}: not a status report"))
}

/// Every metric of the process whose admin endpoint is `addr`, from its `/metrics` (the
/// Prometheus text format). The error names the endpoint and what went wrong.
pub async fn fetch_metrics(addr: SocketAddr) -> anyhow::Result<String> {
    fetch_page(addr, "/metrics").await
}

/// The body of `GET path` from the admin endpoint `addr`.
async fn fetch_page(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    use anyhow::{Context, anyhow};
    let request = format!("GET {path} HTTP/1.1\r\nhost: eve\r\nconnection: close\r\n\r\n");
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream
            .take(STATUS_RESPONSE_BYTES_MAX)
            .read_to_end(&mut response)
            .await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(STATUS_TIMEOUT, fetch)
        .await
        .map_err(|_| {
            anyhow!("{addr}: no answer within {STATUS_TIMEOUT:?}: is the process running? (eve-node run)")
        })?
        .with_context(|| format!("{addr}: unreachable"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{addr}: not an HTTP response"))?;
    if !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(anyhow!("{addr}: {path} answered {status}"));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endpoint that answers one request with `response` and closes.
    async fn answering(response: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 256];
            let _ = stream.read(&mut request).await;
            stream.write_all(response.as_bytes()).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn a_page_is_its_body_and_any_other_answer_is_named() {
        let ok = answering("HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\neve 1 2").await;
        assert_eq!(fetch_metrics(ok).await.unwrap(), "eve 1 2");
        let missing = answering("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
        let err = fetch_metrics(missing).await.unwrap_err().to_string();
        assert!(
            err.contains("/metrics answered HTTP/1.1 404 Not Found"),
            "the error names the page and the answer: {err}"
        );
        let garbage = answering("no HTTP here").await;
        let err = fetch_status(garbage).await.unwrap_err().to_string();
        assert!(err.contains("not an HTTP response"), "{err}");
    }
}
