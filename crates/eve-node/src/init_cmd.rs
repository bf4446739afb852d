//! `eve-node init`: a cluster's files.

use crate::InitArgs;
use anyhow::{Result, anyhow, bail};
use eve_node::config::Mode;
use eve_node::init::{InitOptions, init};

pub(crate) fn run(args: InitArgs) -> Result<()> {
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
        storage,
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
        disk: storage == "disk",
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
