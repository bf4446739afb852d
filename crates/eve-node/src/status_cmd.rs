//! `eve-node status`: every process's roles and where they stand, from their admin endpoints.

use anyhow::{Result, bail};
use eve_node::admin::RoleReport;
use eve_node::config::LoadedConfig;
use std::path::Path;

pub(crate) async fn run(path: &Path, json: bool) -> Result<()> {
    let loaded = LoadedConfig::load(path)?;
    let admin = &loaded.file.cluster.admin;
    if admin.is_empty() {
        bail!("{}: cluster.admin lists no admin endpoints", path.display());
    }
    let mut rows: Vec<(String, Result<Vec<RoleReport>>)> = Vec::new();
    for (process, addr) in admin {
        rows.push((process.clone(), eve_node::admin::fetch_status(*addr).await));
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
