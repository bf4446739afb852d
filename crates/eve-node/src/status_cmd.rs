//! `eve-node status`: every process's roles and where they stand, from their admin endpoints.

use anyhow::{Context, Result, anyhow, bail};
use eve_node::admin::RoleReport;
use eve_node::config::LoadedConfig;
use std::path::Path;
use std::time::Duration;

/// The longest status response read from one admin endpoint.
const STATUS_RESPONSE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// How long one admin endpoint may take to answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) async fn run(path: &Path, json: bool) -> Result<()> {
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
        "{:<8} {:<12} {:>6} {:>10} {:>10} {:>8} {:<16} {:>8} {:>10} {:>8} {:>8}  error",
        "process",
        "role",
        "view",
        "primary",
        "committed",
        "stable",
        "state root",
        "objects",
        "bytes",
        "dropped",
        "refused"
    );
    for (process, result) in &rows {
        match result {
            Ok(roles) => {
                for role in roles {
                    println!(
                        "{:<8} {:<12} {:>6} {:>10} {:>10} {:>8} {:<16} {:>8} {:>10} {:>8} {:>8}  {}",
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
                        role.bytes.map_or("-".to_owned(), human_bytes),
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
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or_else(|| anyhow!("{addr}: not an HTTP response"))?;
    serde_json::from_str(body).with_context(|| format!("{addr}: not a status report"))
}

/// `1234567` as `1.2 MiB`, small sizes in bytes.
fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_plainly() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1_234_567), "1.2 MiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
