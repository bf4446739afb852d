//! `eve-node snapshot save|restore`: a replica's state moved to another cluster.

use crate::SnapshotAction;
use anyhow::{Result, bail};
use eve_agreement::NodeId;
use eve_node::config::LoadedConfig;
use eve_node::snapshot::{SnapshotInfo, restore, save};
use eve_node::storage::Storage;
use eve_types::ReplicaId;
use std::path::Path;

/// The replica and data directory a configuration names.
fn replica_of(path: &Path) -> Result<(LoadedConfig, NodeId, std::path::PathBuf)> {
    let loaded = LoadedConfig::load(path)?;
    let Some(role) = &loaded.file.replica else {
        bail!(
            "{}: names no [replica]: snapshots are of a replica's state",
            path.display()
        );
    };
    let node = NodeId::Replica(ReplicaId(role.id as u32));
    let Storage::Disk(dir) = loaded.storage() else {
        bail!(
            "{}: keeps its state in memory: snapshots need `[storage] mode = \"disk\"`",
            path.display()
        );
    };
    Ok((loaded, node, dir))
}

fn describe(info: &SnapshotInfo) -> String {
    format!(
        "version {}, {} objects, root {}",
        info.version,
        info.objects,
        info.root.short()
    )
}

pub(crate) fn run(action: SnapshotAction) -> Result<()> {
    match action {
        SnapshotAction::Save { config, file } => {
            let (loaded, node, dir) = replica_of(&config)?;
            let info = save(&dir, &loaded.spec.config, node, &file)?;
            println!("saved {} to {}", describe(&info), file.display());
        }
        SnapshotAction::Restore { config, file } => {
            let (loaded, node, dir) = replica_of(&config)?;
            let info = restore(&dir, &loaded.spec.config, node, &file)?;
            println!(
                "restored {} as the initial state of {} in {}",
                describe(&info),
                eve_node::config::node_name(node),
                dir.display()
            );
        }
    }
    Ok(())
}
